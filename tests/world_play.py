"""Random worlds from a seed: a scenario, a stretch of things happening, then a calm stretch.

``play(seed)`` is one sequence; the same seed plays the same sequence, so a violation is
reproduced with ``play(seed)`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
import random

from custom_components.octoplugout import machine as m
from custom_components.octoplugout.const import HOST_ENTITIES, HOST_TYPES
from custom_components.octoplugout.entity_host import DEFAULT_UPDATE_INTERVAL

from .world_rules import Violation
from .world_run import SOURCES, Scenario, Tally, WorldRun
from .world_workshop import Workshop

STEPS = (8, 40)  # things that happen in one sequence
CALM_SLACK = 600.0  # beyond the sum of every wait the machine may make


def draw_scenario(rng: random.Random) -> Scenario:
    """One world's behaviour and the machine's settings."""
    halt_delay = rng.choice([10.0, 15.0, 60.0])
    settings = m.Settings(
        startup_mode=rng.choice(list(m.StartupMode)),
        min_job_time=rng.choice([0.0, 60.0, 300.0]),
        halt_delay=halt_delay,
        shutdown_timeout=rng.choice([30.0, 180.0]),
        uptime_guard=rng.choice([0.0, 120.0]),
        heaters_off=rng.random() < 0.7,
        restore_relay_during_job=rng.random() < 0.5,
        bed_cool_temperature=rng.choice([None, 40.0]),
    )
    return Scenario(
        settings=settings,
        hotends=rng.choice([1, 1, 2]),
        push_socket=rng.random() < 0.6,
        loss=rng.choice([0.0, 0.0, 0.05, 0.3]),
        max_latency=rng.choice([0.05, 0.5, 3.0]),
        push_age=rng.choice([0.5, 2.0, 10.0]),
        stops_answering_after=rng.uniform(0.2, 3.0),
        halt_seconds=rng.uniform(3.0, halt_delay),
        refuses_halts=rng.random() < 0.05,
        relay_on_at_start=rng.random() < 0.9,
    )


def _happenings(
    run: WorldRun, shop: Workshop, rng: random.Random
) -> list[tuple[int, str, Callable[[], None]]]:
    """What may happen next, with how often."""
    seconds = rng.uniform(5, 900)
    temperature = rng.choice([0.0, 60.0, 200.0, rng.uniform(180, 250)])
    source = rng.choice(sorted(SOURCES))
    return [
        (6, f"a job of {seconds:.0f} s", lambda: shop.start_job(seconds, 210)),
        (1, f"a job from the printer's screen, {seconds:.0f} s, never shown",
         lambda: shop.start_job(seconds, 210, shown_after=None)),
        (1, f"a job from the printer's screen, {seconds:.0f} s, shown {seconds / 20:.0f} s later",
         lambda: shop.start_job(seconds, 210, shown_after=seconds / 20)),
        (2, "the job cancelled", shop.cancel_job),
        (1, f"the job paused {seconds / 3:.0f} s", lambda: shop.pause_job(seconds / 3)),
        (2, f"hotends heated to {temperature:.0f}", lambda: shop.heat(temperature)),
        (6, f"the user: {source}", lambda: run.command(source)),
        (5, "a push", run.push),
        (1, f"the printer disconnected {seconds / 8:.0f} s",
         lambda: shop.disconnect_printer(seconds / 8)),
        (1, f"OctoPrint restarting {seconds / 15:.0f} s",
         lambda: shop.restart_octoprint(seconds / 15)),
        (1, f"the network down {seconds / 2:.0f} s", lambda: shop.network_outage(seconds / 2)),
        (1, f"the host busy {seconds / 30:.0f} s", lambda: shop.host_busy(seconds / 30)),
        (1, f"the plug away {seconds / 10:.0f} s", lambda: shop.plug_away(seconds / 10)),
        (1, f"Home Assistant restarting {seconds / 8:.0f} s",
         lambda: run.restart_home_assistant(seconds / 8)),
        (1, f"Home Assistant killed, back in {seconds / 8:.0f} s",
         lambda: run.restart_home_assistant(seconds / 8, killed=True)),
    ]  # fmt: skip


def _with_host(scenario: Scenario, rng: random.Random) -> Scenario:
    """The printer's host. A printer another integration reports: its entities change as
    things happen or every so often, at most as seldom as its entry says, and it may have
    no halt button."""
    host_type = rng.choice(HOST_TYPES)
    if host_type != HOST_ENTITIES:
        return replace(scenario, host_type=host_type)
    update_interval = rng.choice([5.0, DEFAULT_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL, 120.0])
    return replace(
        scenario,
        host_type=host_type,
        push_socket=True,
        source_lag=rng.choice([0.0, 0.0, min(7.0, update_interval), update_interval]),
        source_fetches_on_request=rng.random() < 0.7,
        settings=replace(
            scenario.settings, halts_host=rng.random() < 0.7, status_lag=update_interval
        ),
    )


def play(seed: int) -> Tally:
    """One sequence; raises ``Violation`` when a rule breaks."""
    rng = random.Random(seed)
    # Drawn apart from the world, so that a seed plays the same world with either host.
    scenario = _with_host(draw_scenario(rng), random.Random(f"host {seed}"))
    run = WorldRun(scenario, rng)
    shop = Workshop(run)
    for _ in range(rng.randint(*STEPS)):
        run.run_until(run.now + rng.expovariate(1 / rng.choice([2.0, 30.0, 200.0])))
        happenings = _happenings(run, shop, rng)
        _, name, happen = rng.choices(happenings, [weight for weight, _, _ in happenings])[0]
        run.trace.append(f"{run.now:.1f} world: {name}")
        happen()
    run.calm_down()
    settings = scenario.settings
    longest_job = 900.0 + 300.0  # a job and a pause
    cooling = 250.0 / 1.0  # from the hottest target at the cooling rate
    run.run_until(
        run.now
        + longest_job
        + cooling
        + settings.uptime_guard
        + 2 * settings.shutdown_timeout
        + settings.halt_delay
        + CALM_SLACK
    )
    run.referee.check_liveness()
    return run.tally


def play_seeds(seeds: range) -> Tally:
    """Play every seed; a broken rule names the seed that replays it (``play(seed)``)."""
    tally = Tally()
    for seed in seeds:
        try:
            tally.add(play(seed))
        except Violation as violation:
            raise Violation(f"seed {seed}: {violation}") from None
    return tally
