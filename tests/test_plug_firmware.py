"""The plug's ESPHome firmware, built for Linux and driven over the native API (aioesphomeapi).

The host build shares the package of the real boards; only the relay, the LED and the button
are simulated (the button through diagnostic buttons that stand for a press of a given length).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
import re
from typing import Any

from aioesphomeapi import (
    APIClient,
    BinarySensorState,
    EntityInfo,
    EntityState,
    Event,
    EventInfo,
    SelectState,
    SwitchState,
)
import pytest
import pytest_socket

from rig.octoprint_server import free_port
from rig.plug_firmware import PlugFirmware, build

pytestmark = pytest.mark.usefixtures("socket_enabled")
MAC = "02:00:00:0c:70:11"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The host firmware, built once for this module, and its API port."""
    pytest_socket.enable_socket()
    port = free_port()
    program = build(port, MAC, tmp_path_factory.mktemp("firmware") / "program")
    return program, port


class Plug:
    """A connected API client with the plug's entities by object id and their latest states."""

    def __init__(self, client: APIClient) -> None:
        self.client = client
        self.keys: dict[str, int] = {}
        self.infos: dict[str, EntityInfo] = {}
        self.states: dict[int, EntityState] = {}
        self.events: list[str] = []
        self.changed = asyncio.Event()

    async def connect(self) -> None:
        await self.client.connect(login=False)
        entities, _ = await self.client.list_entities_services()
        for info in entities:
            # Newer firmware sends no object ids; Home Assistant derives them from the names.
            object_id = re.sub(r"[^a-z0-9]+", "_", info.name.lower()).strip("_")
            self.keys[object_id] = info.key
            self.infos[object_id] = info
        self.client.subscribe_states(self._on_state)

    def _on_state(self, state: EntityState) -> None:
        self.states[state.key] = state
        if isinstance(state, Event):
            self.events.append(state.event_type)
        self.changed.set()

    def state(self, object_id: str) -> Any:
        return self.states.get(self.keys[object_id])

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 10) -> None:
        async with asyncio.timeout(seconds):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def relay_on(self) -> bool:
        state = self.state("relay")
        return isinstance(state, SwitchState) and state.state

    def lock_on(self) -> bool:
        state = self.state("power_lock")
        return isinstance(state, SwitchState) and state.state

    async def press(self, which: str) -> None:
        self.client.button_command(self.keys[f"simulate_{which}"])
        await asyncio.sleep(0.2)


@pytest.fixture
def running(firmware: tuple[Path, int], tmp_path: Path) -> Generator[PlugFirmware]:
    program, port = firmware
    with PlugFirmware(program, port, tmp_path / "prefs") as plug:
        yield plug


async def connect(firmware: PlugFirmware) -> Plug:
    plug = Plug(APIClient("127.0.0.1", firmware.port, None))
    await plug.connect()
    await plug.wait_for(
        lambda: plug.state("relay") is not None and plug.state("led_pattern") is not None
    )
    return plug


async def set_switch(plug: Plug, object_id: str, on: bool) -> None:
    plug.client.switch_command(plug.keys[object_id], on)
    await plug.wait_for(
        lambda: isinstance(plug.state(object_id), SwitchState) and plug.state(object_id).state == on
    )


def relay_switched(firmware: PlugFirmware, since: int) -> list[str]:
    """What the relay was switched to, in order, since a point of the program's log."""
    with firmware.log.open("rb") as log:
        log.seek(since)
        return re.findall(r"relay (on|off)", log.read().decode(errors="replace"))


@pytest.fixture
async def plug(running: PlugFirmware) -> AsyncGenerator[Plug]:
    plug = await connect(running)
    yield plug
    await plug.client.disconnect()


async def test_entities_for_home_assistant(plug: Plug) -> None:
    assert {
        "relay",
        "power_lock",
        "stay_off_at_power_up",
        "button",
        "led_pattern",
        "failsafe",
    } <= set(plug.keys)
    button = plug.infos["button"]
    assert isinstance(button, EventInfo)
    assert set(button.event_types) == {"short_press", "long_press"}
    assert plug.relay_on()
    assert plug.state("led_pattern").state == "waiting_for_octoprint"


async def test_button_presses_are_reported_to_home_assistant(plug: Plug) -> None:
    await plug.press("short_press")
    await plug.press("long_press")
    await plug.wait_for(lambda: len(plug.events) >= 2)
    assert plug.events == ["short_press", "long_press"]
    assert plug.relay_on()


async def test_relay_follows_home_assistant_when_unlocked(plug: Plug) -> None:
    plug.client.switch_command(plug.keys["relay"], False)
    await plug.wait_for(lambda: not plug.relay_on())
    plug.client.switch_command(plug.keys["relay"], True)
    await plug.wait_for(plug.relay_on)


async def test_power_lock_refuses_relay_off_except_a_ten_second_hold(plug: Plug) -> None:
    plug.client.switch_command(plug.keys["power_lock"], True)
    await plug.wait_for(plug.lock_on)
    plug.client.switch_command(plug.keys["relay"], False)
    await asyncio.sleep(0.5)
    assert plug.relay_on()
    await plug.press("5_s_hold")
    assert plug.relay_on()
    await plug.press("10_s_hold")
    await plug.wait_for(lambda: not plug.relay_on())


