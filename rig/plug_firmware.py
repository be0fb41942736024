"""The OctoPlugout ESPHome firmware as a Linux program (the host platform), for the tests.

``build`` compiles ``esphome/octoplugout-host.yaml`` with the real ESPHome from the ESPHome
virtual environment (cached: a rebuild for another port takes a second or two);
``PlugFirmware`` runs one plug with its own preferences folder on a loopback port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import fcntl
import os
from pathlib import Path
import shutil
import subprocess
import time
from typing import Self

from .paths import ROOT, port_open, stop_process_group, venvs

ESPHOME_DIR = ROOT / "esphome"
HOST_CONFIG = "octoplugout-host.yaml"


def esphome_executable() -> Path:
    """The ``esphome`` command made by ``scripts/setup``."""
    return venvs() / "esphome" / "bin" / "esphome"


def esphome(
    *args: str, cwd: Path = ESPHOME_DIR, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ESPHome; its own caches stay inside the environments folder."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        "ESPHOME_PCH_ENABLE": "0",
        "PLATFORMIO_CORE_DIR": str(venvs() / "platformio"),
    }
    return subprocess.run(
        [str(esphome_executable()), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build(port: int, mac_address: str, destination: Path) -> Path:
    """Compile the host firmware for ``port`` and copy the program to ``destination``.

    Test processes running side by side share one build folder (that is what keeps a rebuild
    short), so they take turns.
    """
    build_path = venvs() / "esphome-build"
    build_path.mkdir(parents=True, exist_ok=True)
    with (build_path.parent / "esphome-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = esphome(
            "-s", "api_port", str(port),
            "-s", "mac_address", mac_address,
            "-s", "build_path", str(build_path),
            "compile", HOST_CONFIG,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"esphome compile failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        program = next(build_path.glob("**/.pioenvs/*/program"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(program, destination)
    return destination


@dataclass
class PlugFirmware:
    """One running plug; its preferences (the power lock, the LED pattern) live in ``prefs``.

    ``power_up`` says whether a start stands for a real power-up (the mains came back) or for a
    software reboot (an update): only a power-up follows the plug's "Stay off at power-up".
    """

    program: Path
    port: int
    prefs: Path
    power_up: bool = False
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        """The program's output goes beside its preferences."""
        self.log = self.prefs / "firmware.log"

    def start(self) -> None:
        """Start the program and wait until its API port accepts connections."""
        self.prefs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ESPHOME_PREFDIR": str(self.prefs)}
        env.pop("OCTOPLUGOUT_POWER_UP", None)
        if self.power_up:
            env["OCTOPLUGOUT_POWER_UP"] = "1"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.program)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the plug firmware exited: {self.log.read_text()[-2000:]}")
            if port_open(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the plug firmware did not open its API port")

    def stop(self) -> None:
        """Stop the program (its preferences stay, as on a real plug's flash)."""
        stop_process_group(self.process, seconds=10)
        self.process = None

    def __enter__(self) -> Self:
        """Start on entering."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop on leaving."""
        self.stop()
