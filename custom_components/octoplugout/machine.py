"""The OctoPlugout state machine as pure code.

Everything OctoPlugout decides is decided here: ``transition(data, settings, event)`` takes the
current machine data and one event and returns the next data plus the actions to carry out.
There is no I/O, no clock and no Home Assistant in this module; time arrives inside events as
seconds since the epoch, so the rules can be read and tested on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from .options import MACHINE_OPTION_KEYS, choice, number, toggle, with_defaults

VERSION = "1.0"


class Phase(StrEnum):
    """The machine's states; the comment gives the original firmware's state number."""

    OFF = "off"  # 0: printer and host unpowered
    ON = "on"  # 1: powered, not watching OctoPrint ("always on")
    WAITING_FOR_OCTOPRINT = "waiting_for_octoprint"  # 2: watching, OctoPrint not reachable yet
    IDLE = "idle"  # 3: watching, OctoPrint reachable, no job
    PRINT_STARTED = "print_started"  # 9: a job runs, not yet armed
    ARMED = "armed"  # 4: will power off after this job
    COOLING = "cooling"  # 5: job over, waiting for the hotend to cool
    SHUTTING_DOWN_HOST = "shutting_down_host"  # 6: asking OctoPrint to halt the host
    POWERING_OFF = "powering_off"  # 7: halt asked, waiting for the host to stop answering
    GOING_DOWN = "going_down"  # 8: a safe power-off was asked for by hand


class StartupMode(StrEnum):
    """What the plug does when it is powered on."""

    OFF = "off"
    ALWAYS_ON = "always_on"
    WATCHING = "watching"


DEFAULT_STARTUP_MODE = StartupMode(choice("startup_mode"))


class Mode(StrEnum):
    """The user's intent, as shown by the Mode select."""

    ALWAYS_ON = "always_on"
    AFTER_PRINT = "after_print"
    OFF = "off"


class EventKind(StrEnum):
    """Steps reported to automations as ``octoplugout_event``."""

    PRINT_STARTED = "print_started"
    ARMED = "armed"
    COOLING = "cooling"
    HOST_SHUTDOWN_SENT = "host_shutdown_sent"
    POWER_OFF_PENDING = "power_off_pending"
    POWERED_OFF = "powered_off"
    CANCELLED = "cancelled"
    PROBLEM = "problem"


class Problem(StrEnum):
    """Why something did not go to plan; carried by ``EventKind.PROBLEM``."""

    RELAY_OFF_DURING_JOB = "relay_off_during_job"
    HOST_DID_NOT_HALT = "host_did_not_halt"
    HOST_CAME_BACK = "host_came_back"
    HOST_UNREACHABLE = "host_unreachable"
    NO_HOTEND_READING = "no_hotend_reading"
    SHUTDOWN_REFUSED = "shutdown_refused"
    THERMAL_RUNAWAY = "thermal_runaway"
    JOB_STARTED_WHILE_HALTING = "job_started_while_halting"


class ShutdownOutcome(StrEnum):
    """How OctoPrint answered the request to halt the host."""

    SENT = "sent"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"


class JobState(StrEnum):
    """What a printer host says of the job: none, one under way, or a printer fault.

    A fault (the printer disconnected in an error, the firmware halted) counts as a job, but
    only for the fault limit: a printer that stays disconnected must not keep the plug on
    forever.
    """

    NONE = "none"
    RUNNING = "running"
    FAULT = "fault"


# The states in which OctoPrint is polled fast, as in the original (5 s instead of 15 s).
FAST_POLL_STATES = frozenset(
    {
        Phase.IDLE,
        Phase.PRINT_STARTED,
        Phase.ARMED,
        Phase.COOLING,
        Phase.SHUTTING_DOWN_HOST,
        Phase.POWERING_OFF,
        Phase.GOING_DOWN,
    }
)
# The states after a job was seen over: a printer fault there is no new job.
_JOB_OVER_STATES = frozenset({Phase.COOLING, Phase.SHUTTING_DOWN_HOST, Phase.POWERING_OFF})
# The states in which a relay-off without a force is part of the plan.
POWERING_DOWN_STATES = frozenset(
    {Phase.COOLING, Phase.SHUTTING_DOWN_HOST, Phase.POWERING_OFF, Phase.GOING_DOWN}
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every timing and threshold; the user's come from the option table (``options.py``)."""

    startup_mode: StartupMode = DEFAULT_STARTUP_MODE
    min_job_time: float = number("min_job_time")
    arm_temperature: float = number("arm_temperature")
    cool_temperature: float = number("cool_temperature")
    bed_cool_temperature: float | None = number("bed_cool_temperature") or None
    fault_limit: float = number("fault_limit")
    halt_delay: float = number("halt_delay")
    shutdown_timeout: float = number("shutdown_timeout")
    uptime_guard: float = number("uptime_guard")
    heaters_off: bool = toggle("heaters_off")
    wait_for_timelapse: bool = toggle("wait_for_timelapse")
    thermal_runaway: bool = toggle("thermal_runaway")
    max_hotend_temperature: float = number("max_hotend_temperature")
    max_bed_temperature: float = number("max_bed_temperature")
    fast_poll_interval: float = 5.0
    slow_poll_interval: float = 15.0
    halting_poll_interval: float = 2.0
    pushed_poll_interval: float = 300.0
    # Seconds between pushed updates: often while a reading decides (the cool-down, a halt),
    # seldom while only events do (a job's start and end come as events, not as updates).
    push_interval_deciding: float = 0.5
    push_interval_watching: float = 10.0
    # With a plain switch as the relay, a relay-off during a job is undone. A plug with a
    # power lock refuses such requests itself; an off that gets through was a deliberate
    # local override (a long hold on the plug) and is accepted.
    restore_relay_during_job: bool = True
    # How much older than its reading a status may be (another integration's entities, as it
    # last updated them): a job's clock counts that much less, so that a job shown running in
    # a stale status never counts as longer than it surely ran.
    status_lag: float = 0.0
    # Whether there is a host to halt before the cut. A printer whose integration offers none
    # (one that holds no computer a cut could harm) is cut right after its cool-down.
    halts_host: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **rest: Any) -> Settings:
        """The settings an entry's options give (every option it lacks at its default)."""
        values = with_defaults(options)
        kwargs: dict[str, Any] = {key: values[key] for key in MACHINE_OPTION_KEYS}
        kwargs["startup_mode"] = StartupMode(values["startup_mode"])
        kwargs["bed_cool_temperature"] = float(values["bed_cool_temperature"]) or None
        return cls(**kwargs, **rest)


