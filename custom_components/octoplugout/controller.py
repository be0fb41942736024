"""The controller: feeds the world into the machine and carries out what it decides."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State as HAState,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import (
    async_call_later,
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from . import machine
from .const import (
    BUTTON_LONG_PRESS,
    BUTTON_SHORT_PRESS,
    CONF_BUTTON,
    CONF_LED,
    CONF_LOCK,
    CONF_POWER_UP,
    CONF_RELAY,
    DOMAIN,
    EVENT_OCTOPLUGOUT,
    LOGGER,
)
from .host import (
    HaltRefusal,
    HaltRefusedError,
    HostAuthError,
    HostCapability,
    HostConnectionError,
    HostError,
    HostPushRefusedError,
    PrinterHost,
    PrinterStatus,
    StatusStream,
    reconnect_pause,
)

type OctoPlugoutConfigEntry = ConfigEntry[OctoPlugoutController]

STORAGE_VERSION = 1
# Seconds between two polls asked for at once (after OctoPrint's events).
REFRESH_COOLDOWN = 0.5
# Seconds from new readings to their write: what of them a killed Home Assistant can lose.
SAVE_DELAY = 1.0
# Seconds a relay must stay off, when OctoPlugout did not switch it off, before it counts.
RELAY_OFF_SETTLE = 2.0
# A key that logs in, whose user lacks permissions OctoPlugout needs.
ISSUE_MISSING_PERMISSIONS = "missing_permissions"
# Something else switched a plain relay off during a job (a plug's own schedule, an automation).
ISSUE_RELAY_OFF_DURING_JOB = "relay_off_during_job"
# A proxy in front of OctoPrint that answers the push socket with a page: polling stands in.
ISSUE_PUSH_SOCKET_BLOCKED = "push_socket_blocked"
# Push sockets answered so in a row, with OctoPrint answering polls, before the user is told:
# one could be a proxy reloading; three over the reconnect pauses are its configuration.
PUSH_REFUSALS_BEFORE_ISSUE = 3
_INACTIVE = (STATE_UNAVAILABLE, STATE_UNKNOWN)


@dataclass(frozen=True, slots=True)
class SetLedPattern:
    """Show a state's pattern on the plug's LED."""

    pattern: str


@dataclass(frozen=True, slots=True)
class SetPowerLock:
    """Turn the plug's power lock on or off."""

    locked: bool


@dataclass(frozen=True, slots=True)
class SetStayOffAtPowerUp:
    """Set the plug's "Stay off at power-up" switch."""

    off: bool


type Effect = machine.Action | SetLedPattern | SetPowerLock | SetStayOffAtPowerUp


@dataclass(frozen=True, slots=True)
class PlugData:
    """What the entities show: the machine's data and the host's last status."""

    machine: machine.MachineData
    printer: PrinterStatus | None
    power_off_at: datetime | None


def _job_running(printer: PrinterStatus) -> bool:
    return printer.job == machine.JobState.RUNNING


