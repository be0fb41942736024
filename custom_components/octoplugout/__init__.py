"""OctoPlugout: power a 3D printer and its host (OctoPrint, Klipper) down safely after a print."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .compat import reload_on_new_options
from .const import CONF_MQTT, CONF_MQTT_ROOT, DOMAIN
from .coordinator import OctoPlugoutConfigEntry, OctoPlugoutCoordinator
from .host import HostAuthError, HostError
from .hosts import host_for_entry
from .mqtt_topics import default_root
from .services import async_setup_services

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once for every entry."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: OctoPlugoutConfigEntry) -> bool:
    """Set up one plug and its printer host."""
    host = host_for_entry(hass, entry.data)
    try:
        await host.async_check_credentials()
    except HostAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="api_key_rejected"
        ) from err
    except HostError:
        # An unreachable host is normal (it is off while the plug is off): the machine waits
        # for it instead of the entry failing.
        pass
    coordinator = OctoPlugoutCoordinator(hass, entry, host)
    entry.runtime_data = coordinator
    await coordinator.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if entry.options.get(CONF_MQTT):
        _start_mqtt_bridge(hass, entry, coordinator)
    reload_on_new_options(entry)
    return True


def _start_mqtt_bridge(
    hass: HomeAssistant, entry: OctoPlugoutConfigEntry, coordinator: OctoPlugoutCoordinator
) -> None:
    # Imported only when used: Home Assistant's MQTT integration (and its client library)
    # need not be installed for anyone who leaves MQTT off.
    from .mqtt_bridge import MqttBridge  # noqa: PLC0415

    root = entry.options.get(CONF_MQTT_ROOT) or default_root(entry.title)
    bridge = MqttBridge(hass, coordinator, root)
    entry.async_on_unload(bridge.async_stop)
    # MQTT may connect later than this entry loads; the bridge waits without holding it up.
    entry.async_create_background_task(hass, bridge.async_start(), f"{DOMAIN} MQTT bridge")


async def async_unload_entry(hass: HomeAssistant, entry: OctoPlugoutConfigEntry) -> bool:
    """Unload, saving the machine so that it resumes where it was."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded
