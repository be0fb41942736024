"""A Klipper printer's entry: the Moonraker host behind the same machine, entities and actions."""

from __future__ import annotations

from unittest.mock import MagicMock

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import DOMAIN
from custom_components.octoplugout.moonraker import MoonrakerConnectionError
from custom_components.octoplugout.moonraker_host import MESSAGE_WAIT

from .common import INSTANCE, KLIPPER_IDLE, FakePlug

PREFIX = "octoplugout_mainsailos_local"


@pytest.fixture
async def moonraker_integration(
    hass: HomeAssistant,
    moonraker_entry: MockConfigEntry,
    mock_moonraker: MagicMock,
    plug: FakePlug,
) -> MockConfigEntry:
    """OctoPlugout set up with a powered plug and an idle Klipper printer."""
    await plug.async_setup()
    moonraker_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(moonraker_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return moonraker_entry


async def test_a_klipper_printer_is_followed_like_any_other(
    hass: HomeAssistant, moonraker_integration: MockConfigEntry, mock_moonraker: MagicMock
) -> None:
    assert hass.states.get(f"sensor.{PREFIX}_state").state == "idle"  # type: ignore[union-attr]
    reachable = hass.states.get(f"binary_sensor.{PREFIX}_moonraker_reachable")
    assert reachable is not None
    assert reachable.state == "on"
    assert hass.states.get(f"binary_sensor.{PREFIX}_octoprint_reachable") is None
    hotend = hass.states.get(f"sensor.{PREFIX}_hotend_temperature")
    assert hotend is not None
    assert float(hotend.state) == KLIPPER_IDLE["extruder"]["temperature"]
    registry = dr.async_get(hass)
    [device] = dr.async_entries_for_config_entry(registry, moonraker_integration.entry_id)
    assert device.identifiers == {(DOMAIN, INSTANCE)}
    assert device.model == "Klipper power controller"
    mock_moonraker.async_query.assert_awaited()


async def test_a_message_to_a_gone_moonraker_is_an_error_not_a_traceback(
    hass: HomeAssistant, moonraker_integration: MockConfigEntry, mock_moonraker: MagicMock
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "send_message",
        {"config_entry_id": moonraker_integration.entry_id, "message": "hello"},
        blocking=True,
    )
    mock_moonraker.async_run_gcode.assert_awaited_with("M117 hello", queued_after=MESSAGE_WAIT)
    mock_moonraker.async_run_gcode.side_effect = MoonrakerConnectionError("gone")
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {"config_entry_id": moonraker_integration.entry_id, "message": "hello"},
            blocking=True,
        )
    assert failed.value.translation_key == "host_unavailable"
