"""What Home Assistant says about OctoPlugout during a test: wrong API use and errors.

Home Assistant reports a deprecated or wrong call from a custom integration as "Detected that
custom integration 'octoplugout' ..." and logs errors while setting up, reloading or running
it. Either one fails the test it happened in, unless the test names the error it expects with
``@pytest.mark.expected_error("pattern")``.
"""

from __future__ import annotations

import logging
import re
import traceback

from custom_components.octoplugout.const import DOMAIN

_REPORT = f"custom integration '{DOMAIN}'"
_OURS = re.compile(rf"custom_components[./]{DOMAIN}\b|\b{DOMAIN}\b")


def _text(record: logging.LogRecord) -> str:
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
    return text


class ReportCollector(logging.Handler):
    """Collects, from every logger, the reports and errors that concern OctoPlugout."""

    def __init__(self, expected: list[re.Pattern[str]]) -> None:
        """Nothing collected yet; ``expected`` errors are let through."""
        super().__init__(logging.WARNING)
        self.expected = expected
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep a report of wrong API use, or an error that concerns OctoPlugout."""
        text = _text(record)
        wrong_use = _REPORT in text
        error = record.levelno >= logging.ERROR and _OURS.search(text) is not None
        if wrong_use or (error and not any(p.search(text) for p in self.expected)):
            self.found.append(text)
