"""The suite's own rules: a test that is not marked ``rig`` starts no process."""

from __future__ import annotations

import subprocess

import pytest


def test_a_test_off_the_rig_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match="mark it rig"):
        subprocess.run(["true"], check=False)


@pytest.mark.rig
def test_a_test_on_the_rig_can() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
