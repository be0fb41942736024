"""The Power switch: on powers up in the start-up mode, off runs the safe power-off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import (  # type: ignore[attr-defined, unused-ignore]
    SwitchDeviceClass,
    SwitchEntity,
    SwitchEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import machine
from .coordinator import OctoPlugoutConfigEntry
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription, add_described_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutSwitchDescription(OctoPlugoutEntityDescription, SwitchEntityDescription):
    """The Power switch's description."""


POWER = OctoPlugoutSwitchDescription(
    key="power",
    translation_key="power",
    device_class=SwitchDeviceClass.OUTLET,
    # Unknown while the relay's state is.
    available_fn=lambda data: data.machine.relay_on is not None,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the Power switch."""
    add_described_entities(entry, async_add_entities, OctoPlugoutPowerSwitch, [POWER])


class OctoPlugoutPowerSwitch(OctoPlugoutEntity, SwitchEntity):
    """Power for the printer and its host, switched safely."""

    entity_description: OctoPlugoutSwitchDescription

    @property
    def is_on(self) -> bool:
        """On unless the machine has powered everything off."""
        return self.coordinator.data.machine.state != machine.Phase.OFF

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Power on in the start-up mode."""
        self.coordinator.async_command(machine.PowerOnRequested(self.coordinator.now()))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Start the safe power-off: job end, cool-down, host halt, then power cut."""
        self.coordinator.async_command(
            machine.ModeSelected(self.coordinator.now(), machine.Mode.OFF)
        )