@dataclass(frozen=True, slots=True)
class Status:
    """What the machine needs from one status of the printer host."""

    job: JobState = JobState.NONE
    tool_temperatures: tuple[float, ...] = ()
    bed_temperature: float | None = None
    # Busy with work that power must not cut although no job runs (a timelapse rendering).
    busy: bool = False
    tool_targets: tuple[float, ...] = ()

    @property
    def hottest_tool(self) -> float | None:
        """The hottest hotend, or None when OctoPrint reports none."""
        return max(self.tool_temperatures, default=None)

    @property
    def highest_target(self) -> float | None:
        """The highest hotend target, or None when OctoPrint reports none."""
        return max(self.tool_targets, default=None)


@dataclass(frozen=True, slots=True)
class MachineData:
    """The machine's memory; every time is seconds since the epoch."""

    state: Phase = Phase.WAITING_FOR_OCTOPRINT
    since: float = 0.0
    reachable: bool = False
    job_active: bool = False
    job_started_at: float | None = None
    job_max_temperature: float = 0.0
    # The job under way was seen running the minimum job time, as hot as arming asks: it may
    # arm the power-off. An answer showing no job undoes it, and so does a silence unless the
    # power-off is armed (the job seen after a silence may be another one).
    job_qualified: bool = False
    fault_since: float | None = None
    arming_blocked: bool = False
    user_power_off: bool = False
    # When the user last asked for a power-off: only an answer asked for after it may decide
    # the halt request (a remembered status can hide a job started since).
    power_off_asked_at: float | None = None
    forced: bool = False
    job_loss_allowed: bool = False
    powered_on_at: float | None = None
    shutdown_sent_at: float | None = None
    host_gone_since: float | None = None
    # The halt request got no answer: nothing says the host has it, so no silence counts as
    # a halt. ``shutdown_sent_at`` then says since when the machine waits for an answer.
    halt_unanswered: bool = False
    # The user was told why the power-off waits (OctoPrint silent, no hotend reading).
    wait_reported: bool = False
    relay_on: bool | None = None
    hottest_tool: float | None = None
    # A hotend heating towards a target passes the cool-down temperature on its way up.
    hotend_target: float | None = None
    bed_temperature: float | None = None
    busy: bool = False
    # The job of the latest status taken (None: none since a silence, a restart or power-off).
    # A pushed status may be older than it: one that starts or ends a job waits for an answer.
    job_seen: JobState | None = None
    # A pushed status showed a job the latest answer did not: it may be old, or a job that
    # just started. Until an answer says which, it counts as a job for every safety rule.
    job_hinted: bool = False
    # When the latest pushed status not taken, or job event, arrived, and whether it showed a
    # job: an answer asked before it may predate the change, so settles it only by agreeing.
    unsettled_at: float | None = None
    unsettled_running: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain data for storage and diagnostics."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MachineData:
        """Rebuild saved data, ignoring keys a newer or older version wrote."""
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        known["state"] = Phase(known.get("state", Phase.WAITING_FOR_OCTOPRINT))
        if known.get("job_seen") is not None:
            known["job_seen"] = JobState(known["job_seen"])
        return cls(**known)


# Events: everything that can happen to the machine.


@dataclass(frozen=True, slots=True)
class Started:
    """The integration starts with no saved state; ``relay_on`` is the relay's state."""

    now: float
    relay_on: bool | None


@dataclass(frozen=True, slots=True)
class Resumed:
    """The integration starts again with saved data (an HA restart or reload)."""

    now: float


@dataclass(frozen=True, slots=True)
class StatusReceived:
    """OctoPrint's status: an answer to a status request, or pushed over its socket."""

    now: float
    status: Status
    # Pushed by OctoPrint: it may be older than the latest answer (OctoPrint holds some back).
    pushed: bool = False
    # When the request behind an answer went out (None: when it arrived).
    asked_at: float | None = None

    def asked_since(self, moment: float) -> bool:
        """Whether this is an answer to a request made at or after ``moment``."""
        asked = self.now if self.asked_at is None else self.asked_at
        return not self.pushed and asked >= moment


@dataclass(frozen=True, slots=True)
class JobEvent:
    """The host told of a change (a print started or ended, the printer's state changed)."""

    now: float
    # The job the change implies; None when it says nothing of the job.
    job: JobState | None = None


@dataclass(frozen=True, slots=True)
class OctoPrintLost:
    """OctoPrint did not answer (refused, timed out, no route)."""

    now: float


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """The plug's button was pressed."""

    now: float
    long: bool


@dataclass(frozen=True, slots=True)
class RelayReported:
    """Home Assistant reported the relay's state; None means unavailable."""

    now: float
    relay_on: bool | None


@dataclass(frozen=True, slots=True)
class ShutdownAnswered:
    """The outcome of the request to halt the host."""

    now: float
    outcome: ShutdownOutcome


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A deadline from ``next_deadline`` has passed."""

    now: float


@dataclass(frozen=True, slots=True)
class ModeSelected:
    """The user chose a mode (select entity, power switch, services, MQTT)."""

    now: float
    mode: Mode


@dataclass(frozen=True, slots=True)
class PowerOnRequested:
    """The user asked for power in the start-up mode (the Power switch)."""

    now: float


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The user cancelled a pending power-off."""

    now: float


@dataclass(frozen=True, slots=True)
class ForceRequested:
    """The user forced a power-off; only allowed during a job with ``allow_job_loss``."""

    now: float
    allow_job_loss: bool


MachineEvent = (
    Started
    | Resumed
    | StatusReceived
    | JobEvent
    | OctoPrintLost
    | ButtonPressed
    | RelayReported
    | ShutdownAnswered
    | TimerFired
    | ModeSelected
    | PowerOnRequested
    | CancelRequested
    | ForceRequested
)


# Actions: what the machine asks the outside world to do.


@dataclass(frozen=True, slots=True)
class TurnRelayOn:
    """Power the printer and host."""


@dataclass(frozen=True, slots=True)
class TurnRelayOff:
    """Cut power; ``forced`` says it bypassed the normal safe sequence."""

    forced: bool = False


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Show a message on the printer's display (M117)."""

    text: str


