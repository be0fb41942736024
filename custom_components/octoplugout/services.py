"""OctoPlugout's actions (services)."""

from __future__ import annotations

import re
from typing import Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from . import machine
from .compat import vol
from .const import DOMAIN, MESSAGE_MAX_LENGTH
from .coordinator import OctoPlugoutConfigEntry, OctoPlugoutCoordinator
from .host import HostCapability, HostError

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_MESSAGE: Final = "message"
ATTR_ALLOW_JOB_LOSS: Final = "allow_job_loss"

SERVICE_SEND_MESSAGE: Final = "send_message"
SERVICE_POWER_OFF: Final = "power_off"
SERVICE_FORCE_POWER_OFF: Final = "force_power_off"
SERVICE_CANCEL_POWER_OFF: Final = "cancel_power_off"

# Printable ASCII without ';' (starts a G-code comment) and '*' (starts a checksum): anything
# else could end the M117 line and smuggle in another command.
_MESSAGE_CHARACTERS = re.compile(r"[ -)+-:<-~]*")

_ENTRY_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
_MESSAGE_SCHEMA = _ENTRY_SCHEMA.extend({vol.Required(ATTR_MESSAGE): cv.string})
_FORCE_SCHEMA = _ENTRY_SCHEMA.extend({vol.Optional(ATTR_ALLOW_JOB_LOSS, default=False): cv.boolean})


def validate_message(text: str) -> str:
    """Return the message to send, or raise a translated validation error."""
    if not text.strip():
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="message_empty")
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="message_too_long",
            translation_placeholders={"max": str(MESSAGE_MAX_LENGTH)},
        )
    if not _MESSAGE_CHARACTERS.fullmatch(text):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="message_characters"
        )
    return text.strip()


def _coordinator(hass: HomeAssistant, call: ServiceCall) -> OctoPlugoutCoordinator:
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry: OctoPlugoutConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry.runtime_data


def _command(coordinator: OctoPlugoutCoordinator, event: machine.MachineEvent) -> None:
    try:
        coordinator.async_command(event)
    except machine.CommandRefused as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key=f"refused_{err.reason}"
        ) from err


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register OctoPlugout's actions."""

    async def send_message(call: ServiceCall) -> None:
        text = validate_message(call.data[ATTR_MESSAGE])
        coordinator = _coordinator(hass, call)
        if HostCapability.MESSAGE not in coordinator.host.capabilities:
            # A printer another integration reports, with no notify entity chosen.
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_message_entity"
            )
        try:
            delivered = await coordinator.async_send_message(text)
        except HostError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="host_unavailable"
            ) from err
        if not delivered:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="printer_not_connected"
            )

    async def power_off(call: ServiceCall) -> None:
        coordinator = _coordinator(hass, call)
        _command(coordinator, machine.ModeSelected(coordinator.now(), machine.Mode.OFF))

    async def force_power_off(call: ServiceCall) -> None:
        coordinator = _coordinator(hass, call)
        _command(
            coordinator,
            machine.ForceRequested(
                coordinator.now(), allow_job_loss=call.data[ATTR_ALLOW_JOB_LOSS]
            ),
        )

    async def cancel_power_off(call: ServiceCall) -> None:
        coordinator = _coordinator(hass, call)
        _command(coordinator, machine.CancelRequested(coordinator.now()))

    hass.services.async_register(DOMAIN, SERVICE_SEND_MESSAGE, send_message, _MESSAGE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_POWER_OFF, power_off, _ENTRY_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_FORCE_POWER_OFF, force_power_off, _FORCE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_CANCEL_POWER_OFF, cancel_power_off, _ENTRY_SCHEMA)
