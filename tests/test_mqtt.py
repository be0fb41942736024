"""The original firmware's MQTT topics, through a real Mosquitto broker and HA's MQTT client.

The broker runs on loopback with a user and password; Home Assistant's MQTT integration
connects to it as a user would set it up, and the tests watch the topics through it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
import logging
from unittest.mock import MagicMock

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
import pytest_socket

from custom_components.octoplugout.octoprint import OctoPrintConnectionError
from custom_components.octoplugout.options import OPTION_DEFAULTS
from rig.mosquitto import PASSWORD, USERNAME, Mosquitto

from .common import PRINTING, FakePlug, machine_state, wait_until

# An empty configuration.yaml, which the MQTT integration reads when it starts.
pytestmark = pytest.mark.usefixtures("socket_enabled", "mock_hass_config")
ROOT = "printers/prusa/octoplugout"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Generator[Mosquitto]:
    """One Mosquitto for this module's tests."""
    pytest_socket.enable_socket()
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Topics:
    """What arrived below the root topic, in order."""

    messages: list[tuple[str, str, bool]] = field(default_factory=list)

    @callback
    def heard(self, message: mqtt.ReceiveMessage) -> None:
        payload = message.payload
        text = payload if isinstance(payload, str) else bytes(payload).decode()
        self.messages.append((message.topic.removeprefix(f"{ROOT}/"), text, message.retain))

    def payloads(self, topic: str) -> list[str]:
        return [payload for name, payload, _ in self.messages if name == topic]

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 20) -> None:
        await wait_until(condition, seconds)


async def connected(hass: HomeAssistant, broker: Mosquitto) -> MockConfigEntry:
    """Home Assistant's MQTT integration, logged in to the broker."""
    entry = MockConfigEntry(
        domain="mqtt",
        data={
            "broker": "127.0.0.1",
            "port": broker.port,
            "username": USERNAME,
            "password": PASSWORD,
            "discovery": False,
            # Home Assistant's own "online" message, which it sends a moment after every
            # connect, would fail when a test stops the broker in that moment.
            "birth_message": {},
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert await mqtt.async_wait_for_mqtt_client(hass)
    await wait_until_connected(hass)
    return entry


async def wait_until_connected(hass: HomeAssistant, seconds: float = 30) -> None:
    await wait_until(lambda: mqtt.is_connected(hass), seconds)


async def listen(hass: HomeAssistant, topics: Topics) -> None:
    """Subscribe below the root; return once the broker delivers (HA batches subscriptions)."""
    await mqtt.async_subscribe(hass, f"{ROOT}/#", topics.heard)
    await until_heard(hass, topics, "probe", "listening")


async def until_heard(hass: HomeAssistant, topics: Topics, subtopic: str, payload: str) -> None:
    """Publish until it comes back: then every subscription made before is in place."""
    for _ in range(100):
        await mqtt.async_publish(hass, f"{ROOT}/{subtopic}", payload)
        with contextlib.suppress(TimeoutError):
            await topics.wait_for(lambda: bool(topics.payloads(subtopic)), seconds=0.5)
            return
    raise AssertionError(f"{ROOT}/{subtopic} never came back")


async def until_taken(hass: HomeAssistant, topics: Topics, payload: str) -> None:
    """Send an idempotent command until the plug clears it (its subscription is in place)."""
    for _ in range(100):
        cleared = topics.payloads("switch").count("-")
        await mqtt.async_publish(hass, f"{ROOT}/switch", payload)
        with contextlib.suppress(TimeoutError):
            await topics.wait_for(
                lambda cleared=cleared: topics.payloads("switch").count("-") > cleared, 0.5
            )
            await hass.async_block_till_done()
            return
    raise AssertionError(f"{payload} was never taken")


@pytest.fixture
async def mqtt_entry(hass: HomeAssistant, broker: Mosquitto) -> AsyncGenerator[MockConfigEntry]:
    """The MQTT integration connected; the broker's retained command cleared afterwards."""
    entry = await connected(hass, broker)
    yield entry
    await mqtt.async_publish(hass, f"{ROOT}/switch", "", retain=True)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def set_up_octoplugout(
    hass: HomeAssistant, entry: MockConfigEntry, plug: FakePlug, *, enabled: bool = True
) -> None:
    await plug.async_setup()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={**OPTION_DEFAULTS, "mqtt": enabled, "mqtt_root": ROOT}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def bridged(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> Topics:
    """OctoPlugout with its MQTT topics on, idle, and everything below the root heard."""
    topics = Topics()
    await listen(hass, topics)
    await set_up_octoplugout(hass, mock_config_entry, plug)
    await topics.wait_for(lambda: bool(topics.payloads("plugstate")))
    # "Watch OctoPrint" while watching changes nothing; it tells when the plug listens.
    await until_taken(hass, topics, "ON")
    assert machine_state(hass) == "idle"
    return topics


async def command(hass: HomeAssistant, topics: Topics, payload: str) -> None:
    """Send a command as a phone client would, and wait until the plug cleared it."""
    cleared = len(topics.payloads("switch"))
    await mqtt.async_publish(hass, f"{ROOT}/switch", payload)
    await topics.wait_for(lambda: topics.payloads("switch")[cleared:].count("-") >= 1)
    await hass.async_block_till_done()


async def test_the_state_goes_out_under_the_original_names(
    hass: HomeAssistant, bridged: Topics, mock_octoprint: MagicMock
) -> None:
    assert bridged.payloads("plugstate") == ["Waiting_for_print_activity_connected"]
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=16))
    await bridged.wait_for(lambda: "print_started" in bridged.payloads("plugstate"))
    assert machine_state(hass) == "print_started"


async def test_the_status_goes_out_every_minute(
    hass: HomeAssistant, bridged: Topics, mock_octoprint: MagicMock
) -> None:
    # Right away, then every 60 s.
    assert bridged.payloads("state/printstate") == ["Operational"]
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await bridged.wait_for(lambda: bool(bridged.payloads("job/jobprogress")))
    latest = {topic: bridged.payloads(topic)[-1] for topic, _, _ in bridged.messages}
    assert latest["state/printstate"] == "Printing"
    assert latest["state/extrudertemp"] == "210.0"
    assert latest["state/bedtemp"] == "60.0"
    assert latest["job/jobstate"] == "Printing"
    assert latest["job/jobprogress"] == "42"
    # OctoPrint gone: the original said so in printstate.
    mock_octoprint.async_get_snapshot.side_effect = OctoPrintConnectionError("gone")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=80))
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=125))
    await bridged.wait_for(lambda: bridged.payloads("state/printstate")[-1] == "Offline")


