"""The state machine, without Home Assistant: every rule of the original, then ours."""

from __future__ import annotations

from dataclasses import replace

import pytest

from custom_components.octoplugout.machine import (
    OUTPUT_ACTIONS,
    Action,
    ButtonPressed,
    CancelRequested,
    CommandRefused,
    EventKind,
    ForceRequested,
    JobEvent,
    JobState,
    MachineData,
    MachineEvent,
    Mode,
    ModeSelected,
    Notify,
    OctoPrintLost,
    Phase,
    PowerOnRequested,
    Problem,
    RefreshStatus,
    RelayReported,
    Resumed,
    SendMessage,
    SendShutdown,
    SetHeatersOff,
    SetPowerLock,
    Settings,
    ShowPattern,
    ShutdownAnswered,
    ShutdownOutcome,
    Started,
    StartupMode,
    Status,
    StatusReceived,
    TimerFired,
    TurnRelayOff,
    TurnRelayOn,
    lock_wanted,
    mode_of,
    next_deadline,
    poll_interval,
    power_off_at,
    push_interval,
    readings_only_changed,
    transition,
)
from custom_components.octoplugout.mqtt_bridge import COMMANDS
from custom_components.octoplugout.octoprint import FAULT_FLAGS, JOB_FLAGS, job_of_flags

SETTINGS = Settings()
T0 = 1_000_000.0
IDLE_COLD = Status(JobState.NONE, (25.0,), 25.0)
IDLE_HOT = Status(JobState.NONE, (180.0,), 60.0)
PRINTING_HOT = Status(JobState.RUNNING, (210.0,), 60.0)
PRINTING_WARM = Status(JobState.RUNNING, (170.0,), 60.0)
DISCONNECTED = Status(JobState.FAULT)

MSG_IDLE = SendMessage("OctoPlugout 1.0")
MSG_NOT_MONITORING = SendMessage("Plug NOT monitoring")
MSG_PRINT_STARTED = SendMessage("PRINT started")
MSG_ARMED = SendMessage("Poweroff after PRINT")
MSG_COOLING = SendMessage("Shutdown at T=50.0 C")
MSG_HALTING = SendMessage("Host halting, then off")
ENTER_PRINT_STARTED = [MSG_PRINT_STARTED, Notify(EventKind.PRINT_STARTED)]
ENTER_ARMED = [MSG_ARMED, Notify(EventKind.ARMED)]
ENTER_COOLING = [SetHeatersOff(), MSG_COOLING, Notify(EventKind.COOLING)]
ENTER_SHUTTING_DOWN = [MSG_HALTING, SendShutdown()]
ENTER_OFF = [Notify(EventKind.POWERED_OFF)]
CANCELLED = Notify(EventKind.CANCELLED)


def at(state: Phase, **changes: object) -> MachineData:
    """Machine data in ``state`` with the facts that state implies."""
    base = MachineData(state=state, since=T0 - 10, relay_on=state != Phase.OFF)
    reachable = state not in (Phase.OFF, Phase.WAITING_FOR_OCTOPRINT)
    job = state in (Phase.PRINT_STARTED, Phase.ARMED)
    facts: dict[str, object] = {"reachable": reachable, "job_active": job}
    if reachable:
        facts["hottest_tool"] = 180.0
        facts["job_seen"] = JobState.RUNNING if job else JobState.NONE
    if job:
        facts |= {"job_started_at": T0 - 400, "job_max_temperature": 210.0}
    if state == Phase.POWERING_OFF:
        facts |= {"shutdown_sent_at": T0 - 5, "user_power_off": True}
    return replace(base, **(facts | changes))  # type: ignore[arg-type]


def run(
    data: MachineData, event: MachineEvent, settings: Settings = SETTINGS
) -> tuple[MachineData, list[Action]]:
    """One transition and its decisions: the plug's LED and lock, which follow the phase, are
    checked by their own tests (``test_the_plug_shows_*``)."""
    after, actions = transition(data, settings, event)
    return after, [action for action in actions if not isinstance(action, OUTPUT_ACTIONS)]


# (name, start, event, expected state, expected actions): the original firmware's rules,
# in the order of original-behaviour.md, plus the improved ones that replace a flaw.
ORIGINAL_TRANSITIONS = [
    # 2 -> 3 when OctoPrint answers; 3 -> 2 when it stops answering.
    (
        "2->3 octoprint answers",
        at(Phase.WAITING_FOR_OCTOPRINT),
        StatusReceived(T0, IDLE_COLD),
        Phase.IDLE,
        [MSG_IDLE],
    ),
    ("3->2 octoprint lost", at(Phase.IDLE), OctoPrintLost(T0), Phase.WAITING_FOR_OCTOPRINT, []),
    (
        "2 stays while lost",
        at(Phase.WAITING_FOR_OCTOPRINT),
        OctoPrintLost(T0),
        Phase.WAITING_FOR_OCTOPRINT,
        [],
    ),
    # 3 -> 9 when a job is in progress.
    (
        "3->9 job started",
        at(Phase.IDLE),
        StatusReceived(T0, PRINTING_WARM),
        Phase.PRINT_STARTED,
        ENTER_PRINT_STARTED,
    ),
    # 9 -> 3 when the job ends early; 9 -> 4 after 300 s and 175 C.
    (
        "9->3 short job ended",
        at(Phase.PRINT_STARTED, job_started_at=T0 - 60),
        StatusReceived(T0, IDLE_HOT),
        Phase.IDLE,
        [MSG_IDLE],
    ),
    (
        "9->4 long and hot job",
        at(Phase.PRINT_STARTED, job_started_at=T0 - 300),
        StatusReceived(T0, PRINTING_HOT),
        Phase.ARMED,
        ENTER_ARMED,
    ),
    (
        "9 stays before min job time",
        at(Phase.PRINT_STARTED, job_started_at=T0 - 299),
        StatusReceived(T0, PRINTING_HOT),
        Phase.PRINT_STARTED,
        [],
    ),
    (
        "9 stays when never hot",
        at(Phase.PRINT_STARTED, job_max_temperature=170.0),
        StatusReceived(T0, PRINTING_WARM),
        Phase.PRINT_STARTED,
        [],
    ),
    # 4 -> 5 when no job is in progress.
    ("4->5 job over", at(Phase.ARMED), StatusReceived(T0, IDLE_HOT), Phase.COOLING, ENTER_COOLING),
    # 5 -> 4 when a job runs again; 5 -> 6 when cool.
    (
        "5->4 job again",
        at(Phase.COOLING),
        StatusReceived(T0, PRINTING_HOT),
        Phase.ARMED,
        ENTER_ARMED,
    ),
    (
        "5->6 cool",
        at(Phase.COOLING),
        StatusReceived(T0, IDLE_COLD),
        Phase.SHUTTING_DOWN_HOST,
        ENTER_SHUTTING_DOWN,
    ),
    (
        "5 stays hot, no message spam",
        at(Phase.COOLING),
        StatusReceived(T0, IDLE_HOT),
        Phase.COOLING,
        [],
    ),
    # 6: shutdown answered -> 7; OctoPrint not answering -> 7 directly.
    (
        "6->7 shutdown sent",
        at(Phase.SHUTTING_DOWN_HOST),
        ShutdownAnswered(T0, ShutdownOutcome.SENT),
        Phase.POWERING_OFF,
        [Notify(EventKind.HOST_SHUTDOWN_SENT), Notify(EventKind.POWER_OFF_PENDING)],
    ),
    (
        "6 stays when the halt request gets no answer (improved: no cut, asked again at once)",
        at(Phase.SHUTTING_DOWN_HOST),
        ShutdownAnswered(T0, ShutdownOutcome.UNREACHABLE),
        Phase.SHUTTING_DOWN_HOST,
        [RefreshStatus()],
    ),
    # 7: host gone plus the halt delay -> 0; answering again -> 1.
    (
        "7->0 host gone for the halt delay",
        at(Phase.POWERING_OFF, host_gone_since=T0 - 15),
        TimerFired(T0),
        Phase.OFF,
        [TurnRelayOff(forced=False), *ENTER_OFF],
    ),
    (
        "7 waits within the halt delay",
        at(Phase.POWERING_OFF, host_gone_since=T0 - 14),
        TimerFired(T0),
        Phase.POWERING_OFF,
        [],
    ),
    (
        "7->1 host came back",
        at(Phase.POWERING_OFF, host_gone_since=T0 - 5),
        StatusReceived(T0, IDLE_COLD),
        Phase.ON,
        [Notify(EventKind.PROBLEM, Problem.HOST_CAME_BACK), MSG_NOT_MONITORING],
    ),
    # 8: OctoPrint answers -> 4 (waits for job end and cool-down); else -> 6 -> 7.
    (
        "8->4 octoprint answers with a job",
        at(Phase.GOING_DOWN),
        StatusReceived(T0, PRINTING_HOT),
        Phase.ARMED,
        ENTER_ARMED,
    ),
    (
        "8->4->5 octoprint answers, hot",
        at(Phase.GOING_DOWN, user_power_off=True),
        StatusReceived(T0, IDLE_HOT),
        Phase.COOLING,
        ENTER_ARMED + ENTER_COOLING,
    ),
    (
        "8 stays while OctoPrint does not answer (improved: no cut nor halt into the unknown)",
        at(Phase.GOING_DOWN, reachable=False),
        OctoPrintLost(T0),
        Phase.GOING_DOWN,
        [],
    ),
]


