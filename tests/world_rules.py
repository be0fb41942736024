"""The safety rules, checked in the world of a ``WorldRun`` when an action takes effect there.

The rules (``Violation`` names the one broken):

1. No halt request reaches the host while a job it reports runs.
2. No heaters-off reaches the printer while a job it reports runs.
3. No power cut, unless forced, while the host is not halted by a halt request it accepted (for a
   printer with no host to halt, only after a job as rule 5 says, or the user's request), while
   a hotend is at or above the cool-down temperature, or while any job runs (for a job the host
   never reports, only the temperature and host parts can apply: nothing else can see it).
4. A forced cut only after the user forced one (the force action, MQTT FORCEOFF, or the plug's
   long press while powering off).
5. A halt request that is not the user's goes out only after a job that really ran the minimum
   job time and got as hot as the arming temperature, since power came on or the user last
   cancelled (a job the machine saw run without a gap between answers counts as one).
6. Liveness: once the world calms down (answers arrive, no faults, no commands, no new jobs), a
   power-off under way ends within a bounded time: power off, or the user told of a problem
   (a silent host: told that it does not answer). Hotends kept hot hold it up.
7. Liveness: a power-off the user asked for, or chose after a job that the machine then saw
   run the minimum job time, hot, while they were watching ("power off after print"), comes
   in a calm world, unless the user was told why not.

What no machine can see is allowed, and counted (``Tally.races``): a job or heating that starts
after the answer a decision was taken on, when that answer arrived with the deciding event and,
for a halt request the user asked for, was asked for after the user asked. Nobody starts a job or
heats once the host accepted a halt (nothing could see it), and the halt delay covers the host's
halt (setup asks for that).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from custom_components.octoplugout import machine as m

from .world import Host
from .world_user import POWERING_DOWN, User

if TYPE_CHECKING:
    from .world_run import WorldRun


class Violation(AssertionError):
    """A rule broken in the world."""


@dataclass(frozen=True)
class Basis:
    """What a decision was taken on: the last status the machine had."""

    taken_at: float
    asked_at: float | None  # None: pushed
    on_arrival: bool  # the decision came with the event that delivered it


class Referee:
    """Checks every rule against the world of one run."""

    def __init__(self, run: WorldRun) -> None:
        """Nothing decided yet."""
        self.run = run
        # What the halt request the host accepted was decided on, and the user's wishes then.
        self.halt_decision: tuple[Basis | None, User] = (None, User())

    def check_halt_request(self, basis: Basis | None, user: User) -> None:
        """Rules 1 and 5, when a halt request reaches a host that answers."""
        if not user.job_loss_allowed:
            self.check_no_job("a halt request", basis, user)
        if user.power_off_asked_at is None and not user.job_qualified:
            raise Violation(f"an automatic halt request with no job that qualified; {self.run}")

    def excused(self, since: float, basis: Basis | None, user: User) -> bool:
        """Whether something that began at ``since`` was out of the machine's sight (a race)."""
        asked = user.power_off_asked_at
        seen_in_time = (
            basis is not None
            and basis.on_arrival
            and since > basis.taken_at
            and (asked is None or (basis.asked_at is not None and basis.asked_at >= asked))
        )
        if seen_in_time:
            self.run.tally.races += 1
        return seen_in_time

    def check_no_job(self, what: str, basis: Basis | None, user: User) -> None:
        job = self.run.world.job
        if (
            job is not None
            and job.shown_at is not None
            and not self.excused(job.shown_at, basis, user)
        ):
            raise Violation(f"{what} reached the printer during a job; {self.run}")

    def check_cut(self, *, forced: bool, basis: Basis | None) -> None:
        """Rules 3 and 4 (and 5 for a printer with no host to halt), when the relay goes off."""
        world = self.run.world
        self.run.tally.cuts += 1
        if forced:
            self.run.tally.forced_cuts += 1
            if not self.run.intent.user.forced:
                raise Violation(f"a forced cut nobody forced; {self.run}")
            return
        decision = self.halt_decision
        if not self.run.settings.halts_host:
            # No host to halt (a printer another integration reports, no halt button): the
            # cut is decided on the status it comes with, and may only follow a job that
            # qualified.
            user = replace(self.run.intent.user)
            decision = (basis, user)
            if user.power_off_asked_at is None and not user.job_qualified:
                raise Violation(f"an automatic cut with no job that qualified; {self.run}")
        elif world.host != Host.HALTED:
            raise Violation(f"power cut with the host {world.host}; {self.run}")
        hot = world.hottest() >= self.run.settings.cool_temperature
        if hot and not self.excused(world.heated_at, *decision):
            raise Violation(f"power cut with a hotend at {world.hottest():.0f} C; {self.run}")
        shown_at = None if world.job is None else world.job.shown_at
        if shown_at is not None and not self.excused(shown_at, *decision):
            raise Violation(f"power cut during a job; {self.run}")

    def check_liveness(self) -> None:
        """A power-off under way has ended: power off, or the user told why not.

        Hotends kept hot (heaters left on, no heaters-off asked for) hold it up as long as they
        are. A host that does not answer any more (it halted, or it is off) holds a power-off
        up with power on: armed, a silent host may be a busy one still printing; waiting for
        an answer before the halt request, the user must have been told.
        """
        data, world = self.run.data, self.run.world
        if world.hottest() >= self.run.settings.cool_temperature or world.job is not None:
            return
        if self.run.intent.user.expects_power_off() and world.relay and world.octoprint_answers():
            raise Violation(f"power never went off after the job, as chosen; {self.run}")
        if data.state not in POWERING_DOWN or self.run.problem_told:
            return
        if world.octoprint_answers():
            raise Violation(f"a power-off still under way in a calm world; {self.run}")
        waits_to_halt = data.state in (m.Phase.GOING_DOWN, m.Phase.SHUTTING_DOWN_HOST)
        if waits_to_halt and not data.wait_reported:
            raise Violation(f"a power-off waits on a silent host, untold; {self.run}")
