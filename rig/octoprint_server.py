"""A real OctoPrint server with its virtual printer, on loopback, for the tests.

It runs from the OctoPrint virtual environment that ``scripts/setup`` makes, in a fresh base
folder with the first-run wizard, online checks and tracking off, one administrator and one
plain user with known API keys, and a system shutdown command that only writes a marker file
(so "halting the host" is harmless and observable).
"""

from __future__ import annotations

from dataclasses import dataclass
import http.client
import json
import os
from pathlib import Path
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Self
import urllib.error
import urllib.request

import yaml

from .paths import ROOT, stop_process_group, venvs

ADMIN = "admin"
VIEWER = "viewer"
UUID = "4a1b0c5e-7d1e-4d8e-9c1a-0c7f0a5b1d2e"
# The virtual printer's own room temperature, where its heaters settle while off.
ROOM_TEMPERATURE = 21.3
# How the virtual printer reports a heater: its own form, and one OctoPrint reads no heater in.
READABLE_REPORT = "{heater}:{actual:.2f}/ {target:.2f}"
UNREADABLE_REPORT = "{heater}X:{actual:.2f} /{target:.2f}"
# OctoPrint's state flags of a job under way.
JOB_FLAGS = {"printing", "paused", "pausing", "resuming", "finishing", "cancelling"}
# The demo prints (a full cycle, and a job too short to arm).
GCODE_DIR = ROOT / "rig"


