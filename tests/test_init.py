"""Setting up, unloading, restarting: the machine resumes where it was."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.octoplugout.const import CONF_RELAY, DOMAIN
from custom_components.octoplugout.host import Heater
from custom_components.octoplugout.machine import MachineData, Phase
from custom_components.octoplugout.octoprint import OctoPrintAuthError, OctoPrintConnectionError
from custom_components.octoplugout.options import OPTION_DEFAULTS

from .common import IDLE, PRINTING, RELAY, FakePlug, machine_state


def storage_key(entry: MockConfigEntry) -> str:
    return f"{DOMAIN}.{entry.entry_id}"


def saved(state: Phase, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"relay_on": True, **changes}
    return MachineData(state=state, since=dt_util.utcnow().timestamp(), **fields).as_dict()


async def setup(
    hass: HomeAssistant, entry: MockConfigEntry, plug: FakePlug, relay_on: bool = True
) -> None:
    await plug.async_setup(relay_on=relay_on)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_setup_and_unload_save_the_machine(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    init_integration: MockConfigEntry,
) -> None:
    assert init_integration.state is ConfigEntryState.LOADED
    assert machine_state(hass) == "idle"
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert hass_storage[storage_key(init_integration)]["data"]["state"] == "idle"


async def test_a_change_is_written_at_once_and_readings_within_a_second(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
) -> None:
    # A killed Home Assistant keeps only what was written: a new state must be written soon,
    # even while every status (several a second while printing) brings a new reading.
    coordinator = init_integration.runtime_data

    def saved() -> dict[str, Any]:
        return dict(hass_storage[storage_key(init_integration)]["data"])

    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await coordinator.async_refresh()
    async_fire_time_changed(hass)  # what is due now, and no more
    await hass.async_block_till_done(wait_background_tasks=True)
    # A new state is written at once, before any time passed.
    assert saved()["state"] == "print_started"
    for tick in range(10):
        tool = Heater(200.0 + tick, 210.0)
        mock_octoprint.async_get_snapshot.return_value = replace(PRINTING, tools={"tool0": tool})
        await coordinator.async_refresh()
        freezer.tick(timedelta(seconds=0.3))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        if tick >= 4:
            # New readings alone are written within a second.
            assert saved()["hottest_tool"] >= 200.0 + tick - 4


async def test_an_unreachable_octoprint_does_not_fail_setup(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_current_user.side_effect = OctoPrintConnectionError("host off")
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("host off")
    await setup(hass, mock_config_entry, plug)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert machine_state(hass) == "waiting_for_octoprint"


async def test_a_rejected_key_at_setup_starts_reauth(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_current_user.side_effect = OctoPrintAuthError("revoked")
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    # Why it failed shows in the user's language.
    assert mock_config_entry.error_reason_translation_key == "api_key_rejected"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert plug.relay == STATE_ON


async def test_a_plug_that_is_off_at_first_start_stays_off(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("no power")
    await setup(hass, mock_config_entry, plug, relay_on=False)
    assert machine_state(hass) == "off"
    assert plug.relay_calls() == []


@pytest.mark.parametrize("state", list(Phase))
async def test_restart_resumes_the_saved_state(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    state: Phase,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("busy")
    job = state in (Phase.PRINT_STARTED, Phase.ARMED)
    hass_storage[storage_key(mock_config_entry)] = {
        "version": 1,
        "key": storage_key(mock_config_entry),
        "data": saved(state, job_active=job, relay_on=state != Phase.OFF),
    }
    await setup(hass, mock_config_entry, plug, relay_on=state != Phase.OFF)
    # Right after a restart nothing is cut, whatever the saved state. An unanswered OctoPrint
    # leaves every state as it was, except that idle goes back to waiting for it; a halt that
    # was due is asked for again only once OctoPrint answers (a job may have started since).
    expected = {Phase.IDLE: Phase.WAITING_FOR_OCTOPRINT}.get(state, state)
    assert machine_state(hass) == expected.value
    assert plug.relay_calls() == []
    mock_octoprint.async_shutdown_host.assert_not_called()


async def test_restart_during_the_power_off_countdown_waits_for_the_host_again(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    now = dt_util.utcnow().timestamp()
    hass_storage[storage_key(mock_config_entry)] = {
        "version": 1,
        "key": storage_key(mock_config_entry),
        "data": saved(
            Phase.POWERING_OFF,
            reachable=False,
            shutdown_sent_at=now - 30,
            host_gone_since=now - 600,
            user_power_off=True,
        ),
    }
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("halted")
    await setup(hass, mock_config_entry, plug)
    assert machine_state(hass) == "powering_off"
    assert plug.relay == STATE_ON
    freezer.tick(timedelta(seconds=10))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay == STATE_ON
    freezer.tick(timedelta(seconds=10))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay == STATE_OFF
    assert machine_state(hass) == "off"


async def test_a_reload_keeps_the_job_timer(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    freezer.tick(timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "print_started"
    freezer.tick(timedelta(seconds=200))
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "print_started"
    # 305 s after the job began (over the minimum job time only if the reload kept its clock).
    freezer.tick(timedelta(seconds=100))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "armed"


async def test_a_job_that_goes_silent_does_not_arm_on_its_clock(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    freezer.tick(timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "print_started"
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("busy")
    for _ in range(60):
        freezer.tick(timedelta(seconds=10))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "print_started"
    # Meanwhile the job was cancelled: OctoPrint answers idle and cold, nothing is halted.
    mock_octoprint.async_get_snapshot.side_effect = None
    mock_octoprint.async_get_snapshot.return_value = IDLE
    freezer.tick(timedelta(seconds=10))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "idle"
    mock_octoprint.async_shutdown_host.assert_not_called()
    assert plug.relay == STATE_ON


async def test_new_options_take_effect_through_one_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, reloads: MagicMock
) -> None:
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    options = {**OPTION_DEFAULTS, "halt_delay": 99, "startup_mode": "always_on"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert reloads.call_count == 1
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.settings.halt_delay == 99


async def test_the_same_options_again_reload_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry, reloads: MagicMock
) -> None:
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], dict(init_integration.options)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert reloads.call_count == 0


async def test_reauth_reloads_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, reloads: MagicMock
) -> None:
    result = await init_integration.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "api_key"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "NEWKEY"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert reloads.call_count == 1
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.data[CONF_API_KEY] == "NEWKEY"


async def test_reconfigure_reloads_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, reloads: MagicMock
) -> None:
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_HOST: "octopi.lan",
            CONF_PORT: 8080,
            CONF_PATH: "",
            CONF_SSL: False,
            CONF_VERIFY_SSL: True,
            CONF_RELAY: RELAY,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert reloads.call_count == 1
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.data[CONF_PORT] == 8080
