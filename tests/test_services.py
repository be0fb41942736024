"""OctoPlugout's actions: messages, power-off, force, cancel; bad input is refused clearly."""

from __future__ import annotations

from unittest.mock import MagicMock

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import DOMAIN
from custom_components.octoplugout.octoprint import OctoPrintConnectionError

from .common import PRINTING, FakePlug, machine_state


async def call(hass: HomeAssistant, service: str, entry: MockConfigEntry, **data: object) -> None:
    await hass.services.async_call(
        DOMAIN, service, {"config_entry_id": entry.entry_id, **data}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_send_message(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_send_message.reset_mock()
    await call(hass, "send_message", init_integration, message="  Bed is hot!  ")
    mock_octoprint.async_send_message.assert_called_once_with("Bed is hot!")


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("", "message_empty"),
        ("   ", "message_empty"),
        ("x" * 65, "message_too_long"),
        ("hello\nM112", "message_characters"),
        ("hello\rM104 S250", "message_characters"),
        ("50% done; M84", "message_characters"),
        ("checksum*12", "message_characters"),
        ("tab\there", "message_characters"),
        ("café", "message_characters"),
        ("\x00", "message_characters"),
    ],
)
async def test_bad_messages_are_refused_and_nothing_is_sent(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    message: str,
    key: str,
) -> None:
    mock_octoprint.async_send_message.reset_mock()
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "send_message", init_integration, message=message)
    assert refused.value.translation_key == key
    mock_octoprint.async_send_message.assert_not_called()


async def test_message_to_a_disconnected_printer_or_a_gone_octoprint(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_send_message.return_value = False
    with pytest.raises(HomeAssistantError) as failed:
        await call(hass, "send_message", init_integration, message="hello")
    assert failed.value.translation_key == "printer_not_connected"
    mock_octoprint.async_send_message.side_effect = OctoPrintConnectionError("gone")
    with pytest.raises(HomeAssistantError) as failed:
        await call(hass, "send_message", init_integration, message="hello")
    assert failed.value.translation_key == "host_unavailable"


async def test_unknown_or_unloaded_entries(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "power_off", {"config_entry_id": "nope"}, blocking=True
        )
    assert refused.value.translation_key == "entry_not_found"
    await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "power_off", init_integration)
    assert refused.value.translation_key == "entry_not_loaded"


async def test_power_off_and_cancel(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_octoprint: MagicMock
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await init_integration.runtime_data.async_refresh()
    await call(hass, "power_off", init_integration)
    assert machine_state(hass) == "armed"
    await call(hass, "cancel_power_off", init_integration)
    assert machine_state(hass) == "print_started"


async def test_force_is_refused_during_a_job_and_nothing_is_cut(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await init_integration.runtime_data.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "force_power_off", init_integration)
    assert refused.value.translation_key == "refused_job_in_progress"
    assert machine_state(hass) == "print_started"
    mock_octoprint.async_shutdown_host.assert_not_called()
    assert plug.relay_calls() == []


async def test_force_without_a_job_halts_the_host_first(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_octoprint: MagicMock
) -> None:
    await call(hass, "force_power_off", init_integration)
    mock_octoprint.async_shutdown_host.assert_called_once()
    assert machine_state(hass) == "powering_off"
