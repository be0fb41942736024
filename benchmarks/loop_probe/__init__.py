"""Measures how late Home Assistant's event loop runs a callback: its stalls, for benchmarks.

A callback asks to run every ``INTERVAL`` seconds; how much later than asked it runs is time
the loop spent on something else without a break. Late runs are published as the state of
``sensor.loop_probe`` (the worst one) with every late run in its attributes, for the benchmark
to read over the REST API.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import shutil
import time

from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType

DOMAIN = "loop_probe"
ENTITY_ID = "sensor.loop_probe"
INTERVAL = 0.01
# Lateness below this is the loop's normal jitter, not a stall worth keeping.
KEEP_OVER = 0.02
KEEP_AT_MOST = 500
PUBLISH_EVERY = 5.0
# Written only where a benchmark installs the probe: the project's one integration manifest is
# OctoPlugout's, so that validators of Home Assistant and HACS see one integration.
MANIFEST = {
    "domain": DOMAIN,
    "name": "Event loop probe (benchmarks only)",
    "codeowners": [],
    "documentation": "https://github.com/octoplugout/octoplugout-ha",
    "iot_class": "calculated",
    "requirements": [],
    "version": "1.0.0",
}


def install(custom_components: Path) -> Path:
    """Copy the probe into a folder of custom integrations, with its manifest; its folder."""
    folder = custom_components / DOMAIN
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(__file__, folder / "__init__.py")
    (folder / "manifest.json").write_text(json.dumps(MANIFEST, indent=2) + "\n")
    return folder


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start probing at once; it runs until Home Assistant stops."""
    loop = asyncio.get_running_loop()
    late: list[tuple[float, float]] = []
    last_publish = loop.time()

    def publish() -> None:
        worst = max((lag for _, lag in late), default=0.0)
        hass.states.async_set(
            ENTITY_ID,
            f"{worst * 1000:.1f}",
            {"unit_of_measurement": "ms", "late": [[at, round(lag, 4)] for at, lag in late]},
        )

    def tick(asked_at: float) -> None:
        nonlocal last_publish
        now = loop.time()
        lag = now - asked_at
        if lag > KEEP_OVER and len(late) < KEEP_AT_MOST:
            late.append((time.time(), lag))
        if now - last_publish >= PUBLISH_EVERY:
            last_publish = now
            publish()
        loop.call_at(now + INTERVAL, tick, now + INTERVAL)

    publish()
    loop.call_at(loop.time() + INTERVAL, tick, loop.time() + INTERVAL)
    return True
