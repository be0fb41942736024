"""The machine driven beside a model of the world, and the safety rules checked against the world.

``WorldRun`` plays the integration's part: it feeds the machine what a realistic channel
delivers (polled answers taken some time after they were asked for and arriving later still, or
lost; pushed updates held back from before the latest change, which the coordinator only applies
when they agree with its last snapshot on whether a job runs; OctoPrint's job events that make
it poll; HA's ten-second debounce on a refresh asked for; the poll rescheduled after every
update; timers from ``next_deadline``; the relay's reports; Home Assistant restarting, or killed
and starting again from what its store holds) and carries the machine's actions out
in the world (the halt request reaches the host or not, the relay switches or the plug is away).
Users send commands through every source the integration has.

The rules are checked by ``tests/world_rules.py`` when an action takes effect in the world.
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
from custom_components.octoplugout.const import HOST_ENTITIES, HOST_MOONRAKER, HOST_OCTOPRINT
from custom_components.octoplugout.entity_host import REFRESH_SPACING
from custom_components.octoplugout.moonraker import KLIPPY_UNTOLD, printer_status
from custom_components.octoplugout.mqtt_bridge import COMMANDS as MQTT_COMMANDS
from custom_components.octoplugout.octoprint import job_of_flags
from custom_components.octoplugout.runner import SAVE_DELAY

from .world import Host, World
from .world_rules import Basis, Referee
from .world_user import Intent, User

REQUEST_TIMEOUT = 10.0
# Reading Home Assistant's states (a printer's entities) takes a loop turn, not a request.
STATE_READ = 0.001
RELAY_REPORT_DELAY = 0.2
# What Klipper's print_stats says of each state of a job in the world. A cancel runs the
# user's CANCEL_PRINT macro (heaters off, park) before Klipper's own, which reads "cancelled":
# while it runs, the print still reads "printing".
KLIPPER_PRINT_STATES = {
    "printing": "printing",
    "finishing": "printing",
    "paused": "paused",
    "cancelling": "printing",
}

# Every way a user command reaches the machine, as the integration builds its event.
SOURCES: dict[str, Callable[[float], m.MachineEvent]] = {
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
    # The printer's host: what its answers look like, and that Moonraker pushes every change
    # at once where OctoPrint sends job events.
    host_type: str = HOST_OCTOPRINT
    # A printer another integration reports (HOST_ENTITIES): that integration updates its
    # entities from the printer every ``source_lag`` seconds (0: as things happen), and it
    # may offer no halt button (then power is cut after the cool-down, with no halt).
    source_lag: float = 0.0
    # Whether that integration fetches from the printer when OctoPlugout asks it to update
    # before reading the entities (a polling one does; OctoPlugout asks no more often than it
    # fetches on request); one that cannot gives its entities as they are.
    source_fetches_on_request: bool = False


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


class WorldRun:
    """One world, the machine beside it, and the channel between them."""

    def __init__(self, scenario: Scenario, rng: random.Random, start: float = 1_000_000.0) -> None:
        """A powered (or unpowered) idle printer, and the integration starting."""
        self.scenario = scenario
        self.settings = scenario.settings
        self.rng = rng
        self.world = World(start, scenario.hotends, relay=scenario.relay_on_at_start)
        self.tally = Tally()
        self.intent = Intent(self.settings)
        self.problem_told = False
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.data = m.MachineData()
        self.basis: Basis | None = None
        self.referee = Referee(self)
        self.ha_up = True
        self._epoch = 0  # a Home Assistant restart drops what the old process waited for
        self._timer_token = 0
        self._poll_token = 0
        self._polls_under_way = 0
        self._poll_again = False
        self.socket_open = False
        self.history: list[tuple[float, m.Status]] = []
        # What the printer's entities show (HOST_ENTITIES), and when their integration took it
        # from the printer; None: unavailable.
        self.entities: tuple[float, m.Status | None] = (start, None)
        # When OctoPlugout last asked that integration to update them (None: not since it
        # started).
        self._source_asked_at: float | None = None
        # The latest events and happenings, for the report of a violation.
        self.trace: deque[str] = deque(maxlen=40)
        # What the store holds: what a killed Home Assistant starts again from.
        self.saved = self.data
        self._write_due = False
        self._deliver(m.Started(start, self.world.relay))
        if scenario.host_type == HOST_ENTITIES and scenario.source_lag:
            self._integration_update()
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
        if job is not None and job.reported:
            self.intent.heat_seen(self.world.hottest())

    # The machine, as the coordinator drives it

    def _deliver(self, event: m.MachineEvent, taken_at: float | None = None) -> bool:
        """One event into the machine; its actions go out into the world. False: refused."""
        if not self.ha_up:
            return False
        self.tally.events += 1
        try:
            after, actions = m.transition(self.data, self.settings, event)
        except m.CommandRefused:
            return False
        shown = [
            action
            for action in actions
            if not isinstance(action, (m.SendMessage, *m.OUTPUT_ACTIONS))
        ]
        self.trace.append(f"{self.now:.1f} {event!r} -> {after.state.value} {shown}")
        self._save(self.data, after)
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

    def _save(self, before: m.MachineData, after: m.MachineData) -> None:
        """As the coordinator writes: at once, or new readings alone ``SAVE_DELAY`` later."""
        if after == before:
            return
        if not m.readings_only_changed(before, after):
            self.saved = after
        elif not self._write_due:
            self._write_due = True
            epoch = self._epoch

            def write() -> None:
                if epoch == self._epoch:
                    self.saved, self._write_due = self.data, False

            self.at(self.now + SAVE_DELAY, write)

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

    def request_refresh(self, *, answer_under_way_will_do: bool = False) -> None:
        """As the coordinator asks for a status: at once, or right after the poll under way
        (unless the answer on its way will do)."""
        if not self.ha_up:
            return
        if self._polls_under_way:
            self._poll_again = self._poll_again or not answer_under_way_will_do
            return
        self._poll()

    def _poll(self) -> None:
        """One status request through the channel."""
        if self.scenario.host_type == HOST_ENTITIES:
            self._read_entities()
            return
        asked_at = self.now
        lost = self.rng.random() < self.scenario.loss
        epoch = self._epoch
        self._polls_under_way += 1

        def silence() -> None:
            self._lost(epoch)
            self._poll_finished(epoch)

        def reaches_octoprint() -> None:
            if lost or not self.world.octoprint_answers():
                self.at(asked_at + REQUEST_TIMEOUT, silence)
                return
            status = self._status()
            taken_at = self.now

            def answer() -> None:
                self._answered(status, asked_at, taken_at)
                self._poll_finished(epoch)

            self._later(answer)

        self._later(reaches_octoprint)

    def _read_entities(self) -> None:
        """The printer's entities read from Home Assistant's states once their integration was
        asked to update them (no sooner than ``REFRESH_SPACING`` after the last ask): no
        request to lose; an unavailable one is a host that does not answer."""
        asked_at = self.now
        epoch = self._epoch
        self._polls_under_way += 1
        due = asked_at
        if self._source_asked_at is not None:
            due = max(due, self._source_asked_at + REFRESH_SPACING)

        def read() -> None:
            if epoch != self._epoch:
                return
            if self.scenario.source_lag and self.scenario.source_fetches_on_request:
                self._integration_fetch()
            self._source_asked_at = self.now
            taken_at, status = self._entity_states()
            if status is None:
                self._lost(epoch)
            else:
                self._answered(status, asked_at, taken_at)
            self._poll_finished(epoch)

        self.at(due + STATE_READ, read)

    def _poll_finished(self, epoch: int) -> None:
        """A poll ended; one asked for meanwhile starts now, as the coordinator's does."""
        if epoch != self._epoch:
            return
        self._polls_under_way -= 1
        if self._poll_again and not self._polls_under_way:
            self._poll_again = False
            self._poll()

    def _entity_states(self) -> tuple[float, m.Status | None]:
        """What the printer's entities show now, and when it was taken from the printer."""
        if self.scenario.source_lag:
            return self.entities
        return self.now, self._entities_now()

    def _entities_now(self) -> m.Status | None:
        """What the printer's integration takes from it now (None: it cannot reach it)."""
        return self._status() if self.world.octoprint_answers() else None

    def _integration_update(self) -> None:
        """The printer's integration polls it every ``source_lag`` seconds."""
        self._integration_fetch()
        self.at(self.now + self.scenario.source_lag, self._integration_update)

    def _integration_fetch(self) -> None:
        """The printer's integration updates its entities from the printer; a change reaches
        OctoPlugout as a state change (a pushed status), an entity gone unavailable as a
        change that makes it read them."""
        status = self._entities_now()
        changed = status != self.entities[1]
        self.entities = (self.now, status)
        if changed and status is None:
            self.at(self.now + STATE_READ, self.request_refresh)
        elif changed and status is not None:
            self._pushed(status, self.now)

    def _status(self) -> m.Status:
        world = self.world
        tools: tuple[float, ...] = ()
        targets: tuple[float, ...] = ()
        # Answers lose fields: no hotend reading before the first after a (re)connect, and
        # now and then none at all (an answer with an empty temperature object), or no bed.
        if world.has_readings() and self.rng.random() > 0.05:
            tools = tuple(round(tool.temp, 1) for tool in world.tools)
            targets = tuple(tool.target for tool in world.tools)
        bed_read = world.printer_connected and self.rng.random() > 0.1
        bed = round(world.bed.temp, 1) if bed_read else None
        if self.scenario.host_type == HOST_MOONRAKER:
            return klipper_status(self.world, tools, targets, bed)
        return m.Status(job_of_flags(world.flags()), tools, bed, tool_targets=targets)

    def _lost(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if self.scenario.host_type != HOST_ENTITIES:
            # The entities' state changes keep coming while they are unavailable.
            self.close_socket()
        self.intent.silence()
        self._deliver(m.OctoPrintLost(self.now))

    def _answered(self, status: m.Status, asked_at: float, taken_at: float) -> None:
        self.intent.answered(status, taken_at, asked_at, self.now, self.world.hottest())
        self.socket_open = self.scenario.push_socket and (
            self.world.octoprint_answers() or self.scenario.host_type == HOST_ENTITIES
        )
        self._deliver(m.StatusReceived(self.now, status, asked_at=asked_at), taken_at)

    def close_socket(self) -> None:
        """The push socket is gone: the coordinator polls at once."""
        if self.socket_open:
            self.socket_open = False
            self.request_refresh()

    def remember(self) -> None:
        """OctoPrint keeps its status of this moment (a push may send it later)."""
        if self.world.octoprint_answers():
            self.history.append((self.now, self._status()))
            del self.history[:-50]

    def octoprint_event(self) -> None:
        """A job or printer event: over the push socket it tells the machine of the job now
        (or, now and then, of none), and the machine decides whether to ask."""
        self.remember()
        if not (self.socket_open and self.world.octoprint_answers()):
            return
        if self.scenario.host_type == HOST_ENTITIES:
            # The entities change when their integration next updates them.
            if not self.scenario.source_lag:
                status, taken_at = self._status(), self.now
                self.at(self.now + STATE_READ, lambda: self._pushed(status, taken_at))
            return
        if self.scenario.host_type == HOST_MOONRAKER:
            # Moonraker has no job events: the change itself comes over its websocket.
            status, taken_at = self._status(), self.now
            self._later(lambda: self._pushed(status, taken_at))
            return
        job: m.JobState | None = None
        if self.rng.random() > 0.2:
            job = job_of_flags(self.world.flags())

        def told() -> None:
            self._deliver(m.JobEvent(self.now, job))

        self._later(told)

    def push(self) -> None:
        """OctoPrint pushes a status, possibly held back from before its latest change."""
        if not (self.socket_open and self.world.octoprint_answers() and self.ha_up):
            return
        if self.scenario.host_type == HOST_ENTITIES:
            # A reading changed: the entities' integration tells it as it updates them.
            if not self.scenario.source_lag:
                self._pushed(self._status(), self.now)
            return
        self.remember()
        oldest = self.now - self.rng.uniform(0.0, self.scenario.push_age)
        taken_at, status = next(
            ((when, status) for when, status in self.history if when >= oldest), self.history[-1]
        )
        self._pushed(status, taken_at)

    def _pushed(self, status: m.Status, taken_at: float) -> None:
        if not (self.socket_open and self.ha_up):
            return
        if m.pushed_status_applies(self.data, status):
            if status.job == m.JobState.RUNNING:
                self.intent.pushed(status, taken_at)
            elif not m.job_in_progress(status, None, self.now, self.settings):
                self.intent.pushed_no_job(taken_at)
        self._deliver(m.StatusReceived(self.now, status, pushed=True), taken_at)

    # The machine's actions, carried out in the world

    def _carry_out(self, action: m.Action, basis: Basis | None) -> None:
        match action:
            case m.TurnRelayOn():
                self._switch_relay(on=True, forced=False)
            case m.TurnRelayOff(forced=forced):
                self._switch_relay(on=False, forced=forced, basis=basis)
            case m.SetHeatersOff():
                self._later(lambda: self._heaters_off_arrives(basis))
            case m.SendShutdown():
                # Judged by what the user had asked for when it went out (a cancel may pass it).
                user = replace(self.intent.user)
                self.tally.halts += 1
                self._later(lambda: self._halt_arrives(basis, user))
            case m.RefreshStatus(asked_will_do=will_do):
                self.request_refresh(answer_under_way_will_do=will_do)
            case m.Notify(kind=m.EventKind.PROBLEM):
                self.tally.problems += 1
                self.problem_told = True
                self.intent.problem_told(self.data.state)
            case _:
                pass

    def _heaters_off_arrives(self, basis: Basis | None) -> None:
        if self.world.octoprint_answers() and self.world.printer_connected:
            # The cool-down starts on an answer showing the job over, whether or not the user
            # asked for a power-off since it was asked for.
            self.referee.check_no_job("heaters off", basis, User())
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
        self.referee.check_halt_request(basis, user)
        if world.host == Host.UP:
            self.referee.halt_decision = (basis, user)
            world.accept_halt(self.scenario.stops_answering_after)
            self.at(self.now + self.scenario.halt_seconds, world.host_halted)
        if self.rng.random() < self.scenario.loss:
            answer(m.ShutdownOutcome.UNREACHABLE, REQUEST_TIMEOUT)
        else:
            answer(m.ShutdownOutcome.SENT, self.rng.uniform(0.01, self.scenario.max_latency))

    def _switch_relay(self, *, on: bool, forced: bool, basis: Basis | None = None) -> None:
        world = self.world
        if not world.plug_online:
            # The switch call fails and Home Assistant says so: what the user expected of this
            # power-off (or power-on) is theirs to take up again, and the machine starts afresh
            # when the plug reports its relay.
            self.intent.dropped(self.now)
            self.intent.power_cycled()
            return
        if on == world.relay:
            return
        if on:
            world.power(True)
            self.intent.power_cycled()
            self.at(self.now + self.rng.uniform(5.0, 40.0), self._host_ready)
        else:
            self.referee.check_cut(forced=forced, basis=basis)
            world.power(False)
            self.intent.power_cycled()
        self.at(self.now + RELAY_REPORT_DELAY, self.report_relay)

    def _host_ready(self) -> None:
        self.world.host_ready()
        self.octoprint_event()

    def report_relay(self) -> None:
        """The plug reports its relay (None: the plug is away)."""
        world = self.world
        self._deliver(m.RelayReported(self.now, world.relay if world.plug_online else None))

    # Users

    def command(self, source: str) -> None:
        """A user command from one of the integration's sources.

        What the user asks for is noted before the machine acts on it (a force may cut at once)
        and taken back when the machine refuses the command.
        """
        before, saved = self.data, self.intent.snapshot()
        event = SOURCES[source](self.now)
        if before.state != m.Phase.OFF:
            self.intent.note_command(event, before, self.now)
        if not self._deliver(event):
            self.intent.restore(saved)
        elif before.state == m.Phase.OFF and self.world.relay:
            self.intent.powered_on_by(event, self.now)

    def restart_home_assistant(self, seconds: float, *, killed: bool = False) -> None:
        """Home Assistant stops (saving the machine) and starts again with it.

        Killed, it saves nothing more: it starts again from what the store holds, which may be
        older than the machine (the last readings, not yet written).
        """
        if not self.ha_up:
            return
        self.ha_up = False
        if killed:
            self.data = self.saved
        self.saved, self._write_due = self.data, False
        self._epoch += 1
        self._source_asked_at = None
        self._polls_under_way = 0
        self._poll_again = False
        self.socket_open = False

        def back() -> None:
            self.ha_up = True
            self._deliver(m.Resumed(self.now))
            self.report_relay()
            self._poll()

        self.at(self.now + seconds, back)

    # The end: a calm world, and what must have happened by then

    def calm_down(self) -> None:
        """From now on answers arrive and nothing new happens but what is under way."""
        self.problem_told = False
        self.scenario = replace(self.scenario, loss=0.0)
        self.world.network_ok = True
        self.world.busy_until = self.world.octoprint_down_until = self.now

    def __repr__(self) -> str:
        """What a violation report needs: the world, the machine and the user."""
        world, data = self.world, self.data
        job = world.job
        return (
            f"t={world.now:.1f} world(relay={world.relay}, host={world.host}, "
            f"job={job and (job.flag, job.reported, round(job.started_at, 1))}, "
            f"hotend={world.hottest():.0f}, heated_at={world.heated_at:.1f}, "
            f"answers={world.octoprint_answers()}) machine({data.state}, job={data.job_active}, "
            f"reachable={data.reachable}) basis={self.basis} user={self.intent.user} "
            f"settings={self.settings}\n" + "\n".join(self.trace)
        )


def klipper_status(
    world: World, tools: tuple[float, ...], targets: tuple[float, ...], bed: float | None
) -> m.Status:
    """What Moonraker's printer objects say of the world, read as OctoPlugout reads them."""
    job = world.job if world.job is not None and world.job.reported else None
    print_state = KLIPPER_PRINT_STATES[job.flag] if job else "standby"
    objects: dict[str, dict[str, object]] = {
        # A printer whose microcontroller is gone shuts Klippy down.
        "webhooks": {"state": "ready" if world.printer_connected else "shutdown"},
        "print_stats": {"state": print_state},
        "idle_timeout": {"state": "Printing" if job else "Idle"},
    }
    for index, (temperature, target) in enumerate(zip(tools, targets, strict=False)):
        name = f"extruder{index}" if index else "extruder"
        objects[name] = {"temperature": temperature, "target": target}
    if bed is not None:
        objects["heater_bed"] = {"temperature": bed, "target": 0.0}
    return printer_status(KLIPPY_UNTOLD, objects).for_machine()