@pytest.mark.parametrize(
    ("start", "event", "state", "actions"),
    [pytest.param(*row[1:], id=row[0]) for row in ORIGINAL_TRANSITIONS],
)
def test_original_transitions(
    start: MachineData, event: MachineEvent, state: Phase, actions: list[Action]
) -> None:
    data, emitted = run(start, event)
    assert data.state == state
    assert emitted == actions


SHORT, LONG = False, True
# The original's button table: (state, long press, expected state, expected relay action).
BUTTON_TABLE = [
    (Phase.OFF, SHORT, Phase.WAITING_FOR_OCTOPRINT, [TurnRelayOn()]),
    (Phase.OFF, LONG, Phase.ON, [TurnRelayOn(), MSG_NOT_MONITORING]),
    (Phase.ON, SHORT, Phase.IDLE, [MSG_IDLE]),
    (Phase.ON, LONG, Phase.GOING_DOWN, [RefreshStatus()]),
    (Phase.WAITING_FOR_OCTOPRINT, SHORT, Phase.ON, [MSG_NOT_MONITORING]),
    (Phase.WAITING_FOR_OCTOPRINT, LONG, Phase.GOING_DOWN, [RefreshStatus()]),
    (Phase.IDLE, SHORT, Phase.ON, [MSG_NOT_MONITORING]),
    # Improved: decided on a status asked for now, not on the last one (a job may have begun).
    (Phase.IDLE, LONG, Phase.GOING_DOWN, [RefreshStatus()]),
    (Phase.PRINT_STARTED, SHORT, Phase.ON, [MSG_NOT_MONITORING]),
    (Phase.PRINT_STARTED, LONG, Phase.GOING_DOWN, [RefreshStatus()]),
    (Phase.ARMED, SHORT, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
    # Improved: the original skips to the cool-down, which would turn a running job's heaters
    # off; the machine stays armed until the job ends.
    (Phase.ARMED, LONG, Phase.ARMED, []),
    (Phase.COOLING, SHORT, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
    (Phase.COOLING, LONG, Phase.COOLING, []),
    (Phase.SHUTTING_DOWN_HOST, SHORT, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
    (Phase.SHUTTING_DOWN_HOST, LONG, Phase.SHUTTING_DOWN_HOST, []),
    (Phase.POWERING_OFF, SHORT, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
    (Phase.POWERING_OFF, LONG, Phase.OFF, [TurnRelayOff(forced=True), *ENTER_OFF]),
    (Phase.GOING_DOWN, SHORT, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
    (Phase.GOING_DOWN, LONG, Phase.GOING_DOWN, []),
]


@pytest.mark.parametrize(
    ("state", "long", "expected", "actions"),
    [pytest.param(*row, id=f"{row[0]}-{'long' if row[1] else 'short'}") for row in BUTTON_TABLE],
)
def test_button_table(state: Phase, long: bool, expected: Phase, actions: list[Action]) -> None:
    # The job of 3/9 is still running where it matters (9, 4); in 3 (idle) no job runs.
    data, emitted = run(at(state), ButtonPressed(T0, long=long))
    assert data.state == expected
    assert emitted == actions


def test_long_press_when_armed_after_the_job_starts_the_cool_down() -> None:
    data, emitted = run(at(Phase.ARMED, job_active=False), ButtonPressed(T0, long=True))
    assert data.state == Phase.COOLING
    assert emitted == ENTER_COOLING


def test_short_press_in_on_watches_a_not_yet_reachable_octoprint() -> None:
    data, emitted = run(at(Phase.ON, reachable=False), ButtonPressed(T0, long=False))
    assert (data.state, emitted) == (Phase.WAITING_FOR_OCTOPRINT, [])


def test_short_press_from_off_with_startup_mode_off_powers_on_not_monitoring() -> None:
    settings = Settings(startup_mode=StartupMode.OFF)
    data, emitted = run(at(Phase.OFF), ButtonPressed(T0, long=False), settings)
    assert data.state == Phase.ON
    assert emitted == [TurnRelayOn(), MSG_NOT_MONITORING]


@pytest.mark.parametrize(
    ("mode", "relay_on", "state", "actions"),
    [
        (StartupMode.WATCHING, True, Phase.WAITING_FOR_OCTOPRINT, []),
        (StartupMode.ALWAYS_ON, True, Phase.ON, [MSG_NOT_MONITORING]),
        (StartupMode.OFF, True, Phase.ON, [MSG_NOT_MONITORING]),
        (StartupMode.WATCHING, None, Phase.WAITING_FOR_OCTOPRINT, []),
        (StartupMode.WATCHING, False, Phase.OFF, []),
    ],
)
def test_start_never_cuts_power(
    mode: StartupMode, relay_on: bool | None, state: Phase, actions: list[Action]
) -> None:
    data, emitted = run(MachineData(), Started(T0, relay_on), Settings(startup_mode=mode))
    assert data.state == state
    assert emitted == actions
    assert not any(isinstance(action, TurnRelayOff) for action in emitted)


# Improvements over the original.


@pytest.mark.parametrize("flag", sorted(JOB_FLAGS))
def test_every_job_flag_counts_as_a_job(flag: str) -> None:
    data, _ = run(
        at(Phase.IDLE), StatusReceived(T0, Status(job_of_flags(frozenset({"operational", flag}))))
    )
    assert data.state == Phase.PRINT_STARTED
    assert data.job_active


@pytest.mark.parametrize("flag", sorted(FAULT_FLAGS))
def test_a_printer_fault_counts_as_a_job_until_the_fault_limit(flag: str) -> None:
    fault = Status(job_of_flags(frozenset({flag})))
    data, _ = run(at(Phase.ARMED), StatusReceived(T0, fault))
    assert data.state == Phase.ARMED
    assert data.fault_since == T0
    data, _ = run(data, StatusReceived(T0 + SETTINGS.fault_limit - 1, fault))
    assert data.state == Phase.ARMED
    # After the limit the job is over; a disconnected printer reports no temperatures, and a
    # missing reading is no cool hotend: the halt waits for one.
    data, emitted = run(data, StatusReceived(T0 + SETTINGS.fault_limit, fault))
    assert data.state == Phase.COOLING
    assert not data.job_active
    assert emitted == ENTER_COOLING


def test_a_missing_reading_is_no_cool_hotend() -> None:
    # OctoPrint restarted during the cool-down: up again before the printer reconnected, it
    # answers without hotend temperatures (or pushes only the bed). The last reading (cool)
    # may predate heating that began since: the halt waits for a reading.
    start = at(Phase.COOLING, hottest_tool=30.0, hotend_target=0.0, reachable=True)
    for no_reading in (
        Status(JobState.NONE, (), 60.0),
        Status(JobState.FAULT),
    ):
        data, emitted = run(start, StatusReceived(T0, no_reading, asked_at=T0))
        assert data.state == Phase.COOLING
        assert data.hottest_tool is None
        assert SendShutdown() not in emitted
    data, emitted = run(data, StatusReceived(T0 + 5, IDLE_COLD, asked_at=T0 + 4))
    assert data.state == Phase.SHUTTING_DOWN_HOST


@pytest.mark.parametrize("flag", sorted(FAULT_FLAGS))
def test_a_printer_fault_after_the_job_ended_does_not_arm_again(flag: str) -> None:
    # The armed and cooling events, their messages and the heaters-off come once per job.
    start = at(Phase.COOLING, hottest_tool=150.0, reachable=True)
    data, emitted = run(
        start, StatusReceived(T0, Status(job_of_flags(frozenset({flag}))), asked_at=T0)
    )
    assert data.state == Phase.COOLING
    assert not data.job_active
    assert emitted == []


def test_a_fault_that_clears_restarts_the_fault_limit() -> None:
    data, _ = run(at(Phase.ARMED), StatusReceived(T0, DISCONNECTED))
    data, _ = run(data, StatusReceived(T0 + 100, PRINTING_HOT))
    assert data.fault_since is None
    data, _ = run(data, StatusReceived(T0 + 200, DISCONNECTED))
    assert data.fault_since == T0 + 200


def test_the_hottest_tool_counts_not_only_tool0() -> None:
    two_tools = Status(JobState.NONE, (25.0, 120.0), 25.0)
    data, emitted = run(at(Phase.COOLING), StatusReceived(T0, two_tools))
    assert data.state == Phase.COOLING
    assert emitted == []
    assert data.hottest_tool == 120.0


def test_a_second_tool_reaching_the_arm_temperature_arms() -> None:
    status = Status(JobState.RUNNING, (20.0, 190.0))
    data, _ = run(at(Phase.PRINT_STARTED, job_max_temperature=0.0), StatusReceived(T0, status))
    assert data.state == Phase.ARMED


def test_the_bed_is_waited_for_only_when_configured() -> None:
    warm_bed = Status(JobState.NONE, (30.0,), 70.0)
    data, _ = run(at(Phase.COOLING), StatusReceived(T0, warm_bed))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    settings = Settings(bed_cool_temperature=40.0)
    data, _ = run(at(Phase.COOLING), StatusReceived(T0, warm_bed), settings)
    assert data.state == Phase.COOLING
    cool_bed = replace(warm_bed, bed_temperature=39.0)
    data, _ = run(data, StatusReceived(T0 + 5, cool_bed), settings)
    assert data.state == Phase.SHUTTING_DOWN_HOST


def test_cooling_sends_its_message_once_per_entry() -> None:
    data, emitted = run(at(Phase.ARMED), StatusReceived(T0, IDLE_HOT))
    messages = [a for a in emitted if isinstance(a, SendMessage)]
    for second in range(1, 20):
        data, more = run(data, StatusReceived(T0 + 5 * second, IDLE_HOT))
        messages += [a for a in more if isinstance(a, SendMessage)]
    assert messages == [MSG_COOLING]


def test_heaters_are_not_touched_when_disabled() -> None:
    _, emitted = run(at(Phase.ARMED), StatusReceived(T0, IDLE_HOT), Settings(heaters_off=False))
    assert SetHeatersOff() not in emitted


def test_the_host_is_not_halted_while_a_timelapse_renders() -> None:
    rendering = replace(IDLE_COLD, busy=True)
    data, _ = run(at(Phase.COOLING), StatusReceived(T0, rendering))
    assert data.state == Phase.COOLING
    data, _ = run(data, StatusReceived(T0 + 5, IDLE_COLD))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    data, _ = run(
        at(Phase.COOLING), StatusReceived(T0, rendering), Settings(wait_for_timelapse=False)
    )
    assert data.state == Phase.SHUTTING_DOWN_HOST


def test_uptime_guard_delays_an_automatic_power_off() -> None:
    start = at(Phase.COOLING, powered_on_at=T0 - 60)
    data, _ = run(start, StatusReceived(T0, IDLE_COLD))
    assert data.state == Phase.COOLING
    assert next_deadline(data, SETTINGS, T0) == T0 - 60 + SETTINGS.uptime_guard
    guard_passed = T0 - 60 + SETTINGS.uptime_guard
    # The status the machine holds is a minute old: it asks before it halts the host.
    data, emitted = run(data, TimerFired(guard_passed))
    assert data.state == Phase.COOLING
    assert emitted == [RefreshStatus()]
    data, emitted = run(data, StatusReceived(guard_passed + 1, IDLE_COLD, asked_at=guard_passed))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_SHUTTING_DOWN


def test_uptime_guard_does_not_hold_a_power_off_the_user_asked_for() -> None:
    start = at(Phase.COOLING, powered_on_at=T0 - 60, user_power_off=True)
    data, _ = run(start, StatusReceived(T0, IDLE_COLD))
    assert data.state == Phase.SHUTTING_DOWN_HOST


def test_power_is_cut_only_after_the_host_stopped_answering_and_the_halt_delay() -> None:
    data, _ = run(at(Phase.SHUTTING_DOWN_HOST), ShutdownAnswered(T0, ShutdownOutcome.SENT))
    assert data.shutdown_sent_at == T0
    assert power_off_at(data, SETTINGS) is None
    data, emitted = run(data, StatusReceived(T0 + 2, IDLE_COLD))
    assert (data.state, emitted) == (Phase.POWERING_OFF, [])
    data, emitted = run(data, OctoPrintLost(T0 + 40))
    assert (data.state, emitted) == (Phase.POWERING_OFF, [])
    assert power_off_at(data, SETTINGS) == T0 + 40 + SETTINGS.halt_delay
    assert next_deadline(data, SETTINGS, T0 + 40) == T0 + 40 + SETTINGS.halt_delay
    data, emitted = run(data, TimerFired(T0 + 40 + SETTINGS.halt_delay))
    assert data.state == Phase.OFF
    assert emitted == [TurnRelayOff(forced=False), *ENTER_OFF]


def test_a_host_that_keeps_answering_keeps_power_on_and_says_so() -> None:
    data, _ = run(at(Phase.SHUTTING_DOWN_HOST), ShutdownAnswered(T0, ShutdownOutcome.SENT))
    assert next_deadline(data, SETTINGS, T0) == T0 + SETTINGS.shutdown_timeout
    data, emitted = run(data, TimerFired(T0 + SETTINGS.shutdown_timeout))
    assert data.state == Phase.ON
    assert emitted == [Notify(EventKind.PROBLEM, Problem.HOST_DID_NOT_HALT), MSG_NOT_MONITORING]


def test_a_refused_shutdown_keeps_power_on() -> None:
    data, emitted = run(at(Phase.SHUTTING_DOWN_HOST), ShutdownAnswered(T0, ShutdownOutcome.REFUSED))
    assert data.state == Phase.ON
    assert emitted == [Notify(EventKind.PROBLEM, Problem.SHUTDOWN_REFUSED), MSG_NOT_MONITORING]


def test_a_late_shutdown_answer_is_ignored() -> None:
    data, emitted = run(at(Phase.ON), ShutdownAnswered(T0, ShutdownOutcome.SENT))
    assert (data.state, emitted) == (Phase.ON, [])


def test_a_job_started_while_halting_keeps_power_on() -> None:
    data, emitted = run(at(Phase.POWERING_OFF), StatusReceived(T0, PRINTING_HOT))
    assert data.state == Phase.ON
    assert Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING) in emitted


@pytest.mark.parametrize(
    "state", [Phase.PRINT_STARTED, Phase.ARMED, Phase.COOLING, Phase.IDLE, Phase.ON]
)
def test_octoprint_lost_during_a_job_never_cuts_power(state: Phase) -> None:
    data, emitted = run(at(state, job_active=True), OctoPrintLost(T0))
    assert not any(isinstance(a, TurnRelayOff | SendShutdown) for a in emitted)
    assert data.job_active
    for tick in range(1, 100):
        data, emitted = run(data, TimerFired(T0 + tick * 60))
        assert not any(isinstance(a, TurnRelayOff | SendShutdown) for a in emitted)


def test_armed_waits_for_octoprint_before_cooling() -> None:
    data, _ = run(at(Phase.ARMED, job_active=False), OctoPrintLost(T0))
    assert data.state == Phase.ARMED
    data, _ = run(data, StatusReceived(T0 + 5, IDLE_HOT))
    assert data.state == Phase.COOLING


def test_thermal_runaway_cuts_power_at_once_when_enabled() -> None:
    runaway = Status(JobState.RUNNING, (320.0,), 60.0)
    data, emitted = run(at(Phase.ARMED), StatusReceived(T0, runaway))
    assert data.state == Phase.ARMED
    settings = Settings(thermal_runaway=True)
    data, emitted = run(at(Phase.ARMED), StatusReceived(T0, runaway), settings)
    assert data.state == Phase.OFF
    assert emitted[:2] == [
        Notify(EventKind.PROBLEM, Problem.THERMAL_RUNAWAY),
        TurnRelayOff(forced=True),
    ]
    hot_bed = Status(JobState.RUNNING, (200.0,), 130.0)
    data, _ = run(at(Phase.PRINT_STARTED), StatusReceived(T0, hot_bed), settings)
    assert data.state == Phase.OFF


# User commands.


def test_safe_power_off_from_idle_runs_the_whole_sequence_on_a_fresh_answer() -> None:
    data, emitted = run(at(Phase.IDLE, hottest_tool=30.0), ModeSelected(T0, Mode.OFF))
    assert (data.state, emitted) == (Phase.GOING_DOWN, [RefreshStatus()])
    assert mode_of(data) == Mode.OFF
    data, emitted = run(data, StatusReceived(T0 + 1, IDLE_COLD, asked_at=T0))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_ARMED + ENTER_COOLING + ENTER_SHUTTING_DOWN


def test_a_safe_power_off_never_decides_on_a_remembered_or_pushed_status() -> None:
    # The last status said idle and cold; a job has started since, not yet seen.
    data, _ = run(at(Phase.IDLE, hottest_tool=30.0), ButtonPressed(T0, long=True))
    # A pushed status (OctoPrint may hold one back) and an answer to a request made before
    # the press decide nothing.
    for stale in (
        StatusReceived(T0 + 1, IDLE_COLD, pushed=True),
        StatusReceived(T0 + 2, IDLE_COLD, asked_at=T0 - 1),
    ):
        data, emitted = run(data, stale)
        assert (data.state, emitted) == (Phase.GOING_DOWN, [])
    # The answer to a request made after it shows the job: the power-off waits for it.
    data, emitted = run(data, StatusReceived(T0 + 3, PRINTING_HOT, asked_at=T0 + 2))
    assert (data.state, emitted) == (Phase.ARMED, ENTER_ARMED)


def test_safe_power_off_from_on_asks_for_a_fresh_status() -> None:
    data, emitted = run(at(Phase.ON), ModeSelected(T0, Mode.OFF))
    assert data.state == Phase.GOING_DOWN
    assert emitted == [RefreshStatus()]
    data, _ = run(data, TimerFired(T0 + 1))
    assert data.state == Phase.GOING_DOWN


def test_safe_power_off_during_a_job_waits_for_it() -> None:
    data, _ = run(at(Phase.PRINT_STARTED, job_started_at=T0 - 10), ModeSelected(T0, Mode.OFF))
    data, _ = run(data, StatusReceived(T0 + 1, PRINTING_HOT))
    assert data.state == Phase.ARMED
    data, _ = run(data, StatusReceived(T0 + 5, PRINTING_HOT))
    assert data.state == Phase.ARMED


def test_power_on_uses_the_startup_mode() -> None:
    data, emitted = run(at(Phase.OFF), PowerOnRequested(T0))
    assert (data.state, emitted) == (Phase.WAITING_FOR_OCTOPRINT, [TurnRelayOn()])
    assert data.powered_on_at == T0
    data, emitted = run(at(Phase.IDLE), PowerOnRequested(T0))
    assert (data.state, emitted) == (Phase.IDLE, [])


@pytest.mark.parametrize(
    ("start", "mode", "state", "actions"),
    [
        (Phase.OFF, Mode.ALWAYS_ON, Phase.ON, [TurnRelayOn(), MSG_NOT_MONITORING]),
        (Phase.OFF, Mode.AFTER_PRINT, Phase.WAITING_FOR_OCTOPRINT, [TurnRelayOn()]),
        (Phase.IDLE, Mode.ALWAYS_ON, Phase.ON, [MSG_NOT_MONITORING]),
        (Phase.ON, Mode.AFTER_PRINT, Phase.IDLE, [MSG_IDLE]),
        (Phase.IDLE, Mode.AFTER_PRINT, Phase.IDLE, []),
        (Phase.COOLING, Mode.ALWAYS_ON, Phase.ON, [CANCELLED, MSG_NOT_MONITORING]),
        (Phase.COOLING, Mode.AFTER_PRINT, Phase.IDLE, [CANCELLED, MSG_IDLE]),
        (Phase.OFF, Mode.OFF, Phase.OFF, []),
    ],
)
def test_mode_select(start: Phase, mode: Mode, state: Phase, actions: list[Action]) -> None:
    data, emitted = run(at(start), ModeSelected(T0, mode))
    assert data.state == state
    assert emitted == actions


def test_cancel_during_the_countdown_keeps_power_and_watches() -> None:
    start = at(Phase.POWERING_OFF, host_gone_since=T0 - 5, reachable=False)
    data, emitted = run(start, CancelRequested(T0))
    assert data.state == Phase.WAITING_FOR_OCTOPRINT
    assert emitted == [CANCELLED]
    assert not data.user_power_off
    assert power_off_at(data, SETTINGS) is None


def test_cancel_during_a_job_does_not_arm_the_same_job_again() -> None:
    data, _ = run(at(Phase.ARMED), CancelRequested(T0))
    assert data.state == Phase.PRINT_STARTED
    data, _ = run(data, StatusReceived(T0 + 5, PRINTING_HOT))
    assert data.state == Phase.PRINT_STARTED
    data, _ = run(data, StatusReceived(T0 + 10, IDLE_HOT))
    assert data.state == Phase.IDLE
    assert not data.arming_blocked


def test_cancel_with_nothing_pending_does_nothing() -> None:
    data, emitted = run(at(Phase.IDLE), CancelRequested(T0))
    assert (data.state, emitted) == (Phase.IDLE, [])


def test_force_is_refused_during_a_job() -> None:
    with pytest.raises(CommandRefused) as refused:
        run(at(Phase.ARMED), ForceRequested(T0, allow_job_loss=False))
    assert refused.value.reason == "job_in_progress"


def test_force_still_halts_a_reachable_host_first() -> None:
    data, emitted = run(at(Phase.IDLE, powered_on_at=T0), ForceRequested(T0, allow_job_loss=False))
    assert data.state == Phase.GOING_DOWN
    assert emitted == [RefreshStatus()]
    data, emitted = run(data, StatusReceived(T0 + 0.5, IDLE_HOT, asked_at=T0))
    # A force skips the cool-down, not the clean halt.
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_SHUTTING_DOWN
    data, _ = run(data, ShutdownAnswered(T0 + 1, ShutdownOutcome.SENT))
    data, emitted = run(data, TimerFired(T0 + 1 + SETTINGS.shutdown_timeout))
    assert data.state == Phase.OFF
    assert emitted[0] == TurnRelayOff(forced=True)


def test_force_with_job_loss_and_no_octoprint_cuts_at_once() -> None:
    start = at(Phase.ARMED, reachable=False)
    data, emitted = run(start, ForceRequested(T0, allow_job_loss=True))
    assert data.state == Phase.OFF
    assert emitted == [TurnRelayOff(forced=True), *ENTER_OFF]


def test_force_when_off_does_nothing() -> None:
    data, emitted = run(at(Phase.OFF), ForceRequested(T0, allow_job_loss=True))
    assert (data.state, emitted) == (Phase.OFF, [])


# The relay as Home Assistant reports it.


@pytest.mark.parametrize(
    ("settings", "restored"),
    [
        (SETTINGS, True),
        # The plug's power lock refuses such requests: an off that got through was meant.
        (Settings(restore_relay_during_job=False), False),
        # Nothing powers up by itself in start-up mode off: the mains may have gone.
        (Settings(startup_mode=StartupMode.OFF), False),
    ],
    ids=["plain_switch", "power_lock", "startup_mode_off"],
)
def test_relay_off_during_a_job_is_reported_and_restored_only_on_a_plain_switch_watching(
    settings: Settings, restored: bool
) -> None:
    data, emitted = run(at(Phase.ARMED), RelayReported(T0, relay_on=False), settings)
    problem = Notify(EventKind.PROBLEM, Problem.RELAY_OFF_DURING_JOB)
    if restored:
        assert data.state == Phase.ARMED
        assert emitted == [problem, TurnRelayOn()]
    else:
        assert data.state == Phase.OFF
        assert emitted == [problem, *ENTER_OFF]


def test_relay_switched_off_by_hand_without_a_job_follows() -> None:
    data, emitted = run(at(Phase.IDLE), RelayReported(T0, relay_on=False))
    assert data.state == Phase.OFF
    assert emitted == ENTER_OFF


def test_relay_switched_on_by_hand_starts_in_the_startup_mode() -> None:
    data, emitted = run(at(Phase.OFF), RelayReported(T0, relay_on=True))
    assert data.state == Phase.WAITING_FOR_OCTOPRINT
    assert data.powered_on_at == T0
    assert emitted == []


@pytest.mark.parametrize("state", list(Phase))
def test_an_unavailable_relay_never_changes_anything(state: Phase) -> None:
    start = at(state)
    data, emitted = run(start, RelayReported(T0, relay_on=None))
    assert data.state == state
    assert emitted == []


# Restarts.


def test_resume_in_powering_off_needs_a_fresh_sign_that_the_host_is_gone() -> None:
    saved = at(Phase.POWERING_OFF, host_gone_since=T0 - 100)
    data, emitted = run(saved, Resumed(T0))
    assert (data.state, emitted) == (Phase.POWERING_OFF, [])
    assert data.host_gone_since is None
    data, _ = run(data, OctoPrintLost(T0 + 2))
    assert power_off_at(data, SETTINGS) == T0 + 2 + SETTINGS.halt_delay


def test_resume_in_shutting_down_asks_before_it_sends_the_halt_request_again() -> None:
    # Home Assistant was down for a while: a job may have started since the saved status.
    data, emitted = run(at(Phase.SHUTTING_DOWN_HOST), Resumed(T0))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == [RefreshStatus()]
    data, emitted = run(data, StatusReceived(T0 + 1, IDLE_COLD, asked_at=T0))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == [SendShutdown()]


def test_resume_in_shutting_down_finds_a_job_started_while_home_assistant_was_down() -> None:
    data, _ = run(at(Phase.SHUTTING_DOWN_HOST), Resumed(T0))
    data, emitted = run(data, StatusReceived(T0 + 1, PRINTING_HOT, asked_at=T0))
    assert data.state == Phase.ARMED
    assert SendShutdown() not in emitted


def test_resume_decides_nothing_on_old_facts() -> None:
    saved = at(Phase.COOLING, hottest_tool=None)
    data, emitted = run(saved, Resumed(T0))
    assert (data.state, emitted) == (Phase.COOLING, [])
    data, _ = run(data, StatusReceived(T0 + 1, IDLE_HOT))
    assert data.state == Phase.COOLING


def test_resume_keeps_timers_that_passed_while_stopped() -> None:
    saved = at(Phase.PRINT_STARTED, job_started_at=T0 - 1000)
    data, emitted = run(saved, Resumed(T0))
    assert (data.state, emitted) == (Phase.PRINT_STARTED, [])
    data, emitted = run(data, StatusReceived(T0 + 1, PRINTING_HOT))
    assert data.state == Phase.ARMED
    assert emitted == ENTER_ARMED


def test_saved_data_round_trips() -> None:
    data = at(Phase.POWERING_OFF, host_gone_since=T0)
    raw = data.as_dict() | {"a_future_field": 1}
    assert MachineData.from_dict(raw) == data


# Derived values.


def test_poll_interval_is_fast_when_it_matters() -> None:
    assert poll_interval(at(Phase.WAITING_FOR_OCTOPRINT), SETTINGS) == 15.0
    assert poll_interval(at(Phase.ON), SETTINGS) == 15.0
    assert poll_interval(at(Phase.ARMED), SETTINGS) == 5.0
    assert poll_interval(at(Phase.POWERING_OFF), SETTINGS) == 2.0


@pytest.mark.parametrize(
    ("state", "interval"),
    [
        (Phase.IDLE, 300.0),
        (Phase.ARMED, 300.0),
        (Phase.COOLING, 5.0),
        (Phase.ON, 300.0),
        # The host's silence while it halts cannot come over the socket.
        (Phase.SHUTTING_DOWN_HOST, 2.0),
        (Phase.POWERING_OFF, 2.0),
    ],
)
def test_poll_interval_with_the_push_socket_is_a_slow_liveness_check(
    state: Phase, interval: float
) -> None:
    assert poll_interval(at(state), SETTINGS, pushed=True) == interval


def test_lock_is_wanted_while_a_job_runs_or_the_host_halts() -> None:
    assert lock_wanted(at(Phase.PRINT_STARTED))
    assert lock_wanted(at(Phase.POWERING_OFF))
    assert lock_wanted(at(Phase.ON, job_active=True))
    assert not lock_wanted(at(Phase.IDLE))
    assert not lock_wanted(at(Phase.OFF))


def test_the_plug_shows_every_phase_and_locks_while_a_job_runs_or_the_host_halts() -> None:
    data, actions = transition(at(Phase.ARMED), SETTINGS, StatusReceived(T0, IDLE_HOT))
    assert data.state == Phase.COOLING
    assert actions[:2] == [ShowPattern(Phase.COOLING), SetPowerLock(locked=False)]
    data, actions = transition(data, SETTINGS, TimerFired(T0 + 1))
    assert not any(isinstance(action, OUTPUT_ACTIONS) for action in actions)


def test_the_plug_shows_the_phase_and_lock_after_every_start() -> None:
    # What the plug showed before Home Assistant started is unknown: both are sent again.
    _, actions = transition(MachineData(), SETTINGS, Started(T0, relay_on=True))
    assert actions == [
        ShowPattern(Phase.WAITING_FOR_OCTOPRINT),
        SetPowerLock(locked=False),
    ]
    _, actions = transition(at(Phase.ARMED), SETTINGS, Resumed(T0))
    assert [a for a in actions if isinstance(a, OUTPUT_ACTIONS)] == [
        ShowPattern(Phase.ARMED),
        SetPowerLock(locked=True),
    ]


def test_the_plug_releases_its_lock_before_the_cut() -> None:
    data = at(Phase.POWERING_OFF, host_gone_since=T0 - 100, reachable=False)
    data, actions = transition(data, SETTINGS, TimerFired(T0))
    assert data.state == Phase.OFF
    cut = actions.index(TurnRelayOff())
    assert SetPowerLock(locked=False) in actions[:cut]


def test_no_deadline_in_the_past() -> None:
    data = at(Phase.COOLING, powered_on_at=T0 - 10_000)
    assert next_deadline(data, SETTINGS, T0) is None


def test_a_job_seen_while_the_halt_request_is_on_its_way_keeps_power_on() -> None:
    # Found by the property test: a late "unreachable" answer to the halt request must not
    # cut power after OctoPrint was seen printing again.
    data, _ = run(at(Phase.SHUTTING_DOWN_HOST), StatusReceived(T0, PRINTING_HOT))
    assert data.state == Phase.ON
    data, emitted = run(data, ShutdownAnswered(T0 + 1, ShutdownOutcome.UNREACHABLE))
    assert data.state == Phase.ON
    assert not any(isinstance(action, TurnRelayOff) for action in emitted)


def test_a_job_that_goes_silent_is_not_armed_by_its_clock() -> None:
    # It ran 100 s at 210 C, then OctoPrint went silent; meanwhile the job was cancelled.
    data = at(Phase.PRINT_STARTED, job_started_at=T0 - 100, job_max_temperature=210.0)
    data, _ = run(data, OctoPrintLost(T0))
    assert next_deadline(data, SETTINGS, T0) is None
    data, emitted = run(data, TimerFired(T0 + 250))
    assert (data.state, emitted) == (Phase.PRINT_STARTED, [])
    data, emitted = run(data, StatusReceived(T0 + 260, IDLE_COLD))
    assert data.state == Phase.IDLE
    assert not any(isinstance(action, (SendShutdown, TurnRelayOff)) for action in emitted)


def test_a_silence_restarts_the_job_clock() -> None:
    data = at(Phase.PRINT_STARTED, job_started_at=T0 - 290, job_max_temperature=210.0)
    data, _ = run(data, OctoPrintLost(T0))
    data, _ = run(data, StatusReceived(T0 + 20, PRINTING_HOT))
    assert data.job_started_at == T0 + 20
    data, _ = run(data, StatusReceived(T0 + 20 + 299, PRINTING_HOT))
    assert data.state == Phase.PRINT_STARTED
    data, emitted = run(data, StatusReceived(T0 + 20 + 300, PRINTING_HOT))
    assert (data.state, emitted) == (Phase.ARMED, ENTER_ARMED)


@pytest.mark.parametrize("pushed", [False, True], ids=["answered", "pushed"])
def test_time_in_a_printer_fault_does_not_count_towards_the_job_after_it(pushed: bool) -> None:
    # Klippy shut down (or OctoPrint lost the printer) while idle and hot, for longer than the
    # minimum job time; then a print runs for less than that: it must not arm.
    fault = Status(JobState.FAULT, (210.0,), 60.0)
    data, _ = run(at(Phase.IDLE), StatusReceived(T0, fault, pushed=pushed))
    assert data.job_active
    assert data.job_started_at is None
    later = T0 + SETTINGS.min_job_time + 60
    data, _ = run(data, StatusReceived(later, fault, asked_at=later))
    assert data.state == Phase.PRINT_STARTED
    data, _ = run(data, StatusReceived(later + 10, PRINTING_HOT, asked_at=later + 10))
    assert data.job_started_at == later + 10
    due = later + 10 + SETTINGS.min_job_time
    data, _ = run(data, StatusReceived(due - 1, PRINTING_HOT, asked_at=due - 1))
    assert data.state == Phase.PRINT_STARTED
    data, emitted = run(data, StatusReceived(due, PRINTING_HOT, asked_at=due))
    assert (data.state, emitted) == (Phase.ARMED, ENTER_ARMED)


def test_a_cut_asks_the_host_nothing_more() -> None:
    # A forced power-off that may lose the job cuts at the shutdown timeout; the answer that
    # arrives then is older than a push it should settle: with power off, nothing is asked.
    settings = replace(SETTINGS, shutdown_timeout=10.0, halt_delay=0.0)
    start = at(
        Phase.POWERING_OFF,
        reachable=False,
        forced=True,
        job_loss_allowed=True,
        shutdown_sent_at=T0 - 10,
        unsettled_at=T0,
        unsettled_running=False,
    )
    running = Status(JobState.RUNNING)
    data, emitted = run(start, StatusReceived(T0, running, asked_at=T0 - 0.5), settings)
    assert data.state == Phase.OFF
    assert RefreshStatus() not in emitted
    assert TurnRelayOff(forced=True) in emitted


def test_the_job_clock_running_out_asks_for_a_fresh_answer() -> None:
    data = at(Phase.PRINT_STARTED, job_started_at=T0 - 300, job_max_temperature=210.0)
    data, emitted = run(data, TimerFired(T0))
    assert (data.state, emitted) == (Phase.PRINT_STARTED, [RefreshStatus()])
    data, emitted = run(data, StatusReceived(T0 + 1, PRINTING_HOT))
    assert (data.state, emitted) == (Phase.ARMED, ENTER_ARMED)


def test_a_halt_request_without_an_answer_never_leads_to_a_cut() -> None:
    # Nothing says the host got the request: its silence may be a broken network around a
    # running Pi. Power stays on, the user hears of it once, and only an answer moves on.
    data, emitted = run(
        at(Phase.SHUTTING_DOWN_HOST), ShutdownAnswered(T0, ShutdownOutcome.UNREACHABLE)
    )
    assert (data.state, emitted) == (Phase.SHUTTING_DOWN_HOST, [RefreshStatus()])
    data, _ = run(data, OctoPrintLost(T0 + 1))
    assert next_deadline(data, SETTINGS, T0 + 1) == T0 + SETTINGS.shutdown_timeout
    problems = []
    for seconds in (SETTINGS.halt_delay + 2, SETTINGS.shutdown_timeout, 3600.0):
        data, emitted = run(data, TimerFired(T0 + seconds))
        assert not any(isinstance(action, TurnRelayOff) for action in emitted)
        problems += [
            action
            for action in emitted
            if action == Notify(EventKind.PROBLEM, Problem.HOST_UNREACHABLE)
        ]
        data, emitted = run(data, OctoPrintLost(T0 + seconds + 1))
        assert not any(isinstance(action, TurnRelayOff) for action in emitted)
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert len(problems) == 1
    assert next_deadline(data, SETTINGS, T0 + 3600) is None


def test_a_safe_power_off_while_octoprint_is_silent_waits_and_goes_on_when_it_answers() -> None:
    # At start-up (or with the network down) a long press asks for a safe power-off.
    data, _ = run(at(Phase.WAITING_FOR_OCTOPRINT), ButtonPressed(T0, long=True))
    assert data.state == Phase.GOING_DOWN
    problems: list[Action] = []
    for seconds in (1.0, 30.0, SETTINGS.shutdown_timeout, 600.0):
        data, emitted = run(data, OctoPrintLost(T0 + seconds))
        data, more = run(data, TimerFired(T0 + seconds + SETTINGS.halt_delay))
        emitted += more
        # Nothing is asked of a host that may be running, and power stays on.
        assert not any(isinstance(action, (SendShutdown, TurnRelayOff)) for action in emitted)
        problems += [action for action in emitted if isinstance(action, Notify)]
        assert data.state == Phase.GOING_DOWN
    assert problems == [Notify(EventKind.PROBLEM, Problem.HOST_UNREACHABLE)]
    # OctoPrint answers, idle and cool: the power-off goes on, and the halt is accepted.
    data, emitted = run(data, StatusReceived(T0 + 700, IDLE_COLD))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_ARMED + ENTER_COOLING + ENTER_SHUTTING_DOWN
    data, _ = run(data, ShutdownAnswered(T0 + 701, ShutdownOutcome.SENT))
    assert data.state == Phase.POWERING_OFF
    data, _ = run(data, OctoPrintLost(T0 + 710))
    data, emitted = run(data, TimerFired(T0 + 710 + SETTINGS.halt_delay))
    assert TurnRelayOff(forced=False) in emitted


@pytest.mark.parametrize(
    ("answer", "state", "first_actions"),
    [
        (PRINTING_HOT, Phase.ARMED, ENTER_ARMED),
        (IDLE_HOT, Phase.COOLING, ENTER_COOLING),
    ],
)
def test_an_answer_after_an_unanswered_halt_decides_again(
    answer: Status, state: Phase, first_actions: list[Action]
) -> None:
    # A job or a hot hotend in the answer: no halt now, the power-off waits for them.
    data, _ = run(
        at(Phase.SHUTTING_DOWN_HOST, user_power_off=True),
        ShutdownAnswered(T0, ShutdownOutcome.UNREACHABLE),
    )
    data, emitted = run(data, StatusReceived(T0 + 5, answer))
    assert data.state == state
    assert emitted == first_actions
    assert data.user_power_off


def test_a_forced_power_off_still_cuts_after_an_unanswered_halt_request() -> None:
    data, _ = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=True))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    data, emitted = run(data, ShutdownAnswered(T0 + 1, ShutdownOutcome.UNREACHABLE))
    assert data.state == Phase.POWERING_OFF
    assert RefreshStatus() in emitted
    data, emitted = run(data, TimerFired(T0 + 1 + SETTINGS.shutdown_timeout))
    assert TurnRelayOff(forced=True) in emitted


def test_a_force_without_job_loss_stops_when_a_job_appears() -> None:
    data, _ = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=False))
    data, _ = run(data, StatusReceived(T0 + 0.5, IDLE_COLD, asked_at=T0))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    data, emitted = run(data, StatusReceived(T0 + 1, PRINTING_HOT))
    assert data.state == Phase.ON
    assert Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING) in emitted


