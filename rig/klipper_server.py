"""A real Klipper printer for the tests: Klippy and Moonraker on loopback, no hardware.

Klippy runs in its file-output mode: it configures a microcontroller described by a data
dictionary (``MCU_DICTIONARY``, the commands a heater, an extruder and the pins need) and writes
what it would send to ``/dev/null``. The rig's Klipper extra (``rig/klipper/octoplugout_rig.py``)
gives its heaters temperatures that follow their power in real time and lets a print last.
Moonraker, Klipper's API server, sits in front of it as on a printer's Pi, trusting loopback
clients.
"""

from __future__ import annotations

from dataclasses import dataclass
import filecmp
import http.client
import json
import os
from pathlib import Path
import shlex
import shutil
import signal
import subprocess
import time
from typing import Any, Self
import urllib.parse

from .octoprint_server import free_port
from .paths import ROOT, stop_process_group, venvs

EXTRA = ROOT / "rig" / "klipper" / "octoplugout_rig.py"
KLIPPY_MAIN = ROOT / "rig" / "klipper" / "klippy_main.py"
MOONRAKER_MAIN = ROOT / "rig" / "klipper" / "moonraker_main.py"
ROOM_TEMPERATURE = 25.0

# The microcontroller Klippy configures: its commands (by format, with the type of each
# parameter), the responses it could send, its constants and its pins. In file-output mode only
# the commands' formats matter, to encode what Klippy would send.
MCU_COMMANDS = (
    "identify offset=%u count=%c",
    "get_config",
    "get_clock",
    "get_uptime",
    "allocate_oids count=%c",
    "finalize_config crc=%u",
    "emergency_stop",
    "clear_shutdown",
    "reset",
    "config_reset",
    "config_analog_in oid=%c pin=%u",
    "query_analog_in oid=%c clock=%u sample_ticks=%u sample_count=%c rest_ticks=%u"
    " min_value=%hu max_value=%hu range_check_count=%c",
    "config_digital_out oid=%c pin=%u value=%c default_value=%c max_duration=%u",
    "set_digital_out_pwm_cycle oid=%c cycle_ticks=%u",
    "queue_digital_out oid=%c clock=%u on_ticks=%u",
    "update_digital_out oid=%c value=%c",
    "set_digital_out pin=%u value=%c",
    "config_stepper oid=%c step_pin=%c dir_pin=%c invert_step=%c step_pulse_ticks=%u",
    "queue_step oid=%c interval=%u count=%hu add=%hi",
    "set_next_step_dir oid=%c dir=%c",
    "reset_step_clock oid=%c clock=%u",
    "stepper_get_position oid=%c",
    "stepper_stop_on_trigger oid=%c trsync_oid=%c",
    "config_trsync oid=%c",
    "trsync_start oid=%c report_clock=%u report_ticks=%u expire_reason=%c",
    "trsync_set_timeout oid=%c clock=%u",
    "trsync_trigger oid=%c reason=%c",
    "config_endstop oid=%c pin=%c pull_up=%c",
    "endstop_home oid=%c clock=%u sample_ticks=%u sample_count=%c rest_ticks=%u pin_value=%c"
    " trsync_oid=%c trigger_reason=%c",
    "endstop_query_state oid=%c",
    "config_pwm_out oid=%c pin=%u cycle_ticks=%u value=%hu default_value=%hu max_duration=%u",
    "queue_pwm_out oid=%c clock=%u value=%hu",
    "set_pwm_out pin=%u cycle_ticks=%u value=%hu",
)
MCU_RESPONSES = (
    "identify_response offset=%u data=%.*s",
    "config is_config=%c crc=%u is_shutdown=%c move_count=%hu",
    "clock clock=%u",
    "uptime high=%u clock=%u",
    "shutdown clock=%hu static_string_id=%hu",
    "is_shutdown static_string_id=%hu",
    "analog_in_state oid=%c next_clock=%u value=%hu",
    "stepper_position oid=%c pos=%i",
    "trsync_state oid=%c can_trigger=%c trigger_reason=%c clock=%u",
    "endstop_state oid=%c homing=%c next_clock=%u pin_value=%c",
    "stats count=%u sum=%u sumsq=%u",
)
MCU_DICTIONARY: dict[str, Any] = {
    "commands": {fmt: tag for tag, fmt in enumerate(MCU_COMMANDS, start=1)},
    "responses": {fmt: tag for tag, fmt in enumerate(MCU_RESPONSES, start=len(MCU_COMMANDS) + 1)},
    "output": {},
    "config": {
        "MCU": "linux",
        "CLOCK_FREQ": 50_000_000,
        "ADC_MAX": 4095,
        "PWM_MAX": 32768,
        "STATS_SUMSQ_BASE": 256,
        "SERIAL_BAUD": 250_000,
        "RECEIVE_WINDOW": 192,
    },
    "enumerations": {"pin": {"PA0": [0, 32]}},
    "version": "octoplugout-rig",
    "build_versions": "octoplugout-rig",
    "app": "Klipper",
}

