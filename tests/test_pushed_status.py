"""What the integration takes from OctoPrint's push socket, with the socket scripted.

OctoPrint can push a state update it held back from before its latest change: right after a
print starts, one update may still say the printer is idle. A job therefore starts or ends
only on a status that was asked for; pushed updates bring everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
import json
from typing import Any
from unittest.mock import MagicMock

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.octoplugout.const import DOMAIN
from custom_components.octoplugout.coordinator import (
    PUSH_REFUSALS_BEFORE_ISSUE,
    OctoPlugoutCoordinator,
)
from custom_components.octoplugout.octoprint import OctoPrintPushRefusedError

from .common import DONE_HOT, IDLE, PRINTING, FakePlug, advance, machine_state

OPERATIONAL = {"text": "Operational", "flags": {"operational": True, "ready": True}}
PRINTING_STATE = {"text": "Printing", "flags": {"operational": True, "printing": True}}
HOT = {"time": 1, "tool0": {"actual": 205.0, "target": 210.0}, "bed": {"actual": 60.0}}


@dataclass(frozen=True)
class Frame:
    """One text frame, as the listener reads it."""

    data: str
    type: aiohttp.WSMsgType = aiohttp.WSMsgType.TEXT

    def json(self) -> Any:
        return json.loads(self.data)


class ScriptedSocket:
    """A push socket that says what the test tells it to, when it tells it."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.sent: list[object] = []

    def say(self, message: dict[str, object]) -> None:
        self._frames.put_nowait(Frame(json.dumps(message)))

    def all_read(self) -> bool:
        return self._frames.empty()

    async def send_json(self, message: object) -> None:
        self.sent.append(message)

    def __aiter__(self) -> ScriptedSocket:
        return self

    async def __anext__(self) -> Frame:
        return await self._frames.get()


@pytest.fixture
def push_socket(mock_octoprint: MagicMock) -> ScriptedSocket:
    """OctoPrint's client opens the scripted socket instead of a real one."""
    socket = ScriptedSocket()

    @asynccontextmanager
    async def open_socket(heartbeat: float) -> AsyncIterator[ScriptedSocket]:
        yield socket

    mock_octoprint.async_passive_login.side_effect = None
    mock_octoprint.async_passive_login.return_value = ("admin", "SESSION")
    mock_octoprint.async_push_socket = open_socket
    return socket


def current(state: dict[str, object], temps: list[object] | None = None) -> dict[str, object]:
    return {"current": {"state": state, "job": {}, "progress": {}, "temps": temps or []}}


async def settle(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, condition: Callable[[], bool]
) -> None:
    """Let fake time pass in small steps until ``condition`` holds (the socket runs on)."""
    for _ in range(50):
        await hass.async_block_till_done()
        if condition():
            return
        freezer.tick(timedelta(seconds=0.1))
        async_fire_time_changed(hass)
    raise AssertionError("the integration never got there")


@pytest.fixture
async def pushed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    push_socket: ScriptedSocket,
) -> OctoPlugoutCoordinator:
    """The integration set up with the scripted socket open and OctoPrint idle."""
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    coordinator: OctoPlugoutCoordinator = mock_config_entry.runtime_data
    push_socket.say({"history": {"state": OPERATIONAL, "temps": []}})
    await settle(hass, freezer, lambda: coordinator.push_connected)
    assert machine_state(hass) == "idle"
    return coordinator