def test_a_force_without_job_loss_asks_octoprint_before_the_halt_request() -> None:
    # The last status is idle; a job started since. The force finds it before halting.
    data, emitted = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=False))
    assert SendShutdown() not in emitted
    data, emitted = run(data, StatusReceived(T0 + 0.5, PRINTING_HOT, asked_at=T0))
    assert data.state == Phase.ON
    assert SendShutdown() not in emitted
    assert Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING) in emitted


def test_a_force_without_job_loss_decides_on_no_pushed_or_older_status() -> None:
    data, _ = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=False))
    for stale in (
        StatusReceived(T0 + 0.5, IDLE_COLD, pushed=True),
        StatusReceived(T0 + 0.5, IDLE_COLD, asked_at=T0 - 1),
    ):
        after, emitted = run(data, stale)
        assert after.state == Phase.GOING_DOWN
        assert SendShutdown() not in emitted


def test_a_force_cuts_when_octoprint_falls_silent_while_it_asks() -> None:
    data, _ = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=False))
    data, emitted = run(data, OctoPrintLost(T0 + 10))
    assert data.state == Phase.OFF
    assert TurnRelayOff(forced=True) in emitted


def test_a_force_does_not_cut_when_a_pushed_status_showed_a_job_before_the_silence() -> None:
    data, _ = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=False))
    data, _ = run(data, StatusReceived(T0 + 1, PRINTING_HOT, pushed=True))
    data, emitted = run(data, OctoPrintLost(T0 + 10))
    assert data.state == Phase.GOING_DOWN
    assert TurnRelayOff(forced=True) not in emitted


