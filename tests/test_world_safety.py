"""The safety rules, checked against a model of the world rather than the machine's own view.

Each sequence (``tests/world_play.py``) draws a world (one or two hotends, a push socket or not,
a lossy or slow network, a host that refuses to halt, the machine's settings) and lets things
happen in it: prints started from OctoPrint or from the printer's own screen, paused, cancelled;
hotends heated by hand; the printer's cable pulled; OctoPrint restarting; the network or the
plug going away; the host too busy to answer; Home Assistant restarting; users sending commands
through every source the integration has. Then the world calms down and the power-off under way
must end. ``tests/world_run.py`` lists the rules, checked in the world when an action takes
effect. The sequences are split into chunks so that parallel workers share them; a failure
names the seed that replays it (``world_play.play(seed)``) and the last events before it.

``OCTOPLUGOUT_WORLD_SEQUENCES`` and ``OCTOPLUGOUT_WORLD_FIRST_SEED`` choose other sequences
(``scripts/benchmark safety`` runs many more).
"""

from __future__ import annotations

import os

import pytest

from .world_play import play_seeds
from .world_rules import Violation
from .world_run import Tally

SEQUENCES = int(os.environ.get("OCTOPLUGOUT_WORLD_SEQUENCES", "2000"))
FIRST_SEED = int(os.environ.get("OCTOPLUGOUT_WORLD_FIRST_SEED", "0"))
CHUNKS = 8


def played(seeds: range) -> Tally:
    """Play every seed; fail with the seed and the report of the first broken rule."""
    try:
        return play_seeds(seeds)
    except Violation as violation:
        pytest.fail(str(violation), pytrace=False)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_no_world_sees_a_safety_rule_broken(chunk: int) -> None:
    seeds = range(FIRST_SEED + chunk, FIRST_SEED + SEQUENCES, CHUNKS)
    tally = played(seeds)
    # The worlds must have put the rules to work: halts asked for, power cut, races seen.
    assert tally.halts > len(seeds) / 4, tally
    assert tally.cuts - tally.forced_cuts > len(seeds) / 8, tally
    assert tally.forced_cuts > 0, tally
    assert tally.problems > 0, tally
