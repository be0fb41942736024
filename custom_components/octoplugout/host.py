"""The printer host seam: what OctoPlugout needs from whatever runs the printer.

A printer host (OctoPrint today) turns its own answers into a ``PrinterStatus``: the job, every
hotend, the bed, whether it is busy with something that must finish, and what to show. It
offers the operations it has, named in its capabilities: a host that cannot be halted or
cannot show messages is still a valid host. Its failures are the typed errors below, so
that the coordinator and the runner never see a host's own exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from yarl import URL

from .machine import JobState, Status

# Pauses before opening a host's push again after failures in a row, in seconds.
RECONNECT_PAUSES: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class HostCapability(StrEnum):
    """An operation or a way of reporting that a host may offer."""

    PUSH = "push"
    HALT = "halt"
    MESSAGE = "message"
    HEATERS_OFF = "heaters_off"


class HaltRefusal(StrEnum):
    """Why a host refused to halt; each is the ``cause`` of a ``shutdown_refused`` problem."""

    NOT_PERMITTED = "shutdown_not_permitted"
    NO_COMMAND = "no_shutdown_command"
    # Moonraker's Linux user may not run its shutdown command with sudo.
    NO_SUDO = "shutdown_needs_sudo"
    # Moonraker runs in a container, which cannot halt the machine.
    IN_CONTAINER = "shutdown_in_container"
    ERROR = "shutdown_error"


class HostError(Exception):
    """A host failed to do or tell what was asked."""


class HostConnectionError(HostError):
    """The host did not answer (refused, timed out, no route): it may be down."""


class HostPushRefusedError(HostConnectionError):
    """The host's push socket was answered with a page instead of a socket."""

    def __init__(self, status: int) -> None:
        """Keep the HTTP status that answered."""
        super().__init__(f"the push socket was answered HTTP {status}")
        self.status = status


class HostAuthError(HostError):
    """The host answers, but refuses OctoPlugout's credentials or lacks a permission."""


class HaltRefusedError(HostError):
    """The host answered the halt request and did not halt."""

    def __init__(self, refusal: HaltRefusal, detail: str) -> None:
        """Keep why."""
        super().__init__(detail)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a host's web server listens; ``path`` is a reverse-proxy prefix or empty."""

    host: str
    port: int
    path: str = ""
    ssl: bool = False

    @property
    def base_url(self) -> URL:
        """The root URL of the host's web interface."""
        return URL.build(
            scheme="https" if self.ssl else "http",
            host=self.host.strip("[]"),
            port=self.port,
            path=normalize_path(self.path),
        )

    def url(self, endpoint: str) -> URL:
        """An API URL, joined so that no doubled or missing slash can appear."""
        prefix = normalize_path(self.path)
        return self.base_url.with_path(f"{prefix}/{endpoint.lstrip('/')}")


def normalize_path(path: str) -> str:
    """A path prefix as ``/a/b`` (or empty): one leading slash, none at the end."""
    parts = [part for part in path.strip().split("/") if part]
    return "".join(f"/{part}" for part in parts)


@dataclass(frozen=True, slots=True)
class Heater:
    """One heater's actual and target temperature in C (None: not read)."""

    actual: float | None
    target: float | None


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What a host reports of its printer: what the machine decides on, and what is shown."""

    job: JobState
    state_text: str
    hotends: Mapping[str, Heater] = field(default_factory=dict)
    bed: Heater | None = None
    # Busy with work that power must not cut although no job runs (a timelapse rendering).
    busy: bool = False
    job_text: str | None = None
    progress: float | None = None
    print_time: int | None = None
    print_time_left: int | None = None
    file_name: str | None = None

    def for_machine(self) -> Status:
        """What the machine decides on: the job, every hotend read, the bed, busy or not."""
        return Status(
            job=self.job,
            tool_temperatures=tuple(
                heater.actual for heater in self.hotends.values() if heater.actual is not None
            ),
            bed_temperature=self.bed.actual if self.bed else None,
            busy=self.busy,
            tool_targets=tuple(
                heater.target for heater in self.hotends.values() if heater.target is not None
            ),
        )


@dataclass(frozen=True, slots=True)
class AccessProblem:
    """Credentials the host accepts, whose user lacks permissions OctoPlugout needs."""

    user: str
    missing: str


@dataclass(frozen=True, slots=True)
class StatusStream:
    """Where a host's push reports; every callback runs in the event loop."""

    on_status: Callable[[PrinterStatus], None]
    # Something happened (a job event), and the job it tells of (None: it tells of none); the
    # machine decides whether a status asked for now must say more.
    on_change: Callable[[JobState | None], None]
    on_connection: Callable[[bool], None]


class PrinterHost(Protocol):
    """A printer host: a status on request, a push stream, and the operations it offers."""

    @property
    def capabilities(self) -> frozenset[HostCapability]:
        """What this host offers."""

    @property
    def name(self) -> str:
        """What the host is (e.g. "OctoPrint"), for logs."""

    @property
    def address(self) -> str:
        """Where the host is, for logs and repair issues."""

    @property
    def url(self) -> str | None:
        """The host's web page, for the device's configuration link."""

    @property
    def model(self) -> str:
        """What the device calls itself (e.g. "OctoPrint power controller")."""

    @property
    def status_lag(self) -> float:
        """How much older than the moment it is read a status may be, in seconds."""

    async def async_check_credentials(self) -> None:
        """Prove the host lets OctoPlugout in.

        Raises ``HostAuthError`` when it refuses, ``HostError`` when that cannot be told now.
        """

    async def async_poll(self, *, check_busy: bool) -> PrinterStatus:
        """The status now; ``check_busy`` also asks about work that must finish.

        Raises ``HostConnectionError``, ``HostAuthError`` or ``HostError``.
        """

    async def async_stream(self, stream: StatusStream) -> None:
        """Report pushed statuses until the push ends; raise ``HostError`` when it fails."""

    async def async_set_push_interval(self, seconds: float) -> None:
        """Push state updates about every ``seconds`` from now on (events still at once)."""

    async def async_halt(self) -> None:
        """Ask the host to halt.

        Raises ``HaltRefusedError`` when it will not, ``HostConnectionError`` when it did not
        answer (it may have the request or not).
        """

    async def async_show_message(self, text: str) -> bool:
        """Show ``text`` on the printer's display; False when no printer is there to show it."""

    async def async_heaters_off(self) -> bool:
        """Set every heater's target to 0; False when no printer is there."""

    async def async_access_problem(self) -> AccessProblem | None:
        """After a ``HostAuthError``: the permissions missing, or None for refused credentials.

        None means a new key is needed. Raises ``HostError`` when that cannot be told now.
        """


def reconnect_pause(failures: int) -> float:
    """How long to wait before the next push after ``failures`` failures in a row."""
    return RECONNECT_PAUSES[min(max(failures, 0), len(RECONNECT_PAUSES) - 1)]
