"""A key's permissions and OctoPrint's shutdown command, against the real OctoPrint and the
real Home Assistant: the user and its group are made through OctoPrint's REST API, the key is
entered in the flow as the frontend submits it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from custom_components.octoplugout.octoprint import REQUIRED_PERMISSIONS
from rig.fault_proxy import Fault
from rig.rig import Rig

from .rig_steps import no_shutdown_command, wait_for_reauth

pytestmark = pytest.mark.usefixtures("socket_enabled")

USER = "plugout"
ALL_NEEDED = list(REQUIRED_PERMISSIONS)
# What the rig's Home Assistant says of itself: the newest wants the HTTP settings out of YAML
# (where the rig must give its port), and, a moment after it started, that an install in a
# virtual environment ("Core") is deprecated.
RIG_OWN_ISSUES = {
    ("http", "deprecated_yaml"),
    ("http", "yaml_still_present_after_migration"),
    ("homeassistant", "deprecated_method"),
}


def answer(rig: Rig, flow: str, user_input: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = rig.ha.request(
        "POST", f"/api/config/config_entries/flow/{flow}", user_input
    )
    return result


def wait_for_issues(rig: Rig, present: bool, seconds: float = 60) -> dict[str, dict[str, Any]]:
    """OctoPlugout's repair issues once the missing-permissions one is (or is no longer) there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        issues = {
            issue["translation_key"]: issue
            for issue in rig.ha.repair_issues()
            if issue["domain"] == "octoplugout"
        }
        if ("missing_permissions" in issues) is present:
            return issues
        time.sleep(0.5)
    raise TimeoutError(f"the missing-permissions issue is still {'absent' if present else 'there'}")


def test_permissions_are_named_at_once_and_never_loop(idle: Rig) -> None:
    rig = idle
    # Settings shows OctoPlugout's repairs only (the rig's Home Assistant has its country set,
    # its dashboard where each version wants it), but for what it says of its own install.
    others = {
        (issue["domain"], issue["issue_id"])
        for issue in rig.ha.repair_issues()
        if issue["domain"] != "octoplugout"
    }
    assert others <= RIG_OWN_ISSUES
    key = rig.octoprint.add_user(USER, [])
    power = rig.entity("switch", "power")
    try:
        # A key OctoPrint stops knowing asks for a new one.
        rig.inject(Fault("bad_key", until=time.time() + 300))
        flow = wait_for_reauth(rig)
        rig.heal()
        assert answer(rig, flow, {"next_step_id": "api_key"})["step_id"] == "api_key"

        # A user with none of the permissions: all three named in one answer.
        result = answer(rig, flow, {"api_key": key})
        assert result["errors"] == {"base": "missing_permissions"}
        assert result["description_placeholders"]["permissions"] == "Status, Control, System"
        rig.octoprint.set_permissions(USER, ["CONTROL", "SYSTEM"])
        result = answer(rig, flow, {"api_key": key})
        assert result["errors"] == {"base": "missing_permissions"}
        assert result["description_placeholders"]["permissions"] == "Status"

        # Every permission, but nothing to halt with: said now, not at the first halt.
        rig.octoprint.set_permissions(USER, ALL_NEEDED)
        with no_shutdown_command(rig.octoprint):
            result = answer(rig, flow, {"api_key": key})
            assert result["errors"] == {"base": "no_shutdown_command"}
        assert answer(rig, flow, {"api_key": key})["reason"] == "reauth_successful"
        rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)

        # At run time the user loses Status: OctoPrint refuses every status with 403, yet the
        # key logs in. A repair issue names the permission; no re-authentication, power stays.
        rig.octoprint.set_permissions(USER, ["CONTROL", "SYSTEM"])
        issue = wait_for_issues(rig, present=True)["missing_permissions"]
        assert issue["translation_placeholders"]["permissions"] == "Status"
        assert issue["translation_placeholders"]["user"] == USER
        time.sleep(10)
        assert rig.ha.reauth_flows("octoplugout") == []
        assert rig.ha.state_of(power) == "on"
        assert rig.ha.entries("octoplugout")[0]["state"] == "loaded"

        # Given back, the issue goes by itself.
        rig.octoprint.set_permissions(USER, ALL_NEEDED)
        wait_for_issues(rig, present=False)
        rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)
    finally:
        rig.heal()
        _back_to_the_administrators_key(rig)


def _back_to_the_administrators_key(rig: Rig) -> None:
    """Remove the user: its key is unknown now, so Home Assistant asks for another."""
    rig.octoprint.remove_user(USER)
    flow = wait_for_reauth(rig)
    answer(rig, flow, {"next_step_id": "api_key"})
    assert answer(rig, flow, {"api_key": rig.octoprint.admin_key})["reason"] == (
        "reauth_successful"
    )
    wait_for_issues(rig, present=False)
    rig.ha.wait_for_state(rig.entity("sensor", "state"), "idle", seconds=60)
