"""The entities: what they show (snapshots) and what they do."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from syrupy.assertion import SnapshotAssertion

from custom_components.octoplugout.const import DOMAIN
from custom_components.octoplugout.octoprint import OctoPrintConnectionError

from .common import PRINTING, STATE_SENSOR, UUID, FakePlug, snapshot_entities, state_of

MODE = "select.octoplugout_octopi_local_mode"
POWER = "switch.octoplugout_octopi_local_power"
POWER_OFF_NOW = "button.octoplugout_octopi_local_power_off_now"
CANCEL = "button.octoplugout_octopi_local_cancel_power_off"


async def test_entities_while_idle(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    snapshot_entities(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.parametrize("printer_snapshot", [PRINTING])
async def test_entities_while_printing(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    snapshot_entities(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_one_device_per_entry(
    hass: HomeAssistant,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    devices = dr.async_entries_for_config_entry(device_registry, init_integration.entry_id)
    assert [
        {
            "identifiers": device.identifiers,
            "name": device.name,
            "manufacturer": device.manufacturer,
            "model": device.model,
            "configuration_url": device.configuration_url,
        }
        for device in devices
    ] == snapshot
    assert devices[0].identifiers == {(DOMAIN, UUID)}


async def test_octoprint_data_goes_unavailable_with_octoprint(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    freezer.tick(timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    for entity_id in (
        "sensor.octoplugout_octopi_local_hotend_temperature",
        "sensor.octoplugout_octopi_local_bed_temperature",
        "sensor.octoplugout_octopi_local_job_progress",
        "binary_sensor.octoplugout_octopi_local_job_in_progress",
    ):
        assert state_of(hass, entity_id) == STATE_UNAVAILABLE
    assert state_of(hass, "binary_sensor.octoplugout_octopi_local_octoprint_reachable") == STATE_OFF
    assert state_of(hass, STATE_SENSOR) == "waiting_for_octoprint"
    assert state_of(hass, MODE) == "after_print"
    assert state_of(hass, POWER) == STATE_ON


@pytest.mark.parametrize(
    ("option", "state"),
    [("always_on", "on"), ("off", "powering_off"), ("after_print", "idle")],
)
async def test_mode_select(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    option: str,
    state: str,
) -> None:
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: MODE, ATTR_OPTION: option},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, STATE_SENSOR) == state
    assert state_of(hass, MODE) == option


async def test_power_switch_off_is_the_safe_sequence_and_on_powers_up(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: POWER}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    mock_octoprint.async_shutdown_host.assert_called_once()
    assert state_of(hass, STATE_SENSOR) == "powering_off"
    assert state_of(hass, POWER) == STATE_ON
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("halted")
    for _ in range(10):
        freezer.tick(timedelta(seconds=2))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, POWER) == STATE_OFF
    assert plug.relay == STATE_OFF
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: POWER}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay == STATE_ON
    assert state_of(hass, STATE_SENSOR) == "waiting_for_octoprint"


async def test_power_off_and_cancel_buttons(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await init_integration.runtime_data.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: POWER_OFF_NOW}, blocking=True
    )
    assert state_of(hass, STATE_SENSOR) == "armed"
    assert state_of(hass, MODE) == "off"
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: CANCEL}, blocking=True
    )
    assert state_of(hass, STATE_SENSOR) == "print_started"
    assert state_of(hass, MODE) == "after_print"
    assert plug.relay_calls() == []


async def test_the_plugs_power_sensor_is_shown_on_the_device(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    hass.states.async_set("sensor.printer_plug_power", "12.5", {"unit_of_measurement": "W"})
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={**mock_config_entry.data, "power_entity": "sensor.printer_plug_power"},
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    power = "sensor.octoplugout_octopi_local_power"
    assert state_of(hass, power) == "12.5"
    hass.states.async_set("sensor.printer_plug_power", "0.4", {"unit_of_measurement": "W"})
    await hass.async_block_till_done()
    assert state_of(hass, power) == "0.4"
    hass.states.async_set("sensor.printer_plug_power", STATE_UNAVAILABLE)
    await hass.async_block_till_done()
    assert state_of(hass, power) == STATE_UNAVAILABLE
