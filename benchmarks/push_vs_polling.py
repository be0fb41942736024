"""OctoPlugout with its hosts' push sockets against the original firmware's polling.

One run, real processes on loopback: N OctoPrints (each with its virtual printer) and M Klipper
printers (Klippy with the rig's virtual heater, behind Moonraker), each with its power line and
the rig's counting proxy in front of it, managed by one Home Assistant with OctoPlugout in its
default configuration (push socket, polling as a liveness check), and beside it, against the
same hosts through proxies of their own, the baseline: the original firmware's polling
(``original_poller``; against Moonraker the same questions of Klipper's printer objects). Both
watch the same idle time and the same prints; only OctoPlugout acts.

What is measured, per printer:
- print end (OctoPrint's PrintDone, or Moonraker's print state turning complete, seen by an
  observer on the host's own socket) to leaving the armed state (OctoPlugout: its state
  history; baseline: the check that saw it);
- hotend below the cool-down threshold (the first such reading in OctoPrint's serial log, or in
  the rig's Klipper heater's reading log) to the halt request (OctoPlugout: the request at its
  proxy; baseline: the check that would send it);
- the host stopping (the power line's record) to the relay off, minus the halt delay;
- requests to the host per hour while idle and while printing, counted at the proxies;
- Home Assistant: its event-loop thread's CPU time per printer per hour, its longest loop
  stall (a probe callback's lateness), its CPU and memory.

Usage: python -m benchmarks.push_vs_polling [--printers N] [--klipper-printers M]
[--idle-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
import functools
import itertools
import json
import os
from pathlib import Path
import re
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any
import uuid

import aiohttp

from rig.fault_proxy import read_requests, start_proxy
from rig.home_assistant import HomeAssistant, template_relays
from rig.klipper_rig import FULL_PRINT
from rig.klipper_server import KlipperServer
from rig.octoprint_server import OctoPrintServer, free_port
from rig.paths import ROOT, stop_process_group
from rig.power_line import read_cuts, start_power_line
from rig.rig import QUICK_OPTIONS

from .loop_probe import KEEP_OVER, install
from .original_poller import FAST_CHECK, MoonrakerOriginalPoller, OriginalPoller

RESULTS = ROOT / "benchmarks" / "results"
# A temperature report in OctoPrint's serial log, e.g. "2026-11-24 18:00:57,672 - Recv: T:21.3".
SERIAL_TEMPERATURE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d{3}) - Recv: .*?\bT:\s*(?P<hotend>[\d.]+)"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A Pi takes a while to halt; the baseline, which acts on nothing, must still see the hotend
# cool before OctoPlugout's halt takes OctoPrint away.
HALT_SECONDS = 15.0
# How long Home Assistant's event loop is watched before OctoPlugout is set up.
ALONE_SECONDS = 30.0


@dataclass
class Station:
    """One printer: its host, its power line, a proxy for OctoPlugout and one for the baseline."""

    index: int
    workdir: Path
    ours_port: int = field(default_factory=free_port)
    baseline_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    kind = ""
    halt_path = ""

    @property
    def relay_file(self) -> Path:
        """Where the plug's relay state is written (a template switch in Home Assistant)."""
        return self.workdir / "relay"

    def log(self, name: str) -> Path:
        """A file in this station's folder."""
        return self.workdir / name

    def _power_and_proxy(self, server: OctoPrintServer | KlipperServer) -> None:
        self.relay_file.write_text("on\n")
        self.processes.append(
            start_power_line(
                server,
                self.relay_file,
                self.log("power-line.jsonl"),
                self.log("pi-command"),
                self.log("power-line.log"),
                halt_seconds=HALT_SECONDS,
            )
        )
        for port, name in ((self.ours_port, "ours"), (self.baseline_port, "baseline")):
            self.processes.append(
                start_proxy(
                    port,
                    server.port,
                    self.log(f"{name}-faults.json"),
                    self.log(f"{name}-requests.jsonl"),
                    self.log(f"{name}-proxy.log"),
                )
            )

    def requests(self, who: str, start: float, end: float) -> list[dict[str, Any]]:
        """The requests of ``ours`` or ``baseline`` that reached the host in a time window."""
        log = self.log(f"{who}-requests.jsonl")
        return [r for r in read_requests(log) if start <= r["time"] < end]

    def stop(self) -> None:
        """Stop the power line (and with it the host) and the proxies."""
        for process in self.processes:
            stop_process_group(process, seconds=30)

    def start(self) -> None:
        """Power the Pi (the host boots) and put the two proxies in front of it."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the host has booted and runs its printer."""
        raise NotImplementedError

    async def observe(self, session: aiohttp.ClientSession, seen: Observation) -> None:
        """Listen to the host directly: when its print started and ended."""
        raise NotImplementedError

    def cooled_at(self, after: float, threshold: float) -> float | None:
        """When the hotend was first read below ``threshold`` after ``after``."""
        raise NotImplementedError

    def start_print(self) -> None:
        """Start the benchmark's print."""
        raise NotImplementedError

    def set_up(self, ha: HomeAssistant) -> str:
        """OctoPlugout for this station, through its config flow; the entry's id."""
        raise NotImplementedError

    def poller(self, phase: float) -> OriginalPoller:
        """The modelled original against this station's baseline proxy."""
        raise NotImplementedError


