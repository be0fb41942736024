"""Setting OctoPlugout up for a Klipper printer: Moonraker's address, its key, its errors."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any
from unittest.mock import MagicMock

from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import CONF_HOST_TYPE, CONF_RELAY, DOMAIN, HOST_MOONRAKER
from custom_components.octoplugout.moonraker import (
    MoonrakerAuthError,
    MoonrakerConnectionError,
    MoonrakerResponseError,
)

from .common import INSTANCE, KLIPPER_ADDRESS as ADDRESS, KLIPPER_HOST, RELAY

ZEROCONF = ZeroconfServiceInfo(
    ip_address=ip_address("192.0.2.20"),
    ip_addresses=[ip_address("192.0.2.20")],
    hostname="mainsailos.local.",
    name="Moonraker-c31b4906 @ mainsailos._moonraker._tcp.local.",
    port=7125,
    properties={"uuid": INSTANCE, "https_port": "", "version": "v0.11.0", "route_prefix": ""},
    type="_moonraker._tcp.local.",
)


async def open_moonraker_form(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "moonraker"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "moonraker"
    return dict(result)


async def submit(hass: HomeAssistant, result: dict[str, Any], answer: dict[str, Any]) -> Any:
    return await hass.config_entries.flow.async_configure(result["flow_id"], answer)


async def choose_relay(hass: HomeAssistant, result: dict[str, Any]) -> dict[str, Any]:
    assert result["step_id"] == "plug"
    result = dict(await submit(hass, result, {}))
    assert result["step_id"] == "plug_entities"
    return dict(await submit(hass, result, {CONF_RELAY: RELAY}))


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_moonraker_that_trusts_home_assistant_needs_no_key(
    hass: HomeAssistant, mock_moonraker: MagicMock
) -> None:
    result = await open_moonraker_form(hass)
    # Moonraker's own port is what the form offers.
    port_field = next(key for key in result["data_schema"].schema if key == CONF_PORT)
    assert port_field.default() == 7125
    result = dict(await submit(hass, result, ADDRESS))
    result = await choose_relay(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"OctoPlugout {KLIPPER_HOST}"
    assert result["data"] == {
        **ADDRESS,
        CONF_HOST_TYPE: HOST_MOONRAKER,
        CONF_API_KEY: "",
        CONF_RELAY: RELAY,
    }
    assert result["result"].unique_id == INSTANCE
    assert mock_moonraker.api_key is None
    mock_moonraker.async_sudo_access.assert_awaited()


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_key_is_checked_and_kept(hass: HomeAssistant, mock_moonraker: MagicMock) -> None:
    result = await open_moonraker_form(hass)
    result = dict(await submit(hass, result, {**ADDRESS, CONF_API_KEY: " secret "}))
    assert mock_moonraker.api_key == "secret"
    result = await choose_relay(hass, result)
    assert result["data"][CONF_API_KEY] == "secret"


@pytest.mark.parametrize(
    ("failure", "key", "error"),
    [
        ({"async_check_access": MoonrakerConnectionError("")}, "", "moonraker_cannot_connect"),
        ({"async_check_access": MoonrakerResponseError("a web page")}, "", "not_moonraker"),
        ({"async_check_access": MoonrakerAuthError("401")}, "", "moonraker_key_needed"),
        ({"async_check_access": MoonrakerAuthError("401")}, "wrong", "moonraker_invalid_auth"),
        ({"async_in_container": True}, "", "moonraker_in_container"),
        ({"async_sudo_access": False}, "", "moonraker_no_sudo"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("mock_setup_entry")
async def test_every_error_is_said_and_the_form_stays(
    hass: HomeAssistant, mock_moonraker: MagicMock, failure: dict[str, Any], key: str, error: str
) -> None:
    for method, outcome in failure.items():
        if isinstance(outcome, Exception):
            getattr(mock_moonraker, method).side_effect = outcome
        else:
            getattr(mock_moonraker, method).return_value = outcome
    result = await open_moonraker_form(hass)
    result = dict(await submit(hass, result, {**ADDRESS, CONF_API_KEY: key}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    for method in failure:
        getattr(mock_moonraker, method).side_effect = None
    mock_moonraker.async_in_container.return_value = False
    mock_moonraker.async_sudo_access.return_value = True
    result = dict(await submit(hass, result, {**ADDRESS, CONF_API_KEY: key}))
    assert result["step_id"] == "plug"


async def test_a_bad_address_is_said_before_anything_is_asked(
    hass: HomeAssistant, mock_moonraker: MagicMock
) -> None:
    result = await open_moonraker_form(hass)
    result = dict(await submit(hass, result, {**ADDRESS, CONF_HOST: "http://user:pw@pi/"}))
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    mock_moonraker.async_check_access.assert_not_called()


async def test_a_moonraker_without_its_instance_id_is_known_by_its_address(
    hass: HomeAssistant, mock_moonraker: MagicMock, mock_setup_entry: MagicMock
) -> None:
    mock_moonraker.async_instance_id.return_value = None
    result = await open_moonraker_form(hass)
    result = await choose_relay(hass, dict(await submit(hass, result, ADDRESS)))
    assert result["result"].unique_id == "http://mainsailos.local:7125"


async def test_the_same_moonraker_twice_is_refused(
    hass: HomeAssistant, mock_moonraker: MagicMock, moonraker_entry: MockConfigEntry
) -> None:
    moonraker_entry.add_to_hass(hass)
    result = await open_moonraker_form(hass)
    result = dict(await submit(hass, result, ADDRESS))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_zeroconf_finds_moonraker_and_asks_for_its_key(
    hass: HomeAssistant, mock_moonraker: MagicMock
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=ZEROCONF
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "moonraker_key"
    assert result["description_placeholders"] == {"url": "http://192.0.2.20:7125"}
    mock_moonraker.async_sudo_access.return_value = False
    result = dict(await submit(hass, dict(result), {}))
    assert result["errors"] == {"base": "moonraker_no_sudo"}
    mock_moonraker.async_sudo_access.return_value = True
    result = await choose_relay(hass, dict(await submit(hass, result, {})))
    assert result["data"][CONF_HOST] == "192.0.2.20"
    assert result["data"][CONF_HOST_TYPE] == HOST_MOONRAKER
    assert result["result"].unique_id == INSTANCE


async def test_zeroconf_updates_a_known_moonraker_and_ignores_one_without_uuid(
    hass: HomeAssistant, moonraker_entry: MockConfigEntry
) -> None:
    moonraker_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=ZEROCONF
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert moonraker_entry.data[CONF_HOST] == "192.0.2.20"
    anonymous = ZeroconfServiceInfo(
        ip_address=ZEROCONF.ip_address,
        ip_addresses=ZEROCONF.ip_addresses,
        hostname=ZEROCONF.hostname,
        name=ZEROCONF.name,
        port=7125,
        properties={},
        type=ZEROCONF.type,
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=anonymous
    )
    assert result["reason"] == "not_moonraker"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reauth_asks_moonraker_for_a_new_key(
    hass: HomeAssistant, mock_moonraker: MagicMock, moonraker_entry: MockConfigEntry
) -> None:
    moonraker_entry.add_to_hass(hass)
    result = await moonraker_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "moonraker_key"
    mock_moonraker.async_check_access.side_effect = MoonrakerAuthError("401")
    result = dict(await submit(hass, dict(result), {CONF_API_KEY: "old"}))
    assert result["errors"] == {"base": "moonraker_invalid_auth"}
    mock_moonraker.async_check_access.side_effect = None
    result = dict(await submit(hass, result, {CONF_API_KEY: "new"}))
    assert result["reason"] == "reauth_successful"
    assert moonraker_entry.data[CONF_API_KEY] == "new"
    assert moonraker_entry.data[CONF_HOST_TYPE] == HOST_MOONRAKER


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reconfigure_checks_moonraker_and_refuses_another_one(
    hass: HomeAssistant, mock_moonraker: MagicMock, moonraker_entry: MockConfigEntry
) -> None:
    moonraker_entry.add_to_hass(hass)
    result = await moonraker_entry.start_reconfigure_flow(hass)
    answer = {**ADDRESS, CONF_HOST: "192.0.2.21", CONF_RELAY: RELAY}
    mock_moonraker.async_sudo_access.return_value = False
    result = dict(await submit(hass, dict(result), answer))
    assert result["errors"] == {"base": "moonraker_no_sudo"}
    mock_moonraker.async_sudo_access.return_value = True
    mock_moonraker.async_instance_id.return_value = "another"
    result = dict(await submit(hass, result, answer))
    assert result["reason"] == "wrong_moonraker"
    result = await moonraker_entry.start_reconfigure_flow(hass)
    mock_moonraker.async_instance_id.return_value = INSTANCE
    result = dict(await submit(hass, dict(result), answer))
    assert result["reason"] == "reconfigure_successful"
    assert moonraker_entry.data[CONF_HOST] == "192.0.2.21"
    assert moonraker_entry.data[CONF_HOST_TYPE] == HOST_MOONRAKER


async def test_a_refused_key_at_start_asks_for_a_new_one(
    hass: HomeAssistant, mock_moonraker: MagicMock, moonraker_entry: MockConfigEntry
) -> None:
    moonraker_entry.add_to_hass(hass)
    mock_moonraker.async_check_access.side_effect = MoonrakerAuthError("401")
    await hass.config_entries.async_setup(moonraker_entry.entry_id)
    assert moonraker_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
