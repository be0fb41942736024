"""Fixtures shared by the OctoPlugout tests."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
import logging
import re
import subprocess
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
import pytest_socket
from syrupy.assertion import SnapshotAssertion

# Imported before the hass fixture starts, so that HA finds this custom integration.
import custom_components.octoplugout
from custom_components.octoplugout.const import (
    CONF_BUTTON,
    CONF_HOST_TYPE,
    CONF_LED,
    CONF_LOCK,
    CONF_POWER_UP,
    CONF_RELAY,
    DOMAIN,
    HOST_MOONRAKER,
)
from custom_components.octoplugout.host import ServerAddress
from custom_components.octoplugout.moonraker import MoonrakerConnectionError
from custom_components.octoplugout.octoprint import (
    CurrentUser,
    OctoPrintConnectionError,
    PrinterSnapshot,
)
from custom_components.octoplugout.options import OPTION_DEFAULTS
from rig.rig import Rig

from .common import (
    API_KEY,
    BUTTON,
    HOST,
    IDLE,
    INSTANCE,
    KLIPPER_ADDRESS,
    KLIPPER_HOST,
    KLIPPER_IDLE,
    LED,
    LOCK,
    POWER_UP,
    RELAY,
    UUID,
    FakePlug,
)
from .ha_reports import ReportCollector, reports_in_log
from .rig_steps import FAULT_TALLY, FaultTally, bring_to_idle

# The fixtures that start real processes; a test that uses one of them is marked ``rig``.
PROCESS_FIXTURES = frozenset(
    {"rig", "octoprint", "klipper", "klipper_rig", "firmware", "broker", "esphome_copy"}
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--screenshots DIR``: where the dashboard test saves the README's screenshots."""
    parser.addoption(
        "--screenshots",
        default=None,
        help="save the dashboard screenshots here (scripts/screenshots uses docs/screenshots)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a real process, so that it can be chosen or left out."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.rig)


@pytest.fixture(autouse=True)
def _no_process_outside_the_rig(request: pytest.FixtureRequest) -> Generator[None]:
    """A test not marked ``rig`` that starts a process fails, so the fast loop stays fast."""
    if request.node.get_closest_marker("rig") is not None:
        yield
        return

    def refuse(popen: subprocess.Popen[Any], command: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a process ({command!r}): "
            "mark it rig (or use one of the rig's fixtures)"
        )

    with patch.object(subprocess.Popen, "_execute_child", refuse):
        yield


