"""What the user wants, and which jobs count towards a power-off after a print.

``Intent`` follows the user's commands (as the user means them, seeing the machine's state) and
the jobs the machine could see: a chain of jobs seen running without an answer in between
showing none is one job to it. From both it knows whether an automatic halt request is allowed
(a job in the world really qualified) and whether a power-off must come (the user asked for one,
or chose one after a job the machine saw qualify while they were watching).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from custom_components.octoplugout import machine as m

POWERING_DOWN = frozenset({m.Phase.ARMED, *m.POWERING_DOWN_STATES})


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

    def drop_request(self) -> None:
        """No power-off asked for any more, nor a force."""
        self.power_off_asked_at = None
        self.forced = self.job_loss_allowed = False

    def reset(self) -> None:
        """Power went off or came on, or the user cancelled: nothing asked any more."""
        self.drop_request()
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


class Intent:
    """The user's wishes and the chain of jobs, kept beside the machine."""

    def __init__(self, settings: m.Settings) -> None:
        """Watching from the start when the start-up mode watches."""
        self.settings = settings
        self.user = User(watching=settings.startup_mode == m.StartupMode.WATCHING)
        self.chain = Chain()

    def snapshot(self) -> tuple[User, Chain]:
        """A copy to go back to when the machine refuses a command."""
        return replace(self.user), replace(self.chain)

    def restore(self, saved: tuple[User, Chain]) -> None:
        """Back to a copy taken before a refused command."""
        self.user, self.chain = saved

    # Commands

    def note_command(self, event: m.MachineEvent, before: m.MachineData, now: float) -> None:
        """What a command means, the machine being in ``before`` (what the user sees)."""
        # What the machine takes as cancelling a power-off under way.
        cancels = before.state in m.POWERING_DOWN_STATES or before.user_power_off
        match event:
            case m.ForceRequested(allow_job_loss=allow):
                self._asked_off(now, forced=True, job_loss_allowed=allow)
            case m.ButtonPressed(long=True):
                self._asked_off(now, forced=before.state == m.Phase.POWERING_OFF)
            case m.ModeSelected(mode=m.Mode.OFF):
                self._asked_off(now)
            case m.CancelRequested() if cancels or before.state == m.Phase.ARMED:
                self._keep_power(cancel_this_job=before.job_active)
                self.watch(True, now)
            case m.ModeSelected(mode=m.Mode.AFTER_PRINT):
                self._after_print(before, now)
            case m.ButtonPressed() if before.state == m.Phase.ON:
                # Watching again: the job under way may arm the power-off.
                self._unblock_chain(now)
                self.watch(True, now)
            case m.ModeSelected(mode=m.Mode.ALWAYS_ON) | m.ButtonPressed():
                # Always on: the job under way counts only if they choose otherwise during it.
                self._keep_power(cancel_this_job=before.job_active)
                self.watch(False, now)
            case _:
                pass

    def _after_print(self, before: m.MachineData, now: float) -> None:
        if before.state in m.POWERING_DOWN_STATES and not before.job_active:
            # The job is over: the power-off under way ends, and the next print counts (as on
            # the original).
            self._keep_power(cancel_this_job=False)
        else:
            # Power off after a print, the one under way included.
            self.user.drop_request()
            self._unblock_chain(now)
            if not (before.state == m.Phase.ARMED and before.job_qualified):
                # Not armed by the job itself: it arms once seen running again.
                self.chain.unblocked_at = now
                self.user.job_done = False
        self.watch(True, now)

    def powered_on_by(self, event: m.MachineEvent, now: float) -> None:
        """A command powered on: whether the machine now watches for a print."""
        match event:
            case m.ModeSelected(mode=mode):
                watching = mode == m.Mode.AFTER_PRINT
            case m.ButtonPressed(long=True):
                watching = False
            case _:
                watching = self.settings.startup_mode == m.StartupMode.WATCHING
        self.watch(watching, now)

    def watch(self, on: bool, now: float) -> None:
        """The user's mode is, or is no longer, power off after a print."""
        if on and not self.user.watching:
            self.user.watching_since = now
        self.user.watching = on

    def _unblock_chain(self, now: float) -> None:
        if self.chain.blocked:
            self.chain.blocked = False
            self.chain.unblocked_at = now

    def _asked_off(
        self, now: float, *, forced: bool = False, job_loss_allowed: bool = False
    ) -> None:
        user = self.user
        # Off after this job: whatever kept it from counting no longer does (as the machine's
        # safe power-off lifts a cancelled job's block).
        self._unblock_chain(now)
        if user.power_off_asked_at is None:
            user.power_off_asked_at = now
        user.forced = user.forced or forced
        user.job_loss_allowed = user.job_loss_allowed or job_loss_allowed

    def _keep_power(self, *, cancel_this_job: bool) -> None:
        """The user cancelled a power-off, or chose to keep power on."""
        self.user.reset()
        if cancel_this_job:
            # Not after the job the user sees running (the one under way, or after a silence
            # the next one seen): it must not arm the power-off again.
            self.chain.blocked = True

    def dropped(self, now: float) -> None:
        """The user was told the power-off (or power-on) did not happen: theirs to take up."""
        self.user.reset()
        self.watch(False, now)

    def power_cycled(self) -> None:
        """Power went off or came on: nothing asked any more, no job under way."""
        self.user.reset()
        self.chain = Chain()

    # What the machine sees of the jobs

    def answered(
        self, status: m.Status, taken_at: float, asked_at: float, now: float, hottest: float
    ) -> None:
        """A polled answer: it shows the chain going on, or ends it."""
        if not m.job_in_progress(status, None, now, self.settings):
            self.chain_ends()
            return
        chain = self.chain
        if chain.started_at is None:
            if status.job != m.JobState.RUNNING:
                # A printer fault keeps power on, but no print runs: a job starts when one is
                # seen running.
                return
            chain = self.chain = Chain(taken_at, taken_at, hottest, now, blocked=chain.blocked)
        chain.seen_at = taken_at
        chain.last_asked_at = asked_at
        chain.seen_hottest = max(chain.seen_hottest, status.hottest_tool or 0.0)
        # The reading is the world's when it was taken: a hotend cooling since was that hot
        # during the chain, though the world is cooler when the answer arrives.
        chain.hottest = max(chain.hottest, status.hottest_tool or 0.0)
        surely_seen_until = asked_at - self.settings.status_lag
        if (
            surely_seen_until - chain.first_arrived_at >= self.settings.min_job_time
            and chain.seen_hottest >= self.settings.arm_temperature
        ):
            chain.armable_asked_at = asked_at

    def pushed(self, status: m.Status, taken_at: float) -> None:
        """A pushed update the coordinator applied while a job runs."""
        self.chain.seen_at = max(self.chain.seen_at, taken_at)
        self.chain.seen_hottest = max(self.chain.seen_hottest, status.hottest_tool or 0.0)

    def pushed_no_job(self, taken_at: float) -> None:
        """A pushed update the coordinator applied that shows no job (a printer fault seen
        over, say): taken after the chain was last seen running, it ends the chain as an answer
        would; held back from before, it tells nothing of the chain."""
        if self.chain.started_at is None or taken_at > self.chain.seen_at:
            self.chain_ends()

    def silence(self) -> None:
        """OctoPrint did not answer: the machine restarts a job's clock.

        A cancelled job stays cancelled until an answer shows no job.
        """
        blocked = self.chain.blocked
        self.chain_ends()
        self.chain.blocked = blocked

    def heat_seen(self, hottest: float) -> None:
        """The world's hottest hotend while a chain runs (its real peak)."""
        if self.chain.started_at is not None:
            self.chain.hottest = max(self.chain.hottest, hottest)

    def chain_ends(self) -> None:
        """Whether the chain qualified: in the world, and in what the machine could see."""
        chain, user = self.chain, self.user
        counted = chain.started_at is not None and not chain.blocked
        if (
            counted
            and chain.started_at is not None
            and chain.seen_at - chain.started_at >= self.settings.min_job_time
            and chain.hottest >= self.settings.arm_temperature
        ):
            user.job_qualified = True
        if (
            counted
            and user.watching
            and chain.armable_asked_at is not None
            and chain.armable_asked_at >= max(user.watching_since, chain.unblocked_at)
        ):
            user.job_done = True
        self.chain = Chain()

    def problem_told(self, state: m.Phase) -> None:
        """A problem was told: if it ended the power-off, what was expected is dropped."""
        if state not in POWERING_DOWN:
            self.user.job_done = False
            self.user.power_off_asked_at = None
            self.user.watching = False