@dataclass
class Observation:
    """When the host itself said a print started and ended, heard on its own socket."""

    print_started: float | None = None
    print_done: float | None = None


@dataclass
class OctoPrintStation(Station):
    """OctoPrint and its virtual printer."""

    kind = "OctoPrint"
    halt_path = "/api/system/commands/core/shutdown"

    def __post_init__(self) -> None:
        """Every OctoPrint is another printer to Home Assistant: its own UUID."""
        self.octoprint = OctoPrintServer(self.workdir / "octoprint", uuid=str(uuid.uuid4()))

    def start(self) -> None:
        """Power the Pi (OctoPrint boots) and put the two proxies in front of it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.octoprint.configure()
        self.octoprint.upload_demo_gcode()
        self._power_and_proxy(self.octoprint)

    def ready(self) -> bool:
        """OctoPrint answers and is connected to its printer."""
        return self.octoprint.printer_operational()

    async def observe(self, session: aiohttp.ClientSession, seen: Observation) -> None:
        """OctoPrint's own socket (events are pushed at once, never throttled)."""
        server = self.octoprint
        login = await session.post(
            f"{server.url}/api/login",
            json={"passive": True},
            headers={"X-Api-Key": server.viewer_key},
        )
        answer = await login.json()
        async with session.ws_connect(f"{server.url}/sockjs/websocket") as socket:
            await socket.send_json({"auth": f"{answer['name']}:{answer['session']}"})
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                now = time.time()
                event = json.loads(message.data).get("event") or {}
                if event.get("type") == "PrintStarted":
                    seen.print_started = seen.print_started or now
                elif event.get("type") == "PrintDone":
                    seen.print_done = seen.print_done or now

    def cooled_at(self, after: float, threshold: float) -> float | None:
        """From OctoPrint's serial log, which stamps every line from the printer to the
        millisecond (no pushed or polled status does)."""
        log = self.octoprint.basedir / "logs" / "serial.log"
        for line in log.read_text(errors="replace").splitlines():
            if not (match := SERIAL_TEMPERATURE.match(line)):
                continue
            stamp = time.mktime(time.strptime(match["time"], "%Y-%m-%d %H:%M:%S"))
            at = stamp + int(match["ms"]) / 1000
            if at > after and float(match["hotend"]) < threshold:
                return at
        return None

    def start_print(self) -> None:
        """The demo print."""
        body = json.dumps({"command": "select", "print": True}).encode()
        status, answer = self.octoprint.request("POST", "/api/files/local/demo.gcode", body)
        if status != 204:
            raise SystemExit(f"benchmark: printer {self.index} did not start: {answer!r}")

    def set_up(self, ha: HomeAssistant) -> str:
        """OctoPlugout with the administrator's key."""
        entry_id, _ = ha.add_octoplugout(
            self.ours_port, self.octoprint.admin_key, relay_entity=relay_of(self)
        )
        return entry_id

    def poller(self, phase: float) -> OriginalPoller:
        """The original as it is, against OctoPrint."""
        return OriginalPoller(
            f"http://127.0.0.1:{self.baseline_port}",
            self.octoprint.admin_key,
            QUICK_OPTIONS["min_job_time"],
            QUICK_OPTIONS["arm_temperature"],
            QUICK_OPTIONS["cool_temperature"],
            phase=phase,
        )