def octoprint_executable() -> Path:
    """The ``octoprint`` command made by ``scripts/setup``."""
    return venvs() / "octoprint" / "bin" / "octoprint"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OctoPrintServer:
    """One OctoPrint process; ``start`` and ``stop`` it, or use it as a context manager."""

    basedir: Path
    port: int = 0
    admin_key: str = ""
    viewer_key: str = ""
    uuid: str = UUID
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def shutdown_marker(self) -> Path:
        """Written by the configured system shutdown command."""
        return self.basedir / "host-halted"

    @property
    def log(self) -> Path:
        """OctoPrint's own log file."""
        return self.basedir / "logs" / "octoprint.log"

    def configure(self) -> None:
        """Write the base folder: settings and users with API keys."""
        self.port = self.port or free_port()
        self.admin_key = self.admin_key or secrets.token_hex(16).upper()
        self.viewer_key = self.viewer_key or secrets.token_hex(16).upper()
        self.basedir.mkdir(parents=True, exist_ok=True)
        marker = shlex.quote(str(self.shutdown_marker))
        config = {
            "server": {
                "firstRun": False,
                "onlineCheck": {"enabled": False},
                "pluginBlacklist": {"enabled": False},
                "seenWizards": {"corewizard": 4, "tracking": None},
                "commands": {"systemShutdownCommand": f"touch {marker}"},
            },
            "accessControl": {"salt": secrets.token_hex(16)},
            "serial": {
                "autoconnect": True,
                "port": "VIRTUAL",
                "baudrate": 0,
                "additionalPorts": [],
                "log": True,
            },
            "plugins": {
                "virtual_printer": {"enabled": True, "okAfterResend": True},
                "tracking": {"enabled": False},
                "errortracking": {"enabled": False},
                "announcements": {"enabled_channels": []},
                "discovery": {
                    "upnpUuid": self.uuid,
                    "addresses": ["127.0.0.1"],
                    "interfaces": ["lo"],
                },
                "_disabled": [
                    "tracking",
                    "announcements",
                    "backup",
                    "softwareupdate",
                    "healthcheck",
                ],
            },
            "webcam": {"webcamEnabled": False, "timelapseEnabled": False},
        }
        (self.basedir / "config.yaml").write_text(yaml.safe_dump(config))
        users = {
            ADMIN: _user(["admins", "users"], self.admin_key),
            VIEWER: _user(["readonly"], self.viewer_key),
        }
        (self.basedir / "users.yaml").write_text(yaml.safe_dump(users))

    def start(self, timeout: float = 90.0) -> None:
        """Start OctoPrint and wait until it answers and the printer is connected."""
        self.configure()
        self.launch()
        try:
            self._wait_until_operational(timeout)
        except BaseException:
            self.stop()
            raise

    def launch(self) -> None:
        """Start the OctoPrint process of a configured base folder, without waiting for it."""
        executable = octoprint_executable()
        if not executable.exists():
            raise RuntimeError(f"{executable} is missing: run scripts/setup")
        command = [
            str(executable),
            "serve",
            "--basedir",
            str(self.basedir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--iknowwhatimdoing")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def _wait_until_operational(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"OctoPrint exited with {self.process.returncode}")
            if self.printer_operational():
                return
            time.sleep(0.5)
        raise RuntimeError("OctoPrint did not become ready in time")

    def connect_printer(self, connected: bool = True) -> None:
        """Connect OctoPrint to its virtual printer, or disconnect it (the USB cable)."""
        command = (
            {"command": "connect", "autoconnect": True} if connected else {"command": "disconnect"}
        )
        status, answer = self.request(
            "POST", "/api/connection", json.dumps(command).encode(), timeout=30
        )
        if status != 204:
            raise RuntimeError(f"OctoPrint did not {command['command']}: {status} {answer!r}")

    def set_room_temperature(self, celsius: float = ROOM_TEMPERATURE) -> None:
        """The temperature the virtual printer's heaters settle at while they are off.

        The printer reads it when it connects: a room temperature above the cool-down
        temperature is a printer that stays hot while OctoPrint restarts. A running OctoPrint's
        printer takes it at once.
        """
        self._set_printer_setting("ambientTemperature", celsius)
        if self.answers():
            self._send_to_printer(f"!!DEBUG:set_ambient {celsius}")

    def report_temperatures(self, readable: bool = True) -> None:
        """Whether the virtual printer reports its temperatures in a form OctoPrint reads.

        Unreadable reports leave OctoPrint operational with no temperature at all, as it is after
        a restart until the printer's first report comes in.
        """
        self._set_printer_setting(
            "m105TargetFormatString", READABLE_REPORT if readable else UNREADABLE_REPORT
        )

    def _set_printer_setting(self, name: str, value: object) -> None:
        """Set for the next start and, through OctoPrint's settings, for the running one."""
        config_file = self.basedir / "config.yaml"
        config = yaml.safe_load(config_file.read_text())
        config.setdefault("plugins", {}).setdefault("virtual_printer", {})[name] = value
        config_file.write_text(yaml.safe_dump(config))
        if self.answers():
            body = json.dumps({"plugins": {"virtual_printer": {name: value}}}).encode()
            status, answer = self.request("POST", "/api/settings", body)
            if status != 200:
                raise RuntimeError(f"OctoPrint kept its setting {name}: {status} {answer!r}")

    def _send_to_printer(self, command: str) -> None:
        body = json.dumps({"command": command}).encode()
        status, answer = self.request("POST", "/api/printer/command", body)
        if status != 204:
            raise RuntimeError(f"OctoPrint did not send {command}: {status} {answer!r}")

    def upload_demo_gcode(self) -> None:
        """Put the demo prints in the upload folder (kept across the Pi's reboots)."""
        uploads = self.basedir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        for gcode in GCODE_DIR.glob("*.gcode"):
            (uploads / gcode.name).write_text(gcode.read_text())

    def answers(self) -> bool:
        """Whether OctoPrint answers at all (whoever started it)."""
        try:
            status, _ = self.request("GET", "/api/version")
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def printer_operational(self) -> bool:
        """Whether OctoPrint answers, is connected and has reported temperatures."""
        try:
            status, body = self.request("GET", "/api/printer")
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and "tool0" in json.loads(body).get("temperature", {})

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """A blocking request with the administrator's key (for test set-up only)."""
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"X-Api-Key": self.admin_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def approve_app_keys(self, seconds: float = 60.0) -> int:
        """Allow the app key requests waiting for the administrator, as Allow in OctoPrint does.

        Waits up to ``seconds`` for one to come. Returns how many.
        """
        deadline = time.monotonic() + seconds
        while True:
            pending = self._as_admin("GET", "/api/plugin/appkeys", None).get("pending") or {}
            for user_token in pending:
                decision = json.dumps({"decision": True}).encode()
                status, answer = self.request(
                    "POST", f"/plugin/appkeys/decision/{user_token}", decision
                )
                if status != 204:
                    raise RuntimeError(f"OctoPrint refused the app key: {status} {answer!r}")
            if pending:
                return len(pending)
            if time.monotonic() > deadline:
                raise TimeoutError("no app key request came")
            time.sleep(0.5)

    def shutdown_command(self) -> str:
        """What Settings > Server > Commands > Shutdown runs (empty: none)."""
        answer = self._as_admin("GET", "/api/settings", None)
        return str(answer["server"]["commands"]["systemShutdownCommand"] or "")

    def set_shutdown_command(self, command: str) -> None:
        """Set (or, with "", clear) the system shutdown command, as its settings page does."""
        settings = {"server": {"commands": {"systemShutdownCommand": command}}}
        self._as_admin("POST", "/api/settings", settings)

    def add_user(self, name: str, permissions: list[str]) -> str:
        """A new user in a group of its own with these permissions; its API key.

        Made through OctoPrint's REST API, as an administrator would.
        """
        group = {"key": name, "name": name, "permissions": permissions, "subgroups": []}
        self._as_admin("POST", "/api/access/groups", group)
        user = {"name": name, "password": secrets.token_hex(8), "active": True, "groups": [name]}
        self._as_admin("POST", "/api/access/users", user)
        answer = self._as_admin("POST", f"/api/access/users/{name}/apikey", {})
        return str(answer["apikey"])

    def set_permissions(self, name: str, permissions: list[str]) -> None:
        """Change what the group of a user made by ``add_user`` grants."""
        self._as_admin("PUT", f"/api/access/groups/{name}", {"permissions": permissions})

    def remove_user(self, name: str) -> None:
        """Remove a user made by ``add_user``, and its group."""
        self._as_admin("DELETE", f"/api/access/users/{name}", None)
        self._as_admin("DELETE", f"/api/access/groups/{name}", None)

    def _as_admin(self, method: str, path: str, body: object) -> Any:
        status, answer = self.request(
            method, path, None if body is None else json.dumps(body).encode()
        )
        if status >= 300:
            raise RuntimeError(f"OctoPrint answered {method} {path} with {status}: {answer!r}")
        return json.loads(answer) if answer else None

    def moment(self) -> dict[str, Any]:
        """What OctoPrint says now: answered, its job, state flags and hotend readings."""
        try:
            status, body = self.request("GET", "/api/printer")
        except OSError:
            status, body = 0, b""
        flags: list[str] = []
        hotends: dict[str, float | None] = {}
        if status == 200:
            printer = json.loads(body)
            state_flags = printer.get("state", {}).get("flags", {})
            flags = sorted(name for name, value in state_flags.items() if value)
            hotends = {
                name: reading.get("actual")
                for name, reading in printer.get("temperature", {}).items()
                if name.startswith("tool")
            }
        return {
            "answered": status in (200, 409),
            "flags": flags,
            "job": bool(JOB_FLAGS & set(flags)),
            "hotends": hotends,
        }

    @property
    def running(self) -> bool:
        """Whether the OctoPrint process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process group (SIGKILL for a power cut) and wait for it."""
        stop_process_group(self.process, sig)
        self.process = None

    def __enter__(self) -> Self:
        """Start on entering."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop on leaving."""
        self.stop()


def _user(groups: list[str], api_key: str) -> dict[str, object]:
    return {
        "active": True,
        "apikey": api_key,
        "groups": groups,
        "password": "-",
        "permissions": [],
        "roles": ["user"],
        "settings": {},
    }


if __name__ == "__main__":
    with OctoPrintServer(Path(sys.argv[1])) as server:
        print(server.url, server.admin_key, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
