"""Sensors: the machine's state, temperatures, job progress, power-off time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, PERCENTAGE, UnitOfPower, UnitOfTemperature
from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    State as HAState,
    callback,
)
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event

from .const import CONF_POWER_SENSOR
from .coordinator import OctoPlugoutConfigEntry, OctoPlugoutCoordinator, PlugData
from .entity import OctoPlugoutEntity, OctoPlugoutEntityDescription
from .machine import Phase

PARALLEL_UPDATES = 0


def _hotend(data: PlugData) -> float | None:
    return data.printer.for_machine().hottest_tool if data.printer else None


def _bed(data: PlugData) -> float | None:
    if data.printer is None or data.printer.bed is None:
        return None
    return data.printer.bed.actual


def _progress(data: PlugData) -> float | None:
    return data.printer.progress if data.printer else None


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutSensorDescription(OctoPlugoutEntityDescription, SensorEntityDescription):
    """How one sensor reads the plug data."""

    value_fn: Callable[[PlugData], str | float | datetime | None]


DESCRIPTIONS = (
    OctoPlugoutSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in Phase],
        value_fn=lambda data: data.machine.state.value,
    ),
    OctoPlugoutSensorDescription(
        key="hotend_temperature",
        translation_key="hotend_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=_hotend,
        available_fn=lambda data: _hotend(data) is not None,
    ),
    OctoPlugoutSensorDescription(
        key="bed_temperature",
        translation_key="bed_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=_bed,
        available_fn=lambda data: _bed(data) is not None,
    ),
    OctoPlugoutSensorDescription(
        key="job_progress",
        translation_key="job_progress",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=_progress,
        available_fn=lambda data: data.printer is not None,
    ),
    OctoPlugoutSensorDescription(
        key="power_off_time",
        translation_key="power_off_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda data: data.power_off_at,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: OctoPlugoutConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors, and the plug's power when a power sensor was chosen."""
    coordinator = entry.runtime_data
    entities: list[SensorEntity] = [
        OctoPlugoutSensor(coordinator, description) for description in DESCRIPTIONS
    ]
    if source := entry.data.get(CONF_POWER_SENSOR):
        entities.append(OctoPlugoutPowerSensor(coordinator, source))
    async_add_entities(entities)


class OctoPlugoutSensor(OctoPlugoutEntity, SensorEntity):
    """A sensor of the plug."""

    entity_description: OctoPlugoutSensorDescription

    @property
    def native_value(self) -> str | float | datetime | None:
        """The value."""
        return self.entity_description.value_fn(self.coordinator.data)


@dataclass(frozen=True, kw_only=True)
class OctoPlugoutPowerDescription(OctoPlugoutEntityDescription, SensorEntityDescription):
    """The plug's power draw: its value follows another sensor, not the plug data."""


POWER = OctoPlugoutPowerDescription(
    key="power",
    translation_key="power",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
)


class OctoPlugoutPowerSensor(OctoPlugoutEntity, SensorEntity):
    """The plug's power draw, from the chosen power sensor, on the OctoPlugout device."""

    entity_description: OctoPlugoutPowerDescription

    def __init__(self, coordinator: OctoPlugoutCoordinator, source: str) -> None:
        """Follow ``source``."""
        super().__init__(coordinator, POWER)
        self._source = source

    async def async_added_to_hass(self) -> None:
        """Follow the source sensor."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_track_state_change_event(self.hass, [self._source], self._source_changed)
        )
        self._copy(self.hass.states.get(self._source))

    @callback
    def _source_changed(self, event: Event[EventStateChangedData]) -> None:
        self._copy(event.data["new_state"])
        self.async_write_ha_state()

    @callback
    def _copy(self, state: HAState | None) -> None:
        try:
            value = float(state.state) if state else None
        except ValueError:
            value = None
        self._attr_available = value is not None
        self._attr_native_value = value
        if state is not None and (unit := state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)):
            self._attr_native_unit_of_measurement = unit

    @property
    def available(self) -> bool:
        """Unavailable while the source is."""
        return self._attr_available