@dataclass(frozen=True, slots=True)
class SetHeatersOff:
    """Set every heater's target temperature to 0."""


@dataclass(frozen=True, slots=True)
class SendShutdown:
    """Ask OctoPrint to halt the host; answer with ``ShutdownAnswered``."""


@dataclass(frozen=True, slots=True)
class RefreshStatus:
    """Ask the host for its status now instead of at the next poll."""

    # An answer already asked for will do: the machine asks again if it settles nothing.
    asked_will_do: bool = False


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell users and automations about a step."""

    kind: EventKind
    problem: Problem | None = None


@dataclass(frozen=True, slots=True)
class ShowPattern:
    """Show a phase's pattern on the plug's LED."""

    phase: Phase


@dataclass(frozen=True, slots=True)
class SetPowerLock:
    """Make the plug refuse (or again accept) requests to switch its relay off."""

    locked: bool


Action = (
    TurnRelayOn
    | TurnRelayOff
    | SendMessage
    | SetHeatersOff
    | SendShutdown
    | RefreshStatus
    | Notify
    | ShowPattern
    | SetPowerLock
)
# What the plug shows and refuses: it follows the phase rather than deciding anything.
OUTPUT_ACTIONS = (ShowPattern, SetPowerLock)


class CommandRefused(Exception):
    """A user command that the safety rules do not allow now."""

    def __init__(self, reason: str) -> None:
        """Keep a machine-readable reason for the caller's translated error."""
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Step:
    """A transition under construction."""

    data: MachineData
    actions: list[Action] = field(default_factory=list)

    def go(self, settings: Settings, state: Phase, now: float) -> None:
        """Enter a state, with its entry actions; re-entering the same state does nothing."""
        if state == self.data.state:
            return
        if self.data.state == Phase.ARMED and not _clock_qualifies(self.data, settings, now):
            # Armed through a silence, the job seen since may be another one: once no longer
            # armed, it must qualify on its own clock.
            self.data = replace(self.data, job_qualified=False)
        self.data = replace(
            self.data, state=state, since=now, halt_unanswered=False, wait_reported=False
        )
        if state == Phase.OFF:
            # Without power nothing of the host, the job or the hotends is known any more.
            self.data = replace(
                self.data,
                reachable=False,
                hottest_tool=None,
                hotend_target=None,
                job_active=False,
                job_started_at=None,
                job_max_temperature=0.0,
                job_qualified=False,
                fault_since=None,
                arming_blocked=False,
                job_seen=None,
                job_hinted=False,
                unsettled_at=None,
            )
            # Nor is anything left for an answer asked for on the way here to decide.
            self.actions = [
                action for action in self.actions if not isinstance(action, RefreshStatus)
            ]
        self.actions.extend(_entry_actions(self.data, settings))
        if state in (Phase.OFF, Phase.ON, Phase.WAITING_FOR_OCTOPRINT, Phase.IDLE):
            self.data = replace(
                _request_dropped(self.data),
                shutdown_sent_at=None,
                host_gone_since=None,
            )


def _clock_qualifies(data: MachineData, settings: Settings, until: float) -> bool:
    """Whether the job qualifies to arm on its own clock (since it was last seen anew).

    Its clock is read until ``until``, and its hottest reading must reach the arm temperature.
    """
    return (
        data.job_started_at is not None
        and until - settings.status_lag - data.job_started_at >= settings.min_job_time
        and data.job_max_temperature >= settings.arm_temperature
    )


def _request_asked(data: MachineData, now: float) -> MachineData:
    """The user asked for a power-off now."""
    return replace(data, user_power_off=True, power_off_asked_at=now)


def _request_dropped(data: MachineData) -> MachineData:
    """Nothing is left of the user's power-off request (nor of a force)."""
    return replace(
        data, user_power_off=False, power_off_asked_at=None, forced=False, job_loss_allowed=False
    )


def _entry_actions(data: MachineData, settings: Settings) -> list[Action]:
    """What happens on entering ``data.state``."""
    match data.state:
        case Phase.IDLE:
            return [SendMessage(f"OctoPlugout {VERSION}")]
        case Phase.ON:
            return [SendMessage("Plug NOT monitoring")]
        case Phase.PRINT_STARTED:
            return [SendMessage("PRINT started"), Notify(EventKind.PRINT_STARTED)]
        case Phase.ARMED:
            return [SendMessage("Poweroff after PRINT"), Notify(EventKind.ARMED)]
        case Phase.COOLING:
            actions: list[Action] = []
            if settings.heaters_off:
                actions.append(SetHeatersOff())
            actions += [
                SendMessage(f"Shutdown at T={settings.cool_temperature:.1f} C"),
                Notify(EventKind.COOLING),
            ]
            return actions
        case Phase.SHUTTING_DOWN_HOST:
            return [SendMessage("Host halting, then off"), SendShutdown()]
        case Phase.GOING_DOWN:
            return [RefreshStatus()]
        case Phase.OFF:
            return [Notify(EventKind.POWERED_OFF)]
        case _:
            return []


def job_in_progress(
    status: Status, fault_since: float | None, now: float, settings: Settings
) -> bool:
    """Whether a status means a job is under way (a fault counts until the fault limit)."""
    if status.job == JobState.RUNNING:
        return True
    if status.job == JobState.FAULT:
        return fault_since is None or now - fault_since < settings.fault_limit
    return False


def mode_of(data: MachineData) -> Mode:
    """The user's intent as the Mode select shows it."""
    if data.state == Phase.OFF or data.user_power_off:
        return Mode.OFF
    if data.state == Phase.ON:
        return Mode.ALWAYS_ON
    return Mode.AFTER_PRINT


def poll_interval(data: MachineData, settings: Settings, *, pushed: bool = False) -> float:
    """How often OctoPrint is asked for its status in this state.

    While OctoPrint pushes its status over a socket, polling is only a slow check that it is
    alive, except while the host halts (its silence is what the power cut waits for), while
    cooling (only a poll asks whether a timelapse is still rendering) and while a power-off
    asked for waits for an answer (only a polled one decides).
    """
    if data.state in (Phase.SHUTTING_DOWN_HOST, Phase.POWERING_OFF):
        return settings.halting_poll_interval
    if pushed and data.state not in (Phase.COOLING, Phase.GOING_DOWN):
        return settings.pushed_poll_interval
    if data.state in FAST_POLL_STATES:
        return settings.fast_poll_interval
    return settings.slow_poll_interval


def push_interval(data: MachineData, settings: Settings) -> float:
    """How often the host should push its status in this state.

    Only the cool-down and the halt decide on readings as they come; elsewhere the job's
    events (asked about at once) and the polls decide, and pushed readings are for display.
    """
    if data.state in POWERING_DOWN_STATES:
        return settings.push_interval_deciding
    return settings.push_interval_watching


def busy_matters(data: MachineData, settings: Settings) -> bool:
    """Whether the next status must say if the host is busy (asking costs a request)."""
    return settings.wait_for_timelapse and data.state == Phase.COOLING


def power_off_at(data: MachineData, settings: Settings) -> float | None:
    """When power will be cut if nothing changes, or None when no cut is scheduled."""
    if data.state == Phase.POWERING_OFF and data.host_gone_since is not None:
        return data.host_gone_since + settings.halt_delay
    return None


def readings_only_changed(before: MachineData, after: MachineData) -> bool:
    """Whether only the latest readings changed: what may be written a moment later.

    A restart never decides on a saved reading (it waits for a fresh answer), so losing the
    last second of them to a crash costs nothing; every other fact is written at once, the
    hottest reading of the job among them (it decides arming: lost, a job that got hot enough
    would not arm after a crash).
    """
    return _without_readings(before) == _without_readings(after)


def _without_readings(data: MachineData) -> MachineData:
    return replace(
        data,
        hottest_tool=None,
        hotend_target=None,
        bed_temperature=None,
        busy=False,
        job_seen=None,
    )


def lock_wanted(data: MachineData) -> bool:
    """Whether the plug's power lock should refuse relay-off requests now."""
    return data.job_active or data.state in (
        Phase.PRINT_STARTED,
        Phase.ARMED,
        Phase.SHUTTING_DOWN_HOST,
        Phase.POWERING_OFF,
    )


def stay_off_at_power_up(settings: Settings) -> bool:
    """Whether the plug keeps its relay off when the mains come back (start-up mode off)."""
    return settings.startup_mode == StartupMode.OFF


def next_deadline(data: MachineData, settings: Settings, now: float) -> float | None:
    """The earliest time after ``now`` at which a ``TimerFired`` could change something."""
    deadlines: list[float] = []
    match data.state:
        case Phase.PRINT_STARTED if data.job_started_at is not None:
            deadlines.append(data.job_started_at + settings.min_job_time + settings.status_lag)
        case Phase.COOLING:
            if data.powered_on_at is not None:
                deadlines.append(data.powered_on_at + settings.uptime_guard)
            if (due := _no_reading_report_due(data, settings)) is not None:
                deadlines.append(due)
        case Phase.SHUTTING_DOWN_HOST | Phase.GOING_DOWN:
            if (due := _unreachable_report_due(data, settings)) is not None:
                deadlines.append(due)
        case Phase.POWERING_OFF:
            if data.host_gone_since is not None:
                deadlines.append(data.host_gone_since + settings.halt_delay)
            if data.shutdown_sent_at is not None:
                deadlines.append(data.shutdown_sent_at + settings.shutdown_timeout)
        case _:
            pass
    return min((deadline for deadline in deadlines if deadline > now), default=None)


def transition(
    data: MachineData, settings: Settings, event: MachineEvent
) -> tuple[MachineData, list[Action]]:
    """Apply one event; return the next data and the actions to carry out.

    Raises ``CommandRefused`` for a user command the safety rules forbid now; the data is then
    unchanged.
    """
    step = _Step(data)
    match event:
        case Started():
            _on_started(step, settings, event)
        case Resumed():
            _on_resumed(step, settings, event.now)
        case StatusReceived():
            _on_status(step, settings, event)
        case JobEvent():
            _on_job_event(step, event)
        case OctoPrintLost():
            _on_lost(step, settings, event)
        case ButtonPressed():
            _on_button(step, settings, event)
        case RelayReported():
            _on_relay(step, settings, event)
        case ShutdownAnswered():
            _on_shutdown_answered(step, settings, event)
        case TimerFired():
            _evaluate(step, settings, event.now)
        case ModeSelected():
            _on_mode(step, settings, event)
        case PowerOnRequested():
            _power_on(step, settings, event.now)
        case CancelRequested():
            _on_cancel(step, settings, event.now)
        case ForceRequested():
            _on_force(step, settings, event)
    first = isinstance(event, (Started, Resumed))
    return step.data, [*_output_changes(data, step.data, first=first), *step.actions]


def _output_changes(before: MachineData, after: MachineData, *, first: bool) -> list[Action]:
    """The plug's LED and power lock, where they change (all of them after a start).

    They go before the step's own actions: a lock is released before a relay-off it would
    refuse.
    """
    changes: list[Action] = []
    if first or after.state != before.state:
        changes.append(ShowPattern(after.state))
    if first or lock_wanted(after) != lock_wanted(before):
        changes.append(SetPowerLock(lock_wanted(after)))
    return changes


def _watching_state(data: MachineData) -> Phase:
    """Where watching resumes: a running job, a reachable idle OctoPrint, or waiting."""
    if data.job_active:
        return Phase.PRINT_STARTED
    return Phase.IDLE if data.reachable else Phase.WAITING_FOR_OCTOPRINT


def _startup_state(settings: Settings) -> Phase:
    """The state the plug enters on power-on (``ON`` when the start-up mode is off)."""
    if settings.startup_mode == StartupMode.WATCHING:
        return Phase.WAITING_FOR_OCTOPRINT
    return Phase.ON


def _on_started(step: _Step, settings: Settings, event: Started) -> None:
    # A fresh start never cuts power: an unknown relay is taken as powered.
    step.data = replace(step.data, relay_on=event.relay_on, since=event.now)
    if event.relay_on is False:
        step.data = replace(step.data, state=Phase.OFF)
        return
    step.data = replace(step.data, state=_startup_state(settings))
    step.actions.extend(_entry_actions(step.data, settings))