@pytest.fixture(autouse=True)
def _home_assistant_reports_nothing_about_us(request: pytest.FixtureRequest) -> Generator[None]:
    """Home Assistant reporting wrong API use by OctoPlugout, or an error about it, fails."""
    expected = [
        re.compile(pattern)
        for marker in request.node.iter_markers("expected_error")
        for pattern in marker.args
    ]
    collector = ReportCollector(expected)
    root = logging.getLogger()
    root.addHandler(collector)
    rig: Rig | None = None
    if "rig" in request.fixturenames:
        rig = request.getfixturevalue("rig")
        rig_log_start = rig.ha.log_size()
    yield
    root.removeHandler(collector)
    found = collector.found
    if rig is not None:
        found += reports_in_log(rig.ha.log_since(rig_log_start), expected)
    if found:
        pytest.fail(
            "Home Assistant reported about OctoPlugout:\n" + "\n---\n".join(found),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> Generator[None]:
    """Let Home Assistant load custom integrations in every test."""
    return


@pytest.fixture
async def mock_setup_entry(hass: HomeAssistant) -> AsyncGenerator[MagicMock]:
    """Keep config flow tests from setting the entry up."""
    with (
        patch("custom_components.octoplugout.async_setup_entry", return_value=True) as setup_entry,
        patch("custom_components.octoplugout.async_unload_entry", return_value=True),
    ):
        yield setup_entry
        # Unloaded while the patch holds: these entries never ran the real set-up.
        for entry in hass.config_entries.async_entries(DOMAIN):
            await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format, beside the tests."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def printer_snapshot() -> PrinterSnapshot:
    """What OctoPrint answers: an idle, cold, connected printer."""
    return IDLE


@pytest.fixture
def mock_octoprint(printer_snapshot: PrinterSnapshot) -> Generator[MagicMock]:
    """The OctoPrint client, mocked at the library boundary."""
    with patch(
        "custom_components.octoplugout.octoprint_host.OctoPrintClient", autospec=True
    ) as client_class:
        client = client_class.return_value
        client.address = ServerAddress(HOST, 80)
        client.async_get_snapshot.return_value = printer_snapshot
        client.async_get_current_user.return_value = CurrentUser(
            "admin", frozenset({"SYSTEM", "CONTROL", "STATUS"})
        )
        client.async_get_uuid.return_value = UUID
        client.async_can_halt_host.return_value = True
        client.async_app_keys_supported.return_value = True
        client.async_send_message.return_value = True
        client.async_set_heaters_off.return_value = True
        client.async_shutdown_host.return_value = None
        client.async_get_version.return_value = "1.11.8"
        # Polling only; the push socket has tests of its own.
        client.async_passive_login.side_effect = OctoPrintConnectionError("no push socket")
        yield client


@pytest.fixture
def mock_moonraker() -> Generator[MagicMock]:
    """The Moonraker client, mocked at the library boundary; it keeps the key it is given."""
    with patch(
        "custom_components.octoplugout.moonraker_host.MoonrakerClient", autospec=True
    ) as client_class:
        client = client_class.return_value

        def made(_: object, address: ServerAddress, api_key: str | None, **__: object) -> Any:
            client.address, client.api_key = address, api_key or None
            return client

        client_class.side_effect = made
        client.async_check_access.return_value = None
        client.async_in_container.return_value = False
        client.async_sudo_access.return_value = True
        client.async_instance_id.return_value = INSTANCE
        client.async_list_objects.return_value = list(KLIPPER_IDLE)
        client.async_query.return_value = KLIPPER_IDLE
        client.async_run_gcode.return_value = True
        # Polling only; the websocket has tests of its own.
        client.async_socket.side_effect = MoonrakerConnectionError("no websocket")
        yield client


@pytest.fixture
def moonraker_entry() -> MockConfigEntry:
    """An entry for one plug and one Moonraker that trusts Home Assistant."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"OctoPlugout {KLIPPER_HOST}",
        unique_id=INSTANCE,
        data={
            **KLIPPER_ADDRESS,
            CONF_HOST_TYPE: HOST_MOONRAKER,
            CONF_API_KEY: "",
            CONF_RELAY: RELAY,
        },
        options=dict(OPTION_DEFAULTS),
    )


@pytest.fixture
def plug(hass: HomeAssistant) -> FakePlug:
    """An OctoPlugout ESPHome plug as Home Assistant sees it: relay, button, LED, lock."""
    return FakePlug(hass)


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """An entry for one plug and one OctoPrint."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"OctoPlugout {HOST}",
        unique_id=UUID,
        data={
            CONF_HOST: HOST,
            CONF_PORT: 80,
            CONF_PATH: "",
            CONF_SSL: False,
            CONF_VERIFY_SSL: True,
            CONF_API_KEY: API_KEY,
            CONF_RELAY: RELAY,
            CONF_BUTTON: BUTTON,
            CONF_LED: LED,
            CONF_LOCK: LOCK,
            CONF_POWER_UP: POWER_UP,
        },
        options=dict(OPTION_DEFAULTS),
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> MockConfigEntry:
    """OctoPlugout set up with a powered plug and an idle OctoPrint."""
    await plug.async_setup()
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return mock_config_entry


@pytest.fixture
def reloads(init_integration: MockConfigEntry) -> Generator[MagicMock]:
    """Counts the set-ups of OctoPlugout after the first one: each is a reload."""
    with patch(
        "custom_components.octoplugout.async_setup_entry",
        wraps=custom_components.octoplugout.async_setup_entry,
    ) as setups:
        yield setups


@pytest.fixture(scope="session")
def fault_tally(pytestconfig: pytest.Config) -> FaultTally:
    """What the tests on the rig tried and what came of it, for the run's summary line."""
    return pytestconfig.stash.setdefault(FAULT_TALLY, FaultTally())


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory, fault_tally: FaultTally) -> Generator[Rig]:
    """One real rig for the whole run; no cut during a job, no process left behind."""
    # Home Assistant's test plugin blocks sockets between tests; the rig lives longer.
    pytest_socket.enable_socket()
    rig = Rig(tmp_path_factory.mktemp("rig"))
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
        fault_tally.cuts_during_job = sum(1 for cut in rig.power_cuts() if cut["job"])
        fault_tally.processes_left = rig.processes_left()
    assert fault_tally.cuts_during_job == 0
    assert fault_tally.processes_left == 0


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A parallel worker hands what its rig met to the main process."""
    tally = session.config.stash.get(FAULT_TALLY, None)
    workeroutput = getattr(session.config, "workeroutput", None)
    if tally is not None and workeroutput is not None:
        workeroutput["fault_tally"] = tally.as_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Add up what each parallel worker's rig met (called by pytest-xdist)."""
    worker_tally = getattr(node, "workeroutput", {}).get("fault_tally")
    if worker_tally is not None:
        node.config.stash.setdefault(FAULT_TALLY, FaultTally()).add(worker_tally)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on the faults the rigs met, when a rig ran."""
    tally = terminalreporter.config.stash.get(FAULT_TALLY, None)
    if tally is not None and tally.processes_left is not None:
        terminalreporter.write_line(tally.summary())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test on the rig reports what OctoPlugout saw and did just before."""
    report = yield
    rig = getattr(item, "funcargs", {}).get("rig")
    if report.failed and isinstance(rig, Rig):
        report.sections.append(("OctoPlugout on the rig", rig.story()))
    return report


@pytest.fixture
def idle(rig: Rig) -> Rig:
    """The rig powered, OctoPrint up and OctoPlugout idle."""
    return bring_to_idle(rig)