@dataclass
class KlipperStation(Station):
    """Klippy with the rig's virtual heater, behind Moonraker (which trusts loopback)."""

    kind = "Klipper"
    halt_path = "/machine/shutdown"

    def __post_init__(self) -> None:
        """The hotend's readings are logged: the cool-down moment comes from them."""
        self.klipper = KlipperServer(self.workdir / "klipper", log_readings=True)

    def start(self) -> None:
        """Power the Pi (Klippy and Moonraker boot) and put the two proxies in front of it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.klipper.configure()
        self._power_and_proxy(self.klipper)

    def ready(self) -> bool:
        """Moonraker answers and Klippy is ready."""
        return self.klipper.klippy_ready()

    async def observe(self, session: aiohttp.ClientSession, seen: Observation) -> None:
        """Moonraker's own websocket: the print state as Klippy reports it."""
        async with session.ws_connect(f"{self.klipper.url}/websocket") as socket:
            await socket.send_json(
                {
                    "jsonrpc": "2.0",
                    "method": "printer.objects.subscribe",
                    "params": {"objects": {"print_stats": ["state"]}},
                    "id": 1,
                }
            )
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                now = time.time()
                answer = json.loads(message.data)
                changes = (answer.get("params") or [{}])[0] or {}
                if answer.get("method") != "notify_status_update":
                    continue
                state = changes.get("print_stats", {}).get("state")
                if state == "printing":
                    seen.print_started = seen.print_started or now
                elif state == "complete":
                    seen.print_done = seen.print_done or now

    def cooled_at(self, after: float, threshold: float) -> float | None:
        """From the rig's heater, which logs each reading with its time."""
        for line in self.klipper.readings.read_text().splitlines():
            at, temperature = (float(part) for part in line.split())
            if at > after and temperature < threshold:
                return at
        return None

    def start_print(self) -> None:
        """A print that heats past the arm temperature and lasts past the minimum job time."""
        self.klipper.print_file("bench.gcode", FULL_PRINT)

    def set_up(self, ha: HomeAssistant) -> str:
        """OctoPlugout without a key: Moonraker trusts loopback."""
        entry_id, _ = ha.add_octoplugout(
            self.ours_port, "", moonraker=True, relay_entity=relay_of(self)
        )
        return entry_id

    def poller(self, phase: float) -> OriginalPoller:
        """The original's questions, of Moonraker."""
        return MoonrakerOriginalPoller(
            f"http://127.0.0.1:{self.baseline_port}",
            "",
            QUICK_OPTIONS["min_job_time"],
            QUICK_OPTIONS["arm_temperature"],
            QUICK_OPTIONS["cool_temperature"],
            phase=phase,
        )


def relay_of(station: Station) -> str:
    """The template switch that stands in for a station's plug."""
    return f"switch.plug_relay_{station.index}"


