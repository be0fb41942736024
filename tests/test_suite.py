"""The suite's own rules: no process off the rig; nothing Home Assistant says about us."""

from __future__ import annotations

import logging
from logging import LogRecord
import re
import subprocess

import pytest

from .ha_reports import ReportCollector, reports_in_log


def test_a_test_off_the_rig_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match="mark it rig"):
        subprocess.run(["true"], check=False)


@pytest.mark.rig
def test_a_test_on_the_rig_can() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0


def _record(logger: str, level: int, message: str, error: Exception | None = None) -> LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error else None
    return logging.getLogger(logger).makeRecord(logger, level, __file__, 1, message, (), exc_info)


def _raised_in_octoplugout() -> Exception:
    try:
        exec(compile("raise AttributeError('runtime_data')", HERE, "exec"))
    except AttributeError as err:
        return err
    raise AssertionError("unreachable")


HERE = "/config/custom_components/octoplugout/__init__.py"
REPORT = "Detected that custom integration 'octoplugout' has an update listener"


@pytest.mark.parametrize(
    ("record", "expected", "fails"),
    [
        (_record("homeassistant.helpers.frame", logging.WARNING, REPORT), [], True),
        (_record("custom_components.octoplugout", logging.ERROR, "It broke"), [], True),
        (
            _record(
                "homeassistant.config_entries",
                logging.ERROR,
                "Error unloading entry OctoPlugout for octoplugout",
                _raised_in_octoplugout(),
            ),
            [],
            True,
        ),
        (
            _record("homeassistant", logging.ERROR, "Error doing job", _raised_in_octoplugout()),
            [],
            True,
        ),
        (
            _record("custom_components.octoplugout", logging.ERROR, "OctoPrint refused to halt"),
            [re.compile("refused to halt")],
            False,
        ),
        (_record("custom_components.octoplugout", logging.WARNING, "OctoPrint is slow"), [], False),
        (_record("homeassistant.components.mqtt", logging.ERROR, "Broker gone"), [], False),
    ],
)
def test_what_home_assistant_says_about_us_fails_a_test(
    record: LogRecord, expected: list[re.Pattern[str]], fails: bool
) -> None:
    collector = ReportCollector(expected)
    collector.handle(record)
    assert bool(collector.found) is fails


def test_the_rigs_log_is_read_entry_by_entry() -> None:
    log = (
        "2026-12-03 09:40:00.123 WARNING (MainThread) [homeassistant.helpers.frame] "
        f"{REPORT}\n"
        "2026-12-03 09:40:01.000 ERROR (MainThread) [homeassistant.config_entries] Error "
        "unloading entry\nTraceback (most recent call last):\n"
        f'  File "{HERE}", line 104, in async_unload_entry\n'
        "AttributeError: runtime_data\n"
        "2026-12-03 09:40:02.000 ERROR (MainThread) [custom_components.octoplugout] "
        "OctoPrint could not halt its host: 500\n"
        "2026-12-03 09:40:03.000 ERROR (MainThread) [homeassistant.components.http] other\n"
        "2026-12-03 09:40:04.000 DEBUG (MainThread) [custom_components.octoplugout] fine\n"
    )
    found = reports_in_log(log, [re.compile("could not halt")])
    assert [entry.split("] ")[1].splitlines()[0] for entry in found] == [
        REPORT,
        "Error unloading entry",
    ]
    assert "AttributeError: runtime_data" in found[1]


def test_another_integrations_error_is_not_ours_wherever_its_files_are() -> None:
    # Environments may live in a folder named after the project: a traceback through another
    # integration's files there is still not about OctoPlugout.
    log = (
        "2026-12-03 16:15:56.700 ERROR (MainThread) [homeassistant.config_entries] Error "
        "setting up entry Radio Browser for radio_browser\nTraceback (most recent call last):\n"
        '  File "/root/.cache/octoplugout/venvs-1/ha/lib/python3.13/site-packages/'
        'homeassistant/components/radio_browser/__init__.py", line 40, in async_setup_entry\n'
        "TypeError: Channel.query()\n"
        "2026-12-03 16:15:57.000 ERROR (MainThread) [homeassistant.config_entries] Error "
        "setting up entry OctoPlugout 127.0.0.1 for octoplugout\n"
    )
    found = reports_in_log(log, [])
    assert [entry.splitlines()[0].split("] ")[1] for entry in found] == [
        "Error setting up entry OctoPlugout 127.0.0.1 for octoplugout"
    ]


@pytest.mark.parametrize("log", ["", "a line Home Assistant printed without a timestamp\n"])
def test_a_rig_log_with_no_entry_in_a_test_has_nothing_to_report(log: str) -> None:
    assert reports_in_log(log, []) == []
