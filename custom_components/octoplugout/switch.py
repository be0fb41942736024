"""The Power switch: on powers up in the start-up mode, off runs the safe power-off."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import (  # type: ignore[attr-defined, unused-ignore]
    SwitchDeviceClass,
    SwitchEntity,
)
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
    """Add the Power switch."""
    async_add_entities([OctoPlugoutPowerSwitch(entry.runtime_data)])


class OctoPlugoutPowerSwitch(OctoPlugoutEntity, SwitchEntity):
    """Power for the printer and its host, switched safely."""

    _attr_translation_key = "power"
    _attr_device_class = SwitchDeviceClass.OUTLET

    def __init__(self, controller: OctoPlugoutController) -> None:
        """One per plug."""
        super().__init__(controller, "power")

    @property
    def available(self) -> bool:
        """Unavailable while the relay's state is unknown."""
        return self.coordinator.data.machine.relay_on is not None

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
