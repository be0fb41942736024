"""What Home Assistant says about OctoPlugout during a test: wrong API use and errors.

Home Assistant reports a deprecated or wrong call from a custom integration as "Detected that
custom integration 'octoplugout' ..." and logs errors while setting up, reloading or running
it. Either one fails the test it happened in, unless the test names the error it expects with
``@pytest.mark.expected_error("pattern")``: in the tests' own Home Assistant through a logging
handler, on the rig through the lines its Home Assistant wrote to its log during the test.
"""

from __future__ import annotations

import logging
import re
import traceback

from custom_components.octoplugout.const import DOMAIN

_REPORT = f"custom integration '{DOMAIN}'"
# Our domain as a word (our logger, our entries, our actions) or a traceback through our
# package; not a folder of that name elsewhere (an environment kept in a cache folder named
# after the project).
_OURS = re.compile(rf"(?<![\w/-]){DOMAIN}\b(?!/)|custom_components/{DOMAIN}/")


# A line that starts an entry in Home Assistant's log file; the lines up to the next belong to it.
_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.,]\d+ (?P<level>[A-Z]+) ", re.M)


def concerns_us(level: int, text: str, expected: list[re.Pattern[str]]) -> bool:
    """Whether this is wrong API use by OctoPlugout, or an error about it not expected."""
    if _REPORT in text:
        return True
    error = level >= logging.ERROR and _OURS.search(text) is not None
    return error and not any(pattern.search(text) for pattern in expected)


def reports_in_log(log: str, expected: list[re.Pattern[str]]) -> list[str]:
    """The entries of a Home Assistant log file that concern OctoPlugout, as ``concerns_us``."""
    heads = list(_LOG_ENTRY.finditer(log))
    # Each entry runs up to the next one's head; the last one to the end of the log.
    ends = [head.start() for head in heads[1:]] + [len(log)] * bool(heads)
    levels = logging.getLevelNamesMapping()
    found = []
    for head, end in zip(heads, ends, strict=True):
        entry = log[head.start() : end].rstrip()
        if concerns_us(levels.get(head["level"], logging.ERROR), entry, expected):
            found.append(entry)
    return found


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
        if concerns_us(record.levelno, text, self.expected):
            self.found.append(text)