class OctoPlugoutController(DataUpdateCoordinator[PlugData]):
    """Owns the machine for one plug and one printer host."""

    config_entry: OctoPlugoutConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: OctoPlugoutConfigEntry,
        host: PrinterHost,
    ) -> None:
        """Set up; nothing runs until ``async_start``."""
        self.settings = machine.Settings.from_options(
            entry.options, restore_relay_during_job=not entry.data.get(CONF_LOCK)
        )
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(seconds=self.settings.slow_poll_interval),
            # Events ask for a status at once; a burst of them makes one more poll, not many.
            request_refresh_debouncer=Debouncer(
                hass, LOGGER, cooldown=REFRESH_COOLDOWN, immediate=True
            ),
        )
        self.host = host
        self.machine = machine.MachineData()
        self.printer: PrinterStatus | None = None
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}"
        )
        self._save_pending = False
        self._relay: str = entry.data[CONF_RELAY]
        self._button: str | None = entry.data.get(CONF_BUTTON)
        self._led: str | None = entry.data.get(CONF_LED)
        self._lock: str | None = entry.data.get(CONF_LOCK)
        self._power_up: str | None = entry.data.get(CONF_POWER_UP)
        self._last_button_event: str | None = None
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_relay_settle: CALLBACK_TYPE | None = None
        self._refusal: HaltRefusal | None = None
        self._action_lock = asyncio.Lock()
        self._host_lost_logged = False
        self._auth_failed = False
        self._outputs: tuple[str | None, bool | None] = (None, None)
        self._push_connected = False
        self._push_task: asyncio.Task[None] | None = None
        self._push_failures = 0
        self._push_refusals = 0
        self._push_retry_at = 0.0

    # Start and stop

    async def async_start(self) -> None:
        """Restore or start the machine and begin listening."""
        saved = await self._store.async_load()
        relay_state = self.hass.states.get(self._relay)
        if saved:
            self.machine = machine.MachineData.from_dict(saved)
            self._apply(machine.Resumed(self.now()))
            self._report_relay(relay_state)
        else:
            self._apply(machine.Started(self.now(), _relay_on(relay_state)))
        if self._button and (button_state := self.hass.states.get(self._button)):
            self._last_button_event = button_state.state
        entry = self.config_entry
        entry.async_on_unload(
            async_track_state_change_event(self.hass, [self._relay], self._on_relay_changed)
        )
        if self._button:
            entry.async_on_unload(
                async_track_state_change_event(self.hass, [self._button], self._on_button_changed)
            )
        if self._power_up:
            entry.async_on_unload(
                async_track_state_change_event(
                    self.hass, [self._power_up], self._on_power_up_setting_changed
                )
            )
            self._keep_power_up_setting(self.hass.states.get(self._power_up))
        entry.async_on_unload(self._cancel_timer)
        entry.async_on_unload(self._cancel_relay_settle)
        await self.async_refresh()

    async def async_stop(self) -> None:
        """Save the machine for the next start."""
        self._cancel_timer()
        await self._store.async_save(self.machine.as_dict())

    # Polling

    async def _async_update_data(self) -> PlugData:
        """Ask the host for its status and feed the answer to the machine."""
        asked_at = self.now()
        try:
            printer = await self.host.async_poll(
                check_busy=machine.busy_matters(self.machine, self.settings)
            )
        except HostConnectionError as err:
            self.printer = None
            if not self._host_lost_logged:
                LOGGER.info("%s at %s is not answering: %s", self.host.name, self.host.address, err)
                self._host_lost_logged = True
            self._apply(machine.OctoPrintLost(self.now()))
        except HostAuthError:
            # The host answers, so it is up; what it says is unknown until this is solved.
            self.printer = None
            if not self._auth_failed:
                self._auth_failed = True
                await self._async_refused()
        except HostError as err:
            self.printer = None
            LOGGER.debug("%s answered unexpectedly: %s", self.host.name, err)
        else:
            if self._host_lost_logged:
                LOGGER.info("%s at %s is answering again", self.host.name, self.host.address)
                self._host_lost_logged = False
            self._auth_failed = False
            self._clear_issue(ISSUE_MISSING_PERMISSIONS)
            self.printer = printer
            self._apply(
                machine.StatusReceived(self.now(), printer.for_machine(), asked_at=asked_at)
            )
        if self.printer is not None and HostCapability.PUSH in self.host.capabilities:
            self._ensure_push_socket()
        return self._plug_data()

    @callback
    def _raise_refusal_issue(self, cause: HaltRefusal) -> None:
        """A halt the host cannot do until the user fixes it: a repair issue says how."""
        if cause != HaltRefusal.ERROR:
            self._raise_issue(cause, ir.IssueSeverity.ERROR)

    @callback
    def _raise_issue(self, key: str, severity: ir.IssueSeverity, **placeholders: str) -> None:
        """A repair issue of this entry; its text is the translation ``key``."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(key),
            is_fixable=False,
            severity=severity,
            translation_key=key,
            translation_placeholders={"title": self.config_entry.title, **placeholders},
        )

    @callback
    def _clear_issue(self, key: str) -> None:
        """The cause of one of the entry's repair issues is gone: so is the issue."""
        ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(key))

    def _issue_id(self, key: str) -> str:
        return f"{key}_{self.config_entry.entry_id}"

    async def _async_refused(self) -> None:
        """A refused request: a key OctoPrint no longer knows, or a user lacking permissions.

        A new key cannot help the second (the same key would be accepted again, in a loop): the
        user is told which permissions to give instead.
        """
        try:
            problem = await self.host.async_access_problem()
        except HostError:
            # Unknown for now: look again at the next refusal.
            self._auth_failed = False
            return
        if problem is None:
            LOGGER.warning("%s rejected the API key; asking to re-authenticate", self.host.name)
            self.config_entry.async_start_reauth(self.hass)
            return
        LOGGER.warning(
            "%s's user %s lacks the permissions %s", self.host.name, problem.user, problem.missing
        )
        self._raise_issue(
            ISSUE_MISSING_PERMISSIONS,
            ir.IssueSeverity.ERROR,
            user=problem.user,
            permissions=problem.missing,
        )

    # The host's push

    @property
    def push_connected(self) -> bool:
        """Whether the host's status comes pushed now."""
        return self._push_connected

    @callback
    def _ensure_push_socket(self) -> None:
        """Open the push socket when none is open and the pause after a failure is over."""
        # A session that ends without waiting on anything ends before it is assigned here.
        if self._push_task is not None and not self._push_task.done():
            return
        if self.now() < self._push_retry_at:
            return
        self._push_task = self.config_entry.async_create_background_task(
            self.hass, self._async_push_session(), f"{DOMAIN} push socket"
        )

    async def _async_push_session(self) -> None:
        try:
            await self.host.async_stream(
                StatusStream(self._on_pushed_status, self._on_pushed_change, self._on_push_socket)
            )
        except HostPushRefusedError as err:
            self._push_failures += 1
            self._on_push_socket_refused(err)
        except HostError as err:
            self._push_failures += 1
            LOGGER.debug("%s's push socket failed: %s", self.host.name, err)
        else:
            self._push_failures = 0
        finally:
            self._push_task = None
        self._push_retry_at = self.now() + reconnect_pause(self._push_failures)

    @callback
    def _on_push_socket_refused(self, err: HostPushRefusedError) -> None:
        """A page instead of a socket: said once, when it is the way there and not a hiccup."""
        LOGGER.debug("%s's push socket failed: %s", self.host.name, err)
        # An error page of the proxy (OctoPrint down, a proxy restarting) says nothing of it.
        if err.status >= 500:
            return
        self._push_refusals += 1
        if self._push_refusals != PUSH_REFUSALS_BEFORE_ISSUE:
            return
        LOGGER.warning(
            "%s's push socket at %s is answered with HTTP %s: a reverse proxy in front "
            "of it does not pass websockets; OctoPlugout polls instead",
            self.host.name,
            self.host.address,
            err.status,
        )
        self._raise_issue(
            ISSUE_PUSH_SOCKET_BLOCKED,
            ir.IssueSeverity.WARNING,
            url=self.host.address,
            status=str(err.status),
        )

    @callback
    def _on_push_socket(self, connected: bool) -> None:
        LOGGER.debug("%s's push socket %s", self.host.name, "open" if connected else "closed")
        self._push_connected = connected
        if connected:
            self._push_refusals = 0
            self._clear_issue(ISSUE_PUSH_SOCKET_BLOCKED)
        self._set_poll_interval()
        if not connected and self.config_entry.state is ConfigEntryState.LOADED:
            # Polling takes over at once.
            self._refresh_now()

    @callback
    def _on_pushed_status(self, printer: PrinterStatus) -> None:
        if printer == self.printer and self.machine.reachable:
            return
        if self.printer is None or _job_running(printer) != _job_running(self.printer):
            # A host can push a status held back from before its latest change (a print
            # that started shows as idle a moment later); a job starts or ends only on a status
            # asked for now.
            self._refresh_now()
            return
        self.printer = printer
        self._apply(machine.StatusReceived(self.now(), printer.for_machine(), pushed=True))
        self._publish()

    @callback
    def _on_pushed_change(self) -> None:
        self._refresh_now()

    @callback
    def _refresh_now(self) -> None:
        self.hass.async_create_task(self.async_request_refresh(), eager_start=True)

    # Sources

    @callback
    def _on_relay_changed(self, event: Event[EventStateChangedData]) -> None:
        self._report_relay(event.data["new_state"])
        self._publish()

    @callback
    def _report_relay(self, state: HAState | None) -> None:
        """Tell the machine what the relay reads; an off nobody asked for once it stays off.

        A switch can read off for a moment without switching (its integration starting, a
        template not rendered yet, a plug reconnecting): taken at once, that would end a
        power-off under way and leave the halted host powered, untold.
        """
        self._cancel_relay_settle()
        relay_on = _relay_on(state)
        if relay_on is False and self.machine.relay_on is not False:
            self._unsub_relay_settle = async_call_later(
                self.hass, RELAY_OFF_SETTLE, self._on_relay_settled
            )
            return
        self._apply(machine.RelayReported(self.now(), relay_on))

    @callback
    def _on_relay_settled(self, _: datetime) -> None:
        self._unsub_relay_settle = None
        self._apply(machine.RelayReported(self.now(), _relay_on(self.hass.states.get(self._relay))))
        self._publish()

    @callback
    def _cancel_relay_settle(self) -> None:
        if self._unsub_relay_settle is not None:
            self._unsub_relay_settle()
            self._unsub_relay_settle = None

    @callback
    def _on_button_changed(self, event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        if new_state is None or new_state.state in _INACTIVE:
            return
        # An event entity's state is the time of its last event; the same time again (for
        # instance after the plug reconnects) is no new press.
        if new_state.state == self._last_button_event:
            return
        self._last_button_event = new_state.state
        event_type = new_state.attributes.get("event_type")
        if event_type not in (BUTTON_SHORT_PRESS, BUTTON_LONG_PRESS):
            LOGGER.debug("Ignoring button event %s", event_type)
            return
        self._apply(machine.ButtonPressed(self.now(), long=event_type == BUTTON_LONG_PRESS))
        self._publish()

    @callback
    def _on_power_up_setting_changed(self, event: Event[EventStateChangedData]) -> None:
        self._keep_power_up_setting(event.data["new_state"])

    @callback
    def _keep_power_up_setting(self, state: HAState | None) -> None:
        """The plug's power-up setting follows the start-up mode, after the plug's restarts too."""
        stay_off = _relay_on(state)
        wanted = machine.stay_off_at_power_up(self.settings)
        if stay_off is not None and stay_off != wanted:
            self.config_entry.async_create_background_task(
                self.hass, self._carry_out([SetStayOffAtPowerUp(wanted)]), f"{DOMAIN} power-up"
            )

    @callback
    def _on_timer(self, _: datetime) -> None:
        self._unsub_timer = None
        self._apply(machine.TimerFired(self.now()))
        self._publish()

    # User commands (entities, services)

    @callback
    def async_command(self, event: machine.MachineEvent) -> None:
        """Apply a user command; raises ``machine.CommandRefused`` when not allowed."""
        self._apply(event)
        self._publish()

    async def async_send_message(self, text: str) -> bool:
        """Show ``text`` on the printer display; False when no printer is connected."""
        async with self._action_lock:
            return await self.host.async_show_message(text)

    # The machine

    @callback
    def _apply(self, event: machine.MachineEvent) -> None:
        before = self.machine
        self.machine, actions = machine.transition(before, self.settings, event)
        if self.machine.state != before.state:
            LOGGER.debug("%s -> %s on %s", before.state, self.machine.state, type(event).__name__)
        if self.machine != before:
            self._save(soon=machine.readings_only_changed(before, self.machine))
        self._set_poll_interval()
        self._schedule_timer()
        for action in actions:
            if isinstance(action, machine.Notify):
                self._notify(action)
        # Outputs go first so that the lock is released before a relay-off in the same batch.
        effects: list[Effect] = self._output_changes()
        effects += [action for action in actions if not isinstance(action, machine.Notify)]
        if effects:
            self.config_entry.async_create_background_task(
                self.hass, self._carry_out(effects), f"{DOMAIN} actions"
            )

    @callback
    def _save(self, *, soon: bool) -> None:
        """Write the machine: at once, or for new readings alone within ``SAVE_DELAY``.

        A killed Home Assistant keeps only what was written. A write pending is not put off
        again (the store's own delay would never write while readings keep coming).
        """
        if soon and self._save_pending:
            return
        self._save_pending = True
        self._store.async_delay_save(self._machine_to_save, SAVE_DELAY if soon else 0)

    def _machine_to_save(self) -> dict[str, Any]:
        """What the store writes: the machine as it is when the write happens."""
        self._save_pending = False
        return self.machine.as_dict()

    @callback
    def _set_poll_interval(self) -> None:
        seconds = machine.poll_interval(self.machine, self.settings, pushed=self._push_connected)
        self.update_interval = timedelta(seconds=seconds)

    @callback
    def _publish(self) -> None:
        self.async_set_updated_data(self._plug_data())

    def _plug_data(self) -> PlugData:
        power_off_at = machine.power_off_at(self.machine, self.settings)
        return PlugData(
            machine=self.machine,
            printer=self.printer,
            power_off_at=dt_util.utc_from_timestamp(power_off_at) if power_off_at else None,
        )

    def now(self) -> float:
        """The current time as the machine counts it."""
        return dt_util.utcnow().timestamp()

    @callback
    def _schedule_timer(self) -> None:
        self._cancel_timer()
        deadline = machine.next_deadline(self.machine, self.settings, self.now())
        if deadline is not None:
            self._unsub_timer = async_track_point_in_utc_time(
                self.hass, self._on_timer, dt_util.utc_from_timestamp(deadline)
            )

    @callback
    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _notify(self, action: machine.Notify) -> None:
        data: dict[str, Any] = {
            "config_entry_id": self.config_entry.entry_id,
            "type": action.kind.value,
            "state": self.machine.state.value,
        }
        if action.problem is not None:
            data["problem"] = action.problem.value
            LOGGER.warning("%s: %s", self.config_entry.title, action.problem.value)
            if action.problem == machine.Problem.SHUTDOWN_REFUSED and self._refusal:
                data["cause"] = self._refusal.value
                self._raise_refusal_issue(self._refusal)
            if (
                action.problem == machine.Problem.RELAY_OFF_DURING_JOB
                and self.settings.restore_relay_during_job
            ):
                self._raise_issue(
                    ISSUE_RELAY_OFF_DURING_JOB, ir.IssueSeverity.WARNING, relay=self._relay
                )
        elif action.kind == machine.EventKind.COOLING:
            # A job ran to its end with power on: whatever cut it before is gone.
            self._clear_issue(ISSUE_RELAY_OFF_DURING_JOB)
        self.hass.bus.async_fire(EVENT_OCTOPLUGOUT, data)

    @callback
    def _output_changes(self) -> list[Effect]:
        """What keeps the plug's LED pattern and power lock in step with the machine."""
        pattern, locked = self.machine.state.value, machine.lock_wanted(self.machine)
        previous_pattern, previous_locked = self._outputs
        self._outputs = (pattern, locked)
        changes: list[Effect] = []
        if self._led and pattern != previous_pattern:
            changes.append(SetLedPattern(pattern))
        if self._lock and locked != previous_locked:
            changes.append(SetPowerLock(locked))
        return changes

    async def _set_led(self, pattern: str) -> None:
        assert self._led is not None
        state = self.hass.states.get(self._led)
        if state is None or pattern not in state.attributes.get("options", []):
            return
        await self._call_service("select", "select_option", self._led, {"option": pattern})

    async def _call_switch(self, entity_id: str, on: bool) -> None:
        await self._call_service("switch", SERVICE_TURN_ON if on else SERVICE_TURN_OFF, entity_id)

    async def _call_service(
        self, domain: str, service: str, entity_id: str, extra: dict[str, Any] | None = None
    ) -> None:
        try:
            await self.hass.services.async_call(
                domain, service, {ATTR_ENTITY_ID: entity_id, **(extra or {})}, blocking=True
            )
        except HomeAssistantError as err:
            LOGGER.warning("Could not call %s.%s for %s: %s", domain, service, entity_id, err)

    async def _carry_out(self, actions: Sequence[Effect]) -> None:
        """Carry out one transition's actions in order, one transition at a time."""
        async with self._action_lock:
            for action in actions:
                await self._carry_out_one(action)

    async def _carry_out_one(self, action: Effect) -> None:
        match action:
            case SetLedPattern(pattern=pattern):
                await self._set_led(pattern)
            case SetPowerLock(locked=locked) if self._lock:
                await self._call_switch(self._lock, locked)
            case SetStayOffAtPowerUp(off=off) if self._power_up:
                await self._call_switch(self._power_up, off)
            case machine.TurnRelayOn():
                await self._call_switch(self._relay, True)
            case machine.TurnRelayOff():
                await self._call_switch(self._relay, False)
            case machine.SendMessage(text=text):
                if HostCapability.MESSAGE in self.host.capabilities:
                    await self._host_call(self.host.async_show_message(text))
            case machine.SetHeatersOff():
                if HostCapability.HEATERS_OFF in self.host.capabilities:
                    await self._host_call(self.host.async_heaters_off())
            case machine.SendShutdown():
                outcome = await self._send_shutdown()
                self._apply(machine.ShutdownAnswered(self.now(), outcome))
                self._publish()
            case machine.RefreshStatus():
                await self.async_request_refresh()
            case _:
                raise AssertionError(f"unhandled action {action}")

    async def _host_call(self, call: Coroutine[Any, Any, bool]) -> None:
        try:
            await call
        except HostError as err:
            LOGGER.debug("%s call failed: %s", self.host.name, err)

    async def _send_shutdown(self) -> machine.ShutdownOutcome:
        self._refusal = None
        try:
            await self.host.async_halt()
        except HostConnectionError:
            return machine.ShutdownOutcome.UNREACHABLE
        except HaltRefusedError as err:
            LOGGER.error("%s could not halt its host: %s", self.host.name, err)
            self._refusal = err.refusal
        except HostError as err:
            LOGGER.error("%s could not halt its host: %s", self.host.name, err)
            self._refusal = HaltRefusal.ERROR
        else:
            for cause in (HaltRefusal.NOT_PERMITTED, HaltRefusal.NO_COMMAND):
                self._clear_issue(cause)
            return machine.ShutdownOutcome.SENT
        return machine.ShutdownOutcome.REFUSED


def _relay_on(state: HAState | None) -> bool | None:
    """A switch's state: on, off or (unavailable, unknown) None."""
    if state is None or state.state in _INACTIVE:
        return None
    return state.state == STATE_ON
