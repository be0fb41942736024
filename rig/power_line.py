"""The virtual Pi's power line: the plug's relay powers the printer's host on and off.

Run as its own process (``python -m rig.power_line``): it reads the relay state that the plug
firmware writes to a file, starts the host's servers (OctoPrint, or Klippy and Moonraker) when
power comes (the Pi boots) and kills them when power goes (a power cut). Their shutdown command
only leaves a marker file; a few seconds later the power line stops them, as a halting Pi
would. Every power cut and every halt request is recorded with what the host said at that
moment (its job, its hotends), so a test can prove that none happened during a job or with a
hot hotend.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any, Protocol

from .klipper_server import KlipperServer
from .octoprint_server import OctoPrintServer
from .paths import ROOT


class PiServer(Protocol):
    """What runs on the virtual Pi: OctoPrint, or Klippy and Moonraker."""

    @property
    def shutdown_marker(self) -> Path:
        """Written by the host's shutdown command."""

    @property
    def running(self) -> bool:
        """Whether the host's server runs."""

    def launch(self) -> None:
        """Start the configured server without waiting for it (the Pi boots)."""

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL for a power cut) and wait for it."""

    def moment(self) -> dict[str, Any]:
        """What the host says now: answered, its job (a bool), flags and hotend readings."""


@dataclass
class PowerLine:
    """The state of the virtual Pi and its power."""

    server: PiServer
    relay_file: Path
    record: Path
    command_file: Path
    halt_seconds: float
    powered: bool = False
    halt_at: float | None = None
    # When the Pi finished halting (wall-clock time), or None while it has not.
    halted_at: float | None = None
    stopping: bool = False

    @property
    def host_halted(self) -> bool:
        """Whether the Pi halted since it was last powered or booted."""
        return self.halted_at is not None

    def relay_on(self) -> bool:
        """What the plug's relay says; no file yet means the plug is not running: no power."""
        try:
            return self.relay_file.read_text().strip() == "on"
        except FileNotFoundError:
            return False

    def step(self) -> None:
        """Follow the relay and the host's halt, once."""
        relay = self.relay_on()
        if relay and not self.powered:
            self.powered, self.halt_at, self.halted_at = True, None, None
            self.server.launch()
            self.log("power on: the Pi boots")
        elif not relay and self.powered:
            self.record_cut()
            self.server.stop(signal.SIGKILL)
            self.powered, self.halt_at = False, None
            self.log("power cut")
        if self.powered and self.server.shutdown_marker.exists():
            self.server.shutdown_marker.unlink()
            self.record_moment("halt")
            self.halt_at = time.monotonic() + self.halt_seconds
            self.log("the Pi was asked to halt")
        if self.powered and self.command_file.exists():
            self.obey(self.command_file.read_text().strip())
            self.command_file.unlink()
        if self.halt_at is not None and time.monotonic() >= self.halt_at:
            self.server.stop()
            self.halt_at, self.halted_at = None, time.time()
            self.log("the Pi has halted")

    def obey(self, command: str) -> None:
        """Obey a test: ``crash`` kills the host's server on the powered Pi, ``boot`` starts it."""
        if command == "crash":
            self.server.stop(signal.SIGKILL)
            self.log("the host's server crashed (the Pi hangs)")
        elif command == "boot" and not self.server.running:
            self.halt_at, self.halted_at = None, None
            self.server.launch()
            self.log("the Pi boots again")

    def record_cut(self) -> None:
        """Write what the host says at the moment of a power cut."""
        self.record_moment("cut", host_halted=self.host_halted, host_halted_at=self.halted_at)

    def record_moment(self, kind: str, **facts: object) -> None:
        """Write what the host says now: its job and hotend readings."""
        said: dict[str, Any] = {"answered": False, "flags": [], "job": False, "hotends": {}}
        if self.server.running:
            said = self.server.moment()
        entry = {
            "kind": kind,
            "time": time.time(),
            "host_running": self.server.running,
            "host_answered": said["answered"],
            "flags": said["flags"],
            "job": said["job"],
            "hotends": said["hotends"],
            **facts,
        }
        with self.record.open("a") as record:
            record.write(json.dumps(entry) + "\n")

    def log(self, text: str) -> None:
        """Say what happened, for whoever watches the rig."""
        print(f"power line: {text}", flush=True)

    def run(self) -> None:
        """Follow the relay until told to stop, then stop the host's server."""
        try:
            while not self.stopping:
                self.step()
                time.sleep(0.1)
        finally:
            self.server.stop()


def read_cuts(record: Path) -> list[dict[str, Any]]:
    """The recorded power cuts."""
    return read_moments(record, "cut")


def read_moments(record: Path, kind: str) -> list[dict[str, Any]]:
    """The recorded moments of one kind: ``cut`` or ``halt`` (a halt request)."""
    if not record.exists():
        return []
    moments = (json.loads(line) for line in record.read_text().splitlines() if line.strip())
    return [moment for moment in moments if moment["kind"] == kind]


def start_power_line(
    server: OctoPrintServer | KlipperServer,
    relay_file: Path,
    record: Path,
    command_file: Path,
    log: Path,
    halt_seconds: float = 3.0,
) -> subprocess.Popen[bytes]:
    """Run the power line of a configured host in its own process (and session).

    ``halt_seconds`` is how long the Pi takes to halt once its host was asked to.
    """
    if isinstance(server, OctoPrintServer):
        host = ["--admin-key", server.admin_key, "--viewer-key", server.viewer_key]
    else:
        host = ["--klipper"]
    return subprocess.Popen(
        [
            sys.executable, "-m", "rig.power_line",
            "--basedir", str(server.basedir),
            "--port", str(server.port),
            *host,
            "--relay-file", str(relay_file),
            "--record", str(record),
            "--command-file", str(command_file),
            "--halt-seconds", str(halt_seconds),
        ],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the power line for one virtual Pi."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--basedir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--klipper", action="store_true", help="Klippy and Moonraker")
    parser.add_argument("--admin-key", default="")
    parser.add_argument("--viewer-key", default="")
    parser.add_argument("--relay-file", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--command-file", type=Path, required=True)
    parser.add_argument("--halt-seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    server: PiServer = (
        KlipperServer(args.basedir, args.port)
        if args.klipper
        else OctoPrintServer(args.basedir, args.port, args.admin_key, args.viewer_key)
    )
    line = PowerLine(server, args.relay_file, args.record, args.command_file, args.halt_seconds)

    def stop(signum: int, frame: FrameType | None) -> None:
        line.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    line.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
