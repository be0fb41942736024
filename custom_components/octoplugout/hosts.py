"""The printer host a config entry names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant

from .const import HOST_MOONRAKER, host_type_of
from .host import PrinterHost
from .moonraker_host import MoonrakerHost, moonraker_client
from .octoprint_host import OctoPrintHost, client_for_entry


def host_for_entry(hass: HomeAssistant, data: Mapping[str, Any]) -> PrinterHost:
    """OctoPrint or Moonraker, by the entry's host type."""
    if host_type_of(data) == HOST_MOONRAKER:
        return MoonrakerHost(moonraker_client(hass, data))
    return OctoPrintHost(client_for_entry(hass, data))
