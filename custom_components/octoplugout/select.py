"""The Mode select: always on, power off after print, or off."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import machine
from .controller import OctoPlugoutConfigEntry, OctoPlugoutController
from .entity import OctoPlugoutEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the Mode select."""
    async_add_entities([OctoPlugoutModeSelect(entry.runtime_data)])


class OctoPlugoutModeSelect(OctoPlugoutEntity, SelectEntity):
    """What the plug does: stay on, power off after the print, or power off now (safely)."""

    _attr_translation_key = "mode"

    def __init__(self, controller: OctoPlugoutController) -> None:
        """One per plug."""
        super().__init__(controller, "mode")
        self._attr_options = [mode.value for mode in machine.Mode]

    @property
    def current_option(self) -> str:
        """The user's current intent."""
        return machine.mode_of(self.coordinator.data.machine).value

    async def async_select_option(self, option: str) -> None:
        """Change the mode; off runs the safe power-off sequence."""
        self.coordinator.async_command(
            machine.ModeSelected(self.coordinator.now(), machine.Mode(option))
        )
