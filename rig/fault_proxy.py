"""A proxy on loopback between Home Assistant and OctoPrint that can misbehave on purpose.

Run as its own process (``python -m rig.fault_proxy``). It passes requests through to
OctoPrint unchanged until a test writes a fault to the fault file (JSON, see ``Fault``); then
the requests that match the fault get it instead of OctoPrint's answer. Every request is
logged as one JSON line (time, method, path, status, fault), which also counts the load on
OctoPrint.

Where OctoPrint is down (the virtual Pi is off or halted), the proxy closes the connection
without an answer, so that a stopped Pi still looks silent and not like a host that answers.

OctoPrint's push socket (a websocket) is passed through as well. While any fault is in force,
open sockets are dropped and new ones meet the fault, so that a misbehaving OctoPrint
misbehaves on both channels and the integration falls back to polling, where the faults are.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from .paths import ROOT, port_open, stop_process_group

# The faults a test can choose, and what each one does to a matching request.
FAULTS = {
    "http_500": "answer 500 Internal Server Error without asking OctoPrint",
    "html": "answer 200 with an HTML page, like a misconfigured reverse proxy",
    "malformed_json": "ask OctoPrint, then answer only the first half of its JSON",
    "reset": "ask OctoPrint, then close the connection halfway through the answer",
    "slow": "wait 6 s (within the client's timeout), then ask OctoPrint",
    "stall": "hold the request for 15 s, past the client's timeout",
    "bad_key": "ask OctoPrint with a wrong API key (as if the key had been revoked)",
    "no_websockets": "pass the push socket's request on as plain HTTP, as nginx does without "
    "its websocket lines (other requests pass unchanged)",
}
SLOW_SECONDS = 6.0
STALL_SECONDS = 15.0
HOP_HEADERS = {
    "connection",
    "upgrade",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
}


@dataclass(frozen=True)
class Fault:
    """A fault for the requests whose path starts with ``path``.

    It holds until ``until`` (epoch seconds) or until ``hits`` requests have met it.
    """

    kind: str
    path: str = "/"
    until: float = float("inf")
    hits: int | None = None
    name: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        """Refuse faults the proxy does not know."""
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}")


def read_faults(fault_file: Path) -> list[Fault]:
    """The faults written to the fault file, in order."""
    try:
        raw: list[dict[str, Any]] = json.loads(fault_file.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [Fault(**item) for item in raw]


def write_faults(fault_file: Path, faults: list[Fault]) -> None:
    """Put these faults in force (replacing any before)."""
    temporary = fault_file.with_suffix(".tmp")
    temporary.write_text(json.dumps([asdict(fault) for fault in faults]))
    temporary.replace(fault_file)


class FaultProxy:
    """The proxy's request handler."""

    def __init__(self, target_port: int, fault_file: Path, request_log: Path) -> None:
        """Forward to OctoPrint on ``target_port`` on loopback."""
        self.target = f"http://127.0.0.1:{target_port}"
        self.fault_file = fault_file
        self.request_log = request_log
        self.session: aiohttp.ClientSession | None = None
        self.used: dict[str, int] = {}
        self.sockets: list[web.Request] = []

    def _in_force(self, path: str) -> list[Fault]:
        """The faults for ``path`` in force now, without counting a hit."""
        now = time.time()
        return [
            fault
            for fault in read_faults(self.fault_file)
            if path.startswith(fault.path)
            and now < fault.until
            and (fault.hits is None or self.used.get(fault.name, 0) < fault.hits)
        ]

    def _fault_for(self, path: str) -> Fault | None:
        now = time.time()
        for fault in read_faults(self.fault_file):
            used = self.used.get(fault.name, 0)
            spent = fault.hits is not None and used >= fault.hits
            if path.startswith(fault.path) and now < fault.until and not spent:
                self.used[fault.name] = used + 1
                return fault
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request: pass it on, or misbehave."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._socket(request)
        fault = self._fault_for(request.path)
        status = 0
        try:
            response = await self._answer(request, fault.kind if fault else None)
            status = response.status
            return response
        finally:
            self._log(request, status, fault)

    async def _answer(self, request: web.Request, kind: str | None) -> web.StreamResponse:
        if kind == "http_500":
            return web.Response(status=500, text="Internal Server Error")
        if kind == "html":
            return web.Response(
                text="<html><body><h1>Welcome to nginx!</h1></body></html>",
                content_type="text/html",
            )
        if kind == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if kind == "stall":
            await asyncio.sleep(STALL_SECONDS)
            raise _silent(request)
        forwarded = await self._forward(request, bad_key=kind == "bad_key")
        if forwarded is None:
            raise _silent(request)
        status, headers, body = forwarded
        if kind == "malformed_json":
            return web.Response(status=status, headers=headers, body=body[: len(body) // 2])
        if kind == "reset":
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            raise _silent(request)
        return web.Response(status=status, headers=headers, body=body)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        faults = self._in_force(request.path)
        self._log(request, 101 if not faults else 0, faults[0] if faults else None)
        if faults:
            kind = faults[0].kind
            if kind in ("http_500", "html"):
                return await self._answer(request, kind)
            if kind == "no_websockets":
                return await self._answer(request, None)
            if kind in ("slow", "stall"):
                await asyncio.sleep(STALL_SECONDS)
            raise _silent(request)
        assert self.session is not None
        try:
            upstream = await self.session.ws_connect(self.target + request.path_qs)
        except aiohttp.ClientError:
            raise _silent(request) from None
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        self.sockets.append(request)
        try:
            await _pump(upstream, downstream)
        finally:
            self.sockets.remove(request)
            await upstream.close()
        return downstream

    async def _drop_sockets_on_faults(self) -> None:
        while True:
            for request in list(self.sockets):
                if self._in_force(request.path):
                    _silent(request)
            await asyncio.sleep(0.25)

    async def _forward(
        self, request: web.Request, *, bad_key: bool
    ) -> tuple[int, dict[str, str], bytes] | None:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        if bad_key:
            headers["X-Api-Key"] = "0" * 32
        try:
            async with self.session.request(
                request.method,
                self.target + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
                return answer.status, kept, body
        except aiohttp.ClientError:
            return None

    def _log(self, request: web.Request, status: int, fault: Fault | None) -> None:
        line = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "status": status,
            "fault": fault.kind if fault else None,
            "fault_name": fault.name if fault else None,
            # Whose request it was (the end of its key: OctoPlugout's, or another client's).
            "key_end": request.headers.get("X-Api-Key", "")[-4:],
        }
        with self.request_log.open("a") as log:
            log.write(json.dumps(line) + "\n")

    async def run(self, port: int) -> None:
        """Serve on loopback until SIGTERM or SIGINT."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        dropper = asyncio.create_task(self._drop_sockets_on_faults())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            dropper.cancel()
            await runner.cleanup()
            await self.session.close()


async def _pump(
    upstream: aiohttp.ClientWebSocketResponse, downstream: web.WebSocketResponse
) -> None:
    """Pass text messages both ways until either side closes."""

    async def down() -> None:
        async for message in upstream:
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            await downstream.send_str(message.data)

    async def up() -> None:
        async for message in downstream:
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            await upstream.send_str(message.data)

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await downstream.close()


def _silent(request: web.Request) -> BaseException:
    """Drop the connection without (the rest of) an answer, as a host that went away."""
    if request.transport is not None:
        request.transport.abort()
    return asyncio.CancelledError()


def start_proxy(
    port: int, target_port: int, fault_file: Path, request_log: Path, output: Path
) -> subprocess.Popen[bytes]:
    """Start the proxy as its own process (own session) and wait until it listens."""
    with output.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "rig.fault_proxy",
                "--port", str(port),
                "--target-port", str(target_port),
                "--fault-file", str(fault_file),
                "--request-log", str(request_log),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process)
            raise RuntimeError(f"the fault proxy did not start: {output.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def read_requests(request_log: Path) -> list[dict[str, Any]]:
    """Every request the proxy saw."""
    if not request_log.exists():
        return []
    lines = request_log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the proxy."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--fault-file", type=Path, required=True)
    parser.add_argument("--request-log", type=Path, required=True)
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.target_port, args.fault_file, args.request_log)
    asyncio.run(proxy.run(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
