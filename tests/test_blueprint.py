"""The phone blueprint, loaded through Home Assistant's automation integration.

The phone is a Companion app registration (a mobile_app entry whose pushes go to a mocked push
server); a print cycle is driven and the notifications it sends are read off that server.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import MagicMock
import urllib.parse

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from .common import DONE_HOT, PRINTING, FakePlug, machine_state

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINT = ROOT / "blueprints" / "automation" / "octoplugout" / "notify_phone.yaml"
STEP_EVENT = "event.octoplugout_octopi_local_power_off_step"
PUSH_URL = "https://push.example/push"
PHONE = "phone-device-id"


@pytest.fixture
async def phone(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, hass_admin_user: MockUser
) -> str:
    """A Companion app registration; its device's id. Pushes are answered by a mock."""
    limits = {"successful": 1, "errors": 0, "maximum": 150, "resetsAt": "2099-01-01T00:00:00Z"}
    aioclient_mock.post(PUSH_URL, json={"rateLimits": limits})
    entry = MockConfigEntry(
        domain="mobile_app",
        source="registration",
        title="Phone",
        data={
            "app_data": {"push_token": "TOKEN", "push_url": PUSH_URL},
            "app_id": "io.homeassistant.companion",
            "app_name": "Home Assistant",
            "app_version": "2026.1",
            "device_id": PHONE,
            "device_name": "Phone",
            "manufacturer": "Maker",
            "model": "Phone",
            "os_name": "Android",
            "os_version": "15",
            "secret": "secret",
            "supports_encryption": False,
            "user_id": hass_admin_user.id,
            "webhook_id": "phone-webhook",
        },
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "mobile_app", {})
    await hass.async_block_till_done()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert len(devices) == 1
    return devices[0].id


async def elapse(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let fake time pass without waiting for the automation's runs to end: one waits on the
    phone for as long as its button lasts.
    """
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    for _ in range(50):
        await asyncio.sleep(0)


async def print_until_armed(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, mock_octoprint: MagicMock
) -> None:
    """A print runs past the minimum job time: the power-off is armed."""
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    await elapse(hass, freezer, 5)
    await elapse(hass, freezer, 300)
    assert machine_state(hass) == "armed"


def pushes(aioclient_mock: AiohttpClientMocker) -> list[dict[str, Any]]:
    """What reached the phone: each push's title, message and data."""
    return [
        {key: call[2][key] for key in ("title", "message", "data") if key in call[2]}
        for call in aioclient_mock.mock_calls
        if str(call[1]) == PUSH_URL
    ]


@pytest.fixture
async def automation(
    hass: HomeAssistant, phone: str, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """The blueprint in use, from a configuration folder of this test's own."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "octoplugout" / BLUEPRINT.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(BLUEPRINT, target)
    config = {
        "automation": {
            "alias": "Printer on my phone",
            "use_blueprint": {
                "path": f"octoplugout/{BLUEPRINT.name}",
                "input": {
                    "step_entity": STEP_EVENT,
                    "phone": phone,
                    "steps": ["armed", "cooling", "cancelled", "problem"],
                },
            },
        }
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    state = hass.states.get("automation.printer_on_my_phone")
    assert state is not None
    assert state.state == STATE_ON


@pytest.mark.usefixtures("automation")
async def test_the_phone_hears_the_chosen_steps_and_keeps_the_printer_on(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
    aioclient_mock: AiohttpClientMocker,
    plug: FakePlug,
) -> None:
    await print_until_armed(hass, freezer, mock_octoprint)
    # print_started is not among the chosen steps.
    assert pushes(aioclient_mock) == [
        {
            "title": "OctoPlugout octopi.local",
            "message": "The printer powers off after this print.",
            "data": {"tag": f"octoplugout_{_entry_id(hass)}"},
        }
    ]

    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    await elapse(hass, freezer, 5)
    assert machine_state(hass) == "cooling"
    cooling = pushes(aioclient_mock)[-1]
    keep_on = f"OCTOPLUGOUT_KEEP_ON_{_entry_id(hass)}_cooling"
    assert cooling["message"].startswith("The print is done")
    assert cooling["data"]["actions"] == [{"action": keep_on, "title": "Keep it on"}]

    # Pressed on the phone: the power-off is cancelled, the printer stays on.
    hass.bus.async_fire("mobile_app_notification_action", {"action": keep_on})
    await elapse(hass, freezer, 0)
    assert machine_state(hass) == "idle"
    await elapse(hass, freezer, 600)
    assert plug.relay == STATE_ON
    mock_octoprint.async_shutdown_host.assert_not_called()
    assert len(pushes(aioclient_mock)) == 3
    assert (
        pushes(aioclient_mock)[-1]["message"]
        == "The power-off was cancelled; the printer stays on."
    )


@pytest.mark.usefixtures("automation")
async def test_a_button_press_on_another_notification_changes_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_octoprint: MagicMock,
) -> None:
    await print_until_armed(hass, freezer, mock_octoprint)
    mock_octoprint.async_get_snapshot.return_value = DONE_HOT
    await elapse(hass, freezer, 5)
    hass.bus.async_fire("mobile_app_notification_action", {"action": "SOMETHING_ELSE"})
    await elapse(hass, freezer, 0)
    assert machine_state(hass) == "cooling"


def _entry_id(hass: HomeAssistant) -> str:
    return hass.config_entries.async_entries("octoplugout")[0].entry_id


def test_the_readme_imports_this_blueprint() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prefix = "https://my.home-assistant.io/redirect/blueprint_import/?blueprint_url="
    link = readme.split(prefix, 1)[1].split(")", 1)[0]
    raw = "https://raw.githubusercontent.com/octoplugout/octoplugout-ha/main/"
    assert urllib.parse.unquote(link) == raw + BLUEPRINT.relative_to(ROOT).as_posix()
