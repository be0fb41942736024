"""Buttons: power off now (safely), cancel a pending power-off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import machine
from .coordinator import OctoPlugoutConfigEntry
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription, add_described_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutButtonDescription(OctoPlugoutEntityDescription, ButtonEntityDescription):
    """Which machine event a button sends."""

    event_fn: Callable[[float], machine.MachineEvent]


DESCRIPTIONS = (
    OctoPlugoutButtonDescription(
        key="power_off",
        translation_key="power_off",
        event_fn=lambda now: machine.ModeSelected(now, machine.Mode.OFF),
    ),
    OctoPlugoutButtonDescription(
        key="cancel_power_off",
        translation_key="cancel_power_off",
        event_fn=machine.CancelRequested,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons."""
    add_described_entities(entry, async_add_entities, OctoPlugoutButton, DESCRIPTIONS)


class OctoPlugoutButton(OctoPlugoutEntity, ButtonEntity):
    """A command button of the plug."""

    entity_description: OctoPlugoutButtonDescription

    async def async_press(self) -> None:
        """Send the button's command to the machine."""
        self.coordinator.async_command(self.entity_description.event_fn(self.coordinator.now()))
