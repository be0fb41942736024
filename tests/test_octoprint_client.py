"""The OctoPrint client against a real OctoPrint server with its virtual printer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import ssl
import threading

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest
import pytest_socket

from custom_components.octoplugout.host import ServerAddress, normalize_path
from custom_components.octoplugout.machine import JobState
from custom_components.octoplugout.octoprint import (
    PERMISSION_CONTROL,
    PERMISSION_SYSTEM,
    AppKeyDeniedError,
    OctoPrintAuthError,
    OctoPrintCertificateError,
    OctoPrintClient,
    OctoPrintConnectionError,
    OctoPrintNoShutdownCommandError,
    OctoPrintResponseError,
    job_of_event,
)
from rig.octoprint_server import ADMIN, UUID, OctoPrintServer, free_port

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture(scope="module")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Generator[OctoPrintServer]:
    """One real OctoPrint for this module."""
    # Home Assistant's test plugin blocks sockets between tests; this server lives longer.
    pytest_socket.enable_socket()
    with OctoPrintServer(tmp_path_factory.mktemp("octoprint")) as server:
        yield server


@pytest.fixture
async def session() -> AsyncGenerator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(
    session: aiohttp.ClientSession, port: int, key: str | None, timeout: float = 5.0
) -> OctoPrintClient:
    return OctoPrintClient(session, ServerAddress("127.0.0.1", port), key, timeout=timeout)


@pytest.fixture
def admin(session: aiohttp.ClientSession, octoprint: OctoPrintServer) -> OctoPrintClient:
    return client_for(session, octoprint.port, octoprint.admin_key)


async def wait_for(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll a condition of the real server, for at most 15 s."""
    async with asyncio.timeout(15):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.25)


async def test_snapshot_of_an_idle_printer(admin: OctoPrintClient) -> None:
    snapshot = await admin.async_get_snapshot(include_timelapse=True)
    assert snapshot.connected
    assert {"operational", "ready"} <= snapshot.flags
    assert "printing" not in snapshot.flags
    assert snapshot.state_text == "Operational"
    assert snapshot.tools["tool0"].actual is not None
    assert snapshot.bed is not None
    assert snapshot.job_state == "Operational"
    assert snapshot.progress is None
    assert snapshot.rendering is False


async def test_version_user_and_uuid(
    admin: OctoPrintClient, session: aiohttp.ClientSession, octoprint: OctoPrintServer
) -> None:
    assert (await admin.async_get_version()).startswith("1.11")
    user = await admin.async_get_current_user()
    assert user.name == ADMIN
    assert {PERMISSION_SYSTEM, PERMISSION_CONTROL} <= user.permissions
    viewer = await client_for(
        session, octoprint.port, octoprint.viewer_key
    ).async_get_current_user()
    assert PERMISSION_SYSTEM not in viewer.permissions
    assert await admin.async_get_uuid() == UUID


async def test_wrong_key_is_an_auth_error(
    session: aiohttp.ClientSession, octoprint: OctoPrintServer
) -> None:
    wrong = client_for(session, octoprint.port, "0" * 32)
    with pytest.raises(OctoPrintAuthError):
        await wrong.async_get_current_user()
    with pytest.raises(OctoPrintAuthError):
        await wrong.async_get_snapshot()


async def test_message_reaches_the_printer(
    admin: OctoPrintClient, octoprint: OctoPrintServer
) -> None:
    assert await admin.async_send_message("Hello from OctoPlugout") is True
    serial_log = octoprint.basedir / "logs" / "serial.log"

    async def logged() -> bool:
        return serial_log.exists() and "M117 Hello from OctoPlugout" in serial_log.read_text()

    await wait_for(logged)


async def test_heaters_off_sets_every_target_to_zero(
    admin: OctoPrintClient, octoprint: OctoPrintServer
) -> None:
    body = json.dumps({"command": "target", "targets": {"tool0": 60}}).encode()
    assert octoprint.request("POST", "/api/printer/tool", body)[0] == 204
    body = json.dumps({"command": "target", "target": 40}).encode()
    assert octoprint.request("POST", "/api/printer/bed", body)[0] == 204

    async def heating() -> bool:
        snapshot = await admin.async_get_snapshot()
        return snapshot.tools["tool0"].target == 60 and snapshot.bed is not None

    await wait_for(heating)
    assert await admin.async_set_heaters_off(["tool0"]) is True

    async def off() -> bool:
        snapshot = await admin.async_get_snapshot()
        assert snapshot.bed is not None
        return snapshot.tools["tool0"].target == 0 and snapshot.bed.target == 0

    await wait_for(off)


async def test_halts_only_with_a_shutdown_command(
    admin: OctoPrintClient, octoprint: OctoPrintServer
) -> None:
    assert await admin.async_can_halt_host()
    command = octoprint.shutdown_command()
    octoprint.set_shutdown_command("")
    try:
        # OctoPrint's own default: no shutdown command, and none listed; a halt request says so.
        assert not await admin.async_can_halt_host()
        with pytest.raises(OctoPrintNoShutdownCommandError):
            await admin.async_shutdown_host()
    finally:
        octoprint.set_shutdown_command(command)
    assert await admin.async_can_halt_host()


