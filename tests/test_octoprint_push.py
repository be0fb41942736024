"""OctoPrint's push socket against a real OctoPrint: the listener alone, then in the integration.

The socket is reached through the rig's fault proxy, which can drop it on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
import json
from pathlib import Path
import time

import aiohttp
from aiohttp import web
from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import pytest_socket

from custom_components.octoplugout.const import CONF_RELAY, DOMAIN
from custom_components.octoplugout.coordinator import OctoPlugoutCoordinator
from custom_components.octoplugout.host import Heater, ServerAddress, reconnect_pause
from custom_components.octoplugout.machine import JobState
from custom_components.octoplugout.octoprint import (
    OctoPrintAuthError,
    OctoPrintClient,
    OctoPrintConnectionError,
    PrinterSnapshot,
)
from custom_components.octoplugout.octoprint_push import PushCallbacks, PushListener
from custom_components.octoplugout.options import OPTION_DEFAULTS
from rig.fault_proxy import Fault, read_requests, start_proxy, write_faults
from rig.octoprint_server import OctoPrintServer, free_port
from rig.paths import ROOT, stop_process_group

from .common import RELAY, FakePlug, wait_until

pytestmark = pytest.mark.usefixtures("socket_enabled")
# Newer aiohttp re-arms a websocket's heartbeat when a frame arrives while it closes; the timer
# then fires on a closed socket and does nothing. Only the scripted servers below close that way.
HEARTBEAT_AFTER_CLOSE = pytest.mark.parametrize("expected_lingering_timers", [True])


@dataclass
class Proxy:
    """The fault proxy in front of the real OctoPrint."""

    port: int
    fault_file: Path
    request_log: Path

    def drop_sockets(self) -> None:
        """Drop every push socket (and refuse new ones) until ``heal``."""
        write_faults(self.fault_file, [Fault("reset", path="/sockjs")])

    def block_websockets(self) -> None:
        """Pass the socket's request on as plain HTTP, until ``heal``."""
        write_faults(self.fault_file, [Fault("no_websockets", path="/sockjs")])

    def heal(self) -> None:
        """Let sockets through again."""
        self.fault_file.unlink(missing_ok=True)

    def requests_since(self, since: float) -> list[str]:
        """The paths of the requests that reached the proxy since ``since`` (epoch)."""
        return [r["path"] for r in read_requests(self.request_log) if r["time"] >= since]


@dataclass
class Heard:
    """What a listener reported."""

    snapshots: list[PrinterSnapshot] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    jobs: list[JobState | None] = field(default_factory=list)
    connections: list[bool] = field(default_factory=list)

    def callbacks(self) -> PushCallbacks:
        """Callbacks that record."""
        return PushCallbacks(self.snapshots.append, self._event, self.connections.append)

    def _event(self, event: str, job: JobState | None) -> None:
        self.events.append(event)
        self.jobs.append(job)


@pytest.fixture(scope="module")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Generator[OctoPrintServer]:
    """One real OctoPrint for this module, with a short print on it."""
    pytest_socket.enable_socket()
    basedir = tmp_path_factory.mktemp("octoprint")
    (basedir / "uploads").mkdir()
    (basedir / "uploads" / "short.gcode").write_text((ROOT / "rig" / "short.gcode").read_text())
    with OctoPrintServer(basedir) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(octoprint: OctoPrintServer, tmp_path_factory: pytest.TempPathFactory) -> Generator[Proxy]:
    """The fault proxy, started and stopped by this module."""
    folder = tmp_path_factory.mktemp("proxy")
    proxy = Proxy(free_port(), folder / "fault.json", folder / "requests.jsonl")
    process = start_proxy(
        proxy.port, octoprint.port, proxy.fault_file, proxy.request_log, folder / "proxy.log"
    )
    try:
        yield proxy
    finally:
        stop_process_group(process)


@pytest.fixture
async def session() -> AsyncGenerator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def start_print(octoprint: OctoPrintServer) -> None:
    body = json.dumps({"command": "select", "print": True}).encode()
    assert octoprint.request("POST", "/api/files/local/short.gcode", body)[0] == 204


@dataclass
class Listening:
    """A listener on the real OctoPrint's socket (through the proxy), running."""

    heard: Heard
    listener: PushListener
    task: asyncio.Task[None]


@pytest.fixture
async def listening(
    session: aiohttp.ClientSession, octoprint: OctoPrintServer, proxy: Proxy
) -> AsyncGenerator[Listening]:
    client = OctoPrintClient(session, ServerAddress("127.0.0.1", proxy.port), octoprint.admin_key)
    heard = Heard()
    listener = PushListener(client, heard.callbacks())
    task = asyncio.create_task(listener.async_listen())
    yield Listening(heard, listener, task)
    proxy.heal()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_socket_brings_state_and_job_events(
    listening: Listening, octoprint: OctoPrintServer
) -> None:
    heard, listener = listening.heard, listening.listener
    await wait_until(lambda: bool(heard.snapshots))
    assert listener.connected
    assert heard.connections == [True]
    first = heard.snapshots[0]
    assert {"operational", "ready"} <= first.flags
    assert first.tools["tool0"].actual is not None
    start_print(octoprint)
    await wait_until(lambda: "PrintDone" in heard.events, seconds=60)
    assert heard.events.index("PrintStarted") < heard.events.index("PrintDone")
    assert any("printing" in snapshot.flags for snapshot in heard.snapshots)
    await wait_until(lambda: "printing" not in heard.snapshots[-1].flags)
    listening.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listening.task
    assert heard.connections == [True, False]


