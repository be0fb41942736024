"""The safety tests, long: many more sequences than the normal test run checks.

Two tests, each as a baseline (the normal run's count) and a long run in the same invocation,
so the table shows how much more was checked and at what speed:

- the property test on the machine's own view (``tests/test_machine_safety.py``, hypothesis);
- the world model (``tests/world_play.py``): the same worlds as ``tests/test_world_safety.py``
  and then new ones, spread over one process per core; every rule is checked in the world.

A broken rule fails the benchmark and names the seed that replays it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from multiprocessing import Pool
import os
from pathlib import Path
import subprocess
import sys
import time

from tests.world_play import play_seeds
from tests.world_run import Tally

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NORMAL_EXAMPLES = 2000
NORMAL_WORLDS = 2000
WORLDS_PER_TASK = 250


@dataclass(frozen=True)
class Run:
    """One run: how many sequences, in how many seconds, and what happened in them."""

    examples: int
    seconds: float
    tally: Tally | None = None

    @property
    def per_second(self) -> float:
        """Sequences checked per second."""
        return self.examples / self.seconds


def run_property_test(examples: int) -> Run:
    """Run the property test with this many sequences; fail loudly if a rule breaks."""
    env = {**os.environ, "OCTOPLUGOUT_SAFETY_EXAMPLES": str(examples)}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov",
        "tests/test_machine_safety.py",
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"the safety property test failed with {examples} sequences")
    return Run(examples, seconds)


def run_worlds(count: int) -> Run:
    """Play worlds 0 .. count-1 on every core; a broken rule ends the run with its report."""
    tasks = [
        range(first, min(first + WORLDS_PER_TASK, count))
        for first in range(0, count, WORLDS_PER_TASK)
    ]
    tally = Tally()
    started = time.monotonic()
    with Pool(os.cpu_count()) as pool:
        for part in pool.imap_unordered(play_seeds, tasks):
            tally.add(part)
    return Run(count, time.monotonic() - started, tally)


def _row(name: str, run: Run) -> str:
    row = f"| {name} | {run.examples} | {run.seconds:.1f} | {run.per_second:.0f} |"
    if run.tally is not None:
        tally = run.tally
        row += (
            f" {tally.events} | {tally.halts} | {tally.cuts - tally.forced_cuts} "
            f"| {tally.forced_cuts} | {tally.races} | {tally.problems} |"
        )
    return row


def _ratio(baseline: Run, long: Run) -> str:
    return (
        f"| ratio long/baseline | {long.examples / baseline.examples:.1f} "
        f"| {long.seconds / baseline.seconds:.1f} | {long.per_second / baseline.per_second:.2f} |"
    )


def table(baseline: Run, long: Run, *, worlds: bool = False) -> str:
    """One test's results as a Markdown table."""
    header = "| run | sequences | seconds | sequences/s |"
    rule = "|---|---:|---:|---:|"
    if worlds:
        header += " events | halt requests | cuts | forced cuts | races | problems told |"
        rule += "---:|---:|---:|---:|---:|---:|"
    rows = [
        header,
        rule,
        _row("normal test run (baseline)", baseline),
        _row("long run", long),
        _ratio(baseline, long),
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the baselines and the long runs; print and save the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=50_000, help="property test sequences")
    parser.add_argument("--worlds", type=int, default=100_000, help="world-model sequences")
    args = parser.parse_args(argv)
    world_baseline = run_worlds(NORMAL_WORLDS)
    world_long = run_worlds(args.worlds)
    baseline = run_property_test(NORMAL_EXAMPLES)
    long = run_property_test(args.examples)
    text = (
        "World model: printer, host, plug and channel beside the machine; every rule checked in "
        "the world (tests/world_rules.py).\n\n"
        + table(world_baseline, world_long, worlds=True)
        + "\nProperty test on the machine's own view, 20-200 events per sequence, every rule "
        "after every step.\n\n" + table(baseline, long)
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "safety.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
