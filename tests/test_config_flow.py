"""The config flow: discovery, address, both ways to get a key, the plug; reauth, reconfigure."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from typing import Any
from unittest.mock import MagicMock, patch

from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF
from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.config_flow import parse_address
from custom_components.octoplugout.const import (
    CONF_BUTTON,
    CONF_HOST_TYPE,
    CONF_LED,
    CONF_LOCK,
    CONF_POWER_UP,
    CONF_RELAY,
    DOMAIN,
    HOST_OCTOPRINT,
)
from custom_components.octoplugout.octoprint import (
    AppKeyDeniedError,
    CurrentUser,
    OctoPrintAuthError,
    OctoPrintCertificateError,
    OctoPrintConnectionError,
    OctoPrintResponseError,
)
from custom_components.octoplugout.options import OPTION_DEFAULTS

from .common import API_KEY, BUTTON, HOST, LED, LOCK, RELAY, UUID

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

ADDRESS = {CONF_HOST: HOST, CONF_PORT: 80, CONF_PATH: "", CONF_SSL: False, CONF_VERIFY_SSL: True}
OCTOPRINT = {CONF_HOST_TYPE: HOST_OCTOPRINT}
PLUG = {CONF_RELAY: RELAY, CONF_BUTTON: BUTTON, CONF_LED: LED, CONF_LOCK: LOCK}
ZEROCONF = ZeroconfServiceInfo(
    ip_address=ip_address("192.0.2.10"),
    ip_addresses=[ip_address("192.0.2.10")],
    hostname="octopi.local.",
    name="OctoPrint instance on octopi._octoprint._tcp.local.",
    port=80,
    properties={"path": "/", "uuid": UUID.upper(), "version": "1.11.8"},
    type="_octoprint._tcp.local.",
)


async def open_form(hass: HomeAssistant, host_type: str = "octoprint") -> dict[str, Any]:
    """Start a flow by hand and choose what runs the printer: its address form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["octoprint", "moonraker", "entities"]
    result = await choose(hass, dict(result), host_type)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == host_type
    return result


async def start_user_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await open_form(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {**ADDRESS})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "auth"
    return dict(result)


async def choose(hass: HomeAssistant, result: dict[str, Any], step: str) -> dict[str, Any]:
    return dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})
    )


async def approve_app_key(
    hass: HomeAssistant,
    mock_octoprint: MagicMock,
    result: dict[str, Any],
    outcome: str | Exception,
    username: str | None = None,
) -> dict[str, Any]:
    """Submit the app-key form, let the user decide in OctoPrint, return where the flow is."""
    decided = asyncio.Event()

    async def decision(*_: object) -> str:
        await decided.wait()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    mock_octoprint.async_wait_for_app_key.side_effect = decision
    flow_id = result["flow_id"]
    form = {CONF_USERNAME: username} if username else {}
    result = dict(await hass.config_entries.flow.async_configure(flow_id, form))
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "wait_for_app_key"
    decided.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    return dict(await hass.config_entries.flow.async_configure(flow_id))


async def choose_plug(
    hass: HomeAssistant,
    result: dict[str, Any],
    entities: dict[str, str],
    device_id: str | None = None,
) -> dict[str, Any]:
    """Pass the plug step (optionally with a device), then submit the plug's entities."""
    assert result["step_id"] == "plug"
    device = {"plug_device": device_id} if device_id else {}
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], device))
    assert result["step_id"] == "plug_entities"
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"], entities))


async def test_full_flow_with_a_pasted_key(hass: HomeAssistant, mock_octoprint: MagicMock) -> None:
    result = await choose(hass, await start_user_flow(hass), "api_key")
    assert result["step_id"] == "api_key"
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_API_KEY: f" {API_KEY} "}
        )
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "plug"
    result = await choose_plug(hass, result, PLUG)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"OctoPlugout {HOST}"
    assert result["data"] == {**ADDRESS, **OCTOPRINT, CONF_API_KEY: API_KEY, **PLUG}
    assert result["options"] == OPTION_DEFAULTS
    assert result["result"].unique_id == UUID


