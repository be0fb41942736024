"""The whole chain, for real: OctoPrint and its virtual printer behind a virtual power line,
the plug (the ESPHome firmware, or a template switch where Home Assistant is too old for it),
and Home Assistant as its own process with OctoPlugout set up through the config flows.
"""

from __future__ import annotations

from pathlib import Path
import time

import pytest

from rig.rig import Rig

from .rig_steps import wait_for_cuts, watch_states

pytestmark = pytest.mark.usefixtures("socket_enabled")
CYCLE = ["print_started", "armed", "cooling", "powering_off", "off"]


def serial_log(rig: Rig) -> str:
    log = rig.octoprint.basedir / "logs" / "serial.log"
    return log.read_text(errors="replace") if log.exists() else ""


def test_a_print_ends_with_a_safe_power_off(idle: Rig) -> None:
    cuts_before = len(idle.power_cuts())
    idle.start_print("demo.gcode")
    seen = watch_states(idle, "off")
    assert [state for state in seen if state in CYCLE] == CYCLE
    cuts = wait_for_cuts(idle, cuts_before + 1)[cuts_before:]
    assert len(cuts) == 1
    # The Pi halted (OctoPrint stopped through its shutdown command) before the cut.
    assert cuts[0]["host_halted"] is True
    assert cuts[0]["host_running"] is False
    assert cuts[0]["job"] is False
    assert idle.ha.state_of(idle.entity("switch", "power")) == "off"
    log = serial_log(idle)
    for message in ("PRINT started", "Poweroff after PRINT", "Shutdown at T=185.0 C"):
        assert f"M117 {message}" in log
    assert log.count("M117 Shutdown at T=") == 1


def test_a_short_job_does_not_arm(idle: Rig) -> None:
    cuts_before = len(idle.power_cuts())
    idle.start_print("short.gcode")
    seen = watch_states(idle, "print_started")
    seen += watch_states(idle, "idle", seconds=120)
    assert "armed" not in seen
    time.sleep(5)
    assert idle.ha.state_of(idle.entity("sensor", "state")) == "idle"
    assert idle.power_cuts()[cuts_before:] == []


def test_octoprint_gone_during_a_print_keeps_power_on(idle: Rig) -> None:
    cuts_before = len(idle.power_cuts())
    idle.start_print("demo.gcode")
    watch_states(idle, "armed", seconds=120)
    idle.tell_pi("crash")
    reachable = idle.entity("binary_sensor", "octoprint_reachable")
    idle.ha.wait_for_state(reachable, "off", seconds=30)
    time.sleep(30)
    assert idle.ha.state_of(idle.entity("sensor", "state")) == "armed"
    assert idle.ha.state_of(idle.entity("switch", "power")) == "on"
    assert idle.power_cuts()[cuts_before:] == []


def test_cancel_during_the_countdown_keeps_power_on(idle: Rig, tmp_path: Path) -> None:
    cuts_before = len(idle.power_cuts())
    # Long enough to press cancel once the Pi has stopped answering, short enough to wait out.
    halt_delay = 20
    options = idle.quick_options | {"halt_delay": halt_delay}
    idle.set_options(options)
    try:
        idle.ha.wait_for_state(idle.entity("sensor", "state"), "idle", seconds=60)
        idle.start_print("demo.gcode")
        watch_states(idle, "powering_off")
        idle.ha.wait_for_state(idle.entity("binary_sensor", "octoprint_reachable"), "off", 60)
        assert idle.ha.state_of(idle.entity("sensor", "power_off_time")) not in (None, "unknown")
        idle.ha.call("button", "press", {"entity_id": idle.entity("button", "cancel_power_off")})
        idle.ha.wait_for_state(
            idle.entity("sensor", "state"), {"waiting_for_octoprint", "idle"}, seconds=10
        )
        time.sleep(halt_delay + 5)
        assert idle.ha.state_of(idle.entity("switch", "power")) == "on"
        assert idle.power_cuts()[cuts_before:] == []
    finally:
        idle.set_options(idle.quick_options)