PRINTER_CFG = """\
[mcu]
serial: /dev/null

[printer]
kinematics: none
max_velocity: 100
max_accel: 100

[octoplugout_rig]

[extruder]
step_pin: PA0
dir_pin: PA1
enable_pin: !PA2
microsteps: 16
rotation_distance: 33.5
nozzle_diameter: 0.4
filament_diameter: 1.75
heater_pin: PA3
sensor_type: octoplugout_rig
room_temperature: {room}
control: watermark
min_temp: 0
max_temp: 300
min_extrude_temp: 0
{extruder_extra}
[heater_bed]
heater_pin: PA4
sensor_type: octoplugout_rig
room_temperature: {room}
heat_rate: 2
loss_rate: 0.01
control: watermark
min_temp: 0
max_temp: 130

[virtual_sdcard]
path: {gcodes}

[pause_resume]

[display_status]
"""

MOONRAKER_CONF = """\
[server]
host: 127.0.0.1
port: {port}
klippy_uds_address: {socket}

[authorization]
trusted_clients:
    127.0.0.0/8

[machine]
provider: none
validate_service: False
validate_config: False

[history]

# The rig has no internet: no announcement feeds to fetch.
[announcements]
enable_moonlight: False
"""


# Moonraker halts its host with "sudo systemctl poweroff" (its provider "none" runs it in a
# shell). On the rig that must never reach the machine running the tests: Moonraker runs with
# these two first on its PATH. They only write the halt marker; "sudo" refuses while the
# refusal file exists (a Linux user without password-less sudo), as real sudo would.
FAKE_SUDO = """#!/bin/sh
[ -e {refusal} ] && {{ echo "sudo: a password is required" >&2; exit 1; }}
[ "$1" = "-S" ] && {{ shift; cat >/dev/null; }}
case "$1" in
    systemctl) shift; exec {bin}/systemctl "$@" ;;
    ls) exit 0 ;;
esac
echo "sudo: $1: not allowed on the rig" >&2
exit 1
"""
FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
    --version) echo "systemd 252 (rig)" ;;
    poweroff|halt) touch {marker} ;;
    *) echo "systemctl: $1: not on the rig" >&2; exit 1 ;;
