"""The runner: feeds events to the machine and carries out what it decides.

It owns what the machine needs around it: the store that lets it resume after a restart, the
timers behind its deadlines, the step events and repair issues it reports, and the calls to
the plug and the printer host that its actions become. It decides nothing itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, State as HAState, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from . import machine
from .const import DOMAIN, EVENT_OCTOPLUGOUT, LOGGER
from .host import (
    HaltRefusal,
    HaltRefusedError,
    HostCapability,
    HostConnectionError,
    HostError,
    PrinterHost,
)
from .plug import Plug, switch_on
from .repairs import ISSUE_RELAY_OFF_DURING_JOB, EntryIssues

STORAGE_VERSION = 1
# Seconds from new readings to their write: what of them a killed Home Assistant can lose.
SAVE_DELAY = 1.0
# Seconds a relay must stay off, when OctoPlugout did not switch it off, before it counts; and
# seconds after OctoPlugout switched it off in which an "on" must stay on before it counts.
RELAY_OFF_SETTLE = 2.0


@dataclass(frozen=True, slots=True)
class SetStayOffAtPowerUp:
    """Set the plug's "Stay off at power-up" switch."""

    off: bool


type Effect = machine.Action | SetStayOffAtPowerUp


@dataclass(frozen=True, slots=True)
class RunnerHooks:
    """What the runner asks of the coordinator."""

    # The machine changed: publish its data to the entities.
    publish: Callable[[], None]
    # After every event: the poll interval follows the machine's state.
    applied: Callable[[], None]
    # The machine asks for a status now.
    refresh: Callable[[machine.RefreshStatus], None]


