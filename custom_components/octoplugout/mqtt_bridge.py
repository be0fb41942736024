"""The original firmware's MQTT topics, through Home Assistant's MQTT integration.

Phone clients, Node-RED flows and dashboards made for the original plug keep working: the
state is published under the original's names on every change, OctoPrint's status every
minute, and the original's commands are taken from ``<root>/switch`` (then cleared with a
retained "-", as the original does, so that a retained command is not applied twice).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval

from . import machine
from .const import LOGGER

if TYPE_CHECKING:
    from .coordinator import OctoPlugoutCoordinator

# The original's state names, which its users' dashboards and flows compare against.
ORIGINAL_STATE_NAMES: Final = {
    machine.Phase.OFF: "Relay_off",
    machine.Phase.ON: "Switched_ON",
    machine.Phase.WAITING_FOR_OCTOPRINT: "Waiting_for_print_activity",
    machine.Phase.IDLE: "Waiting_for_print_activity_connected",
    machine.Phase.PRINT_STARTED: "print_started",
    machine.Phase.ARMED: "ready_for_shutting_down",
    machine.Phase.COOLING: "ready_for_shutting_down_extruder_HOT",
    machine.Phase.SHUTTING_DOWN_HOST: "shutting_down_PI",
    machine.Phase.POWERING_OFF: "delayed_powering_relay_off",
    machine.Phase.GOING_DOWN: "going_down",
}
COMMANDS: Final[dict[str, Callable[[float], machine.MachineEvent]]] = {
    "ON": lambda now: machine.ModeSelected(now, machine.Mode.AFTER_PRINT),
    "AFTERJOB": lambda now: machine.ModeSelected(now, machine.Mode.AFTER_PRINT),
    "PERMON": lambda now: machine.ModeSelected(now, machine.Mode.ALWAYS_ON),
    "OFF": lambda now: machine.ModeSelected(now, machine.Mode.OFF),
    "FORCEOFF": lambda now: machine.ForceRequested(now, allow_job_loss=False),
}
# Published (retained) to the command topic once a command was taken.
CLEARED: Final = "-"
REPORT_INTERVAL: Final = timedelta(seconds=60)


class MqttBridge:
    """Publishes one plug's state and status, and takes the original's commands."""

    def __init__(self, hass: HomeAssistant, coordinator: OctoPlugoutCoordinator, root: str) -> None:
        """Bridge ``coordinator`` under the root topic ``root``."""
        self._hass = hass
        self._coordinator = coordinator
        self._root = root
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._published_state: machine.Phase | None = None

    @property
    def command_topic(self) -> str:
        """Where the original's commands come in."""
        return f"{self._root}/switch"

    async def async_start(self) -> None:
        """Wait for Home Assistant's MQTT client, then subscribe and publish."""
        if not await mqtt.async_wait_for_mqtt_client(self._hass):
            LOGGER.warning(
                "MQTT is on for %s, but Home Assistant's MQTT integration is not available",
                self._coordinator.config_entry.title,
            )
            return
        self._unsubscribe.append(
            await mqtt.async_subscribe(self._hass, self.command_topic, self._on_command, qos=1)
        )
        self._unsubscribe.append(self._coordinator.async_add_listener(self._on_update))
        self._unsubscribe.append(
            async_track_time_interval(self._hass, self._report, REPORT_INTERVAL)
        )
        self._on_update()
        self._report()

    @callback
    def async_stop(self) -> None:
        """Stop publishing and listening."""
        while self._unsubscribe:
            self._unsubscribe.pop()()

    def _publish(self, subtopic: str, payload: str, *, retain: bool = False) -> None:
        self._hass.async_create_task(
            self._async_publish(f"{self._root}/{subtopic}", payload, retain), eager_start=True
        )

    async def _async_publish(self, topic: str, payload: str, retain: bool) -> None:
        try:
            await mqtt.async_publish(self._hass, topic, payload, qos=0, retain=retain)
        except HomeAssistantError as err:
            # The broker is away; the MQTT integration says so and reconnects. The next
            # change or report publishes again.
            LOGGER.debug("Not published to %s: %s", topic, err)

    @callback
    def _on_update(self) -> None:
        state = self._coordinator.data.machine.state
        if state != self._published_state:
            self._published_state = state
            self._publish("plugstate", ORIGINAL_STATE_NAMES[state])

    @callback
    def _report(self, _now: datetime | None = None) -> None:
        printer = self._coordinator.data.printer
        if printer is None:
            self._publish("state/printstate", "Offline")
            return
        self._publish("state/printstate", printer.state_text)
        if printer.job_text is not None:
            self._publish("job/jobstate", printer.job_text)
        # The original reports the first hotend.
        hotend = next(iter(printer.hotends.values()), None)
        if hotend is not None and hotend.actual is not None:
            self._publish("state/extrudertemp", f"{hotend.actual:.1f}")
        if printer.bed is not None and printer.bed.actual is not None:
            self._publish("state/bedtemp", f"{printer.bed.actual:.1f}")
        if printer.progress is not None:
            self._publish("job/jobprogress", str(round(printer.progress)))

    @callback
    def _on_command(self, message: mqtt.ReceiveMessage) -> None:
        payload = message.payload
        text = payload if isinstance(payload, str) else bytes(payload).decode(errors="replace")
        text = text.strip()
        if text in (CLEARED, ""):
            return
        make_event = COMMANDS.get(text.upper())
        if make_event is None:
            LOGGER.warning("Ignored an unknown MQTT command on %s: %r", message.topic, text[:32])
            return
        try:
            self._coordinator.async_command(make_event(self._coordinator.now()))
        except machine.CommandRefused as err:
            LOGGER.warning("MQTT command %s refused: %s", text.upper(), err.reason)
        self._publish("switch", CLEARED, retain=True)