async def test_a_wrong_key_gets_no_socket(
    session: aiohttp.ClientSession, octoprint: OctoPrintServer, proxy: Proxy
) -> None:
    client = OctoPrintClient(session, ServerAddress("127.0.0.1", proxy.port), "0" * 32)
    heard = Heard()
    with pytest.raises(OctoPrintAuthError):
        await PushListener(client, heard.callbacks()).async_listen()
    assert heard.snapshots == []


async def test_a_dropped_socket_ends_listening(listening: Listening, proxy: Proxy) -> None:
    await wait_until(lambda: listening.listener.connected)
    proxy.drop_sockets()
    # It ends, closed or broken; either way the integration goes back to polling.
    async with asyncio.timeout(10):
        await asyncio.gather(listening.task, return_exceptions=True)
    assert not listening.listener.connected
    assert listening.heard.connections == [True, False]


async def set_up_through(
    hass: HomeAssistant, proxy: Proxy, octoprint: OctoPrintServer
) -> MockConfigEntry:
    """The integration, loaded, for the real OctoPrint behind the proxy."""
    plug = FakePlug(hass)
    await plug.async_setup()
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={
            CONF_HOST: "127.0.0.1",
            CONF_PORT: proxy.port,
            CONF_PATH: "",
            CONF_SSL: False,
            CONF_VERIFY_SSL: True,
            CONF_API_KEY: octoprint.admin_key,
            CONF_RELAY: RELAY,
        },
        options=dict(OPTION_DEFAULTS) | {"startup_mode": "watching"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry


async def test_the_integration_polls_while_the_socket_is_down_and_reconnects(
    hass: HomeAssistant, octoprint: OctoPrintServer, proxy: Proxy
) -> None:
    entry = await set_up_through(hass, proxy, octoprint)
    coordinator: OctoPlugoutCoordinator = entry.runtime_data
    try:
        # Pushed, polling is only a slow liveness check.
        await wait_until(lambda: coordinator.runner.data.state.value == "idle")
        await wait_until(lambda: coordinator.push_connected)
        assert coordinator.update_interval is not None
        assert coordinator.update_interval.total_seconds() == 300
        dropped_at = time.time()
        proxy.drop_sockets()
        await wait_until(lambda: not coordinator.push_connected)
        # Polling takes over at once, at its normal pace.
        await wait_until(lambda: "/api/printer" in proxy.requests_since(dropped_at))
        assert coordinator.update_interval.total_seconds() == 5
        proxy.heal()
        await wait_until(lambda: coordinator.push_connected)
        assert coordinator.update_interval.total_seconds() == 300
        # A job's start and end come over the socket; each event also fetches a fresh status.
        printed_at = time.time()
        start_print(octoprint)
        await wait_until(lambda: coordinator.runner.data.state.value == "print_started")
        await wait_until(lambda: coordinator.runner.data.state.value == "idle", seconds=60)
        assert proxy.requests_since(printed_at).count("/api/printer") >= 2
    finally:
        proxy.heal()
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def test_a_proxy_without_websockets_is_told_and_polling_goes_on(
    hass: HomeAssistant, octoprint: OctoPrintServer, proxy: Proxy
) -> None:
    entry = await set_up_through(hass, proxy, octoprint)
    coordinator: OctoPlugoutCoordinator = entry.runtime_data
    issues = ir.async_get(hass)
    issue_id = f"push_socket_blocked_{entry.entry_id}"
    try:
        await wait_until(lambda: coordinator.push_connected)
        # The proxy hands the socket's request to OctoPrint without its Upgrade header, as nginx
        # does without its websocket lines; OctoPrint answers that with 400.
        blocked_at = time.time()
        proxy.block_websockets()
        await wait_until(lambda: not coordinator.push_connected)
        await wait_until(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None, seconds=60)
        issue = issues.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["status"] == "400"
        # OctoPrint is asked instead, and everything it says still shows.
        assert proxy.requests_since(blocked_at).count("/api/printer") >= 2
        assert coordinator.runner.data.state.value == "idle"
        assert coordinator.runner.data.reachable
        proxy.heal()
        await wait_until(lambda: coordinator.push_connected, seconds=120)
        assert issues.async_get_issue(DOMAIN, issue_id) is None
    finally:
        proxy.heal()
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


type ScriptedOctoPrint = Callable[..., Awaitable[tuple[OctoPrintClient, list[object]]]]


@pytest.fixture
async def scripted_octoprint(
    session: aiohttp.ClientSession,
) -> AsyncGenerator[ScriptedOctoPrint]:
    """Start fake OctoPrints whose socket says the given messages, then a binary frame.

    Each answers the passive login with ``login``; with ``socket=False`` it has no socket.
    Returns a client for it and the list the socket's received messages go to.
    """
    runners: list[web.AppRunner] = []

    async def start(
        messages: list[object], login: dict[str, object], *, socket: bool = True
    ) -> tuple[OctoPrintClient, list[object]]:
        received: list[object] = []

        async def passive_login(request: web.Request) -> web.Response:
            return web.json_response(login)

        async def websocket(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            received.append(await ws.receive_json())
            received.append(await ws.receive_json())
            for message in messages:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_json(message)
            await ws.send_bytes(b"\x00")
            await ws.receive()
            return ws

        app = web.Application()
        app.router.add_post("/api/login", passive_login)
        if socket:
            app.router.add_get("/sockjs/websocket", websocket)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return OctoPrintClient(session, ServerAddress("127.0.0.1", port), "key"), received

    yield start
    for runner in runners:
        await runner.cleanup()


def _current(flags: dict[str, bool], temps: list[object]) -> dict[str, object]:
    return {
        "current": {
            "state": {"text": "Printing", "flags": flags},
            "job": {"file": {"name": "benchy.gcode"}},
            "progress": {"completion": 42.123, "printTime": 60, "printTimeLeft": 120},
            "temps": temps,
        }
    }


@HEARTBEAT_AFTER_CLOSE
async def test_what_the_socket_says_becomes_snapshots_and_events(
    scripted_octoprint: ScriptedOctoPrint,
) -> None:
    hot = {"time": 1, "tool0": {"actual": 210.0, "target": 210.0}, "bed": {"actual": 60.0}}
    messages: list[object] = [
        {"connected": {"version": "1.11.8"}},
        {
            "history": {
                "state": {"text": "Operational", "flags": {"operational": True}},
                "temps": [hot],
            }
        },
        _current({"printing": True}, []),
        {"event": {"type": "MovieRendering", "payload": {}}},
        _current({"printing": True}, ["not a reading"]),
        {"event": {"type": "MovieDone", "payload": {}}},
        {"event": {"type": "PrintDone", "payload": {}}},
        {"event": {"type": "ClientOpened", "payload": {}}},
        {"plugin": "not a mapping"},
        ["not", "a", "mapping"],
        _current({"printing": False}, []),
    ]
    client, received = await scripted_octoprint(messages, {"name": "admin", "session": "SESSION"})
    heard = Heard()
    await PushListener(client, heard.callbacks()).async_listen()
    assert received == [{"auth": "admin:SESSION"}, {"throttle": 2}]
    assert heard.events == ["MovieRendering", "MovieDone", "PrintDone"]
    assert heard.jobs == [None, None, JobState.NONE]
    assert heard.connections == [True, False]
    history, printing, rendering, done = heard.snapshots
    assert history.flags == {"operational"}
    # Readings come only now and then; the last one holds.
    assert printing.tools["tool0"].actual == rendering.tools["tool0"].actual == 210.0
    assert printing.bed == Heater(60.0, None)
    assert (printing.progress, printing.file_name, printing.print_time_left) == (
        42.1,
        "benchy.gcode",
        120,
    )
    assert (printing.rendering, rendering.rendering, done.rendering) == (False, True, False)


@pytest.mark.parametrize(
    ("messages", "login"),
    [
        ([{"reauthRequired": {"reason": "stale"}}], {"name": "admin", "session": "S"}),
        ([], {"name": None, "session": None}),
    ],
    ids=["reauth required", "no session for the key"],
)
@HEARTBEAT_AFTER_CLOSE
async def test_octoprint_refusing_the_socket_is_an_auth_error(
    scripted_octoprint: ScriptedOctoPrint, messages: list[object], login: dict[str, object]
) -> None:
    client, _ = await scripted_octoprint(messages, login)
    with pytest.raises(OctoPrintAuthError):
        await PushListener(client, Heard().callbacks()).async_listen()


@HEARTBEAT_AFTER_CLOSE
async def test_a_garbled_message_breaks_the_socket(scripted_octoprint: ScriptedOctoPrint) -> None:
    client, _ = await scripted_octoprint(["{not json"], {"name": "a", "session": "S"})
    with pytest.raises(OctoPrintConnectionError, match="JSONDecodeError"):
        await PushListener(client, Heard().callbacks()).async_listen()


@HEARTBEAT_AFTER_CLOSE
async def test_no_socket_to_open_is_a_connection_error(
    scripted_octoprint: ScriptedOctoPrint,
) -> None:
    client, _ = await scripted_octoprint([], {"name": "admin", "session": "S"}, socket=False)
    with pytest.raises(OctoPrintConnectionError):
        await PushListener(client, Heard().callbacks()).async_listen()


@pytest.mark.parametrize(("failures", "pause"), [(0, 1.0), (1, 2.0), (6, 300.0), (60, 300.0)])
def test_reconnecting_backs_off(failures: int, pause: float) -> None:
    assert reconnect_pause(failures) == pause
