"""The rig's Klipper printer on its own: a real Klippy and Moonraker, heaters that heat and
cool in real time, and prints that last and end in Moonraker's history."""

from __future__ import annotations

from collections.abc import Callable, Generator
import time
from typing import Any

import pytest
import pytest_socket

from rig.klipper_server import ROOM_TEMPERATURE, KlipperServer

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture(scope="module")
def klipper(tmp_path_factory: pytest.TempPathFactory) -> Generator[KlipperServer]:
    """One Klippy and Moonraker for this module."""
    pytest_socket.enable_socket()
    with KlipperServer(tmp_path_factory.mktemp("klipper")) as server:
        yield server


def wait_for(condition: Callable[[], Any], seconds: float) -> Any:
    """Poll until ``condition`` gives something true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s")


def hotend(klipper: KlipperServer) -> dict[str, float]:
    extruder: dict[str, float] = klipper.query(extruder="temperature,target,power")["extruder"]
    return extruder


def test_klippy_is_ready_behind_moonraker(klipper: KlipperServer) -> None:
    status = klipper.query(webhooks="state", print_stats="state", extruder="temperature")
    assert status["webhooks"]["state"] == "ready"
    assert status["print_stats"]["state"] == "standby"
    assert status["extruder"]["temperature"] == pytest.approx(ROOM_TEMPERATURE, abs=1)


def test_a_heater_heats_and_cools_in_real_time(klipper: KlipperServer) -> None:
    started = time.monotonic()
    klipper.gcode("M104 S200")
    wait_for(lambda: hotend(klipper)["temperature"] > 60, 15)
    # Not at once: the model heats at a few degrees a second.
    assert time.monotonic() - started > 2
    klipper.gcode("TURN_OFF_HEATERS")
    assert hotend(klipper)["target"] == 0
    # Klippy's heater control sees the new target at its next reading.
    wait_for(lambda: hotend(klipper)["power"] == 0, 5)
    peak = hotend(klipper)["temperature"]
    wait_for(lambda: hotend(klipper)["temperature"] < peak - 2, 15)


def test_a_print_heats_lasts_and_goes_to_history_as_completed(klipper: KlipperServer) -> None:
    waits = "RIG_WAIT SECONDS=1\n" * 4
    klipper.print_file("short.gcode", f"M104 S90\nRIG_WAIT_HOT\n{waits}M104 S0\n")
    wait_for(lambda: klipper.query(print_stats="state")["print_stats"]["state"] == "printing", 10)
    started = time.monotonic()
    assert hotend(klipper)["target"] == 90
    assert klipper.query(idle_timeout="state")["idle_timeout"]["state"] == "Printing"
    wait_for(lambda: klipper.query(print_stats="state")["print_stats"]["state"] == "complete", 60)
    assert time.monotonic() - started >= 3
    # Nothing left to do: Klippy is ready again, as a real printer is once its moves are done.
    wait_for(lambda: klipper.query(idle_timeout="state")["idle_timeout"]["state"] == "Ready", 5)
    assert hotend(klipper)["temperature"] >= 85

    # Moonraker files the job a moment after it reads the print complete (under load, later).
    def history() -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = klipper.request("GET", "/server/history/list?limit=1")["jobs"]
        return jobs

    try:
        wait_for(lambda: [job["status"] for job in history()] == ["completed"], 30)
    except AssertionError as err:
        log = "\n".join(klipper.moonraker_log.read_text().splitlines()[-40:])
        raise AssertionError(f"history: {history()}; Moonraker's log ends:\n{log}") from err
    jobs = history()
    assert [(job["filename"], job["status"]) for job in jobs] == [("short.gcode", "completed")]
    assert jobs[0]["total_duration"] >= 4
