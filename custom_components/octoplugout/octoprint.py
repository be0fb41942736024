"""An async client for the parts of OctoPrint's REST API that OctoPlugout uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from http import HTTPStatus
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
    ServerAddress,
)
from .machine import JobState

REQUEST_TIMEOUT: Final = 10.0
PERMISSION_STATUS: Final = "STATUS"
PERMISSION_CONTROL: Final = "CONTROL"
PERMISSION_SYSTEM: Final = "SYSTEM"
# What OctoPlugout needs of the key's user: the printer's status (polls and the push socket),
# control (messages, heaters off) and system (halting the host).
REQUIRED_PERMISSIONS: Final = (PERMISSION_STATUS, PERMISSION_CONTROL, PERMISSION_SYSTEM)
# The state flags that mean a job is under way, and those of a printer fault.
JOB_FLAGS: Final = frozenset(
    {"printing", "paused", "pausing", "resuming", "finishing", "cancelling"}
)
FAULT_FLAGS: Final = frozenset({"error", "closedOrError"})
# The job each event tells of (PrinterStateChanged: by its new state; others: none).
JOB_OF_EVENT: Final = {
    "PrintStarted": JobState.RUNNING,
    "PrintPaused": JobState.RUNNING,
    "PrintResumed": JobState.RUNNING,
    "PrintDone": JobState.NONE,
    "PrintFailed": JobState.NONE,
    "PrintCancelled": JobState.NONE,
}
JOB_OF_STATE_ID: Final = {
    **dict.fromkeys(
        ("STARTING", "PRINTING", "PAUSING", "PAUSED", "RESUMING", "FINISHING", "CANCELLING"),
        JobState.RUNNING,
    ),
    "OPERATIONAL": JobState.NONE,
    "ERROR": JobState.FAULT,
    "CLOSED_WITH_ERROR": JobState.FAULT,
}
_UDN = re.compile(r"<UDN>\s*uuid:([0-9a-fA-F-]+)\s*</UDN>")


class OctoPrintError(HostError):
    """Base of every error this client raises."""


class OctoPrintConnectionError(OctoPrintError, HostConnectionError):
    """OctoPrint could not be reached: refused, timed out, no route."""


class OctoPrintCertificateError(OctoPrintConnectionError):
    """OctoPrint's HTTPS certificate failed verification (self-signed, expired, another name)."""


class OctoPrintPushRefusedError(OctoPrintConnectionError, HostPushRefusedError):
    """The push socket's request got a plain HTTP answer, not a websocket.

    OctoPrint itself always upgrades it: a reverse proxy in front of it dropped the request's
    Upgrade and Connection headers (nginx does without its websocket lines) or blocked it.
    """


class OctoPrintAuthError(OctoPrintError, HostAuthError):
    """OctoPrint rejected the API key."""


class OctoPrintResponseError(OctoPrintError):
    """OctoPrint (or a proxy in front of it) answered with something unexpected."""


class OctoPrintNoShutdownCommandError(OctoPrintResponseError):
    """OctoPrint has no shutdown command configured: it cannot halt its host."""


class AppKeyDeniedError(OctoPrintError):
    """The user denied the application key request, or it timed out."""


@dataclass(frozen=True, slots=True)
class PrinterSnapshot:
    """Everything one status check learns about OctoPrint and its printer."""

    state_text: str
    flags: frozenset[str]
    tools: dict[str, Heater] = field(default_factory=dict)
    bed: Heater | None = None
    job_state: str | None = None
    progress: float | None = None
    print_time: int | None = None
    print_time_left: int | None = None
    file_name: str | None = None
    rendering: bool = False

    @property
    def connected(self) -> bool:
        """Whether OctoPrint is connected to the printer."""
        return "closedOrError" not in self.flags

    @property
    def job(self) -> JobState:
        """The job as every printer host tells it."""
        return job_of_flags(self.flags)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The user an API key belongs to and what it may do."""

    name: str
    permissions: frozenset[str]


def missing_permissions(user: CurrentUser) -> list[str]:
    """The permissions OctoPlugout needs that the user lacks."""
    return [name for name in REQUIRED_PERMISSIONS if name not in user.permissions]


def permission_names(permissions: Iterable[str]) -> str:
    """Permissions as OctoPrint's Access Control shows them: ``Status, Control``."""
    return ", ".join(name.capitalize() for name in permissions)