def test_a_force_that_allows_losing_the_job_halts_at_once() -> None:
    data, emitted = run(at(Phase.IDLE), ForceRequested(T0, allow_job_loss=True))
    assert data.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_SHUTTING_DOWN


def test_a_power_off_asked_for_while_cooling_waits_for_an_answer_asked_after_it() -> None:
    # Cool, and held only by the uptime guard, which the user's request lifts: the status held
    # is older than the request, so the machine asks first.
    start = at(Phase.COOLING, powered_on_at=T0 - 60, hottest_tool=30.0, reachable=True)
    data, emitted = run(start, ModeSelected(T0, Mode.OFF))
    assert data.state == Phase.COOLING
    assert emitted == [RefreshStatus()]
    after, emitted = run(data, StatusReceived(T0 + 1, IDLE_COLD, asked_at=T0 - 1))
    assert after.state == Phase.COOLING
    after, emitted = run(data, StatusReceived(T0 + 1, IDLE_COLD, asked_at=T0))
    assert after.state == Phase.SHUTTING_DOWN_HOST
    assert emitted == ENTER_SHUTTING_DOWN


def test_a_pushed_status_does_not_send_the_halt_request() -> None:
    data, emitted = run(at(Phase.COOLING), StatusReceived(T0, IDLE_COLD, pushed=True))
    assert data.state == Phase.COOLING
    assert emitted == [RefreshStatus()]


