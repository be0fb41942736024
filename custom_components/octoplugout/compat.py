"""What differs between the Home Assistant versions OctoPlugout supports (2025.4 to today)."""

from __future__ import annotations

# Home Assistant validates with probatio since 2026 (a voluptuous-compatible successor) and
# with voluptuous before; its type hints accept only the library it ships.
try:
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

__all__ = ["vol"]
