"""A printer another integration reports, through template entities standing in for it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.octoplugout.const import (
    CONF_BED_ENTITY,
    CONF_BUTTON,
    CONF_FAULT_STATES,
    CONF_HALT_BUTTON,
    CONF_HOST_ENTITY,
    CONF_HOST_TYPE,
    CONF_HOTEND_ENTITIES,
    CONF_JOB_ENTITY,
    CONF_JOB_STATES,
    CONF_MESSAGE_ENTITY,
    CONF_RELAY,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
    EVENT_OCTOPLUGOUT,
    HOST_ENTITIES,
)
from custom_components.octoplugout.entity_host import (
    DEFAULT_UPDATE_INTERVAL,
    PrinterEntities,
    SourceUnavailableError,
    read_status,
)
from custom_components.octoplugout.machine import JobState
from custom_components.octoplugout.options import OPTION_DEFAULTS

from .common import BUTTON, CYCLE_EVENTS, RELAY, FakePlug

# What the template entities read: the printer's state, each hotend, the bed, and whether
# its host is up (the halt button turns it off).
STATE_HELPER = "input_select.printer_state"
NOZZLES = ("input_number.nozzle_0", "input_number.nozzle_1")
BED_HELPER = "input_number.bed"
HOST_UP = "input_boolean.host_up"

JOB_SENSOR = "sensor.printer_state"
JOB_BINARY = "binary_sensor.printer_printing"
HOTENDS = ["sensor.printer_nozzle_0", "sensor.printer_nozzle_1"]
BED = "sensor.printer_bed"
HALT = "button.printer_shutdown_system"
HALT_FAILING = "button.printer_shutdown_broken"
STATE = "sensor.octoplugout_printer_state"

UP = "{{ is_state('input_boolean.host_up', 'on') }}"
# The default minimum job time, and what a state as old as its integration's last update
# may lack.
ARMS_AFTER = 300 + DEFAULT_UPDATE_INTERVAL + 1


def _temperature(name: str, helper: str) -> dict[str, Any]:
    return {
        "name": name,
        "unit_of_measurement": "°C",
        "device_class": "temperature",
        "state": f"{{{{ states('{helper}') }}}}",
        "availability": UP,
    }


TEMPLATES = [
    {
        "binary_sensor": [
            {
                "name": "printer printing",
                "state": "{{ states('input_select.printer_state') in ['printing', 'paused'] }}",
                "availability": UP,
            }
        ],
        "sensor": [
            {
                "name": "printer state",
                "state": "{{ states('input_select.printer_state') | title }}",
                "availability": UP,
            },
            _temperature("printer nozzle 0", NOZZLES[0]),
            _temperature("printer nozzle 1", NOZZLES[1]),
            _temperature("printer bed", BED_HELPER),
        ],
        "button": [
            {
                "name": "printer shutdown system",
                "press": [{"action": "input_boolean.turn_off", "target": {"entity_id": HOST_UP}}],
                "availability": UP,
            },
            {
                "name": "printer shutdown broken",
                "press": [{"action": "shell_command.no_such_command"}],
                "availability": UP,
            },
        ],
    }
]


async def _set_up_printer(hass: HomeAssistant) -> None:
    """The printer's integration, played by helpers and template entities."""
    number = {"min": 0, "max": 300, "step": 0.1, "initial": 25}
    assert await async_setup_component(
        hass,
        "input_select",
        {"input_select": {"printer_state": {"options": ["idle", "printing", "paused", "error"]}}},
    )
    assert await async_setup_component(
        hass,
        "input_number",
        {"input_number": {"nozzle_0": number, "nozzle_1": number, "bed": number}},
    )
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"host_up": {"initial": True}}}
    )
    assert await async_setup_component(hass, "template", {"template": TEMPLATES})
    await hass.async_block_till_done()