esac
"""


def klipper_venv() -> Path:
    """The virtual environment ``scripts/setup`` put Klippy and Moonraker in."""
    return venvs() / "klipper"


@dataclass
class KlipperServer:
    """Klippy and Moonraker for one printer; ``start`` and ``stop`` them, or use ``with``."""

    basedir: Path
    port: int = 0
    # Whether the hotend's readings are written to ``readings`` (for the benchmark).
    log_readings: bool = False
    klippy: subprocess.Popen[bytes] | None = None
    moonraker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Moonraker's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def gcodes(self) -> Path:
        """Moonraker's (and Klippy's virtual SD card's) print files."""
        return self.basedir / "gcodes"

    @property
    def readings(self) -> Path:
        """The hotend's readings, one per line: wall-clock time and temperature."""
        return self.basedir / "logs" / "readings.log"

    @property
    def moonraker_log(self) -> Path:
        """Moonraker's log."""
        return self.basedir / "logs" / "moonraker.log"

    @property
    def shutdown_marker(self) -> Path:
        """Written when Moonraker runs its shutdown command."""
        return self.basedir / "host-halted"

    @property
    def sudo_refusal(self) -> Path:
        """While this file exists, Moonraker's user may not use sudo."""
        return self.basedir / "sudo-refused"

    @property
    def bin(self) -> Path:
        """The rig's own ``sudo`` and ``systemctl``, first on Moonraker's PATH."""
        return self.basedir / "bin"

    @property
    def klippy_socket(self) -> Path:
        """Klippy's API socket, which Moonraker talks to."""
        return self.basedir / "klippy.sock"

    def configure(self) -> None:
        """Write Klippy's and Moonraker's configuration, and install the rig's extra."""
        self.port = self.port or free_port()
        for folder in ("config", "gcodes", "logs"):
            (self.basedir / folder).mkdir(parents=True, exist_ok=True)
        (self.basedir / "mcu.dict").write_text(json.dumps(MCU_DICTIONARY))
        readings = f"reading_log: {self.readings}\n" if self.log_readings else ""
        (self.basedir / "printer.cfg").write_text(
            PRINTER_CFG.format(room=ROOM_TEMPERATURE, gcodes=self.gcodes, extruder_extra=readings)
        )
        (self.basedir / "config" / "moonraker.conf").write_text(
            MOONRAKER_CONF.format(port=self.port, socket=self.klippy_socket)
        )
        self.bin.mkdir(exist_ok=True)
        for name, script in (("sudo", FAKE_SUDO), ("systemctl", FAKE_SYSTEMCTL)):
            path = self.bin / name
            path.write_text(
                script.format(
                    refusal=shlex.quote(str(self.sudo_refusal)),
                    bin=shlex.quote(str(self.bin)),
                    marker=shlex.quote(str(self.shutdown_marker)),
                )
            )
            path.chmod(0o755)
        install_extra()

    def start(self, timeout: float = 60.0) -> None:
        """Start Klippy and Moonraker, and wait until Moonraker says Klippy is ready."""
        self.configure()
        self.launch()
        try:
            self.wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def launch(self) -> None:
        """Start Klippy and Moonraker of a configured base folder, without waiting for them."""
        python = klipper_venv() / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} is missing: run scripts/setup")
        base = str(self.basedir)
        self.launch_klippy()
        self.moonraker = _launch(
            [
                str(python),
                str(MOONRAKER_MAIN),
                "-d",
                base,
                "-c",
                f"{base}/config/moonraker.conf",
                "-l",
                str(self.moonraker_log),
            ],
            env={**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '')}"},
        )

    def launch_klippy(self) -> None:
        """Start Klippy (Moonraker finds it on its socket)."""
        python = klipper_venv() / "bin" / "python"
        base = str(self.basedir)
        self.klippy = _launch(
            [
                str(python),
                str(KLIPPY_MAIN),
                f"{base}/printer.cfg",
                "-o",
                "/dev/null",
                "-d",
                f"{base}/mcu.dict",
                "-a",
                str(self.klippy_socket),
                "-l",
                f"{base}/logs/klippy.log",
            ]
        )

    def restart_klippy(self, timeout: float = 60.0) -> None:
        """Start Klippy again after it stopped, and wait until it is ready."""
        self.launch_klippy()
        self.wait_until_ready(timeout)

    @property
    def running(self) -> bool:
        """Whether Moonraker runs (Klippy may have stopped on its own)."""
        return self.moonraker is not None and self.moonraker.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop Moonraker and Klippy (SIGKILL for a power cut) and wait for them."""
        stop_process_group(self.moonraker, sig)
        stop_process_group(self.klippy, sig)
        self.moonraker = self.klippy = None

    def moment(self) -> dict[str, Any]:
        """What Moonraker says now: answered, the job, Klippy's and the print's state, hotends."""
        try:
            status = self.query(webhooks="state", print_stats="state", extruder="temperature")
        except (OSError, RuntimeError, ValueError):
            return {"answered": False, "flags": [], "job": False, "hotends": {}}
        klippy = status.get("webhooks", {}).get("state")
        printing = status.get("print_stats", {}).get("state")
        return {
            "answered": True,
            "flags": [f"klippy {klippy}", str(printing)],
            "job": printing in ("printing", "paused"),
            "hotends": {"extruder": status.get("extruder", {}).get("temperature")},
        }

    def __enter__(self) -> Self:
        """Started."""
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stopped."""
        self.stop()

    def wait_until_ready(self, timeout: float) -> None:
        """Wait until Moonraker says Klippy is ready and has set itself up for it.

        Moonraker subscribes to the heaters only once Klippy is ready, and that subscription
        can swallow a change its other parts wait for: a print started in that moment never
        reaches its job state or history. A real printer is not started that fast.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in (("Klippy", self.klippy), ("Moonraker", self.moonraker)):
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}")
            if self.klippy_ready() and self._heaters_watched():
                return
            time.sleep(0.5)
        raise RuntimeError("Klippy did not become ready behind Moonraker in time")

    # Moonraker's HTTP API

    def klippy_ready(self) -> bool:
        """Whether Moonraker answers and says Klippy is ready."""
        try:
            return bool(self.request("GET", "/server/info").get("klippy_state") == "ready")
        except (OSError, RuntimeError, ValueError):
            return False

    def _heaters_watched(self) -> bool:
        """Whether Moonraker has subscribed to the heaters (its temperature store has them)."""
        try:
            return "extruder" in self.request("GET", "/server/temperature_store")
        except (OSError, RuntimeError, ValueError):
            return False

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """One request to Moonraker; its ``result``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"Moonraker answered {method} {path} with {response.status}")
        return answer.get("result")

    def gcode(self, script: str) -> None:
        """Run G-code (Moonraker's ``printer.gcode.script``)."""
        self.request("POST", "/printer/gcode/script?" + urllib.parse.urlencode({"script": script}))

    def query(self, **objects: str) -> dict[str, Any]:
        """Printer objects' fields, e.g. ``query(extruder="temperature,target")``."""
        status: dict[str, Any] = self.request(
            "GET", "/printer/objects/query?" + urllib.parse.urlencode(objects)
        )["status"]
        return status

    def print_file(self, name: str, gcode: str) -> None:
        """Put a print file where Moonraker and Klippy find it, and start printing it."""
        (self.gcodes / name).write_text(gcode)
        self.request("POST", "/printer/print/start?" + urllib.parse.urlencode({"filename": name}))


def install_extra() -> None:
    """Put the rig's extra among Klippy's own (Klippy loads extras only from there)."""
    python = klipper_venv() / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import klippy.extras as e, os; print(os.path.dirname(e.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(found.stdout.strip()) / EXTRA.name
    if not target.exists() or not filecmp.cmp(EXTRA, target, shallow=False):
        shutil.copyfile(EXTRA, target)


def _launch(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
