"""A printer whose integration polls it: OctoPlugout asks that integration to update its
entities before it reads them for a decision, so a job started since its last update is seen."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.components.button import ButtonEntity
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity
from homeassistant.const import STATE_ON, UnitOfTemperature
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    setup_test_component_platform,
)

from custom_components.octoplugout import entity_host
from custom_components.octoplugout.const import (
    CONF_HALT_BUTTON,
    CONF_HOST_TYPE,
    CONF_HOTEND_ENTITIES,
    CONF_JOB_ENTITY,
    CONF_JOB_STATES,
    CONF_RELAY,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
    HOST_ENTITIES,
)
from custom_components.octoplugout.entity_host import EntityHost, PrinterEntities
from custom_components.octoplugout.machine import JobState
from custom_components.octoplugout.options import OPTION_DEFAULTS

from .common import RELAY, FakePlug

JOB = "sensor.polled_state"
NOZZLE = "sensor.polled_nozzle"
HALT = "button.polled_shutdown"
STATE = "sensor.octoplugout_printer_state"


class Printer:
    """The printer as it is: what its integration reads when it next updates."""

    def __init__(self) -> None:
        """Idle and cold; its integration's updates succeed."""
        self.state = "Operational"
        self.nozzle = 25.0
        self.fetches = 0
        # When each fetch began (the event loop's time).
        self.fetched_at: list[float] = []
        self.halts = 0
        self.update_fails: BaseException | None = None
        self.update_hangs = False
        # Asked again this soon, the integration puts the fetch off (as Home Assistant's
        # coordinators do) and the entity keeps what it had.
        self.cooldown = 0.0


class PolledSensor(SensorEntity):
    """An entity of an integration that polls the printer (here only when asked)."""

    _attr_should_poll = False

    def __init__(self, printer: Printer, entity_id: str, *, temperature: bool) -> None:
        """Read ``printer``'s state, or its nozzle temperature."""
        self.printer = printer
        self.entity_id = entity_id
        self._attr_unique_id = entity_id
        self.temperature = temperature
        self.fetched_at: float | None = None
        if temperature:
            self._attr_device_class = SensorDeviceClass.TEMPERATURE
            self._attr_native_unit_of_measurement = UnitOfTemperature.CELSIUS
        self._attr_native_value = self._read()

    def _read(self) -> Any:
        return self.printer.nozzle if self.temperature else self.printer.state

    async def async_update(self) -> None:
        """Fetch from the printer, as the integration's poll does."""
        now = asyncio.get_running_loop().time()
        if self.fetched_at is not None and now - self.fetched_at < self.printer.cooldown:
            return
        self.fetched_at = now
        self.printer.fetches += 1
        self.printer.fetched_at.append(now)
        if self.printer.update_hangs:
            await asyncio.Event().wait()
        if self.printer.update_fails is not None:
            raise self.printer.update_fails
        self._attr_native_value = self._read()


class HaltButton(ButtonEntity):
    """The integration's button that halts the printer's host."""

    def __init__(self, printer: Printer) -> None:
        """Count the presses on ``printer``."""
        self.printer = printer
        self.entity_id = HALT
        self._attr_unique_id = HALT

    async def async_press(self) -> None:
        """The host halts."""
        self.printer.halts += 1


class Integration:
    """The printer's integration: its entities, and its own updates."""

    def __init__(self, hass: HomeAssistant, printer: Printer) -> None:
        """Entities reading ``printer``."""
        self.hass = hass
        self.job = PolledSensor(printer, JOB, temperature=False)
        self.nozzle = PolledSensor(printer, NOZZLE, temperature=True)
        self.button = HaltButton(printer)

    async def async_setup(self) -> None:
        """Add the entities through test platforms; update_entity needs Home Assistant's own
        integration, as it always runs."""
        assert await async_setup_component(self.hass, "homeassistant", {})
        setup_test_component_platform(self.hass, "sensor", [self.job, self.nozzle])
        setup_test_component_platform(self.hass, "button", [self.button])
        for domain in ("sensor", "button"):
            assert await async_setup_component(self.hass, domain, {domain: [{"platform": "test"}]})
        await self.hass.async_block_till_done()

    def shows(self, state: str, nozzle: float) -> None:
        """What its last update wrote (without waiting for what follows from it)."""
        self.job._attr_native_value = state
        self.nozzle._attr_native_value = nozzle
        self.job.async_write_ha_state()
        self.nozzle.async_write_ha_state()


