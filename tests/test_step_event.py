"""The step event entity: what the automation editor offers as a trigger."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import EVENT_OCTOPLUGOUT
from custom_components.octoplugout.octoprint import (
    OctoPrintConnectionError,
    OctoPrintNoShutdownCommandError,
)

from .common import CYCLE_EVENTS as CYCLE, DONE_HOT, IDLE, PRINTING, FakePlug, advance

STEP_EVENT = "event.octoplugout_octopi_local_power_off_step"
# The entity's own attributes, beside what the step carries.
_OWN = {"event_type", "event_types", "friendly_name"}


@pytest.fixture
def fired(hass: HomeAssistant) -> list[tuple[str, dict[str, Any]]]:
    """Each firing of the step entity: its event type and the step's attributes."""
    seen: list[tuple[str, dict[str, Any]]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state != STATE_UNKNOWN and "event_type" in new.attributes:
            extra = {key: value for key, value in new.attributes.items() if key not in _OWN}
            seen.append((new.attributes["event_type"], extra))

    async_track_state_change_event(hass, [STEP_EVENT], record)
    return seen


@pytest.mark.usefixtures("init_integration")
async def test_each_step_of_a_cycle_fires_once_in_order(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    fired: list[tuple[str, dict[str, Any]]],
) -> None:
    step = hass.states.get(STEP_EVENT)
    assert step is not None
    assert step.state == STATE_UNKNOWN
    assert step.attributes["event_types"] == [*CYCLE, "cancelled", "problem"]
    for snapshot, seconds in ((PRINTING, 5), (PRINTING, 300), (DONE_HOT, 5), (IDLE, 5)):
        mock_octoprint.async_get_snapshot.return_value = snapshot
        await advance(hass, freezer, seconds)
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("halted")
    await advance(hass, freezer, 2)
    await advance(hass, freezer, 15)
    assert [event_type for event_type, _ in fired] == CYCLE
    assert [extra["state"] for _, extra in fired] == [
        "print_started",
        "armed",
        "cooling",
        "powering_off",
        "powering_off",
        "off",
    ]


@pytest.mark.expected_error("OctoPrint could not halt its host")
async def test_a_problem_carries_what_went_wrong(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    fired: list[tuple[str, dict[str, Any]]],
) -> None:
    mock_octoprint.async_shutdown_host.side_effect = OctoPrintNoShutdownCommandError("404")
    plug.press("long_press")
    await hass.async_block_till_done(wait_background_tasks=True)
    problems = [extra for event_type, extra in fired if event_type == "problem"]
    assert problems == [
        {"state": "on", "problem": "shutdown_refused", "cause": "no_shutdown_command"}
    ]


@pytest.mark.usefixtures("init_integration")
async def test_another_plugs_steps_do_not_fire_it(
    hass: HomeAssistant, fired: list[tuple[str, dict[str, Any]]]
) -> None:
    hass.bus.async_fire(
        EVENT_OCTOPLUGOUT,
        {"config_entry_id": "another", "type": "print_started", "state": "print_started"},
    )
    await hass.async_block_till_done()
    assert fired == []
