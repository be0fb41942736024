"""Shared test data and a fake OctoPlugout plug for the Home Assistant tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.event import EventEntity
from homeassistant.components.select import SelectEntity
from homeassistant.components.switch import SwitchEntity
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    setup_test_component_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.octoplugout.host import Heater
from custom_components.octoplugout.machine import Phase
from custom_components.octoplugout.octoprint import PrinterSnapshot

HOST = "octopi.local"
UUID = "4a1b0c5e-7d1e-4d8e-9c1a-0c7f0a5b1d2e"
API_KEY = "0123456789ABCDEF0123456789ABCDEF"
RELAY = "switch.printer_plug_relay"
LOCK = "switch.printer_plug_power_lock"
POWER_UP = "switch.printer_plug_stay_off_at_power_up"
LED = "select.printer_plug_led_pattern"
BUTTON = "event.printer_plug_button"
STATE_SENSOR = "sensor.octoplugout_octopi_local_state"
# OctoPlugout's events over one print-to-power-off cycle, in order.
CYCLE_EVENTS = [
    "print_started",
    "armed",
    "cooling",
    "host_shutdown_sent",
    "power_off_pending",
    "powered_off",
]
# A Klipper printer's Moonraker.
INSTANCE = "c31b4906ffc94d8d9a851649da1d12cc"
KLIPPER_HOST = "mainsailos.local"
KLIPPER_ADDRESS = {
    "host": KLIPPER_HOST,
    "port": 7125,
    "path": "",
    "ssl": False,
    "verify_ssl": True,
}
# What Klippy's printer objects say of an idle, cold printer.
KLIPPER_IDLE = {
    "webhooks": {"state": "ready", "state_message": "Printer is ready"},
    "print_stats": {"state": "standby", "filename": "", "print_duration": 0.0},
    "idle_timeout": {"state": "Idle"},
    "extruder": {"temperature": 24.5, "target": 0.0},
    "heater_bed": {"temperature": 23.0, "target": 0.0},
}

IDLE = PrinterSnapshot(
    state_text="Operational",
    flags=frozenset({"operational", "ready"}),
    tools={"tool0": Heater(24.0, 0.0)},
    bed=Heater(23.0, 0.0),
    job_state="Operational",
)
PRINTING = replace(
    IDLE,
    state_text="Printing",
    flags=frozenset({"operational", "printing"}),
    tools={"tool0": Heater(210.0, 210.0)},
    bed=Heater(60.0, 60.0),
    job_state="Printing",
    progress=42.0,
    print_time=600,
    print_time_left=900,
    file_name="benchy.gcode",
)
DONE_HOT = replace(
    IDLE,
    tools={"tool0": Heater(190.0, 0.0)},
    bed=Heater(58.0, 0.0),
    progress=100.0,
    file_name="benchy.gcode",
)


class FakeSwitch(SwitchEntity):
    """A switch of the plug (relay, power lock, power-up setting) that records its calls."""

    _attr_should_poll = False

    def __init__(self, entity_id: str, calls: list[tuple[str, str, str]], is_on: bool) -> None:
        """Start in ``is_on``."""
        self.entity_id = entity_id
        self._attr_unique_id = entity_id
        self._attr_is_on = is_on
        self._calls = calls
        self.fail = False
        # Set: a switch-off waits for it, as a slow device's does.
        self.hold: asyncio.Event | None = None

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Record and switch on."""
        self._calls.append(("switch", "turn_on", self.entity_id))
        self.set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Record and switch off, or fail like an unreachable device."""
        self._calls.append(("switch", "turn_off", self.entity_id))
        if self.fail:
            raise HomeAssistantError("device did not answer")
        if self.hold is not None:
            await self.hold.wait()
        self.set(False)

    def set(self, is_on: bool | None) -> None:
        """Change the state from outside OctoPlugout; None makes it unavailable."""
        self._attr_available = is_on is not None
        self._attr_is_on = bool(is_on)
        self.async_write_ha_state()


class FakeLedSelect(SelectEntity):
    """The plug's LED pattern select."""

    _attr_should_poll = False

    def __init__(self, calls: list[tuple[str, str, str]]) -> None:
        """One option per machine state."""
        self.entity_id = LED
        self._attr_unique_id = LED
        self._attr_options = [state.value for state in Phase]
        self._attr_current_option = None
        self._calls = calls

    async def async_select_option(self, option: str) -> None:
        """Record and show the pattern."""
        self._calls.append(("select", option, self.entity_id))
        self._attr_current_option = option
        self.async_write_ha_state()


