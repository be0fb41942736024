"""Steps the tests on the real rig share: bring it to idle, follow the machine, count cuts."""

from __future__ import annotations

from collections.abc import Generator
import contextlib
from dataclasses import asdict, dataclass, field
import time
from typing import Any

import pytest

from rig.klipper_rig import KlipperRig
from rig.octoprint_server import OctoPrintServer
from rig.rig import Rig


@dataclass
class FaultTally:
    """The faults tried on the rig, and the two numbers that must stay zero."""

    tried: list[str] = field(default_factory=list)
    cuts_during_job: int | None = None
    processes_left: int | None = None

    def summary(self) -> str:
        """The run's summary line."""
        return (
            f"fault matrix: {len(self.tried)} faults tried, "
            f"{self.cuts_during_job} power cuts during a job, "
            f"{self.processes_left} processes left running"
        )

    def as_dict(self) -> dict[str, Any]:
        """What a parallel worker sends to the main process."""
        return asdict(self)

    def add(self, other: dict[str, Any]) -> None:
        """Add a parallel worker's tally; a count stays unknown until some rig reported it."""
        self.tried += other["tried"]
        for name in ("cuts_during_job", "processes_left"):
            theirs = other[name]
            if theirs is not None:
                setattr(self, name, (getattr(self, name) or 0) + theirs)


FAULT_TALLY = pytest.StashKey[FaultTally]()


def bring_to_idle(rig: Rig, seconds: float = 120) -> Rig:
    """Power the rig, boot the Pi if needed, and wait until OctoPlugout is idle."""
    state = rig.entity("sensor", "state")
    deadline = time.monotonic() + seconds
    while (current := rig.ha.state_of(state)) != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"OctoPlugout stays {current}")
        _nudge_towards_idle(rig, current)
        if not rig.octoprint.printer_operational():
            if rig.octoprint.answers():
                # OctoPrint is up but lost its printer (a test pulled the cable).
                rig.octoprint.connect_printer()
                rig.wait_for_octoprint()
            elif rig.relay_file.read_text().strip() == "on":
                rig.tell_pi("boot")
                rig.wait_for_octoprint()
            # Without power the Pi waits for the nudge's power, which a power-off ending just
            # then can undo: the next round looks (and nudges) again.
        # A nudge may meet the entry reloading; give it time, then look again.
        with contextlib.suppress(TimeoutError):
            rig.ha.wait_for_state(state, "idle", seconds=15)
    return rig


def _nudge_towards_idle(rig: Rig, current: str | None) -> None:
    if current == "off":
        rig.ha.call("switch", "turn_on", {"entity_id": rig.entity("switch", "power")})
    elif current == "on":
        # A halt that was refused or undone leaves power on without watching.
        rig.ha.call(
            "select",
            "select_option",
            {"entity_id": rig.entity("select", "mode"), "option": "after_print"},
        )
    elif current in ("armed", "cooling", "shutting_down_host", "powering_off", "going_down"):
        # A test left a power-off pending (an armed job on a crashed OctoPrint).
        rig.ha.call("button", "press", {"entity_id": rig.entity("button", "cancel_power_off")})


def watch_states(
    rig: Rig | KlipperRig,
    until: str | set[str],
    seconds: float = 240,
    *,
    entity: str | None = None,
) -> list[str]:
    """The machine's states (of the rig's entry, or the state sensor ``entity``), in order,
    until one of ``until`` shows."""
    wanted = {until} if isinstance(until, str) else until
    entity = entity or rig.entity("sensor", "state")
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = rig.ha.state_of(entity)
        if state is not None and (not seen or seen[-1] != state):
            seen.append(state)
        if state in wanted:
            return seen
        time.sleep(0.2)
    raise TimeoutError(f"{wanted} never came: {seen}\n{rig.story()}")


def wait_for_cuts(rig: Rig, count: int) -> list[dict[str, object]]:
    """The power line records a cut a moment after the relay switched off."""
    deadline = time.monotonic() + 10
    while len(cuts := rig.power_cuts()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return cuts


def wait_for_reauth(rig: Rig, seconds: float = 60) -> str:
    """The id of OctoPlugout's re-authentication flow, once Home Assistant started one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if flows := rig.ha.reauth_flows("octoplugout"):
            return flows[0]
        time.sleep(0.5)
    raise TimeoutError("no re-authentication flow started")


@contextlib.contextmanager
def no_shutdown_command(octoprint: OctoPrintServer) -> Generator[None]:
    """OctoPrint as it comes: Settings > Server > Commands > Shutdown left empty."""
    command = octoprint.shutdown_command()
    octoprint.set_shutdown_command("")
    try:
        yield
    finally:
        octoprint.set_shutdown_command(command)
