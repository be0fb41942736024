"""A printer another Home Assistant integration reports: its entities as a printer host.

The job comes from a binary sensor (on: a job runs) or from a sensor and the states that mean
a job runs (and, optionally, a printer fault); the hotends and the bed from temperature
sensors; the halt from a button, and the host's having stopped answering from an entity that
goes unavailable. An entity that is unavailable, unknown or gone is a host that does not
answer: never a cool hotend, never an idle printer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfTemperature,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError, ServiceNotFound
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util.unit_conversion import TemperatureConverter

from .const import (
    CONF_BED_ENTITY,
    CONF_FAULT_STATES,
    CONF_HALT_BUTTON,
    CONF_HOST_ENTITY,
    CONF_HOTEND_ENTITIES,
    CONF_JOB_ENTITY,
    CONF_JOB_STATES,
    CONF_MESSAGE_ENTITY,
    CONF_UPDATE_INTERVAL,
    LOGGER,
)
from .host import (
    AccessProblem,
    HaltRefusal,
    HaltRefusedError,
    Heater,
    HostCapability,
    HostConnectionError,
    HostError,
    PrinterStatus,
    StatusStream,
)
from .machine import JobState

BINARY_SENSOR: Final = "binary_sensor"
# The actions that press a button and send a notify entity a message (named here so that the
# integration depends on neither).
PRESS: Final = ("button", "press")
SEND_MESSAGE: Final = ("notify", "send_message")
UPDATE_ENTITY: Final = ("homeassistant", "update_entity")
# How long a button press or message may take in the other integration before it counts as
# unanswered.
CALL_TIMEOUT: Final = 30.0
# How long the printer's integration may take to update its entities when asked before they
# are read as they are.
REFRESH_TIMEOUT: Final = 10.0
# How long after asking the printer's integration to update before asking again: Home
# Assistant puts off an integration's requested update that comes within 10 s of the last.
REFRESH_SPACING: Final = 10.5
# How often the printer's integration updates its entities unless the entry says otherwise:
# many poll every 30 s. A state may be this much older than what it tells, so a job's clock
# counts this much less (README: honest limits).
DEFAULT_UPDATE_INTERVAL: Final = 30.0
# The units a temperature sensor may report in: C, and F or K, converted (never taken as C).
TEMPERATURE_UNITS: Final = frozenset(UnitOfTemperature)


@dataclass(frozen=True, slots=True)
class PrinterEntities:
    """Which entities tell of the printer and its host, as a config entry names them."""

    job: str
    job_states: frozenset[str]
    fault_states: frozenset[str]
    hotends: tuple[str, ...]
    bed: str | None = None
    halt_button: str | None = None
    host: str | None = None
    message: str | None = None
    update_interval: float = DEFAULT_UPDATE_INTERVAL

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PrinterEntities:
        """From config entry data; states compare without case or surrounding spaces."""
        return cls(
            job=str(data[CONF_JOB_ENTITY]),
            job_states=_state_set(data.get(CONF_JOB_STATES, ())),
            fault_states=_state_set(data.get(CONF_FAULT_STATES, ())),
            hotends=tuple(data[CONF_HOTEND_ENTITIES]),
            bed=data.get(CONF_BED_ENTITY) or None,
            halt_button=data.get(CONF_HALT_BUTTON) or None,
            host=data.get(CONF_HOST_ENTITY) or None,
            message=data.get(CONF_MESSAGE_ENTITY) or None,
            update_interval=float(data.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)),
        )

    @property
    def host_sign(self) -> str | None:
        """The entity whose going unavailable means the host stopped answering.

        The host's own entity, else the halt button; None with no host to watch.
        """
        return self.host or self.halt_button

    @property
    def watched(self) -> tuple[str, ...]:
        """Every entity whose change may change the status."""
        optional = (self.bed, self.host_sign)
        return (self.job, *self.hotends, *(entity for entity in optional if entity))


def _state_set(states: Iterable[str]) -> frozenset[str]:
    return frozenset(normal_state(state) for state in states if state.strip())


def normal_state(state: str) -> str:
    """A state as it is compared: no case, no surrounding spaces."""
    return state.strip().casefold()


class SourceUnavailableError(HostConnectionError):
    """An entity the status needs is unavailable, unknown or gone."""

    def __init__(self, entity_id: str, state: str | None) -> None:
        """Name the entity and what it reads."""
        super().__init__(f"{entity_id} is {state or 'missing'}")


type StateOf = Callable[[str], State | None]


def read_status(entities: PrinterEntities, state_of: StateOf) -> PrinterStatus:
    """The printer's status from the entities' states now.

    With a host to watch (its entity, or the halt button), only that entity going unavailable
    is a host that does not answer; a job or temperature entity that cannot tell meanwhile is
    a printer the host lost (a printer fault, every hotend unknown), as OctoPrint reports a
    disconnected printer. With no host, any of them is a printer that does not answer.
    Raises ``SourceUnavailableError``.
    """
    host = entities.host_sign
    # A button's state is when it was last pressed (unknown if never): only its being
    # unavailable tells.
    if host is not None and ((host_state := state_of(host)) is None or _unavailable(host_state)):
        raise SourceUnavailableError(host, None if host_state is None else host_state.state)
    job_state = state_of(entities.job)
    job_unknown = job_state is None or _cannot_tell(job_state)
    readings = {entity: _celsius(state_of(entity)) for entity in entities.hotends}
    unread = [entity for entity, reading in readings.items() if reading is None]
    if host is None and (job_unknown or unread):
        entity = entities.job if job_unknown else unread[0]
        state = state_of(entity)
        raise SourceUnavailableError(entity, None if state is None else state.state)
    # One hotend unknown may be the hot one: then none counts as read.
    hotends = {
        entity: Heater(None if unread else reading, None) for entity, reading in readings.items()
    }
    bed = None if entities.bed is None else Heater(_celsius(state_of(entities.bed)), None)
    if job_state is None or job_unknown:
        return PrinterStatus(JobState.FAULT, STATE_UNAVAILABLE, hotends, bed)
    return PrinterStatus(_job(entities, job_state), job_state.state, hotends, bed)


def _unavailable(state: State) -> bool:
    return state.state == STATE_UNAVAILABLE


def _cannot_tell(state: State) -> bool:
    return state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN)


def _job(entities: PrinterEntities, state: State) -> JobState:
    if state.domain == BINARY_SENSOR:
        return JobState.RUNNING if state.state == STATE_ON else JobState.NONE
    value = normal_state(state.state)
    if value in entities.job_states:
        return JobState.RUNNING
    if value in entities.fault_states:
        return JobState.FAULT
    return JobState.NONE


def _celsius(state: State | None) -> float | None:
    """A temperature sensor's reading in C; None when it cannot tell."""
    if state is None or _cannot_tell(state):
        return None
    try:
        value = float(state.state)
    except ValueError:
        return None
    unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
    if unit in TEMPERATURE_UNITS and unit != UnitOfTemperature.CELSIUS:
        return TemperatureConverter.convert(value, unit, UnitOfTemperature.CELSIUS)
    return value


