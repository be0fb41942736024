"""The option table is the one home of every option: what derives from it agrees with it."""

from __future__ import annotations

from dataclasses import fields
import json
from pathlib import Path

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.octoplugout.machine import Settings, StartupMode
from custom_components.octoplugout.options import (
    MACHINE_OPTION_KEYS,
    OPTION_DEFAULTS,
    OPTIONS,
    OptionKind,
)

STRINGS = Path(__file__).parents[1] / "custom_components" / "octoplugout" / "strings.json"


def test_the_machines_defaults_are_the_tables() -> None:
    settings = Settings.from_options({})
    assert settings == Settings()
    names = {field.name for field in fields(Settings)}
    assert set(MACHINE_OPTION_KEYS) <= names
    for key in MACHINE_OPTION_KEYS:
        value = getattr(settings, key)
        default = OPTION_DEFAULTS[key]
        # 0 leaves the bed out: the machine holds no temperature then.
        assert value == (default or None if key == "bed_cool_temperature" else default), key


def test_an_option_of_the_entry_reaches_the_machine() -> None:
    settings = Settings.from_options(
        {"halt_delay": 42, "startup_mode": "off", "bed_cool_temperature": 40, "mqtt": True}
    )
    assert settings.halt_delay == 42
    assert settings.startup_mode is StartupMode.OFF
    assert settings.bed_cool_temperature == 40.0


def test_the_start_up_choices_are_the_machines_modes() -> None:
    (startup,) = (option for option in OPTIONS if option.key == "startup_mode")
    assert set(startup.choices) == {mode.value for mode in StartupMode}


def test_every_option_has_a_name_and_a_description() -> None:
    step = json.loads(STRINGS.read_text())["options"]["step"]["init"]
    keys = [option.key for option in OPTIONS]
    assert list(step["data"]) == keys
    assert set(step["data_description"]) <= set(keys)
    bounded = [o for o in OPTIONS if o.kind in (OptionKind.SECONDS, OptionKind.CELSIUS)]
    assert all(option.maximum > option.minimum for option in bounded)


async def test_the_options_form_offers_the_table(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    fields_offered = [str(key) for key in result["data_schema"].schema]
    assert fields_offered == [option.key for option in OPTIONS]
    by_key = {str(key): value for key, value in result["data_schema"].schema.items()}
    halt_delay = by_key["halt_delay"].config
    assert (halt_delay["min"], halt_delay["max"], halt_delay["unit_of_measurement"]) == (
        0,
        3600,
        "s",
    )
