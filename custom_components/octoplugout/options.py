"""Every option of an OctoPlugout entry, once: its key, default, kind and bounds.

The machine's settings, the options flow, the diagnostics and the test rig all derive from
this table, so a new option is one row here (and its strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from .const import CONF_MQTT, CONF_MQTT_ROOT

type OptionValue = int | bool | str


class OptionKind(StrEnum):
    """How an option is entered, and what its number means."""

    CHOICE = "choice"
    SECONDS = "seconds"
    CELSIUS = "celsius"
    TOGGLE = "toggle"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Option:
    """One option of an entry."""

    key: str
    default: OptionValue
    kind: OptionKind
    minimum: int = 0
    maximum: int = 0
    choices: tuple[str, ...] = ()
    # A setting of the state machine (the rest configure what sits around it, e.g. MQTT).
    machine: bool = True


OPTIONS: Final = (
    Option(
        "startup_mode",
        "watching",
        OptionKind.CHOICE,
        choices=("watching", "always_on", "off"),
    ),
    Option("min_job_time", 300, OptionKind.SECONDS, maximum=86400),
    Option("arm_temperature", 175, OptionKind.CELSIUS, maximum=400),
    Option("cool_temperature", 50, OptionKind.CELSIUS, maximum=400),
    # 0 leaves the bed out of the cool-down.
    Option("bed_cool_temperature", 0, OptionKind.CELSIUS, maximum=200),
    Option("fault_limit", 1800, OptionKind.SECONDS, maximum=86400),
    Option("halt_delay", 15, OptionKind.SECONDS, maximum=3600),
    Option("shutdown_timeout", 180, OptionKind.SECONDS, maximum=3600),
    Option("uptime_guard", 600, OptionKind.SECONDS, maximum=86400),
    Option("heaters_off", True, OptionKind.TOGGLE),
    Option("wait_for_timelapse", True, OptionKind.TOGGLE),
    Option("thermal_runaway", False, OptionKind.TOGGLE),
    Option("max_hotend_temperature", 300, OptionKind.CELSIUS, minimum=100, maximum=500),
    Option("max_bed_temperature", 120, OptionKind.CELSIUS, minimum=50, maximum=200),
    Option(CONF_MQTT, False, OptionKind.TOGGLE, machine=False),
    # Empty: octoplugout/<device name>.
    Option(CONF_MQTT_ROOT, "", OptionKind.TEXT, machine=False),
)
OPTION_DEFAULTS: Final[Mapping[str, OptionValue]] = {
    option.key: option.default for option in OPTIONS
}
MACHINE_OPTION_KEYS: Final = tuple(option.key for option in OPTIONS if option.machine)


def with_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's options with every option it lacks at its default."""
    return {**OPTION_DEFAULTS, **options}


def number(key: str) -> float:
    """A number option's default, as the machine counts it."""
    value = OPTION_DEFAULTS[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} is no number option")
    return float(value)


def toggle(key: str) -> bool:
    """A toggle option's default."""
    value = OPTION_DEFAULTS[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} is no toggle option")
    return value


def choice(key: str) -> str:
    """A choice option's default."""
    value = OPTION_DEFAULTS[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is no choice option")
    return value