async def test_full_flow_with_an_app_key(hass: HomeAssistant, mock_octoprint: MagicMock) -> None:
    result = await choose(hass, await start_user_flow(hass), "app_key")
    assert result["step_id"] == "app_key"
    result = await approve_app_key(hass, mock_octoprint, result, "APPROVED", "admin")
    assert result["step_id"] == "plug"
    mock_octoprint.async_wait_for_app_key.assert_called_once_with("OctoPlugout", "admin")
    result = await choose_plug(hass, result, {CONF_RELAY: RELAY})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {**ADDRESS, **OCTOPRINT, CONF_API_KEY: "APPROVED", CONF_RELAY: RELAY}


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (AppKeyDeniedError("denied"), "app_key_denied"),
        (OctoPrintConnectionError("gone"), "cannot_connect"),
    ],
)
async def test_app_key_failures_fall_back_to_pasting(
    hass: HomeAssistant, mock_octoprint: MagicMock, failure: Exception, error: str
) -> None:
    result = await choose(hass, await start_user_flow(hass), "app_key")
    result = await approve_app_key(hass, mock_octoprint, result, failure)
    assert result["step_id"] == "api_key"
    assert result["errors"] == {"base": error}
    mock_octoprint.async_wait_for_app_key.assert_called_once_with("OctoPlugout", None)
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    assert result["step_id"] == "plug"


async def test_app_key_timeout(hass: HomeAssistant, mock_octoprint: MagicMock) -> None:
    never = asyncio.Event()

    async def wait_forever(*_: object) -> str:
        await never.wait()
        return "never"

    mock_octoprint.async_wait_for_app_key.side_effect = wait_forever
    with patch("custom_components.octoplugout.config_flow.APP_KEY_TIMEOUT", 0.01):
        result = await choose(hass, await start_user_flow(hass), "app_key")
        result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
        await hass.async_block_till_done(wait_background_tasks=True)
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"]))
    assert result["errors"] == {"base": "app_key_timeout"}


async def test_app_key_without_system_permission(
    hass: HomeAssistant, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_get_current_user.return_value = CurrentUser(
        "viewer", frozenset({"STATUS"})
    )
    result = await choose(hass, await start_user_flow(hass), "app_key")
    result = await approve_app_key(hass, mock_octoprint, result, "VIEWER")
    assert result["step_id"] == "api_key"
    assert result["errors"] == {"base": "missing_permissions"}
    assert result["description_placeholders"]["permissions"] == "Control, System"


@pytest.mark.parametrize(
    ("permissions", "named"),
    [
        (set(), "Status, Control, System"),
        ({"STATUS"}, "Control, System"),
        ({"CONTROL", "SYSTEM"}, "Status"),
        ({"STATUS", "CONTROL"}, "System"),
    ],
)
async def test_every_missing_permission_is_named_at_once(
    hass: HomeAssistant, mock_octoprint: MagicMock, permissions: set[str], named: str
) -> None:
    user = CurrentUser("someone", frozenset(permissions))
    mock_octoprint.async_get_current_user.return_value = user
    result = await choose(hass, await start_user_flow(hass), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "x"})
    )
    assert result["errors"] == {"base": "missing_permissions"}
    assert result["description_placeholders"]["permissions"] == named


async def test_an_octoprint_without_a_shutdown_command_is_refused(
    hass: HomeAssistant, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_can_halt_host.return_value = False
    result = await choose(hass, await start_user_flow(hass), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "x"})
    )
    assert result["errors"] == {"base": "no_shutdown_command"}
    mock_octoprint.async_can_halt_host.return_value = True
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "x"})
    )
    assert result["step_id"] == "plug"


