"""Shared fixtures: a simulated SEC1000 on a real loopback socket, and a core wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx
from hypothesis import HealthCheck, settings
from sec1000.device.link import DeviceLink
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.operations import Operations
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.device import TEST_GAP_MS, TEST_TIMEOUT_S

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
    ("sec1000/plant/core.py", {"__init__"}),
    ("sec1000/runtime.py", {"__init__"}),
    ("sec1000/metering/energy.py", {"__init__"}),
    ("sec1000/web/app.py", {"create_app"}),
    ("sec1000/web/auth.py", {"setup_auth"}),
)