async def test_shutdown_runs_the_configured_command(
    admin: OctoPrintClient, session: aiohttp.ClientSession, octoprint: OctoPrintServer
) -> None:
    viewer = client_for(session, octoprint.port, octoprint.viewer_key)
    with pytest.raises(OctoPrintAuthError):
        await viewer.async_shutdown_host()
    assert not octoprint.shutdown_marker.exists()
    await admin.async_shutdown_host()

    async def halted() -> bool:
        return octoprint.shutdown_marker.exists()

    await wait_for(halted)
    octoprint.shutdown_marker.unlink()


async def test_a_disconnected_printer(admin: OctoPrintClient, octoprint: OctoPrintServer) -> None:
    disconnect = json.dumps({"command": "disconnect"}).encode()
    assert octoprint.request("POST", "/api/connection", disconnect)[0] == 204
    try:

        async def disconnected() -> bool:
            return not (await admin.async_get_snapshot()).connected

        await wait_for(disconnected)
        snapshot = await admin.async_get_snapshot()
        assert snapshot.flags == frozenset({"closedOrError"})
        assert snapshot.tools == {}
        assert await admin.async_send_message("nobody listens") is False
        assert await admin.async_set_heaters_off([]) is False
    finally:
        connect = json.dumps({"command": "connect", "port": "VIRTUAL"}).encode()
        assert octoprint.request("POST", "/api/connection", connect)[0] == 204

    async def connected() -> bool:
        return (await admin.async_get_snapshot()).connected

    await wait_for(connected)


async def test_app_key_request_is_pending_until_decided(
    session: aiohttp.ClientSession, octoprint: OctoPrintServer
) -> None:
    anonymous = client_for(session, octoprint.port, None)
    assert await anonymous.async_app_keys_supported() is True
    token = await anonymous.async_request_app_key("OctoPlugout tests", ADMIN)
    assert await anonymous.async_poll_app_key(token) is None
    with pytest.raises(AppKeyDeniedError):
        await anonymous.async_poll_app_key("no-such-token")


async def test_a_closed_session_is_a_connection_error() -> None:
    # Home Assistant closes its shared session while it stops; a poll then must not log an
    # unexpected error.
    session = aiohttp.ClientSession()
    await session.close()
    with pytest.raises(OctoPrintConnectionError, match="stopping"):
        await client_for(session, free_port(), "KEY").async_get_snapshot()


async def test_nothing_listening_is_a_connection_error(session: aiohttp.ClientSession) -> None:
    client = client_for(session, free_port(), "key")
    with pytest.raises(OctoPrintConnectionError):
        await client.async_get_snapshot()


# Misbehaving servers: a hung host, a reverse proxy answering instead of OctoPrint.


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


@pytest.fixture
async def fake_server() -> AsyncGenerator[Callable[..., Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> int:
        runner = await _serve(handler)
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_hung_server_times_out(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    port = await fake_server(hang)
    with pytest.raises(OctoPrintConnectionError):
        await client_for(session, port, "key", timeout=0.3).async_get_snapshot()
    release.set()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, "<html>Bad Gateway</html>", "text/html"),
        (200, "<html>login</html>", "text/html"),
        (200, "[1, 2]", "application/json"),
        (500, "{}", "application/json"),
    ],
)
async def test_a_proxy_answering_instead_of_octoprint(
    session: aiohttp.ClientSession,
    fake_server: Callable[..., Awaitable[int]],
    status: int,
    body: str,
    content_type: str,
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    port = await fake_server(answer)
    with pytest.raises(OctoPrintResponseError):
        await client_for(session, port, "key").async_get_snapshot()


async def test_requests_carry_the_key_and_the_prefix(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, request.headers.get("X-Api-Key")))
        return web.Response(status=204)

    port = await fake_server(record)
    client = OctoPrintClient(session, ServerAddress("127.0.0.1", port, "/octoprint/"), "secret")
    await client.async_shutdown_host()
    assert seen == [("POST", "/octoprint/api/system/commands/core/shutdown", "secret")]
    assert "secret" not in repr(client)


async def test_a_halt_request_answered_by_a_page_is_not_a_halt(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    async def portal(request: web.Request) -> web.Response:
        return web.Response(
            text="<html>Sign in to the hotel Wi-Fi</html>", content_type="text/html"
        )

    port = await fake_server(portal)
    with pytest.raises(OctoPrintResponseError, match="HTTP 200"):
        await client_for(session, port, "key").async_shutdown_host()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "http://octopi.local/api/printer"),
        ("/", "http://octopi.local/api/printer"),
        ("//", "http://octopi.local/api/printer"),
        ("octoprint", "http://octopi.local/octoprint/api/printer"),
        ("/octoprint", "http://octopi.local/octoprint/api/printer"),
        ("/octoprint/", "http://octopi.local/octoprint/api/printer"),
        ("a//b/", "http://octopi.local/a/b/api/printer"),
    ],
)
@pytest.mark.parametrize("endpoint", ["api/printer", "/api/printer"])
def test_url_joining_never_doubles_or_drops_a_slash(
    path: str, expected: str, endpoint: str
) -> None:
    assert str(ServerAddress("octopi.local", 80, path).url(endpoint)) == expected


