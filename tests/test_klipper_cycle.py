"""A Klipper printer's whole chain, for real: Klippy and Moonraker on a virtual Pi behind its
power line, a relay, and Home Assistant with OctoPlugout set up for Moonraker through its
config flow."""

from __future__ import annotations

from collections.abc import Generator
import contextlib
import time
from typing import Any

import pytest
import pytest_socket

from rig.klipper_rig import FULL_PRINT, SHORT_PRINT, KlipperRig
from rig.octoprint_server import free_port
from rig.rig import QUICK_OPTIONS

from .rig_steps import watch_states

pytestmark = pytest.mark.usefixtures("socket_enabled")
CYCLE = ["print_started", "armed", "cooling", "powering_off", "off"]


@pytest.fixture(scope="module")
def klipper_rig(tmp_path_factory: pytest.TempPathFactory) -> Generator[KlipperRig]:
    """One Klipper rig for this module; no cut during a job, no process left behind."""
    pytest_socket.enable_socket()
    rig = KlipperRig(tmp_path_factory.mktemp("klipper-rig"))
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
    assert [cut for cut in rig.power_cuts() if cut["job"]] == []
    assert rig.processes_left() == 0


@pytest.fixture
def idle(klipper_rig: KlipperRig) -> KlipperRig:
    """The Pi powered, Klippy ready and OctoPlugout idle."""
    rig = klipper_rig
    state = rig.entity("sensor", "state")
    deadline = time.monotonic() + 180
    while (current := rig.ha.state_of(state)) != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"OctoPlugout stays {current}")
        if current == "off":
            rig.ha.call("switch", "turn_on", {"entity_id": rig.entity("switch", "power")})
        elif current == "on":
            rig.ha.call(
                "select",
                "select_option",
                {"entity_id": rig.entity("select", "mode"), "option": "after_print"},
            )
        with contextlib.suppress(TimeoutError):
            rig.wait_for_klipper(30)
            rig.ha.wait_for_state(state, "idle", seconds=15)
    return rig


