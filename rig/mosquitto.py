"""A Mosquitto broker on loopback with a user and password, for the MQTT tests."""

from __future__ import annotations

from dataclasses import dataclass
import getpass
from pathlib import Path
import shutil
import subprocess
import time

from .octoprint_server import free_port
from .paths import port_open, stop_process_group

USERNAME = "octoplugout"
PASSWORD = "mqtt-secret"


def mosquitto_executable(name: str = "mosquitto") -> str:
    """Debian puts the broker in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is missing: run scripts/setup")
    return found


@dataclass
class Mosquitto:
    """One broker process; ``start`` it (again, on the same port) and ``stop`` it."""

    folder: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def configure(self) -> None:
        """Write the configuration and the password file."""
        self.port = self.port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        passwords = self.folder / "passwords"
        passwords.write_text("")
        subprocess.run(
            [mosquitto_executable("mosquitto_passwd"), "-b", str(passwords), USERNAME, PASSWORD],
            check=True,
            capture_output=True,
        )
        passwords.chmod(0o600)
        (self.folder / "mosquitto.conf").write_text(
            # Run as root, Mosquitto would drop to its own user, who cannot read this folder.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            "persistence false\n"
            f"log_dest file {self.folder / 'mosquitto.log'}\n"
        )

    def start(self, seconds: float = 15.0) -> None:
        """Start the broker and wait until it listens."""
        if not self.port:
            self.configure()
        self.process = subprocess.Popen(
            [mosquitto_executable(), "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + seconds
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Mosquitto did not start: {self.folder / 'mosquitto.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the broker and wait for it."""
        stop_process_group(self.process)
        self.process = None