@pytest.mark.parametrize(
    ("failure", "user", "error"),
    [
        (OctoPrintAuthError("no"), None, "invalid_auth"),
        (OctoPrintConnectionError("gone"), None, "cannot_connect"),
        (OctoPrintResponseError("html"), None, "not_octoprint"),
        pytest.param(
            RuntimeError("boom"),
            None,
            "unknown",
            marks=pytest.mark.expected_error("Unexpected error during setup"),
        ),
        (None, CurrentUser("operator", frozenset({"STATUS", "CONTROL"})), "missing_permissions"),
        (None, CurrentUser("operator", frozenset({"STATUS", "SYSTEM"})), "missing_permissions"),
        (None, CurrentUser("operator", frozenset({"CONTROL", "SYSTEM"})), "missing_permissions"),
    ],
)
async def test_pasted_key_errors(
    hass: HomeAssistant,
    mock_octoprint: MagicMock,
    failure: Exception | None,
    user: CurrentUser | None,
    error: str,
) -> None:
    result = await choose(hass, await start_user_flow(hass), "api_key")
    good_user = mock_octoprint.async_get_current_user.return_value
    if failure:
        mock_octoprint.async_get_current_user.side_effect = failure
    if user:
        mock_octoprint.async_get_current_user.return_value = user
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "x"})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    mock_octoprint.async_get_current_user.side_effect = None
    mock_octoprint.async_get_current_user.return_value = good_user
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "y"})
    )
    assert result["step_id"] == "plug"


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("", "invalid_host"),
        ("octo pi", "invalid_host"),
        ("http://user:secret@octopi.local/", "invalid_host"),
        ("ftp://octopi.local", "invalid_host"),
        ("http://", "invalid_host"),
        ("octopi.local/path", "invalid_host"),
        ("ünïcode.local", "invalid_host"),
        ("a" * 300, "invalid_host"),
        ("octopi.local:99999", "invalid_host"),
    ],
)
async def test_bad_addresses_get_a_form_error(
    hass: HomeAssistant, mock_octoprint: MagicMock, host: str, error: str
) -> None:
    result = await open_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**ADDRESS, CONF_HOST: host}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: error}
    mock_octoprint.async_get_uuid.assert_not_called()


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (OctoPrintConnectionError("refused"), "cannot_connect"),
        (OctoPrintCertificateError("self-signed"), "invalid_certificate"),
        (OctoPrintResponseError("not octoprint"), "not_octoprint"),
    ],
)
async def test_unreachable_or_not_octoprint(
    hass: HomeAssistant, mock_octoprint: MagicMock, failure: Exception, error: str
) -> None:
    mock_octoprint.async_get_uuid.side_effect = failure
    result = await open_form(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], ADDRESS)
    assert result["errors"] == {"base": error}
    mock_octoprint.async_get_uuid.side_effect = None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], ADDRESS)
    assert result["type"] is FlowResultType.MENU


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {CONF_HOST: "http://octopi.local:5000/octoprint/"},
            {CONF_HOST: "octopi.local", CONF_PORT: 5000, CONF_PATH: "/octoprint", CONF_SSL: False},
        ),
        (
            {CONF_HOST: "https://OctoPi.Local"},
            {CONF_HOST: "octopi.local", CONF_PORT: 443, CONF_SSL: True},
        ),
        ({CONF_HOST: "https://octopi.local", CONF_PORT: 8443}, {CONF_PORT: 8443, CONF_SSL: True}),
        ({CONF_HOST: "[fe80::1]"}, {CONF_HOST: "fe80::1", CONF_PORT: 80}),
        ({CONF_HOST: "http://[::1]:8080"}, {CONF_HOST: "::1", CONF_PORT: 8080}),
        (
            {CONF_HOST: "192.168.1.20", CONF_PATH: "op/"},
            {CONF_HOST: "192.168.1.20", CONF_PATH: "/op"},
        ),
        ({CONF_HOST: " octopi ", CONF_PORT: 80.0}, {CONF_HOST: "octopi", CONF_PORT: 80}),
    ],
)
def test_parse_address(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = parse_address({CONF_PORT: None, **fields})
    assert parsed.items() >= expected.items()
    assert isinstance(parsed[CONF_PORT], int)


# What the frontend submits: every field, the form's defaults included (Port 80 too).
FORM_DEFAULTS = {CONF_PORT: 80, CONF_PATH: "", CONF_SSL: False, CONF_VERIFY_SSL: True}


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("https://printer.example/octoprint/", (443, "/octoprint", True)),
        ("https://printer.example", (443, "", True)),
        ("https://printer.example:8443/op", (8443, "/op", True)),
        ("http://printer.example/octoprint/", (80, "/octoprint", False)),
        ("http://printer.example:5000", (5000, "", False)),
        ("printer.example", (80, "", False)),
    ],
)
async def test_a_pasted_address_as_the_form_submits_it(
    hass: HomeAssistant, mock_octoprint: MagicMock, pasted: str, expected: tuple[int, str, bool]
) -> None:
    result = await open_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, CONF_HOST: pasted}
    )
    assert result["type"] is FlowResultType.MENU
    result = await choose(hass, dict(result), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    result = await choose_plug(hass, result, {CONF_RELAY: RELAY})
    data = result["data"]
    assert (data[CONF_HOST], data[CONF_PORT], data[CONF_PATH], data[CONF_SSL]) == (
        "printer.example",
        *expected,
    )


async def test_same_octoprint_twice_is_refused(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await open_form(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], ADDRESS)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_without_the_discovery_plugin_the_address_identifies_octoprint(
    hass: HomeAssistant, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_get_uuid.return_value = None
    result = await choose(hass, await start_user_flow(hass), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    result = await choose_plug(hass, result, {CONF_RELAY: RELAY})
    assert result["result"].unique_id == "http://octopi.local"


@pytest.mark.parametrize(
    ("key", "error"), [(CONF_LOCK, "lock_is_relay"), (CONF_POWER_UP, "power_up_is_relay")]
)
async def test_the_plugs_other_switches_cannot_be_the_relay(
    hass: HomeAssistant, mock_octoprint: MagicMock, key: str, error: str
) -> None:
    result = await choose(hass, await start_user_flow(hass), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    result = await choose_plug(hass, result, {CONF_RELAY: RELAY, key: RELAY})
    assert result["errors"] == {key: error}


async def test_zeroconf_discovery(hass: HomeAssistant, mock_octoprint: MagicMock) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=ZEROCONF
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.MENU
    result = await choose(hass, dict(result), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    result = await choose_plug(hass, result, {CONF_RELAY: RELAY})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == UUID
    assert result["data"][CONF_HOST] == "192.0.2.10"
    assert result["data"][CONF_PATH] == ""


async def test_zeroconf_updates_a_known_octoprint(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=ZEROCONF
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_HOST] == "192.0.2.10"


async def test_zeroconf_without_uuid_is_ignored(hass: HomeAssistant) -> None:
    info = ZeroconfServiceInfo(
        ip_address=ZEROCONF.ip_address,
        ip_addresses=ZEROCONF.ip_addresses,
        hostname=ZEROCONF.hostname,
        name=ZEROCONF.name,
        port=80,
        properties={},
        type=ZEROCONF.type,
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_octoprint"


async def test_reauth_with_a_pasted_key(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    result = await choose(hass, dict(result), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: "NEWKEY"})
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_API_KEY] == "NEWKEY"
    assert mock_config_entry.data[CONF_RELAY] == RELAY


async def test_reauth_with_an_app_key(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await choose(hass, dict(result), "app_key")
    result = await approve_app_key(hass, mock_octoprint, result, "APPROVED")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_API_KEY] == "APPROVED"


async def test_reconfigure(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **ADDRESS,
            CONF_HOST: "http://octopi.lan:8080/",
            CONF_RELAY: "switch.other",
            CONF_LED: LED,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data == {
        **ADDRESS,
        CONF_HOST: "octopi.lan",
        CONF_PORT: 8080,
        CONF_API_KEY: API_KEY,
        CONF_RELAY: "switch.other",
        CONF_LED: LED,
        CONF_BUTTON: None,
        CONF_LOCK: None,
        CONF_POWER_UP: None,
        "power_entity": None,
    }


async def test_reconfigure_with_a_new_key_checks_it_then_keeps_it(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    good_user = mock_octoprint.async_get_current_user.return_value
    mock_octoprint.async_get_current_user.return_value = CurrentUser(
        "operator", frozenset({"STATUS"})
    )
    answer = {**ADDRESS, CONF_RELAY: RELAY, CONF_API_KEY: " LIMITED "}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["errors"] == {"base": "missing_permissions"}
    assert result["description_placeholders"] == {"permissions": "Control, System"}
    assert mock_config_entry.data[CONF_API_KEY] == API_KEY
    mock_octoprint.async_get_current_user.return_value = good_user
    answer[CONF_API_KEY] = " ADMIN "
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data[CONF_API_KEY] == "ADMIN"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({CONF_HOST: "bad host"}, {CONF_HOST: "invalid_host"}),
        ({CONF_LOCK: RELAY}, {CONF_LOCK: "lock_is_relay"}),
        ({CONF_POWER_UP: RELAY}, {CONF_POWER_UP: "power_up_is_relay"}),
    ],
)
async def test_reconfigure_errors(
    hass: HomeAssistant,
    mock_octoprint: MagicMock,
    mock_config_entry: MockConfigEntry,
    change: dict[str, str],
    error: dict[str, str],
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**ADDRESS, CONF_RELAY: RELAY, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == error


async def test_reconfigure_to_another_octoprint_is_refused(
    hass: HomeAssistant, mock_octoprint: MagicMock, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    mock_octoprint.async_get_uuid.return_value = "another-uuid"
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**ADDRESS, CONF_RELAY: RELAY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_octoprint"


async def test_options(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    options = {**OPTION_DEFAULTS, "halt_delay": 60, "startup_mode": "always_on"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == options


async def test_options_suggest_the_original_root_topic(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert defaults["mqtt"] is False
    assert defaults["mqtt_root"] == "octoplugout/octoplugout_octopi_local"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"cool_temperature": 200}, {"cool_temperature": "cool_above_arm"}),
        ({"shutdown_timeout": 5}, {"shutdown_timeout": "shutdown_timeout_too_short"}),
        ({"mqtt": True, "mqtt_root": ""}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": "printers/#"}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": "printers/+/plug"}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": "/printers"}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": "printers/"}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": " printers"}, {"mqtt_root": "invalid_topic"}),
        ({"mqtt": True, "mqtt_root": "p" * 201}, {"mqtt_root": "invalid_topic"}),
        # A valid root, but no MQTT integration to publish through.
        ({"mqtt": True, "mqtt_root": "printers/prusa"}, {"mqtt": "mqtt_not_set_up"}),
    ],
)
async def test_option_errors(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    change: dict[str, object],
    error: dict[str, str],
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**OPTION_DEFAULTS, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == error


@pytest.mark.parametrize(
    "change",
    [
        {"halt_delay": -1},
        {"min_job_time": 10**12},
        {"startup_mode": "sometimes"},
        {"arm_temperature": "hot"},
    ],
)
async def test_out_of_range_options_are_rejected(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, change: dict[str, object]
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    with pytest.raises(InvalidData, match="Schema validation failed"):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {**OPTION_DEFAULTS, **change}
        )
    assert mock_config_entry.options == OPTION_DEFAULTS


async def test_an_octoplugout_plug_fills_in_its_entities(
    hass: HomeAssistant,
    mock_octoprint: MagicMock,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    esphome_entry = MockConfigEntry(domain="esphome", title="Printer plug")
    esphome_entry.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=esphome_entry.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "02:00:00:0c:70:01")},
        name="Printer plug",
    )
    for domain, name, device_class in [
        ("switch", "Relay", "outlet"),
        ("switch", "Power lock", None),
        ("switch", "Stay off at power-up", None),
        ("event", "Button", "button"),
        ("select", "LED pattern", None),
        ("binary_sensor", "Failsafe", "problem"),
        ("sensor", "Power", "power"),
    ]:
        entity_registry.async_get_or_create(
            domain,
            "esphome",
            f"plug-{domain}-{name}",
            config_entry=esphome_entry,
            device_id=device.id,
            original_name=name,
            original_device_class=device_class,
            suggested_object_id=f"printer_plug_{name}",
        )
    result = await choose(hass, await start_user_flow(hass), "api_key")
    result = dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_API_KEY: API_KEY})
    )
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"plug_device": device.id}
        )
    )
    assert result["step_id"] == "plug_entities"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    defaults = {
        str(key): key.default() for key in result["data_schema"].schema if callable(key.default)
    }
    assert {**suggested, **defaults} == {
        CONF_RELAY: "switch.printer_plug_relay",
        CONF_LOCK: "switch.printer_plug_power_lock",
        CONF_POWER_UP: "switch.printer_plug_stay_off_at_power_up",
        CONF_BUTTON: "event.printer_plug_button",
        CONF_LED: "select.printer_plug_led_pattern",
        "power_entity": "sensor.printer_plug_power",
    }