@pytest.mark.parametrize(
    ("payloads", "state"),
    [
        (["PERMON"], "on"),
        (["PERMON", "ON"], "idle"),
        (["PERMON", "AFTERJOB"], "idle"),
        (["permon"], "on"),
        (["OFF"], "shutting_down_host"),
        (["FORCEOFF"], "shutting_down_host"),
    ],
)
async def test_the_original_commands(
    hass: HomeAssistant,
    bridged: Topics,
    mock_octoprint: MagicMock,
    payloads: list[str],
    state: str,
) -> None:
    cleared = bridged.payloads("switch").count("-")
    for payload in payloads:
        await command(hass, bridged, payload)
    assert machine_state(hass) in (state, "powering_off")
    if state == "shutting_down_host":
        # Off and forced off still halt the answering host before any power cut.
        mock_octoprint.async_shutdown_host.assert_called_once()
    # Cleared with a retained "-" after each command, so no command is applied twice.
    assert bridged.payloads("switch").count("-") - cleared == len(payloads)
    # A new subscription gets the retained "-".
    retained = Topics()
    await mqtt.async_subscribe(hass, f"{ROOT}/+", retained.heard)
    await retained.wait_for(lambda: ("switch", "-", True) in retained.messages)


async def test_a_forced_off_during_a_job_is_refused(
    hass: HomeAssistant,
    bridged: Topics,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock_octoprint.async_get_snapshot.return_value = PRINTING
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=16))
    await bridged.wait_for(lambda: "print_started" in bridged.payloads("plugstate"))
    with caplog.at_level(logging.WARNING):
        await command(hass, bridged, "FORCEOFF")
    assert "MQTT command FORCEOFF refused: job_in_progress" in caplog.text
    assert machine_state(hass) == "print_started"
    assert plug.relay == "on"
    assert "turn_off" not in plug.relay_calls()
    mock_octoprint.async_shutdown_host.assert_not_called()


async def test_an_unknown_command_is_logged_and_ignored(
    hass: HomeAssistant, bridged: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await mqtt.async_publish(hass, f"{ROOT}/switch", "SELFDESTRUCT")
        await bridged.wait_for(lambda: "unknown MQTT command" in caplog.text)
    await mqtt.async_publish(hass, f"{ROOT}/marker", "end")
    await bridged.wait_for(lambda: bool(bridged.payloads("marker")))
    assert bridged.payloads("switch")[-1] == "SELFDESTRUCT"
    assert machine_state(hass) == "idle"


async def test_a_retained_command_is_applied_once_at_start(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    # Left by a phone client while Home Assistant was down.
    await mqtt.async_publish(hass, f"{ROOT}/switch", "PERMON", retain=True)
    topics = Topics()
    await listen(hass, topics)
    assert topics.payloads("switch") == ["PERMON"]
    await set_up_octoplugout(hass, mock_config_entry, plug)
    await topics.wait_for(lambda: "-" in topics.payloads("switch"))
    await hass.async_block_till_done()
    assert machine_state(hass) == "on"
    # The retained "-" the plug left is no command when it starts again.
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await topics.wait_for(lambda: len(topics.payloads("plugstate")) >= 2)
    assert machine_state(hass) == "on"
    assert topics.payloads("switch") == ["PERMON", "-"]


async def test_commands_work_again_after_the_broker_restarts(
    hass: HomeAssistant, broker: Mosquitto, bridged: Topics
) -> None:
    broker.stop()
    await wait_until(lambda: not mqtt.is_connected(hass), 20)
    broker.start()
    await wait_until_connected(hass, seconds=60)
    await until_taken(hass, bridged, "PERMON")
    assert machine_state(hass) == "on"
    await bridged.wait_for(lambda: bridged.payloads("plugstate")[-1] == "Switched_ON")


async def test_nothing_is_published_when_off(
    hass: HomeAssistant,
    mqtt_entry: MockConfigEntry,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
) -> None:
    topics = Topics()
    await listen(hass, topics)
    await set_up_octoplugout(hass, mock_config_entry, plug, enabled=False)
    await mqtt.async_publish(hass, f"{ROOT}/switch", "PERMON")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    # Everything Home Assistant's client sent before this marker has arrived before it.
    await mqtt.async_publish(hass, f"{ROOT}/marker", "end")
    await topics.wait_for(lambda: bool(topics.payloads("marker")))
    assert [topic for topic, _, _ in topics.messages if topic != "probe"] == ["switch", "marker"]
    assert machine_state(hass) == "idle"


async def test_without_the_mqtt_integration_the_plug_still_works(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_octoprint: MagicMock,
    plug: FakePlug,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Options saved while MQTT was set up; MQTT was removed since.
    await set_up_octoplugout(hass, mock_config_entry, plug)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "Home Assistant's MQTT integration is not available" in caplog.text
    assert machine_state(hass) == "idle"