class Watchers:
    """Coroutines on an event loop of their own thread, whose CPU time is theirs alone."""

    def __init__(self, work: list[Callable[[aiohttp.ClientSession], Awaitable[None]]]) -> None:
        """Run each of ``work`` with a shared HTTP session until stopped."""
        self._work = work
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._stop: asyncio.Event | None = None
        self.cpu_seconds = 0.0

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        started = time.thread_time()
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.ensure_future(work(session)) for work in self._work]
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.cpu_seconds = time.thread_time() - started

    def start(self) -> None:
        """Start watching."""
        self._thread.start()
        while self._stop is None:
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def baseline_pollers(stations: list[Station]) -> list[OriginalPoller]:
    """One modelled original per station, their checks spread over the 5 s between checks.

    Real plugs are not in step with the prints; spreading their phases samples how late a
    check comes after a print ends, instead of measuring one phase N times.
    """
    return [
        station.poller(FAST_CHECK * number / len(stations))
        for number, station in enumerate(stations)
    ]


def process_cpu(pid: int, thread: int | None = None) -> float:
    """CPU seconds (user and system) of a process, or of one of its threads."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, *, required: bool = True
) -> bool:
    """Wait for a condition; when it never came, fail the benchmark (or say so, if not required)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            if required:
                raise SystemExit(f"benchmark: {what} did not happen within {seconds:.0f} s")
            return False
        time.sleep(0.5)
    return True


def ha_config(stations: list[Station]) -> str:
    """Template switches as the plugs' relays, and the loop probe."""
    relays = {f"plug_relay_{station.index}": station.relay_file for station in stations}
    return """
loop_probe:
recorder:
  exclude:
    entities: [sensor.loop_probe]
""" + template_relays(relays)


@dataclass
class Figures:
    """The measured figures for OctoPlugout and the baseline."""

    kind: str
    printers: int
    detection_ours: list[float] = field(default_factory=list)
    detection_baseline: list[float] = field(default_factory=list)
    cool_to_halt_ours: list[float] = field(default_factory=list)
    cool_to_halt_baseline: list[float] = field(default_factory=list)
    halt_to_cut: list[float] = field(default_factory=list)
    idle_rate_ours: float = 0.0
    idle_rate_baseline: float = 0.0
    printing_rate_ours: float = 0.0
    printing_rate_baseline: float = 0.0
    loop_seconds_per_printer_hour: float = 0.0
    baseline_cpu_per_printer_hour: float = 0.0
    worst_stall_ms: float = 0.0
    ha_cpu_percent: float = 0.0
    ha_rss_mib: float = 0.0
    cycles_ok: int = 0


