"""The whole power-off cycle through Home Assistant, with OctoPrint mocked at its client."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.octoplugout.const import CONF_LOCK, DOMAIN, EVENT_OCTOPLUGOUT
from custom_components.octoplugout.host import Heater
from custom_components.octoplugout.machine import MachineData, Phase
from custom_components.octoplugout.octoprint import (
    CurrentUser,
    OctoPrintAuthError,
    OctoPrintConnectionError,
    OctoPrintNoShutdownCommandError,
    OctoPrintResponseError,
)
from custom_components.octoplugout.options import OPTION_DEFAULTS
from custom_components.octoplugout.runner import RELAY_OFF_SETTLE

from .common import (
    CYCLE_EVENTS,
    DONE_HOT,
    IDLE,
    LOCK,
    PRINTING,
    RELAY,
    FakePlug,
    advance,
    machine_state,
    wait_until,
)

POWER_OFF_TIME = "sensor.octoplugout_octopi_local_power_off_time"
POWER_SWITCH = "switch.octoplugout_octopi_local_power"


@pytest.mark.usefixtures("init_integration")
async def test_a_print_is_followed_by_a_safe_power_off(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    assert machine_state(hass) == "idle"
    assert plug.led == "idle"
    assert plug.lock == STATE_OFF

    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "print_started"
    assert plug.lock == STATE_ON
    assert plug.led == "print_started"
    mock_octoprint.async_send_message.assert_called_with("PRINT started")

    await advance(hass, freezer, 300)
    assert machine_state(hass) == "armed"

    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "cooling"
    mock_octoprint.async_set_heaters_off.assert_called_once_with(["tool0"])
    mock_octoprint.async_shutdown_host.assert_not_called()

    mock_octoprint.async_get_snapshot.return_value = IDLE
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "powering_off"
    mock_octoprint.async_shutdown_host.assert_called_once()
    assert plug.relay == STATE_ON
    assert plug.lock == STATE_ON

    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("halted")
    await advance(hass, freezer, 2)
    assert machine_state(hass) == "powering_off"
    assert plug.relay == STATE_ON
    power_off_time = hass.states.get(POWER_OFF_TIME)
    assert power_off_time is not None
    assert power_off_time.state != "unknown"

    await advance(hass, freezer, 15)
    assert machine_state(hass) == "off"
    assert plug.relay == STATE_OFF
    assert plug.lock == STATE_OFF
    assert plug.relay_calls() == ["turn_off"]
    assert [event.data["type"] for event in events] == CYCLE_EVENTS


@pytest.mark.usefixtures("init_integration")
async def test_a_hotend_heating_up_holds_the_halt_back(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, mock_octoprint: MagicMock, plug: FakePlug
) -> None:
    # After a print, someone starts the next one on the printer's own screen: OctoPrint shows
    # no job, and the hotend passes 45 C on its way to 210 C.
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 300)
    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "cooling"

    heating = replace(IDLE, tools={"tool0": Heater(45.0, 210.0)})
    mock_octoprint.async_get_snapshot.return_value = heating
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "cooling"
    mock_octoprint.async_shutdown_host.assert_not_called()

    mock_octoprint.async_get_snapshot.return_value = IDLE
    await advance(hass, freezer, 5)
    mock_octoprint.async_shutdown_host.assert_called_once()


@pytest.mark.usefixtures("init_integration")
async def test_octoprint_lost_during_a_job_keeps_power_on(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, mock_octoprint: MagicMock, plug: FakePlug
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 300)
    assert machine_state(hass) == "armed"
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("busy")
    for _ in range(100):
        await advance(hass, freezer, 60)
    assert machine_state(hass) == "armed"
    assert plug.relay == STATE_ON
    mock_octoprint.async_shutdown_host.assert_not_called()
    job = hass.states.get("binary_sensor.octoplugout_octopi_local_job_in_progress")
    assert job is not None
    assert job.state == STATE_UNAVAILABLE


@pytest.mark.usefixtures("init_integration")
async def test_lost_and_back_are_logged_once_each(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    for _ in range(5):
        await advance(hass, freezer, 15)
    mock_octoprint.async_get_snapshot.side_effect = None
    for _ in range(5):
        await advance(hass, freezer, 15)
    assert caplog.text.count("is not answering") == 1
    assert caplog.text.count("is answering again") == 1


@pytest.mark.usefixtures("init_integration")
async def test_an_odd_answer_changes_nothing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintResponseError("502 from proxy")
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "idle"
    reachable = hass.states.get("binary_sensor.octoplugout_octopi_local_octoprint_reachable")
    assert reachable is not None
    assert reachable.state == STATE_ON
    hotend = hass.states.get("sensor.octoplugout_octopi_local_hotend_temperature")
    assert hotend is not None
    assert hotend.state == STATE_UNAVAILABLE


async def test_a_revoked_key_asks_for_reauth_and_powers_nothing_off(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintAuthError("revoked")
    for _ in range(3):
        await advance(hass, freezer, 5)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == init_integration.entry_id
    assert machine_state(hass) == "idle"
    assert plug.relay_calls() == []


async def test_a_user_lacking_a_permission_gets_a_repair_issue_not_a_reauth_loop(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    issue_registry: ir.IssueRegistry,
) -> None:
    # The key logs in, but its user lost Status: every status request gets 403.
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintAuthError("403")
    mock_octoprint.async_get_current_user.return_value = CurrentUser(
        "operator", frozenset({"CONTROL", "SYSTEM"})
    )
    for _ in range(3):
        await advance(hass, freezer, 5)
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    issue = issue_registry.async_get_issue(
        DOMAIN, f"missing_permissions_{init_integration.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": init_integration.title,
        "user": "operator",
        "permissions": "Status",
    }
    assert plug.relay_calls() == []
    # Given the permission again, OctoPrint answers and the issue goes.
    mock_octoprint.async_get_snapshot.side_effect = None
    await advance(hass, freezer, 30)
    assert (
        issue_registry.async_get_issue(DOMAIN, f"missing_permissions_{init_integration.entry_id}")
        is None
    )


async def test_a_plain_switch_switched_off_during_a_job_is_turned_back_on(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    issue_registry: ir.IssueRegistry,
) -> None:
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_LOCK: None}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    plug.set_relay(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert plug.relay == STATE_ON
    assert plug.relay_calls() == ["turn_on"]
    assert machine_state(hass) == "print_started"
    problems = [event.data for event in events if event.data["type"] == "problem"]
    assert problems == [
        {
            "config_entry_id": mock_config_entry.entry_id,
            "type": "problem",
            "state": "print_started",
            "problem": "relay_off_during_job",
        }
    ]
    issue = issue_registry.async_get_issue(
        DOMAIN, f"relay_off_during_job_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {"title": mock_config_entry.title, "relay": RELAY}

    # A later job that runs to its end with power on shows the cause gone: so does the issue.
    mock_octoprint.async_get_snapshot.return_value = IDLE
    await advance(hass, freezer, 5)
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 300)
    assert machine_state(hass) == "armed"
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is not None
    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    await advance(hass, freezer, 5)
    assert machine_state(hass) == "cooling"
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is None


@pytest.mark.usefixtures("init_integration")
async def test_with_a_power_lock_a_relay_off_during_a_job_was_deliberate(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    issue_registry: ir.IssueRegistry,
) -> None:
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    assert plug.lock == STATE_ON
    # Only a 10 s hold on the plug gets past its power lock.
    plug.set_relay(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert plug.relay == STATE_OFF
    assert plug.relay_calls() == []
    assert machine_state(hass) == "off"
    assert [(event.data["type"], event.data.get("problem")) for event in events] == [
        ("print_started", None),
        ("problem", "relay_off_during_job"),
        ("powered_off", None),
    ]
    assert len(issue_registry.issues) == 0


@pytest.mark.usefixtures("init_integration")
async def test_relay_switched_by_hand_without_a_job_is_followed(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    plug.set_relay(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    # An off counts once it stays off.
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert machine_state(hass) == "off"
    plug.set_relay(True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "waiting_for_octoprint"
    assert plug.relay_calls() == []


async def test_a_relay_reading_off_for_a_moment_ends_no_power_off(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    # Home Assistant starts again while the Pi halts; the relay's integration reads off for a
    # moment before it reads on (a template not rendered yet, a plug reconnecting).
    now = dt_util.utcnow().timestamp()
    saved = MachineData(
        state=Phase.POWERING_OFF,
        since=now,
        relay_on=True,
        reachable=True,
        user_power_off=True,
        shutdown_sent_at=now,
    )
    key = f"{DOMAIN}.{mock_config_entry.entry_id}"
    hass_storage[key] = {"version": 1, "key": key, "data": saved.as_dict()}
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("halted")
    await plug.async_setup(relay_on=False)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.set_relay(True)
    await advance(hass, freezer, 1)
    assert machine_state(hass) == "powering_off"
    # And the power-off goes on: the host stays silent for the halt delay, then power goes.
    await advance(hass, freezer, OPTION_DEFAULTS["halt_delay"] + 10)
    assert machine_state(hass) == "off"
    assert plug.relay_calls() == ["turn_off"]


@pytest.mark.usefixtures("init_integration")
async def test_an_unavailable_relay_changes_nothing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    plug.set_relay(None)
    await advance(hass, freezer, 60)
    assert machine_state(hass) == "idle"
    power = hass.states.get("switch.octoplugout_octopi_local_power")
    assert power is not None
    assert power.state == STATE_UNAVAILABLE
    plug.set_relay(True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "idle"
    assert plug.relay_calls() == []


@pytest.mark.parametrize(
    ("presses", "expected", "relay_calls"),
    [
        (["short_press"], "on", []),
        (["short_press", "short_press"], "idle", []),
        (["long_press"], "powering_off", []),
        (["double_press"], "idle", []),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_button_presses(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    plug: FakePlug,
    presses: list[str],
    expected: str,
    relay_calls: list[str],
) -> None:
    for press in presses:
        freezer.tick(timedelta(seconds=1))
        plug.press(press)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == expected
    assert plug.relay_calls() == relay_calls


@pytest.mark.usefixtures("init_integration")
async def test_the_same_button_event_again_is_no_new_press(
    hass: HomeAssistant, plug: FakePlug
) -> None:
    plug.press("short_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "on"
    plug.button.set_available(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.button.set_available(True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "on"


@pytest.mark.usefixtures("init_integration")
async def test_led_follows_every_state(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, mock_octoprint: MagicMock, plug: FakePlug
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    plug.press("short_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    leds = [option for domain, option, _ in plug.calls if domain == "select"]
    assert leds == ["waiting_for_octoprint", "idle", "print_started", "on"]


async def _cut_while_octoprint_is_silent(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, plug: FakePlug
) -> None:
    """A forced power-off with OctoPrint silent: the relay-off goes out at once, and waits."""
    plug.relay_switch.hold = asyncio.Event()
    await hass.services.async_call(
        DOMAIN, "force_power_off", {"config_entry_id": entry.entry_id}, blocking=True
    )
    # Not until done: the held switch-off is a task that does not end before it is let go.
    await wait_until(lambda: ("switch", "turn_off", RELAY) in plug.calls)
    assert machine_state(hass) == "off"
    assert plug.relay == STATE_ON


async def test_a_relay_still_reading_on_after_the_cut_is_no_power_on(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    await advance(hass, freezer, 15)
    await _cut_while_octoprint_is_silent(hass, freezer, init_integration, plug)
    # The switch has not switched yet; its integration writes new attributes.
    hass.states.async_set(RELAY, STATE_ON, {"linkquality": 90})
    await asyncio.sleep(0)
    assert machine_state(hass) == "off"
    assert plug.relay_switch.hold is not None
    plug.relay_switch.hold.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay == STATE_OFF
    # The device's late report of its old state, then its new one.
    plug.set_relay(True)
    await advance(hass, freezer, RELAY_OFF_SETTLE / 4)
    plug.set_relay(False)
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert machine_state(hass) == "off"
    # Power on, pressed right after the cut, powers on.
    await hass.services.async_call("switch", "turn_on", {"entity_id": POWER_SWITCH}, blocking=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay == STATE_ON
    assert machine_state(hass) == "waiting_for_octoprint"


async def test_a_relay_switched_on_at_the_plug_right_after_the_cut_counts_once_it_stays(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    await advance(hass, freezer, 15)
    await _cut_while_octoprint_is_silent(hass, freezer, init_integration, plug)
    assert plug.relay_switch.hold is not None
    plug.relay_switch.hold.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.set_relay(True)
    await hass.async_block_till_done()
    assert machine_state(hass) == "off"
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert machine_state(hass) == "waiting_for_octoprint"


async def test_the_lock_is_released_before_the_relay_is_switched_off(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await advance(hass, freezer, 5)
    mock_octoprint.async_shutdown_host.side_effect = OctoPrintConnectionError("gone")
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    await hass.services.async_call(
        DOMAIN,
        "force_power_off",
        {"config_entry_id": init_integration.entry_id, "allow_job_loss": True},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, 15)
    switch_calls = [
        (service, entity) for domain, service, entity in plug.calls if domain == "switch"
    ]
    assert switch_calls == [
        ("turn_off", LOCK),
        ("turn_on", LOCK),
        ("turn_off", LOCK),
        ("turn_off", RELAY),
    ]


@pytest.mark.parametrize(
    ("failure", "cause", "repair"),
    [
        (OctoPrintAuthError("no SYSTEM"), "shutdown_not_permitted", True),
        (OctoPrintNoShutdownCommandError("404"), "no_shutdown_command", True),
        (OctoPrintResponseError("500"), "shutdown_error", False),
    ],
)
@pytest.mark.expected_error("OctoPrint (refused to|could not) halt its host")
async def test_a_refused_shutdown_keeps_power_on_and_names_the_cause(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    issue_registry: ir.IssueRegistry,
    failure: Exception,
    cause: str,
    repair: bool,
) -> None:
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    mock_octoprint.async_shutdown_host.side_effect = failure
    plug.press("long_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "on"
    assert plug.relay == STATE_ON
    problems = [event.data for event in events if event.data["type"] == "problem"]
    assert [(problem["problem"], problem["cause"]) for problem in problems] == [
        ("shutdown_refused", cause)
    ]
    issue_id = f"{cause}_{init_integration.entry_id}"
    assert (issue_registry.async_get_issue(DOMAIN, issue_id) is not None) is repair
    # Fixed, and a halt accepted: the issue goes.
    mock_octoprint.async_shutdown_host.side_effect = None
    plug.press("short_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.press("long_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "powering_off"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.usefixtures("init_integration")
async def test_a_failing_plug_service_is_logged_not_raised(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plug.relay_switch.fail = True
    mock_octoprint.async_shutdown_host.side_effect = OctoPrintConnectionError("gone")
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    await hass.services.async_call(
        DOMAIN,
        "force_power_off",
        {"config_entry_id": hass.config_entries.async_entries(DOMAIN)[0].entry_id},
        blocking=True,
    )
    await advance(hass, freezer, 2)
    await advance(hass, freezer, 15)
    assert "Could not call switch.turn_off for switch.printer_plug_relay" in caplog.text
    assert plug.relay == STATE_ON
