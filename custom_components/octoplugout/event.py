"""The steps of a power-off as an event entity: the automation editor offers it as a trigger.

It repeats what the ``octoplugout_event`` bus event says (that event stays, for automations
written before), so that a step is picked in the editor instead of typed in YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EVENT_OCTOPLUGOUT
from .coordinator import OctoPlugoutConfigEntry
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription, add_described_entities
from .machine import EventKind

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutEventDescription(OctoPlugoutEntityDescription, EventEntityDescription):
    """The Power-off step's description."""


STEP = OctoPlugoutEventDescription(
    key="step",
    translation_key="step",
    event_types=[kind.value for kind in EventKind],
)
# What the bus event carries that the entity's own attributes already say.
_NOT_REPEATED = ("config_entry_id", "type")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the step event entity."""
    add_described_entities(entry, async_add_entities, OctoPlugoutStepEvent, [STEP])


class OctoPlugoutStepEvent(OctoPlugoutEntity, EventEntity):
    """Fires at each step OctoPlugout reports, with what it reports as attributes."""

    entity_description: OctoPlugoutEventDescription

    async def async_added_to_hass(self) -> None:
        """Follow this entry's steps."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hass.bus.async_listen(EVENT_OCTOPLUGOUT, self._on_step))

    @callback
    def _on_step(self, event: Event[dict[str, Any]]) -> None:
        if event.data.get("config_entry_id") != self.coordinator.config_entry.entry_id:
            return
        attributes = {key: value for key, value in event.data.items() if key not in _NOT_REPEATED}
        self._trigger_event(str(event.data["type"]), attributes)
        self.async_write_ha_state()