def state_history(ha: HomeAssistant, entity_id: str, since: float) -> list[tuple[float, str]]:
    """An entity's states since a time, from the recorder."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(since - 1))
    answer = ha.request(
        "GET",
        f"/api/history/period/{start}?filter_entity_id={entity_id}"
        "&minimal_response&no_attributes&significant_changes_only=0",
    )
    rows = answer[0] if answer else []
    return [
        (_timestamp(row["last_changed"]), row["state"]) for row in rows if "last_changed" in row
    ]


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def left_armed_at(history: list[tuple[float, str]]) -> float | None:
    """When the state first went from armed to anything else."""
    for (_, before), (at, after) in itertools.pairwise(history):
        if before == "armed" and after != "armed":
            return at
    return None


def per_hour(count: int, seconds: float, printers: int) -> float:
    """A count in a window, as a rate per printer per hour."""
    return count * 3600 / seconds / printers


def table(figures: Figures) -> str:
    """The results as a Markdown table: OctoPlugout, the baseline, and their ratio."""

    def ratio(ours: float, baseline: float) -> str:
        return f"{ours / baseline:.2f}" if baseline else "-"

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def worst(values: list[float]) -> float:
        return max(values) if values else float("nan")

    loop, poller = figures.loop_seconds_per_printer_hour, figures.baseline_cpu_per_printer_hour
    rows = [
        ("print end to leaving armed, median (s)", median(figures.detection_ours),
         median(figures.detection_baseline), "{:.2f}"),
        ("print end to leaving armed, max (s)", worst(figures.detection_ours),
         worst(figures.detection_baseline), "{:.2f}"),
        ("cool-down reached to halt request, median (s)", median(figures.cool_to_halt_ours),
         median(figures.cool_to_halt_baseline), "{:.2f}"),
        ("cool-down reached to halt request, max (s)", worst(figures.cool_to_halt_ours),
         worst(figures.cool_to_halt_baseline), "{:.2f}"),
        ("requests per printer per hour, idle", figures.idle_rate_ours,
         figures.idle_rate_baseline, "{:.0f}"),
        ("requests per printer per hour, printing", figures.printing_rate_ours,
         figures.printing_rate_baseline, "{:.0f}"),
    ]  # fmt: skip
    # The probe keeps only stalls over its threshold.
    stall = f"under {KEEP_OVER * 1000:.0f}"
    if figures.worst_stall_ms:
        stall = f"{figures.worst_stall_ms:.0f}"
    lines = [
        f"{figures.kind} printers: {figures.printers}; cycles completed correctly by OctoPlugout: "
        f"{figures.cycles_ok}/{figures.printers}; followed to the halt request by the "
        f"baseline: {len(figures.cool_to_halt_baseline)}/{figures.printers}.",
        "",
        "| figure | OctoPlugout | original (baseline) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, ours, baseline, form in rows:
        lines.append(
            f"| {name} | {form.format(ours)} | {form.format(baseline)} | {ratio(ours, baseline)} |"
        )
    lines += [
        f"| host stopped to relay off, minus the halt delay, max (s) "
        f"| {worst(figures.halt_to_cut):.2f} | not watched: cuts 30 s after the halt request "
        "| - |",
        f"| event-loop (or poller) CPU per printer per hour (s) "
        f"| {loop:.2f} | {poller:.2f} | {ratio(loop, poller)} |",
        f"| longest event-loop stall (ms) | {stall} | - | - |",
        f"| Home Assistant CPU (% of one core) / memory (MiB) "
        f"| {figures.ha_cpu_percent:.1f} / {figures.ha_rss_mib:.0f} | - | - |",
    ]
    return "\n".join(lines) + "\n"


def state_entity(ha: HomeAssistant, entry_id: str) -> str:
    """The entity id of an entry's state sensor."""
    answer = ha.websocket({"type": "config/entity_registry/list"})
    for entity in answer["result"]:
        if entity["config_entry_id"] == entry_id and entity["unique_id"].endswith("_state"):
            return str(entity["entity_id"])
    raise SystemExit(f"benchmark: entry {entry_id} has no state sensor")


def cycle_ok(station: Station) -> bool:
    """One power cut, after a clean halt, with no job running."""
    cuts = read_cuts(station.log("power-line.jsonl"))
    return len(cuts) == 1 and bool(cuts[0]["host_halted"]) and not cuts[0]["job"]


@dataclass
class Run:
    """What one run left behind, before it is reduced to figures."""

    stations: list[Station]
    observations: list[Observation]
    pollers: list[OriginalPoller]
    histories: list[list[tuple[float, str]]]
    idle_start: float
    idle_end: float
    end: float
    # Home Assistant's event-loop thread: CPU seconds in the run, and per second without
    # OctoPlugout (measured before it was set up).
    loop_seconds: float
    loop_rate_alone: float
    cpu_seconds: float
    rss_mib: float
    late: list[tuple[float, float]]
    baseline_cpu_seconds: float = 0.0


