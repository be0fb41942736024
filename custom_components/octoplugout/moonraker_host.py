"""Klipper through Moonraker as a printer host: statuses, push and operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.const import (
    CONF_API_KEY,
    CONF_HOST,
    CONF_PATH,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .host import (
    AccessProblem,
    HaltRefusal,
    HaltRefusedError,
    HostCapability,
    PrinterStatus,
    ServerAddress,
    StatusStream,
)
from .moonraker import (
    KLIPPY_READY,
    KLIPPY_UNTOLD,
    MoonrakerAuthError,
    MoonrakerClient,
    MoonrakerConnectionError,
    MoonrakerError,
    MoonrakerRequestError,
    klippy_state,
    printer_status,
    subscription,
)
from .moonraker_push import MoonrakerPush

CAPABILITIES: Final = frozenset(HostCapability)
# How long a message or heaters-off waits for Klippy before it is left queued there: the
# machine's next action (a halt, a cut) must not wait behind a print's heat-up.
MESSAGE_WAIT: Final = 2.0
# Words of Moonraker's refusal to halt a host it runs inside a container (Docker, LXC).
CONTAINER_REFUSAL: Final = "container"


def moonraker_client(hass: HomeAssistant, data: Mapping[str, Any]) -> MoonrakerClient:
    """A Moonraker client from config entry data, on Home Assistant's shared session."""
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    return MoonrakerClient(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        ServerAddress(
            host=str(data[CONF_HOST]),
            port=int(data[CONF_PORT]),
            path=str(data.get(CONF_PATH, "")),
            ssl=bool(data.get(CONF_SSL, False)),
        ),
        data.get(CONF_API_KEY) or None,
        verify_ssl=verify_ssl,
    )


class MoonrakerHost:
    """One Moonraker, its Klippy and its printer, behind the printer host protocol."""

    def __init__(self, client: MoonrakerClient) -> None:
        """Talk to Moonraker through ``client``."""
        self.client = client
        # The printer objects to read, as Klippy listed them since it was last ready.
        self._objects: dict[str, tuple[str, ...]] | None = None
        self._push_interval = 1.0
        self._push: MoonrakerPush | None = None

    @property
    def capabilities(self) -> frozenset[HostCapability]:
        """Moonraker offers every operation, and pushes."""
        return CAPABILITIES

    @property
    def name(self) -> str:
        """Moonraker."""
        return "Moonraker"

    @property
    def address(self) -> str:
        """Moonraker's base URL."""
        return str(self.client.address.base_url)

    @property
    def url(self) -> str | None:
        """No page of its own: Klipper's web interfaces (Mainsail, Fluidd) are elsewhere."""
        return None

    @property
    def model(self) -> str:
        """The device's model."""
        return "Klipper power controller"

    @property
    def status_lag(self) -> float:
        """No lag: Moonraker answers with its status of the moment it is asked."""
        return 0.0

    async def async_check_credentials(self) -> None:
        """Moonraker's user for this client: by its key, or trusted by its network."""
        await self.client.async_check_access()

    async def async_poll(self, *, check_busy: bool) -> PrinterStatus:
        """Klippy's printer objects; what Moonraker says of Klippy while it cannot tell."""
        try:
            if self._objects is None:
                self._objects = subscription(await self.client.async_list_objects())
            objects = await self.client.async_query(self._objects)
        except MoonrakerRequestError:
            self._objects = None
            info = await self.client.async_get_server_info()
            return printer_status(info.klippy_state, {})
        if klippy_state(objects) != KLIPPY_READY:
            # After Klippy's restart its objects may differ (a new config): list them again.
            self._objects = None
        return printer_status(KLIPPY_UNTOLD, objects)

    async def async_stream(self, stream: StatusStream) -> None:
        """Hold Moonraker's websocket until it closes."""
        push = MoonrakerPush(self.client, stream, self._push_interval)
        self._push = push
        try:
            await push.async_listen()
        finally:
            self._push = None

    async def async_set_push_interval(self, seconds: float) -> None:
        """The pace of pushed statuses, on the open socket and the next ones."""
        self._push_interval = seconds
        if self._push is not None:
            self._push.set_interval(seconds)

    async def async_halt(self) -> None:
        """Moonraker's ``machine.shutdown``; say why when Moonraker cannot."""
        try:
            await self.client.async_shutdown_host()
        except MoonrakerConnectionError:
            raise
        except MoonrakerAuthError as err:
            raise HaltRefusedError(
                HaltRefusal.NOT_PERMITTED, "Moonraker refused OctoPlugout's API key"
            ) from err
        except MoonrakerRequestError as err:
            if CONTAINER_REFUSAL in err.message.lower():
                raise HaltRefusedError(HaltRefusal.IN_CONTAINER, err.message) from err
            raise HaltRefusedError(
                HaltRefusal.NO_SUDO,
                f"Moonraker could not run its shutdown command ({err.message}); its Linux "
                "user needs to be allowed sudo without a password for it",
            ) from err
        except MoonrakerError as err:
            raise HaltRefusedError(HaltRefusal.ERROR, str(err)) from err

    async def async_show_message(self, text: str) -> bool:
        """M117 on the printer's display."""
        return await self.client.async_run_gcode(f"M117 {text}", queued_after=MESSAGE_WAIT)

    async def async_heaters_off(self) -> bool:
        """Klipper's TURN_OFF_HEATERS: every heater's target to 0."""
        return await self.client.async_run_gcode("TURN_OFF_HEATERS", queued_after=MESSAGE_WAIT)

    async def async_access_problem(self) -> AccessProblem | None:
        """Moonraker has no permissions to lack: a refusal is always of the key."""
        return None
