"""The machine with one safety fix taken back: what the world-model test must catch.

Each mutant puts back, over today's machine, the behaviour a fix removed, by replacing the
machine's private functions for one test (``pytest.MonkeyPatch``); the functions call each
other through the module, so the replacement takes effect everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from custom_components.octoplugout import machine as m

_original_on_lost = m._on_lost
_original_on_shutdown_answered = m._on_shutdown_answered
_original_on_force = m._on_force
_original_ready_to_halt = m._ready_to_halt
_original_on_mode = m._on_mode


def _decide_on_the_last_status(step: Any, settings: m.Settings, now: float) -> None:
    """Hole a: a safe power-off goes on at once, on the status the machine holds."""
    state = step.data.state
    if state == m.Phase.OFF:
        return
    step.data = replace(step.data, user_power_off=True, arming_blocked=False)
    if state in (m.Phase.IDLE, m.Phase.PRINT_STARTED):
        step.go(settings, m.Phase.ARMED, now)
    elif state in (m.Phase.ON, m.Phase.WAITING_FOR_OCTOPRINT):
        step.go(settings, m.Phase.GOING_DOWN, now)
    m._evaluate(step, settings, now)


def _cool_down_on_the_last_status(
    step: Any, settings: m.Settings, now: float, answer: m.StatusReceived | None
) -> None:
    """Hole a (its other half): the cool-down halts on the status the machine holds."""
    data = step.data
    if data.job_active:
        step.go(settings, m.Phase.ARMED, now)
    elif data.reachable and m._ready_to_halt(data, settings, now):
        step.go(settings, m.Phase.SHUTTING_DOWN_HOST, now)


def _keep_the_clock_through_a_silence(step: Any, settings: m.Settings, event: Any) -> None:
    """Hole b (its first half): a silence does not restart the job's clock."""
    started, hottest = step.data.job_started_at, step.data.job_max_temperature
    _original_on_lost(step, settings, event)
    step.data = replace(step.data, job_started_at=started, job_max_temperature=hottest)


def _arm_when_the_clock_runs_out(
    step: Any, settings: m.Settings, now: float, answer: m.StatusReceived | None
) -> None:
    """Hole b: the minimum job time arms the power-off, whatever OctoPrint says meanwhile."""
    data = step.data
    if not data.job_active:
        if data.reachable:
            step.go(settings, m.Phase.IDLE, now)
        return
    if (
        not data.arming_blocked
        and data.job_started_at is not None
        and now - data.job_started_at >= settings.min_job_time
        and data.job_max_temperature >= settings.arm_temperature
    ):
        step.go(settings, m.Phase.ARMED, now)


def _take_no_answer_as_accepted(step: Any, settings: m.Settings, event: Any) -> None:
    """Hole c: a halt request with no answer starts the power-off as if the host had it."""
    if event.outcome == m.ShutdownOutcome.UNREACHABLE and not step.data.forced:
        step.data = replace(step.data, forced=True)
        _original_on_shutdown_answered(step, settings, event)
        step.data = replace(step.data, forced=False)
        return
    _original_on_shutdown_answered(step, settings, event)


def _force_on_the_last_status(step: Any, settings: m.Settings, event: Any) -> None:
    """A force that must not lose a job halts at once, on the status the machine holds."""
    _original_on_force(step, settings, replace(event, allow_job_loss=True))
    step.data = replace(step.data, job_loss_allowed=event.allow_job_loss)


def _reading_alone_is_cool(data: m.MachineData, settings: m.Settings, now: float) -> bool:
    """A hotend below the cool-down temperature is cool, even on its way up."""
    return _original_ready_to_halt(replace(data, hotend_target=None), settings, now)


def _missing_reading_is_cool(data: m.MachineData, settings: m.Settings, now: float) -> bool:
    """A status without a hotend reading counts as a cool hotend."""
    if data.hottest_tool is None:
        data = replace(data, hottest_tool=0.0)
    return _original_ready_to_halt(data, settings, now)


def _after_print_cancels_this_job(step: Any, settings: m.Settings, event: Any) -> None:
    """Power off after print, chosen during a job, keeps this job from arming."""
    data = step.data
    if event.mode == m.Mode.AFTER_PRINT and (
        data.state in m.POWERING_DOWN_STATES or data.user_power_off
    ):
        m._on_cancel(step, settings, event.now)
        return
    _original_on_mode(step, settings, event)


def _every_change_written_late(before: m.MachineData, after: m.MachineData) -> bool:
    """Every change is written a moment later, as readings are: a crash loses the last second."""
    return True


# Each mutant: the machine's functions it replaces, and with what.
MUTANTS: dict[str, dict[str, Callable[..., Any]]] = {
    "a: a safe power-off acts on a stale status": {
        "_request_safe_power_off": _decide_on_the_last_status,
        "_evaluate_cooling": _cool_down_on_the_last_status,
    },
    "b: arming while OctoPrint is silent": {
        "_on_lost": _keep_the_clock_through_a_silence,
        "_evaluate_print_started": _arm_when_the_clock_runs_out,
    },
    "c: a halt request with no answer leads to a cut": {
        "_on_shutdown_answered": _take_no_answer_as_accepted,
    },
    "a force acts on a stale status": {"_on_force": _force_on_the_last_status},
    "a heating hotend counts as cool": {"_ready_to_halt": _reading_alone_is_cool},
    "a missing hotend reading counts as cool": {"_ready_to_halt": _missing_reading_is_cool},
    "power off after print chosen during a job never fires": {
        "_on_mode": _after_print_cancels_this_job
    },
    "a killed Home Assistant forgets the last second": {
        "readings_only_changed": _every_change_written_late
    },
}


def apply(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the mutant's functions in the machine for the rest of the test."""
    for function, replacement in MUTANTS[name].items():
        monkeypatch.setattr(m, function, replacement)
