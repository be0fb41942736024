"""What is true of the printer, its host and the plug, apart from anything OctoPlugout is told.

``World`` holds the facts a safety rule is about: whether a job really runs (and whether the host
reports it at all), how hot each hotend and the bed really are, whether the host is up, halting
or halted and whether it accepted a halt request, whether the relay is on, and whether a request
can reach OctoPrint now. It changes only through its methods, each something that happens in a
real workshop; ``tests/world_run.py`` drives the machine through a channel beside it and checks
the rules against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

AMBIENT = 25.0
HEAT_RATE = 3.0  # C/s, a hotend heating towards its target
COOL_RATE = 1.0  # C/s, a hotend or bed cooling with its heater off
BED_TARGET = 60.0
# After a restart or a reconnect OctoPrint has no hotend reading for about two seconds
# (measured on OctoPrint 1.11).
READINGS_DELAY = 2.0


class Host(StrEnum):
    """The host computer (the Pi running OctoPrint)."""

    OFF = "off"  # no power
    BOOTING = "booting"
    UP = "up"
    HALTING = "halting"  # accepted a halt request; OctoPrint stops first, the system after
    HALTED = "halted"  # safe to cut


@dataclass
class Heater:
    """One heater: its real temperature and its target (0: off)."""

    temp: float = AMBIENT
    target: float = 0.0

    def advance(self, seconds: float) -> None:
        """Heat towards the target or cool towards the room, linearly."""
        if self.target > self.temp:
            self.temp = min(self.target, self.temp + HEAT_RATE * seconds)
        else:
            floor = max(self.target, AMBIENT)
            if self.temp > floor:
                self.temp = max(floor, self.temp - COOL_RATE * seconds)


@dataclass
class Job:
    """A job on the printer, as it really is."""

    started_at: float
    ends_at: float
    # Printed from the printer's own SD card (started on its screen): it goes on without the
    # host, and OctoPrint shows it late or never.
    from_sd: bool = False
    # When OctoPrint started showing it (None: not yet, or never).
    shown_at: float | None = None
    heaters_off_at_end: bool = True  # what its end G-code does
    flag: str = "printing"  # printing, paused, cancelling, finishing

    @property
    def reported(self) -> bool:
        """Whether OctoPrint shows the job now."""
        return self.shown_at is not None

    @property
    def streamed(self) -> bool:
        """Whether the host streams it (it dies with the host, OctoPrint or the cable)."""
        return not self.from_sd


@dataclass
class World:
    """The printer, its host and the plug's relay, as they really are."""

    now: float
    hotends: int = 1
    relay: bool = True
    plug_online: bool = True
    host: Host = Host.UP
    printer_connected: bool = True
    network_ok: bool = True
    octoprint_down_until: float = 0.0
    busy_until: float = 0.0
    # OctoPrint reports no hotend reading before this (after a restart or a reconnect).
    readings_from: float = 0.0
    # When a halting host's OctoPrint stops answering.
    octoprint_stops_at: float = 0.0
    job: Job | None = None
    # The last moment a heater's target went up (a job or someone heating by hand).
    heated_at: float = -1e18
    tools: list[Heater] = field(default_factory=list)
    bed: Heater = field(default_factory=Heater)

    def __post_init__(self) -> None:
        """Cold heaters; a host that is up when the relay is on."""
        self.tools = [Heater() for _ in range(self.hotends)]
        self.host = Host.UP if self.relay else Host.OFF

    def advance(self, when: float) -> None:
        """Let time pass: heaters heat and cool."""
        if when > self.now:
            for heater in (*self.tools, self.bed):
                heater.advance(when - self.now)
            self.now = when

    def hottest(self) -> float:
        """The hottest hotend's real temperature."""
        return max(tool.temp for tool in self.tools)

    def octoprint_answers(self) -> bool:
        """Whether a request reaching OctoPrint now gets an answer."""
        host_serves = self.host == Host.UP or (
            self.host == Host.HALTING and self.now < self.octoprint_stops_at
        )
        return (
            self.relay
            and host_serves
            and self.network_ok
            and self.now >= self.octoprint_down_until
            and self.now >= self.busy_until
        )

    def can_start_something(self) -> bool:
        """Whether someone can start a job or heat now (the host up, no halt accepted)."""
        return self.relay and self.host == Host.UP and self.printer_connected

    def flags(self) -> frozenset[str]:
        """OctoPrint's state flags now."""
        if not self.printer_connected:
            return frozenset({"closedOrError"})
        if self.job is not None and self.job.reported:
            return frozenset({"operational", self.job.flag})
        return frozenset({"operational", "ready"})

    # What happens to the printer

    def start_job(self, duration: float, temperature: float, *, from_sd: bool) -> Job | None:
        """A print starts: from OctoPrint (shown at once), or from the printer's own screen."""
        if self.job is not None or not self.can_start_something():
            return None
        shown_at = None if from_sd else self.now
        self.job = Job(self.now, self.now + duration, from_sd=from_sd, shown_at=shown_at)
        self.heat(temperature)
        self.bed.target = BED_TARGET
        return self.job

    def heat(self, temperature: float) -> None:
        """Set every hotend's target (someone preheating, or a job)."""
        for tool in self.tools:
            tool.target = temperature
        if temperature > 0:
            self.heated_at = self.now

    def heaters_off(self) -> None:
        """Every heater's target to 0."""
        for heater in (*self.tools, self.bed):
            heater.target = 0.0

    def end_job(self, *, heaters_off: bool) -> None:
        """The job is over (done, or cancelled)."""
        if heaters_off:
            self.heaters_off()
        self.job = None

    def disconnect_printer(self) -> None:
        """The printer's cable is pulled: a job streamed by the host dies, and the heaters keep
        their targets (the firmware holds them; OctoPrint no longer reads them)."""
        self.printer_connected = False
        if self.job is not None and self.job.streamed:
            self.job = None

    def connect_printer(self) -> None:
        """The printer is connected (again): its first readings come a moment later."""
        self.printer_connected = True
        self.readings_from = self.now + READINGS_DELAY

    def has_readings(self) -> bool:
        """Whether OctoPrint has hotend readings to report now."""
        return self.printer_connected and self.now >= self.readings_from

    # What happens to the host and the plug

    def power(self, on: bool) -> None:
        """The relay switches: without power the host stops and every job dies."""
        self.relay = on
        if on:
            self.host = Host.BOOTING
            self.printer_connected = False
        else:
            self.host = Host.OFF
            self.job = None
            self.heaters_off()

    def host_ready(self) -> None:
        """The host finished booting: OctoPrint answers and the printer is connected."""
        if self.relay and self.host == Host.BOOTING:
            self.host = Host.UP
            self.connect_printer()

    def accept_halt(self, stops_after: float) -> None:
        """The host accepted a halt request: OctoPrint stops soon, the system after it."""
        self.host = Host.HALTING
        self.octoprint_stops_at = self.now + stops_after

    def host_halted(self) -> None:
        """The host has halted: a job it streamed dies (one from the SD card goes on)."""
        if self.host == Host.HALTING:
            self.host = Host.HALTED
            if self.job is not None and self.job.streamed:
                self.job = None