class EntityHost:
    """A printer (and maybe its host) seen through another integration's entities."""

    def __init__(self, hass: HomeAssistant, entities: PrinterEntities) -> None:
        """Read ``entities`` in ``hass``."""
        self.hass = hass
        self.entities = entities
        # When the printer's integration was last asked to update (the event loop's time).
        self._asked_at: float | None = None

    @property
    def capabilities(self) -> frozenset[HostCapability]:
        """Pushes always (state changes); halts and shows messages when given entities."""
        offered = {HostCapability.PUSH}
        if self.entities.halt_button:
            offered.add(HostCapability.HALT)
        if self.entities.message:
            offered.add(HostCapability.MESSAGE)
        return frozenset(offered)

    @property
    def name(self) -> str:
        """What the logs call it."""
        return "The printer's entities"

    @property
    def address(self) -> str:
        """The job entity, which names the printer."""
        return self.entities.job

    @property
    def url(self) -> str | None:
        """No page of its own."""
        return None

    @property
    def model(self) -> str:
        """The device's model."""
        return "Printer power controller"

    @property
    def status_lag(self) -> float:
        """States are as their integration last updated them."""
        return self.entities.update_interval

    async def async_check_credentials(self) -> None:
        """Nothing to prove: Home Assistant's own entities."""

    async def async_poll(self, *, check_busy: bool) -> PrinterStatus:
        """The status the entities show once their integration was asked to update them."""
        await self._async_refresh_source()
        return read_status(self.entities, self.hass.states.get)

    async def _async_refresh_source(self) -> None:
        """Ask the printer's integration to update the entities now.

        A poll decides a halt or a cut: it must see the printer as it is, not as it was at the
        integration's last update (a job started since). A polling integration fetches when
        asked, but Home Assistant puts off a request that comes within 10 s of the one before:
        asking no sooner than that makes every ask a fetch. One that pushes has nothing to
        fetch. Whatever comes of it, the entities are then read as they are: a failed update
        shows in them.
        """
        present = [entity for entity in self.entities.watched if self.hass.states.get(entity)]
        if not present:
            return
        if self._asked_at is not None:
            await asyncio.sleep(self._asked_at + REFRESH_SPACING - self.hass.loop.time())
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                await self.hass.services.async_call(
                    *UPDATE_ENTITY, {ATTR_ENTITY_ID: present}, blocking=True
                )
        except ServiceNotFound:
            # Nothing was asked (only where Home Assistant's own integration is not loaded).
            return
        except Exception as err:  # the other integration fails in its own way
            LOGGER.debug("The printer's entities were not updated on request: %r", err)
        self._asked_at = self.hass.loop.time()

    async def async_stream(self, stream: StatusStream) -> None:
        """Report each change of the entities until cancelled."""

        @callback
        def report() -> None:
            try:
                status = read_status(self.entities, self.hass.states.get)
            except HostError:
                # Nothing to tell but that something changed: a poll finds out what.
                stream.on_change(None)
                return
            stream.on_status(status)

        @callback
        def changed(event: Event[EventStateChangedData]) -> None:
            report()

        unsubscribe = async_track_state_change_event(self.hass, self.entities.watched, changed)
        stream.on_connection(True)
        # What changed since the poll that opened the stream, as a host's socket first tells.
        report()
        try:
            await asyncio.Event().wait()
        finally:
            unsubscribe()
            stream.on_connection(False)

    async def async_set_push_interval(self, seconds: float) -> None:
        """Entities change at the pace of their own integration."""

    async def async_halt(self) -> None:
        """Press the halt button; an unavailable one cannot be pressed."""
        button = self.entities.halt_button
        if button is None:
            raise HaltRefusedError(HaltRefusal.NO_COMMAND, "no halt button was chosen")
        state = self.hass.states.get(button)
        if state is None or state.state == STATE_UNAVAILABLE:
            raise SourceUnavailableError(button, None if state is None else state.state)
        await self._async_call(*PRESS, {ATTR_ENTITY_ID: button})

    async def async_show_message(self, text: str) -> bool:
        """Send ``text`` to the notify entity chosen for the printer's display."""
        if self.entities.message is None:
            return False
        message = {ATTR_ENTITY_ID: self.entities.message, "message": text}
        await self._async_call(*SEND_MESSAGE, message)
        return True

    async def async_heaters_off(self) -> bool:
        """Not offered: no common action turns a printer's heaters off."""
        return False

    async def async_access_problem(self) -> AccessProblem | None:
        """Nothing is refused."""
        return None

    async def _async_call(self, domain: str, service: str, data: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.hass.services.async_call(domain, service, data, blocking=True)
        except HomeAssistantError as err:
            raise HostError(f"{domain}.{service} refused: {err}") from err
        except Exception as err:
            # The other integration failed in its own way (its host gone, a timeout): nothing
            # says the request arrived.
            raise HostConnectionError(f"{domain}.{service} failed: {err!r}") from err
