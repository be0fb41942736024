"""Setup, options, reauth and reconfigure for OctoPlugout."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
import ipaddress
import re
from typing import Any, Final

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, selector
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from yarl import URL

from .compat import ReloadingOptionsFlow, vol
from .const import (
    APP_NAME,
    CONF_BUTTON,
    CONF_HOST_TYPE,
    CONF_JOB_ENTITY,
    CONF_LED,
    CONF_LOCK,
    CONF_MQTT,
    CONF_MQTT_ROOT,
    CONF_PLUG_ENTITIES,
    CONF_POWER_SENSOR,
    CONF_POWER_UP,
    CONF_RELAY,
    DOMAIN,
    HOST_ENTITIES,
    HOST_MOONRAKER,
    HOST_OCTOPRINT,
    LOGGER,
    host_type_of,
)
from .entity_flow import (
    printer_data,
    printer_entities_of_device,
    printer_errors,
    printer_schema,
    printer_title,
    states_of,
)
from .host import normalize_path
from .moonraker import MoonrakerAuthError, MoonrakerClient, MoonrakerConnectionError, MoonrakerError
from .moonraker_host import moonraker_client
from .mqtt_topics import default_root, root_topic_error
from .octoprint import (
    AppKeyDeniedError,
    OctoPrintAuthError,
    OctoPrintCertificateError,
    OctoPrintClient,
    OctoPrintConnectionError,
    OctoPrintError,
    missing_permissions,
    permission_names,
)
from .octoprint_host import client_for_entry
from .options import OPTION_DEFAULTS, OPTIONS, Option, OptionKind, with_defaults

APP_KEY_TIMEOUT: Final = 300
# Moonraker's own port; behind Mainsail's or Fluidd's web server it answers on 80 too.
MOONRAKER_PORT: Final = 7125
MOONRAKER_ZEROCONF: Final = "_moonraker._tcp.local."
CONF_PLUG_DEVICE: Final = "plug_device"
CONF_PRINTER_DEVICE: Final = "printer_device"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)


# The default ports of http and https.
_DEFAULT_PORTS: Final = (80, 443)


class InvalidHostError(ValueError):
    """The host field holds no usable host name, IP address or URL."""


def parse_address(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize the connection fields; a full URL in the host field fills in the rest."""
    raw = str(user_input.get(CONF_HOST, "")).strip()
    address: dict[str, Any] = {
        CONF_HOST: raw,
        CONF_PORT: user_input.get(CONF_PORT),
        CONF_PATH: normalize_path(str(user_input.get(CONF_PATH) or "")),
        CONF_SSL: bool(user_input.get(CONF_SSL, False)),
        CONF_VERIFY_SSL: bool(user_input.get(CONF_VERIFY_SSL, True)),
    }
    if "://" in raw:
        try:
            url = URL(raw)
        except ValueError as err:
            raise InvalidHostError(raw) from err
        if url.scheme not in ("http", "https") or url.user or url.password or not url.host:
            raise InvalidHostError(raw)
        address[CONF_SSL] = url.scheme == "https"
        address[CONF_HOST] = url.host
        # The form always sends its Port field (80 unless changed): a URL without a port takes
        # its scheme's default, unless the field holds a port of its own.
        if url.explicit_port or address[CONF_PORT] in (None, *_DEFAULT_PORTS):
            address[CONF_PORT] = url.port
        address[CONF_PATH] = normalize_path(url.path) or address[CONF_PATH]
    address[CONF_HOST] = _valid_host(str(address[CONF_HOST]))
    if address[CONF_PORT] is None:
        address[CONF_PORT] = 443 if address[CONF_SSL] else 80
    address[CONF_PORT] = int(address[CONF_PORT])
    if not 0 < address[CONF_PORT] < 65536:
        raise InvalidHostError(raw)
    return address


