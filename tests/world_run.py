"""The machine driven beside a model of the world, and the safety rules checked against the world.

``WorldRun`` plays the integration's part: it feeds the machine what a realistic channel
delivers (polled answers taken some time after they were asked for and arriving later still, or
lost; pushed updates held back from before the latest change, which the controller only applies
when they agree with its last snapshot on whether a job runs; OctoPrint's job events that make
it poll; HA's ten-second debounce on a refresh asked for; the poll rescheduled after every
update; timers from ``next_deadline``; the relay's reports) and carries the machine's actions out
in the world (the halt request reaches the host or not, the relay switches or the plug is away).
Users send commands through every source the integration has.

The rules (``Violation`` names the one broken), checked in the world when an action takes effect:

1. No halt request reaches the host while a job it reports runs.
2. No heaters-off reaches the printer while a job it reports runs.
3. No power cut, unless forced, while the host is not halted by a halt request it accepted, while
   a hotend is at or above the cool-down temperature, or while any job runs (for a job the host
   never reports, only the temperature and host parts can apply: nothing else can see it).
4. A forced cut only after the user forced one (the force action, MQTT FORCEOFF, or the plug's
   long press while powering off).
5. A halt request that is not the user's goes out only after a job that really ran the minimum
   job time and got as hot as the arming temperature, since power came on or the user last
   cancelled (a job the machine saw run without a gap between answers counts as one).
6. Liveness: once the world calms down (answers arrive, no faults, no commands, no new jobs), a
   power-off under way ends within a bounded time: power off, or the user told of a problem.

What no machine can see is allowed, and counted (``Tally.races``): a job or heating that starts
after the answer a decision was taken on, when that answer arrived with the deciding event and,
for a power-off the user asked for, was asked for after the user asked. Nobody starts a job or
heats once the host accepted a halt (nothing could see it), and the halt delay covers the host's
halt (setup asks for that).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
import heapq
import itertools
import random

from custom_components.octoplugout import machine as m
from custom_components.octoplugout.button import DESCRIPTIONS as BUTTONS
from custom_components.octoplugout.mqtt_bridge import COMMANDS as MQTT_COMMANDS

from .world import Host, Job, World

REQUEST_TIMEOUT = 10.0
RELAY_REPORT_DELAY = 0.2
REFRESH_COOLDOWN = 10.0  # Home Assistant's debounce on a refresh asked for
POWERING_DOWN = frozenset({m.State.ARMED, *m.POWERING_DOWN_STATES})

# Every way a user command reaches the machine, as the integration builds its event.
SOURCES: dict[str, Callable[[float], m.Event]] = {
    "select after print": lambda now: m.ModeSelected(now, m.Mode.AFTER_PRINT),
    "select always on": lambda now: m.ModeSelected(now, m.Mode.ALWAYS_ON),
    "select off": lambda now: m.ModeSelected(now, m.Mode.OFF),
    "switch on": m.PowerOnRequested,
    "switch off": lambda now: m.ModeSelected(now, m.Mode.OFF),
    "plug short press": lambda now: m.ButtonPressed(now, long=False),
    "plug long press": lambda now: m.ButtonPressed(now, long=True),
    "service power_off": lambda now: m.ModeSelected(now, m.Mode.OFF),
    "service force_power_off": lambda now: m.ForceRequested(now, allow_job_loss=False),
    "service force_power_off, job loss allowed": lambda now: m.ForceRequested(
        now, allow_job_loss=True
    ),
    "service cancel_power_off": m.CancelRequested,
    **{f"button {button.key}": button.event_fn for button in BUTTONS},
    **{f"MQTT {command}": build for command, build in MQTT_COMMANDS.items()},
}


class Violation(AssertionError):
    """A rule broken in the world."""


@dataclass(frozen=True)
class Scenario:
    """How one world behaves, drawn once per sequence."""

    settings: m.Settings
    hotends: int = 1
    push_socket: bool = True
    loss: float = 0.0  # the chance that a request or its answer is lost
    max_latency: float = 0.5
    push_age: float = 2.0  # how far back a pushed update may be held
    stops_answering_after: float = 1.0  # a halting host's OctoPrint stops this soon
    halt_seconds: float = 8.0  # and the system has halted this soon (<= the halt delay)
    refuses_halts: bool = False
    relay_on_at_start: bool = True


@dataclass(frozen=True)
class Basis:
    """What a decision was taken on: the last status the machine had."""

    taken_at: float
    asked_at: float | None  # None: pushed
    on_arrival: bool  # the decision came with the event that delivered it


@dataclass
class Tally:
    """What happened, beyond the rules."""

    events: int = 0
    halts: int = 0
    cuts: int = 0
    forced_cuts: int = 0
    races: int = 0
    problems: int = 0

    def add(self, other: Tally) -> None:
        """Sum another run's tally into this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class User:
    """What the user asked for, as their commands say it."""

    power_off_asked_at: float | None = None
    forced: bool = False
    job_loss_allowed: bool = False
    # A job the world really ran since power came on or the last cancel, long and hot enough.
    job_qualified: bool = False
    # Power off after a print: the mode the user chose (or the start-up mode gave), and since.
    watching: bool = False
    watching_since: float = 0.0
    # A job the machine saw qualify while the user was watching: power must go off after it.
    job_done: bool = False

    def reset(self) -> None:
        """Power went off or came on, or the user cancelled: nothing asked any more."""
        self.power_off_asked_at = None
        self.forced = self.job_loss_allowed = False
        self.job_qualified = self.job_done = False

    def expects_power_off(self) -> bool:
        """Whether the user asked for a power-off, or chose one after a job that has run."""
        return self.power_off_asked_at is not None or (self.watching and self.job_done)