class FakeButtonEvent(EventEntity):
    """The plug's button as an event entity."""

    _attr_should_poll = False

    def __init__(self) -> None:
        """No press yet."""
        self._attr_event_types = ["short_press", "long_press", "double_press"]
        self.entity_id = BUTTON
        self._attr_unique_id = BUTTON

    def press(self, event_type: str) -> None:
        """Fire a button event.

        The entity's state is the event's time to the millisecond, and OctoPlugout takes the
        same time again for no new press: a real button is never pressed twice within one
        millisecond, a test could be.
        """
        time.sleep(0.002)
        self._trigger_event(event_type)
        self.async_write_ha_state()

    def set_available(self, available: bool) -> None:
        """The plug disconnects or comes back."""
        self._attr_available = available
        self.async_write_ha_state()


class FakePlug:
    """An OctoPlugout ESPHome plug as Home Assistant sees it: real entities of each domain."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing exists until ``async_setup``."""
        self.hass = hass
        self.calls: list[tuple[str, str, str]] = []
        self.relay_switch = FakeSwitch(RELAY, self.calls, True)
        self.lock_switch = FakeSwitch(LOCK, self.calls, False)
        self.power_up_switch = FakeSwitch(POWER_UP, self.calls, False)
        self.led_select = FakeLedSelect(self.calls)
        self.button = FakeButtonEvent()

    async def async_setup(self, relay_on: bool = True) -> None:
        """Add the entities through test platforms of the switch, select and event domains."""
        self.relay_switch._attr_is_on = relay_on
        setup_test_component_platform(
            hass=self.hass,
            domain="switch",
            entities=[self.relay_switch, self.lock_switch, self.power_up_switch],
        )
        setup_test_component_platform(hass=self.hass, domain="select", entities=[self.led_select])
        setup_test_component_platform(hass=self.hass, domain="event", entities=[self.button])
        for domain in ("switch", "select", "event"):
            assert await async_setup_component(self.hass, domain, {domain: [{"platform": "test"}]})
        await self.hass.async_block_till_done()

    def press(self, event_type: str) -> None:
        """Press the plug's button."""
        self.button.press(event_type)

    def set_relay(self, is_on: bool | None) -> None:
        """Someone (or something) changed the relay outside OctoPlugout."""
        self.relay_switch.set(is_on)

    def _state(self, entity_id: str) -> str:
        state = self.hass.states.get(entity_id)
        assert state is not None
        return state.state

    @property
    def relay(self) -> str:
        """The relay's state."""
        return self._state(RELAY)

    @property
    def led(self) -> str:
        """The LED pattern's state."""
        return self._state(LED)

    @property
    def lock(self) -> str:
        """The power lock's state."""
        return self._state(LOCK)

    @property
    def stay_off_at_power_up(self) -> str:
        """The plug's power-up setting."""
        return self._state(POWER_UP)

    def relay_calls(self) -> list[str]:
        """The services called on the relay, in order."""
        return self.calls_of(RELAY)

    def calls_of(self, entity_id: str) -> list[str]:
        """The services called on one of the plug's entities, in order."""
        return [service for _, service, entity in self.calls if entity == entity_id]


def _plain_keys(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Newer Home Assistant versions use enum keys; compare them as the plain strings."""
    return None if mapping is None else {str(key): value for key, value in mapping.items()}


def snapshot_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    entry_id: str,
) -> None:
    """Compare every entity of an entry with the snapshots.

    Only what OctoPlugout decides is compared (not the registry's own format, which changes
    between Home Assistant versions), so one snapshot serves every supported version.
    """
    entries = er.async_entries_for_config_entry(entity_registry, entry_id)
    assert entries
    for entry in sorted(entries, key=lambda entry: entry.entity_id):
        state = hass.states.get(entry.entity_id)
        assert state is not None
        summary = {
            "unique_id": entry.unique_id,
            "translation_key": entry.translation_key,
            "device_class": entry.original_device_class,
            "entity_category": entry.entity_category,
            "capabilities": _plain_keys(entry.capabilities),
            "unit_of_measurement": entry.unit_of_measurement,
            "state": state.state,
            "attributes": _plain_keys(state.attributes),
        }
        assert summary == snapshot(name=entry.entity_id)


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """An entity's state, which must exist."""
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


def machine_state(hass: HomeAssistant) -> str:
    """The Phase sensor of the OctoPlugout device."""
    return state_of(hass, STATE_SENSOR)


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let fake time pass and everything that was due run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait for something a real server does, for at most ``seconds``."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)