class MachineRunner:
    """Runs the machine of one entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        host: PrinterHost,
        plug: Plug,
        settings: machine.Settings,
        hooks: RunnerHooks,
    ) -> None:
        """Nothing runs until ``async_start``."""
        self._hass = hass
        self._entry = entry
        self._host = host
        self._plug = plug
        self.settings = settings
        self._hooks = hooks
        self.data = machine.MachineData()
        self._issues = EntryIssues(hass, entry)
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}"
        )
        self._save_pending = False
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_relay_settle: CALLBACK_TYPE | None = None
        # Until when an "on" of the relay may still be older than OctoPlugout's own switch-off.
        self._relay_off_until = 0.0
        self._refusal: HaltRefusal | None = None
        self._action_lock = asyncio.Lock()

    async def async_start(self) -> None:
        """Resume the saved machine, or start a new one from the relay's state."""
        saved = await self._store.async_load()
        relay_state = self._plug.relay_state()
        if saved:
            self.data = machine.MachineData.from_dict(saved)
            self.apply(machine.Resumed(self.now()))
            self.report_relay(relay_state)
        else:
            self.apply(machine.Started(self.now(), switch_on(relay_state)))

    @callback
    def async_stop_timers(self) -> None:
        """No timer fires any more (the entry unloads)."""
        self._cancel_timer()
        self._cancel_relay_settle()

    async def async_save(self) -> None:
        """Write the machine now, for the next start."""
        self._cancel_timer()
        await self._store.async_save(self.data.as_dict())

    def now(self) -> float:
        """The current time as the machine counts it."""
        return dt_util.utcnow().timestamp()

    # Events

    @callback
    def apply(self, event: machine.MachineEvent) -> None:
        """Apply one event; raises ``machine.CommandRefused`` for a command not allowed now."""
        before = self.data
        self.data, actions = machine.transition(before, self.settings, event)
        if self.data.state != before.state:
            LOGGER.debug("%s -> %s on %s", before.state, self.data.state, type(event).__name__)
        if self.data != before:
            self._save(soon=machine.readings_only_changed(before, self.data))
        if any(isinstance(action, machine.TurnRelayOff) for action in actions):
            self._relay_off_until = float("inf")
        self._hooks.applied()
        self._schedule_timer()
        for action in actions:
            if isinstance(action, machine.Notify):
                self._notify(action)
        effects = [action for action in actions if not isinstance(action, machine.Notify)]
        if effects:
            self._entry.async_create_background_task(
                self._hass, self._carry_out(effects), f"{DOMAIN} actions"
            )

    @callback
    def report_relay(self, state: HAState | None) -> None:
        """Tell the machine what the relay reads; a change nobody asked for once it stays.

        A switch can read off for a moment without switching (its integration starting, a
        template not rendered yet, a plug reconnecting): taken at once, that would end a
        power-off under way and leave the halted host powered, untold. Right after OctoPlugout
        switched it off it can still read on: taken at once, that would be someone powering
        on, and a Power on pressed then would meet a machine already watching.
        """
        self._cancel_relay_settle()
        relay_on = switch_on(state)
        # A switch reports "on" until it has switched (and some once more after): right after
        # OctoPlugout switched it off, only an "on" that stays is someone powering on.
        stale_on = relay_on is True and self.now() < self._relay_off_until
        if stale_on or (relay_on is False and self.data.relay_on is not False):
            self._unsub_relay_settle = async_call_later(
                self._hass, RELAY_OFF_SETTLE, self._on_relay_settled
            )
            return
        self.apply(machine.RelayReported(self.now(), relay_on))

    @callback
    def _on_relay_settled(self, _: datetime) -> None:
        self._unsub_relay_settle = None
        self.apply(machine.RelayReported(self.now(), switch_on(self._plug.relay_state())))
        self._hooks.publish()

    @callback
    def _cancel_relay_settle(self) -> None:
        if self._unsub_relay_settle is not None:
            self._unsub_relay_settle()
            self._unsub_relay_settle = None

    @callback
    def keep_power_up_setting(self, stay_off: bool | None) -> None:
        """The plug's power-up setting follows the start-up mode, after the plug's restarts too."""
        wanted = machine.stay_off_at_power_up(self.settings)
        if stay_off is not None and stay_off != wanted:
            self._entry.async_create_background_task(
                self._hass, self._carry_out([SetStayOffAtPowerUp(wanted)]), f"{DOMAIN} power-up"
            )

    # The store

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
        return self.data.as_dict()

    # Timers

    @callback
    def _schedule_timer(self) -> None:
        self._cancel_timer()
        deadline = machine.next_deadline(self.data, self.settings, self.now())
        if deadline is not None:
            self._unsub_timer = async_track_point_in_utc_time(
                self._hass, self._on_timer, dt_util.utc_from_timestamp(deadline)
            )

    @callback
    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _on_timer(self, _: datetime) -> None:
        self._unsub_timer = None
        self.apply(machine.TimerFired(self.now()))
        self._hooks.publish()

    # Reports

    @callback
    def _notify(self, action: machine.Notify) -> None:
        data: dict[str, Any] = {
            "config_entry_id": self._entry.entry_id,
            "type": action.kind.value,
            "state": self.data.state.value,
        }
        if action.problem is not None:
            data["problem"] = action.problem.value
            LOGGER.warning("%s: %s", self._entry.title, action.problem.value)
            if action.problem == machine.Problem.SHUTDOWN_REFUSED and self._refusal:
                data["cause"] = self._refusal.value
                if self._refusal != HaltRefusal.ERROR:
                    # A halt the host cannot do until the user fixes it: the issue says how.
                    self._issues.raise_issue(self._refusal, ir.IssueSeverity.ERROR)
            if (
                action.problem == machine.Problem.RELAY_OFF_DURING_JOB
                and self.settings.restore_relay_during_job
            ):
                self._issues.raise_issue(
                    ISSUE_RELAY_OFF_DURING_JOB, ir.IssueSeverity.WARNING, relay=self._plug.relay
                )
        elif action.kind == machine.EventKind.COOLING:
            # A job ran to its end with power on: whatever cut it before is gone.
            self._issues.clear(ISSUE_RELAY_OFF_DURING_JOB)
        self._hass.bus.async_fire(EVENT_OCTOPLUGOUT, data)

    # Carrying out

    async def async_show_message(self, text: str) -> bool:
        """Show ``text`` on the printer display, between the machine's own actions."""
        async with self._action_lock:
            return await self._host.async_show_message(text)

    async def _carry_out(self, actions: Sequence[Effect]) -> None:
        """Carry out one transition's actions in order, one transition at a time."""
        async with self._action_lock:
            for action in actions:
                await self._carry_out_one(action)

    async def _carry_out_one(self, action: Effect) -> None:
        plug, host = self._plug, self._host
        match action:
            case machine.ShowPattern(phase=phase):
                await plug.async_set_led(phase.value)
            case machine.SetPowerLock(locked=locked):
                if plug.lock:
                    await plug.async_switch(plug.lock, locked)
            case SetStayOffAtPowerUp(off=off) if plug.power_up:
                await plug.async_switch(plug.power_up, off)
            case machine.TurnRelayOn():
                await plug.async_switch(plug.relay, True)
            case machine.TurnRelayOff():
                await plug.async_switch(plug.relay, False)
                self._relay_off_until = self.now() + RELAY_OFF_SETTLE
            case machine.SendMessage(text=text):
                if HostCapability.MESSAGE in host.capabilities:
                    await self._host_call(host.async_show_message(text))
            case machine.SetHeatersOff():
                if HostCapability.HEATERS_OFF in host.capabilities:
                    await self._host_call(host.async_heaters_off())
            case machine.SendShutdown():
                outcome = await self._send_shutdown()
                self.apply(machine.ShutdownAnswered(self.now(), outcome))
                self._hooks.publish()
            case machine.RefreshStatus():
                self._hooks.refresh(action)
            case _:
                raise AssertionError(f"unhandled action {action}")

    async def _host_call(self, call: Coroutine[Any, Any, bool]) -> None:
        try:
            await call
        except HostError as err:
            LOGGER.debug("%s call failed: %s", self._host.name, err)

    async def _send_shutdown(self) -> machine.ShutdownOutcome:
        self._refusal = None
        try:
            await self._host.async_halt()
        except HostConnectionError:
            return machine.ShutdownOutcome.UNREACHABLE
        except HaltRefusedError as err:
            LOGGER.error("%s could not halt its host: %s", self._host.name, err)
            self._refusal = err.refusal
        except HostError as err:
            LOGGER.error("%s could not halt its host: %s", self._host.name, err)
            self._refusal = HaltRefusal.ERROR
        else:
            for cause in HaltRefusal:
                if cause != HaltRefusal.ERROR:
                    self._issues.clear(cause)
            return machine.ShutdownOutcome.SENT
        return machine.ShutdownOutcome.REFUSED
