"""The Mode select: always on, power off after print, or off."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import machine
from .coordinator import OctoPlugoutConfigEntry
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription, add_described_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutSelectDescription(OctoPlugoutEntityDescription, SelectEntityDescription):
    """The Mode select's description."""


MODE = OctoPlugoutSelectDescription(
    key="mode",
    translation_key="mode",
    options=[mode.value for mode in machine.Mode],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the Mode select."""
    add_described_entities(entry, async_add_entities, OctoPlugoutModeSelect, [MODE])


class OctoPlugoutModeSelect(OctoPlugoutEntity, SelectEntity):
    """What the plug does: stay on, power off after the print, or power off now (safely)."""

    entity_description: OctoPlugoutSelectDescription

    @property
    def current_option(self) -> str:
        """The user's current intent."""
        return machine.mode_of(self.coordinator.data.machine).value

    async def async_select_option(self, option: str) -> None:
        """Change the mode; off runs the safe power-off sequence."""
        self.coordinator.async_command(
            machine.ModeSelected(self.coordinator.now(), machine.Mode(option))
        )
