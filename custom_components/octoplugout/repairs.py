"""The repair issues of one entry: raised when a cause needs the user, cleared when it is gone."""

from __future__ import annotations

from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

# A key that logs in, whose user lacks permissions OctoPlugout needs.
ISSUE_MISSING_PERMISSIONS: Final = "missing_permissions"
# Something else switched a plain relay off during a job (a plug's own schedule, an automation).
ISSUE_RELAY_OFF_DURING_JOB: Final = "relay_off_during_job"
# A proxy in front of the host that answers the push socket with a page: polling stands in.
ISSUE_PUSH_SOCKET_BLOCKED: Final = "push_socket_blocked"


class EntryIssues:
    """Repair issues of one config entry; each one's text is its translation key."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Issues of ``entry``."""
        self._hass = hass
        self._entry = entry

    @callback
    def raise_issue(self, key: str, severity: ir.IssueSeverity, **placeholders: str) -> None:
        """Tell the user of ``key``; the entry's title is always a placeholder."""
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self._issue_id(key),
            is_fixable=False,
            severity=severity,
            translation_key=key,
            translation_placeholders={"title": self._entry.title, **placeholders},
        )

    @callback
    def clear(self, key: str) -> None:
        """The cause of ``key`` is gone: so is the issue."""
        ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(key))

    def _issue_id(self, key: str) -> str:
        return f"{key}_{self._entry.entry_id}"