class OctoPrintClient:
    """Talks to one OctoPrint server over a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        address: ServerAddress,
        api_key: str | None = None,
        *,
        verify_ssl: bool = True,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        """Keep the session; the caller owns it."""
        self._session = session
        self.address = address
        self._api_key = api_key
        self._verify_ssl = verify_ssl
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        """Name the server, never the key."""
        return f"OctoPrintClient({self.address.base_url})"

    async def _request(
        self,
        method: str,
        endpoint: str,
        *,
        payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        allowed: tuple[int, ...] = (),
        authenticated: bool = True,
    ) -> tuple[int, str]:
        """Send one request; return the status and body, or raise a typed error."""
        headers = {}
        if authenticated and self._api_key:
            headers["X-Api-Key"] = self._api_key
        if self._session.closed:
            # Home Assistant is stopping: nothing is asked of OctoPrint any more.
            raise OctoPrintConnectionError("Home Assistant is stopping")
        try:
            async with self._session.request(
                method,
                self.address.url(endpoint),
                json=payload,
                params=params,
                headers=headers,
                timeout=self._timeout,
                ssl=self._verify_ssl,
                allow_redirects=False,
            ) as response:
                body = await response.text()
                status = response.status
        except aiohttp.ClientConnectorCertificateError as err:
            raise OctoPrintCertificateError(
                f"{self.address.base_url} has a certificate that failed verification"
            ) from err
        except (TimeoutError, aiohttp.ClientConnectionError) as err:
            raise OctoPrintConnectionError(
                f"{self.address.base_url} did not answer: {type(err).__name__}"
            ) from err
        except aiohttp.ClientError as err:
            raise OctoPrintResponseError(
                f"{self.address.base_url} answered badly: {type(err).__name__}"
            ) from err
        if status in allowed or 200 <= status < 300:
            return status, body
        if status in (401, 403):
            # OctoPrint answers 403 alike for a wrong key and for a missing permission.
            raise OctoPrintAuthError(f"OctoPrint refused {method} {endpoint}")
        raise OctoPrintResponseError(f"{method} {endpoint} answered HTTP {status}")

    async def _get_json(
        self, endpoint: str, *, params: dict[str, str] | None = None, allowed: tuple[int, ...] = ()
    ) -> tuple[int, Any]:
        status, body = await self._request("GET", endpoint, params=params, allowed=allowed)
        if status in allowed:
            return status, None
        return status, _parse_json(body, endpoint)

    async def async_get_version(self) -> str:
        """OctoPrint's version; also proves the server answers and the key works."""
        _, data = await self._get_json("api/version")
        return str(_require(data, dict, "api/version").get("server", "unknown"))

    async def async_get_current_user(self) -> CurrentUser:
        """The key's user and effective permissions."""
        _, data = await self._get_json("api/currentuser")
        raw = _require(data, dict, "api/currentuser")
        if not raw.get("name"):
            # OctoPrint takes an unknown key for an anonymous guest.
            raise OctoPrintAuthError("OctoPrint does not know this API key")
        permissions = raw.get("permissions") or []
        return CurrentUser(
            name=str(raw["name"]),
            permissions=frozenset(str(p) for p in _require(permissions, list, "permissions")),
        )

    async def async_get_uuid(self) -> str | None:
        """The server's UPnP UUID from the discovery plugin, or None without that plugin."""
        status, body = await self._request(
            "GET", "plugin/discovery/discovery.xml", allowed=(404,), authenticated=False
        )
        if status == 404:
            return None
        match = _UDN.search(body)
        return match.group(1).lower() if match else None

    async def async_get_snapshot(self, *, include_timelapse: bool = False) -> PrinterSnapshot:
        """One status check: printer state and temperatures, job progress, rendering."""
        status, printer = await self._get_json(
            "api/printer", params={"exclude": "sd"}, allowed=(409,)
        )
        _, job = await self._get_json("api/job")
        rendering = include_timelapse and await self._async_rendering()
        job = _require(job, dict, "api/job")
        if status == 409:
            # OctoPrint answers 409 while it is not connected to the printer.
            printer = {"state": {"text": job.get("state"), "flags": {"closedOrError": True}}}
        printer = _require(printer, dict, "api/printer")
        tools, bed = parse_temperatures(_dict(printer.get("temperature")))
        snapshot = snapshot_from_state(printer.get("state"), job.get("job"), job.get("progress"))
        return replace(
            snapshot,
            tools=tools,
            bed=bed,
            job_state=_text(job.get("state")),
            rendering=rendering,
        )

    async def _async_rendering(self) -> bool:
        _, data = await self._get_json("api/timelapse", params={"unrendered": "true"})
        unrendered = _require(data, dict, "api/timelapse").get("unrendered") or []
        return any(isinstance(item, dict) and item.get("rendering") for item in unrendered)

    async def async_send_message(self, text: str) -> bool:
        """Show ``text`` on the printer's display; False when no printer is connected."""
        status, _ = await self._request(
            "POST", "api/printer/command", payload={"command": f"M117 {text}"}, allowed=(409,)
        )
        return status != 409

    async def async_set_heaters_off(self, tools: list[str]) -> bool:
        """Set every hotend's and the bed's target to 0; False when no printer is connected."""
        status, _ = await self._request(
            "POST",
            "api/printer/tool",
            payload={"command": "target", "targets": dict.fromkeys(tools or ["tool0"], 0)},
            allowed=(409,),
        )
        if status == 409:
            return False
        status, _ = await self._request(
            "POST", "api/printer/bed", payload={"command": "target", "target": 0}, allowed=(409,)
        )
        return status != 409

    async def async_can_halt_host(self) -> bool:
        """Whether OctoPrint has a shutdown command (only then it lists one among its own)."""
        _, data = await self._get_json("api/system/commands/core")
        commands = _require(data, list, "api/system/commands/core")
        return any(
            isinstance(command, dict) and command.get("action") == "shutdown"
            for command in commands
        )

    async def async_shutdown_host(self) -> None:
        """Ask OctoPrint to halt its host (needs the SYSTEM permission)."""
        status, _ = await self._request(
            "POST", "api/system/commands/core/shutdown", allowed=(HTTPStatus.NOT_FOUND,)
        )
        if status == HTTPStatus.NOT_FOUND:
            # OctoPrint lists no shutdown command while none is configured.
            raise OctoPrintNoShutdownCommandError("OctoPrint has no shutdown command configured")
        # OctoPrint confirms with 204; any other success came from something else (a captive
        # portal, a proxy page), and the host was not asked.
        if status != HTTPStatus.NO_CONTENT:
            raise OctoPrintResponseError(f"the halt request was answered HTTP {status}")

    async def async_passive_login(self) -> tuple[str, str]:
        """Log in with the API key; the user name and session for the push socket."""
        status, body = await self._request(
            "POST", "api/login", payload={"passive": True}, allowed=(400,)
        )
        if status == 400:
            # OctoPrint's answer to a passive login with a key it does not know.
            raise OctoPrintAuthError("OctoPrint logs no one in with this key")
        answer = _require(_parse_json(body, "api/login"), dict, "api/login")
        name, session = answer.get("name"), answer.get("session")
        if not isinstance(name, str) or not isinstance(session, str) or not session:
            # Without a user behind the key OctoPrint logs in nobody.
            raise OctoPrintAuthError("OctoPrint gave the key no login session")
        return name, session

    @asynccontextmanager
    async def async_push_socket(
        self, heartbeat: float
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """OctoPrint's push socket (SockJS's raw websocket), not yet authenticated."""
        try:
            socket = await self._session.ws_connect(
                self.address.url("sockjs/websocket"),
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._timeout.total),
                ssl=self._verify_ssl,
            )
        except aiohttp.WSServerHandshakeError as err:
            raise OctoPrintPushRefusedError(err.status) from err
        except (TimeoutError, aiohttp.ClientError) as err:
            raise OctoPrintConnectionError(
                f"{self.address.base_url} push socket: {type(err).__name__}"
            ) from err
        try:
            yield socket
        finally:
            await socket.close()

    async def async_app_keys_supported(self) -> bool:
        """Whether the Application Keys plugin answers."""
        status, _ = await self._request(
            "GET", "plugin/appkeys/probe", allowed=(404,), authenticated=False
        )
        return status == 204

    async def async_request_app_key(self, app: str, user: str | None = None) -> str:
        """Start an Application Keys request; return the token to poll with."""
        payload: dict[str, Any] = {"app": app}
        if user:
            payload["user"] = user
        _, body = await self._request(
            "POST", "plugin/appkeys/request", payload=payload, authenticated=False
        )
        data = _require(_parse_json(body, "appkeys/request"), dict, "appkeys/request")
        token = data.get("app_token")
        if not isinstance(token, str) or not token:
            raise OctoPrintResponseError("appkeys/request answered without a token")
        return token

    async def async_poll_app_key(self, app_token: str) -> str | None:
        """The granted key, or None while the user has not decided yet."""
        status, body = await self._request(
            "GET", f"plugin/appkeys/request/{app_token}", allowed=(202, 404), authenticated=False
        )
        if status == 202:
            return None
        if status == 404:
            raise AppKeyDeniedError("The request was denied or timed out")
        key = _require(_parse_json(body, "appkeys/request"), dict, "appkeys").get("api_key")
        if not isinstance(key, str) or not key:
            raise OctoPrintResponseError("appkeys answered without a key")
        return key

    async def async_wait_for_app_key(
        self, app: str, user: str | None, *, interval: float = 1.0
    ) -> str:
        """Request a key and wait for the user's decision in OctoPrint."""
        token = await self.async_request_app_key(app, user)
        while True:
            if (key := await self.async_poll_app_key(token)) is not None:
                return key
            await asyncio.sleep(interval)