def test_resume_does_not_repeat_a_halt_request_into_a_job() -> None:
    data, emitted = run(at(Phase.SHUTTING_DOWN_HOST, job_active=True), Resumed(T0))
    assert data.state == Phase.ON
    assert SendShutdown() not in emitted


def test_a_cancelled_force_leaves_no_force_behind() -> None:
    # Forced (job loss allowed) while a job runs, then cancelled: the job goes on, and a later
    # safe power-off is no force.
    data, _ = run(at(Phase.PRINT_STARTED, job_active=True), ForceRequested(T0, allow_job_loss=True))
    data, _ = run(data, CancelRequested(T0 + 1))
    assert data.state == Phase.PRINT_STARTED
    assert not data.forced
    assert not data.job_loss_allowed
    data, emitted = run(data, OctoPrintLost(T0 + 2))
    data, emitted = run(data, ModeSelected(T0 + 3, Mode.OFF))
    assert data.state == Phase.GOING_DOWN
    assert TurnRelayOff(forced=True) not in emitted


@pytest.mark.parametrize(
    ("target", "halts"),
    [(210.0, False), (49.0, True), (0.0, True)],
    ids=["heating to 210", "held at 49", "heater off"],
)
def test_a_hotend_heating_through_the_cool_down_temperature_is_not_cool(
    target: float, halts: bool
) -> None:
    # A print started on the printer's own screen (OctoPrint shows no job) heats the hotend:
    # 45 C on its way up is no cool hotend.
    heating = Status(JobState.NONE, (45.0,), 25.0, tool_targets=(target,))
    data, emitted = run(at(Phase.COOLING), StatusReceived(T0, heating, asked_at=T0))
    assert (data.state == Phase.SHUTTING_DOWN_HOST) is halts
    assert (SendShutdown() in emitted) is halts