def run(workdir: Path, printers: int, klipper_printers: int, idle_seconds: float) -> Run:
    """Start everything, watch the idle time and one print on every printer, stop all."""
    stations: list[Station] = [
        OctoPrintStation(i + 1, workdir / f"printer-{i + 1}") for i in range(printers)
    ]
    stations += [
        KlipperStation(i + 1, workdir / f"printer-{i + 1}")
        for i in range(printers, printers + klipper_printers)
    ]
    probe_folder = install(workdir / "components")
    ha = HomeAssistant(
        workdir / "ha", free_port(), extra_components={probe_folder.name: probe_folder}
    )
    threads: list[Watchers] = []
    try:
        for station in stations:
            station.start()
        observations = [Observation() for _ in stations]
        pollers = baseline_pollers(stations)
        observers = Watchers(
            [
                functools.partial(station.observe, seen=seen)
                for station, seen in zip(stations, observations, strict=True)
            ]
        )
        baseline = Watchers([poller.run for poller in pollers])
        for station in stations:
            wait_until(station.ready, 300, f"{station.kind} {station.index}")
        ha.extra_config = ha_config(stations)
        ha.start()
        ha.onboard()
        ha.confirm_http_config()
        assert ha.process is not None
        pid = ha.process.pid
        alone_start, alone_loop = time.monotonic(), process_cpu(pid, pid)
        time.sleep(ALONE_SECONDS)
        loop_rate_alone = (process_cpu(pid, pid) - alone_loop) / (time.monotonic() - alone_start)
        states = [set_up(ha, station) for station in stations]
        wait_until(lambda: all(ha.state_of(s) == "idle" for s in states), 180, "idle everywhere")
        threads = [observers, baseline]
        for thread in threads:
            thread.start()
        # The push sockets open after the first poll; the idle window starts when all are up.
        time.sleep(10)
        idle_start, loop_start, cpu_start = time.time(), process_cpu(pid, pid), process_cpu(pid)
        rss = process_rss_mib(pid)
        time.sleep(idle_seconds)
        idle_end = time.time()
        for station in stations:
            station.start_print()
        wait_until(
            lambda: all(read_cuts(s.log("power-line.jsonl")) for s in stations),
            900,
            "every printer's power cut",
        )
        # The baseline acts on nothing, so a step it checks too late may already be gone
        # (OctoPlugout halted that Pi); the table counts the cycles it followed to the end.
        wait_until(
            lambda: all(p.state == "halting" for p in pollers),
            60,
            "the baseline's halt requests",
            required=False,
        )
        end = time.time()
        probe = ha.state("sensor.loop_probe") or {}
        result = Run(
            stations=stations,
            observations=observations,
            pollers=pollers,
            histories=[state_history(ha, entity, idle_start) for entity in states],
            idle_start=idle_start,
            idle_end=idle_end,
            end=end,
            loop_seconds=process_cpu(pid, pid) - loop_start,
            loop_rate_alone=loop_rate_alone,
            cpu_seconds=process_cpu(pid) - cpu_start,
            rss_mib=max(rss, process_rss_mib(pid)),
            late=[(at, lag) for at, lag in probe.get("attributes", {}).get("late", [])],
        )
    finally:
        for thread in threads:
            thread.stop()
        ha.stop()
        for station in stations:
            station.stop()
    result.baseline_cpu_seconds = baseline.cpu_seconds
    return result


def set_up(ha: HomeAssistant, station: Station) -> str:
    """OctoPlugout for one station with the quick options; its state sensor's entity id."""
    entry_id = station.set_up(ha)
    ha.set_options(entry_id, QUICK_OPTIONS)
    return state_entity(ha, entry_id)


