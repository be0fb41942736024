"""OctoPrint's push socket: the printer's state and events the moment they happen.

OctoPrint pushes JSON messages over a SockJS socket (its raw websocket endpoint). The socket
is authenticated with a passive login made with the API key, then throttled so that state
updates come at most once a second. ``PushListener.async_listen`` holds one socket until it
closes or fails; whoever runs it decides when to try again (``host.reconnect_pause``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import aiohttp

from .host import Heater
from .machine import JobState
from .octoprint import (
    OctoPrintAuthError,
    OctoPrintClient,
    OctoPrintConnectionError,
    PrinterSnapshot,
    job_of_event,
    parse_temperatures,
    snapshot_from_state,
)

# OctoPrint sends state updates every this many seconds times the throttle.
THROTTLE_STEP: Final = 0.5
# OctoPrint pings nothing; a ping of ours finds a socket that silently died.
HEARTBEAT: Final = 30.0
# The events after which OctoPrint's status is asked for at once: a job starts, ends or is
# interrupted, the printer's state changes, or the host goes down.
STATUS_EVENTS: Final = frozenset(
    {
        "PrinterStateChanged",
        "PrintStarted",
        "PrintDone",
        "PrintFailed",
        "PrintCancelled",
        "PrintPaused",
        "PrintResumed",
        "Connected",
        "Disconnected",
        "Error",
        "Shutdown",
    }
)
RENDERING_STARTED: Final = "MovieRendering"
RENDERING_ENDED: Final = frozenset({"MovieDone", "MovieFailed"})


@dataclass(frozen=True, slots=True)
class PushCallbacks:
    """Where the listener reports; all are called in the event loop."""

    on_snapshot: Callable[[PrinterSnapshot], None]
    # An event, and the job it tells of (None: it tells of none).
    on_event: Callable[[str, JobState | None], None]
    on_connection: Callable[[bool], None]


class PushListener:
    """One push socket to one OctoPrint."""

    def __init__(self, client: OctoPrintClient, callbacks: PushCallbacks) -> None:
        """Listen through ``client``'s session, address and key."""
        self._client = client
        self._callbacks = callbacks
        self._tools: dict[str, Heater] = {}
        self._bed: Heater | None = None
        self._rendering = False
        self.connected = False
        self._throttle = 2
        self._socket: aiohttp.ClientWebSocketResponse | None = None

    async def async_listen(self) -> None:
        """Open the socket and report what it says until it closes; raise when it fails.

        Raises ``OctoPrintAuthError`` when OctoPrint refuses the login and
        ``OctoPrintConnectionError`` when the socket cannot be opened or breaks.
        """
        # Readings of an earlier socket may predate a restart of OctoPrint: none are known yet.
        self._tools, self._bed = {}, None
        try:
            name, session = await self._client.async_passive_login()
            async with self._client.async_push_socket(HEARTBEAT) as socket:
                await socket.send_json({"auth": f"{name}:{session}"})
                await socket.send_json({"throttle": self._throttle})
                self._socket = socket
                async for message in socket:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    self._handle(message.json())
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise OctoPrintConnectionError(f"push socket: {type(err).__name__}") from err
        finally:
            self._socket = None
            self._set_connected(False)

    async def async_set_interval(self, seconds: float) -> None:
        """Ask for state updates every ``seconds`` (rounded to OctoPrint's steps), now on."""
        throttle = max(1, round(seconds / THROTTLE_STEP))
        if throttle == self._throttle:
            return
        self._throttle = throttle
        if self._socket is not None:
            try:
                await self._socket.send_json({"throttle": throttle})
            except (aiohttp.ClientError, ConnectionError) as err:
                # The socket is closing: the next one asks from the start.
                raise OctoPrintConnectionError(f"push socket: {type(err).__name__}") from err

    def _handle(self, message: Any) -> None:
        if not isinstance(message, Mapping):
            return
        for kind, payload in message.items():
            if not isinstance(payload, Mapping):
                continue
            if kind in ("current", "history"):
                self._set_connected(True)
                self._callbacks.on_snapshot(self._snapshot(payload))
            elif kind == "event":
                self._on_event(str(payload.get("type")), payload.get("payload"))
            elif kind == "reauthRequired":
                raise OctoPrintAuthError("OctoPrint asks the push socket to log in again")

    def _on_event(self, event: str, payload: object) -> None:
        if event == RENDERING_STARTED:
            self._rendering = True
        elif event in RENDERING_ENDED:
            self._rendering = False
        if event in STATUS_EVENTS or event == RENDERING_STARTED or event in RENDERING_ENDED:
            self._callbacks.on_event(event, job_of_event(event, payload))

    def _snapshot(self, payload: Mapping[str, Any]) -> PrinterSnapshot:
        # Heaters come as a list of new readings, often empty: the last one counts. A
        # record may hold only some heaters (only the bed, right after OctoPrint restarted): it
        # updates those and erases no other reading.
        temperatures = payload.get("temps")
        if isinstance(temperatures, list) and temperatures and isinstance(temperatures[-1], dict):
            tools, bed = parse_temperatures(temperatures[-1])
            self._tools = {**self._tools, **tools}
            self._bed = bed or self._bed
        snapshot = snapshot_from_state(
            payload.get("state"), payload.get("job"), payload.get("progress")
        )
        return replace(snapshot, tools=self._tools, bed=self._bed, rendering=self._rendering)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._callbacks.on_connection(connected)