def _on_resumed(step: _Step, settings: Settings, now: float) -> None:
    # Saved facts are old: nothing is decided on them. The first answer (or silence) of
    # OctoPrint after the restart decides, and whether the host is still gone must be seen
    # again before any power cut.
    step.data = replace(step.data, job_seen=None)
    if step.data.state == Phase.POWERING_OFF:
        step.data = replace(step.data, host_gone_since=None)
    if step.data.state == Phase.SHUTTING_DOWN_HOST and _job_in_the_way(step.data):
        step.actions.append(Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING))
        step.go(settings, Phase.ON, now)
    elif step.data.state == Phase.SHUTTING_DOWN_HOST:
        # Whether the halt request reached the host before the restart is unknown, and a job
        # may have started meanwhile: an answer asked for now decides, as after a request that
        # got no answer.
        step.data = replace(step.data, shutdown_sent_at=now, halt_unanswered=True)
        step.actions.append(RefreshStatus())
    elif step.data.state == Phase.GOING_DOWN:
        step.actions.extend(_entry_actions(step.data, settings))


def pushed_status_applies(data: MachineData, status: Status) -> bool:
    """Whether a pushed status is taken as it is, or an answer asked for now must decide.

    A host can push a status held back from before its latest change (a print that started
    shows as idle a moment later): a job starts or ends only on a status asked for now.
    """
    if data.job_seen is None:
        return False
    return (status.job == JobState.RUNNING) == (data.job_seen == JobState.RUNNING)


def _on_job_event(step: _Step, event: JobEvent) -> None:
    """A change the host told of: what the latest status shows already needs no answer."""
    data = step.data
    if event.job is None:
        step.actions.append(RefreshStatus())
    elif event.job != data.job_seen:
        _wait_for_an_answer(step, event.now, running=event.job == JobState.RUNNING)


def _wait_for_an_answer(step: _Step, now: float, *, running: bool) -> None:
    """A job started or ended, by what the host pushed or told: an answer decides.

    A job it shows counts for every safety rule meanwhile. An answer already asked for will
    do when it agrees; one older than this that tells otherwise is asked again.
    """
    step.data = replace(
        step.data,
        job_hinted=step.data.job_hinted or running,
        unsettled_at=now,
        unsettled_running=running,
    )
    step.actions.append(RefreshStatus(asked_will_do=True))


def _settles_what_was_told(data: MachineData, answer: StatusReceived) -> bool:
    """Whether an answer settles the latest pushed status not taken, or job event."""
    if data.unsettled_at is None or answer.asked_since(data.unsettled_at):
        return True
    return (answer.status.job == JobState.RUNNING) == data.unsettled_running


def _on_status(step: _Step, settings: Settings, event: StatusReceived) -> None:
    status, now, data = event.status, event.now, step.data
    if event.pushed and not pushed_status_applies(data, status):
        _wait_for_an_answer(step, now, running=status.job == JobState.RUNNING)
        return
    settled = not event.pushed and _settles_what_was_told(data, event)
    if not event.pushed and not settled:
        # Older than the push it should settle, and telling otherwise: it may predate the job
        # starting or ending that the push shows. It still counts (it is an answer); a newer
        # one decides.
        step.actions.append(RefreshStatus())
    fault_since = data.fault_since
    if status.job == JobState.FAULT:
        fault_since = fault_since if fault_since is not None else now
    else:
        fault_since = None
    active = job_in_progress(status, fault_since, now, settings)
    if status.job != JobState.RUNNING and data.state in _JOB_OVER_STATES and not data.job_active:
        # A printer fault after the job was seen over (the cable pulled, OctoPrint restarting
        # while the printer reconnects) is no new job: the cool-down goes on, and waits for a
        # hotend reading.
        active = False
    job_started_at = data.job_started_at
    job_max = data.job_max_temperature
    arming_blocked = data.arming_blocked
    # An answer without a hotend reading (no printer connected, OctoPrint just restarted, a
    # push with only the bed) leaves the hotend unknown, and an unknown hotend is no cool one:
    # an older reading may predate heating that began since.
    hottest, target = status.hottest_tool, status.highest_target
    # A job seen for the first time, or again after a silence: its clock starts now, and what
    # was seen before counts only for an armed power-off. A printer fault keeps power on like a
    # job, but is no print: the clock starts when a job is seen running, so that time spent in
    # a fault never makes a short print after it count as a long one.
    restarted = active and (not data.job_active or job_started_at is None)
    carried = data.job_qualified and (not restarted or data.state == Phase.ARMED)
    if restarted:
        job_started_at = now if status.job == JobState.RUNNING else None
        job_max = 0.0
    if active and hottest is not None:
        job_max = max(job_max, hottest)
    if not active:
        job_started_at, job_max, arming_blocked = None, 0.0, False
    step.data = replace(
        data,
        reachable=True,
        job_active=active,
        job_started_at=job_started_at,
        job_max_temperature=job_max,
        fault_since=fault_since,
        arming_blocked=arming_blocked,
        hottest_tool=hottest,
        hotend_target=target,
        bed_temperature=status.bed_temperature,
        busy=status.busy,
        job_seen=status.job,
        job_hinted=data.job_hinted and not settled,
        unsettled_at=None if settled else data.unsettled_at,
    )
    # The job surely ran from the arrival of the first answer that showed it to the asking of
    # this one: that, not the arrival times, must cover the minimum job time. A pushed update
    # may be older than it looks, so only a polled answer counts.
    seen_until = None if event.pushed else event.asked_at or now
    qualified = active and (
        carried or (seen_until is not None and _clock_qualifies(step.data, settings, seen_until))
    )
    step.data = replace(step.data, job_qualified=qualified)
    if _thermal_runaway(step, settings, status, now):
        return
    if step.data.state == Phase.POWERING_OFF:
        _host_answered_while_halting(step, settings, now)
        return
    if step.data.state == Phase.SHUTTING_DOWN_HOST and step.data.halt_unanswered:
        if event.asked_since(step.data.shutdown_sent_at or now):
            _decide_again_after_unanswered_halt(step, settings, event)
        return
    if step.data.state == Phase.SHUTTING_DOWN_HOST and _job_in_the_way(step.data):
        # A job started while the halt request was on its way: keep power, say so.
        step.actions.append(Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING))
        step.go(settings, Phase.ON, now)
        return
    if step.data.state == Phase.GOING_DOWN:
        _resolve_going_down(step, settings, now, fresh=event.asked_since(step.data.since))
    _evaluate(step, settings, now, answer=event)


