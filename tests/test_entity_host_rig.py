"""A printer already in Home Assistant, for real: Home Assistant's own OctoPrint integration
set up against the rig's OctoPrint, and OctoPlugout using its entities as the host (its
*Shutdown System* button to halt the Pi) on the rig's power line.
"""

from __future__ import annotations

import time

import pytest

from rig.octoprint_server import ADMIN
from rig.rig import Rig

from .common import CYCLE_EVENTS
from .rig_steps import wait_for_cuts, watch_states

pytestmark = pytest.mark.usefixtures("socket_enabled")
CYCLE = ["print_started", "armed", "cooling", "shutting_down_host", "powering_off", "off"]
SHUTDOWN_BUTTON = "button.octoprint_shutdown_system"
SHUTDOWN_COMMAND = "/api/system/commands/core/shutdown"


def test_the_core_octoprint_integration_s_entities_power_off_safely(idle: Rig) -> None:
    ha = idle.ha
    # OctoPlugout's own OctoPrint entry keeps power on meanwhile, deciding nothing.
    mode = idle.entity("select", "mode")
    ha.call("select", "select_option", {"entity_id": mode, "option": "always_on"})
    ha.wait_for_state(idle.entity("sensor", "state"), "on", seconds=30)
    core = ha.add_core_octoprint(idle.proxy_port, ADMIN, idle.octoprint.approve_app_keys)
    entry = None
    try:
        ha.wait_for_state(SHUTDOWN_BUTTON, "unknown", seconds=120)
        entry, title = ha.add_octoplugout_for_entities(
            ha.device_of(SHUTDOWN_BUTTON), idle.relay_entity
        )
        # The core integration polls every 30 s: a halt is seen that much later.
        ha.set_options(entry, {**idle.quick_options, "shutdown_timeout": 180})
        state = f"sensor.{title.lower().replace(' ', '_')}_state"
        ha.wait_for_state(state, "idle", seconds=90)
        cuts_before = len(idle.power_cuts())
        idle.start_print("polled.gcode")
        started = time.time()
        seen = watch_states(idle, "off", seconds=480, entity=state)
        # A state may pass between two looks (the integration showed the print over and the
        # hotend already cool in one update): each seen once, in order.
        steps = [step for step in seen if step in CYCLE]
        assert steps == sorted(set(steps), key=CYCLE.index)
        assert {"print_started", "armed", "powering_off", "off"} <= set(steps)
        assert events_of(idle, entry, started) == CYCLE_EVENTS
        cuts = wait_for_cuts(idle, cuts_before + 1)[cuts_before:]
        assert len(cuts) == 1
        # The Pi halted before the cut, and it was the core integration's button that asked.
        assert cuts[0]["host_halted"] is True
        assert cuts[0]["host_running"] is False
        assert cuts[0]["job"] is False
        # (The core integration joins its path "/" and the API's with a doubled slash.)
        halts = [
            request
            for request in idle.octoprint_requests()
            if request["method"] == "POST" and request["path"].endswith(SHUTDOWN_COMMAND)
        ]
        assert len(halts) == 1
        assert halts[0]["status"] == 204
        assert halts[0]["key_end"] != idle.octoprint.admin_key[-4:]
    finally:
        if entry is not None:
            ha.remove_entry(entry)
        ha.remove_entry(core)


def events_of(rig: Rig, entry_id: str, since: float, seconds: float = 30) -> list[str]:
    """The kinds of OctoPlugout's events for one entry, once the recorder wrote the last."""
    deadline = time.monotonic() + seconds
    while True:
        kinds = [
            event["type"]
            for event in rig.ha.recorded_events("octoplugout_event", since)
            if event.get("config_entry_id") == entry_id
        ]
        if (kinds and kinds[-1] == "powered_off") or time.monotonic() > deadline:
            return kinds
        time.sleep(0.5)
