"""A Klipper printer's whole chain on one machine, with OctoPlugout set up for Moonraker.

Klippy and Moonraker run on a virtual Pi behind its power line, a plug's relay powers it, and
Home Assistant runs OctoPlugout.

The relay is a template switch (the ESPHome plug works alike for every host and is proven with
OctoPrint); Moonraker trusts loopback, so OctoPlugout is set up without a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import subprocess
import time
from typing import Any

from .home_assistant import HomeAssistant, template_relays
from .klipper_server import KlipperServer
from .octoprint_server import free_port
from .paths import groups_alive, port_open, stop_process_group
from .power_line import read_cuts, read_moments, start_power_line
from .rig import ENTRY_TITLE_SLUG, QUICK_OPTIONS

RELAY = "switch.plug_relay"
# A print that heats the hotend past the arm temperature and lasts past the minimum job time.
FULL_PRINT = "M104 S200\nRIG_WAIT_HOT\n" + "RIG_WAIT SECONDS=1\n" * 25 + "M104 S0\n"
# A print too short to arm.
SHORT_PRINT = "M104 S60\n" + "RIG_WAIT SECONDS=1\n" * 3 + "M104 S0\n"


@dataclass
class KlipperRig:
    """Start with ``start()``, stop with ``stop()``; every process it starts, it stops."""

    workdir: Path
    klipper: KlipperServer = field(init=False)
    ha: HomeAssistant = field(init=False)
    power_line: subprocess.Popen[bytes] | None = None
    entry_id: str = ""
    relay_entity: str = RELAY
    process_groups: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Lay out the folders."""
        self.klipper = KlipperServer(self.workdir / "klipper")
        self.relay_file = self.workdir / "plug" / "relay"
        self.record = self.workdir / "power-line.jsonl"
        self.pi_command = self.workdir / "pi-command"
        self.ha = HomeAssistant(self.workdir / "ha", free_port())

    def start(self) -> None:
        """Power the Pi, start Home Assistant and set OctoPlugout up for Moonraker."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.klipper.configure()
        self.relay_file.parent.mkdir(parents=True, exist_ok=True)
        self.relay_file.write_text("on\n")
        self.power_line = start_power_line(
            self.klipper, self.relay_file, self.record, self.pi_command, self.workdir / "power.log"
        )
        self._started(self.power_line)
        self.wait_for_klipper()
        self.ha.extra_config = template_relays({"plug_relay": self.relay_file})
        self.ha.start()
        self._started(self.ha.process)
        self.ha.onboard()
        self.ha.confirm_http_config()
        self.ha.wait_for_state(RELAY, "on", seconds=60)
        self.entry_id, _ = self.ha.add_octoplugout(
            self.klipper.port, "", moonraker=True, relay_entity=RELAY
        )
        self.set_options(QUICK_OPTIONS)
        self.ha.wait_for_state(self.entity("sensor", "state"), {"idle"}, seconds=60)

    def _started(self, *processes: subprocess.Popen[bytes] | None) -> None:
        self.process_groups += [process.pid for process in processes if process is not None]

    def wait_for_klipper(self, seconds: float = 120.0) -> None:
        """Wait until the virtual Pi has booted and Klippy is ready behind Moonraker."""
        deadline = time.monotonic() + seconds
        while not self.klipper.klippy_ready():
            if time.monotonic() > deadline:
                raise TimeoutError("Klippy did not come up behind Moonraker")
            time.sleep(0.5)

    def wait_for_pi_halted(self, seconds: float = 60.0) -> None:
        """Wait until the virtual Pi has halted: Moonraker no longer answers."""
        deadline = time.monotonic() + seconds
        while port_open(self.klipper.port):
            if time.monotonic() > deadline:
                raise TimeoutError("the Pi did not halt")
            time.sleep(0.2)

    def set_options(self, options: dict[str, Any]) -> None:
        """Change OctoPlugout's options through its options flow; wait for the entry again."""
        self.ha.set_options(self.entry_id, options)
        deadline = time.monotonic() + 60
        while self.ha.entries("octoplugout")[0]["state"] != "loaded":
            if time.monotonic() > deadline:
                raise TimeoutError("OctoPlugout was not set up")
            time.sleep(0.2)

    def entity(self, domain: str, key: str) -> str:
        """The entity id of one of OctoPlugout's entities."""
        return f"{domain}.{ENTRY_TITLE_SLUG}_{key}"

    def start_print(self, name: str, gcode: str) -> None:
        """Put a print file on the Pi and print it."""
        self.klipper.print_file(name, gcode)

    def tell_pi(self, command: str) -> None:
        """Crash the Pi's servers (``crash``) or boot them again (``boot``)."""
        self.pi_command.write_text(command)
        deadline = time.monotonic() + 10
        while self.pi_command.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the power line did not take the command")
            time.sleep(0.1)

    def power_cuts(self) -> list[dict[str, Any]]:
        """Every power cut the power line recorded."""
        return read_cuts(self.record)

    def halt_requests(self) -> list[dict[str, Any]]:
        """Every halt request that reached the Pi, with Moonraker's job and hotends then."""
        return read_moments(self.record, "halt")

    def story(self, lines: int = 60) -> str:
        """OctoPlugout's last log lines, for a failed test."""
        return self.ha.octoplugout_log(lines)

    def processes_left(self) -> int:
        """How many of the process groups the rig started are still alive, Moonraker included."""
        listening = bool(self.klipper.port) and port_open(self.klipper.port, timeout=0.5)
        return groups_alive(self.process_groups) + listening

    def stop(self) -> None:
        """Stop Home Assistant and the power line (and with it Klippy and Moonraker)."""
        self.ha.stop()
        stop_process_group(self.power_line, seconds=30)
        self.power_line = None
