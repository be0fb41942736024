"""The MQTT root topic: its default and what makes one valid (no MQTT import needed)."""

from __future__ import annotations

from typing import Final

from homeassistant.util import slugify

ROOT_PREFIX: Final = "octoplugout"
# MQTT allows 65,535 bytes; a root this long is a mistake, not a topic.
ROOT_MAX_BYTES: Final = 200


def default_root(title: str) -> str:
    """The root topic when the user sets none: ``octoplugout/<device name>``."""
    return f"{ROOT_PREFIX}/{slugify(title)}"


def root_topic_error(root: str) -> str | None:
    """The options form's error key when ``root`` cannot be a root topic, else None."""
    if not root or root != root.strip() or root.startswith("/") or root.endswith("/"):
        return "invalid_topic"
    if any(char in root for char in "+#\0") or len(root.encode()) > ROOT_MAX_BYTES:
        return "invalid_topic"
    return None
