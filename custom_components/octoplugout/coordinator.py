"""The coordinator: the printer host's status in (polled and pushed), one typed data object out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, State as HAState, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from . import machine
from .const import CONF_LOCK, DOMAIN, LOGGER
from .host import (
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
from .plug import Plug, PlugListeners
from .repairs import ISSUE_MISSING_PERMISSIONS, ISSUE_PUSH_SOCKET_BLOCKED, EntryIssues
from .runner import MachineRunner, RunnerHooks

type OctoPlugoutConfigEntry = ConfigEntry[OctoPlugoutCoordinator]

# Push sockets answered so in a row, with the host answering polls, before the user is told:
# one could be a proxy reloading; three over the reconnect pauses are its configuration.
PUSH_REFUSALS_BEFORE_ISSUE = 3


@dataclass(frozen=True, slots=True)
class PlugData:
    """What the entities, the diagnostics and MQTT show: the machine and the host's status."""

    machine: machine.MachineData
    printer: PrinterStatus | None
    power_off_at: datetime | None


class OctoPlugoutCoordinator(DataUpdateCoordinator[PlugData]):
    """The status of one printer host, fed to the machine of one plug."""

    config_entry: OctoPlugoutConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: OctoPlugoutConfigEntry,
        host: PrinterHost,
    ) -> None:
        """Set up; nothing runs until ``async_start``."""
        settings = machine.Settings.from_options(
            entry.options,
            restore_relay_during_job=not entry.data.get(CONF_LOCK),
            halts_host=HostCapability.HALT in host.capabilities,
            status_lag=host.status_lag,
        )
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(seconds=settings.slow_poll_interval),
        )
        self.host = host
        self.printer: PrinterStatus | None = None
        self._plug = Plug(hass, entry.data)
        self._issues = EntryIssues(hass, entry)
        self.runner = MachineRunner(
            hass,
            entry,
            host,
            self._plug,
            settings,
            RunnerHooks(self._publish, self._follow_machine, self._refresh_for_machine),
        )
        self._host_lost_logged = False
        self._auth_failed = False
        self._push_connected = False
        self._push_task: asyncio.Task[None] | None = None
        self._push_failures = 0
        self._push_refusals = 0
        self._push_retry_at = 0.0
        self._push_interval: float | None = None
        self._polls_under_way = 0
        self._poll_again = False

    @property
    def settings(self) -> machine.Settings:
        """The machine's settings."""
        return self.runner.settings

    # Start and stop

    async def async_start(self) -> None:
        """Restore or start the machine, listen to the plug, and ask the host."""
        await self.runner.async_start()
        entry = self.config_entry
        for unsubscribe in self._plug.async_listen(
            PlugListeners(self._on_relay, self._on_button, self.runner.keep_power_up_setting)
        ):
            entry.async_on_unload(unsubscribe)
        entry.async_on_unload(self.runner.async_stop_timers)
        await self.async_refresh()

    async def async_stop(self) -> None:
        """Save the machine for the next start."""
        await self.runner.async_save()

    # User commands (entities, services, MQTT)

    @callback
    def async_command(self, event: machine.MachineEvent) -> None:
        """Apply a user command; raises ``machine.CommandRefused`` when not allowed."""
        self.runner.apply(event)
        self._publish()

    async def async_send_message(self, text: str) -> bool:
        """Show ``text`` on the printer display; False when no printer is connected."""
        return await self.runner.async_show_message(text)

    def now(self) -> float:
        """The current time as the machine counts it."""
        return self.runner.now()

    # The plug

    @callback
    def _on_relay(self, state: HAState | None) -> None:
        self.runner.report_relay(state)
        self._publish()

    @callback
    def _on_button(self, long: bool) -> None:
        self.runner.apply(machine.ButtonPressed(self.now(), long=long))
        self._publish()

    # Polling

    @callback
    def _refresh_for_machine(self, action: machine.RefreshStatus) -> None:
        self._poll_soon(answer_under_way_will_do=action.asked_will_do)

    @callback
    def _poll_soon(self, *, answer_under_way_will_do: bool = False) -> None:
        """Ask for the status at once, or right after the poll under way.

        An answer asked for before the reason for asking came may not show it, so a poll under
        way is followed by one more, unless its answer will do (the machine asks again when it
        does not). A burst of reasons during one poll makes one more poll, not many; none is
        dropped, and none waits for a cooldown.
        """
        if self._polls_under_way:
            self._poll_again = self._poll_again or not answer_under_way_will_do
            return
        self._start_poll()

    @callback
    def _start_poll(self) -> None:
        # Under way from now: a reason that comes before it starts waits for its answer.
        self._polls_under_way += 1
        self.config_entry.async_create_task(self.hass, self._async_started_poll(), f"{DOMAIN} poll")

    async def _async_started_poll(self) -> None:
        self._polls_under_way -= 1
        await self.async_refresh()

    async def _async_update_data(self) -> PlugData:
        """Ask the host for its status and feed the answer to the machine."""
        self._polls_under_way += 1
        try:
            return await self._async_poll()
        finally:
            self._polls_under_way -= 1
            if self._poll_again and not self._polls_under_way:
                self._poll_again = False
                self._start_poll()

    async def _async_poll(self) -> PlugData:
        asked_at = self.now()
        try:
            printer = await self.host.async_poll(
                check_busy=machine.busy_matters(self.runner.data, self.settings)
            )
        except HostConnectionError as err:
            self.printer = None
            if not self._host_lost_logged:
                LOGGER.info("%s at %s is not answering: %s", self.host.name, self.host.address, err)
                self._host_lost_logged = True
            self.runner.apply(machine.OctoPrintLost(self.now()))
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
            self._issues.clear(ISSUE_MISSING_PERMISSIONS)
            self.printer = printer
            self.runner.apply(
                machine.StatusReceived(self.now(), printer.for_machine(), asked_at=asked_at)
            )
        if self.printer is not None and HostCapability.PUSH in self.host.capabilities:
            self._ensure_push_socket()
        return self._plug_data()

    async def _async_refused(self) -> None:
        """A refused request: a key the host no longer knows, or a user lacking permissions.

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
        self._issues.raise_issue(
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
        # An error page of the proxy (the host down, a proxy restarting) says nothing of it.
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
        self._issues.raise_issue(
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
            self._issues.clear(ISSUE_PUSH_SOCKET_BLOCKED)
        self._follow_machine()
        if not connected and self.config_entry.state is ConfigEntryState.LOADED:
            # Polling takes over at once.
            self._poll_soon()

    @callback
    def _on_pushed_status(self, printer: PrinterStatus) -> None:
        if printer == self.printer and self.runner.data.reachable:
            return
        status = printer.for_machine()
        event = machine.StatusReceived(self.now(), status, pushed=True)
        # What the entities show follows what the machine takes (it may ask for an answer).
        if machine.pushed_status_applies(self.runner.data, status):
            self.printer = printer
        self.runner.apply(event)
        self._publish()

    @callback
    def _on_pushed_change(self, job: machine.JobState | None) -> None:
        self.runner.apply(machine.JobEvent(self.now(), job))
        self._publish()

    # Out

    @callback
    def _follow_machine(self) -> None:
        """Poll, and ask the host to push, as often as the machine's state needs."""
        data = self.runner.data
        seconds = machine.poll_interval(data, self.settings, pushed=self._push_connected)
        self.update_interval = timedelta(seconds=seconds)
        push_interval = machine.push_interval(data, self.settings)
        if HostCapability.PUSH in self.host.capabilities and push_interval != self._push_interval:
            self._push_interval = push_interval
            self.config_entry.async_create_background_task(
                self.hass, self._async_set_push_interval(push_interval), f"{DOMAIN} push pace"
            )

    async def _async_set_push_interval(self, seconds: float) -> None:
        try:
            await self.host.async_set_push_interval(seconds)
        except HostError as err:
            LOGGER.debug("%s's push pace not changed: %s", self.host.name, err)

    @callback
    def _publish(self) -> None:
        # Not async_set_updated_data: that cancels a refresh the machine asked for which waits
        # for the debouncer's cooldown (a halt request waiting for its answer), and puts the
        # next poll off each time a pushed update arrives.
        self.data = self._plug_data()
        self.async_update_listeners()

    def _plug_data(self) -> PlugData:
        power_off_at = machine.power_off_at(self.runner.data, self.settings)
        return PlugData(
            machine=self.runner.data,
            printer=self.printer,
            power_off_at=dt_util.utc_from_timestamp(power_off_at) if power_off_at else None,
        )
