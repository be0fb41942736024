"""Diagnostics for OctoPlugout, with the API key redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .coordinator import OctoPlugoutConfigEntry

TO_REDACT = {CONF_API_KEY}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: OctoPlugoutConfigEntry
) -> dict[str, Any]:
    """The entry, the machine, the push socket and the host's last status."""
    coordinator = entry.runtime_data
    data = coordinator.data
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "settings": asdict(coordinator.settings),
        "machine": data.machine.as_dict(),
        "push_socket_connected": coordinator.push_connected,
        "printer": asdict(data.printer) if data.printer else None,
    }
