"""The tests' link to the simulated device: its test-sized gap and timeout, how long the
runtime's timer may take, and ways to hold or retune the link."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sec1000.device.link import DeviceLink, Priority
from sec1000.runtime import Runtime

# Short gaps and timeouts keep the suite fast; the gap logic is the same at any size.
TEST_GAP_MS = 20
TEST_TIMEOUT_S = 1

# Hosts the old check let through but the address lookup rejects (UnicodeError, ValueError).
LOOKUP_BREAKERS = ("192.168.1..200", "a" * 64 + ".lan", "host\x00name")

# One pass of a runtime's timer: the scan interval, then its reads (the settings read at the
# start, the telemetry read and its retry on a short answer), each after the gap and at most the
# link's timeout.
EXCHANGES_PER_PASS = 3


def passes_within(runtime: Runtime, passes: int) -> float:
    """How long `passes` passes of the runtime's timer may take at most (seconds)."""
    settings = runtime.link.settings
    exchange = settings.gap + settings.timeout
    return passes * (runtime.options.scan_interval + EXCHANGES_PER_PASS * exchange)


async def hold(link: DeviceLink, job: Any, priority: Priority = Priority.USER) -> Any:
    """Run `job` inside one session of the link, as an operation does."""
    async with link.session(priority) as session:
        return await job(session)


class Blocker:
    """A job for `hold` that keeps the link's session until `release()` is called."""

    def __init__(self) -> None:
        self._released = asyncio.Event()

    async def __call__(self, session: object) -> None:
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


def retune(link: DeviceLink, **changes: Any) -> None:
    """Change some of the link's settings (gap, timeout)."""
    link.configure(replace(link.settings, **changes))
