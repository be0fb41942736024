"""The integration with an OctoPlugout plug's entities: every button row, LED, lock and power-up."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import CONF_LOCK, DOMAIN
from custom_components.octoplugout.machine import MachineData, Phase
from custom_components.octoplugout.octoprint import OctoPrintConnectionError, PrinterSnapshot
from custom_components.octoplugout.options import OPTION_DEFAULTS
from custom_components.octoplugout.runner import RELAY_OFF_SETTLE

from .common import DONE_HOT, IDLE, POWER_UP, PRINTING, FakePlug, advance, machine_state

GONE = None
# (state before, press, what OctoPrint answers, state after): the button table of the original
# as it plays out through Home Assistant, where a step the machine asks for (a fresh status, the
# halt request) really happens. The rows for halting the host pass too quickly to press in;
# tests/test_machine.py covers them.
ROWS: list[tuple[Phase, str, PrinterSnapshot | None, str]] = [
    (Phase.OFF, "short_press", GONE, "waiting_for_octoprint"),
    (Phase.OFF, "long_press", GONE, "on"),
    (Phase.ON, "short_press", IDLE, "idle"),
    (Phase.ON, "long_press", PRINTING, "armed"),
    (Phase.WAITING_FOR_OCTOPRINT, "short_press", GONE, "on"),
    # Improved: with OctoPrint silent, nothing is asked of the host and power stays on.
    (Phase.WAITING_FOR_OCTOPRINT, "long_press", GONE, "going_down"),
    (Phase.IDLE, "short_press", DONE_HOT, "on"),
    (Phase.IDLE, "long_press", DONE_HOT, "cooling"),
    (Phase.PRINT_STARTED, "short_press", PRINTING, "on"),
    (Phase.PRINT_STARTED, "long_press", PRINTING, "armed"),
    (Phase.ARMED, "short_press", PRINTING, "on"),
    (Phase.ARMED, "long_press", PRINTING, "armed"),
    (Phase.COOLING, "short_press", DONE_HOT, "on"),
    (Phase.COOLING, "long_press", DONE_HOT, "cooling"),
    (Phase.POWERING_OFF, "short_press", IDLE, "on"),
    (Phase.POWERING_OFF, "long_press", IDLE, "off"),
]


def saved_machine(state: Phase) -> dict[str, Any]:
    now = dt_util.utcnow().timestamp()
    job = state in (Phase.PRINT_STARTED, Phase.ARMED)
    facts: dict[str, Any] = {
        "relay_on": state != Phase.OFF,
        "reachable": state not in (Phase.OFF, Phase.WAITING_FOR_OCTOPRINT),
        "job_active": job,
        "job_started_at": now if job else None,
        "job_max_temperature": 210.0 if job else 0.0,
    }
    if state == Phase.POWERING_OFF:
        facts |= {"shutdown_sent_at": now, "user_power_off": True}
    return MachineData(state=state, since=now, **facts).as_dict()


@pytest.mark.parametrize(
    ("start", "press", "answer", "expected"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in ROWS],
)
async def test_button_rows(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    start: Phase,
    press: str,
    answer: PrinterSnapshot | None,
    expected: str,
) -> None:
    key = f"{DOMAIN}.{mock_config_entry.entry_id}"
    hass_storage[key] = {"version": 1, "key": key, "data": saved_machine(start)}
    if answer is None:
        mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("no host")
    else:
        mock_octoprint.async_get_snapshot.return_value = answer
    await plug.async_setup(relay_on=start != Phase.OFF)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == start.value
    assert plug.led == start.value

    plug.press(press)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert machine_state(hass) == expected
    assert plug.led == expected
    assert plug.relay == (STATE_OFF if expected == "off" else STATE_ON)
    job_or_halting = expected in ("print_started", "armed", "powering_off") or (
        answer is PRINTING and expected != "off"
    )
    assert plug.lock == (STATE_ON if job_or_halting else STATE_OFF)


async def set_up(
    hass: HomeAssistant, entry: MockConfigEntry, plug: FakePlug, startup_mode: str
) -> None:
    """OctoPlugout with the plug on, in the start-up mode given."""
    await plug.async_setup()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "startup_mode": startup_mode}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize(
    ("startup_mode", "stay_off"),
    [("off", STATE_ON), ("watching", STATE_OFF), ("always_on", STATE_OFF)],
)
async def test_the_start_up_mode_reaches_the_plug(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    startup_mode: str,
    stay_off: str,
) -> None:
    await set_up(hass, mock_config_entry, plug, startup_mode)
    assert plug.stay_off_at_power_up == stay_off
    assert plug.calls_of(POWER_UP) == (["turn_on"] if stay_off == STATE_ON else [])


async def test_the_plug_gets_its_power_up_setting_back_after_a_restart(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    await set_up(hass, mock_config_entry, plug, "off")
    # The plug restarts without its saved setting (a fresh flash): it comes back with it off.
    plug.power_up_switch.set(None)
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.power_up_switch.set(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.stay_off_at_power_up == STATE_ON
    assert plug.calls_of(POWER_UP) == ["turn_on", "turn_on"]


async def test_start_up_mode_off_powers_up_only_when_asked(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    # A plain switch (no power lock): OctoPlugout would put back a relay switched off during a
    # job in the other modes.
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        data={key: value for key, value in mock_config_entry.data.items() if key != CONF_LOCK},
        options=dict(OPTION_DEFAULTS),
    )
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await set_up(hass, entry, plug, "off")
    plug.press("short_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "print_started"
    # The mains go during the job, and come back with the relay off.
    plug.set_relay(None)
    await hass.async_block_till_done(wait_background_tasks=True)
    plug.set_relay(False)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, RELAY_OFF_SETTLE)
    assert machine_state(hass) == "off"
    # Home Assistant restarts meanwhile: still nothing powers up by itself.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert machine_state(hass) == "off"
    assert plug.relay_calls() == []
    # Somebody asks: power comes on, and stays on (start-up mode off means always on).
    plug.press("short_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert plug.relay_calls() == ["turn_on"]
    assert machine_state(hass) == "on"