def test_url_with_https_port_and_ipv6() -> None:
    address = ServerAddress("fe80::1", 8443, "/op", ssl=True)
    assert str(address.url("api/version")) == "https://[fe80::1]:8443/op/api/version"
    assert str(ServerAddress("[::1]", 80).url("api")) == "http://[::1]/api"
    assert normalize_path(" /a/ ") == "/a"


def test_octoprint_server_helper_cleans_up(tmp_path: Path) -> None:
    server = OctoPrintServer(tmp_path)
    server.stop()
    assert server.process is None


async def test_app_key_approved_after_polling(
    session: aiohttp.ClientSession, fake_server: Callable[..., Awaitable[int]]
) -> None:
    polls: list[str] = []

    async def appkeys(request: web.Request) -> web.Response:
        if request.method == "POST":
            assert await request.json() == {"app": "OctoPlugout", "user": "admin"}
            return web.json_response({"app_token": "TOKEN"}, status=201)
        polls.append(request.path)
        if len(polls) < 3:
            return web.json_response({"message": "Awaiting decision"}, status=202)
        return web.json_response({"api_key": "GRANTED"})

    port = await fake_server(appkeys)
    client = client_for(session, port, None)
    assert await client.async_wait_for_app_key("OctoPlugout", "admin", interval=0) == "GRANTED"
    assert polls == ["/plugin/appkeys/request/TOKEN"] * 3


@pytest.mark.parametrize(
    ("request_answer", "poll_answer"),
    [({"no_token": True}, {"api_key": "K"}), ({"app_token": "T"}, {"api_key": ""})],
)
async def test_app_key_answers_without_token_or_key(
    session: aiohttp.ClientSession,
    fake_server: Callable[..., Awaitable[int]],
    request_answer: dict[str, object],
    poll_answer: dict[str, object],
) -> None:
    async def appkeys(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response(request_answer, status=201)
        return web.json_response(poll_answer)

    port = await fake_server(appkeys)
    with pytest.raises(OctoPrintResponseError):
        await client_for(session, port, None).async_wait_for_app_key("OctoPlugout", None)


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate nobody vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "octopi.local")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("octopi.local")]), False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class _VersionHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"server": "1.11.8"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


async def test_https_verifies_the_certificate_unless_told_not_to(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # Its own thread: the refused handshake must not land in the event loop under test.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VersionHandler)
    server.socket = _self_signed(tmp_path).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = ServerAddress("127.0.0.1", server.server_address[1], ssl=True)
    try:
        # Verification is the default: a self-signed certificate is refused, nothing is sent,
        # and the error says it was the certificate.
        with pytest.raises(OctoPrintCertificateError):
            await OctoPrintClient(session, address, "key").async_get_version()
        unverified = OctoPrintClient(session, address, "key", verify_ssl=False)
        assert await unverified.async_get_version() == "1.11.8"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("event", "payload", "job"),
    [
        ("PrintStarted", {"name": "a.gcode"}, JobState.RUNNING),
        ("PrintPaused", {}, JobState.RUNNING),
        ("PrintResumed", {}, JobState.RUNNING),
        ("PrintDone", {}, JobState.NONE),
        ("PrintFailed", {}, JobState.NONE),
        ("PrintCancelled", {}, JobState.NONE),
        ("PrinterStateChanged", {"state_id": "STARTING"}, JobState.RUNNING),
        ("PrinterStateChanged", {"state_id": "FINISHING"}, JobState.RUNNING),
        ("PrinterStateChanged", {"state_id": "CANCELLING"}, JobState.RUNNING),
        ("PrinterStateChanged", {"state_id": "OPERATIONAL"}, JobState.NONE),
        ("PrinterStateChanged", {"state_id": "ERROR"}, JobState.FAULT),
        ("PrinterStateChanged", {"state_id": "CLOSED_WITH_ERROR"}, JobState.FAULT),
        # States that say nothing of a job, and payloads that say nothing at all.
        ("PrinterStateChanged", {"state_id": "CONNECTING"}, None),
        ("PrinterStateChanged", {"state_string": "Printing"}, None),
        ("PrinterStateChanged", None, None),
        ("PrinterStateChanged", {"state_id": 3}, None),
        ("Connected", {}, None),
        ("Disconnected", {}, None),
        ("Error", {"error": "thermal runaway"}, None),
    ],
)
def test_an_event_tells_of_the_job_its_state_means(
    event: str, payload: object, job: JobState | None
) -> None:
    assert job_of_event(event, payload) is job