def _decide_again_after_unanswered_halt(
    step: _Step, settings: Settings, answer: StatusReceived
) -> None:
    """OctoPrint answers after a halt request that got no answer: its host did not halt.

    The power-off goes on from this answer as from any other: it waits for a job to end (as the
    original's going_down does) and for the cool-down, then asks for the halt again.
    """
    now = answer.now
    step.data = replace(step.data, halt_unanswered=False)
    if step.data.job_active:
        step.go(settings, Phase.ARMED, now)
    elif _ready_to_halt(step.data, settings, now):
        step.actions.append(SendShutdown())
    else:
        step.go(settings, Phase.COOLING, now)
    _evaluate(step, settings, now, answer=answer)


def _unreachable_report_due(data: MachineData, settings: Settings) -> float | None:
    """When to tell the user that OctoPrint's silence holds a power-off up."""
    if data.wait_reported:
        return None
    if data.state == Phase.GOING_DOWN and not data.reachable:
        return data.since + settings.shutdown_timeout
    if (
        data.state == Phase.SHUTTING_DOWN_HOST
        and data.halt_unanswered
        and data.shutdown_sent_at is not None
    ):
        return data.shutdown_sent_at + settings.shutdown_timeout
    return None


def _no_reading_report_due(data: MachineData, settings: Settings) -> float | None:
    """When to tell the user that no hotend reading holds the cool-down up."""
    if data.wait_reported or data.state != Phase.COOLING or data.hottest_tool is not None:
        return None
    return data.since + settings.fault_limit


def _report_no_reading(step: _Step, settings: Settings, now: float) -> None:
    """Tell the user once when the cool-down has had no hotend reading for the fault limit.

    Power stays on: an unknown hotend may be hot. A reading, a cancel or a force ends the wait.
    """
    due = _no_reading_report_due(step.data, settings)
    if due is not None and now >= due:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.NO_HOTEND_READING))
        step.data = replace(step.data, wait_reported=True)


def _report_silence(step: _Step, settings: Settings, now: float) -> None:
    """Tell the user once when OctoPrint's silence holds a power-off up.

    Power stays on: the silence may be a host that halted, or a network that is down while the
    host runs. Only OctoPrint answering again, a cancel or a force ends the wait.
    """
    due = _unreachable_report_due(step.data, settings)
    if due is not None and now >= due:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.HOST_UNREACHABLE))
        step.data = replace(step.data, wait_reported=True)


def _job_in_the_way(data: MachineData) -> bool:
    """A job is known (or hinted) to run and nobody accepted losing it."""
    return (data.job_active or data.job_hinted) and not data.job_loss_allowed


def _thermal_runaway(step: _Step, settings: Settings, status: Status, now: float) -> bool:
    """Cut power at once when a heater is over its maximum (opt-in)."""
    if not settings.thermal_runaway or step.data.state == Phase.OFF:
        return False
    hotend, bed = status.hottest_tool, status.bed_temperature
    if (hotend is None or hotend <= settings.max_hotend_temperature) and (
        bed is None or bed <= settings.max_bed_temperature
    ):
        return False
    step.actions += [Notify(EventKind.PROBLEM, Problem.THERMAL_RUNAWAY), TurnRelayOff(forced=True)]
    step.go(settings, Phase.OFF, now)
    return True


def _host_answered_while_halting(step: _Step, settings: Settings, now: float) -> None:
    """In POWERING_OFF the host answered: it is still up, or it came back."""
    data = step.data
    if data.host_gone_since is not None:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.HOST_CAME_BACK))
        step.go(settings, Phase.ON, now)
    elif _job_in_the_way(data):
        step.actions.append(Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING))
        step.go(settings, Phase.ON, now)
    else:
        _evaluate(step, settings, now)


def _on_lost(step: _Step, settings: Settings, event: OctoPrintLost) -> None:
    now = event.now
    # A job counts towards arming only while it is seen: a silence restarts its clock (the
    # job may have been cancelled meanwhile). It still counts as a job for every safety rule.
    # Once armed, the job stays armed through a silence (as the original's state 4 does).
    step.data = replace(
        step.data,
        reachable=False,
        job_seen=None,
        job_started_at=None,
        job_max_temperature=0.0,
        job_qualified=step.data.job_qualified and step.data.state == Phase.ARMED,
    )
    if step.data.state == Phase.POWERING_OFF and step.data.host_gone_since is None:
        step.data = replace(step.data, host_gone_since=now)
    _evaluate(step, settings, now)


def _resolve_going_down(step: _Step, settings: Settings, now: float, *, fresh: bool) -> None:
    """A power-off asked for goes on from an answer to a request made after it.

    A remembered or pushed status could hide a job started since; while OctoPrint does not
    answer, nothing is asked of the host (it may be running), and power stays on.
    """
    if not fresh:
        return
    if not step.data.forced:
        step.go(settings, Phase.ARMED, now)
    elif _job_in_the_way(step.data):
        # A force that must not lose a job found one: power stays on, and the user is told.
        step.actions.append(Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING))
        step.go(settings, Phase.ON, now)
    else:
        # A force skips the job's end and the cool-down, not the clean halt.
        _power_down(step, settings, now, forced=True)


def _evaluate(
    step: _Step, settings: Settings, now: float, *, answer: StatusReceived | None = None
) -> None:
    """Apply the rules that depend on what is known now (status, timers).

    ``answer``: OctoPrint's status that arrived with this very event, if any. Arming and the
    halt request are decided only on such a status (a polled one, asked for late enough),
    never on a remembered one.
    """
    # A chain of states can pass in one evaluation (e.g. going_down -> armed -> cooling);
    # the loop ends because every rule moves forward along the cycle or stays.
    for _ in range(len(Phase)):
        before = step.data.state
        _evaluate_once(step, settings, now, answer)
        if step.data.state == before:
            return