def test_a_job_arms_on_the_time_it_surely_ran_not_on_when_answers_arrived() -> None:
    # First seen at T0; an answer asked 2 s before the minimum job time ran out arrives 1 s
    # after it: the job may have ended 2 s short, so the machine asks again.
    start = at(Phase.PRINT_STARTED, job_started_at=T0)
    due = T0 + SETTINGS.min_job_time
    data, emitted = run(start, StatusReceived(due + 1, PRINTING_HOT, asked_at=due - 2))
    assert data.state == Phase.PRINT_STARTED
    assert emitted == [RefreshStatus()]
    data, _ = run(data, StatusReceived(due + 2, PRINTING_HOT, asked_at=due + 1))
    assert data.state == Phase.ARMED


def test_a_pushed_status_does_not_arm() -> None:
    start = at(Phase.PRINT_STARTED, job_started_at=T0)
    later = T0 + SETTINGS.min_job_time + 30
    data, emitted = run(start, StatusReceived(later, PRINTING_HOT, pushed=True))
    assert data.state == Phase.PRINT_STARTED
    assert emitted == [RefreshStatus()]


@pytest.mark.parametrize(
    "change_of_mind",
    [
        ModeSelected(T0 + 20, Mode.AFTER_PRINT),
        COMMANDS["ON"](T0 + 20),
        COMMANDS["AFTERJOB"](T0 + 20),
    ],
    ids=["mode select", "MQTT ON", "MQTT AFTERJOB"],
)
def test_power_off_after_print_chosen_during_a_job_keeps_this_job_armed(
    change_of_mind: MachineEvent,
) -> None:
    start = at(Phase.PRINT_STARTED)
    data, _ = run(start, ModeSelected(T0, Mode.OFF))
    data, _ = run(data, StatusReceived(T0 + 1, PRINTING_HOT, asked_at=T0))
    assert data.state == Phase.ARMED
    data, emitted = run(data, change_of_mind)
    assert data.state == Phase.ARMED
    assert not data.user_power_off
    assert emitted == []
    # The job ends: the power-off goes on, as after any armed job.
    data, _ = run(data, StatusReceived(T0 + 30, IDLE_HOT, asked_at=T0 + 29))
    assert data.state == Phase.COOLING


