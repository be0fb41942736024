"""The safety rules, checked on long random sequences of events (hypothesis).

After every event the actions the machine emitted are checked against the rules of the design:
no power cut during a job or while OctoPrint is unreachable during one, no cut before the host
was asked to halt and stayed silent for the halt delay, no halt request during a job; only an
explicit force (the force action, the local long press while powering off) may cut outside
these rules, and a force never loses a job unless the user allowed it. Power comes on only when
somebody asks, or to undo a relay switched off during a job; in start-up mode off only when
somebody asks. Every action the
machine emits must be explained by one of the rules in ``ACTION_RULES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.octoplugout.machine import (
    ButtonPressed,
    CancelRequested,
    CommandRefused,
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
    pushed_status_applies,
    transition,
)
from custom_components.octoplugout.octoprint import FAULT_FLAGS, JOB_FLAGS, job_of_flags

# The normal run tries this many sequences; benchmarks may ask for more.
EXAMPLES = int(os.environ.get("OCTOPLUGOUT_SAFETY_EXAMPLES", "2000"))
FLAGS = sorted(JOB_FLAGS | FAULT_FLAGS | {"operational", "ready"})

temperatures = st.floats(min_value=15, max_value=260, allow_nan=False)
statuses = st.builds(
    Status,
    job=st.frozensets(st.sampled_from(FLAGS), max_size=3).map(job_of_flags),
    tool_temperatures=st.lists(temperatures, max_size=2).map(tuple),
    bed_temperature=st.none() | temperatures,
    busy=st.booleans(),
)
# Each step: seconds that pass, then one event built at the new time.
steps = st.tuples(
    st.floats(min_value=0, max_value=400, allow_nan=False),
    st.one_of(
        st.tuples(statuses, st.sampled_from([None, 0.0, 0.5, 10.0])).map(
            lambda answer: ("status", answer)
        ),
        st.just(("lost", None)),
        st.sampled_from([None, *JobState]).map(lambda job: ("job_event", job)),
        st.booleans().map(lambda long: ("button", long)),
        st.sampled_from([True, False, None]).map(lambda on: ("relay", on)),
        st.sampled_from(list(ShutdownOutcome)).map(lambda outcome: ("answer", outcome)),
        st.just(("timer", None)),
        st.sampled_from(list(Mode)).map(lambda mode: ("mode", mode)),
        st.just(("power_on", None)),
        st.just(("cancel", None)),
        st.booleans().map(lambda allow: ("force", allow)),
        st.just(("restart", None)),
    ),
)
machine_settings = st.builds(
    Settings,
    startup_mode=st.sampled_from(list(StartupMode)),
    min_job_time=st.sampled_from([0.0, 60.0, 300.0]),
    halt_delay=st.sampled_from([0.0, 15.0, 60.0]),
    shutdown_timeout=st.sampled_from([10.0, 180.0]),
    uptime_guard=st.sampled_from([0.0, 600.0]),
    restore_relay_during_job=st.booleans(),
)


def build_event(kind: str, value: object, now: float) -> MachineEvent:
    """The event of one generated step."""
    match kind:
        case "status":
            # Pushed (None), or an answer to a request made some seconds before it arrived.
            assert isinstance(value, tuple)
            status, lag = value
            if lag is None:
                return StatusReceived(now, status, pushed=True)
            return StatusReceived(now, status, asked_at=now - lag)
        case "lost":
            return OctoPrintLost(now)
        case "job_event":
            assert value is None or isinstance(value, JobState)
            return JobEvent(now, value)
        case "button":
            return ButtonPressed(now, long=bool(value))
        case "relay":
            assert value is None or isinstance(value, bool)
            return RelayReported(now, value)
        case "answer":
            assert isinstance(value, ShutdownOutcome)
            return ShutdownAnswered(now, value)
        case "timer":
            return TimerFired(now)
        case "mode":
            assert isinstance(value, Mode)
            return ModeSelected(now, value)
        case "power_on":
            return PowerOnRequested(now)
        case "cancel":
            return CancelRequested(now)
        case "force":
            return ForceRequested(now, allow_job_loss=bool(value))
        case _:
            return Resumed(now)


@dataclass(frozen=True)
class Step:
    """One transition: the settings, the data before, the event and the data after."""

    settings: Settings
    before: MachineData
    event: MachineEvent
    after: MachineData


def _restores_the_relay(step: Step) -> bool:
    event = step.event
    return (
        isinstance(event, RelayReported)
        and event.relay_on is False
        and step.before.job_active
        and step.settings.restore_relay_during_job
        and step.settings.startup_mode != StartupMode.OFF
    )


def _asked_by_user(event: MachineEvent) -> bool:
    return isinstance(
        event, (ButtonPressed, ModeSelected, ForceRequested, PowerOnRequested, CancelRequested)
    )


def _job_known(step: Step) -> bool:
    # A fresh status tells; otherwise the last one holds (unreachable during a job is a job).
    source = step.after if isinstance(step.event, StatusReceived) else step.before
    return source.job_active


# Every kind of action the machine may emit, and the rule that explains it. An action of a
# kind missing here, or one its rule does not explain, fails the test.
ACTION_RULES: dict[type, tuple[str, Callable[[Step], bool]]] = {
    TurnRelayOn: (
        "power comes on from off when asked, or a relay switched off during a job is restored",
        lambda step: (step.before.state == Phase.OFF and _asked_by_user(step.event))
        or _restores_the_relay(step),
    ),
    TurnRelayOff: ("power goes off only into the off state", lambda s: s.after.state == Phase.OFF),
    SendShutdown: (
        "the halt request goes out on entering shutting_down_host, or again on an answer after "
        "one that got no answer (or after a restart)",
        lambda step: step.after.state == Phase.SHUTTING_DOWN_HOST
        and (
            step.before.state != Phase.SHUTTING_DOWN_HOST
            or (step.before.halt_unanswered and isinstance(step.event, StatusReceived))
        ),
    ),
    SetHeatersOff: (
        "heaters go off for the cool-down when asked for, never during a job",
        lambda step: step.settings.heaters_off and not _job_known(step),
    ),
    RefreshStatus: (
        "a safe power-off, a halt request with no answer (or a restart while one was out), a "
        "cool-down ready on a remembered status, a job's clock running out, a pushed status "
        "that would start or end a job (or came before any answer), a job event, or an answer "
        "older than such a push or event that tells otherwise asks OctoPrint",
        lambda step: step.after.state in (Phase.GOING_DOWN, Phase.COOLING)
        or (
            isinstance(step.event, StatusReceived)
            and step.event.pushed
            and not pushed_status_applies(step.before, step.event.status)
        )
        or isinstance(step.event, JobEvent)
        or (
            isinstance(step.event, StatusReceived)
            and not step.event.pushed
            and step.before.unsettled_at is not None
            and step.after.unsettled_at is not None
        )
        or step.after.halt_unanswered
        or step.after.state == Phase.PRINT_STARTED
        or (
            isinstance(step.event, ShutdownAnswered)
            and step.event.outcome == ShutdownOutcome.UNREACHABLE
            and step.after.forced
            and step.after.state == Phase.POWERING_OFF
        ),
    ),
    SendMessage: ("a message on the printer's screen changes nothing", lambda step: True),
    Notify: ("a notification changes nothing", lambda step: True),
    ShowPattern: (
        "the LED shows the phase entered (or, after a start, the phase it is in)",
        lambda step: step.after.state != step.before.state
        or isinstance(step.event, (Started, Resumed)),
    ),
    SetPowerLock: (
        "the lock follows whether a job runs or the host halts, and is never wrongly released",
        lambda step: lock_wanted(step.after) != lock_wanted(step.before)
        or isinstance(step.event, (Started, Resumed)),
    ),
}


def check_explained(step: Step, actions: list[object]) -> None:
    """Every action is one the rules know, in a situation its rule covers."""
    for action in actions:
        assert type(action) in ACTION_RULES, f"unknown action {action!r}"
        rule, explains = ACTION_RULES[type(action)]
        assert explains(step), f"{action!r} is not explained by: {rule}; {step}"


@dataclass
class Observer:
    """What the rules need to know, seen from outside the machine."""

    shutdown_asked: bool = False
    # The host answered the latest halt request: it has it.
    halt_accepted: bool = False
    job_loss_allowed: bool = False
    forced: bool = False
    silent_since: float | None = None
    cuts: list[str] = field(default_factory=list)

    def watch(self, event: MachineEvent) -> None:
        """Follow whether the host answers, from the events alone."""
        if isinstance(event, StatusReceived):
            self.silent_since = None
        elif (
            isinstance(event, ShutdownAnswered)
            and event.outcome == ShutdownOutcome.SENT
            and self.shutdown_asked
        ):
            self.halt_accepted = True
        elif self.halt_accepted and self.silent_since is None and isinstance(event, OctoPrintLost):
            # A status check found the host silent after it accepted the halt request (a
            # silence after a request that got no answer proves nothing).
            self.silent_since = event.now


def check_step(
    machine: Settings,
    before: MachineData,
    event: MachineEvent,
    after: MachineData,
    actions: list[object],
    seen: Observer,
) -> None:
    """Every safety rule for one transition."""
    local_override = isinstance(event, ButtonPressed) and event.long
    by_hand = isinstance(event, (ButtonPressed, ModeSelected, ForceRequested))
    if isinstance(event, ForceRequested):
        seen.forced = True
        seen.job_loss_allowed = seen.job_loss_allowed or event.allow_job_loss
    # What is known of a job now: a fresh status tells, otherwise the last one still holds
    # (an unreachable OctoPrint during a job is a job in progress).
    job = after.job_active if isinstance(event, StatusReceived) else before.job_active
    seen.watch(event)
    if before.state == Phase.PRINT_STARTED and after.state == Phase.ARMED and not by_hand:
        # Rule 3: a job arms by itself only on an answer that shows it running.
        assert isinstance(event, StatusReceived), (before, event)
        assert after.job_active, (before, event)
    for action in actions:
        if isinstance(action, TurnRelayOn) and machine.startup_mode == StartupMode.OFF:
            # Rule 6: in start-up mode off nothing powers up unless somebody asks.
            assert _asked_by_user(event), (before, event)
        if isinstance(action, SendShutdown):
            # Never ask the host to halt during a job (unless the user accepted losing it).
            assert not job or seen.job_loss_allowed, (before, event)
            seen.shutdown_asked = True
            seen.halt_accepted = False
            seen.silent_since = None
        if isinstance(action, ShowPattern):
            assert action.phase == after.state, (before, event)
        if isinstance(action, SetPowerLock):
            assert action.locked == lock_wanted(after), (before, event)
        if isinstance(action, TurnRelayOff):
            # A locked plug would refuse the cut: the lock goes first.
            assert (
                not lock_wanted(before)
                or SetPowerLock(locked=False) in actions[: actions.index(action)]
            ), (before, event)
            seen.cuts.append(before.state.value)
            if action.forced:
                # Rule 5: only an explicit force cuts outside the rules.
                assert seen.forced or local_override, (before, event)
                assert not job or seen.job_loss_allowed or local_override, (before, event)
                continue
            # Rule 1: no cut during a job, reachable or not.
            assert not job, (before, event)
            # Rule 2: the host accepted a halt request, then stayed silent for the halt delay.
            assert seen.shutdown_asked, (before, event)
            assert seen.halt_accepted, (before, event)
            assert seen.silent_since is not None, (before, event)
            assert event.now - seen.silent_since >= machine.halt_delay, (before, event)
    if after.state in (Phase.OFF, Phase.ON, Phase.WAITING_FOR_OCTOPRINT, Phase.IDLE):
        seen.shutdown_asked = False
        seen.halt_accepted = False
        seen.forced = False
        seen.job_loss_allowed = False


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    machine_settings,
    st.sampled_from([True, False, None]),
    st.lists(steps, min_size=20, max_size=200),
)
def test_no_sequence_of_events_breaks_a_safety_rule(
    machine: Settings, relay_on: bool | None, sequence: list[tuple[float, tuple[str, object]]]
) -> None:
    now = 1_000_000.0
    data, _ = transition(MachineData(), machine, Started(now, relay_on))
    seen = Observer()
    for seconds, (kind, value) in sequence:
        now += seconds
        event = build_event(kind, value, now)
        try:
            after, actions = transition(data, machine, event)
        except CommandRefused:
            assert isinstance(event, ForceRequested)
            assert data.job_active
            assert not event.allow_job_loss
            continue
        check_step(machine, data, event, after, list(actions), seen)
        check_explained(Step(machine, data, event, after), list(actions))
        data = after