def job_of_event(event: str, payload: object) -> JobState | None:
    """The job an OctoPrint event tells of; None when it tells of none."""
    if event == "PrinterStateChanged":
        state_id = payload.get("state_id") if isinstance(payload, Mapping) else None
        return JOB_OF_STATE_ID.get(state_id) if isinstance(state_id, str) else None
    return JOB_OF_EVENT.get(event)


def job_of_flags(flags: frozenset[str]) -> JobState:
    """The job OctoPrint's state flags mean (a job flag wins over a fault's)."""
    if flags & JOB_FLAGS:
        return JobState.RUNNING
    return JobState.FAULT if flags & FAULT_FLAGS else JobState.NONE


def parse_temperatures(raw: dict[str, Any]) -> tuple[dict[str, Heater], Heater | None]:
    """The hotends and the bed from OctoPrint's temperature object."""
    tools = {
        name: _temperature(value)
        for name, value in raw.items()
        if name.startswith("tool") and isinstance(value, dict)
    }
    bed = raw.get("bed")
    return tools, _temperature(bed) if isinstance(bed, dict) else None


def snapshot_from_state(state: Any, job: Any, progress: Any) -> PrinterSnapshot:
    """A snapshot without temperatures from OctoPrint's state, job and progress objects."""
    state, progress = _dict(state), _dict(progress)
    completion = _number(progress.get("completion"))
    text = _text(state.get("text")) or "Offline"
    return PrinterSnapshot(
        state_text=text,
        flags=frozenset(name for name, value in _dict(state.get("flags")).items() if value is True),
        job_state=text,
        progress=None if completion is None else round(min(max(completion, 0.0), 100.0), 1),
        print_time=_seconds(progress.get("printTime")),
        print_time_left=_seconds(progress.get("printTimeLeft")),
        file_name=_text(_dict(_dict(job).get("file")).get("name")),
    )


def _parse_json(body: str, endpoint: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as err:
        raise OctoPrintResponseError(f"{endpoint} did not answer JSON") from err


def _require[T](value: Any, kind: type[T], what: str) -> T:
    if not isinstance(value, kind):
        raise OctoPrintResponseError(f"{what} has an unexpected shape")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _temperature(raw: dict[str, Any]) -> Heater:
    return Heater(actual=_number(raw.get("actual")), target=_number(raw.get("target")))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