def test_power_off_after_print_chosen_during_a_short_job_arms_it_once_it_qualifies() -> None:
    start = at(Phase.PRINT_STARTED, job_started_at=T0)
    data, _ = run(start, ModeSelected(T0 + 10, Mode.OFF))
    data, _ = run(data, StatusReceived(T0 + 11, PRINTING_HOT, asked_at=T0 + 10))
    assert data.state == Phase.ARMED
    data, _ = run(data, ModeSelected(T0 + 20, Mode.AFTER_PRINT))
    assert data.state == Phase.PRINT_STARTED
    assert not data.arming_blocked
    later = T0 + SETTINGS.min_job_time + 1
    data, _ = run(data, StatusReceived(later + 1, PRINTING_HOT, asked_at=later))
    assert data.state == Phase.ARMED


def test_power_off_after_print_chosen_again_after_a_cancel_arms_this_job() -> None:
    start = at(Phase.ARMED, job_qualified=True)
    data, _ = run(start, CancelRequested(T0))
    assert (data.state, data.arming_blocked) == (Phase.PRINT_STARTED, True)
    data, emitted = run(data, ModeSelected(T0 + 5, Mode.AFTER_PRINT))
    assert not data.arming_blocked
    assert emitted == [RefreshStatus()]
    data, _ = run(data, StatusReceived(T0 + 6, PRINTING_HOT, asked_at=T0 + 5))
    assert data.state == Phase.ARMED


def test_power_off_forgets_the_hotend_readings() -> None:
    start = at(Phase.POWERING_OFF, hottest_tool=30.0, hotend_target=0.0, host_gone_since=T0 - 60)
    data, _ = run(start, TimerFired(T0))
    assert data.state == Phase.OFF
    assert (data.hottest_tool, data.hotend_target) == (None, None)


def test_a_cool_down_with_no_reading_waits_and_says_so_after_the_fault_limit() -> None:
    # Powered on again while the hotend was still hot; OctoPrint has no reading yet.
    start = at(Phase.COOLING, since=T0, hottest_tool=None, reachable=True)
    no_reading = Status(JobState.NONE, (), 25.0)
    data, emitted = run(start, StatusReceived(T0 + 1, no_reading, asked_at=T0))
    assert data.state == Phase.COOLING
    assert SendShutdown() not in emitted
    due = T0 + SETTINGS.fault_limit
    assert next_deadline(data, SETTINGS, T0 + 1) == due
    data, emitted = run(data, TimerFired(due))
    assert data.state == Phase.COOLING
    assert emitted == [Notify(EventKind.PROBLEM, Problem.NO_HOTEND_READING)]
    data, emitted = run(data, StatusReceived(due + 5, no_reading, asked_at=due + 4))
    assert emitted == []
    # A reading ends the wait.
    data, emitted = run(data, StatusReceived(due + 10, IDLE_COLD, asked_at=due + 9))
    assert data.state == Phase.SHUTTING_DOWN_HOST


@pytest.mark.parametrize(
    "back_to_watching",
    [ButtonPressed(T0 + 10, long=False), ModeSelected(T0 + 10, Mode.AFTER_PRINT)],
    ids=["short press", "mode select"],
)
def test_watching_again_after_a_cancel_lets_this_job_arm(back_to_watching: MachineEvent) -> None:
    # Cancelled (this job must not arm), then always on, then power off after print again:
    # the latest choice counts.
    start = at(Phase.ARMED, job_qualified=True)
    data, _ = run(start, CancelRequested(T0))
    data, _ = run(data, ModeSelected(T0 + 5, Mode.ALWAYS_ON))
    assert (data.state, data.arming_blocked) == (Phase.ON, True)
    data, emitted = run(data, back_to_watching)
    assert (data.state, data.arming_blocked) == (Phase.PRINT_STARTED, False)
    assert RefreshStatus() in emitted
    data, _ = run(data, StatusReceived(T0 + 11, PRINTING_HOT, asked_at=T0 + 10))
    assert data.state == Phase.ARMED


# Pushed statuses: a host can push one held back from before its latest change.


@pytest.mark.parametrize(
    ("start", "pushed"),
    [
        # Idle by the latest answer; the push shows a job (old, or just started).
        (at(Phase.IDLE), PRINTING_HOT),
        # A job by the latest answer; the push shows none (old, or the job just ended).
        (at(Phase.ARMED), IDLE_COLD),
        # No answer since a silence: nothing to hold the push against.
        (at(Phase.IDLE, job_seen=None), IDLE_COLD),
    ],
)
def test_a_pushed_status_that_would_start_or_end_a_job_waits_for_an_answer(
    start: MachineData, pushed: Status
) -> None:
    data, emitted = run(start, StatusReceived(T0, pushed, pushed=True))
    assert emitted == [RefreshStatus(asked_will_do=True)]
    unsettled = (T0, pushed.job == JobState.RUNNING)
    assert (data.unsettled_at, data.unsettled_running) == unsettled
    assert replace(data, job_hinted=False, unsettled_at=None, unsettled_running=False) == start
    # A job the push showed counts for every safety rule until an answer says otherwise.
    assert data.job_hinted is (pushed.job == JobState.RUNNING and not start.job_active)
    data, _ = run(data, StatusReceived(T0 + 1, pushed, asked_at=T0 + 0.5))
    assert not data.job_hinted
    assert data.job_active is (pushed.job == JobState.RUNNING)