def new_cuts(rig: KlipperRig, before: int, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(cuts := rig.power_cuts()) < before + count and time.monotonic() < deadline:
        time.sleep(0.1)
    return cuts[before:]


def test_a_print_ends_with_the_host_halted_then_power_cut(idle: KlipperRig) -> None:
    rig = idle
    cuts_before, halts_before = len(rig.power_cuts()), len(rig.halt_requests())
    rig.start_print("full.gcode", FULL_PRINT)
    seen = watch_states(rig, "off")
    assert [state for state in seen if state in CYCLE] == CYCLE, rig.story()
    halts = rig.halt_requests()[halts_before:]
    # Moonraker's machine.shutdown, once, with no job and a cool hotend.
    assert len(halts) == 1
    assert halts[0]["job"] is False
    assert halts[0]["hotends"]["extruder"] <= QUICK_OPTIONS["cool_temperature"]
    cuts = new_cuts(rig, cuts_before, 1)
    assert len(cuts) == 1
    assert cuts[0]["host_halted"] is True
    assert cuts[0]["host_running"] is False
    assert cuts[0]["job"] is False
    assert rig.ha.state_of(rig.entity("switch", "power")) == "off"


def test_a_short_job_does_not_arm(idle: KlipperRig) -> None:
    rig = idle
    cuts_before = len(rig.power_cuts())
    rig.start_print("short.gcode", SHORT_PRINT)
    seen = watch_states(rig, "print_started")
    seen += watch_states(rig, "idle", seconds=120)
    assert "armed" not in seen
    time.sleep(5)
    assert rig.ha.state_of(rig.entity("sensor", "state")) == "idle"
    assert rig.power_cuts()[cuts_before:] == []


def test_klippy_shut_down_mid_print_keeps_power(idle: KlipperRig) -> None:
    rig = idle
    cuts_before, halts_before = len(rig.power_cuts()), len(rig.halt_requests())
    rig.start_print("full.gcode", FULL_PRINT)
    watch_states(rig, "armed", seconds=120)
    rig.klipper.request("POST", "/printer/emergency_stop")
    # A Klippy in shutdown is a printer fault: it counts as the job for the fault limit.
    time.sleep(20)
    assert rig.ha.state_of(rig.entity("sensor", "state")) == "armed", rig.story()
    assert rig.ha.state_of(rig.entity("switch", "power")) == "on"
    assert rig.halt_requests()[halts_before:] == []
    assert rig.power_cuts()[cuts_before:] == []
    # Klippy restarted, no job: the cycle goes on as after a job, to a safe power-off.
    rig.klipper.request("POST", "/printer/firmware_restart")
    watch_states(rig, "off")
    cuts = new_cuts(rig, cuts_before, 1)
    assert [cut["host_halted"] for cut in cuts] == [True]


def test_moonraker_restarting_mid_print_keeps_power_and_the_push_comes_back(
    idle: KlipperRig,
) -> None:
    rig = idle
    cuts_before = len(rig.power_cuts())
    rig.start_print("full.gcode", FULL_PRINT)
    watch_states(rig, "armed", seconds=120)
    rig.klipper.request("POST", "/server/restart")
    reachable = rig.entity("binary_sensor", "moonraker_reachable")
    # Klippy prints on while Moonraker restarts; the websocket drops and opens again.
    time.sleep(10)
    assert rig.ha.state_of(rig.entity("sensor", "state")) == "armed", rig.story()
    assert rig.ha.state_of(reachable) == "on"
    assert rig.power_cuts()[cuts_before:] == []
    diagnostics = wait_for_push(rig)
    assert diagnostics["push_socket_connected"] is True
    watch_states(rig, "off")
    assert [cut["host_halted"] for cut in new_cuts(rig, cuts_before, 1)] == [True]


def test_the_pi_coming_back_during_the_countdown_keeps_power(idle: KlipperRig) -> None:
    rig = idle
    rig.set_options(QUICK_OPTIONS | {"halt_delay": 60})
    try:
        rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)
        cuts_before = len(rig.power_cuts())
        rig.start_print("full.gcode", FULL_PRINT)
        watch_states(rig, "powering_off")
        rig.ha.wait_for_state(rig.entity("binary_sensor", "moonraker_reachable"), "off", 60)
        rig.tell_pi("boot")
        # The host answers again before the relay went off: power stays on and says so.
        seen = watch_states(rig, {"on", "off"}, seconds=120)
        assert seen[-1] == "on", rig.story()
        assert rig.power_cuts()[cuts_before:] == []
    finally:
        rig.set_options(QUICK_OPTIONS)


def wait_for_push(rig: KlipperRig, seconds: float = 60) -> dict[str, Any]:
    """OctoPlugout's diagnostics once its push socket is open."""
    deadline = time.monotonic() + seconds
    while True:
        data: dict[str, Any] = rig.ha.request(
            "GET", f"/api/diagnostics/config_entry/{rig.entry_id}"
        )["data"]
        if data["push_socket_connected"] or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def test_the_config_flow_says_what_is_wrong_with_a_real_moonraker(idle: KlipperRig) -> None:
    rig = idle
    address = {"host": "127.0.0.1", "port": rig.klipper.port, "path": "", "ssl": False}
    address |= {"verify_ssl": True}

    def errors(answer: dict[str, Any]) -> dict[str, str]:
        result = rig.ha.flow("octoplugout", {"next_step_id": "moonraker"}, answer)
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        rig.ha.request("DELETE", flow)
        assert result["type"] == "form", result
        return dict(result["errors"])

    # Nothing listens there; Home Assistant itself is no Moonraker; a key Moonraker refuses.
    nowhere = free_port()
    assert errors({**address, "port": nowhere}) == {"base": "moonraker_cannot_connect"}
    assert errors({**address, "port": rig.ha.port}) == {"base": "not_moonraker"}
    assert errors({**address, "api_key": "0" * 32}) == {"base": "moonraker_invalid_auth"}
    # Moonraker's user may not run sudo: Moonraker could not halt the Pi.
    rig.klipper.sudo_refusal.touch()
    try:
        assert errors(address) == {"base": "moonraker_no_sudo"}
    finally:
        rig.klipper.sudo_refusal.unlink()
    # The right key is as good as trust; the Moonraker is known already.
    key = rig.klipper.request("GET", "/access/api_key")
    result = rig.ha.flow("octoplugout", {"next_step_id": "moonraker"}, {**address, "api_key": key})
    assert result["type"] == "abort", result
    assert result["reason"] == "already_configured"
