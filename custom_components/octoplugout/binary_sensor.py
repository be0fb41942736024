"""Binary sensors: is the printer host reachable, is a job in progress."""

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

from .const import HOST_TYPES, host_type_of
from .coordinator import OctoPlugoutConfigEntry, PlugData
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription, add_described_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutBinarySensorDescription(
    OctoPlugoutEntityDescription, BinarySensorEntityDescription
):
    """How one binary sensor reads the plug data."""

    is_on_fn: Callable[[PlugData], bool]


def _reachable(host_type: str) -> OctoPlugoutBinarySensorDescription:
    """Whether the host answers, named after the host (entities keep OctoPrint's name)."""
    return OctoPlugoutBinarySensorDescription(
        key=f"{host_type}_reachable",
        translation_key=f"{host_type}_reachable",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda data: data.machine.reachable,
    )


REACHABLE = {host_type: _reachable(host_type) for host_type in HOST_TYPES}
DESCRIPTIONS = (
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
    descriptions = (REACHABLE[host_type_of(entry.data)], *DESCRIPTIONS)
    add_described_entities(entry, async_add_entities, OctoPlugoutBinarySensor, descriptions)


class OctoPlugoutBinarySensor(OctoPlugoutEntity, BinarySensorEntity):
    """A binary sensor of the plug."""

    entity_description: OctoPlugoutBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """The value."""
        return self.entity_description.is_on_fn(self.coordinator.data)