@pytest.mark.parametrize(
    ("pushed", "answer", "asked_at", "settled"),
    [
        # Asked before the push came, and telling the same: nothing more to ask.
        (PRINTING_HOT, PRINTING_HOT, T0 - 0.2, True),
        (IDLE_COLD, IDLE_HOT, T0 - 0.2, True),
        # Asked before it, and telling otherwise: it may predate the job starting (or ending)
        # that the push shows, so a newer answer decides.
        (PRINTING_HOT, IDLE_COLD, T0 - 0.2, False),
        (IDLE_COLD, PRINTING_HOT, T0 - 0.2, False),
        # Asked after it: it decides, whatever it says.
        (PRINTING_HOT, IDLE_COLD, T0 + 0.1, True),
        (IDLE_COLD, PRINTING_HOT, T0 + 0.1, True),
    ],
)
def test_an_answer_settles_a_push_not_taken_when_it_is_newer_or_agrees(
    pushed: Status, answer: Status, asked_at: float, settled: bool
) -> None:
    start = at(Phase.IDLE) if pushed.job == JobState.RUNNING else at(Phase.ARMED)
    data, _ = run(start, StatusReceived(T0, pushed, pushed=True))
    data, emitted = run(data, StatusReceived(T0 + 0.3, answer, asked_at=asked_at))
    assert (RefreshStatus() in emitted) is not settled
    assert (data.unsettled_at is None) is settled
    # A job only the push showed keeps counting until an answer settles it.
    hinted = pushed.job == JobState.RUNNING and not settled
    assert data.job_hinted is hinted
    if not settled:
        data, emitted = run(data, StatusReceived(T0 + 1, answer, asked_at=T0 + 0.5))
        assert RefreshStatus() not in emitted
        assert (data.unsettled_at, data.job_hinted) == (None, False)


@pytest.mark.parametrize(
    ("start", "job", "emitted", "hinted"),
    [
        # What the latest answer shows already: no request.
        (at(Phase.ARMED), JobState.RUNNING, [], False),
        (at(Phase.IDLE), JobState.NONE, [], False),
        # A job starts or ends, or the printer fails: an answer decides; one already asked for
        # will do when it agrees. A job told of counts as one until then.
        (at(Phase.IDLE), JobState.RUNNING, [RefreshStatus(asked_will_do=True)], True),
        (at(Phase.ARMED), JobState.NONE, [RefreshStatus(asked_will_do=True)], False),
        (at(Phase.IDLE), JobState.FAULT, [RefreshStatus(asked_will_do=True)], False),
        # Nothing known to hold it against.
        (at(Phase.IDLE, job_seen=None), JobState.NONE, [RefreshStatus(asked_will_do=True)], False),
        # An event that tells of no job (a connection, an error): an answer says what.
        (at(Phase.ARMED), None, [RefreshStatus()], False),
    ],
)
def test_a_job_event_asks_for_an_answer_only_when_it_tells_of_a_change(
    start: MachineData, job: JobState | None, emitted: list[Action], hinted: bool
) -> None:
    data, actions = run(start, JobEvent(T0, job))
    assert actions == emitted
    assert data.job_hinted is hinted
    assert data.state == start.state


def test_a_pushed_status_that_agrees_with_the_latest_answer_is_taken() -> None:
    warmer = replace(PRINTING_HOT, tool_temperatures=(215.0,))
    data, emitted = run(at(Phase.ARMED), StatusReceived(T0, warmer, pushed=True))
    assert emitted == []
    assert data.hottest_tool == 215.0


@pytest.mark.parametrize(
    "event",
    [OctoPrintLost(T0), Resumed(T0), ForceRequested(T0, allow_job_loss=True)],
    ids=["silence", "restart", "forced cut"],
)
def test_no_status_is_held_against_a_push_after_a_silence_a_restart_or_a_cut(
    event: MachineEvent,
) -> None:
    # A force with OctoPrint silent cuts at once.
    start = at(Phase.IDLE, reachable=not isinstance(event, ForceRequested))
    assert start.job_seen == JobState.NONE
    data, _ = run(start, event)
    assert data.job_seen is None
    _, emitted = run(data, StatusReceived(T0 + 1, IDLE_COLD, pushed=True))
    assert emitted == [RefreshStatus(asked_will_do=True)]


@pytest.mark.parametrize("state", list(Phase))
def test_the_host_pushes_often_only_while_readings_decide(state: Phase) -> None:
    deciding = state in (
        Phase.COOLING,
        Phase.SHUTTING_DOWN_HOST,
        Phase.POWERING_OFF,
        Phase.GOING_DOWN,
    )
    expected = SETTINGS.push_interval_deciding if deciding else SETTINGS.push_interval_watching
    assert push_interval(at(state), SETTINGS) == expected
    assert SETTINGS.push_interval_deciding < SETTINGS.push_interval_watching


# A printer with no host to halt (another integration's entities, no halt button).

NO_HALT = replace(SETTINGS, halts_host=False)


@pytest.mark.parametrize(
    ("start", "event", "forced"),
    [
        # Cool and no job, on an answer asked for now: cut, no halt step.
        (at(Phase.COOLING), StatusReceived(T0, IDLE_COLD, asked_at=T0), False),
        # A force that must not lose a job, once an answer shows none.
        (
            at(Phase.GOING_DOWN, user_power_off=True, forced=True, power_off_asked_at=T0 - 1),
            StatusReceived(T0, IDLE_COLD, asked_at=T0),
            True,
        ),
        # A force that may lose the job, with the printer answering.
        (at(Phase.ARMED), ForceRequested(T0, allow_job_loss=True), True),
    ],
    ids=["cooled down", "forced, no job", "forced, job loss allowed"],
)
def test_with_no_host_to_halt_power_is_cut_without_a_halt_request(
    start: MachineData, event: MachineEvent, forced: bool
) -> None:
    data, emitted = run(start, event, NO_HALT)
    assert data.state == Phase.OFF
    assert TurnRelayOff(forced=forced) in emitted
    assert SendShutdown() not in emitted


@pytest.mark.parametrize(
    "event",
    [
        StatusReceived(T0, IDLE_HOT, asked_at=T0),
        StatusReceived(T0, Status(JobState.NONE, (), 25.0), asked_at=T0),
        StatusReceived(T0, IDLE_COLD, pushed=True),
        OctoPrintLost(T0),
    ],
    ids=["hot", "hotend unknown", "pushed", "silent"],
)
def test_with_no_host_to_halt_nothing_is_cut_before_an_answer_shows_it_cool(
    event: MachineEvent,
) -> None:
    data, emitted = run(at(Phase.COOLING, hottest_tool=30.0), event, NO_HALT)
    assert data.state == Phase.COOLING
    assert not any(isinstance(action, TurnRelayOff) for action in emitted)


def test_a_job_seen_in_a_status_that_may_be_stale_counts_that_much_less() -> None:
    # Another integration's entities may be as old as its last update (``status_lag``): a job
    # they show running at the minimum job time may have ended that long before.
    settings = replace(SETTINGS, status_lag=30.0)
    start = at(Phase.PRINT_STARTED, job_started_at=T0)
    due = T0 + SETTINGS.min_job_time
    assert next_deadline(start, settings, T0) == due + 30
    data, _ = run(start, StatusReceived(due + 29, PRINTING_HOT, asked_at=due + 29), settings)
    assert data.state == Phase.PRINT_STARTED
    data, emitted = run(data, StatusReceived(due + 30, PRINTING_HOT, asked_at=due + 30), settings)
    assert (data.state, emitted) == (Phase.ARMED, ENTER_ARMED)


def test_the_job_s_hottest_reading_is_written_at_once() -> None:
    # It decides arming: a crash right after must not lose it (readings alone wait a moment).
    job = at(Phase.PRINT_STARTED, job_max_temperature=40.0, hottest_tool=40.0)
    hotter = replace(job, job_max_temperature=210.0, hottest_tool=210.0)
    assert not readings_only_changed(job, hotter)
    assert readings_only_changed(hotter, replace(hotter, hottest_tool=205.0))
