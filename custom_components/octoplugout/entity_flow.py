"""Choosing a printer already in Home Assistant: its form, and what its device suggests.

Choosing the printer's device fills in what it can: the job sensor and the states its
integration uses, the hotend and bed temperatures, a button that halts the host, a notify
entity for the printer's display. Every suggestion can be changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, selector

from .compat import vol
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
)
from .entity_host import BINARY_SENSOR, DEFAULT_UPDATE_INTERVAL, TEMPERATURE_UNITS, normal_state

# States that mean a job runs, in the printer integrations users have: OctoPrint's (core),
# Bambu Lab's, PrusaLink's, Moonraker's, Elegoo's and Creality's. A state a printer does not
# use does no harm.
DEFAULT_JOB_STATES: Final = (
    "printing",
    "paused",
    "pausing",
    "resuming",
    "finishing",
    "cancelling",
    "printing from sd",
    "starting",
    "running",
    "pause",
    "prepare",
    "slicing",
    "busy",
    "attention",
)
# States that mean the printer is in a fault (it counts as a job until the fault limit).
DEFAULT_FAULT_STATES: Final = ("error", "offline after error")

# The slowest integration this host is for: one that updates less often than every ten
# minutes tells too late that a job started or ended.
MAX_UPDATE_INTERVAL: Final = 600

# A state some integrations show when they cannot reach the printer (Bambu Lab's print
# status): offered as a fault, never taken for an idle printer.
OFFLINE_STATE: Final = "offline"

# Words in an entity's name or id that suggest what it is: surely the job, maybe the job.
_JOB_WORDS: Final = ("current_state", "print_state", "print_status", "job_state")
_MAYBE_JOB_WORDS: Final = ("stage", "state", "status")
_PRINTING_WORDS: Final = ("printing", "print_running", "running")
_HOTEND_WORDS: Final = ("tool", "nozzle", "extruder", "hotend")
_HALT_WORDS: Final = ("shutdown", "shut_down", "halt", "power_off_host")
_HOST_WORDS: Final = ("host", "system", "machine")


def printer_schema(defaults: Mapping[str, Any], known_states: Iterable[str] = ()) -> vol.Schema:
    """The form that names the printer's entities and the states of its job sensor."""

    def optional(key: str) -> vol.Optional:
        value = defaults.get(key)
        return vol.Optional(key, description={"suggested_value": value} if value else None)

    def entity(domain: str | list[str], *, multiple: bool = False) -> selector.EntitySelector:
        return selector.EntitySelector(
            selector.EntitySelectorConfig(domain=domain, multiple=multiple)
        )

    # Any sensor: some integrations report temperatures in C without the temperature device
    # class (the Moonraker integration's); the form checks each one's unit.
    temperature = entity("sensor", multiple=True)
    bed = entity("sensor")
    return vol.Schema(
        {
            vol.Required(
                CONF_JOB_ENTITY, default=defaults.get(CONF_JOB_ENTITY, vol.UNDEFINED)
            ): entity([BINARY_SENSOR, "sensor"]),
            vol.Optional(
                CONF_JOB_STATES, default=list(defaults.get(CONF_JOB_STATES, DEFAULT_JOB_STATES))
            ): _states_selector([*DEFAULT_JOB_STATES, *known_states]),
            vol.Optional(
                CONF_FAULT_STATES,
                default=list(defaults.get(CONF_FAULT_STATES, DEFAULT_FAULT_STATES)),
            ): _states_selector([*DEFAULT_FAULT_STATES, *known_states]),
            vol.Required(
                CONF_HOTEND_ENTITIES, default=list(defaults.get(CONF_HOTEND_ENTITIES, []))
            ): temperature,
            optional(CONF_BED_ENTITY): bed,
            optional(CONF_HALT_BUTTON): entity("button"),
            optional(CONF_HOST_ENTITY): selector.EntitySelector(),
            optional(CONF_MESSAGE_ENTITY): entity("notify"),
            vol.Required(
                CONF_UPDATE_INTERVAL,
                default=defaults.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL),
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=0,
                    max=MAX_UPDATE_INTERVAL,
                    step=1,
                    unit_of_measurement="s",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
        }
    )


