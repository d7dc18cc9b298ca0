"""Shared fixtures: a simulated SEC1000 on a real loopback socket, and a core wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx
from hypothesis import HealthCheck, settings
from sec1000.device.link import DeviceLink, Priority
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.operations import Operations
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

pytest_plugins = ["tests.ha_harness", "tests.mqtt_broker"]

# The timeout catches a test that hangs; it measures nothing. Every test has 120 s (pytest.ini):
# the suite's workers share two cores with whatever else runs, so a test of a few seconds may
# take many times that. One that starts a real Home Assistant Core or drives Chromium, or a
# property test (its examples are CPU work a loaded machine stretches), has its own, longer
# timeout unless it sets one itself.
SLOW_KINDS = {"homeassistant": 600, "browser": 300}
PROPERTY_TEST_TIMEOUT = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the real-Core, browser and property tests their own timeout."""
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        for kind, seconds in SLOW_KINDS.items():
            if item.get_closest_marker(kind) is not None:
                item.add_marker(pytest.mark.timeout(seconds))
                break
        else:
            if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
                item.add_marker(pytest.mark.timeout(PROPERTY_TEST_TIMEOUT))


# The machine is small and shared: generation speed is not what these tests check.
settings.register_profile("sec1000", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sec1000")

# Short gaps and timeouts keep the suite fast; the gap logic is the same at any size.
TEST_GAP_MS = 20
TEST_TIMEOUT_S = 1


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    """A simulated controller listening on a free loopback port."""
    server = SimulatorServer(slow_delay=1.5)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def make_options(simulator: SimulatorServer) -> Callable[..., Options]:
    """Options pointing at the simulator, with test-sized gap and timeout."""

    def make(**overrides: object) -> Options:
        base = {
            "host": "127.0.0.1",
            "port": simulator.port,
            "request_gap_ms": TEST_GAP_MS,
            "request_timeout": TEST_TIMEOUT_S,
            "total_capacity": 10.0,
            "min_export_limit": 0.0,
            "max_export_limit": 8.0,
        }
        return Options.from_mapping({**base, **overrides})

    return make


# Hosts the old check let through but the address lookup rejects (UnicodeError, ValueError).
LOOKUP_BREAKERS = ("192.168.1..200", "a" * 64 + ".lan", "host\x00name")


# The watchdog's real 5 s window and 1 s settle, shortened: the sequence is the same.
SHORT_WATCHDOG = WatchdogTimings(off_window=0.3, settle=0.05, backoff_first=0.05)


def short_watchdog(off_window: float = 0.3, **changes: float) -> WatchdogTimings:
    """Shortened windows for a test (the sequence is the one of the real 5 s window)."""
    return replace(SHORT_WATCHDOG, off_window=off_window, **changes)


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    """The watchdog's timings for the `runtime` fixture: the real ones, unless a module or a
    test overrides this fixture (or parametrizes it)."""
    return WatchdogTimings()


@pytest.fixture
def runtime(
    make_options: Callable[..., Options], tmp_path: Path, watchdog_timings: WatchdogTimings
) -> Runtime:
    """The core (state, link, operations, watchdog) on the simulator; the timer is not started."""
    return Runtime(make_options(), tmp_path / "data", watchdog_timings=watchdog_timings)


@pytest.fixture
def ops(runtime: Runtime) -> Operations:
    """The operations of the `runtime` fixture."""
    return runtime.ops


@pytest.fixture
def link(runtime: Runtime) -> DeviceLink:
    """The device link of the `runtime` fixture."""
    return runtime.link


# One pass of a runtime's timer: the scan interval, then its reads (the settings read at the
# start, the telemetry read and its retry on a short answer), each after the gap and at most the
# link's timeout.
EXCHANGES_PER_PASS = 3


def passes_within(runtime: Runtime, passes: int) -> float:
    """How long `passes` passes of the runtime's timer may take at most (seconds)."""
    settings = runtime.link.settings
    exchange = settings.gap + settings.timeout
    return passes * (runtime.options.scan_interval + EXCHANGES_PER_PASS * exchange)


async def eventually(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    """Wait until `predicate()` is true, polling; fail the test after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def eventually_async(
    check: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "condition"
) -> None:
    """Wait until `await check()` is true (a question to a server), polling; fail after
    `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.1)


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


async def reset_in_its_window(runtime: Runtime, simulator: SimulatorServer) -> Any:
    """Start a reset (known limit 5 kW) and return its task once every mode switch is off."""
    from sec1000.operations import Origin
    from sec1000.protocol import ControlMode

    runtime.state.settings_read(export_limit_kw=5.0)
    task = asyncio.create_task(runtime.ops.reset_export_watchdog(Origin("panel", "test")))
    await eventually(lambda: simulator.device.mode is ControlMode.DEACTIVATED, what="limiter off")
    return task


@pytest.fixture(autouse=True)
def blocking_io_fails() -> Iterator[None]:
    """A blocking call (file, socket, sleep) made by the add-on's code inside the event loop
    fails the test (as the Supervisor's tests do)."""
    with blockbuster_ctx(
        scanned_modules=["sec1000"], excluded_modules=["sec1000.simulator"]
    ) as blockbuster:
        for function in blockbuster.functions.values():
            for filename, functions in MAY_BLOCK:
                function.can_block_in(filename, functions)
        yield


# What may block, and why: writing a log line (the add-on logs through a queue, see
# sec1000.cli); starting: the options, the core (every controller's)'s files, the panel and the sign-in are read once
# before anything is served.
MAY_BLOCK = (
    ("logging/__init__.py", {"emit", "flush"}),
    ("sec1000/serve.py", {"build"}),
    ("sec1000/plant.py", {"__init__"}),
    ("sec1000/runtime.py", {"__init__"}),
    ("sec1000/energy.py", {"__init__"}),
    ("sec1000/web/app.py", {"create_app"}),
    ("sec1000/web/auth.py", {"setup_auth"}),
)
