"""The printer host a config entry names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant

from .const import HOST_ENTITIES, HOST_MOONRAKER, host_type_of
from .entity_host import EntityHost, PrinterEntities
from .host import PrinterHost
from .moonraker_host import MoonrakerHost, moonraker_client
from .octoprint_host import OctoPrintHost, client_for_entry


def host_for_entry(hass: HomeAssistant, data: Mapping[str, Any]) -> PrinterHost:
    """OctoPrint, Moonraker or another integration's entities, by the entry's host type."""
    host_type = host_type_of(data)
    if host_type == HOST_MOONRAKER:
        return MoonrakerHost(moonraker_client(hass, data))
    if host_type == HOST_ENTITIES:
        return EntityHost(hass, PrinterEntities.from_data(data))
    return OctoPrintHost(client_for_entry(hass, data))