def _evaluate_once(
    step: _Step, settings: Settings, now: float, answer: StatusReceived | None
) -> None:
    data = step.data
    match data.state:
        case Phase.WAITING_FOR_OCTOPRINT if data.reachable:
            step.go(settings, Phase.IDLE, now)
        case Phase.IDLE if not data.reachable:
            step.go(settings, Phase.WAITING_FOR_OCTOPRINT, now)
        case Phase.IDLE if data.job_active:
            step.go(settings, Phase.PRINT_STARTED, now)
        case Phase.PRINT_STARTED:
            _evaluate_print_started(step, settings, now, answer)
        case Phase.ARMED if data.reachable and not data.job_active:
            step.go(settings, Phase.COOLING, now)
        case Phase.COOLING:
            _evaluate_cooling(step, settings, now, answer)
        case Phase.GOING_DOWN if data.forced and not data.reachable and not _job_in_the_way(data):
            # A force with OctoPrint silent cuts, as a force does when it starts that way (not
            # when a job was seen meanwhile: the force was not to lose one).
            _cut_power(step, settings, now, forced=True)
        case Phase.SHUTTING_DOWN_HOST | Phase.GOING_DOWN:
            _report_silence(step, settings, now)
        case Phase.POWERING_OFF:
            _evaluate_powering_off(step, settings, now)
        case _:
            pass


def _evaluate_print_started(
    step: _Step, settings: Settings, now: float, answer: StatusReceived | None
) -> None:
    data = step.data
    if not data.job_active:
        # A job that ends before arming is a short or aborted one: keep watching. An
        # unreachable OctoPrint keeps counting as a running job (a busy host is not a halted
        # one), so only a reachable OctoPrint can end the job here.
        if data.reachable:
            step.go(settings, Phase.IDLE, now)
        return
    if data.arming_blocked:
        return
    if data.job_qualified and answer is not None and not answer.pushed:
        step.go(settings, Phase.ARMED, now)
    elif data.job_qualified or _clock_qualifies(data, settings, now):
        # The job's clock ran out: a fresh answer showing it still running decides.
        step.actions.append(RefreshStatus())


def _evaluate_cooling(
    step: _Step, settings: Settings, now: float, answer: StatusReceived | None
) -> None:
    data = step.data
    if data.job_active:
        step.go(settings, Phase.ARMED, now)
        return
    _report_no_reading(step, settings, now)
    if not data.reachable or not _ready_to_halt(data, settings, now):
        return
    asked = 0.0 if data.power_off_asked_at is None else data.power_off_asked_at
    if answer is not None and answer.asked_since(asked):
        _power_down(step, settings, now, forced=data.forced)
    else:
        # Ready on a remembered or pushed status (the uptime guard passed, the user asked):
        # the halt request waits for an answer asked for now, which may show a job started.
        step.actions.append(RefreshStatus())


def _ready_to_halt(data: MachineData, settings: Settings, now: float) -> bool:
    """The hotend and bed are cool, no timelapse renders, and the uptime guard has passed.

    A hotend below the cool-down temperature but heating towards a target above it (a print
    started from the printer's own screen, someone preheating) is not cool, and neither is one
    the latest status did not read.
    """
    hotend_cool = (
        data.hottest_tool is not None and data.hottest_tool < settings.cool_temperature
    ) and (data.hotend_target is None or data.hotend_target < settings.cool_temperature)
    bed_cool = (
        settings.bed_cool_temperature is None
        or data.bed_temperature is None
        or data.bed_temperature < settings.bed_cool_temperature
    )
    busy = settings.wait_for_timelapse and data.busy
    guard_passed = (
        data.user_power_off
        or data.powered_on_at is None
        or now - data.powered_on_at >= settings.uptime_guard
    )
    return hotend_cool and bed_cool and not busy and guard_passed


def _evaluate_powering_off(step: _Step, settings: Settings, now: float) -> None:
    data = step.data
    if _job_in_the_way(data):
        return
    if data.host_gone_since is not None and now - data.host_gone_since >= settings.halt_delay:
        _cut_power(step, settings, now, forced=data.forced)
        return
    if data.shutdown_sent_at is None or now - data.shutdown_sent_at < settings.shutdown_timeout:
        return
    if data.forced:
        # A forced power-off waits for the host at most the shutdown timeout.
        _cut_power(step, settings, now, forced=True)
    elif data.host_gone_since is None:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.HOST_DID_NOT_HALT))
        step.go(settings, Phase.ON, now)


def _power_down(step: _Step, settings: Settings, now: float, *, forced: bool) -> None:
    """Halt the host, then cut; with no host to halt, cut now."""
    if settings.halts_host:
        step.go(settings, Phase.SHUTTING_DOWN_HOST, now)
    else:
        _cut_power(step, settings, now, forced=forced)


def _cut_power(step: _Step, settings: Settings, now: float, *, forced: bool) -> None:
    step.actions.append(TurnRelayOff(forced=forced))
    step.data = replace(step.data, relay_on=False)
    step.go(settings, Phase.OFF, now)


def _on_shutdown_answered(step: _Step, settings: Settings, event: ShutdownAnswered) -> None:
    if step.data.state != Phase.SHUTTING_DOWN_HOST:
        return
    now = event.now
    if _job_in_the_way(step.data):
        step.actions.append(Notify(EventKind.PROBLEM, Problem.JOB_STARTED_WHILE_HALTING))
        step.go(settings, Phase.ON, now)
        return
    if event.outcome == ShutdownOutcome.REFUSED:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.SHUTDOWN_REFUSED))
        step.go(settings, Phase.ON, now)
        return
    if event.outcome == ShutdownOutcome.UNREACHABLE and not step.data.forced:
        # An unanswered halt request proves nothing: the host may be halting, or it may never
        # have got it (a broken network, OctoPrint not up yet). Power stays on and the machine
        # asks at once; a silence from here on is no halt, only an answer moves on.
        step.data = replace(step.data, shutdown_sent_at=now, halt_unanswered=True)
        step.actions.append(RefreshStatus())
        return
    # A forced power-off whose halt request got no answer waits for the host's silence (or at
    # most the shutdown timeout) before it cuts.
    step.data = replace(step.data, shutdown_sent_at=now, host_gone_since=None)
    step.actions += [Notify(EventKind.HOST_SHUTDOWN_SENT), Notify(EventKind.POWER_OFF_PENDING)]
    step.go(settings, Phase.POWERING_OFF, now)
    if event.outcome == ShutdownOutcome.UNREACHABLE:
        step.actions.append(RefreshStatus())
    _evaluate(step, settings, now)


def _power_on(step: _Step, settings: Settings, now: float) -> None:
    """Power on in the start-up mode; already powered: nothing changes."""
    if step.data.state != Phase.OFF:
        return
    _switch_on_into(step, settings, _startup_state(settings), now)


