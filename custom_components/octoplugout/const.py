"""Constants for OctoPlugout."""

from __future__ import annotations

from collections.abc import Mapping
import logging
from typing import Any, Final

DOMAIN: Final = "octoplugout"
LOGGER = logging.getLogger(__package__)

APP_NAME: Final = "OctoPlugout"
EVENT_OCTOPLUGOUT: Final = "octoplugout_event"

# Config entry data
CONF_HOST_TYPE: Final = "host_type"
HOST_OCTOPRINT: Final = "octoprint"
HOST_MOONRAKER: Final = "moonraker"
HOST_ENTITIES: Final = "entities"
HOST_TYPES: Final = (HOST_OCTOPRINT, HOST_MOONRAKER, HOST_ENTITIES)
# A printer another integration reports (HOST_ENTITIES): the entities that tell of it.
CONF_JOB_ENTITY: Final = "job_entity"
CONF_JOB_STATES: Final = "job_states"
CONF_FAULT_STATES: Final = "fault_states"
CONF_HOTEND_ENTITIES: Final = "hotend_entities"
CONF_BED_ENTITY: Final = "bed_entity"
CONF_HALT_BUTTON: Final = "halt_button"
CONF_HOST_ENTITY: Final = "host_entity"
CONF_MESSAGE_ENTITY: Final = "message_entity"
CONF_UPDATE_INTERVAL: Final = "update_interval"
CONF_RELAY: Final = "relay_entity"
CONF_BUTTON: Final = "button_entity"
CONF_LED: Final = "led_entity"
CONF_LOCK: Final = "lock_entity"
CONF_POWER_SENSOR: Final = "power_entity"
CONF_POWER_UP: Final = "power_up_entity"
CONF_PLUG_ENTITIES: Final = (
    CONF_RELAY,
    CONF_BUTTON,
    CONF_LED,
    CONF_LOCK,
    CONF_POWER_UP,
    CONF_POWER_SENSOR,
)

# Options beside the machine's settings: the original's MQTT topics (an empty root means
# octoplugout/<device name>).
CONF_MQTT: Final = "mqtt"
CONF_MQTT_ROOT: Final = "mqtt_root"

# M117 text: what a printer display shows safely on one line.
MESSAGE_MAX_LENGTH: Final = 64

# OctoPrint's button events from the plug's event entity
BUTTON_SHORT_PRESS: Final = "short_press"
BUTTON_LONG_PRESS: Final = "long_press"


def host_type_of(data: Mapping[str, Any]) -> str:
    """The printer host an entry names (an entry from before there was a choice: OctoPrint)."""
    host_type = data.get(CONF_HOST_TYPE)
    return host_type if host_type in HOST_TYPES else HOST_OCTOPRINT