class Printer:
    """The printer and its host, driven through the helpers its template entities read."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Drive ``hass``'s helpers."""
        self.hass = hass

    async def print_until_armed(self, freezer: FrozenDateTimeFactory) -> None:
        """A print, hot, that runs until OctoPlugout armed the power-off."""
        await self.state("printing")
        await self.hotends(210, 25)
        await advance(self.hass, freezer, ARMS_AFTER)
        assert _phase(self.hass) == "armed"

    async def state(self, state: str) -> None:
        """The printer's state (idle, printing, paused, error)."""
        await self._call("input_select", "select_option", STATE_HELPER, option=state)

    async def hotends(self, *temperatures: float) -> None:
        """Each hotend's temperature."""
        for helper, temperature in zip(NOZZLES, temperatures, strict=False):
            await self._call("input_number", "set_value", helper, value=temperature)

    async def host(self, *, up: bool) -> None:
        """The host comes up, or goes away."""
        await self._call("input_boolean", "turn_on" if up else "turn_off", HOST_UP)

    @property
    def host_up(self) -> bool:
        """Whether the host is up (not halted)."""
        state = self.hass.states.get(HOST_UP)
        return state is not None and state.state == STATE_ON

    async def _call(self, domain: str, service: str, entity_id: str, **data: Any) -> None:
        await self.hass.services.async_call(
            domain, service, {"entity_id": entity_id, **data}, blocking=True
        )
        # The change reaches OctoPlugout through state events, one loop turn per hop (helper,
        # template entity, OctoPlugout's listener, its poll).
        for _ in range(4):
            await self.hass.async_block_till_done()


def _entry(**data: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="OctoPlugout Printer",
        unique_id=f"{HOST_ENTITIES}:printer",
        data={
            CONF_HOST_TYPE: HOST_ENTITIES,
            CONF_JOB_ENTITY: JOB_SENSOR,
            CONF_JOB_STATES: ["Printing", "Paused"],
            CONF_FAULT_STATES: ["Error"],
            CONF_HOTEND_ENTITIES: HOTENDS,
            CONF_HALT_BUTTON: HALT,
            CONF_RELAY: RELAY,
        }
        | data,
        options=dict(OPTION_DEFAULTS),
    )


async def _start(hass: HomeAssistant, plug: FakePlug, **data: Any) -> Printer:
    await _set_up_printer(hass)
    await plug.async_setup()
    entry = _entry(**data)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return Printer(hass)


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let fake time pass and what was due run; the entities' push runs until unloaded (a
    background task of the entry), so it is not waited for."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    # What fell due, and what it started (a timer's cut calls the relay's service).
    for _ in range(2):
        await hass.async_block_till_done()


def _phase(hass: HomeAssistant) -> str:
    state = hass.states.get(STATE)
    assert state is not None
    return state.state


@pytest.mark.parametrize(
    "job",
    [{}, {CONF_JOB_ENTITY: JOB_BINARY}],
    ids=["state sensor", "binary sensor"],
)
async def test_a_print_ends_with_the_halt_button_pressed_then_power_cut(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug, job: dict[str, Any]
) -> None:
    printer = await _start(hass, plug, **job)
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    assert _phase(hass) == "idle"

    await printer.state("printing")
    await printer.hotends(210, 25)
    assert _phase(hass) == "print_started"
    await advance(hass, freezer, ARMS_AFTER)
    assert _phase(hass) == "armed"

    # Paused is still the job; the second hotend is the hot one after the job.
    await printer.state("paused")
    assert _phase(hass) == "armed"
    await printer.hotends(210, 120)
    await printer.state("idle")
    await printer.hotends(45, 120)
    await advance(hass, freezer, 5)
    assert _phase(hass) == "cooling"
    assert printer.host_up

    await printer.hotends(45, 49)
    await advance(hass, freezer, 5)
    assert _phase(hass) == "powering_off"
    # The template button halted the host: its entities went unavailable at once.
    assert not printer.host_up
    assert plug.relay == STATE_ON
    await advance(hass, freezer, 2)
    await advance(hass, freezer, 15)
    assert _phase(hass) == "off"
    assert plug.relay == STATE_OFF
    assert [event.data["type"] for event in events] == CYCLE_EVENTS


