"""OctoPrint as a printer host: its REST API for statuses and operations, its socket for push."""

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
from .machine import JobState
from .octoprint import (
    OctoPrintAuthError,
    OctoPrintClient,
    OctoPrintConnectionError,
    OctoPrintError,
    OctoPrintNoShutdownCommandError,
    PrinterSnapshot,
    missing_permissions,
    permission_names,
)
from .octoprint_push import STATUS_EVENTS, PushCallbacks, PushListener

CAPABILITIES: Final = frozenset(HostCapability)


def client_for_entry(hass: HomeAssistant, data: Mapping[str, Any]) -> OctoPrintClient:
    """An OctoPrint client from config entry data, on Home Assistant's shared session."""
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    return OctoPrintClient(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        ServerAddress(
            host=str(data[CONF_HOST]),
            port=int(data[CONF_PORT]),
            path=str(data.get(CONF_PATH, "")),
            ssl=bool(data.get(CONF_SSL, False)),
        ),
        str(data[CONF_API_KEY]),
        verify_ssl=verify_ssl,
    )


class OctoPrintHost:
    """One OctoPrint and its printer, behind the printer host protocol."""

    def __init__(self, client: OctoPrintClient) -> None:
        """Talk to OctoPrint through ``client``."""
        self.client = client
        # The hotends of the latest status: heaters off sets each of them.
        self._hotends: tuple[str, ...] = ()
        # A timelapse rendering, as the latest poll that asked found it.
        self._polled_busy = False
        self._push_interval = 1.0
        self._listener: PushListener | None = None

    @property
    def capabilities(self) -> frozenset[HostCapability]:
        """OctoPrint offers every operation, and pushes."""
        return CAPABILITIES

    @property
    def name(self) -> str:
        """OctoPrint."""
        return "OctoPrint"

    @property
    def address(self) -> str:
        """OctoPrint's base URL."""
        return str(self.client.address.base_url)

    @property
    def url(self) -> str | None:
        """OctoPrint's web interface."""
        return self.address

    @property
    def model(self) -> str:
        """The device's model."""
        return "OctoPrint power controller"

    @property
    def status_lag(self) -> float:
        """No lag: OctoPrint answers with its status of the moment it is asked."""
        return 0.0

    async def async_check_credentials(self) -> None:
        """The key's user (OctoPrint takes an unknown key for a guest, and says so here)."""
        await self.client.async_get_current_user()

    async def async_poll(self, *, check_busy: bool) -> PrinterStatus:
        """Printer state, temperatures and job; with ``check_busy``, the timelapse too."""
        snapshot = await self.client.async_get_snapshot(include_timelapse=check_busy)
        self._polled_busy = snapshot.rendering
        return self._status(snapshot)

    async def async_stream(self, stream: StatusStream) -> None:
        """Hold OctoPrint's push socket until it closes."""

        def on_event(event: str, job: JobState | None) -> None:
            # The state update after a job event may wait for the throttle; a poll has it now.
            if event in STATUS_EVENTS:
                stream.on_change(job)

        listener = PushListener(
            self.client,
            PushCallbacks(
                lambda snapshot: stream.on_status(self._status(snapshot)),
                on_event,
                stream.on_connection,
            ),
        )
        # Not open yet: the socket asks for this interval when it opens.
        await listener.async_set_interval(self._push_interval)
        self._listener = listener
        try:
            await listener.async_listen()
        finally:
            self._listener = None

    async def async_set_push_interval(self, seconds: float) -> None:
        """OctoPrint's throttle for state updates, on the open socket and the next ones."""
        self._push_interval = seconds
        if self._listener is not None:
            await self._listener.async_set_interval(seconds)

    def _status(self, snapshot: PrinterSnapshot) -> PrinterStatus:
        self._hotends = tuple(snapshot.tools)
        return PrinterStatus(
            job=snapshot.job,
            state_text=snapshot.state_text,
            hotends=snapshot.tools,
            bed=snapshot.bed,
            # A rendering the socket told of, or the latest poll found.
            busy=snapshot.rendering or self._polled_busy,
            job_text=snapshot.job_state,
            progress=snapshot.progress,
            print_time=snapshot.print_time,
            print_time_left=snapshot.print_time_left,
            file_name=snapshot.file_name,
        )

    async def async_halt(self) -> None:
        """Run OctoPrint's shutdown command; say why when OctoPrint cannot."""
        try:
            await self.client.async_shutdown_host()
        except OctoPrintConnectionError:
            raise
        except OctoPrintAuthError as err:
            raise HaltRefusedError(
                HaltRefusal.NOT_PERMITTED, "the API key needs the SYSTEM permission"
            ) from err
        except OctoPrintNoShutdownCommandError as err:
            raise HaltRefusedError(
                HaltRefusal.NO_COMMAND,
                "it has no shutdown command (set one in OctoPrint, Settings > Server > "
                "Commands > Shutdown system)",
            ) from err
        except OctoPrintError as err:
            raise HaltRefusedError(HaltRefusal.ERROR, str(err)) from err

    async def async_show_message(self, text: str) -> bool:
        """M117 on the printer's display."""
        return await self.client.async_send_message(text)

    async def async_heaters_off(self) -> bool:
        """Every hotend of the latest status and the bed to 0."""
        return await self.client.async_set_heaters_off(list(self._hotends))

    async def async_access_problem(self) -> AccessProblem | None:
        """The permissions the key's user lacks; None when OctoPrint refuses the key."""
        try:
            user = await self.client.async_get_current_user()
        except OctoPrintAuthError:
            return None
        missing = missing_permissions(user)
        return AccessProblem(user.name, permission_names(missing)) if missing else None