def _valid_host(host: str) -> str:
    candidate = host.strip().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    if not _HOSTNAME.match(candidate):
        raise InvalidHostError(host)
    return candidate.lower()


def _connection_schema(defaults: Mapping[str, Any], port: int = 80) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, "")): str,
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, port)): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=1, max=65535, mode=selector.NumberSelectorMode.BOX
                )
            ),
            vol.Optional(CONF_PATH, default=defaults.get(CONF_PATH, "")): str,
            vol.Required(CONF_SSL, default=defaults.get(CONF_SSL, False)): bool,
            vol.Required(CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)): bool,
        }
    )


def _entity(domain: str, device_class: str | None = None) -> selector.EntitySelector:
    config = selector.EntitySelectorConfig(domain=domain)
    if device_class:
        config["device_class"] = device_class
    return selector.EntitySelector(config)


def _plug_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    def optional(key: str) -> vol.Optional:
        value = defaults.get(key)
        return vol.Optional(key, description={"suggested_value": value} if value else None)

    return vol.Schema(
        {
            vol.Required(CONF_RELAY, default=defaults.get(CONF_RELAY, vol.UNDEFINED)): _entity(
                "switch"
            ),
            optional(CONF_BUTTON): _entity("event"),
            optional(CONF_LED): _entity("select"),
            optional(CONF_LOCK): _entity("switch"),
            optional(CONF_POWER_UP): _entity("switch"),
            optional(CONF_POWER_SENSOR): _entity("sensor", device_class="power"),
        }
    )


async def validate_api_key(client: OctoPrintClient) -> None:
    """Check that the key works, its user has every permission needed, and OctoPrint can halt."""
    missing = missing_permissions(await client.async_get_current_user())
    if missing:
        raise MissingPermissionError(missing)
    if not await client.async_can_halt_host():
        raise NoShutdownCommandError


async def validate_moonraker(client: MoonrakerClient) -> str:
    """Check that Moonraker lets OctoPlugout in and may halt its host; its unique id."""
    try:
        await client.async_check_access()
    except MoonrakerAuthError as err:
        raise err if client.api_key else MoonrakerKeyNeededError from err
    if await client.async_in_container():
        raise MoonrakerInContainerError
    if not await client.async_sudo_access():
        raise MoonrakerNoSudoError
    return await client.async_instance_id() or str(client.address.base_url).rstrip("/")


# Addresses the address steps show as examples (translations may not hold URLs).
ADDRESS_EXAMPLE: Final = "http://octopi.local/"
MOONRAKER_EXAMPLE: Final = "http://mainsailos.local:7125/"


class MoonrakerKeyNeededError(Exception):
    """Moonraker does not trust Home Assistant's address, and no key was given."""


class MoonrakerInContainerError(Exception):
    """Moonraker runs in a container: it cannot halt its host."""


class MoonrakerNoSudoError(Exception):
    """Moonraker's Linux user may not run the command that halts the host."""


class NoShutdownCommandError(Exception):
    """OctoPrint has no shutdown command configured, so it cannot halt its host."""


class MissingPermissionError(Exception):
    """The key works but its user lacks permissions OctoPlugout needs (all of them named)."""

    def __init__(self, permissions: Sequence[str]) -> None:
        """Name every missing permission."""
        super().__init__(", ".join(permissions))
        self.permissions = tuple(permissions)


def _named_permissions(err: Exception | None) -> str:
    """The permissions a form's error names."""
    if not isinstance(err, MissingPermissionError):
        return "-"
    return permission_names(err.permissions)


def _moonraker_errors_for(err: Exception) -> dict[str, str]:
    """The form error for what checking a Moonraker ended in."""
    match err:
        case InvalidHostError():
            return {CONF_HOST: "invalid_host"}
        case MoonrakerConnectionError():
            return {"base": "moonraker_cannot_connect"}
        case MoonrakerKeyNeededError():
            return {"base": "moonraker_key_needed"}
        case MoonrakerAuthError():
            return {"base": "moonraker_invalid_auth"}
        case MoonrakerInContainerError():
            return {"base": "moonraker_in_container"}
        case MoonrakerNoSudoError():
            return {"base": "moonraker_no_sudo"}
        case MoonrakerError():
            return {"base": "not_moonraker"}
    LOGGER.exception("Unexpected error during setup", exc_info=err)
    return {"base": "unknown"}