@dataclass
class Chain:
    """Jobs the machine saw run without an answer in between showing none: one job to it."""

    started_at: float | None = None
    # The latest moment an answer (or push) was taken that showed it running.
    seen_at: float = 0.0
    hottest: float = 0.0
    # What the machine itself can count on: from the arrival of the first answer showing the
    # job to the asking of the latest one, and the hottest reading those answers held.
    first_arrived_at: float = 0.0
    last_asked_at: float = 0.0
    seen_hottest: float = 0.0
    # The asking time of the latest polled answer on which the machine could arm it.
    armable_asked_at: float | None = None
    blocked: bool = False  # cancelled: it must not arm a power-off any more
    # When it was last let arm again (the machine then needs an answer showing it running).
    unblocked_at: float = 0.0


class WorldRun:
    """One world, the machine beside it, and the channel between them."""

    def __init__(self, scenario: Scenario, rng: random.Random, start: float = 1_000_000.0) -> None:
        """A powered (or unpowered) idle printer, and the integration starting."""
        self.scenario = scenario
        self.settings = scenario.settings
        self.rng = rng
        self.world = World(start, scenario.hotends, relay=scenario.relay_on_at_start)
        self.tally = Tally()
        self.user = User(watching=self.settings.startup_mode == m.StartupMode.WATCHING)
        self.chain = Chain()
        self.calm = False
        self.problem_told = False
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.data = m.MachineData()
        self.basis: Basis | None = None
        # What the halt request the host accepted was decided on, and the user's wishes then.
        self.halt_decision: tuple[Basis | None, User] = (None, User())
        self.ha_up = True
        self._epoch = 0  # a Home Assistant restart drops what the old process waited for
        self._timer_token = 0
        self._poll_token = 0
        self._refresh_pending = False
        self._last_refresh = -1e18
        self.socket_open = False
        self.snapshot_job: bool | None = None  # the controller's last snapshot: a job running?
        self.history: list[tuple[float, m.Status]] = []
        # The latest events and happenings, for the report of a violation.
        self.trace: deque[str] = deque(maxlen=40)
        self._deliver(m.Started(start, self.world.relay))
        self._poll()

    @property
    def now(self) -> float:
        """The world's time."""
        return self.world.now

    # Time

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Do ``action`` at ``when`` (never in the past)."""
        heapq.heappush(self._queue, (max(when, self.now), next(self._order), action))

    def _later(self, action: Callable[[], None]) -> None:
        """``action`` after a latency of the channel, for this Home Assistant process only."""
        epoch = self._epoch
        delay = self.rng.uniform(0.01, self.scenario.max_latency)

        def guarded() -> None:
            if epoch == self._epoch:
                action()

        self.at(self.now + delay, guarded)

    def run_until(self, until: float) -> None:
        """Let everything happen, in order, up to ``until``."""
        while self._queue and self._queue[0][0] <= until:
            when, _, action = heapq.heappop(self._queue)
            self._move_to(when)
            action()
        self._move_to(until)

    def _move_to(self, when: float) -> None:
        self.world.advance(when)
        job = self.world.job
        if job is not None and job.reported and self.chain.started_at is not None:
            self.chain.hottest = max(self.chain.hottest, self.world.hottest())

    # The machine, as the controller drives it

    def _deliver(self, event: m.Event, taken_at: float | None = None) -> bool:
        """One event into the machine; its actions go out into the world. False: refused."""
        if not self.ha_up:
            return False
        self.tally.events += 1
        try:
            after, actions = m.transition(self.data, self.settings, event)
        except m.CommandRefused:
            return False
        shown = [action for action in actions if not isinstance(action, m.SendMessage)]
        self.trace.append(f"{self.now:.1f} {event!r} -> {after.state.value} {shown}")
        self.data = after
        on_arrival = isinstance(event, m.StatusReceived)
        if isinstance(event, m.StatusReceived):
            asked = None if event.pushed else event.asked_at
            self.basis = Basis(event.now if taken_at is None else taken_at, asked, on_arrival)
        elif self.basis is not None:
            self.basis = Basis(self.basis.taken_at, self.basis.asked_at, on_arrival=False)
        basis = self.basis
        for action in actions:
            self._carry_out(action, basis)
        self._schedule()
        return True

    def _schedule(self) -> None:
        """The machine's next deadline, and the next poll counted from now."""
        self._timer_token += 1
        token = self._timer_token
        deadline = m.next_deadline(self.data, self.settings, self.now)
        if deadline is not None:
            self.at(deadline, lambda: self._timer(token))
        self._poll_token += 1
        poll_token = self._poll_token
        interval = m.poll_interval(self.data, self.settings, pushed=self.socket_open)
        self.at(self.now + interval, lambda: self._scheduled_poll(poll_token))

    def _timer(self, token: int) -> None:
        if token == self._timer_token and self.ha_up:
            self._deliver(m.TimerFired(self.now))

    def _scheduled_poll(self, token: int) -> None:
        if token == self._poll_token and self.ha_up:
            self._poll()

    def request_refresh(self) -> None:
        """A refresh asked for: at once, or when Home Assistant's debounce allows."""
        if self._refresh_pending or not self.ha_up:
            return
        due = self._last_refresh + REFRESH_COOLDOWN
        if self.now >= due:
            self._last_refresh = self.now
            self._poll()
            return
        self._refresh_pending = True
        epoch = self._epoch

        def deferred() -> None:
            if epoch == self._epoch:
                self._refresh_pending = False
                self._last_refresh = self.now
                self._poll()

        self.at(due, deferred)

    def _poll(self) -> None:
        """One status request through the channel."""
        asked_at = self.now
        lost = self.rng.random() < self.scenario.loss

        def reaches_octoprint() -> None:
            if lost or not self.world.octoprint_answers():
                epoch = self._epoch
                self.at(asked_at + REQUEST_TIMEOUT, lambda: self._lost(epoch))
                return
            status = self._status()
            taken_at = self.now
            self._later(lambda: self._answered(status, asked_at, taken_at))

        self._later(reaches_octoprint)

    def _status(self) -> m.Status:
        world = self.world
        tools: tuple[float, ...] = ()
        if world.printer_connected:
            tools = tuple(round(tool.temp, 1) for tool in world.tools)
        # Answers lose fields: sometimes the bed's reading is missing.
        bed_read = world.printer_connected and self.rng.random() > 0.1
        bed = round(world.bed.temp, 1) if bed_read else None
        targets = tuple(tool.target for tool in world.tools) if world.printer_connected else ()
        return m.Status(world.flags(), tools, bed, tool_targets=targets)

    def _lost(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        self.snapshot_job = None
        self._close_socket()
        # The machine restarts a job's clock after a silence; a cancelled job stays cancelled
        # until an answer shows no job.
        blocked = self.chain.blocked
        self._chain_ends()
        self.chain.blocked = blocked
        self._deliver(m.OctoPrintLost(self.now))

    def _answered(self, status: m.Status, asked_at: float, taken_at: float) -> None:
        self.snapshot_job = bool(status.flags & m.JOB_FLAGS)
        self._follow_chain(status, taken_at, asked_at)
        self.socket_open = self.scenario.push_socket and self.world.octoprint_answers()
        self._deliver(m.StatusReceived(self.now, status, asked_at=asked_at), taken_at)

    def _follow_chain(self, status: m.Status, taken_at: float, asked_at: float) -> None:
        """An answer showing no job ends the chain of jobs the machine counts as one."""
        if m.job_in_progress(status, None, self.now, self.settings):
            chain = self.chain
            if chain.started_at is None:
                chain = self.chain = Chain(
                    taken_at, taken_at, self.world.hottest(), self.now, blocked=chain.blocked
                )
            chain.seen_at = taken_at
            chain.last_asked_at = asked_at
            chain.seen_hottest = max(chain.seen_hottest, status.hottest_tool or 0.0)
            if (
                asked_at - chain.first_arrived_at >= self.settings.min_job_time
                and chain.seen_hottest >= self.settings.arm_temperature
            ):
                chain.armable_asked_at = asked_at
        else:
            self._chain_ends()

    def _chain_ends(self) -> None:
        """Whether the chain qualified: seen running the minimum job time, and hot enough."""
        chain = self.chain
        if (
            chain.started_at is not None
            and not chain.blocked
            and chain.seen_at - chain.started_at >= self.settings.min_job_time
            and chain.hottest >= self.settings.arm_temperature
        ):
            self.user.job_qualified = True
        if (
            chain.started_at is not None
            and not chain.blocked
            and self.user.watching
            and chain.armable_asked_at is not None
            and chain.armable_asked_at >= max(self.user.watching_since, chain.unblocked_at)
        ):
            self.user.job_done = True
        self.chain = Chain()

    def _close_socket(self) -> None:
        if self.socket_open:
            self.socket_open = False
            self.request_refresh()

    def remember(self) -> None:
        """OctoPrint keeps its status of this moment (a push may send it later)."""
        if self.world.octoprint_answers():
            self.history.append((self.now, self._status()))
            del self.history[:-50]

    def octoprint_event(self) -> None:
        """A job or printer event: over the push socket it makes the controller poll."""
        self.remember()
        if self.socket_open and self.world.octoprint_answers():
            self._later(self.request_refresh)

    def push(self) -> None:
        """OctoPrint pushes a status, possibly held back from before its latest change."""
        if not (self.socket_open and self.world.octoprint_answers() and self.ha_up):
            return
        self.remember()
        oldest = self.now - self.rng.uniform(0.0, self.scenario.push_age)
        taken_at, status = next(
            ((when, status) for when, status in self.history if when >= oldest), self.history[-1]
        )
        if self.snapshot_job is None or bool(status.flags & m.JOB_FLAGS) != self.snapshot_job:
            self.request_refresh()
            return
        if self.snapshot_job:
            self.chain.seen_at = max(self.chain.seen_at, taken_at)
            self.chain.seen_hottest = max(self.chain.seen_hottest, status.hottest_tool or 0.0)
        self._deliver(m.StatusReceived(self.now, status, pushed=True), taken_at)

    # The machine's actions, carried out in the world

    def _carry_out(self, action: m.Action, basis: Basis | None) -> None:
        match action:
            case m.TurnRelayOn():
                self._switch_relay(on=True, forced=False)
            case m.TurnRelayOff(forced=forced):
                self._switch_relay(on=False, forced=forced)
            case m.SetHeatersOff():
                self._later(lambda: self._heaters_off_arrives(basis))
            case m.SendShutdown():
                # Judged by what the user had asked for when it went out (a cancel may pass it).
                user = replace(self.user)
                self.tally.halts += 1
                self._later(lambda: self._halt_arrives(basis, user))
            case m.RefreshStatus():
                self.request_refresh()
            case m.Notify(kind=m.EventKind.PROBLEM):
                self.tally.problems += 1
                self.problem_told = True
                if self.data.state not in POWERING_DOWN:
                    # The power-off ended with power on, and the user was told: what they
                    # expected is theirs to take up again.
                    self.user.job_done = False
                    self._watch(False)
                    self.user.power_off_asked_at = None
            case _:
                pass

    def _heaters_off_arrives(self, basis: Basis | None) -> None:
        if self.world.octoprint_answers() and self.world.printer_connected:
            # The cool-down starts on an answer showing the job over, whether or not the user
            # asked for a power-off since it was asked for.
            self._check_no_job("heaters off", basis, User())
            self.world.heaters_off()

    def _halt_arrives(self, basis: Basis | None, user: User) -> None:
        epoch = self._epoch

        def answer(outcome: m.ShutdownOutcome, after: float) -> None:
            def deliver() -> None:
                if epoch == self._epoch:
                    self._deliver(m.ShutdownAnswered(self.now, outcome))

            self.at(self.now + after, deliver)

        world = self.world
        if not world.octoprint_answers():
            answer(m.ShutdownOutcome.UNREACHABLE, REQUEST_TIMEOUT)
            return
        if self.scenario.refuses_halts:
            answer(m.ShutdownOutcome.REFUSED, self.rng.uniform(0.01, self.scenario.max_latency))
            return
        if not user.job_loss_allowed:
            self._check_no_job("a halt request", basis, user)
        if user.power_off_asked_at is None and not user.job_qualified:
            raise Violation(f"an automatic halt request with no job that qualified; {self}")
        if world.host == Host.UP:
            self.halt_decision = (basis, user)
            world.accept_halt(self.scenario.stops_answering_after)
            self.at(self.now + self.scenario.halt_seconds, world.host_halted)
        if self.rng.random() < self.scenario.loss:
            answer(m.ShutdownOutcome.UNREACHABLE, REQUEST_TIMEOUT)
        else:
            answer(m.ShutdownOutcome.SENT, self.rng.uniform(0.01, self.scenario.max_latency))

    def _excused(self, since: float, basis: Basis | None, user: User) -> bool:
        """Whether something that began at ``since`` was out of the machine's sight (a race)."""
        asked = user.power_off_asked_at
        seen_in_time = (
            basis is not None
            and basis.on_arrival
            and since > basis.taken_at
            and (asked is None or (basis.asked_at is not None and basis.asked_at >= asked))
        )
        if seen_in_time:
            self.tally.races += 1
        return seen_in_time

    def _check_no_job(self, what: str, basis: Basis | None, user: User) -> None:
        job = self.world.job
        if (
            job is not None
            and job.shown_at is not None
            and not self._excused(job.shown_at, basis, user)
        ):
            raise Violation(f"{what} reached the printer during a job; {self}")

    def _switch_relay(self, *, on: bool, forced: bool) -> None:
        world = self.world
        if not world.plug_online:
            # The switch call fails and Home Assistant says so: what the user expected of this
            # power-off (or power-on) is theirs to take up again, and the machine starts afresh
            # when the plug reports its relay.
            self.user.reset()
            self._watch(False)
            self.chain = Chain()
            return
        if on == world.relay:
            return
        if on:
            world.power(True)
            self.user.reset()
            self.chain = Chain()
            self.at(self.now + self.rng.uniform(5.0, 40.0), self._host_ready)
        else:
            self._check_cut(forced=forced)
            world.power(False)
            self.user.reset()
            self.chain = Chain()
        self.at(self.now + RELAY_REPORT_DELAY, self._report_relay)

    def _check_cut(self, *, forced: bool) -> None:
        world = self.world
        self.tally.cuts += 1
        if forced:
            self.tally.forced_cuts += 1
            if not self.user.forced:
                raise Violation(f"a forced cut nobody forced; {self}")
            return
        if world.host != Host.HALTED:
            raise Violation(f"power cut with the host {world.host}; {self}")
        hot = world.hottest() >= self.settings.cool_temperature
        if hot and not self._excused(world.heated_at, *self.halt_decision):
            raise Violation(f"power cut with a hotend at {world.hottest():.0f} C; {self}")
        shown_at = None if world.job is None else world.job.shown_at
        if shown_at is not None and not self._excused(shown_at, *self.halt_decision):
            raise Violation(f"power cut during a job; {self}")

    def _host_ready(self) -> None:
        self.world.host_ready()
        self.octoprint_event()

    def _report_relay(self) -> None:
        world = self.world
        self._deliver(m.RelayReported(self.now, world.relay if world.plug_online else None))

    # Users

    def command(self, source: str) -> None:
        """A user command from one of the integration's sources.

        What the user asks for is noted before the machine acts on it (a force may cut at once)
        and taken back when the machine refuses the command.
        """
        before, user, chain = self.data, replace(self.user), replace(self.chain)
        event = SOURCES[source](self.now)
        if before.state != m.State.OFF:
            self._note_intent(event, before)
        if not self._deliver(event):
            self.user, self.chain = user, chain
        elif before.state == m.State.OFF and self.world.relay:
            self._watch(self._watching_after_power_on(event))

    def _note_intent(self, event: m.Event, before: m.MachineData) -> None:
        # What the machine takes as cancelling a power-off under way (the user sees its state).
        cancels = before.state in m.POWERING_DOWN_STATES or before.user_power_off
        match event:
            case m.ForceRequested(allow_job_loss=allow):
                self._asked_off(forced=True, job_loss_allowed=allow)
            case m.ButtonPressed(long=True):
                self._asked_off(forced=before.state == m.State.POWERING_OFF)
            case m.ModeSelected(mode=m.Mode.OFF):
                self._asked_off()
            case m.CancelRequested() if cancels or before.state == m.State.ARMED:
                self._keep_power(cancel_this_job=before.job_active)
                self._watch(True)
            case m.ModeSelected(mode=m.Mode.AFTER_PRINT):
                if before.state in m.POWERING_DOWN_STATES and not before.job_active:
                    # The job is over: the power-off under way ends, and the next print counts
                    # (as on the original).
                    self._keep_power(cancel_this_job=False)
                else:
                    # Power off after a print, the one under way included.
                    user = self.user
                    user.power_off_asked_at = None
                    user.forced = user.job_loss_allowed = False
                    self._unblock_chain()
                    if not (before.state == m.State.ARMED and before.job_qualified):
                        # Not armed by the job itself: it arms once seen running again.
                        self.chain.unblocked_at = self.now
                        user.job_done = False
                self._watch(True)
            case m.ButtonPressed() if before.state == m.State.ON:
                # Watching again: the job under way may arm the power-off.
                self._unblock_chain()
                self._watch(True)
            case m.ModeSelected(mode=m.Mode.ALWAYS_ON) | m.ButtonPressed():
                # Always on: the job under way counts only if they choose otherwise during it.
                self._keep_power(cancel_this_job=before.job_active)
                self._watch(False)
            case _:
                pass

    def _watching_after_power_on(self, event: m.Event) -> bool:
        """Whether the machine watches for a print after a command that powered on."""
        match event:
            case m.ModeSelected(mode=mode):
                return mode == m.Mode.AFTER_PRINT
            case m.ButtonPressed(long=True):
                return False
            case _:
                return self.settings.startup_mode == m.StartupMode.WATCHING

    def _unblock_chain(self) -> None:
        if self.chain.blocked:
            self.chain.blocked = False
            self.chain.unblocked_at = self.now

    def _watch(self, on: bool) -> None:
        """The user's mode is, or is no longer, power off after a print."""
        if on and not self.user.watching:
            self.user.watching_since = self.now
        self.user.watching = on

    def _asked_off(self, *, forced: bool = False, job_loss_allowed: bool = False) -> None:
        user = self.user
        if user.power_off_asked_at is None:
            user.power_off_asked_at = self.now
        user.forced = user.forced or forced
        user.job_loss_allowed = user.job_loss_allowed or job_loss_allowed

    def _keep_power(self, *, cancel_this_job: bool) -> None:
        """The user cancelled a power-off, or chose to keep power on."""
        self.user.reset()
        if cancel_this_job:
            # Not after the job the user sees running (the one under way, or after a silence
            # the next one seen): it must not arm the power-off again.
            self.chain.blocked = True

    # What happens in the world

    def start_job(
        self, duration: float, temperature: float, *, shown_after: float | None = 0.0
    ) -> None:
        """A print starts; it finishes after ``duration`` unless something ends it first.

        ``shown_after``: 0 for a job started through OctoPrint; otherwise it is started on the
        printer's own screen, and OctoPrint shows it that much later, or never (None).
        """
        job = self.world.start_job(duration, temperature, from_sd=shown_after != 0.0)
        if job is None:
            return
        job.heaters_off_at_end = self.rng.random() < 0.8
        self._finish_at_its_end(job)
        self.octoprint_event()
        if shown_after:

            def shown() -> None:
                if self.world.job is job and self.world.octoprint_answers():
                    job.shown_at = self.now
                    self.octoprint_event()

            self.at(self.now + shown_after, shown)

    def _finish_at_its_end(self, job: Job) -> None:
        def finishing() -> None:
            if self.world.job is job and job.flag == "printing" and self.now >= job.ends_at:
                job.flag = "finishing"
                self.octoprint_event()
                self.at(self.now + 2.0, over)

        def over() -> None:
            if self.world.job is job:
                self.world.end_job(heaters_off=job.heaters_off_at_end)
                self.octoprint_event()

        self.at(job.ends_at, finishing)

    def cancel_job(self) -> None:
        """Someone cancels the print: cancelling for a few seconds, then over, heaters off."""
        job = self.world.job
        if job is None or job.flag not in ("printing", "paused"):
            return
        job.flag = "cancelling"
        self.octoprint_event()

        def over() -> None:
            if self.world.job is job:
                self.world.end_job(heaters_off=True)
                self.octoprint_event()

        self.at(self.now + self.rng.uniform(1.0, 8.0), over)

    def pause_job(self, seconds: float) -> None:
        """The print pauses (a filament change) and resumes later, finishing later too."""
        job = self.world.job
        if job is None or job.flag != "printing":
            return
        job.flag = "paused"
        left = job.ends_at - self.now
        self.octoprint_event()

        def resume() -> None:
            if self.world.job is job and job.flag == "paused":
                job.flag = "printing"
                job.ends_at = self.now + left
                self._finish_at_its_end(job)
                self.octoprint_event()

        self.at(self.now + seconds, resume)

    def heat(self, temperature: float) -> None:
        """Someone heats the hotends by hand (or turns them off, at 0)."""
        if self.world.can_start_something():
            self.world.heat(temperature)
            self.octoprint_event()

    def disconnect_printer(self, seconds: float) -> None:
        """The printer's cable is pulled, and plugged in again later."""
        world = self.world
        if not world.printer_connected or world.host != Host.UP:
            return
        world.disconnect_printer()
        self.octoprint_event()

        def reconnect() -> None:
            if world.host in (Host.UP, Host.HALTING) and world.relay:
                world.printer_connected = True
                self.octoprint_event()

        self.at(self.now + seconds, reconnect)

    def restart_octoprint(self, seconds: float) -> None:
        """OctoPrint restarts: no answers for a while; a job it streamed dies."""
        world = self.world
        if not world.octoprint_answers():
            return
        if world.job is not None and world.job.streamed:
            world.end_job(heaters_off=False)
        world.octoprint_down_until = self.now + seconds
        self._close_socket()

    def network_outage(self, seconds: float) -> None:
        """The network between Home Assistant and OctoPrint breaks for a while."""
        self.world.network_ok = False
        self._close_socket()

        def back() -> None:
            self.world.network_ok = True

        self.at(self.now + seconds, back)

    def host_busy(self, seconds: float) -> None:
        """The host is too busy to answer for a while (it goes on printing)."""
        self.world.busy_until = max(self.world.busy_until, self.now + seconds)

    def plug_away(self, seconds: float) -> None:
        """The plug reboots or loses WiFi: unavailable for a while, its relay as it was."""
        world = self.world
        if not world.plug_online:
            return
        world.plug_online = False
        self.at(self.now + RELAY_REPORT_DELAY, self._report_relay)

        def back() -> None:
            world.plug_online = True
            self._report_relay()

        self.at(self.now + seconds, back)

    def restart_home_assistant(self, seconds: float) -> None:
        """Home Assistant stops (saving the machine) and starts again with it."""
        if not self.ha_up:
            return
        self.ha_up = False
        self._epoch += 1
        self._refresh_pending = False
        self.socket_open = False
        self.snapshot_job = None

        def back() -> None:
            self.ha_up = True
            self._deliver(m.Resumed(self.now))
            self._report_relay()
            self._poll()

        self.at(self.now + seconds, back)

    # The end: a calm world, and what must have happened by then

    def calm_down(self) -> None:
        """From now on answers arrive and nothing new happens but what is under way."""
        self.calm = True
        self.problem_told = False
        self.scenario = replace(self.scenario, loss=0.0)
        self.world.network_ok = True
        self.world.busy_until = self.world.octoprint_down_until = self.now

    def check_liveness(self) -> None:
        """A power-off under way has ended: power off, or the user told why not.

        Hotends kept hot (heaters left on, no heaters-off asked for) hold it up as long as they
        are. A host that does not answer any more (it halted, or it is off) holds a safe
        power-off up with power on; the user must have been told so.
        """
        data, world = self.data, self.world
        if world.hottest() >= self.settings.cool_temperature or world.job is not None:
            return
        silent_and_told = not world.octoprint_answers() and data.unreachable_reported
        if data.state in POWERING_DOWN and not self.problem_told and not silent_and_told:
            raise Violation(f"a power-off still under way in a calm world; {self}")
        if self.user.expects_power_off() and world.relay and world.octoprint_answers():
            raise Violation(f"power never went off after the job, as chosen; {self}")

    def __repr__(self) -> str:
        """What a violation report needs: the world, the machine and the user."""
        world, data = self.world, self.data
        job = world.job
        return (
            f"t={world.now:.1f} world(relay={world.relay}, host={world.host}, "
            f"job={job and (job.flag, job.reported, round(job.started_at, 1))}, "
            f"hotend={world.hottest():.0f}, heated_at={world.heated_at:.1f}, "
            f"answers={world.octoprint_answers()}) machine({data.state}, job={data.job_active}, "
            f"reachable={data.reachable}) basis={self.basis} user={self.user} "
            f"settings={self.settings}\n" + "\n".join(self.trace)
        )
