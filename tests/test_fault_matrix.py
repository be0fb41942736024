"""The fault matrix: things going wrong in every state of a real cycle, on the real rig.

Each fault below is injected between Home Assistant and the real OctoPrint (a fault proxy on
loopback), or done to the rig itself (OctoPrint restarted, the printer disconnected, the Pi
back during the countdown, the plug gone, the key revoked, the integration reloaded, Home
Assistant killed), in the state it names. Whatever happens: no power cut during a job, every
cut after a clean halt, the integration keeps running. The run ends with one line: faults
tried, power cuts during a job and processes left running.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import json
import time
from typing import Any

import pytest

from rig.fault_proxy import Fault
from rig.rig import Rig

from .rig_steps import FaultTally, no_shutdown_command, wait_for_cuts, wait_for_reauth, watch_states

pytestmark = pytest.mark.usefixtures("socket_enabled")

STATES = ("idle", "print_started", "armed", "cooling", "powering_off")
# Where OctoPrint's data is there to show unless a fault takes it away (later the Pi halts).
WATCHED_WITH_DATA = ("idle", "print_started", "armed", "cooling")
HALT_REQUEST = "/api/system/commands/core/shutdown"
# A fault can hide a short state (cooling) from view; these show the job was over.
AFTER_THE_JOB = {"cooling", "shutting_down_host", "powering_off"}
# How the cycle ends when the halt request itself meets the fault: a request answered with an
# error leaves power on (and says so); one that came back damaged or late halts the Pi and then
# cuts; one that got no answer at all is asked again once OctoPrint answers, then goes on.
ENDING = {
    "http_500": "on",
    "html": "on",
    "malformed_json": "off",
    "reset": "off",
    "slow": "off",
    "stall": "off",
}


class CycleWatch:
    """Follows one print on the rig, doing something once in each state it reaches."""

    def __init__(self, rig: Rig, tally: FaultTally) -> None:
        """Nothing seen yet."""
        self.rig = rig
        self.tally = tally
        self.cuts_before = len(rig.power_cuts())
        self.halts_before = len(rig.halt_requests())
        self.started_at = time.time()
        self.states: list[str] = []
        self.unavailable_seen = False

    def run(
        self,
        act: Callable[[str], None],
        ends: set[str],
        seconds: float = 300,
        print_file: str = "demo.gcode",
        states: tuple[str, ...] = STATES,
    ) -> str:
        """Act in idle, start a print, act in each later state; the state it ends in."""
        state_entity = self.rig.entity("sensor", "state")
        hotend = self.rig.entity("sensor", "hotend_temperature")
        pending = list(states)
        started = False
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            state = self.rig.ha.state_of(state_entity) or "unknown"
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            if state in pending:
                pending.remove(state)
                act(state)
            if state == "idle" and not started:
                started = True
                self.rig.start_print(print_file)
            elif started and state in ends and AFTER_THE_JOB & set(self.states):
                return state
            if state in WATCHED_WITH_DATA:
                self.unavailable_seen |= self.rig.ha.state_of(hotend) == "unavailable"
            time.sleep(0.2)
        raise TimeoutError(f"the cycle did not end: {self.states}")

    def check(self, ending: str) -> None:
        """The rules that hold after any fault."""
        cuts = wait_for_cuts(self.rig, self.cuts_before + (ending == "off"))[self.cuts_before :]
        assert [cut for cut in cuts if cut["job"]] == []
        assert all(cut["host_halted"] for cut in cuts), cuts
        assert len(cuts) == (1 if ending == "off" else 0), (self.states, cuts)
        # The Pi was asked to halt only with no job and every hotend known to be cool.
        cool = self.rig.quick_options["cool_temperature"]
        halts = self.rig.halt_requests()[self.halts_before :]
        assert [halt for halt in halts if halt["job"] or not _cool(halt, cool)] == []
        entry = self.rig.ha.entries("octoplugout")[0]
        assert entry["state"] == "loaded"


@pytest.fixture
def cycle(idle: Rig, fault_tally: FaultTally) -> CycleWatch:
    """A cycle about to start from idle, with no fault in force."""
    idle.heal()
    return CycleWatch(idle, fault_tally)


@pytest.mark.parametrize("kind", list(ENDING))
# A halt request answered with an error is one the user must hear of.
@pytest.mark.expected_error("OctoPrint could not halt its host")
def test_a_fault_in_every_state(cycle: CycleWatch, kind: str) -> None:
    rig = cycle.rig
    injected: list[tuple[str, Fault]] = []

    def inject(state: str) -> None:
        faults = [Fault(kind, hits=1, until=time.time() + 60)]
        if state in ("armed", "cooling"):
            # The halt request comes once: its fault waits for it from the job's end on.
            faults.append(Fault(kind, path=HALT_REQUEST, hits=1, until=time.time() + 300))
        injected.extend((state, fault) for fault in faults)
        rig.inject(*faults)
        if state == "idle":
            # Before the print starts, the fault must have been met.
            rig.wait_for_hits(faults[0])

    try:
        # A fault that hides the job restarts its clock: the job must run on long enough.
        ending = cycle.run(inject, ends={"off", "on"}, print_file="long.gcode")
    finally:
        rig.heal()
    met = {request["fault_name"] for request in rig.octoprint_requests()}
    for state, fault in injected:
        if fault.name in met:
            where = "halt request" if fault.path == HALT_REQUEST else state
            cycle.tally.tried.append(f"{kind} in {where}")
    assert ending == ENDING[kind], cycle.states
    cycle.check(ending)
    # Where a fault took the data away, the entities showed it.
    assert cycle.unavailable_seen is (kind != "slow")


def test_home_assistant_restarting_in_every_state(cycle: CycleWatch) -> None:
    rig = cycle.rig

    def reload(state: str) -> None:
        rig.ha.request("POST", f"/api/config/config_entries/entry/{rig.entry_id}/reload")
        cycle.tally.tried.append(f"restart in {state}")

    ending = cycle.run(reload, ends={"off"})
    cycle.check(ending)
    assert [s for s in cycle.states if s in STATES] == list(STATES)


def test_home_assistant_killed_during_the_job(cycle: CycleWatch) -> None:
    rig = cycle.rig
    state_entity = rig.entity("sensor", "state")
    cool = rig.quick_options["cool_temperature"]
    min_job_time = 40
    seen: dict[str, float] = {}

    def kill(state: str) -> None:
        seen[state] = time.monotonic()
        if state == "print_started":
            # The printer stays hot after the job until the test lets it cool.
            rig.octoprint.set_room_temperature(cool + 15)
            # In the middle of the job's clock.
            time.sleep(10)
        rig.kill_home_assistant()
        seen[f"back from {state}"] = time.monotonic()
        cycle.tally.tried.append(f"Home Assistant killed in {state}")
        if state == "cooling":
            # Whatever the last save held (armed or cooling), a hot hotend is not halted.
            rig.ha.wait_for_state(state_entity, "cooling", 60)
            time.sleep(5)
            assert rig.halt_requests()[cycle.halts_before :] == []
            rig.octoprint.set_room_temperature()

    # Home Assistant writes its own stores a moment late: a kill must lose only what
    # OctoPlugout had not written, not the entry's options.
    rig.set_options(rig.quick_options | {"min_job_time": min_job_time}, written=True)
    try:
        rig.ha.wait_for_state(state_entity, "idle", seconds=60)
        ending = cycle.run(
            kill,
            ends={"off"},
            seconds=600,
            print_file="long.gcode",
            states=("idle", "print_started", "armed", "cooling"),
        )
        cycle.check(ending)
        # The job's clock kept the time it had run before the kill: it armed on time, not a
        # whole minimum job time after Home Assistant came back.
        assert seen["armed"] - seen["print_started"] < min_job_time + 20, seen
        assert seen["armed"] - seen["back from print_started"] < min_job_time, seen
    finally:
        rig.octoprint.set_room_temperature()
        rig.set_options(rig.quick_options)


def test_home_assistant_killed_while_the_pi_halts(cycle: CycleWatch) -> None:
    rig = cycle.rig
    halt_delay = 30
    killed_at: dict[str, float] = {}

    def kill(state: str) -> None:
        if state == "cooling":
            # The halt request is answered late: there is time to kill while it is out.
            rig.inject(Fault("slow", path=HALT_REQUEST, hits=1, until=time.time() + 120))
            return
        if state == "powering_off":
            rig.wait_for_pi_halted()
            # In the middle of the halt delay.
            time.sleep(halt_delay / 3)
        killed_at[state] = time.time()
        rig.kill_home_assistant()
        cycle.tally.tried.append(f"Home Assistant killed in {state}")

    rig.set_options(rig.quick_options | {"halt_delay": halt_delay}, written=True)
    try:
        rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)
        ending = cycle.run(
            kill,
            ends={"off", "on"},
            seconds=600,
            states=("cooling", "shutting_down_host", "powering_off"),
        )
        cycle.check(ending)
        assert ending == "off", cycle.states
        # A silence seen before the kill proves nothing now: the halt delay counts again from a
        # silence seen after it (counted from before, the cut would have come 20 s after it).
        cut = rig.power_cuts()[-1]
        assert cut["time"] >= killed_at["powering_off"] + halt_delay, (cut, killed_at)
        # Killed while off: power stays off (nothing switches the relay on), nothing is cut
        # again.
        rig.kill_home_assistant()
        time.sleep(5)
        cycle.tally.tried.append("Home Assistant killed in off")
        assert rig.relay_file.read_text().strip() == "off"
        assert len(rig.power_cuts()) == cycle.cuts_before + 1
        if rig.plug_kind == "esphome":
            # (The template relay standing in for a plug on older Home Assistant starts again
            # reading on, whatever its file says.)
            assert rig.ha.state_of(rig.entity("sensor", "state")) == "off"
    finally:
        rig.heal()
        if rig.relay_file.read_text().strip() == "off":
            # Power back on for the next test, whatever Home Assistant believes of the relay.
            rig.ha.call("switch", "turn_on", {"entity_id": rig.relay_entity})
        rig.set_options(rig.quick_options)


def test_octoprint_restarting_mid_print(cycle: CycleWatch) -> None:
    rig = cycle.rig

    def restart(state: str) -> None:
        if state == "armed":
            rig.tell_pi("crash")
            rig.ha.wait_for_state(rig.entity("binary_sensor", "octoprint_reachable"), "off", 30)
            assert rig.ha.state_of(rig.entity("sensor", "state")) == "armed"
            rig.tell_pi("boot")
            cycle.tally.tried.append("OctoPrint restarted in armed")

    # The restarted OctoPrint has lost the job: the cycle goes on as after a job.
    cycle.check(cycle.run(restart, ends={"off", "on"}))


def test_octoprint_restarting_during_the_cool_down_halts_only_once_cool(
    cycle: CycleWatch,
) -> None:
    rig = cycle.rig
    state_entity = rig.entity("sensor", "state")
    cool = rig.quick_options["cool_temperature"]

    def restart(state: str) -> None:
        if state != "cooling":
            return
        rig.tell_pi("crash")
        # The printer stays hot while OctoPrint restarts; the restarted OctoPrint is operational
        # before it has read the printer's temperatures, and answers with none.
        rig.octoprint.set_room_temperature(cool + 15)
        rig.octoprint.report_temperatures(readable=False)
        rig.tell_pi("boot")
        rig.ha.wait_for_state(rig.entity("binary_sensor", "octoprint_reachable"), "on", 90)
        time.sleep(15)
        cycle.tally.tried.append("OctoPrint restarted in cooling, the hotend hot and unread")
        assert rig.halt_requests()[cycle.halts_before :] == []
        assert rig.ha.state_of(state_entity) == "cooling"
        # Read at last, the hotend is hot: still no halt, until it has cooled.
        rig.octoprint.report_temperatures()
        _wait_for_hotend_above(rig, cool)
        time.sleep(3)
        assert rig.halt_requests()[cycle.halts_before :] == []
        assert rig.ha.state_of(state_entity) == "cooling"
        rig.octoprint.set_room_temperature()

    try:
        ending = cycle.run(restart, ends={"off"})
    finally:
        rig.octoprint.report_temperatures()
        rig.octoprint.set_room_temperature()
    cycle.check(ending)
    halts = rig.halt_requests()[cycle.halts_before :]
    assert len(halts) == 1
    assert halts[0]["hotends"]
    # Each step of the job is told once, the restart notwithstanding.
    steps = _wait_for_events(rig, cycle.started_at, until="powered_off")
    assert steps.count("armed") == 1, steps
    assert steps.count("cooling") == 1, steps


def test_the_printer_disconnecting_mid_print_keeps_power(cycle: CycleWatch) -> None:
    rig = cycle.rig

    def unplug_usb(state: str) -> None:
        if state != "armed":
            return
        rig.octoprint.connect_printer(connected=False)
        cycle.tally.tried.append("printer disconnected in armed")
        # An error during a job counts as the job for the fault limit: power stays on.
        time.sleep(20)
        assert rig.ha.state_of(rig.entity("sensor", "state")) == "armed"
        assert rig.ha.state_of(rig.entity("switch", "power")) == "on"
        raise _Done

    try:
        with pytest.raises(_Done):
            cycle.run(unplug_usb, ends={"off"})
        assert rig.power_cuts()[cycle.cuts_before :] == []
    finally:
        rig.ha.call("button", "press", {"entity_id": rig.entity("button", "cancel_power_off")})
        rig.octoprint.connect_printer()
        rig.wait_for_octoprint()


def test_the_pi_coming_back_during_the_countdown_keeps_power(cycle: CycleWatch) -> None:
    rig = cycle.rig
    rig.set_options(rig.quick_options | {"halt_delay": 60})
    try:
        rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)

        def come_back(state: str) -> None:
            if state == "powering_off":
                reachable = rig.entity("binary_sensor", "octoprint_reachable")
                rig.ha.wait_for_state(reachable, "off", 60)
                rig.tell_pi("boot")
                cycle.tally.tried.append("Pi back in powering_off")

        ending = cycle.run(come_back, ends={"on", "off"})
        assert ending == "on"
        cycle.check(ending)
    finally:
        rig.set_options(rig.quick_options)


def test_a_revoked_key_asks_to_reauthenticate_and_keeps_power(cycle: CycleWatch) -> None:
    rig = cycle.rig

    def revoke(state: str) -> None:
        if state != "armed":
            return
        rig.inject(Fault("bad_key", until=time.time() + 300))
        flow = wait_for_reauth(rig)
        cycle.tally.tried.append("API key revoked in armed")
        assert rig.ha.state_of(rig.entity("switch", "power")) == "on"
        assert rig.power_cuts()[cycle.cuts_before :] == []
        rig.heal()
        step = rig.ha.request(
            "POST", f"/api/config/config_entries/flow/{flow}", {"next_step_id": "api_key"}
        )
        result = rig.ha.request(
            "POST", f"/api/config/config_entries/flow/{flow}", {"api_key": rig.octoprint.admin_key}
        )
        assert step["step_id"] == "api_key"
        assert result["reason"] == "reauth_successful"

    try:
        cycle.check(cycle.run(revoke, ends={"off"}))
    finally:
        rig.heal()


@pytest.mark.expected_error("OctoPrint could not halt its host: it has no shutdown command")
def test_no_shutdown_command_keeps_power_and_says_where_to_set_it(cycle: CycleWatch) -> None:
    rig = cycle.rig
    with no_shutdown_command(rig.octoprint):
        ending = cycle.run(lambda state: None, ends={"off", "on"})
        cycle.tally.tried.append("no shutdown command at the halt")
    assert ending == "on", cycle.states
    cycle.check(ending)
    assert rig.ha.state_of(rig.entity("switch", "power")) == "on"
    issues = [issue["translation_key"] for issue in rig.ha.repair_issues()]
    assert "no_shutdown_command" in issues
    _wait_for_events(rig, cycle.started_at, "problem")
    problems = [
        event
        for event in rig.ha.recorded_events("octoplugout_event", cycle.started_at)
        if event.get("problem") == "shutdown_refused"
    ]
    assert [problem["cause"] for problem in problems] == ["no_shutdown_command"]


def test_the_plug_going_away_during_a_job_keeps_power(cycle: CycleWatch) -> None:
    rig = cycle.rig
    if rig.plug is None:
        pytest.skip("this Home Assistant cannot adopt the plug firmware (see the README)")
    plug = rig.plug

    def unplug(state: str) -> None:
        if state != "armed":
            return
        plug.stop()
        rig.ha.wait_for_state(rig.relay_entity, "unavailable", seconds=60)
        assert rig.ha.state_of(rig.entity("sensor", "state")) == "armed"
        rig.start_plug()
        rig.ha.wait_for_state(rig.relay_entity, "on", seconds=120)
        # By hand, during the job: the plug's power lock refuses.
        rig.ha.call("switch", "turn_off", {"entity_id": rig.relay_entity})
        time.sleep(2)
        assert rig.ha.state_of(rig.relay_entity) == "on"
        cycle.tally.tried += ["plug unavailable in armed", "relay off by hand in armed"]

    cycle.check(cycle.run(unplug, ends={"off"}))


def test_the_api_key_never_shows(idle: Rig) -> None:
    rig = idle
    key = rig.octoprint.admin_key
    # Whatever ran on this rig before, a job goes through every place the key could leak to.
    rig.start_print("short.gcode")
    watch_states(rig, "print_started", seconds=60)
    watch_states(rig, "idle", seconds=120)
    _wait_for_recorded_event(rig)
    states: list[dict[str, Any]] = rig.ha.request("GET", "/api/states")
    diagnostics = rig.ha.request("GET", f"/api/diagnostics/config_entry/{rig.entry_id}")
    # The recorder's database holds every event and every state Home Assistant saw.
    database = sorted(rig.ha.config_dir.glob("home-assistant_v2.db*"))
    logs = [rig.ha.log, rig.ha.config_dir / "home-assistant.log"]
    places = {
        "entity states and attributes": json.dumps(states),
        "diagnostics": json.dumps(diagnostics),
        **{path.name: path.read_bytes().decode(errors="replace") for path in database + logs},
    }
    # The scan must have read something of each kind (the debug log included).
    assert "octoplugout" in places["diagnostics"]
    assert "custom_components.octoplugout" in places["home-assistant.log"]
    assert any("octoplugout_event" in places[path.name] for path in database)
    assert [place for place, text in places.items() if key in text] == []


def _wait_for_recorded_event(rig: Rig, seconds: float = 30) -> None:
    # The recorder writes to its database in batches.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in rig.ha.config_dir.glob("home-assistant_v2.db*"):
            if b"octoplugout_event" in path.read_bytes():
                return
        time.sleep(0.5)
    raise TimeoutError("the recorder never wrote an OctoPlugout event")


def _cool(moment: dict[str, Any], cool: float) -> bool:
    """Whether the power line saw every hotend reading at or below the cool-down temperature."""
    readings = moment["hotends"].values()
    return bool(readings) and all(reading is not None and reading <= cool for reading in readings)


def _wait_for_hotend_above(rig: Rig, celsius: float, seconds: float = 60) -> None:
    hotend = rig.entity("sensor", "hotend_temperature")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        shown = rig.ha.state_of(hotend) or ""
        with contextlib.suppress(ValueError):
            if float(shown) > celsius:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the hotend never showed above {celsius} C")


def _wait_for_events(rig: Rig, since: float, until: str, seconds: float = 30) -> list[str]:
    """OctoPlugout's event types since a time, once the recorder has written ``until``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events = rig.ha.recorded_events("octoplugout_event", since)
        steps = [event["type"] for event in events if event["config_entry_id"] == rig.entry_id]
        if until in steps:
            return steps
        time.sleep(0.5)
    raise TimeoutError(f"the recorder never wrote {until}")


class _Done(Exception):
    """Ends a cycle once what the test wanted to see was seen."""
