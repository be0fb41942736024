"""An async client for the parts of Moonraker's API that OctoPlugout uses.

Moonraker is Klipper's API server. It answers HTTP requests with ``{"result": ...}`` or
``{"error": {"code", "message"}}`` and speaks JSON-RPC 2.0 on its websocket. The printer's
state comes from Klippy's printer objects; this module turns them into a ``PrinterStatus``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
import json
import re
from typing import Any, Final

import aiohttp

from .host import (
    Heater,
    HostAuthError,
    HostConnectionError,
    HostError,
    HostPushRefusedError,
    PrinterStatus,
    ServerAddress,
)
from .machine import JobState

REQUEST_TIMEOUT: Final = 10.0
# Klippy's state when it runs its printer; any other (startup, shutdown, error, disconnected)
# is a printer fault.
KLIPPY_READY: Final = "ready"
KLIPPY_DISCONNECTED: Final = "disconnected"
# An answer that does not tell Klippy's state.
KLIPPY_UNTOLD: Final = "state unknown"
# The print_stats states of a job under way. "complete", "cancelled", "error" and "standby"
# mean none: a print that ended in an error left a printer that Klippy still runs.
JOB_STATES: Final = frozenset({"printing", "paused"})
# Klippy's idle_timeout says "Printing" while it runs G-code, in a print or not (a macro, a
# homing, a wait for heat started from the console): work that power must not cut.
IDLE_TIMEOUT_BUSY: Final = "Printing"
HOTEND = re.compile(r"^extruder\d*$")
BED: Final = "heater_bed"
# What OctoPlugout reads of each printer object; every hotend reads the same as "extruder".
HEATER_FIELDS: Final = ("temperature", "target")
OBJECT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "webhooks": ("state", "state_message"),
    "print_stats": ("state", "filename", "print_duration", "message"),
    "virtual_sdcard": ("progress", "is_active"),
    "idle_timeout": ("state",),
    BED: HEATER_FIELDS,
}
# Moonraker answers a socket request it refuses (HTTP's 401) with JSON-RPC's "invalid params"
# code; real invalid params say so in their message.
RPC_UNAUTHORIZED_CODE: Final = -32602
RPC_INVALID_PARAMS: Final = "Invalid params"


class MoonrakerError(HostError):
    """Base of every error this client raises."""


class MoonrakerConnectionError(MoonrakerError, HostConnectionError):
    """Moonraker could not be reached: refused, timed out, no route."""


class MoonrakerPushRefusedError(MoonrakerConnectionError, HostPushRefusedError):
    """The websocket request got a plain HTTP answer (a proxy that passes no websockets)."""


class MoonrakerAuthError(MoonrakerError, HostAuthError):
    """Moonraker refused the API key, or trusts no key-less client from here."""


class MoonrakerResponseError(MoonrakerError):
    """Something answered that is not Moonraker, or answered in a shape Moonraker does not."""


class MoonrakerRequestError(MoonrakerError):
    """Moonraker answered the request with an error of its own (Klippy not ready, say)."""

    def __init__(self, code: int, message: str) -> None:
        """Keep Moonraker's code and message."""
        super().__init__(f"Moonraker answered {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What Moonraker says of itself and of Klippy."""

    klippy_state: str
    version: str


class MoonrakerClient:
    """Talks to one Moonraker over a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        address: ServerAddress,
        api_key: str | None = None,
        *,
        verify_ssl: bool = True,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        """Keep the session; the caller owns it. No key: Moonraker trusts this network."""
        self._session = session
        self.address = address
        self.api_key = api_key or None
        self._verify_ssl = verify_ssl
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        """Name the server, never the key."""
        return f"MoonrakerClient({self.address.base_url})"

    @property
    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key} if self.api_key else {}

    async def _request(
        self, method: str, endpoint: str, params: Mapping[str, str] | None = None
    ) -> Any:
        """Send one request; return Moonraker's ``result``, or raise a typed error."""
        if self._session.closed:
            raise MoonrakerConnectionError("Home Assistant is stopping")
        try:
            async with self._session.request(
                method,
                self.address.url(endpoint),
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                ssl=self._verify_ssl,
                allow_redirects=False,
            ) as response:
                body = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientConnectionError) as err:
            raise MoonrakerConnectionError(
                f"{self.address.base_url} did not answer: {type(err).__name__}"
            ) from err
        except aiohttp.ClientError as err:
            raise MoonrakerResponseError(
                f"{self.address.base_url} answered badly: {type(err).__name__}"
            ) from err
        answer = _parse_answer(body, endpoint)
        if status in (401, 403):
            # Only Moonraker's own refusal says that it is Moonraker that refuses.
            if "error" not in answer:
                raise MoonrakerResponseError(f"{method} {endpoint} answered HTTP {status}")
            raise MoonrakerAuthError(f"Moonraker refused {method} {endpoint}")
        if "error" in answer:
            error = answer["error"]
            error = error if isinstance(error, Mapping) else {}
            code = error.get("code")
            raise MoonrakerRequestError(
                code if isinstance(code, int) else status, str(error.get("message", ""))
            )
        if status != 200 or "result" not in answer:
            raise MoonrakerResponseError(f"{method} {endpoint} answered HTTP {status}")
        return answer["result"]

    async def async_get_server_info(self) -> ServerInfo:
        """Moonraker's version and Klippy's state; also proves it is Moonraker that answers."""
        info = _require(await self._request("GET", "server/info"), "server/info")
        state = info.get("klippy_state")
        if not isinstance(state, str):
            raise MoonrakerResponseError("server/info tells no Klippy state")
        return ServerInfo(klippy_state=state, version=str(info.get("moonraker_version", "")))

    async def async_check_access(self) -> None:
        """Prove that Moonraker lets this client in (by its key, or by trusting its network)."""
        await self._request("GET", "access/user")

    async def async_list_objects(self) -> list[str]:
        """The printer objects Klippy has (raises ``MoonrakerRequestError`` without Klippy)."""
        listing = _require(await self._request("GET", "printer/objects/list"), "objects")
        objects = listing.get("objects")
        if not isinstance(objects, list):
            raise MoonrakerResponseError("printer/objects/list has an unexpected shape")
        return [str(name) for name in objects]

    async def async_query(self, objects: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
        """The named fields of printer objects, by object."""
        params = {name: ",".join(fields) for name, fields in objects.items()}
        answer = _require(await self._request("GET", "printer/objects/query", params), "query")
        return _require(answer.get("status"), "query status")

    async def async_run_gcode(self, script: str, *, queued_after: float | None = None) -> bool:
        """Run G-code; False when Klippy cannot run it now (not connected, not ready).

        Moonraker answers once Klippy has run the script, which waits its turn behind the
        command running (a print's heat-up holds it for minutes). With ``queued_after``, a
        script still waiting after that many seconds is left to Klippy, which runs it in turn.
        """
        try:
            async with asyncio.timeout(queued_after):
                await self._request("POST", "printer/gcode/script", {"script": script})
        except MoonrakerRequestError:
            return False
        except TimeoutError:
            return True
        return True

    async def async_shutdown_host(self) -> None:
        """Ask Moonraker to halt its host (``machine.shutdown``)."""
        await self._request("POST", "machine/shutdown")

    async def async_sudo_access(self) -> bool:
        """Whether Moonraker may run the commands that halt its host (it tries one now)."""
        info = _require(
            await self._request("GET", "machine/sudo/info", {"check_access": "true"}), "sudo"
        )
        return info.get("sudo_access") is True

    async def async_in_container(self) -> bool:
        """Whether Moonraker runs in a container (then it refuses to halt its host)."""
        info = _require(await self._request("GET", "machine/system_info"), "system_info")
        virtualization = _dict(_dict(info.get("system_info")).get("virtualization"))
        return virtualization.get("virt_type") == "container"

    async def async_instance_id(self) -> str | None:
        """Moonraker's instance id (what it announces on the network as its uuid)."""
        try:
            item = _require(
                await self._request(
                    "GET", "server/database/item", {"namespace": "moonraker", "key": "instance_id"}
                ),
                "database item",
            )
        except MoonrakerRequestError:
            return None
        value = item.get("value")
        return value.lower() if isinstance(value, str) and value else None

    @asynccontextmanager
    async def async_socket(
        self, heartbeat: float
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """Moonraker's JSON-RPC websocket, open for the ``async with`` block."""
        if self._session.closed:
            raise MoonrakerConnectionError("Home Assistant is stopping")
        try:
            socket = await self._session.ws_connect(
                self.address.url("websocket"),
                headers=self._headers,
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout.total),
                ssl=self._verify_ssl,
            )
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (401, 403):
                raise MoonrakerAuthError("Moonraker refused the websocket") from err
            raise MoonrakerPushRefusedError(err.status) from err
        except (TimeoutError, aiohttp.ClientError) as err:
            raise MoonrakerConnectionError(f"websocket: {type(err).__name__}") from err
        try:
            yield socket
        finally:
            await socket.close()


def subscription(objects: list[str]) -> dict[str, tuple[str, ...]]:
    """The printer objects and fields OctoPlugout follows, of those Klippy has."""
    wanted = dict(OBJECT_FIELDS)
    wanted.update((name, HEATER_FIELDS) for name in objects if HOTEND.match(name))
    return {name: fields for name, fields in wanted.items() if name in objects}


def klippy_state(objects: Mapping[str, Any]) -> str | None:
    """Klippy's state as its ``webhooks`` object tells it (None: not told)."""
    return _text(_dict(objects.get("webhooks")).get("state"))


def printer_status(known_state: str, objects: Mapping[str, Any]) -> PrinterStatus:
    """What Klippy's printer objects (``printer.objects.query``'s status) say of the printer.

    ``known_state`` is Moonraker's word for Klippy when Klippy cannot tell its own (it is
    disconnected); otherwise the ``webhooks`` object's state counts. A Klippy that is not ready,
    or an answer without the job, is a printer fault: it counts as a job until the fault limit.
    """
    told = klippy_state(objects) if known_state != KLIPPY_DISCONNECTED else None
    klippy = told or known_state
    stats = _dict(objects.get("print_stats"))
    print_state = _text(stats.get("state"))
    hotends = {
        name: _heater(value) for name, value in sorted(objects.items()) if HOTEND.match(name)
    }
    bed = _heater(objects[BED]) if isinstance(objects.get(BED), Mapping) else None
    if klippy != KLIPPY_READY:
        job, text = JobState.FAULT, f"Klippy {klippy}"
    elif print_state is None:
        # An answer that lost the job tells no idle printer.
        job, text = JobState.FAULT, "Job unknown"
    else:
        job = JobState.RUNNING if print_state in JOB_STATES else JobState.NONE
        text = print_state.capitalize()
    progress = _number(_dict(objects.get("virtual_sdcard")).get("progress"))
    duration = _number(stats.get("print_duration"))
    running = job == JobState.RUNNING
    return PrinterStatus(
        job=job,
        state_text=text,
        hotends=hotends,
        bed=bed,
        busy=_dict(objects.get("idle_timeout")).get("state") == IDLE_TIMEOUT_BUSY,
        job_text=print_state,
        progress=round(min(max(progress, 0.0), 1.0) * 100, 1)
        if progress is not None and running
        else None,
        print_time=int(duration) if duration is not None and running else None,
        print_time_left=_time_left(duration, progress) if running else None,
        file_name=_text(stats.get("filename")) or None,
    )


def merge(objects: dict[str, dict[str, Any]], changes: Mapping[str, Any]) -> None:
    """Apply a status update (only the fields that changed) to the objects known so far."""
    for name, fields in changes.items():
        if isinstance(fields, Mapping):
            objects.setdefault(name, {}).update(fields)


def _time_left(duration: float | None, progress: float | None) -> int | None:
    # As Klipper's own interfaces estimate it from the file: the time so far scaled by what
    # is left of the file.
    if duration is None or progress is None or not 0.0 < progress <= 1.0:
        return None
    return int(duration / progress - duration)


def _parse_answer(body: str, endpoint: str) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError as err:
        raise MoonrakerResponseError(f"{endpoint} did not answer JSON") from err
    return _require(answer, endpoint)


def _require(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MoonrakerResponseError(f"{what} has an unexpected shape")
    return value


def _heater(raw: Any) -> Heater:
    raw = _dict(raw)
    return Heater(actual=_number(raw.get("temperature")), target=_number(raw.get("target")))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