def _states_selector(states: Iterable[str]) -> selector.SelectSelector:
    unique = list(dict.fromkeys(state for state in states if state))
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=unique,
            multiple=True,
            custom_value=True,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )


def printer_errors(hass: HomeAssistant, user_input: Mapping[str, Any]) -> dict[str, str]:
    """What is missing: a hotend, or the states of a job sensor that is not a binary one."""
    errors: dict[str, str] = {}
    job = str(user_input.get(CONF_JOB_ENTITY, ""))
    if not job.startswith(f"{BINARY_SENSOR}.") and not _clean(user_input.get(CONF_JOB_STATES)):
        errors[CONF_JOB_STATES] = "job_states_needed"
    if not user_input.get(CONF_HOTEND_ENTITIES):
        errors[CONF_HOTEND_ENTITIES] = "hotend_needed"
    elif not all(_temperature(hass, entity) for entity in user_input[CONF_HOTEND_ENTITIES]):
        errors[CONF_HOTEND_ENTITIES] = "not_a_temperature"
    if (bed := user_input.get(CONF_BED_ENTITY)) and not _temperature(hass, bed):
        errors[CONF_BED_ENTITY] = "not_a_temperature"
    if hass.states.get(job) is None and er.async_get(hass).async_get(job) is None:
        errors[CONF_JOB_ENTITY] = "entity_not_found"
    return errors


def _temperature(hass: HomeAssistant, entity_id: str) -> bool:
    """Whether a sensor tells a temperature, by its unit or its device class.

    One that does not tell yet (not yet set up) gets the benefit of the doubt.
    """
    state = hass.states.get(entity_id)
    entry = er.async_get(hass).async_get(entity_id)
    if state is not None and state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) is not None:
        return state.attributes[ATTR_UNIT_OF_MEASUREMENT] in TEMPERATURE_UNITS
    if entry is not None and entry.unit_of_measurement is not None:
        return entry.unit_of_measurement in TEMPERATURE_UNITS
    if state is not None and state.attributes.get(ATTR_DEVICE_CLASS) is not None:
        return bool(state.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.TEMPERATURE)
    return True


def printer_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The entry data for the chosen entities; states only for a job sensor that needs them."""
    data: dict[str, Any] = {
        CONF_JOB_ENTITY: user_input[CONF_JOB_ENTITY],
        CONF_HOTEND_ENTITIES: list(user_input[CONF_HOTEND_ENTITIES]),
        CONF_UPDATE_INTERVAL: float(user_input.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)),
    }
    if not str(user_input[CONF_JOB_ENTITY]).startswith(f"{BINARY_SENSOR}."):
        data[CONF_JOB_STATES] = _clean(user_input.get(CONF_JOB_STATES))
        data[CONF_FAULT_STATES] = _clean(user_input.get(CONF_FAULT_STATES))
    for key in (CONF_BED_ENTITY, CONF_HALT_BUTTON, CONF_HOST_ENTITY, CONF_MESSAGE_ENTITY):
        if user_input.get(key):
            data[key] = user_input[key]
    return data


def _clean(states: Iterable[str] | None) -> list[str]:
    return list(dict.fromkeys(state.strip() for state in states or () if state.strip()))


def printer_title(hass: HomeAssistant, device_id: str | None, job_entity: str) -> str:
    """The printer's name: its device's, else the job entity's."""
    if device_id and (device := dr.async_get(hass).async_get(device_id)):
        return device.name_by_user or device.name or job_entity
    state = hass.states.get(job_entity)
    return state.name if state else job_entity