async def test_a_held_back_idle_update_does_not_end_a_started_print(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    push_socket.say({"event": {"type": "PrintStarted", "payload": {}}})
    await settle(hass, freezer, lambda: machine_state(hass) == "print_started")

    polls = mock_octoprint.async_get_snapshot.call_count
    push_socket.say(current(OPERATIONAL))
    # The idle update is checked with a poll, which finds the print running.
    await settle(hass, freezer, lambda: mock_octoprint.async_get_snapshot.call_count > polls)
    assert machine_state(hass) == "print_started"

    # Updates that agree with the job bring their news without a poll.
    polls = mock_octoprint.async_get_snapshot.call_count
    push_socket.say(current(PRINTING_STATE, [HOT]))
    await settle(
        hass, freezer, lambda: pushed.data.printer is not None and pushed.data.printer.hotends != {}
    )
    assert pushed.data.printer.hotends["tool0"].actual == 205.0
    assert mock_octoprint.async_get_snapshot.call_count == polls

    # When the print really ends, the poll says so.
    mock_octoprint.async_get_snapshot.return_value = IDLE
    push_socket.say(current(OPERATIONAL))
    await settle(hass, freezer, lambda: machine_state(hass) == "idle")


async def test_a_held_back_printing_update_does_not_start_a_job(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    polls = mock_octoprint.async_get_snapshot.call_count
    push_socket.say(current(PRINTING_STATE))
    await settle(hass, freezer, lambda: mock_octoprint.async_get_snapshot.call_count > polls)
    assert machine_state(hass) == "idle"


async def test_a_printer_state_change_asks_for_the_status_at_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    # OctoPrint says PrintDone while it still finishes; the state change after it is the end.
    polls = mock_octoprint.async_get_snapshot.call_count
    push_socket.say(
        {"event": {"type": "PrinterStateChanged", "payload": {"state_string": "Operational"}}}
    )
    await settle(hass, freezer, lambda: mock_octoprint.async_get_snapshot.call_count > polls)


async def test_a_record_with_only_some_heaters_erases_no_reading(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    two_hot = {"time": 1, "tool0": {"actual": 40.0, "target": 0.0}, "tool1": {"actual": 180.0}}
    push_socket.say(current(OPERATIONAL, [two_hot]))
    await settle(hass, freezer, lambda: pushed.runner.data.hottest_tool == 180.0)
    # Only tool0 and the bed in the next record: tool1's 180 C still counts.
    push_socket.say(current(OPERATIONAL, [{"time": 2, "tool0": {"actual": 39.0}}]))
    push_socket.say(current(OPERATIONAL, [{"time": 3, "bed": {"actual": 50.0}}]))
    await settle(hass, freezer, lambda: pushed.runner.data.bed_temperature == 50.0)
    assert pushed.runner.data.hottest_tool == 180.0


@pytest.mark.parametrize(("status", "told"), [(400, True), (200, True), (502, False)])
async def test_a_proxy_without_websockets_is_told_once_and_polled(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    push_socket: ScriptedSocket,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    status: int,
    told: bool,
) -> None:
    """nginx without its websocket lines hands the socket's request to OctoPrint as plain HTTP
    (400); another proxy shows a page (200). A 502 is the proxy's own error: nothing to fix.
    """
    answer: list[int | None] = [status]
    attempts: list[bool] = []

    @asynccontextmanager
    async def open_socket(heartbeat: float) -> AsyncIterator[ScriptedSocket]:
        attempts.append(answer[0] is None)
        if answer[0] is not None:
            raise OctoPrintPushRefusedError(answer[0])
        yield push_socket

    mock_octoprint.async_push_socket = open_socket
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    coordinator: OctoPlugoutCoordinator = mock_config_entry.runtime_data
    issue_id = f"push_socket_blocked_{mock_config_entry.entry_id}"

    seen: list[tuple[int, bool]] = []
    for _ in range(60):
        if len(attempts) >= PUSH_REFUSALS_BEFORE_ISSUE + 3:
            break
        polls = mock_octoprint.async_get_snapshot.call_count
        await advance(hass, freezer, 15)
        assert mock_octoprint.async_get_snapshot.call_count > polls
        seen.append((len(attempts), issue_registry.async_get_issue(DOMAIN, issue_id) is not None))
    # Told at the third refusal in a row, not before; once, however many follow.
    assert all(shown is (told and tries >= PUSH_REFUSALS_BEFORE_ISSUE) for tries, shown in seen)
    assert caplog.text.count("does not pass websockets") == (1 if told else 0)
    if told:
        issue = issue_registry.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.severity is ir.IssueSeverity.WARNING
        assert issue.translation_placeholders == {
            "title": mock_config_entry.title,
            "url": "http://octopi.local",
            "status": str(status),
        }
    assert machine_state(hass) == "idle"

    # The proxy passes websockets again: the socket opens and the issue goes.
    answer[0] = None
    push_socket.say({"history": {"state": OPERATIONAL, "temps": []}})
    # The open socket runs on: time passes without waiting for it to end.
    freezer.tick(timedelta(seconds=300))
    await settle(hass, freezer, lambda: coordinator.push_connected)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def print_until_armed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
) -> None:
    """A print starts and runs out its clock: the power-off is armed."""
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    push_socket.say({"event": {"type": "PrintStarted", "payload": {}}})
    await settle(hass, freezer, lambda: machine_state(hass) == "print_started")
    # The job's clock runs out (the socket runs on: no waiting for background tasks).
    freezer.tick(timedelta(seconds=400))
    async_fire_time_changed(hass)
    await settle(hass, freezer, lambda: machine_state(hass) == "armed")


async def print_until_cooling(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    while_armed: Callable[[], object] | None = None,
) -> object:
    """A print starts, runs out its clock (armed) and ends hot: the cool-down begins.

    Returns what ``while_armed`` gave while the power-off was armed.
    """
    await print_until_armed(hass, freezer, mock_octoprint, push_socket)
    seen = while_armed() if while_armed else None
    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    push_socket.say({"event": {"type": "PrintDone", "payload": {}}})
    await settle(hass, freezer, lambda: machine_state(hass) == "cooling")
    return seen


async def test_the_socket_is_asked_for_updates_as_often_as_the_state_needs(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    # Idle: only events decide, an update every 10 s is plenty.
    await settle(hass, freezer, lambda: {"throttle": 20} in push_socket.sent)
    # A job ends: the cool-down decides on readings as they come.
    sent_while_armed = await print_until_cooling(
        hass, freezer, mock_octoprint, push_socket, while_armed=lambda: push_socket.sent[-1]
    )
    assert sent_while_armed == {"throttle": 20}
    await settle(hass, freezer, lambda: push_socket.sent[-1] == {"throttle": 1})


async def test_a_cool_pushed_reading_gets_its_answer_at_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
) -> None:
    """The halt request waits for an answer asked for after a pushed reading showed the hotend
    cool; that refresh, asked for right after the last poll, must not be dropped when the
    reading is published."""
    await print_until_cooling(hass, freezer, mock_octoprint, push_socket)
    mock_octoprint.async_get_snapshot.return_value = IDLE
    cool = {"time": 9, "tool0": {"actual": 30.0, "target": 0.0}, "bed": {"actual": 30.0}}
    push_socket.say(current(OPERATIONAL, [cool]))
    for _ in range(10):
        await hass.async_block_till_done()
        if mock_octoprint.async_shutdown_host.await_count:
            break
        freezer.tick(timedelta(seconds=0.1))
        async_fire_time_changed(hass)
    # Within a second, not at the next scheduled poll (5 s).
    assert mock_octoprint.async_shutdown_host.await_count == 1


class HeldPoll:
    """OctoPrint's status requests, each held until the test lets its answer go."""

    def __init__(self, mock_octoprint: MagicMock) -> None:
        self.asked = 0
        self.under_way = 0
        self._answers: asyncio.Queue[object] = asyncio.Queue()
        self._free: object = None
        mock_octoprint.async_get_snapshot.side_effect = self._snapshot

    async def _snapshot(self, **_: object) -> object:
        self.asked += 1
        if self._free is not None:
            return self._free
        self.under_way += 1
        try:
            return await self._answers.get()
        finally:
            self.under_way -= 1

    def answer(self, snapshot: object) -> None:
        self._answers.put_nowait(snapshot)

    def let_all_go(self, snapshot: object) -> None:
        """Every request under way, and every later one, gets ``snapshot`` at once."""
        self._free = snapshot
        for _ in range(self.under_way):
            self.answer(snapshot)


@pytest.fixture
def hold_polls(mock_octoprint: MagicMock) -> Iterator[Callable[[], HeldPoll]]:
    """Hold OctoPrint's status requests from when the test asks; none stays held after it."""
    held: list[HeldPoll] = []

    def hold() -> HeldPoll:
        held.append(HeldPoll(mock_octoprint))
        return held[-1]

    yield hold
    for poll in held:
        poll.let_all_go(IDLE)


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run, without fake time passing, until ``condition`` holds.

    (Home Assistant's ``async_block_till_done`` would wait for the held request.)
    """
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the integration never got there")


async def test_a_push_not_taken_during_a_poll_waits_for_that_poll(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
    hold_polls: Callable[[], HeldPoll],
) -> None:
    """The print starts; its first pushed update comes while the poll the event asked for is
    under way: that poll's answer settles it when it agrees, with no second request (one
    asked for right after, to be sure, would be a request per print for nothing)."""
    held = hold_polls()
    polls = mock_octoprint.async_get_snapshot.call_count
    push_socket.say({"event": {"type": "PrintStarted", "payload": {}}})
    await until(lambda: held.under_way == 1)
    freezer.tick(timedelta(seconds=0.01))
    push_socket.say(current(PRINTING_STATE, [HOT]))
    await until(lambda: pushed.runner.data.job_hinted)
    held.answer(PRINTING)
    await until(lambda: machine_state(hass) == "print_started")
    # Time passes, and the event loop runs: still the one request.
    for _ in range(10):
        freezer.tick(timedelta(seconds=0.1))
        async_fire_time_changed(hass)
        for _ in range(20):
            await asyncio.sleep(0)
    assert held.asked == 1
    assert mock_octoprint.async_get_snapshot.call_count == polls + 1
    assert not pushed.runner.data.job_hinted


async def test_an_answer_older_than_the_push_it_contradicts_is_asked_again_at_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
    hold_polls: Callable[[], HeldPoll],
) -> None:
    """The print ends; OctoPrint still says printing to the poll its event asked for, and
    pushes the end meanwhile. The end is asked again at once, not at the next poll."""
    await print_until_armed(hass, freezer, mock_octoprint, push_socket)
    # A moment after the polls so far.
    freezer.tick(timedelta(seconds=1))
    held = hold_polls()
    push_socket.say({"event": {"type": "PrintDone", "payload": {}}})
    await until(lambda: held.asked == 1)
    freezer.tick(timedelta(seconds=0.01))
    push_socket.say(current(OPERATIONAL, [HOT]))
    await until(lambda: pushed.runner.data.unsettled_at is not None)
    held.answer(PRINTING)
    # No fake time passes: the second request goes out at once.
    await until(lambda: held.asked == 2)
    assert machine_state(hass) == "armed"
    held.answer(DONE_HOT)
    await until(lambda: machine_state(hass) == "cooling")


async def test_an_event_during_a_poll_is_asked_about_right_after_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    push_socket: ScriptedSocket,
    pushed: OctoPlugoutCoordinator,
    hold_polls: Callable[[], HeldPoll],
) -> None:
    """OctoPrint says PrintDone, then, while the poll that asked is under way, that the
    printer is operational: the answer still says printing (OctoPrint finishing), so the
    state change is asked about right after, not dropped and not after a cooldown."""
    await print_until_armed(hass, freezer, mock_octoprint, push_socket)
    freezer.tick(timedelta(seconds=1))
    held = hold_polls()
    push_socket.say({"event": {"type": "PrintDone", "payload": {}}})
    await until(lambda: held.asked == 1)
    push_socket.say(
        {"event": {"type": "PrinterStateChanged", "payload": {"state_string": "Operational"}}}
    )
    await until(push_socket.all_read)
    held.answer(PRINTING)
    await until(lambda: held.asked == 2)
    held.answer(DONE_HOT)
    await until(lambda: machine_state(hass) == "cooling")
