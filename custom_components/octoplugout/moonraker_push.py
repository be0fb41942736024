"""Moonraker's websocket: the printer's objects the moment they change.

OctoPlugout identifies itself (with its API key, if any), subscribes to the printer objects it
follows and keeps them up to date from Moonraker's ``notify_status_update`` messages (each
holds only what changed). Klippy's own restarts arrive as ``notify_klippy_*`` messages: the
printer is a fault until Klippy is ready again, when the subscription is made anew.

Moonraker sends an update whenever Klippy reports (temperatures every few tenths of a
second): statuses go on at the pace asked for, except that a change of the job, of Klippy's
state or of the busy flag goes on at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import itertools
from typing import Any, Final

import aiohttp

from .host import PrinterStatus, StatusStream
from .moonraker import (
    KLIPPY_DISCONNECTED,
    REQUEST_TIMEOUT,
    RPC_INVALID_PARAMS,
    RPC_UNAUTHORIZED_CODE,
    MoonrakerAuthError,
    MoonrakerClient,
    MoonrakerConnectionError,
    MoonrakerError,
    MoonrakerRequestError,
    MoonrakerResponseError,
    merge,
    printer_status,
    subscription,
)

# Moonraker pings nothing that a client sees; a ping of ours finds a socket that silently died.
HEARTBEAT: Final = 30.0
CLIENT_NAME: Final = "OctoPlugout"
CLIENT_VERSION: Final = "1"


class MoonrakerPush:
    """One websocket to one Moonraker."""

    def __init__(self, client: MoonrakerClient, stream: StatusStream, interval: float) -> None:
        """Report to ``stream``, statuses about every ``interval`` seconds."""
        self._client = client
        self._stream = stream
        self._interval = interval
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._klippy = KLIPPY_DISCONNECTED
        self._objects: dict[str, dict[str, Any]] = {}
        self._follow: asyncio.Task[None] | None = None
        self._reported: tuple[object, ...] | None = None
        self._reported_at = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self.connected = False

    async def async_listen(self) -> None:
        """Open the socket and report what it says until it closes; raise when it fails.

        Raises ``MoonrakerAuthError`` when Moonraker refuses OctoPlugout and
        ``MoonrakerConnectionError`` when the socket cannot be opened or breaks.
        """
        # What an earlier socket told may predate a restart: nothing is known yet.
        self._klippy, self._objects, self._reported = KLIPPY_DISCONNECTED, {}, None
        try:
            async with self._client.async_socket(HEARTBEAT) as socket:
                self._socket = socket
                reader = asyncio.create_task(self._read(socket), name="moonraker socket")
                try:
                    await self._identify()
                    await self._follow_klippy()
                    await reader
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise MoonrakerConnectionError(f"websocket: {type(err).__name__}") from err
        finally:
            self._socket = None
            self._stop_following()
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self._set_connected(False)

    def set_interval(self, seconds: float) -> None:
        """Report statuses about every ``seconds`` from now on."""
        self._interval = seconds

    async def _identify(self) -> None:
        params: dict[str, Any] = {
            "client_name": CLIENT_NAME,
            "version": CLIENT_VERSION,
            "type": "other",
            "url": "https://github.com/",
        }
        if self._client.api_key:
            params["api_key"] = self._client.api_key
        await self._call("server.connection.identify", params)

    async def _follow_klippy(self) -> None:
        """Learn Klippy's state and, while Klippy is there, subscribe to its objects."""
        info = await self._call("server.info")
        klippy = info.get("klippy_state") if isinstance(info, Mapping) else None
        self._klippy = klippy if isinstance(klippy, str) else KLIPPY_DISCONNECTED
        self._objects = {}
        if self._klippy != KLIPPY_DISCONNECTED:
            try:
                listing = await self._call("printer.objects.list")
                names = listing.get("objects") if isinstance(listing, Mapping) else None
                wanted = subscription([str(name) for name in names or ()])
                answer = await self._call(
                    "printer.objects.subscribe",
                    {"objects": {name: list(fields) for name, fields in wanted.items()}},
                )
            except MoonrakerRequestError:
                # Klippy is starting or went away again: its next notice tells.
                pass
            else:
                status = answer.get("status") if isinstance(answer, Mapping) else None
                merge(self._objects, status if isinstance(status, Mapping) else {})
        self._set_connected(True)
        self._report(at_once=True)

    async def _follow_again(self) -> None:
        """After Klippy restarted; a socket that cannot subscribe again is opened anew."""
        try:
            await self._follow_klippy()
        except (MoonrakerError, TimeoutError):
            if self._socket is not None:
                await self._socket.close()

    async def _call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """One JSON-RPC request on the socket; its result."""
        if self._socket is None:
            raise MoonrakerConnectionError("the websocket is closed")
        call_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._calls[call_id] = answer
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": call_id}
        if params is not None:
            message["params"] = params
        try:
            await self._socket.send_json(message)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await answer
        finally:
            self._calls.pop(call_id, None)

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                self._handle(message.json())
        finally:
            for answer in self._calls.values():
                if not answer.done():
                    answer.set_exception(MoonrakerConnectionError("the websocket closed"))

    def _handle(self, message: Any) -> None:
        if not isinstance(message, Mapping):
            return
        if isinstance(call_id := message.get("id"), int) and call_id in self._calls:
            self._answer(self._calls[call_id], message)
            return
        method, params = message.get("method"), message.get("params")
        if method == "notify_status_update" and isinstance(params, list) and params:
            if isinstance(params[0], Mapping):
                merge(self._objects, params[0])
                self._report()
        elif method == "notify_klippy_ready":
            self._stop_following()
            self._follow = asyncio.create_task(self._follow_again(), name="moonraker klippy")
        elif method == "notify_klippy_shutdown":
            self._klippy = "shutdown"
            self._report(at_once=True)
        elif method == "notify_klippy_disconnected":
            self._stop_following()
            self._klippy, self._objects = KLIPPY_DISCONNECTED, {}
            self._report(at_once=True)

    def _answer(self, answer: asyncio.Future[Any], message: Mapping[str, Any]) -> None:
        if answer.done():
            return
        error = message.get("error")
        if error is None:
            answer.set_result(message.get("result"))
            return
        error = error if isinstance(error, Mapping) else {}
        text, code = str(error.get("message", "")), error.get("code")
        if code == RPC_UNAUTHORIZED_CODE and not text.startswith(RPC_INVALID_PARAMS):
            answer.set_exception(MoonrakerAuthError(f"Moonraker refused the websocket: {text}"))
        elif isinstance(code, int):
            answer.set_exception(MoonrakerRequestError(code, text))
        else:
            answer.set_exception(MoonrakerResponseError("an error without a code"))

    def _stop_following(self) -> None:
        if self._follow is not None and not self._follow.done():
            self._follow.cancel()
        self._follow = None

    def _report(self, *, at_once: bool = False) -> None:
        """Report the status now if it changed what counts, else at the pace asked for."""
        status = self._status()
        loop = asyncio.get_running_loop()
        now = loop.time()
        changed = at_once or _what_counts(status) != self._reported
        if changed or now - self._reported_at >= self._interval:
            self._deliver(status)
        elif self._pending is None:
            self._pending = loop.call_later(
                self._reported_at + self._interval - now, self._deliver_latest
            )

    def _deliver_latest(self) -> None:
        self._pending = None
        if self.connected:
            self._deliver(self._status())

    def _deliver(self, status: PrinterStatus) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._reported = _what_counts(status)
        self._reported_at = asyncio.get_running_loop().time()
        self._stream.on_status(status)

    def _status(self) -> PrinterStatus:
        return printer_status(self._klippy, self._objects)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._stream.on_connection(connected)


def _what_counts(status: PrinterStatus) -> tuple[object, ...]:
    """What goes on at once when it changes: the job, Klippy's state, the busy flag."""
    return (status.job, status.state_text, status.busy)
