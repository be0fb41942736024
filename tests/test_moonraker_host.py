"""The Moonraker host against a real Moonraker and Klippy (the rig's virtual printer), and
against servers that misbehave; the printer objects' meaning as a table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
import contextlib
import itertools
import time
from typing import Any

import aiohttp
from aiohttp import web
import pytest
import pytest_socket

from custom_components.octoplugout.host import (
    HaltRefusal,
    HaltRefusedError,
    Heater,
    PrinterStatus,
    ServerAddress,
    StatusStream,
)
from custom_components.octoplugout.machine import JobState
from custom_components.octoplugout.moonraker import (
    KLIPPY_DISCONNECTED,
    KLIPPY_UNTOLD,
    MoonrakerAuthError,
    MoonrakerClient,
    MoonrakerConnectionError,
    MoonrakerResponseError,
    merge,
    printer_status,
    subscription,
)
from custom_components.octoplugout.moonraker_host import MoonrakerHost
from rig.klipper_server import ROOM_TEMPERATURE, KlipperServer
from rig.octoprint_server import free_port

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture(scope="module")
def klipper(tmp_path_factory: pytest.TempPathFactory) -> Generator[KlipperServer]:
    """One Klippy and Moonraker for this module."""
    pytest_socket.enable_socket()
    with KlipperServer(tmp_path_factory.mktemp("klipper")) as server:
        yield server


@pytest.fixture
async def session() -> AsyncGenerator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def host_for(
    session: aiohttp.ClientSession, port: int, key: str | None = None, timeout: float = 5.0
) -> MoonrakerHost:
    return MoonrakerHost(
        MoonrakerClient(session, ServerAddress("127.0.0.1", port), key, timeout=timeout)
    )


@pytest.fixture
def host(session: aiohttp.ClientSession, klipper: KlipperServer) -> MoonrakerHost:
    return host_for(session, klipper.port)


async def wait_for(condition: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """Poll a condition of the real server until it holds."""
    async with asyncio.timeout(seconds):
        while True:
            if value := await condition():
                return value
            await asyncio.sleep(0.25)


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(call, *args)


async def restart_klippy(klipper: KlipperServer) -> None:
    """FIRMWARE_RESTART, and wait until Klippy is ready again."""
    await in_thread(klipper.request, "POST", "/printer/firmware_restart")

    async def ready() -> bool:
        answer = await in_thread(klipper.request, "GET", "/server/info")
        return bool(answer["klippy_state"] == "ready")

    await wait_for(ready)


# A real Moonraker


async def test_an_idle_printer(host: MoonrakerHost) -> None:
    status = await host.async_poll(check_busy=True)
    assert status.job == JobState.NONE
    assert status.state_text == "Standby"
    assert list(status.hotends) == ["extruder"]
    assert status.hotends["extruder"].actual == pytest.approx(ROOM_TEMPERATURE, abs=5)
    assert status.bed is not None
    assert status.bed.target == 0
    assert not status.busy
    assert status.progress is None


async def test_the_key_moonraker_gives_works_and_a_wrong_one_is_refused(
    session: aiohttp.ClientSession, klipper: KlipperServer
) -> None:
    key = await in_thread(klipper.request, "GET", "/access/api_key")
    assert (await host_for(session, klipper.port, key).async_poll(check_busy=False)).job == (
        JobState.NONE
    )
    # Moonraker trusts loopback, but a key that is given must be right.
    with pytest.raises(MoonrakerAuthError):
        await host_for(session, klipper.port, "0" * 32).async_poll(check_busy=False)
    assert await host_for(session, klipper.port, "0" * 32).async_access_problem() is None


async def test_a_message_reaches_the_display(host: MoonrakerHost, klipper: KlipperServer) -> None:
    assert await host.async_show_message("Cooling down: 180 C")
    shown = await in_thread(lambda: klipper.query(display_status="message"))
    assert shown["display_status"]["message"] == "Cooling down: 180 C"


async def test_a_message_behind_a_heat_up_is_left_queued_not_waited_for(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    # A print's heat-up holds Klippy's G-code queue; the message is shown after it.
    await in_thread(klipper.print_file, "heat.gcode", "M104 S100\nRIG_WAIT_HOT\nM104 S0\n")

    async def heating() -> bool:
        status = await in_thread(lambda: klipper.query(print_stats="state", extruder="target"))
        return bool(status["extruder"]["target"] == 100)

    await wait_for(heating)
    started = time.monotonic()
    assert await host.async_show_message("Heating done")
    assert time.monotonic() - started < 4

    async def shown() -> bool:
        display = await in_thread(lambda: klipper.query(display_status="message"))
        return bool(display["display_status"]["message"] == "Heating done")

    await wait_for(shown, 60)

    # The print ends before the next test sets heaters of its own.
    async def over() -> bool:
        status = await in_thread(lambda: klipper.query(print_stats="state"))
        return bool(status["print_stats"]["state"] == "complete")

    await wait_for(over, 60)


async def test_heaters_off_sets_every_target_to_zero(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    await in_thread(klipper.gcode, "M104 S60\nM140 S40")
    status = await host.async_poll(check_busy=False)
    assert status.hotends["extruder"].target == 60
    assert status.bed is not None
    assert status.bed.target == 40
    assert await host.async_heaters_off()
    status = await host.async_poll(check_busy=False)
    assert status.hotends["extruder"].target == 0
    assert status.bed is not None
    assert status.bed.target == 0


async def test_halting_runs_moonrakers_shutdown_only_with_sudo(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    klipper.sudo_refusal.touch()
    try:
        assert not await host.client.async_sudo_access()
        with pytest.raises(HaltRefusedError) as refused:
            await host.async_halt()
        assert refused.value.refusal == HaltRefusal.NO_SUDO
        assert "sudo" in str(refused.value)
        assert not klipper.shutdown_marker.exists()
    finally:
        klipper.sudo_refusal.unlink()
    assert await host.client.async_sudo_access()
    await host.async_halt()
    assert klipper.shutdown_marker.exists()
    klipper.shutdown_marker.unlink()


async def test_a_print_is_a_job_with_progress_and_klippy_shutdown_is_a_fault(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    waits = "RIG_WAIT SECONDS=1\n" * 30
    await in_thread(klipper.print_file, "long.gcode", f"M104 S70\nRIG_WAIT_HOT\n{waits}M104 S0\n")

    async def printing() -> PrinterStatus | None:
        status = await host.async_poll(check_busy=False)
        return status if status.job == JobState.RUNNING else None

    status = await wait_for(printing)
    assert status.state_text == "Printing"
    assert status.file_name == "long.gcode"
    assert status.busy
    assert status.print_time is not None
    await in_thread(klipper.request, "POST", "/printer/emergency_stop")
    status = await host.async_poll(check_busy=False)
    assert status.job == JobState.FAULT
    assert status.state_text == "Klippy shutdown"
    # A shut-down Klippy still tells its heaters (the rig's cool from the shutdown on).
    assert status.hotends["extruder"].actual is not None
    assert not await host.async_show_message("nobody listens")
    await restart_klippy(klipper)
    status = await host.async_poll(check_busy=False)
    assert status.job == JobState.NONE
    assert status.state_text in ("Error", "Standby")


async def test_a_stopped_klippy_is_a_fault_without_readings(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    assert klipper.klippy is not None
    klipper.klippy.kill()
    klipper.klippy.wait()
    try:

        async def disconnected() -> PrinterStatus | None:
            status = await host.async_poll(check_busy=False)
            return status if status.state_text == "Klippy disconnected" else None

        status = await wait_for(disconnected, 10)
        assert status.job == JobState.FAULT
        assert status.hotends == {}
        assert not await host.async_heaters_off()
    finally:
        klipper.restart_klippy()
    assert (await host.async_poll(check_busy=False)).job == JobState.NONE


# Its websocket


class Pushed:
    """What a websocket reported, in order, with when."""

    def __init__(self) -> None:
        self.statuses: list[tuple[float, PrinterStatus]] = []
        self.connections: list[bool] = []
        self.changes: list[JobState | None] = []

    def stream(self) -> StatusStream:
        return StatusStream(
            lambda status: self.statuses.append((time.monotonic(), status)),
            self.changes.append,
            self.connections.append,
        )

    async def until(
        self, condition: Callable[[PrinterStatus], bool], seconds: float = 20
    ) -> PrinterStatus:
        async with asyncio.timeout(seconds):
            while True:
                for _, status in reversed(self.statuses):
                    if condition(status):
                        return status
                    break
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def streaming(host: MoonrakerHost, pushed: Pushed) -> AsyncGenerator[asyncio.Task[None]]:
    task = asyncio.create_task(host.async_stream(pushed.stream()))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_websocket_pushes_at_the_pace_asked_and_a_job_at_once(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    pushed = Pushed()
    await host.async_set_push_interval(2.0)
    async with streaming(host, pushed):
        await pushed.until(lambda status: status.job == JobState.NONE)
        assert pushed.connections == [True]
        # The hotend heats: Klippy reports twice a second, the push goes on every 2 s (at once
        # only when the job, Klippy's state or the busy flag changes).
        await in_thread(klipper.gcode, "M104 S50")
        started = time.monotonic()
        await asyncio.sleep(6)
        window = [(moment, status) for moment, status in pushed.statuses if moment >= started]
        assert 2 <= len(window) <= 6
        paced = [
            later - earlier
            for (earlier, before), (later, after) in itertools.pairwise(window)
            if (before.job, before.state_text, before.busy)
            == (after.job, after.state_text, after.busy)
        ]
        assert paced
        assert all(gap >= 1.9 for gap in paced), paced
        # A print starting goes on at once, not at the next 2 s.
        waits = "RIG_WAIT SECONDS=1\n" * 3
        asked = time.monotonic()
        await in_thread(klipper.print_file, "quick.gcode", waits)
        await pushed.until(lambda status: status.job == JobState.RUNNING, 5)
        running_at = next(
            moment for moment, status in pushed.statuses if status.job == JobState.RUNNING
        )
        assert running_at - asked < 1.5
        await pushed.until(lambda status: status.job == JobState.NONE, 15)
        assert pushed.statuses[-1][1].state_text == "Complete"
        await in_thread(klipper.gcode, "M104 S0")
    assert pushed.connections == [True, False]


async def test_the_websocket_follows_klippy_through_its_restart(
    host: MoonrakerHost, klipper: KlipperServer
) -> None:
    pushed = Pushed()
    await host.async_set_push_interval(0.5)
    async with streaming(host, pushed):
        await pushed.until(lambda status: status.job == JobState.NONE)
        await in_thread(klipper.request, "POST", "/printer/firmware_restart")
        fault = await pushed.until(lambda status: status.job == JobState.FAULT, 10)
        assert fault.state_text in ("Klippy disconnected", "Klippy startup")
        await pushed.until(lambda status: status.job == JobState.NONE, 20)
        # Subscribed anew: a heater's change arrives again.
        await in_thread(klipper.gcode, "M104 S45")
        await pushed.until(lambda status: status.hotends["extruder"].target == 45, 5)
        await in_thread(klipper.gcode, "M104 S0")
    assert pushed.connections == [True, False]


async def test_the_websocket_refuses_a_wrong_key(
    session: aiohttp.ClientSession, klipper: KlipperServer
) -> None:
    pushed = Pushed()
    with pytest.raises(MoonrakerAuthError):
        await host_for(session, klipper.port, "0" * 32).async_stream(pushed.stream())
    assert pushed.statuses == []


@pytest.mark.rig
async def test_the_websocket_ends_when_moonraker_stops(
    session: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with KlipperServer(tmp_path_factory.mktemp("klipper-stopped")) as own:
        host = host_for(session, own.port)
        pushed = Pushed()
        task = asyncio.create_task(host.async_stream(pushed.stream()))
        await pushed.until(lambda status: status.job == JobState.NONE)
        await in_thread(own.stop)
        # Closed by Moonraker going down: the push ends, its owner opens it again later.
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        assert task.exception() is None or isinstance(task.exception(), MoonrakerConnectionError)
    assert pushed.connections == [True, False]


# Servers that are not Moonraker, or misbehave


@pytest.fixture
async def fake_server() -> AsyncGenerator[Callable[..., Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, "<html>Mainsail</html>", "text/html"),
        (502, "<html>Bad Gateway</html>", "text/html"),
        (200, '{"result": {"state": "Operational"}}', "application/json"),
        (200, "[1, 2]", "application/json"),
    ],
)
async def test_something_else_answering_is_not_moonraker(
    session: aiohttp.ClientSession,
    fake_server: Callable[..., Awaitable[int]],
    status: int,
    body: str,
    content_type: str,
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    port = await fake_server(answer)
    with pytest.raises(MoonrakerResponseError):
        await host_for(session, port).client.async_get_server_info()


async def test_nothing_listening_or_a_hung_server_is_not_answering(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    with pytest.raises(MoonrakerConnectionError):
        await host_for(session, free_port()).async_poll(check_busy=False)
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    port = await fake_server(hang)
    with pytest.raises(MoonrakerConnectionError):
        await host_for(session, port, timeout=0.3).async_poll(check_busy=False)
    release.set()


async def test_a_host_in_a_container_cannot_be_halted(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, request.headers.get("X-Api-Key")))
        message = "Cannot shutdown from within a docker container"
        return web.json_response({"error": {"code": 400, "message": message}}, status=400)

    port = await fake_server(refuse)
    with pytest.raises(HaltRefusedError) as refused:
        await host_for(session, port, "secret").async_halt()
    assert refused.value.refusal == HaltRefusal.IN_CONTAINER
    assert seen == [("POST", "/machine/shutdown", "secret")]


# What the printer objects mean

READY = {"webhooks": {"state": "ready"}}


def hot(actual: float, target: float = 0) -> dict[str, float]:
    return {"temperature": actual, "target": target}


@pytest.mark.parametrize(
    ("known", "objects", "job", "text"),
    [
        ("ready", {**READY, "print_stats": {"state": "printing"}}, JobState.RUNNING, "Printing"),
        ("ready", {**READY, "print_stats": {"state": "paused"}}, JobState.RUNNING, "Paused"),
        ("ready", {**READY, "print_stats": {"state": "complete"}}, JobState.NONE, "Complete"),
        ("ready", {**READY, "print_stats": {"state": "cancelled"}}, JobState.NONE, "Cancelled"),
        ("ready", {**READY, "print_stats": {"state": "standby"}}, JobState.NONE, "Standby"),
        # A print that ended in an error leaves a printer Klippy still runs.
        ("ready", {**READY, "print_stats": {"state": "error"}}, JobState.NONE, "Error"),
        # Klippy shut down mid-print: a fault, whatever print_stats still says.
        (
            KLIPPY_UNTOLD,
            {"webhooks": {"state": "shutdown"}, "print_stats": {"state": "printing"}},
            JobState.FAULT,
            "Klippy shutdown",
        ),
        (KLIPPY_UNTOLD, {"webhooks": {"state": "startup"}}, JobState.FAULT, "Klippy startup"),
        (KLIPPY_DISCONNECTED, {}, JobState.FAULT, "Klippy disconnected"),
        # Moonraker lost Klippy: what its objects said before no longer counts.
        (KLIPPY_DISCONNECTED, {**READY, "print_stats": {"state": "standby"}}, JobState.FAULT,
         "Klippy disconnected"),
        # Answers that lost fields tell no idle printer.
        (KLIPPY_UNTOLD, {"print_stats": {"state": "standby"}}, JobState.FAULT,
         "Klippy state unknown"),
        ("ready", {**READY, "print_stats": {}}, JobState.FAULT, "Job unknown"),
        ("ready", {**READY, "print_stats": {"state": 3}}, JobState.FAULT, "Job unknown"),
    ],
)  # fmt: skip
def test_what_the_printer_objects_mean(
    known: str, objects: dict[str, Any], job: JobState, text: str
) -> None:
    status = printer_status(known, objects)
    assert (status.job, status.state_text) == (job, text)


def test_every_hotend_the_bed_busy_and_progress() -> None:
    status = printer_status(
        KLIPPY_UNTOLD,
        {
            **READY,
            "print_stats": {"state": "printing", "filename": "a.gcode", "print_duration": 600.0},
            "virtual_sdcard": {"progress": 0.25},
            "idle_timeout": {"state": "Printing"},
            "extruder": hot(200.5, 210),
            "extruder1": {"temperature": 150.0},
            "extruder_stepper belt": hot(99),
            "heater_bed": hot(60, 60),
        },
    )
    assert status.hotends == {"extruder": Heater(200.5, 210), "extruder1": Heater(150.0, None)}
    assert status.bed == Heater(60, 60)
    assert status.busy
    assert (status.progress, status.print_time, status.print_time_left) == (25.0, 600, 1800)
    assert status.file_name == "a.gcode"
    assert status.for_machine().tool_temperatures == (200.5, 150.0)
    idle = printer_status(KLIPPY_UNTOLD, {**READY, "print_stats": {"state": "complete"}})
    assert (idle.progress, idle.print_time, idle.busy) == (None, None, False)


def test_the_subscription_follows_what_klippy_has() -> None:
    wanted = subscription(["webhooks", "print_stats", "extruder", "extruder1", "toolhead"])
    assert set(wanted) == {"webhooks", "print_stats", "extruder", "extruder1"}
    assert wanted["extruder1"] == ("temperature", "target")


def test_an_update_changes_only_what_it_holds() -> None:
    objects: dict[str, dict[str, Any]] = {"extruder": hot(20, 0), **READY}
    merge(objects, {"extruder": {"temperature": 25.0}, "print_stats": {"state": "printing"}})
    assert objects == {
        "extruder": hot(25, 0),
        "webhooks": {"state": "ready"},
        "print_stats": {"state": "printing"},
    }
