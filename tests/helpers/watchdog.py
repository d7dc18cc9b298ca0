"""The export watchdog in tests: its windows shortened, and a reset caught in its off window."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.operations import Origin
from sec1000.protocol import ControlMode
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually

# The watchdog's real 5 s window and 1 s settle, shortened: the sequence is the same.
SHORT_WATCHDOG = WatchdogTimings(off_window=0.3, settle=0.05, backoff_first=0.05)


def short_watchdog(off_window: float = 0.3, **changes: float) -> WatchdogTimings:
    """Shortened windows for a test (the sequence is the one of the real 5 s window)."""
    return replace(SHORT_WATCHDOG, off_window=off_window, **changes)


async def reset_in_its_window(runtime: Runtime, simulator: SimulatorServer) -> Any:
    """Start a reset (known limit 5 kW) and return its task once every mode switch is off."""
    runtime.state.settings_read(export_limit_kw=5.0)
    task = asyncio.create_task(runtime.ops.reset_export_watchdog(Origin("panel", "test")))
    await eventually(lambda: simulator.device.mode is ControlMode.DEACTIVATED, what="limiter off")
    return task
