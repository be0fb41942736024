"""Setting OctoPlugout up for a printer already in Home Assistant: its device and entities."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.config_flow import CONF_PRINTER_DEVICE
from custom_components.octoplugout.const import (
    CONF_BED_ENTITY,
    CONF_FAULT_STATES,
    CONF_HALT_BUTTON,
    CONF_HOST_TYPE,
    CONF_HOTEND_ENTITIES,
    CONF_JOB_ENTITY,
    CONF_JOB_STATES,
    CONF_MESSAGE_ENTITY,
    CONF_RELAY,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
    HOST_ENTITIES,
)
from custom_components.octoplugout.entity_flow import DEFAULT_FAULT_STATES, DEFAULT_JOB_STATES

from .common import RELAY
from .test_config_flow_moonraker import choose_relay, submit

# The entities the core OctoPrint integration makes for one OctoPrint.
STATE = "sensor.octoprint_current_state"
TOOL0 = "sensor.octoprint_actual_tool0_temp"
TARGET0 = "sensor.octoprint_target_tool0_temp"
BED = "sensor.octoprint_actual_bed_temp"
SHUTDOWN = "button.octoprint_shutdown_system"
PRINTING = "binary_sensor.octoprint_printing"


def _octoprint_device(hass: HomeAssistant) -> str:
    """A core OctoPrint integration's device and entities, as its registry holds them."""
    source = MockConfigEntry(domain="octoprint", title="OctoPrint")
    source.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=source.entry_id, identifiers={("octoprint", "uuid")}, name="Prusa MK3"
    )
    registry = er.async_get(hass)
    for entity_id, name, device_class in (
        (STATE, "OctoPrint Current State", None),
        (TOOL0, "OctoPrint actual tool0 temp", "temperature"),
        (TARGET0, "OctoPrint target tool0 temp", "temperature"),
        (BED, "OctoPrint actual bed temp", "temperature"),
        (SHUTDOWN, "OctoPrint Shutdown System", None),
        (PRINTING, "OctoPrint Printing", None),
        ("button.octoprint_restart_octoprint", "OctoPrint Restart Octoprint", "restart"),
    ):
        domain, object_id = entity_id.split(".")
        registry.async_get_or_create(
            domain,
            "octoprint",
            object_id,
            suggested_object_id=object_id,
            config_entry=source,
            device_id=device.id,
            original_name=name,
            original_device_class=device_class,
        )
    hass.states.async_set(STATE, "Operational")
    hass.states.async_set(TOOL0, "24.8", {"unit_of_measurement": "°C"})
    return device.id


async def _open(hass: HomeAssistant, device: str | None = None) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert HOST_ENTITIES in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": HOST_ENTITIES}
    )
    assert result["step_id"] == HOST_ENTITIES
    result = await submit(hass, dict(result), {CONF_PRINTER_DEVICE: device} if device else {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "printer_entities"
    return dict(result)


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    """What the form shows filled in: defaults and suggested values."""
    shown: dict[str, Any] = {}
    for key in result["data_schema"].schema:
        if (suggested := (key.description or {}).get("suggested_value")) is not None:
            shown[str(key)] = suggested
        elif callable(key.default):
            shown[str(key)] = key.default()
    return shown


@pytest.mark.usefixtures("mock_setup_entry")
async def test_the_printer_s_device_fills_in_its_entities(hass: HomeAssistant) -> None:
    result = await _open(hass, _octoprint_device(hass))
    shown = _suggested(result)
    assert shown[CONF_JOB_ENTITY] == STATE
    # Actual temperatures, not targets.
    assert shown[CONF_HOTEND_ENTITIES] == [TOOL0]
    assert shown[CONF_BED_ENTITY] == BED
    assert shown[CONF_HALT_BUTTON] == SHUTDOWN
    assert shown[CONF_JOB_STATES] == list(DEFAULT_JOB_STATES)
    # Many printer integrations poll every 30 s.
    assert shown[CONF_UPDATE_INTERVAL] == 30
    result = dict(await submit(hass, result, shown))
    result = await choose_relay(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "OctoPlugout Prusa MK3"
    assert result["data"] == {
        CONF_HOST_TYPE: HOST_ENTITIES,
        CONF_JOB_ENTITY: STATE,
        CONF_JOB_STATES: list(DEFAULT_JOB_STATES),
        CONF_FAULT_STATES: list(DEFAULT_FAULT_STATES),
        CONF_HOTEND_ENTITIES: [TOOL0],
        CONF_BED_ENTITY: BED,
        CONF_HALT_BUTTON: SHUTDOWN,
        CONF_RELAY: RELAY,
        CONF_UPDATE_INTERVAL: 30.0,
    }
    job_entry = er.async_get(hass).async_get(STATE)
    assert job_entry is not None
    assert result["result"].unique_id == f"{HOST_ENTITIES}:{job_entry.id}"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_an_enum_sensor_s_own_states_are_suggested_in_its_spelling(
    hass: HomeAssistant,
) -> None:
    source = MockConfigEntry(domain="prusalink")
    source.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=source.entry_id, identifiers={("prusalink", "mk4")}, name="MK4"
    )
    options = ["IDLE", "BUSY", "PRINTING", "PAUSED", "FINISHED", "STOPPED", "ERROR", "ATTENTION"]
    er.async_get(hass).async_get_or_create(
        "sensor",
        "prusalink",
        "state",
        suggested_object_id="mk4",
        device_id=device.id,
        original_device_class="enum",
        capabilities={"options": options},
    )
    result = await _open(hass, device.id)
    shown = _suggested(result)
    assert shown[CONF_JOB_ENTITY] == "sensor.mk4"
    assert shown[CONF_JOB_STATES] == ["PRINTING", "PAUSED", "BUSY", "ATTENTION"]
    assert shown[CONF_FAULT_STATES] == ["ERROR"]


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_binary_job_sensor_needs_no_states_and_a_message_entity_is_kept(
    hass: HomeAssistant,
) -> None:
    hass.states.async_set(PRINTING, "off", {"friendly_name": "Ender 3 printing"})
    result = await _open(hass)
    answer = {
        CONF_JOB_ENTITY: PRINTING,
        CONF_JOB_STATES: [],
        CONF_HOTEND_ENTITIES: [TOOL0],
        CONF_MESSAGE_ENTITY: "notify.printer_display",
        # An integration that reports every change at once.
        CONF_UPDATE_INTERVAL: 0,
    }
    result = await choose_relay(hass, dict(await submit(hass, result, answer)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_HOST_TYPE: HOST_ENTITIES,
        CONF_JOB_ENTITY: PRINTING,
        CONF_HOTEND_ENTITIES: [TOOL0],
        CONF_MESSAGE_ENTITY: "notify.printer_display",
        CONF_RELAY: RELAY,
        CONF_UPDATE_INTERVAL: 0.0,
    }
    assert result["title"] == "OctoPlugout Ender 3 printing"


@pytest.mark.parametrize(
    ("answer", "errors"),
    [
        (
            {CONF_JOB_ENTITY: STATE, CONF_JOB_STATES: [" "], CONF_HOTEND_ENTITIES: [TOOL0]},
            {CONF_JOB_STATES: "job_states_needed"},
        ),
        (
            {CONF_JOB_ENTITY: STATE, CONF_HOTEND_ENTITIES: []},
            {CONF_HOTEND_ENTITIES: "hotend_needed"},
        ),
        (
            {CONF_JOB_ENTITY: "sensor.no_such_printer", CONF_HOTEND_ENTITIES: [TOOL0]},
            {CONF_JOB_ENTITY: "entity_not_found"},
        ),
    ],
    ids=["no job states", "no hotend", "no such entity"],
)
@pytest.mark.usefixtures("mock_setup_entry")
async def test_what_is_missing_is_said_and_can_be_mended(
    hass: HomeAssistant, answer: dict[str, Any], errors: dict[str, str]
) -> None:
    hass.states.async_set(STATE, "Operational")
    hass.states.async_set(TOOL0, "25")
    result = await _open(hass)
    result = dict(await submit(hass, result, answer))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    mended = {CONF_JOB_ENTITY: STATE, CONF_JOB_STATES: ["Printing"], CONF_HOTEND_ENTITIES: [TOOL0]}
    result = await choose_relay(hass, dict(await submit(hass, result, mended)))
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("seconds", [-1, 601])
@pytest.mark.usefixtures("mock_setup_entry")
async def test_an_update_interval_out_of_range_is_refused(
    hass: HomeAssistant, seconds: int
) -> None:
    hass.states.async_set(STATE, "Operational")
    answer = {
        CONF_JOB_ENTITY: STATE,
        CONF_JOB_STATES: ["Printing"],
        CONF_HOTEND_ENTITIES: [TOOL0],
        CONF_UPDATE_INTERVAL: seconds,
    }
    with pytest.raises(InvalidData) as refused:
        await submit(hass, await _open(hass), answer)
    assert CONF_UPDATE_INTERVAL in refused.value.schema_errors


@pytest.mark.usefixtures("mock_setup_entry")
async def test_the_same_printer_twice_is_refused(hass: HomeAssistant) -> None:
    hass.states.async_set(STATE, "Operational")
    answer = {CONF_JOB_ENTITY: STATE, CONF_JOB_STATES: ["Printing"], CONF_HOTEND_ENTITIES: [TOOL0]}
    result = await choose_relay(hass, dict(await submit(hass, await _open(hass), answer)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    result = dict(await submit(hass, await _open(hass), answer))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reconfigure_changes_the_printer_s_entities(hass: HomeAssistant) -> None:
    hass.states.async_set(STATE, "Operational")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"{HOST_ENTITIES}:{STATE}",
        data={
            CONF_HOST_TYPE: HOST_ENTITIES,
            CONF_JOB_ENTITY: STATE,
            CONF_JOB_STATES: ["Printing"],
            CONF_FAULT_STATES: [],
            CONF_HOTEND_ENTITIES: [TOOL0],
            CONF_RELAY: RELAY,
        },
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_entities"
    shown = _suggested(dict(result))
    assert shown[CONF_JOB_STATES] == ["Printing"]
    assert shown[CONF_RELAY] == RELAY
    # An entry made before the setting was offered: the default it was run with.
    assert shown[CONF_UPDATE_INTERVAL] == 30
    changed = {
        **shown,
        CONF_HALT_BUTTON: SHUTDOWN,
        CONF_HOTEND_ENTITIES: [TOOL0, "sensor.t1"],
        CONF_UPDATE_INTERVAL: 90,
    }
    result = await submit(hass, dict(result), changed)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_HALT_BUTTON] == SHUTDOWN
    assert entry.data[CONF_HOTEND_ENTITIES] == [TOOL0, "sensor.t1"]
    assert entry.data[CONF_UPDATE_INTERVAL] == 90
    assert entry.data[CONF_JOB_STATES] == ["Printing"]
