"""The base of every OctoPlugout entity: a thin view over ``coordinator.data``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import OctoPlugoutConfigEntry, OctoPlugoutCoordinator, PlugData


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutEntityDescription(EntityDescription):
    """What every OctoPlugout entity's description says: when the entity has a value."""

    available_fn: Callable[[PlugData], bool] = lambda _: True


class OctoPlugoutEntity(CoordinatorEntity[OctoPlugoutCoordinator]):
    """One entity of the OctoPlugout device, described by its description."""

    _attr_has_entity_name = True
    entity_description: OctoPlugoutEntityDescription

    def __init__(
        self, coordinator: OctoPlugoutCoordinator, description: OctoPlugoutEntityDescription
    ) -> None:
        """Name the entity by its description's key; one device per config entry."""
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, str(entry.unique_id))},
            name=entry.title,
            manufacturer="OctoPlugout",
            model=coordinator.host.model,
            configuration_url=coordinator.host.url,
        )

    @property
    def available(self) -> bool:
        """The machine is always known; what comes from the host or the plug can vanish.

        The coordinator's own success is not asked: a host that does not answer is news for
        the machine (it waits), not a failure of OctoPlugout's entities.
        """
        return self.entity_description.available_fn(self.coordinator.data)


def add_described_entities[DescriptionT: OctoPlugoutEntityDescription](
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[OctoPlugoutCoordinator, DescriptionT], OctoPlugoutEntity],
    descriptions: Iterable[DescriptionT],
) -> None:
    """Add one ``entity_class`` entity per description to the entry's device."""
    async_add_entities(
        entity_class(entry.runtime_data, description) for description in descriptions
    )