async def test_led_shows_the_selected_pattern(plug: Plug) -> None:
    def led() -> bool:
        state = plug.state("led")
        return isinstance(state, BinarySensorState) and state.state

    plug.client.select_command(plug.keys["led_pattern"], "off")
    await plug.wait_for(lambda: plug.state("led_pattern").state == "off")
    await plug.wait_for(lambda: not led())
    plug.client.select_command(plug.keys["led_pattern"], "print_started")
    await plug.wait_for(
        lambda: isinstance(plug.state("led_pattern"), SelectState)
        and plug.state("led_pattern").state == "print_started"
    )
    # 1000 ms on, 3000 ms off (the API batches updates, so short flashes are not seen here).
    for _ in range(2):
        await plug.wait_for(led, seconds=5)
        await plug.wait_for(lambda: not led(), seconds=5)


@pytest.mark.parametrize("relay", [False, True], ids=["off", "on"])
async def test_failsafe_without_home_assistant_leaves_the_relay_as_it_was(
    running: PlugFirmware, relay: bool
) -> None:
    plug = await connect(running)
    plug.client.switch_command(plug.keys["relay"], relay)
    await plug.wait_for(lambda: plug.relay_on() == relay)
    await plug.client.disconnect()
    # The host build's failsafe delay is 3 s (60 s on real boards).
    await asyncio.sleep(4.5)
    assert "Home Assistant gone for 3s: failsafe" in running.log.read_text()
    plug = await connect(running)
    try:
        assert plug.relay_on() == relay
    finally:
        await plug.client.disconnect()


@pytest.mark.parametrize("relay", [False, True], ids=["off", "on"])
async def test_a_software_reboot_keeps_the_relay_as_it_was(
    firmware: tuple[Path, int], tmp_path: Path, relay: bool
) -> None:
    program, port = firmware
    prefs = tmp_path / "prefs"
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        # Even with "Stay off at power-up" on: a reboot is no power-up.
        await set_switch(plug, "stay_off_at_power_up", True)
        await set_switch(plug, "relay", relay)
        await plug.client.disconnect()
        await asyncio.sleep(6)  # the preferences are written every 5 s
    before = running.log.stat().st_size
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        try:
            assert plug.relay_on() == relay
        finally:
            await plug.client.disconnect()
    # Not even for a moment the other way.
    assert relay_switched(running, before) == ["on" if relay else "off"]


@pytest.mark.parametrize("stay_off", [False, True], ids=["power_on", "stay_off"])
async def test_a_power_up_follows_stay_off_at_power_up(
    firmware: tuple[Path, int], tmp_path: Path, stay_off: bool
) -> None:
    program, port = firmware
    prefs = tmp_path / "prefs"
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        await set_switch(plug, "stay_off_at_power_up", stay_off)
        # The relay's saved state is the opposite of what the power-up must give.
        await set_switch(plug, "relay", stay_off)
        await plug.client.disconnect()
        await asyncio.sleep(6)
    before = running.log.stat().st_size
    with PlugFirmware(program, port, prefs, power_up=True) as running:
        plug = await connect(running)
        try:
            assert plug.relay_on() == (not stay_off)
            assert plug.state("stay_off_at_power_up").state == stay_off
        finally:
            await plug.client.disconnect()
    # The relay took the power-up's state at once: it never closed for a moment on the way.
    assert relay_switched(running, before) == ["off" if stay_off else "on"]


async def test_after_a_power_up_that_stays_off_a_command_powers_on(
    firmware: tuple[Path, int], tmp_path: Path
) -> None:
    program, port = firmware
    prefs = tmp_path / "prefs"
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        await set_switch(plug, "stay_off_at_power_up", True)
        await plug.client.disconnect()
        await asyncio.sleep(6)
    with PlugFirmware(program, port, prefs, power_up=True) as running:
        plug = await connect(running)
        try:
            assert not plug.relay_on()
            await set_switch(plug, "relay", True)
        finally:
            await plug.client.disconnect()


@pytest.mark.parametrize("relay", [False, True], ids=["off", "on"])
async def test_button_works_locally_in_failsafe(plug: Plug, relay: bool) -> None:
    await set_switch(plug, "relay", relay)
    plug.client.button_command(plug.keys["simulate_home_assistant_loss"])
    await plug.wait_for(lambda: plug.state("failsafe") is not None and plug.state("failsafe").state)
    await asyncio.sleep(0.5)
    assert plug.relay_on() == relay
    await plug.press("short_press")
    await plug.wait_for(plug.relay_on)
    await plug.press("5_s_hold")
    await plug.wait_for(lambda: not plug.relay_on())
    await plug.press("short_press")
    await plug.wait_for(plug.relay_on)
    plug.client.switch_command(plug.keys["power_lock"], True)
    await plug.wait_for(plug.lock_on)
    await plug.press("5_s_hold")
    assert plug.relay_on()
    await plug.press("10_s_hold")
    await plug.wait_for(lambda: not plug.relay_on())
    assert plug.events == []


async def test_lock_and_pattern_survive_a_reboot(
    firmware: tuple[Path, int], tmp_path: Path
) -> None:
    program, port = firmware
    prefs = tmp_path / "prefs"
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        plug.client.switch_command(plug.keys["power_lock"], True)
        plug.client.select_command(plug.keys["led_pattern"], "armed")
        await plug.wait_for(lambda: plug.lock_on() and plug.state("led_pattern").state == "armed")
        await plug.client.disconnect()
        await asyncio.sleep(6)  # the preferences are written every 5 s
    with PlugFirmware(program, port, prefs) as running:
        plug = await connect(running)
        try:
            await plug.wait_for(plug.lock_on)
            assert plug.state("led_pattern").state == "armed"
            assert plug.relay_on()
        finally:
            await plug.client.disconnect()
