"""What differs between the Home Assistant versions OctoPlugout supports (2025.4 to today).

Validation: Home Assistant validates with probatio since 2026 (a voluptuous-compatible
successor) and with voluptuous before; its type hints accept only the library it ships.

Reloading on new options: from Home Assistant 2025.8 an options flow derived from
``OptionsFlowWithReload`` reloads the entry itself when it changes the options, and an entry
that also has an update listener is reported (from 2026.12 refused) once a reauth or reconfigure
flow reloads it. Before 2025.8 only an update listener can reload on new options; it reloads
only when the options changed, so that a reauth or reconfigure (which reload the entry
themselves) still reload it once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant

try:
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

__all__ = ["OPTIONS_FLOW_RELOADS", "ReloadingOptionsFlow", "reload_on_new_options", "vol"]

OPTIONS_FLOW_RELOADS = hasattr(config_entries, "OptionsFlowWithReload")

if TYPE_CHECKING:
    ReloadingOptionsFlow = config_entries.OptionsFlow
else:
    ReloadingOptionsFlow = getattr(
        config_entries, "OptionsFlowWithReload", config_entries.OptionsFlow
    )


def reload_on_new_options(entry: config_entries.ConfigEntry[Any]) -> None:
    """Make new options take effect through one reload, on a Home Assistant before 2025.8."""
    if OPTIONS_FLOW_RELOADS:
        return
    options_in_use = dict(entry.options)

    async def _reload_if_options_changed(
        hass: HomeAssistant, updated: config_entries.ConfigEntry[Any]
    ) -> None:
        if dict(updated.options) != options_in_use:
            await hass.config_entries.async_reload(updated.entry_id)

    entry.async_on_unload(entry.add_update_listener(_reload_if_options_changed))
