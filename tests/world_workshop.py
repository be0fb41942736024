"""What happens in a workshop: prints, hands on the heaters, cables, restarts, outages.

Each ``Workshop`` method is one thing that happens to the world of a ``WorldRun`` (and through
it, what OctoPrint then tells): the machine learns of it only through the channel.
"""

from __future__ import annotations

from .world import READINGS_DELAY, Host, Job
from .world_run import RELAY_REPORT_DELAY, WorldRun


class Workshop:
    """The things that happen to one world."""

    def __init__(self, run: WorldRun) -> None:
        """The world they happen to."""
        self.run = run

    def start_job(
        self, duration: float, temperature: float, *, shown_after: float | None = 0.0
    ) -> None:
        """A print starts; it finishes after ``duration`` unless something ends it first.

        ``shown_after``: 0 for a job started through OctoPrint; otherwise it is started on the
        printer's own screen, and OctoPrint shows it that much later, or never (None).
        """
        job = self.run.world.start_job(duration, temperature, from_sd=shown_after != 0.0)
        if job is None:
            return
        job.heaters_off_at_end = self.run.rng.random() < 0.8
        self._finish_at_its_end(job)
        self.run.octoprint_event()
        if shown_after:

            def shown() -> None:
                if self.run.world.job is job and self.run.world.octoprint_answers():
                    job.shown_at = self.run.now
                    self.run.octoprint_event()

            self.run.at(self.run.now + shown_after, shown)

    def _finish_at_its_end(self, job: Job) -> None:
        def finishing() -> None:
            if self.run.world.job is job and job.flag == "printing" and self.run.now >= job.ends_at:
                job.flag = "finishing"
                self.run.octoprint_event()
                self.run.at(self.run.now + 2.0, over)

        def over() -> None:
            if self.run.world.job is job:
                self.run.world.end_job(heaters_off=job.heaters_off_at_end)
                self.run.octoprint_event()

        self.run.at(job.ends_at, finishing)

    def cancel_job(self) -> None:
        """Someone cancels the print: cancelling for a few seconds, then over, heaters off."""
        job = self.run.world.job
        if job is None or job.flag not in ("printing", "paused"):
            return
        job.flag = "cancelling"
        self.run.octoprint_event()

        def over() -> None:
            if self.run.world.job is job:
                self.run.world.end_job(heaters_off=True)
                self.run.octoprint_event()

        self.run.at(self.run.now + self.run.rng.uniform(1.0, 8.0), over)

    def pause_job(self, seconds: float) -> None:
        """The print pauses (a filament change) and resumes later, finishing later too."""
        job = self.run.world.job
        if job is None or job.flag != "printing":
            return
        job.flag = "paused"
        left = job.ends_at - self.run.now
        self.run.octoprint_event()

        def resume() -> None:
            if self.run.world.job is job and job.flag == "paused":
                job.flag = "printing"
                job.ends_at = self.run.now + left
                self._finish_at_its_end(job)
                self.run.octoprint_event()

        self.run.at(self.run.now + seconds, resume)

    def heat(self, temperature: float) -> None:
        """Someone heats the hotends by hand (or turns them off, at 0)."""
        if self.run.world.can_start_something():
            self.run.world.heat(temperature)
            self.run.octoprint_event()

    def disconnect_printer(self, seconds: float) -> None:
        """The printer's cable is pulled, and plugged in again later."""
        world = self.run.world
        if not world.printer_connected or world.host != Host.UP:
            return
        world.disconnect_printer()
        self.run.octoprint_event()

        def reconnect() -> None:
            if world.host in (Host.UP, Host.HALTING) and world.relay:
                world.connect_printer()
                self.run.octoprint_event()

        self.run.at(self.run.now + seconds, reconnect)

    def restart_octoprint(self, seconds: float) -> None:
        """OctoPrint restarts: no answers for a while; a job it streamed dies."""
        world = self.run.world
        if not world.octoprint_answers():
            return
        if world.job is not None and world.job.streamed:
            world.end_job(heaters_off=False)
        world.octoprint_down_until = self.run.now + seconds
        world.readings_from = world.octoprint_down_until + READINGS_DELAY
        self.run.close_socket()

    def network_outage(self, seconds: float) -> None:
        """The network between Home Assistant and OctoPrint breaks for a while."""
        self.run.world.network_ok = False
        self.run.close_socket()

        def back() -> None:
            self.run.world.network_ok = True

        self.run.at(self.run.now + seconds, back)

    def host_busy(self, seconds: float) -> None:
        """The host is too busy to answer for a while (it goes on printing)."""
        self.run.world.busy_until = max(self.run.world.busy_until, self.run.now + seconds)

    def plug_away(self, seconds: float) -> None:
        """The plug reboots or loses WiFi: unavailable for a while, its relay as it was."""
        world = self.run.world
        if not world.plug_online:
            return
        world.plug_online = False
        self.run.at(self.run.now + RELAY_REPORT_DELAY, self.run.report_relay)

        def back() -> None:
            world.plug_online = True
            self.run.report_relay()

        self.run.at(self.run.now + seconds, back)
