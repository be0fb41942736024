"""The safety property test, long: many more generated event sequences than the normal run.

The normal test run (the baseline) and the long run go in the same invocation, so the table
shows how much more was checked and at what speed. Every sequence is checked against every
safety rule after every step; a failure fails the benchmark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NORMAL_EXAMPLES = 2000


@dataclass(frozen=True)
class Run:
    """One run of the property test."""

    examples: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Sequences checked per second."""
        return self.examples / self.seconds


def run(examples: int) -> Run:
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


def table(baseline: Run, long: Run) -> str:
    """The results as a Markdown table."""
    rows = [
        "| run | sequences | seconds | sequences/s |",
        "|---|---:|---:|---:|",
        f"| normal test run (baseline) | {baseline.examples} | {baseline.seconds:.1f} "
        f"| {baseline.per_second:.0f} |",
        f"| long run | {long.examples} | {long.seconds:.1f} | {long.per_second:.0f} |",
        f"| ratio long/baseline | {long.examples / baseline.examples:.1f} "
        f"| {long.seconds / baseline.seconds:.1f} "
        f"| {long.per_second / baseline.per_second:.2f} |",
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and the long run; print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=50_000)
    args = parser.parse_args(argv)
    baseline = run(NORMAL_EXAMPLES)
    long = run(args.examples)
    text = "Safety property test, 20-200 events per sequence, every rule after every step.\n\n"
    text += table(baseline, long)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "safety.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
