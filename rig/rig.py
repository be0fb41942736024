"""The whole chain on one machine: OctoPrint, the plug, the power line and Home Assistant."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
import subprocess
import time
from typing import Any

from custom_components.octoplugout.options import MACHINE_OPTION_KEYS, OPTION_DEFAULTS

from .fault_proxy import Fault, read_requests, start_proxy, write_faults
from .home_assistant import HomeAssistant, ha_version, template_relays
from .octoprint_server import OctoPrintServer, free_port
from .paths import groups_alive, port_open, stop_process_group
from .plug_firmware import PlugFirmware, build
from .power_line import read_cuts, read_moments, start_power_line

PLUG_MAC = "02:00:00:0c:70:01"
ENTRY_TITLE_SLUG = "octoplugout_127_0_0_1"
# The plug's device id, or nothing while any of its entities is still missing.
PLUG_DEVICE_TEMPLATE = """{%- set ids = integration_entities('esphome') -%}
{%- set switches = ids | select('match', 'switch[.]') | list -%}
{%- if switches | count >= 2 and ids | select('match', 'select[.]') | list
      and ids | select('match', 'event[.]') | list -%}
{{ switches | map('device_id') | first }}
{%- endif -%}"""

# The machine's options, with timings that make a whole cycle take about a minute.
QUICK_OPTIONS: dict[str, Any] = {key: OPTION_DEFAULTS[key] for key in MACHINE_OPTION_KEYS} | {
    "min_job_time": 20,
    "arm_temperature": 190,
    "cool_temperature": 185,
    "halt_delay": 3,
    "shutdown_timeout": 60,
    "uptime_guard": 0,
}


def esphome_plug_supported() -> bool:
    """Whether this Home Assistant can adopt the plug firmware.

    ESPHome 2026.1 dropped the API password and with it the login message that Home Assistant
    before 2026 still sends; older ESPHome cannot build the Linux plug offline. With an older
    Home Assistant the rig uses a plain template switch as the relay instead.
    """
    return ha_version() >= (2026, 1)


@dataclass
class Rig:
    """Start with ``start()``, stop with ``stop()``; every process it starts, it stops."""

    workdir: Path
    plug_kind: str = ""
    octoprint: OctoPrintServer = field(init=False)
    plug: PlugFirmware | None = None
    power_line: subprocess.Popen[bytes] | None = None
    proxy: subprocess.Popen[bytes] | None = None
    proxy_port: int = 0
    ha: HomeAssistant = field(init=False)
    entry_id: str = ""
    relay_entity: str = ""
    quick_options: dict[str, Any] = field(default_factory=lambda: dict(QUICK_OPTIONS))
    process_groups: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Choose the plug and lay out the folders."""
        self.plug_kind = self.plug_kind or ("esphome" if esphome_plug_supported() else "template")
        self.octoprint = OctoPrintServer(self.workdir / "octoprint")
        self.relay_file = self.workdir / "plug" / "relay"
        self.record = self.workdir / "power-line.jsonl"
        self.pi_command = self.workdir / "pi-command"
        self.fault_file = self.workdir / "fault.json"
        self.request_log = self.workdir / "octoprint-requests.jsonl"
        self.ha = HomeAssistant(self.workdir / "ha", free_port())

    def _extra_config(self) -> str:
        # A dashboard button starts the demo print through this.
        config = f"""
rest_command:
  demo_print:
    url: "{self.octoprint.url}/api/files/local/demo.gcode"
    method: post
    headers:
      X-Api-Key: "{self.octoprint.admin_key}"
    content_type: application/json
    payload: '{{"command": "select", "print": true}}'
"""
        if self.plug_kind == "template":
            config += template_relays({"plug_relay": self.relay_file})
        return config

    def _dashboard(self) -> str:
        def entity(domain: str, key: str) -> str:
            return self.entity(domain, key)

        return f"""\
title: OctoPlugout demo
views:
  - title: Printer
    path: printer
    cards:
      - type: entities
        title: OctoPlugout
        entities:
          - entity: {entity("sensor", "state")}
            name: State
          - entity: {entity("select", "mode")}
            name: Mode
          - entity: {entity("switch", "power")}
            name: Power
          - entity: {entity("sensor", "hotend_temperature")}
            name: Hotend
          - entity: {entity("sensor", "bed_temperature")}
            name: Bed
          - entity: {entity("sensor", "job_progress")}
            name: Job progress
          - entity: {entity("sensor", "power_off_time")}
            name: Power-off time
          - entity: {entity("binary_sensor", "octoprint_reachable")}
            name: OctoPrint
          - entity: {entity("binary_sensor", "job_in_progress")}
            name: Job
      - type: horizontal-stack
        cards:
          - type: button
            name: Start demo print
            icon: mdi:printer-3d-nozzle
            tap_action:
              action: perform-action
              perform_action: rest_command.demo_print
          - type: button
            entity: {entity("button", "power_off_now")}
            name: Power off now
            tap_action:
              action: perform-action
              perform_action: button.press
              target:
                entity_id: {entity("button", "power_off_now")}
          - type: button
            entity: {entity("button", "cancel_power_off")}
            name: Cancel power-off
            tap_action:
              action: perform-action
              perform_action: button.press
              target:
                entity_id: {entity("button", "cancel_power_off")}
      - type: history-graph
        title: Temperatures
        hours_to_show: 1
        entities:
          - {entity("sensor", "hotend_temperature")}
          - {entity("sensor", "bed_temperature")}
"""

    def start(self) -> None:
        """Start everything and set OctoPlugout up through Home Assistant's config flows."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.octoprint.configure()
        self.ha.extra_config = self._extra_config()
        self.ha.dashboard = self._dashboard()
        if self.plug_kind == "esphome":
            port = free_port()
            program = build(port, PLUG_MAC, self.workdir / "plug" / "program")
            self.plug = PlugFirmware(program, port, self.workdir / "plug")
            self.start_plug()
        else:
            self.relay_file.parent.mkdir(parents=True, exist_ok=True)
            self.relay_file.write_text("on\n")
        self.power_line = start_power_line(
            self.octoprint,
            self.relay_file,
            self.record,
            self.pi_command,
            self.workdir / "power-line.log",
        )
        self._started(self.power_line)
        self._start_proxy()
        self.wait_for_octoprint()
        self.octoprint.upload_demo_gcode()
        self.ha.start()
        self._started(self.ha.process)
        self.ha.onboard()
        self.ha.confirm_http_config()
        self._set_up_integrations()

    def kill_home_assistant(self, seconds: float = 180) -> None:
        """Kill Home Assistant (SIGKILL), start it again and wait until OctoPlugout reports."""
        self.ha.kill()
        self.ha.start()
        self._started(self.ha.process)
        state = self.entity("sensor", "state")
        deadline = time.monotonic() + seconds
        while self.ha.state_of(state) in (None, "unavailable", "unknown"):
            if time.monotonic() > deadline:
                raise TimeoutError("OctoPlugout did not come back after Home Assistant was killed")
            time.sleep(0.2)

    def _started(self, *processes: subprocess.Popen[bytes] | None) -> None:
        # Every process runs in its own session: its group is what must be gone at the end.
        self.process_groups += [process.pid for process in processes if process is not None]

    def start_plug(self) -> None:
        """Start (or restart) the plug firmware."""
        assert self.plug is not None
        self.plug.start()
        self._started(self.plug.process)

    def processes_left(self) -> int:
        """How many of the process groups the rig started are still alive, OctoPrint included."""
        return groups_alive(self.process_groups) + port_open(self.octoprint.port, timeout=0.5)

    def _start_proxy(self) -> None:
        # Home Assistant reaches OctoPrint only through the fault proxy.
        self.proxy_port = free_port()
        self.proxy = start_proxy(
            self.proxy_port,
            self.octoprint.port,
            self.fault_file,
            self.request_log,
            self.workdir / "fault-proxy.log",
        )
        self._started(self.proxy)

    def inject(self, *faults: Fault) -> None:
        """Make Home Assistant's requests to OctoPrint meet these faults."""
        write_faults(self.fault_file, list(faults))

    def wait_for_hits(self, fault: Fault, seconds: float = 60.0) -> int:
        """Wait until ``fault`` met its requests (or its time is up); how many it met."""
        deadline = time.monotonic() + seconds
        while True:
            met = sum(1 for r in self.octoprint_requests() if r["fault_name"] == fault.name)
            all_met = fault.hits is not None and met >= fault.hits
            if all_met or time.monotonic() > deadline or time.time() > fault.until:
                return met
            time.sleep(0.1)

    def heal(self) -> None:
        """End any injected fault."""
        self.fault_file.unlink(missing_ok=True)

    def octoprint_requests(self) -> list[dict[str, Any]]:
        """Every request Home Assistant sent to OctoPrint."""
        return read_requests(self.request_log)

    def wait_for_octoprint(self, seconds: float = 120.0) -> None:
        """Wait until the virtual Pi has booted and OctoPrint is connected to the printer."""
        deadline = time.monotonic() + seconds
        while not self.octoprint.printer_operational():
            if time.monotonic() > deadline:
                raise TimeoutError("OctoPrint did not come up")
            time.sleep(0.5)

    def _wait_until_loaded(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while self.ha.entries("octoplugout")[0]["state"] != "loaded":
            if time.monotonic() > deadline:
                raise TimeoutError("OctoPlugout was not set up")
            time.sleep(0.2)

    def wait_for_pi_halted(self, seconds: float = 60.0) -> None:
        """Wait until the virtual Pi has halted: OctoPrint no longer answers."""
        deadline = time.monotonic() + seconds
        while self.octoprint.answers():
            if time.monotonic() > deadline:
                raise TimeoutError("the Pi did not halt")
            time.sleep(0.2)

    def _set_up_integrations(self) -> None:
        if self.plug_kind == "esphome":
            assert self.plug is not None
            result = self.ha.flow("esphome", {"host": "127.0.0.1", "port": self.plug.port})
            if result.get("type") != "create_entry":
                raise RuntimeError(f"ESPHome setup stopped: {result}")
        device = self._plug_device()
        relay = None if device else "switch.plug_relay"
        self.entry_id, entities = self.ha.add_octoplugout(
            self.proxy_port, self.octoprint.admin_key, device=device, relay_entity=relay
        )
        self.relay_entity = entities["relay_entity"]
        self.set_options(QUICK_OPTIONS)
        self.ha.wait_for_state(self.entity("sensor", "state"), {"idle"}, seconds=60)

    def _plug_device(self, seconds: float = 60.0) -> str | None:
        """The ESPHome plug's device, once its relay, lock, LED and button entities exist.

        The flow suggests the plug's entities from those registered when it asks; ESPHome
        registers them a moment after its entry is created.
        """
        if self.plug_kind != "esphome":
            return None
        deadline = time.monotonic() + seconds
        while True:
            answer = self.ha.request("POST", "/api/template", {"template": PLUG_DEVICE_TEMPLATE})
            # An empty rendering comes back as no answer at all.
            if isinstance(answer, str) and answer.strip():
                return answer.strip()
            if time.monotonic() > deadline:
                raise TimeoutError("the ESPHome plug's entities did not appear")
            time.sleep(0.5)

    def set_options(self, options: dict[str, Any], *, written: bool = False) -> None:
        """Change OctoPlugout's options through its options flow; wait for the entry again.

        ``written``: wait until Home Assistant has written them too (a kill keeps them).
        """
        self.ha.set_options(self.entry_id, options)
        self._wait_until_loaded()
        if written:
            self.ha.wait_until_written(
                lambda: self.ha.entry_written(self.entry_id, options), "OctoPlugout's options"
            )

    def entity(self, domain: str, key: str) -> str:
        """The entity id of one of OctoPlugout's entities."""
        return f"{domain}.{ENTRY_TITLE_SLUG}_{key}"

    def start_print(self, name: str = "demo.gcode") -> None:
        """Select and print a file on OctoPrint."""
        body = json.dumps({"command": "select", "print": True}).encode()
        status, answer = self.octoprint.request("POST", f"/api/files/local/{name}", body)
        if status != 204:
            raise RuntimeError(f"OctoPrint did not start the print: {status} {answer!r}")

    def tell_pi(self, command: str) -> None:
        """Crash OctoPrint on the powered Pi (``crash``) or boot it again (``boot``)."""
        self.pi_command.write_text(command)
        deadline = time.monotonic() + 10
        while self.pi_command.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the power line did not take the command")
            time.sleep(0.1)

    def story(self, lines: int = 60) -> str:
        """OctoPlugout's last log lines, for a failed test."""
        return self.ha.octoplugout_log(lines)

    def power_cuts(self) -> list[dict[str, Any]]:
        """Every power cut the power line recorded."""
        return read_cuts(self.record)

    def halt_requests(self) -> list[dict[str, Any]]:
        """Every halt request that reached the Pi, with OctoPrint's job and hotends then."""
        return read_moments(self.record, "halt")

    def stop(self) -> None:
        """Stop Home Assistant, the power line (and with it OctoPrint) and the plug."""
        self.ha.stop()
        stop_process_group(self.power_line, seconds=30)
        self.power_line = None
        stop_process_group(self.proxy)
        self.proxy = None
        if self.plug is not None:
            self.plug.stop()
