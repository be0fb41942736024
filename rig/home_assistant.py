"""Home Assistant as a real process, set up through its own REST API as a user would."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import signal
import sqlite3
import subprocess
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import aiohttp

from .paths import ROOT, stop_process_group, venvs

USERNAME = "demo"
PASSWORD = "demo-password"

CONFIGURATION = """\
homeassistant:
  name: OctoPlugout demo
  # Without a country Home Assistant shows a repair of its own beside OctoPlugout's.
  country: NL
  unit_system: metric
  time_zone: UTC
  auth_providers:
    # No login prompt on this machine: the demo is local only.
    - type: trusted_networks
      trusted_networks:
        - 127.0.0.1
      allow_bypass_login: true
    - type: homeassistant
http:
  server_host: 127.0.0.1
  server_port: {port}
frontend:
config:
api:
websocket_api:
lovelace:
{lovelace}
recorder:
  purge_keep_days: 1
history:
logger:
  default: warning
  logs:
    custom_components.octoplugout: debug
    homeassistant.components.esphome: info
{extra}
"""


# The first Home Assistant that takes the default dashboard from a YAML file as a dashboard of
# its own, and asks (with a repair) to move the older ``mode: yaml`` there.
YAML_DASHBOARD_ENTRY = (2026, 2)
# The dashboard from ui-lovelace.yaml, as each Home Assistant takes it without a repair.
LOVELACE_YAML_MODE = "  mode: yaml"
LOVELACE_YAML_DASHBOARD = """\
  dashboards:
    lovelace:
      mode: yaml
      filename: ui-lovelace.yaml
      title: Overview
      icon: mdi:view-dashboard
      show_in_sidebar: true
      require_admin: false"""


def ha_python() -> Path:
    """The Python of the Home Assistant environment made by ``scripts/setup``."""
    return venvs() / "ha" / "bin" / "python"


def ha_version() -> tuple[int, int]:
    """The year and month of the Home Assistant in the test environment."""
    out = subprocess.run(
        [str(ha_python()), "-c", "from homeassistant.const import __version__; print(__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    year, month, *_ = out.strip().split(".")
    return int(year), int(month)


@dataclass
class HomeAssistant:
    """One Home Assistant process with OctoPlugout from this checkout."""

    config_dir: Path
    port: int
    extra_config: str = ""
    dashboard: str = ""
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    # More custom integrations to link in: name -> folder.
    extra_components: dict[str, Path] = field(default_factory=dict)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        """Home Assistant's output goes to a file in its folder."""
        self.log = self.config_dir / "home-assistant.out"

    @property
    def url(self) -> str:
        """The frontend's address."""
        return f"http://127.0.0.1:{self.port}"

    def log_size(self) -> int:
        """How much Home Assistant has written to its output so far (across restarts)."""
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        """What Home Assistant wrote to its output after ``offset``."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as output:
            output.seek(offset)
            return output.read().decode(errors="replace")

    def write_config(self) -> None:
        """The configuration, and OctoPlugout linked in as a custom integration."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(
            CONFIGURATION.format(
                port=self.port,
                extra=self.extra_config,
                lovelace=LOVELACE_YAML_DASHBOARD
                if ha_version() >= YAML_DASHBOARD_ENTRY
                else LOVELACE_YAML_MODE,
            )
        )
        (self.config_dir / "ui-lovelace.yaml").write_text(self.dashboard or "views: []\n")
        custom = self.config_dir / "custom_components"
        custom.mkdir(exist_ok=True)
        components = {"octoplugout": ROOT / "custom_components" / "octoplugout"}
        for name, folder in (components | self.extra_components).items():
            link = custom / name
            if not link.exists():
                link.symlink_to(folder)

    def start(self, timeout: float = 600.0) -> None:
        """Start Home Assistant and wait until its HTTP server answers."""
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ha_python()), "-m", "homeassistant", "--config", str(self.config_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Home Assistant exited: {self.log.read_text()[-3000:]}")
            try:
                status, _ = self._raw("GET", "/api/onboarding")
            except OSError:
                status = 0
            # The onboarding view answers until onboarding is done, and is gone (404) after it:
            # either way the server is up.
            if status in (200, 404):
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("Home Assistant did not start in time")

    def stop(self) -> None:
        """Stop Home Assistant and wait for it."""
        stop_process_group(self.process, seconds=60)
        self.process = None

    def kill(self, seconds: float = 30.0) -> None:
        """Kill Home Assistant at once (SIGKILL): what it had not saved yet is lost.

        Except the test's own login: Home Assistant writes logins a moment after their last
        use, so this waits, asking nothing, until it is on disk (or the restarted one would
        not know the test any more).
        """
        self.wait_until_written(self._login_written, "the test's login", seconds)
        stop_process_group(self.process, signal.SIGKILL)
        self.process = None

    def wait_until_written(
        self, written: Callable[[], bool], what: str, seconds: float = 30.0
    ) -> None:
        """Wait until Home Assistant has written something to its storage folder."""
        deadline = time.monotonic() + seconds
        while not written():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant did not write {what}")
            time.sleep(0.2)

    def entry_written(self, entry_id: str, options: Mapping[str, Any]) -> bool:
        """Whether the storage folder holds a config entry with these options."""
        entries = self.config_dir / ".storage" / "core.config_entries"
        if not entries.exists():
            return False
        for entry in json.loads(entries.read_text())["data"]["entries"]:
            if entry["entry_id"] == entry_id:
                return all(entry["options"].get(key) == value for key, value in options.items())
        return False

    def _login_written(self) -> bool:
        # The access token names the refresh token it was issued for.
        payload = self.token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        auth = self.config_dir / ".storage" / "auth"
        return auth.exists() and claims["iss"] in auth.read_text()

    # Talking to Home Assistant

    def _raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        form: dict[str, str] | None = None,
        seconds: float = 30.0,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urllib.parse.urlencode(form).encode()
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=seconds) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def request(self, method: str, path: str, body: Any = None, seconds: float = 30.0) -> Any:
        """A REST call that must succeed."""
        status, answer = self._raw(method, path, body, seconds=seconds)
        if status >= 400:
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        return answer

    def onboard(self) -> None:
        """Create the owner account through onboarding and keep an access token."""
        client_id = self.url + "/"
        answer = self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Demo",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        status, tokens = self._raw(
            "POST",
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": answer["auth_code"],
                "client_id": client_id,
            },
        )
        if status != 200:
            raise RuntimeError(f"no token: {tokens}")
        self.token = tokens["access_token"]
        self.request("POST", "/api/onboarding/core_config")
        self.request("POST", "/api/onboarding/analytics")
        self.request(
            "POST",
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": client_id},
        )

    def websocket(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one command over the websocket API and return its result message."""

        async def exchange() -> dict[str, Any]:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"{self.url}/api/websocket") as socket,
            ):
                await socket.receive_json()
                await socket.send_json({"type": "auth", "access_token": self.token})
                await socket.receive_json()
                await socket.send_json({"id": 1, **message})
                while True:
                    answer: dict[str, Any] = await socket.receive_json(timeout=60)
                    if answer.get("id") == 1:
                        return answer

        return asyncio.run(exchange())

    def octoplugout_log(self, lines: int = 60) -> str:
        """OctoPlugout's last log lines: what the machine saw and did, for a failed test."""
        log = self.config_dir / "home-assistant.log"
        if not log.exists():
            return "(no Home Assistant log)"
        ours = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "[custom_components.octoplugout" in line
        ]
        return "\n".join(ours[-lines:])

    def reauth_flows(self, handler: str) -> list[str]:
        """The ids of an integration's re-authentication flows in progress."""
        flows = self.websocket({"type": "config_entries/flow/progress"})["result"]
        return [
            str(flow["flow_id"])
            for flow in flows
            if flow["handler"] == handler and flow["context"].get("source") == "reauth"
        ]

    def repair_issues(self) -> list[dict[str, Any]]:
        """The repair issues Settings shows (those not ignored)."""
        issues: list[dict[str, Any]] = self.websocket({"type": "repairs/list_issues"})["result"][
            "issues"
        ]
        return [issue for issue in issues if not issue.get("dismissed_version")]

    def confirm_http_config(self) -> None:
        """Confirm the HTTP settings, which newer Home Assistant otherwise reverts after 5 min.

        Home Assistant 2026 moved them from YAML into a store where a new setting stays
        pending until the user confirms it; older versions know no such command.
        """
        answer = self.websocket({"type": "http/config/promote"})
        error = (answer.get("error") or {}).get("code")
        if not answer.get("success") and error != "unknown_command":
            raise RuntimeError(f"could not confirm the HTTP settings: {answer}")

    def flow(self, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """Run a config flow through the given answers; return its last result."""
        # The first flow of an integration waits while Home Assistant installs its
        # requirements (ESPHome's are many), so it gets minutes, not seconds.
        result: dict[str, Any] = self.request(
            "POST", "/api/config/config_entries/flow", {"handler": handler}, seconds=900
        )
        for answer in steps:
            result = self.request(
                "POST", f"/api/config/config_entries/flow/{result['flow_id']}", answer
            )
        return result

    def add_octoplugout(
        self,
        port: int,
        api_key: str,
        *,
        moonraker: bool = False,
        device: str | None = None,
        relay_entity: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Set OctoPlugout up for the host on loopback ``port``, through its config flow.

        The host is OctoPrint, or with ``moonraker`` Klipper's Moonraker (an empty key: it
        trusts loopback). With a plug ``device`` its entities are the ones the flow suggests;
        otherwise the relay is ``relay_entity``. Returns the entry's id and the plug's entities.
        """
        address = {"host": "127.0.0.1", "port": port, "path": "", "ssl": False, "verify_ssl": True}
        steps: tuple[dict[str, Any], ...]
        if moonraker:
            steps = ({"next_step_id": "moonraker"}, {**address, "api_key": api_key})
        else:
            steps = (
                {"next_step_id": "octoprint"},
                address,
                {"next_step_id": "api_key"},
                {"api_key": api_key},
            )
        result = self.flow("octoplugout", *steps)
        if result.get("step_id") != "plug":
            raise RuntimeError(f"OctoPlugout setup stopped: {result}")
        step = f"/api/config/config_entries/flow/{result['flow_id']}"
        result = self.request("POST", step, {"plug_device": device} if device else {})
        entities = _suggested(result) if device else {"relay_entity": str(relay_entity)}
        result = self.request("POST", step, entities)
        if result.get("type") != "create_entry":
            raise RuntimeError(f"OctoPlugout plug step stopped: {result}")
        return str(result["result"]["entry_id"]), entities

    def add_core_octoprint(
        self, port: int, username: str, approve: Callable[[], object], seconds: float = 120.0
    ) -> str:
        """Set Home Assistant's own OctoPrint integration up through its config flow.

        The OctoPrint is on loopback ``port``; ``approve`` allows the integration's app key
        request in OctoPrint. Returns the entry's id.
        """
        address = {"host": "127.0.0.1", "port": port, "path": "/", "ssl": False}
        result = self.flow("octoprint", {**address, "verify_ssl": True, "username": username})
        if result.get("type") != "progress":
            raise RuntimeError(f"OctoPrint integration setup stopped: {result}")
        approve()
        # The frontend follows the flow by reading it: each read moves it on (its key came,
        # then the entry is made with it).
        deadline = time.monotonic() + seconds
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        while result.get("type") in ("progress", "progress_done"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the OctoPrint integration was not set up: {result}")
            time.sleep(0.5)
            result = self.request("GET", flow)
        if result.get("type") != "create_entry":
            raise RuntimeError(f"OctoPrint integration setup stopped: {result}")
        return str(result["result"]["entry_id"])

    def add_octoplugout_for_entities(self, device: str, relay_entity: str) -> tuple[str, str]:
        """Set OctoPlugout up for a printer already in Home Assistant.

        Its entities are the ones the flow suggests from the printer's ``device``. Returns the
        entry's id and title.
        """
        result = self.flow("octoplugout", {"next_step_id": "entities"}, {"printer_device": device})
        if result.get("step_id") != "printer_entities":
            raise RuntimeError(f"OctoPlugout setup stopped: {result}")
        step = f"/api/config/config_entries/flow/{result['flow_id']}"
        for answer in (_suggested(result), {}, {"relay_entity": relay_entity}):
            result = self.request("POST", step, answer)
        if result.get("type") != "create_entry":
            raise RuntimeError(f"OctoPlugout setup stopped: {result}")
        return str(result["result"]["entry_id"]), str(result["title"])

    def remove_entry(self, entry_id: str) -> None:
        """Delete a config entry."""
        self.request("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    def device_of(self, entity_id: str) -> str:
        """The device an entity belongs to."""
        answer = self.request(
            "POST", "/api/template", {"template": f"{{{{ device_id('{entity_id}') }}}}"}
        )
        if not isinstance(answer, str) or not answer.strip() or answer.strip() == "None":
            raise RuntimeError(f"{entity_id} has no device")
        return answer.strip()

    def set_options(self, entry_id: str, options: dict[str, Any]) -> None:
        """Change an entry's options through its options flow (the entry reloads)."""
        flow = self.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        result = self.request(
            "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", options
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"options refused: {result}")

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """An entity's state object, or None when it does not exist."""
        status, answer = self._raw("GET", f"/api/states/{entity_id}")
        return answer if status == 200 else None

    def state_of(self, entity_id: str) -> str | None:
        """An entity's state, or None."""
        state = self.state(entity_id)
        return None if state is None else str(state["state"])

    def wait_for_state(self, entity_id: str, wanted: str | set[str], seconds: float = 120.0) -> str:
        """Wait until an entity shows a wanted state; return it."""
        wanted_states = {wanted} if isinstance(wanted, str) else wanted
        deadline = time.monotonic() + seconds
        seen: str | None = None
        while time.monotonic() < deadline:
            seen = self.state_of(entity_id)
            if seen in wanted_states:
                return seen
            time.sleep(0.25)
        raise TimeoutError(f"{entity_id} is {seen}, not {wanted_states}")

    def call(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        """Call a Home Assistant action."""
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    def recorded_events(self, event_type: str, since: float) -> list[dict[str, Any]]:
        """The data of each event of a type the recorder wrote since a time, oldest first.

        The recorder writes in batches: an event fired a moment ago may not be there yet.
        """
        database = self.config_dir / "home-assistant_v2.db"
        if not database.exists():
            return []
        query = (
            "SELECT event_data.shared_data FROM events"
            " JOIN event_types ON events.event_type_id = event_types.event_type_id"
            " LEFT JOIN event_data ON events.data_id = event_data.data_id"
            " WHERE event_types.event_type = ? AND events.time_fired_ts >= ?"
            " ORDER BY events.time_fired_ts"
        )
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            rows = db.execute(query, (event_type, since)).fetchall()
        return [json.loads(data) if data else {} for (data,) in rows]

    def entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of an integration."""
        answer: list[dict[str, Any]] = self.request(
            "GET", f"/api/config/config_entries/entry?domain={domain}"
        )
        return answer


def _suggested(result: dict[str, Any]) -> dict[str, str]:
    """The values a flow's form suggests (or defaults to)."""
    found: dict[str, str] = {}
    for field_schema in result.get("data_schema", []):
        value = (field_schema.get("description") or {}).get("suggested_value")
        value = value or field_schema.get("default")
        if value:
            found[field_schema["name"]] = value
    return found


def template_relays(relays: Mapping[str, Path]) -> str:
    """Configuration for template switches that stand in for plugs' relays.

    ``switch.<name>`` writes "on" or "off" to its file, which a power line reads, and keeps its
    state in ``input_boolean.<name>``.
    """
    booleans = "".join(f"\n  {name}:\n    initial: true" for name in relays)
    commands = "".join(
        f"\n  {name}_on: \"sh -c 'echo on > {file}'\"\n  {name}_off: \"sh -c 'echo off > {file}'\""
        for name, file in relays.items()
    )
    # The template integration's own switches: Home Assistant 2026 no longer knows the
    # legacy "switch: platform: template".
    switches = "".join(
        f"""
      - name: {name}
        unique_id: {name}
        state: "{{{{ is_state('input_boolean.{name}', 'on') }}}}"
        turn_on:
          - action: shell_command.{name}_on
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.{name}}}
        turn_off:
          - action: shell_command.{name}_off
          - action: input_boolean.turn_off
            target: {{entity_id: input_boolean.{name}}}"""
        for name in relays
    )
    return f"""
input_boolean:{booleans}
shell_command:{commands}
template:
  - switch:{switches}
"""