def _errors_for(err: Exception) -> dict[str, str]:
    """The form error for what checking an address or a key ended in.

    Anything unforeseen is logged with its traceback and shown as a form error, so that the
    user can try again instead of meeting a broken form.
    """
    match err:
        case InvalidHostError():
            return {CONF_HOST: "invalid_host"}
        case OctoPrintCertificateError():
            return {"base": "invalid_certificate"}
        case OctoPrintConnectionError():
            return {"base": "cannot_connect"}
        case OctoPrintAuthError():
            return {"base": "invalid_auth"}
        case MissingPermissionError():
            return {"base": "missing_permissions"}
        case NoShutdownCommandError():
            return {"base": "no_shutdown_command"}
        case AppKeyDeniedError():
            return {"base": "app_key_denied"}
        case TimeoutError():
            return {"base": "app_key_timeout"}
        case OctoPrintError():
            return {"base": "not_octoprint"}
    LOGGER.exception("Unexpected error during setup", exc_info=err)
    return {"base": "unknown"}


class OctoPlugoutConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up OctoPlugout: the printer host (OctoPrint or Moonraker), its key, then the plug."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start empty."""
        self._data: dict[str, Any] = {}
        self._username: str | None = None
        self._app_key_task: asyncio.Task[str] | None = None
        self._app_key_error: Exception | None = None
        self._plug_found: dict[str, str] = {}
        self._key_error: Exception | None = None
        self._title: str | None = None
        self._printer_device: str | None = None
        self._printer_found: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OctoPlugoutOptionsFlow:
        """Timings and thresholds."""
        return OctoPlugoutOptionsFlow()

    def _client(self, api_key: str | None = None) -> OctoPrintClient:
        return client_for_entry(self.hass, {**self._data, CONF_API_KEY: api_key or ""})

    def _moonraker(self, api_key: str | None = None) -> MoonrakerClient:
        return moonraker_client(self.hass, {**self._data, CONF_API_KEY: api_key or ""})

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask what runs the printer."""
        return self.async_show_menu(
            step_id="user", menu_options=["octoprint", "moonraker", HOST_ENTITIES]
        )

    # Finding OctoPrint

    async def async_step_octoprint(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask where OctoPrint is."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                self._data = {**parse_address(user_input), CONF_HOST_TYPE: HOST_OCTOPRINT}
                unique_id = await self._async_unique_id()
            except Exception as err:
                errors = _errors_for(err)
            else:
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
                return await self.async_step_auth()
        return self.async_show_form(
            step_id="octoprint",
            data_schema=self.add_suggested_values_to_schema(
                _connection_schema({}), user_input or {}
            ),
            errors=errors,
            description_placeholders={"example": ADDRESS_EXAMPLE},
        )

    async def _async_unique_id(self) -> str:
        """OctoPrint's own UUID, or its address when the discovery plugin is off."""
        client = self._client()
        uuid = await client.async_get_uuid()
        await client.async_app_keys_supported()
        return uuid or str(client.address.base_url).rstrip("/")

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """OctoPrint or Moonraker announced itself on the network."""
        if discovery_info.type == MOONRAKER_ZEROCONF:
            return await self._async_moonraker_discovered(discovery_info)
        properties = discovery_info.properties
        uuid = properties.get("uuid")
        if not uuid:
            return self.async_abort(reason="not_octoprint")
        self._data = {
            CONF_HOST: discovery_info.host,
            CONF_PORT: discovery_info.port or 80,
            CONF_PATH: normalize_path(str(properties.get("path", ""))),
            CONF_SSL: False,
            CONF_VERIFY_SSL: True,
            CONF_HOST_TYPE: HOST_OCTOPRINT,
        }
        await self.async_set_unique_id(uuid.lower())
        self._abort_if_unique_id_configured(
            updates={CONF_HOST: self._data[CONF_HOST], CONF_PORT: self._data[CONF_PORT]}
        )
        self.context["title_placeholders"] = {CONF_HOST: discovery_info.host}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm the discovered OctoPrint."""
        if user_input is None:
            return self.async_show_form(
                step_id="zeroconf_confirm",
                description_placeholders={CONF_HOST: self._data[CONF_HOST]},
            )
        return await self.async_step_auth()

    # Finding Moonraker

    async def async_step_moonraker(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask where Moonraker is, and for its key if it needs one."""
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = str(user_input.get(CONF_API_KEY) or "").strip()
            try:
                self._data = {**parse_address(user_input), CONF_HOST_TYPE: HOST_MOONRAKER}
                unique_id = await validate_moonraker(self._moonraker(api_key))
            except Exception as err:
                errors = _moonraker_errors_for(err)
            else:
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
                self._data[CONF_API_KEY] = api_key
                return await self.async_step_plug()
        schema = vol.Schema(
            {
                **_connection_schema({}, MOONRAKER_PORT).schema,
                vol.Optional(CONF_API_KEY): str,
            }
        )
        return self.async_show_form(
            step_id="moonraker",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders={"example": MOONRAKER_EXAMPLE},
        )

    async def _async_moonraker_discovered(
        self, discovery_info: ZeroconfServiceInfo
    ) -> ConfigFlowResult:
        uuid = discovery_info.properties.get("uuid")
        if not uuid:
            return self.async_abort(reason="not_moonraker")
        self._data = {
            CONF_HOST: discovery_info.host,
            CONF_PORT: discovery_info.port or MOONRAKER_PORT,
            CONF_PATH: normalize_path(str(discovery_info.properties.get("route_prefix", ""))),
            CONF_SSL: False,
            CONF_VERIFY_SSL: True,
            CONF_HOST_TYPE: HOST_MOONRAKER,
        }
        await self.async_set_unique_id(uuid.lower())
        self._abort_if_unique_id_configured(
            updates={CONF_HOST: self._data[CONF_HOST], CONF_PORT: self._data[CONF_PORT]}
        )
        self.context["title_placeholders"] = {CONF_HOST: discovery_info.host}
        return await self.async_step_moonraker_key()

    async def async_step_moonraker_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a Moonraker found on the network, or give it a new key (reauth)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = str(user_input.get(CONF_API_KEY) or "").strip()
            try:
                await validate_moonraker(self._moonraker(api_key))
            except Exception as err:
                errors = _moonraker_errors_for(err)
            else:
                return await self._async_key_accepted(api_key)
        return self.async_show_form(
            step_id="moonraker_key",
            data_schema=vol.Schema({vol.Optional(CONF_API_KEY): str}),
            errors=errors,
            description_placeholders={"url": str(self._moonraker().address.base_url)},
        )

    # The API key

    async def async_step_auth(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose how to get an API key."""
        return self.async_show_menu(step_id="auth", menu_options=["app_key", "api_key"])

    async def async_step_api_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Paste an API key made in OctoPrint."""
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = user_input[CONF_API_KEY].strip()
            try:
                await validate_api_key(self._client(api_key))
            except Exception as err:
                self._key_error = err
                errors = _errors_for(err)
            else:
                return await self._async_key_accepted(api_key)
        return self._show_api_key_form(errors)

    def _show_api_key_form(self, errors: dict[str, str]) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="api_key",
            data_schema=vol.Schema({vol.Required(CONF_API_KEY): str}),
            errors=errors,
            description_placeholders={
                "url": str(self._client().address.base_url),
                "permissions": _named_permissions(self._key_error),
            },
        )

    async def async_step_app_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which OctoPrint user should approve the request."""
        if user_input is None:
            return self.async_show_form(
                step_id="app_key",
                data_schema=vol.Schema({vol.Optional(CONF_USERNAME): str}),
                description_placeholders={"url": str(self._client().address.base_url)},
            )
        self._username = (user_input.get(CONF_USERNAME) or "").strip() or None
        return await self.async_step_wait_for_app_key()

    async def async_step_wait_for_app_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Wait while the user clicks Allow in OctoPrint."""
        if self._app_key_task is None:
            self._app_key_task = self.hass.async_create_task(self._async_request_app_key())
        if not self._app_key_task.done():
            return self.async_show_progress(
                step_id="wait_for_app_key",
                progress_action="wait_for_app_key",
                progress_task=self._app_key_task,
                description_placeholders={"url": str(self._client().address.base_url)},
            )
        task, self._app_key_task = self._app_key_task, None
        try:
            api_key = task.result()
            await validate_api_key(self._client(api_key))
        except Exception as err:
            self._app_key_error = err
            return self.async_show_progress_done(next_step_id="app_key_failed")
        self._data[CONF_API_KEY] = api_key
        return self.async_show_progress_done(next_step_id="key_accepted")

    async def async_step_app_key_failed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say why no key came, and offer to paste one instead."""
        assert self._app_key_error is not None
        self._key_error = self._app_key_error
        return self._show_api_key_form(_errors_for(self._app_key_error))

    async def _async_request_app_key(self) -> str:
        async with asyncio.timeout(APP_KEY_TIMEOUT):
            return await self._client().async_wait_for_app_key(APP_NAME, self._username)

    async def async_step_key_accepted(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An approved application key is in ``_data``."""
        return await self._async_key_accepted(self._data.pop(CONF_API_KEY))

    async def _async_key_accepted(self, api_key: str) -> ConfigFlowResult:
        if self.source == SOURCE_REAUTH:
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(), data_updates={CONF_API_KEY: api_key}
            )
        self._data[CONF_API_KEY] = api_key
        return await self.async_step_plug()

    # A printer already in Home Assistant

    async def async_step_entities(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the printer's device, whose entities fill in the next form."""
        if user_input is not None:
            self._printer_device = user_input.get(CONF_PRINTER_DEVICE)
            if self._printer_device:
                self._printer_found = printer_entities_of_device(self.hass, self._printer_device)
            return await self.async_step_printer_entities()
        return self.async_show_form(
            step_id=HOST_ENTITIES,
            data_schema=vol.Schema({vol.Optional(CONF_PRINTER_DEVICE): selector.DeviceSelector()}),
        )

    async def async_step_printer_entities(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name the job, hotend, bed, halt and message entities (filled in from the device)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = printer_errors(self.hass, user_input)
            if not errors:
                data = printer_data(user_input)
                await self.async_set_unique_id(_printer_unique_id(self.hass, data))
                self._abort_if_unique_id_configured()
                self._data = {CONF_HOST_TYPE: HOST_ENTITIES, **data}
                self._title = printer_title(self.hass, self._printer_device, data[CONF_JOB_ENTITY])
                return await self.async_step_plug()
        defaults = user_input or self._printer_found
        return self.async_show_form(
            step_id="printer_entities",
            data_schema=printer_schema(
                defaults, states_of(self.hass, defaults.get(CONF_JOB_ENTITY))
            ),
            errors=errors,
        )

    # The plug

    async def async_step_plug(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose an OctoPlugout ESPHome plug, or any relay switch."""
        if user_input is not None:
            if device_id := user_input.get(CONF_PLUG_DEVICE):
                self._plug_found = plug_entities_of_device(self.hass, device_id)
            return await self.async_step_plug_entities()
        return self.async_show_form(
            step_id="plug",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_PLUG_DEVICE): selector.DeviceSelector(
                        selector.DeviceSelectorConfig(integration="esphome")
                    )
                }
            ),
        )

    async def async_step_plug_entities(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Check the plug's entities (filled in from the chosen device) or choose them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _plug_errors(user_input)
            if not errors:
                return self.async_create_entry(
                    title=f"{APP_NAME} {self._title or self._data[CONF_HOST]}",
                    data={**self._data, **_plug_entities(user_input)},
                    options=dict(OPTION_DEFAULTS),
                )
        return self.async_show_form(
            step_id="plug_entities",
            data_schema=_plug_schema(user_input or self._plug_found),
            errors=errors,
        )

    # Reauth and reconfigure

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The host stopped accepting the key."""
        self._data = {
            key: entry_data[key]
            for key in (CONF_HOST, CONF_PORT, CONF_PATH, CONF_SSL, CONF_VERIFY_SSL, CONF_HOST_TYPE)
            if key in entry_data
        }
        if entry_data.get(CONF_HOST_TYPE) == HOST_MOONRAKER:
            return await self.async_step_moonraker_key()
        return await self.async_step_auth()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change where the host is, its key, and which plug entities are used."""
        entry = self._get_reconfigure_entry()
        if host_type_of(entry.data) == HOST_ENTITIES:
            return await self.async_step_reconfigure_entities()
        moonraker = entry.data.get(CONF_HOST_TYPE) == HOST_MOONRAKER
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                address = parse_address(user_input)
                self._data = {**address, CONF_HOST_TYPE: entry.data.get(CONF_HOST_TYPE)}
                # A new key replaces the old one only when given (a key is never shown).
                api_key = user_input.get(CONF_API_KEY, "").strip() or entry.data[CONF_API_KEY]
                if moonraker:
                    unique_id = await validate_moonraker(self._moonraker(api_key))
                else:
                    await validate_api_key(self._client(api_key))
                    unique_id = await self._async_unique_id()
            except Exception as err:
                self._key_error = err
                errors = (_moonraker_errors_for if moonraker else _errors_for)(err)
            else:
                errors = _plug_errors(user_input)
                if not errors:
                    await self.async_set_unique_id(unique_id)
                    self._abort_if_unique_id_mismatch(
                        reason="wrong_moonraker" if moonraker else "wrong_octoprint"
                    )
                    plug = dict.fromkeys(CONF_PLUG_ENTITIES) | _plug_entities(user_input)
                    return self.async_update_reload_and_abort(
                        entry,
                        data={**entry.data, **address, CONF_API_KEY: api_key, **plug},
                    )
        schema = vol.Schema(
            {
                **_connection_schema(entry.data, MOONRAKER_PORT if moonraker else 80).schema,
                vol.Optional(CONF_API_KEY): str,
                **_plug_schema(entry.data).schema,
            }
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders={"permissions": _named_permissions(self._key_error)},
        )

    async def async_step_reconfigure_entities(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change which entities tell of the printer, and which are the plug's."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = printer_errors(self.hass, user_input) | _plug_errors(user_input)
            if not errors:
                return self.async_update_reload_and_abort(
                    entry,
                    data={
                        CONF_HOST_TYPE: HOST_ENTITIES,
                        **printer_data(user_input),
                        **_plug_entities(user_input),
                    },
                )
        defaults = user_input or entry.data
        schema = vol.Schema(
            {
                **printer_schema(
                    defaults, states_of(self.hass, defaults.get(CONF_JOB_ENTITY))
                ).schema,
                **_plug_schema(defaults).schema,
            }
        )
        return self.async_show_form(
            step_id="reconfigure_entities", data_schema=schema, errors=errors
        )


def _printer_unique_id(hass: HomeAssistant, data: Mapping[str, Any]) -> str:
    """The job entity's registry id (it survives a rename), else its entity id."""
    job = str(data[CONF_JOB_ENTITY])
    entry = er.async_get(hass).async_get(job)
    return f"{HOST_ENTITIES}:{entry.id if entry else job}"


# How an OctoPlugout ESPHome plug names its entities (esphome/packages/octoplugout.yaml).
_PLUG_ENTITY_NAMES: Final = {
    ("switch", "relay"): CONF_RELAY,
    ("switch", "power lock"): CONF_LOCK,
    ("switch", "stay off at power-up"): CONF_POWER_UP,
    ("event", "button"): CONF_BUTTON,
    ("select", "led pattern"): CONF_LED,
}


def plug_entities_of_device(hass: HomeAssistant, device_id: str) -> dict[str, str]:
    """The relay, lock, power-up setting, button, LED pattern and power sensor of a plug."""
    found: dict[str, str] = {}
    for entry in er.async_entries_for_device(er.async_get(hass), device_id):
        key = _PLUG_ENTITY_NAMES.get((entry.domain, (entry.original_name or "").lower()))
        if key is None and entry.domain == "sensor" and entry.original_device_class == "power":
            key = CONF_POWER_SENSOR
        if key is not None:
            found.setdefault(key, entry.entity_id)
    return found


def _plug_entities(user_input: Mapping[str, Any]) -> dict[str, str]:
    return {key: user_input[key] for key in CONF_PLUG_ENTITIES if user_input.get(key)}


# The plug's switches beside the relay, and the error when the relay is chosen for one.
_NOT_THE_RELAY: Final = {CONF_LOCK: "lock_is_relay", CONF_POWER_UP: "power_up_is_relay"}


def _plug_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    relay = user_input.get(CONF_RELAY)
    return {
        key: error
        for key, error in _NOT_THE_RELAY.items()
        if relay and user_input.get(key) == relay
    }


def _option_field(option: Option) -> selector.Selector[Any]:
    """The options form's field for one option of the table."""
    match option.kind:
        case OptionKind.CHOICE:
            return selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=list(option.choices), translation_key=option.key
                )
            )
        case OptionKind.SECONDS | OptionKind.CELSIUS:
            return selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=option.minimum,
                    max=option.maximum,
                    step=1,
                    unit_of_measurement="s" if option.kind == OptionKind.SECONDS else "°C",
                    mode=selector.NumberSelectorMode.BOX,
                )
            )
        case OptionKind.TOGGLE:
            return selector.BooleanSelector()
        case OptionKind.TEXT:
            return selector.TextSelector()


