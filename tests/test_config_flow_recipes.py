"""The README's recipes: what choosing a printer integration's device fills in.

Each device stands in for what that integration registers for one printer (names, enum
states, device classes, units), read from its source; the integrations themselves are not
installed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.const import (
    CONF_BED_ENTITY,
    CONF_FAULT_STATES,
    CONF_HALT_BUTTON,
    CONF_HOTEND_ENTITIES,
    CONF_JOB_ENTITY,
    CONF_JOB_STATES,
    CONF_MESSAGE_ENTITY,
)

from .test_config_flow_entities import _open, _suggested
from .test_config_flow_moonraker import choose_relay, submit


@dataclass(frozen=True)
class Registered:
    """One entity as its integration registers it."""

    entity_id: str
    name: str
    device_class: str | None = None
    unit: str | None = None
    options: tuple[str, ...] = ()


def _device(hass: HomeAssistant, domain: str, entities: list[Registered]) -> str:
    source = MockConfigEntry(domain=domain)
    source.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=source.entry_id, identifiers={(domain, "printer")}, name="Printer"
    )
    registry = er.async_get(hass)
    for entity in entities:
        platform, object_id = entity.entity_id.split(".")
        registry.async_get_or_create(
            platform,
            domain,
            object_id,
            suggested_object_id=object_id,
            config_entry=source,
            device_id=device.id,
            original_name=entity.name,
            original_device_class=entity.device_class,
            unit_of_measurement=entity.unit,
            capabilities={"options": list(entity.options)} if entity.options else None,
        )
    return device.id


# ha-bambulab: the print status (the printer's gcode state) and the current stage are both
# enum sensors; "offline" is what it shows when it cannot reach the printer.
BAMBU_LAB = [
    Registered(
        "sensor.p1s_print_status",
        "Print status",
        "enum",
        None,
        ("failed", "finish", "idle", "init", "offline", "pause", "prepare", "running", "slicing"),
    ),
    Registered(
        "sensor.p1s_current_stage",
        "Current stage",
        "enum",
        None,
        ("printing", "auto_bed_leveling", "heatbed_preheating", "idle", "paused_user", "offline"),
    ),
    Registered("sensor.p1s_nozzle_temperature", "Nozzle temperature", "temperature", "°C"),
    Registered("sensor.p1s_nozzle_target_temperature", "Nozzle target temperature",
               "temperature", "°C"),
    Registered("sensor.p1s_bed_temperature", "Bed temperature", "temperature", "°C"),
    Registered("sensor.p1s_target_bed_temperature", "Target bed temperature", "temperature", "°C"),
    Registered("sensor.p1s_chamber_temperature", "Chamber temperature", "temperature", "°C"),
    Registered("button.p1s_pause_printing", "Pause printing"),
    Registered("button.p1s_stop_printing", "Stop printing"),
    Registered("binary_sensor.p1s_online", "Online", "running"),
]  # fmt: skip

# The Moonraker custom integration: Klippy's state, the print's state and the idle timeout's
# are enum sensors; its heater temperatures carry a unit but no device class; the host's
# shutdown is a button beside Klipper macros that may say "shutdown" too.
MOONRAKER = [
    Registered("sensor.voron_printer_state", "Printer State", "enum", None,
               ("ready", "startup", "shutdown", "error")),
    Registered("sensor.voron_current_print_state", "Current Print State", "enum", None,
               ("standby", "printing", "paused", "complete", "cancelled", "error")),
    Registered("sensor.voron_idle_timeout_state", "Idle Timeout State", "enum", None,
               ("Printing", "Ready", "Idle", "Standby", "Paused", "Complete")),
    Registered("sensor.voron_extruder_temperature", "Extruder Temperature", None, "°C"),
    Registered("sensor.voron_extruder_power", "Extruder Power", None, "%"),
    Registered("sensor.voron_bed_temperature", "Bed Temperature", None, "°C"),
    Registered("sensor.voron_raspberry_pi_temp", "Raspberry Pi Temp", None, "°C"),
    Registered("button.voron_macro_shutdown_leds", "Macro Shutdown Leds"),
    Registered("button.voron_host_restart", "Host Restart"),
    Registered("button.voron_host_shutdown", "Host Shutdown"),
    Registered("button.voron_emergency_stop", "Emergency Stop"),
]  # fmt: skip


@pytest.mark.usefixtures("mock_setup_entry")
async def test_bambu_lab_s_print_status_with_offline_as_a_fault(hass: HomeAssistant) -> None:
    result = await _open(hass, _device(hass, "bambu_lab", BAMBU_LAB))
    shown = _suggested(result)
    assert shown[CONF_JOB_ENTITY] == "sensor.p1s_print_status"
    assert shown[CONF_JOB_STATES] == ["running", "pause", "prepare", "slicing"]
    # Unreachable is never idle; a failed print is over.
    assert shown[CONF_FAULT_STATES] == ["offline"]
    assert shown[CONF_HOTEND_ENTITIES] == ["sensor.p1s_nozzle_temperature"]
    assert shown[CONF_BED_ENTITY] == "sensor.p1s_bed_temperature"
    # No host to halt: none of its buttons is taken for one.
    assert CONF_HALT_BUTTON not in shown
    assert CONF_MESSAGE_ENTITY not in shown
    result = await choose_relay(hass, dict(await submit(hass, result, shown)))
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.usefixtures("mock_setup_entry")
async def test_the_moonraker_integration_s_print_state_and_host_shutdown(
    hass: HomeAssistant,
) -> None:
    result = await _open(hass, _device(hass, "moonraker", MOONRAKER))
    shown = _suggested(result)
    # The print's state, not the idle timeout's with the same job states, nor Klippy's.
    assert shown[CONF_JOB_ENTITY] == "sensor.voron_current_print_state"
    assert shown[CONF_JOB_STATES] == ["printing", "paused"]
    assert shown[CONF_FAULT_STATES] == ["error"]
    # Temperatures in C without the temperature device class count; the Pi's is no hotend.
    assert shown[CONF_HOTEND_ENTITIES] == ["sensor.voron_extruder_temperature"]
    assert shown[CONF_BED_ENTITY] == "sensor.voron_bed_temperature"
    # The host's own shutdown, not a macro that says "shutdown".
    assert shown[CONF_HALT_BUTTON] == "button.voron_host_shutdown"
    result = await choose_relay(hass, dict(await submit(hass, result, shown)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_HOTEND_ENTITIES] == ["sensor.voron_extruder_temperature"]


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_sensor_that_is_no_temperature_is_refused_as_a_hotend_or_bed(
    hass: HomeAssistant,
) -> None:
    result = await _open(hass, _device(hass, "moonraker", MOONRAKER))
    shown = _suggested(result)
    wrong = {
        **shown,
        CONF_HOTEND_ENTITIES: ["sensor.voron_extruder_power"],
        CONF_BED_ENTITY: "sensor.voron_extruder_power",
    }
    result = dict(await submit(hass, result, wrong))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {
        CONF_HOTEND_ENTITIES: "not_a_temperature",
        CONF_BED_ENTITY: "not_a_temperature",
    }
    # A reading's own unit decides over what the registry remembers.
    hass.states.async_set("sensor.voron_extruder_power", "21.5", {"unit_of_measurement": "°F"})
    result = await choose_relay(hass, dict(await submit(hass, result, wrong)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