async def test_an_unavailable_source_is_no_cool_hotend_and_no_idle_printer(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug)
    await printer.print_until_armed(freezer)

    # The integration lost the printer: its entities go unavailable, the job is kept.
    await printer.host(up=False)
    await advance(hass, freezer, 600)
    assert _phase(hass) == "armed"
    assert plug.relay == STATE_ON
    reachable = hass.states.get("binary_sensor.octoplugout_printer_printer_reachable")
    assert reachable is not None
    assert reachable.state == STATE_OFF

    await printer.host(up=True)
    await printer.state("idle")
    await printer.hotends(30, 30)
    await advance(hass, freezer, 5)
    assert _phase(hass) in ("cooling", "powering_off")
    await advance(hass, freezer, 30)
    assert plug.relay == STATE_OFF


async def test_a_print_started_during_the_cool_down_arms_again(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug)
    await printer.print_until_armed(freezer)
    await printer.state("idle")
    await advance(hass, freezer, 5)
    assert _phase(hass) == "cooling"
    await printer.state("printing")
    assert _phase(hass) == "armed"
    assert printer.host_up


async def test_a_printer_fault_keeps_power_on(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug)
    await printer.print_until_armed(freezer)
    await printer.state("error")
    await printer.hotends(30, 30)
    await advance(hass, freezer, 600)
    assert _phase(hass) == "armed"
    assert printer.host_up
    assert plug.relay == STATE_ON


@pytest.mark.expected_error("could not halt its host: button.press refused")
async def test_a_halt_button_that_fails_keeps_power_and_says_so(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug, **{CONF_HALT_BUTTON: HALT_FAILING})
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    await printer.print_until_armed(freezer)
    await printer.state("idle")
    await printer.hotends(30, 30)
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 5)
    assert _phase(hass) == "on"
    assert plug.relay == STATE_ON
    problems = [event.data for event in events if event.data["type"] == "problem"]
    assert problems[-1]["problem"] == "shutdown_refused"


