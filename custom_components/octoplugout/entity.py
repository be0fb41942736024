"""The base of every OctoPlugout entity: a thin view over the controller."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .controller import OctoPlugoutController


class OctoPlugoutEntity(CoordinatorEntity[OctoPlugoutController]):
    """One entity of the OctoPlugout device."""

    _attr_has_entity_name = True

    def __init__(self, controller: OctoPlugoutController, key: str) -> None:
        """Name the entity by its key; one device per config entry."""
        super().__init__(controller)
        entry = controller.config_entry
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, str(entry.unique_id))},
            name=entry.title,
            manufacturer="OctoPlugout",
            model=controller.host.model,
            configuration_url=controller.host.url,
        )

    @property
    def available(self) -> bool:
        """The machine is always known; sources that can vanish override this."""
        return True