def _switch_on_into(step: _Step, settings: Settings, state: Phase, now: float) -> None:
    if step.data.state == Phase.OFF:
        step.actions.append(TurnRelayOn())
        step.data = replace(step.data, relay_on=True, powered_on_at=now)
    step.go(settings, state, now)
    _evaluate(step, settings, now)


def _request_safe_power_off(step: _Step, settings: Settings, now: float) -> None:
    """The safe power-off: wait for the job and the cool-down, halt the host, then cut."""
    state = step.data.state
    if state == Phase.OFF:
        return
    step.data = replace(_request_asked(step.data, now), arming_blocked=False)
    if state in (Phase.ON, Phase.WAITING_FOR_OCTOPRINT, Phase.IDLE, Phase.PRINT_STARTED):
        # Decided on an answer asked for now: the last status may hide a job started since.
        step.go(settings, Phase.GOING_DOWN, now)
    _evaluate(step, settings, now)


def _on_button(step: _Step, settings: Settings, event: ButtonPressed) -> None:
    state, now = step.data.state, event.now
    if not event.long:
        if state == Phase.OFF:
            _power_on(step, settings, now)
        elif state == Phase.ON:
            _watch_again(step, settings, now)
        else:
            if state in POWERING_DOWN_STATES or state == Phase.ARMED:
                step.actions.append(Notify(EventKind.CANCELLED))
            step.go(settings, Phase.ON, now)
        return
    match state:
        case Phase.OFF:
            _switch_on_into(step, settings, Phase.ON, now)
        case Phase.ON | Phase.WAITING_FOR_OCTOPRINT | Phase.IDLE | Phase.PRINT_STARTED:
            step.data = _request_asked(step.data, now)
            step.go(settings, Phase.GOING_DOWN, now)
            _evaluate(step, settings, now)
        case Phase.ARMED:
            step.data = _request_asked(step.data, now)
            # The original skips to the cool-down; with a job still running that would turn
            # its heaters off, so the machine stays armed until the job ends.
            if not step.data.job_active:
                step.go(settings, Phase.COOLING, now)
            _evaluate(step, settings, now)
        case Phase.POWERING_OFF:
            # The original's deliberate local override: a long press here cuts at once.
            _cut_power(step, settings, now, forced=True)
        case _:
            pass


def _on_relay(step: _Step, settings: Settings, event: RelayReported) -> None:
    previous, now = step.data.relay_on, event.now
    step.data = replace(step.data, relay_on=event.relay_on)
    if event.relay_on is None or event.relay_on == previous:
        return
    if event.relay_on:
        if step.data.state == Phase.OFF:
            step.data = replace(step.data, powered_on_at=now)
            step.go(settings, _startup_state(settings), now)
            _evaluate(step, settings, now)
        return
    if step.data.state == Phase.OFF:
        return
    if step.data.job_active:
        step.actions.append(Notify(EventKind.PROBLEM, Problem.RELAY_OFF_DURING_JOB))
        # In start-up mode off nothing powers up unless someone asks: the relay may have gone
        # off with the mains, and stays off as the plug's own start-up does.
        if settings.restore_relay_during_job and not stay_off_at_power_up(settings):
            step.actions.append(TurnRelayOn())
            step.data = replace(step.data, relay_on=True)
            return
    step.data = replace(step.data, reachable=False, job_active=False)
    step.go(settings, Phase.OFF, now)


def _on_mode(step: _Step, settings: Settings, event: ModeSelected) -> None:
    now = event.now
    match event.mode:
        case Mode.OFF:
            _request_safe_power_off(step, settings, now)
        case Mode.ALWAYS_ON:
            if step.data.state in POWERING_DOWN_STATES or step.data.user_power_off:
                step.actions.append(Notify(EventKind.CANCELLED))
            _switch_on_into(step, settings, Phase.ON, now)
        case Mode.AFTER_PRINT:
            data = step.data
            if data.state == Phase.ARMED and data.job_qualified:
                # Off after the print instead of off: the job under way already arms it.
                step.data = _request_dropped(data)
            elif data.state in POWERING_DOWN_STATES or data.user_power_off:
                # Not a cancel: power off after the print, this one included.
                _on_cancel(step, settings, now, block_this_job=False)
            elif data.state == Phase.PRINT_STARTED and data.arming_blocked:
                # Chosen again after a cancel: this job may arm the power-off after all.
                step.data = replace(data, arming_blocked=False)
                _evaluate(step, settings, now)
            elif step.data.state == Phase.ON:
                _watch_again(step, settings, now)
            elif step.data.state == Phase.OFF:
                _switch_on_into(step, settings, Phase.WAITING_FOR_OCTOPRINT, now)


def _watch_again(step: _Step, settings: Settings, now: float) -> None:
    """From always on back to power off after print: the job under way may arm it.

    The user's latest choice counts: an earlier cancel no longer keeps this job from arming.
    """
    step.data = replace(step.data, arming_blocked=False)
    step.go(settings, _watching_state(step.data), now)
    _evaluate(step, settings, now)


def _on_cancel(step: _Step, settings: Settings, now: float, *, block_this_job: bool = True) -> None:
    """Cancel a pending power-off: power stays on and watching resumes.

    ``block_this_job``: the job under way must not arm the power-off again (an explicit
    cancel); choosing "power off after print" instead lets it arm.
    """
    data = step.data
    if data.state not in POWERING_DOWN_STATES and data.state != Phase.ARMED:
        return
    step.data = replace(_request_dropped(data), arming_blocked=data.job_active and block_this_job)
    step.actions.append(Notify(EventKind.CANCELLED))
    step.go(settings, _watching_state(step.data), now)
    _evaluate(step, settings, now)


def _on_force(step: _Step, settings: Settings, event: ForceRequested) -> None:
    data, now = step.data, event.now
    if data.state == Phase.OFF:
        return
    if data.job_active and not event.allow_job_loss:
        raise CommandRefused("job_in_progress")
    step.data = replace(
        _request_asked(data, now), forced=True, job_loss_allowed=event.allow_job_loss
    )
    if not data.reachable:
        _cut_power(step, settings, now, forced=True)
    elif event.allow_job_loss:
        # Still halt the host first: a force skips the waiting, not the clean halt.
        _power_down(step, settings, now, forced=True)
    else:
        # A force that must not lose a job asks OctoPrint first: a job may have started since
        # the last status.
        step.go(settings, Phase.GOING_DOWN, now)