def _option_errors(options: Mapping[str, Any]) -> dict[str, str]:
    if options["cool_temperature"] >= options["arm_temperature"]:
        return {"cool_temperature": "cool_above_arm"}
    if options["shutdown_timeout"] < 10:
        return {"shutdown_timeout": "shutdown_timeout_too_short"}
    return {}


class OctoPlugoutOptionsFlow(ReloadingOptionsFlow):
    """Every timing and threshold of the machine."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and validate the settings."""
        errors: dict[str, str] = {}
        current = with_defaults(self.config_entry.options)
        if user_input is not None:
            errors = _option_errors(user_input) or self._mqtt_errors(user_input)
            if not errors:
                return self.async_create_entry(data=user_input)
        current[CONF_MQTT_ROOT] = current[CONF_MQTT_ROOT] or default_root(self.config_entry.title)
        schema = vol.Schema(
            {
                vol.Required(option.key, default=current[option.key]): _option_field(option)
                for option in OPTIONS
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
        )

    def _mqtt_errors(self, options: Mapping[str, Any]) -> dict[str, str]:
        if not options.get(CONF_MQTT):
            return {}
        if error := root_topic_error(str(options.get(CONF_MQTT_ROOT, ""))):
            return {CONF_MQTT_ROOT: error}
        if not self.hass.config_entries.async_loaded_entries("mqtt"):
            return {CONF_MQTT: "mqtt_not_set_up"}
        return {}
