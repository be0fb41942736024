"""Where the project and its virtual environments are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def venvs() -> Path:
    """The folder ``scripts/setup`` made the virtual environments in."""
    return Path(os.environ.get("OCTOPLUGOUT_VENVS", ROOT / ".venvs")).absolute()