def figures_of(run: Run, kind: str) -> Figures:
    """Reduce a run to the figures of the table of one kind of printer host.

    The event loop's and Home Assistant's figures are of the whole run, every host together.
    """
    printers = len(run.stations)
    figures = Figures(kind, sum(1 for station in run.stations if station.kind == kind))
    seconds = run.end - run.idle_start
    hours = seconds / 3600
    ours = run.loop_seconds - run.loop_rate_alone * seconds
    figures.loop_seconds_per_printer_hour = ours / hours / printers
    figures.baseline_cpu_per_printer_hour = run.baseline_cpu_seconds / hours / printers
    figures.ha_cpu_percent = 100 * run.cpu_seconds / seconds
    figures.ha_rss_mib = run.rss_mib
    figures.worst_stall_ms = 1000 * max(
        (lag for at, lag in run.late if run.idle_start <= at <= run.end), default=0.0
    )
    idle = (run.idle_start, run.idle_end)
    counts = {"idle ours": 0, "idle baseline": 0, "printing ours": 0, "printing baseline": 0}
    printing_seconds = 0.0
    for station, seen, poller, history in zip(
        run.stations, run.observations, run.pollers, run.histories, strict=True
    ):
        if station.kind != kind:
            continue
        figures.cycles_ok += cycle_ok(station)
        counts["idle ours"] += len(station.requests("ours", *idle))
        counts["idle baseline"] += len(station.requests("baseline", *idle))
        if seen.print_started is None or seen.print_done is None:
            continue
        printing = (seen.print_started, seen.print_done)
        printing_seconds += seen.print_done - seen.print_started
        counts["printing ours"] += len(station.requests("ours", *printing))
        counts["printing baseline"] += len(station.requests("baseline", *printing))
        if left := left_armed_at(history):
            figures.detection_ours.append(left - seen.print_done)
        if poller.job_end_seen_at:
            figures.detection_baseline.append(poller.job_end_seen_at - seen.print_done)
        halts = [r["time"] for r in station.requests("ours", run.idle_start, run.end)
                 if r["path"].startswith(station.halt_path)]  # fmt: skip
        cool_at = station.cooled_at(seen.print_done, QUICK_OPTIONS["cool_temperature"])
        if cool_at and halts:
            figures.cool_to_halt_ours.append(halts[0] - cool_at)
        if cool_at and poller.cool_seen_at:
            figures.cool_to_halt_baseline.append(poller.cool_seen_at - cool_at)
        cuts = read_cuts(station.log("power-line.jsonl"))
        halted_at = cuts[0].get("host_halted_at") if cuts else None
        if isinstance(halted_at, float):
            cut_at = float(str(cuts[0]["time"]))
            figures.halt_to_cut.append(cut_at - halted_at - QUICK_OPTIONS["halt_delay"])
    idle_seconds = run.idle_end - run.idle_start
    figures.idle_rate_ours = per_hour(counts["idle ours"], idle_seconds, figures.printers)
    figures.idle_rate_baseline = per_hour(counts["idle baseline"], idle_seconds, figures.printers)
    if printing_seconds:
        figures.printing_rate_ours = counts["printing ours"] * 3600 / printing_seconds
        figures.printing_rate_baseline = counts["printing baseline"] * 3600 / printing_seconds
    return figures


def main() -> None:
    """Run the benchmark, print the table and write it to the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--printers", type=int, default=5, help="OctoPrint printers")
    parser.add_argument("--klipper-printers", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=300.0)
    args = parser.parse_args()
    kinds = [kind for kind, count in (("OctoPrint", args.printers),
                                      ("Klipper", args.klipper_printers)) if count]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="octoplugout-bench-") as workdir:
        measured = run(Path(workdir), args.printers, args.klipper_printers, args.idle_seconds)
        every = [figures_of(measured, kind) for kind in kinds]
    result = "\n".join(table(figures) for figures in every)
    print(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "push.md").write_text(
        "# Push sockets against the original's polling\n\n"
        "Written by `scripts/benchmark push`; one run on one machine, all on loopback, every "
        "printer managed by one Home Assistant (its event-loop and CPU figures are of them "
        "all).\n\n" + result
    )
    if any(figures.cycles_ok != figures.printers for figures in every):
        raise SystemExit("benchmark: not every printer completed its cycle correctly")


if __name__ == "__main__":
    main()
