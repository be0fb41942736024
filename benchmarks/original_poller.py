"""The baseline: the original firmware's polling, modelled against a real OctoPrint or Moonraker.

It follows one print cycle as the original does (``original-behaviour``: a check every 5 s
while watching a job, armed, cooling or halting, every 15 s otherwise; each question its own
request) and notes when it would have seen what. It acts on nothing: the halt request it would
send is noted, not sent, so the same print serves both the baseline and OctoPlugout. Against
Moonraker it asks the same questions the same way, of Klipper's printer objects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import time
from typing import Any

import aiohttp

JOB_FLAGS = frozenset(
    {"printing", "paused", "pausing", "resuming", "finishing", "error", "closedOrError"}
)
# Klipper's print states the original would have counted as a job (its error as well).
KLIPPER_JOB_STATES = frozenset({"printing", "paused", "error"})
FAST_CHECK = 5.0
SLOW_CHECK = 15.0


@dataclass
class OriginalPoller:
    """The original's checks against one OctoPrint, with the same thresholds as OctoPlugout."""

    url: str
    api_key: str
    min_job_time: float
    arm_temperature: float
    cool_temperature: float
    phase: float = 0.0
    state: str = "watching"
    requests: int = 0
    job_started_at: float | None = None
    job_end_seen_at: float | None = None
    cool_seen_at: float | None = None
    log: list[tuple[float, str]] = field(default_factory=list)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Check until the cycle reached the halt request (or the task is cancelled)."""
        await asyncio.sleep(self.phase)
        while self.state != "halting":
            await self.check(session)
            fast = self.state in ("watching", "armed", "cooling")
            await asyncio.sleep(FAST_CHECK if fast else SLOW_CHECK)

    async def _get(self, session: aiohttp.ClientSession, path: str) -> dict[str, Any] | None:
        # Every question the original asks is one GET.
        self.requests += 1
        try:
            async with session.get(
                f"{self.url}{path}",
                headers={"X-Api-Key": self.api_key} if self.api_key else {},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                if response.status != 200:
                    return None
                answer: dict[str, Any] = await response.json()
                return answer
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _printer(self, session: aiohttp.ClientSession) -> dict[str, Any] | None:
        return await self._get(session, "/api/printer")

    def _job_of(self, printer: dict[str, Any]) -> bool:
        flags = printer.get("state", {}).get("flags", {})
        return any(flags.get(name) for name in JOB_FLAGS)

    def _hotend_of(self, printer: dict[str, Any]) -> object:
        return printer.get("temperature", {}).get("tool0", {}).get("actual")

    async def _job_in_progress(self, session: aiohttp.ClientSession) -> bool:
        printer = await self._printer(session)
        if printer is None:
            # The original counts a failed request during a job as "still printing".
            return self.state != "watching"
        return self._job_of(printer)

    async def _hotend(self, session: aiohttp.ClientSession) -> float:
        printer = await self._printer(session)
        actual = self._hotend_of(printer) if printer else None
        return float(actual) if isinstance(actual, int | float) else 999.0

    async def _message(self, session: aiohttp.ClientSession, text: str) -> None:
        await self._post(session, "/api/printer/command", {"commands": [f"M117 {text}"]})

    async def _post(self, session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> None:
        self.requests += 1
        try:
            async with session.post(
                f"{self.url}{path}",
                json=body,
                headers={"X-Api-Key": self.api_key} if self.api_key else {},
                timeout=aiohttp.ClientTimeout(total=5),
            ):
                pass
        except (aiohttp.ClientError, TimeoutError):
            return

    async def check(self, session: aiohttp.ClientSession) -> None:
        """One check of the original, in the state it is in."""
        now = time.time()
        if await self._printer(session) is None and self.state == "watching":
            return
        job = await self._job_in_progress(session)
        if self.state == "watching" and job:
            self._go("print_started", now)
            self.job_started_at = now
        elif self.state == "print_started":
            if not job:
                self._go("watching", now)
            elif (
                self.job_started_at is not None
                and now - self.job_started_at >= self.min_job_time
                and await self._hotend(session) >= self.arm_temperature
            ):
                self._go("armed", now)
        elif self.state == "armed" and not job:
            self.job_end_seen_at = now
            self._go("cooling", now)
        elif self.state == "cooling" and not job:
            hotend = await self._hotend(session)
            await self._message(session, f"Shutdown at T={self.cool_temperature:.1f} C")
            if hotend < self.cool_temperature:
                self.cool_seen_at = now
                self._go("halting", now)

    def _go(self, state: str, now: float) -> None:
        self.state = state
        self.log.append((now, state))


class MoonrakerOriginalPoller(OriginalPoller):
    """The original's checks, asked of Moonraker: one printer-objects query per question."""

    async def _printer(self, session: aiohttp.ClientSession) -> dict[str, Any] | None:
        answer = await self._get(
            session, "/printer/objects/query?print_stats=state&extruder=temperature"
        )
        status = (answer or {}).get("result", {}).get("status")
        return status if isinstance(status, dict) else None

    def _job_of(self, printer: dict[str, Any]) -> bool:
        return printer.get("print_stats", {}).get("state") in KLIPPER_JOB_STATES

    def _hotend_of(self, printer: dict[str, Any]) -> object:
        return printer.get("extruder", {}).get("temperature")

    async def _message(self, session: aiohttp.ClientSession, text: str) -> None:
        await self._post(session, "/printer/gcode/script", {"script": f"M117 {text}"})
