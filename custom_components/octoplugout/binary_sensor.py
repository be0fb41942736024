"""Binary sensors: is OctoPrint reachable, is a job in progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .controller import OctoPlugoutConfigEntry, OctoPlugoutController, PlugData
from .entity import OctoPlugoutEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutBinarySensorDescription(BinarySensorEntityDescription):
    """How one binary sensor reads the plug data."""

    is_on_fn: Callable[[PlugData], bool]
    available_fn: Callable[[PlugData], bool] = lambda _: True


DESCRIPTIONS = (
    OctoPlugoutBinarySensorDescription(
        key="octoprint_reachable",
        translation_key="octoprint_reachable",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda data: data.machine.reachable,
    ),
    OctoPlugoutBinarySensorDescription(
        key="job_in_progress",
        translation_key="job_in_progress",
        device_class=BinarySensorDeviceClass.RUNNING,
        is_on_fn=lambda data: data.machine.job_active,
        available_fn=lambda data: data.printer is not None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors."""
    async_add_entities(
        OctoPlugoutBinarySensor(entry.runtime_data, description) for description in DESCRIPTIONS
    )


class OctoPlugoutBinarySensor(OctoPlugoutEntity, BinarySensorEntity):
    """A binary sensor of the plug."""

    entity_description: OctoPlugoutBinarySensorDescription

    def __init__(
        self, controller: OctoPlugoutController, description: OctoPlugoutBinarySensorDescription
    ) -> None:
        """Keep the description."""
        super().__init__(controller, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Unavailable when the source is."""
        return self.entity_description.available_fn(self.coordinator.data)

    @property
    def is_on(self) -> bool:
        """The value."""
        return self.entity_description.is_on_fn(self.coordinator.data)
