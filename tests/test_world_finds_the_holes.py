"""The world-model test is worth its time: with any one safety fix taken back, it fails.

Each mutant (``tests/mutants.py``) puts back a hole the machine once had. The same worlds as
``test_world_safety.py``, from the first seed on, must break a rule within the budget; a mutant
that survives means the world model stopped seeing that kind of hole.
"""

from __future__ import annotations

import pytest

from . import mutants
from .world_play import play
from .world_rules import Violation

BUDGET = 3000


@pytest.mark.parametrize("name", list(mutants.MUTANTS))
def test_each_hole_is_found_when_its_fix_is_taken_back(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutants.apply(name, monkeypatch)
    for seed in range(BUDGET):
        try:
            play(seed)
        except Violation:
            return
    pytest.fail(f"{name}: no rule broken in {BUDGET} worlds")