def states_of(hass: HomeAssistant, entity_id: str | None) -> list[str]:
    """The states a job sensor can show (an enum sensor's options), or the one it shows."""
    if not entity_id or (state := hass.states.get(entity_id)) is None:
        return []
    options = state.attributes.get("options")
    if isinstance(options, list):
        return [str(option) for option in options]
    if state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return []
    return [state.state]


def printer_entities_of_device(hass: HomeAssistant, device_id: str) -> dict[str, Any]:
    """What the device's entities suggest for each field."""
    found: dict[str, Any] = {}
    hotends: list[str] = []
    job_candidates: list[tuple[tuple[int, int], str]] = []
    halt_candidates: list[tuple[int, str]] = []
    for entry in er.async_entries_for_device(er.async_get(hass), device_id):
        words = f"{entry.entity_id} {entry.original_name or ''}".casefold().replace(" ", "_")
        device_class = entry.device_class or entry.original_device_class
        temperature = device_class == SensorDeviceClass.TEMPERATURE or (
            entry.unit_of_measurement in TEMPERATURE_UNITS
        )
        if entry.domain == "sensor" and temperature:
            if "target" in words:
                continue
            if "bed" in words:
                found.setdefault(CONF_BED_ENTITY, entry.entity_id)
            elif any(word in words for word in _HOTEND_WORDS):
                hotends.append(entry.entity_id)
        elif entry.domain == "sensor" and any(rank := _job_rank(entry, words)):
            job_candidates.append((rank, entry.entity_id))
        elif entry.domain == BINARY_SENSOR and any(word in words for word in _PRINTING_WORDS):
            job_candidates.append(((0, 1), entry.entity_id))
        elif entry.domain == "button" and any(word in words for word in _HALT_WORDS):
            halt_candidates.append((_host_rank(words), entry.entity_id))
        elif entry.domain == "notify":
            found.setdefault(CONF_MESSAGE_ENTITY, entry.entity_id)
    if hotends:
        found[CONF_HOTEND_ENTITIES] = sorted(hotends)
    if halt_candidates:
        # The host's own shutdown over a macro that happens to say so; then the first found.
        found[CONF_HALT_BUTTON] = max(halt_candidates, key=lambda candidate: candidate[0])[1]
    if job_candidates:
        job = max(job_candidates, key=lambda candidate: candidate[0])[1]
        found[CONF_JOB_ENTITY] = job
        if not job.startswith(f"{BINARY_SENSOR}."):
            known = states_of(hass, job) or _options(er.async_get(hass).async_get(job))
            found |= _suggested_states(known)
    return found


def _job_rank(entry: er.RegistryEntry, words: str) -> tuple[int, int]:
    """How surely a sensor tells the job: how many job states it has, then its name.

    A print's state wins over a stage, or over an idle timeout's state with the same states.
    """
    options = {normal_state(option) for option in _options(entry)}
    named = (
        2
        if any(word in words for word in _JOB_WORDS)
        else 1
        if any(word in words for word in _MAYBE_JOB_WORDS)
        else 0
    )
    return len(options & set(DEFAULT_JOB_STATES)), named


def _host_rank(words: str) -> int:
    return 1 if any(word in words for word in _HOST_WORDS) else 0


def _options(entry: er.RegistryEntry | None) -> list[str]:
    options = (entry.capabilities or {}).get("options") if entry else None
    return [str(option) for option in options] if isinstance(options, list) else []


def _suggested_states(known: list[str]) -> dict[str, list[str]]:
    """The default states the sensor has, in its own spelling (all of them if it tells none)."""
    if len(known) <= 1:
        return {}
    by_normal = {normal_state(state): state for state in known}
    return {
        CONF_JOB_STATES: [by_normal[s] for s in DEFAULT_JOB_STATES if s in by_normal],
        CONF_FAULT_STATES: [
            by_normal[s] for s in (*DEFAULT_FAULT_STATES, OFFLINE_STATE) if s in by_normal
        ],
    }