ENTITIES = PrinterEntities(
    job=JOB,
    job_states=frozenset({"printing"}),
    fault_states=frozenset(),
    hotends=(NOZZLE,),
    halt_button=HALT,
)


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def _integration(hass: HomeAssistant) -> tuple[Printer, Integration]:
    printer = Printer()
    integration = Integration(hass, printer)
    await integration.async_setup()
    return printer, integration


async def test_a_poll_reads_the_printer_as_its_integration_fetches_it_now(
    hass: HomeAssistant,
) -> None:
    printer, _ = await _integration(hass)
    # A print started since the integration's last update.
    printer.state = "Printing"
    printer.nozzle = 180.0
    assert _state(hass, JOB) == "Operational"
    fetched = printer.fetches

    status = await EntityHost(hass, ENTITIES).async_poll(check_busy=False)

    assert status.job == JobState.RUNNING
    assert status.hotends[NOZZLE].actual == 180.0
    assert printer.fetches == fetched + 2


@pytest.mark.parametrize(
    "failure",
    [HomeAssistantError("printer unreachable"), RuntimeError("bug in the integration"), None],
    ids=["refused", "crashed", "hangs"],
)
async def test_an_update_that_fails_or_hangs_leaves_the_entities_as_they_are(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, failure: BaseException | None
) -> None:
    printer, _ = await _integration(hass)
    monkeypatch.setattr(entity_host, "REFRESH_TIMEOUT", 0.05)
    printer.state = "Printing"
    printer.update_fails = failure
    printer.update_hangs = failure is None

    status = await EntityHost(hass, ENTITIES).async_poll(check_busy=False)

    # As the integration last had it: what its states say (their age is the update interval).
    assert status.job == JobState.NONE
    assert printer.fetches >= 1


async def test_asks_come_no_sooner_than_the_integration_fetches_again(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    printer, _ = await _integration(hass)
    monkeypatch.setattr(entity_host, "REFRESH_SPACING", 0.2)
    printer.cooldown = 0.15
    host = EntityHost(hass, ENTITIES)
    await host.async_poll(check_busy=False)
    first = printer.fetched_at[-1]
    printer.state = "Printing"

    status = await host.async_poll(check_busy=False)

    # Asked sooner, the fetch would have been put off and the poll read old states.
    assert printer.fetched_at[-1] - first >= 0.2
    assert status.job == JobState.RUNNING


async def test_a_job_started_since_the_integration_s_last_update_stops_the_halt(
    hass: HomeAssistant, plug: FakePlug, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entity_host, "REFRESH_SPACING", 0.01)
    printer, integration = await _integration(hass)
    await plug.async_setup()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="OctoPlugout Printer",
        unique_id=f"{HOST_ENTITIES}:{JOB}",
        data={
            CONF_HOST_TYPE: HOST_ENTITIES,
            CONF_JOB_ENTITY: JOB,
            CONF_JOB_STATES: ["Printing"],
            CONF_HOTEND_ENTITIES: [NOZZLE],
            CONF_HALT_BUTTON: HALT,
            CONF_RELAY: RELAY,
            # Any job arms at once: what matters here is the halt.
            CONF_UPDATE_INTERVAL: 0,
        },
        options={**OPTION_DEFAULTS, "min_job_time": 0},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    printer.state, printer.nozzle = "Printing", 210.0
    integration.shows("Printing", 210.0)
    await hass.async_block_till_done()
    assert _state(hass, STATE) == "armed"

    # The integration's update shows the print over and the nozzle cool; by the time
    # OctoPlugout asks before halting, the next print has started.
    integration.shows("Operational", 30.0)
    printer.state, printer.nozzle = "Printing", 30.0
    await hass.async_block_till_done()

    assert printer.halts == 0
    assert _state(hass, STATE) == "armed"
    assert plug.relay == STATE_ON

    # Once the print is over for real, the host is halted.
    printer.state = "Operational"
    integration.shows("Operational", 30.0)
    await hass.async_block_till_done()
    assert printer.halts == 1
