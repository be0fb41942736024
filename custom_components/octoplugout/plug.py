"""The plug's entities: what they report becomes machine events, what the machine asks is switched.

The relay is any Home Assistant switch; the button, the LED pattern select, the power lock and
the "stay off at power-up" switch are optional (the OctoPlugout ESPHome plug has them all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State as HAState,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_state_change_event

from .const import (
    BUTTON_LONG_PRESS,
    BUTTON_SHORT_PRESS,
    CONF_BUTTON,
    CONF_LED,
    CONF_LOCK,
    CONF_POWER_UP,
    CONF_RELAY,
    LOGGER,
)

_INACTIVE = (STATE_UNAVAILABLE, STATE_UNKNOWN)


def switch_on(state: HAState | None) -> bool | None:
    """A switch's state: on, off or (unavailable, unknown) None."""
    if state is None or state.state in _INACTIVE:
        return None
    return state.state == STATE_ON


@dataclass(frozen=True, slots=True)
class PlugListeners:
    """Where the plug's reports go; all are called in the event loop."""

    on_relay: Callable[[HAState | None], None]
    on_button: Callable[[bool], None]
    on_power_up_setting: Callable[[bool | None], None]


class Plug:
    """The plug's entities of one entry."""

    def __init__(self, hass: HomeAssistant, data: Mapping[str, Any]) -> None:
        """The entities chosen in the entry's ``data``."""
        self._hass = hass
        self.relay: str = data[CONF_RELAY]
        self._button: str | None = data.get(CONF_BUTTON)
        self.led: str | None = data.get(CONF_LED)
        self.lock: str | None = data.get(CONF_LOCK)
        self.power_up: str | None = data.get(CONF_POWER_UP)
        self._last_button_event: str | None = None

    def relay_state(self) -> HAState | None:
        """The relay's state now."""
        return self._hass.states.get(self.relay)

    @callback
    def async_listen(self, listeners: PlugListeners) -> list[CALLBACK_TYPE]:
        """Report the relay, the button and the power-up setting; returns the unsubscribers."""
        hass = self._hass

        @callback
        def relay_changed(event: Event[EventStateChangedData]) -> None:
            listeners.on_relay(event.data["new_state"])

        unsubscribe = [async_track_state_change_event(hass, [self.relay], relay_changed)]
        if self._button:
            if button_state := hass.states.get(self._button):
                self._last_button_event = button_state.state

            @callback
            def button_changed(event: Event[EventStateChangedData]) -> None:
                if (long := self._press(event.data["new_state"])) is not None:
                    listeners.on_button(long)

            unsubscribe.append(async_track_state_change_event(hass, [self._button], button_changed))
        if self.power_up:

            @callback
            def power_up_changed(event: Event[EventStateChangedData]) -> None:
                listeners.on_power_up_setting(switch_on(event.data["new_state"]))

            unsubscribe.append(
                async_track_state_change_event(hass, [self.power_up], power_up_changed)
            )
            listeners.on_power_up_setting(switch_on(hass.states.get(self.power_up)))
        return unsubscribe

    def _press(self, state: HAState | None) -> bool | None:
        """A new press of the button: long or not; None for no new press."""
        if state is None or state.state in _INACTIVE:
            return None
        # An event entity's state is the time of its last event; the same time again (for
        # instance after the plug reconnects) is no new press.
        if state.state == self._last_button_event:
            return None
        self._last_button_event = state.state
        event_type = state.attributes.get("event_type")
        if event_type not in (BUTTON_SHORT_PRESS, BUTTON_LONG_PRESS):
            LOGGER.debug("Ignoring button event %s", event_type)
            return None
        return bool(event_type == BUTTON_LONG_PRESS)

    async def async_switch(self, entity_id: str, on: bool) -> None:
        """Switch one of the plug's switches."""
        await self._call("switch", SERVICE_TURN_ON if on else SERVICE_TURN_OFF, entity_id)

    async def async_set_led(self, pattern: str) -> None:
        """Show ``pattern`` on the LED, when the LED has it."""
        if self.led is None:
            return
        state = self._hass.states.get(self.led)
        if state is None or pattern not in state.attributes.get("options", []):
            return
        await self._call("select", "select_option", self.led, {"option": pattern})

    async def _call(
        self, domain: str, service: str, entity_id: str, extra: dict[str, Any] | None = None
    ) -> None:
        try:
            await self._hass.services.async_call(
                domain, service, {ATTR_ENTITY_ID: entity_id, **(extra or {})}, blocking=True
            )
        except HomeAssistantError as err:
            LOGGER.warning("Could not call %s.%s for %s: %s", domain, service, entity_id, err)