async def test_power_is_cut_only_after_the_host_entity_goes_unavailable(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    # The host's own entity (not the button's) tells when it has halted: here one that stays
    # available for a while after the press.
    hass.states.async_set("sensor.pi_uptime", "1000")
    printer = await _start(hass, plug, **{CONF_HOST_ENTITY: "sensor.pi_uptime"})
    await printer.print_until_armed(freezer)
    await printer.state("idle")
    await printer.hotends(30, 30)
    await advance(hass, freezer, 5)
    await advance(hass, freezer, 5)
    assert _phase(hass) == "powering_off"
    # The press halted the host the template entities stand for: they went unavailable, but
    # the host's own entity still answers, so this is no halted host yet.
    assert not printer.host_up
    await advance(hass, freezer, 60)
    assert plug.relay == STATE_ON
    hass.states.async_set("sensor.pi_uptime", STATE_UNAVAILABLE)
    await advance(hass, freezer, 2)
    await advance(hass, freezer, 15)
    assert plug.relay == STATE_OFF


async def test_with_no_halt_button_power_goes_off_after_the_cool_down(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug, **{CONF_HALT_BUTTON: None})
    events = async_capture_events(hass, EVENT_OCTOPLUGOUT)
    await printer.print_until_armed(freezer)
    await printer.state("idle")
    await advance(hass, freezer, 5)
    assert _phase(hass) == "cooling"
    # With no host to watch, a hotend that cannot tell is a printer that does not answer.
    await printer.host(up=False)
    await printer.hotends(30, 30)
    await advance(hass, freezer, 600)
    assert _phase(hass) == "cooling"
    assert plug.relay == STATE_ON
    await printer.host(up=True)
    await advance(hass, freezer, 5)
    assert _phase(hass) == "off"
    assert plug.relay == STATE_OFF
    assert printer.host_up
    assert [event.data["type"] for event in events] == [
        "print_started",
        "armed",
        "cooling",
        "powered_off",
    ]


async def test_messages_go_to_the_chosen_notify_entity(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    sent = async_mock_service(hass, "notify", "send_message")
    printer = await _start(hass, plug, **{CONF_MESSAGE_ENTITY: "notify.printer_display"})
    await printer.state("printing")
    await printer.hotends(210, 25)
    assert _phase(hass) == "print_started"
    messages = [(call.data["entity_id"], call.data["message"]) for call in sent]
    assert ("notify.printer_display", "PRINT started") in messages


async def test_the_plug_s_button_and_the_actions_work_as_with_any_host(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug, **{CONF_BUTTON: BUTTON})
    reachable = hass.states.get("binary_sensor.octoplugout_printer_printer_reachable")
    assert reachable is not None
    assert reachable.state == STATE_ON
    hotend = hass.states.get("sensor.octoplugout_printer_hotend_temperature")
    assert hotend is not None
    assert float(hotend.state) == 25
    # No notify entity was chosen: a clear error, not a traceback.
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "send_message",
            {
                "config_entry_id": hass.config_entries.async_entries(DOMAIN)[0].entry_id,
                "message": "hello",
            },
            blocking=True,
        )
    assert refused.value.translation_key == "no_message_entity"
    # A long press powers off an idle, cool printer: halt, then the cut once the host is gone.
    freezer.tick(timedelta(seconds=1))
    plug.press("long_press")
    # The press, the fresh poll it asks for, the halt button, the host's entities going.
    for _ in range(4):
        await hass.async_block_till_done()
    assert _phase(hass) == "powering_off"
    assert not printer.host_up
    await advance(hass, freezer, 2)
    await advance(hass, freezer, 15)
    assert _phase(hass) == "off"
    assert plug.relay == STATE_OFF


async def test_a_short_job_does_not_arm(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug)
    await printer.state("printing")
    await printer.hotends(210, 25)
    await advance(hass, freezer, 300)
    assert _phase(hass) == "print_started"
    await printer.state("idle")
    await printer.hotends(30, 30)
    await advance(hass, freezer, 600)
    assert _phase(hass) == "idle"
    assert printer.host_up
    assert plug.relay == STATE_ON


async def test_a_job_counts_as_much_less_as_its_integration_may_update_late(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug, **{CONF_UPDATE_INTERVAL: 120})
    await printer.state("printing")
    await printer.hotends(210, 25)
    # Enough with the default 30 s, not with an integration that updates every 2 minutes.
    await advance(hass, freezer, ARMS_AFTER)
    assert _phase(hass) == "print_started"
    await advance(hass, freezer, 120 - DEFAULT_UPDATE_INTERVAL)
    assert _phase(hass) == "armed"


async def test_a_host_answering_again_during_the_countdown_keeps_power(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, plug: FakePlug
) -> None:
    printer = await _start(hass, plug)
    await printer.print_until_armed(freezer)
    await printer.state("idle")
    # Cool at once: the halt button is pressed and the host goes away.
    await printer.hotends(30, 30)
    assert _phase(hass) == "powering_off"
    assert not printer.host_up
    # Back before the halt delay ran out (someone started the Pi again): no cut.
    await advance(hass, freezer, 10)
    assert plug.relay == STATE_ON
    await printer.host(up=True)
    await advance(hass, freezer, 60)
    assert plug.relay == STATE_ON
    assert _phase(hass) != "off"


# The status read from states, without Home Assistant around it.

ENTITIES = PrinterEntities.from_data(
    {
        CONF_JOB_ENTITY: JOB_SENSOR,
        CONF_JOB_STATES: [" Printing", "PAUSED"],
        CONF_FAULT_STATES: ["Error"],
        CONF_HOTEND_ENTITIES: HOTENDS,
        CONF_BED_ENTITY: BED,
        CONF_HALT_BUTTON: HALT,
    }
)
CELSIUS = {"unit_of_measurement": "°C"}
READY: Mapping[str, State] = {
    JOB_SENSOR: State(JOB_SENSOR, "printing"),
    HOTENDS[0]: State(HOTENDS[0], "200.5", CELSIUS),
    HOTENDS[1]: State(HOTENDS[1], "25", CELSIUS),
    BED: State(BED, "60", CELSIUS),
    HALT: State(HALT, STATE_UNKNOWN),
}


def _read(**changed: State | None) -> Any:
    states = {**READY}
    for key, state in changed.items():
        entity = {"job": JOB_SENSOR, "hotend": HOTENDS[1], "bed": BED, "halt": HALT}[key]
        if state is None:
            del states[entity]
        else:
            states[entity] = state
    return read_status(ENTITIES, states.get)


@pytest.mark.parametrize(
    ("job_state", "job"),
    [
        ("printing", JobState.RUNNING),
        ("Paused", JobState.RUNNING),
        ("error", JobState.FAULT),
        ("idle", JobState.NONE),
        ("Operational", JobState.NONE),
    ],
)
def test_the_job_sensor_s_states_tell_the_job(job_state: str, job: JobState) -> None:
    assert _read(job=State(JOB_SENSOR, job_state)).job == job


@pytest.mark.parametrize(
    ("state", "job"), [(STATE_ON, JobState.RUNNING), (STATE_OFF, JobState.NONE)]
)
def test_a_binary_job_sensor_tells_the_job(state: str, job: JobState) -> None:
    entities = PrinterEntities.from_data({CONF_JOB_ENTITY: JOB_BINARY, CONF_HOTEND_ENTITIES: []})
    assert read_status(entities, {JOB_BINARY: State(JOB_BINARY, state)}.get).job == job


def test_every_hotend_and_the_bed_are_read_in_celsius() -> None:
    status = _read(hotend=State(HOTENDS[1], "392", {"unit_of_measurement": "°F"}))
    assert status.for_machine().tool_temperatures == (200.5, 200.0)
    assert status.for_machine().hottest_tool == 200.5
    assert status.bed is not None
    assert status.bed.actual == 60.0


@pytest.mark.parametrize("state", [None, STATE_UNAVAILABLE])
def test_a_host_entity_that_is_unavailable_is_a_host_that_does_not_answer(
    state: str | None,
) -> None:
    with pytest.raises(SourceUnavailableError, match=HALT):
        _read(halt=None if state is None else State(HALT, state))


def test_a_halt_button_never_pressed_still_answers() -> None:
    assert _read(halt=State(HALT, STATE_UNKNOWN)).job == JobState.RUNNING


@pytest.mark.parametrize("state", [None, STATE_UNAVAILABLE, STATE_UNKNOWN])
def test_a_job_entity_that_cannot_tell_beside_a_host_that_answers_is_a_printer_fault(
    state: str | None,
) -> None:
    status = _read(job=None if state is None else State(JOB_SENSOR, state))
    assert status.job == JobState.FAULT
    assert status.for_machine().hottest_tool == 200.5


@pytest.mark.parametrize("state", [None, STATE_UNAVAILABLE, STATE_UNKNOWN, "hot"])
def test_one_hotend_that_cannot_tell_leaves_every_hotend_unknown(state: str | None) -> None:
    # The unknown one may be the hot one: a cool reading of the other says nothing.
    status = _read(hotend=None if state is None else State(HOTENDS[1], state))
    assert status.job == JobState.RUNNING
    assert status.for_machine().hottest_tool is None


@pytest.mark.parametrize("entity", [JOB_SENSOR, HOTENDS[0]])
@pytest.mark.parametrize("state", [STATE_UNAVAILABLE, STATE_UNKNOWN])
def test_with_no_host_a_source_that_cannot_tell_is_a_printer_that_does_not_answer(
    entity: str, state: str
) -> None:
    entities = PrinterEntities.from_data(
        {
            CONF_JOB_ENTITY: JOB_SENSOR,
            CONF_JOB_STATES: ["printing"],
            CONF_HOTEND_ENTITIES: HOTENDS,
        }
    )
    states = {**READY, entity: State(entity, state)}
    with pytest.raises(SourceUnavailableError, match=entity):
        read_status(entities, states.get)
