"""The runtime: options apply at once, broken options never reach the device, the timer reads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sec1000.operations import CommandResult
from sec1000.options import InvalidOptions, Options, OptionsError, load_options_file
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer

from tests.helpers.device import passes_within
from tests.helpers.waiting import eventually


@pytest.fixture
def root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


async def test_apply_options_saves_and_applies_at_once(
    make_options: Callable[..., Options], tmp_path: Path, root_level: None
) -> None:
    path = tmp_path / "options.json"
    runtime = Runtime(make_options(), tmp_path, save_options=file_saver(path))
    new = Options.from_mapping(
        {"request_gap_ms": 250, "min_export_limit": 2, "log_level": "debug"}, base=runtime.options
    )
    await runtime.apply_options(new)
    assert await asyncio.to_thread(load_options_file, path) == new
    assert runtime.link.gap == 0.25
    assert runtime.state.min_export_limit_kw == 2
    assert logging.getLogger().level == logging.DEBUG


async def test_a_failing_save_changes_nothing(
    make_options: Callable[..., Options], tmp_path: Path
) -> None:
    async def refuse(options: Options) -> None:
        raise OSError("read-only file system")

    runtime = Runtime(make_options(), tmp_path, save_options=refuse)
    before = runtime.options
    with pytest.raises(OSError, match="read-only"):
        await runtime.apply_options(Options.from_mapping({"request_gap_ms": 5}, base=before))
    assert runtime.options == before and runtime.link.gap == before.request_gap_ms / 1000


async def test_broken_options_never_reach_the_device(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    error = OptionsError({"port": "must be at most 65535"})
    runtime = Runtime(make_options(scan_interval=1), tmp_path, invalid=InvalidOptions(error, {}))
    await runtime.start()
    await eventually(lambda: runtime.ticks >= 2, passes_within(runtime, 2), "two timer passes")
    await runtime.stop()
    assert simulator.requests() == []


async def test_the_timer_reads_settings_then_telemetry(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    runtime = Runtime(make_options(scan_interval=1), tmp_path)
    await runtime.start()
    await eventually(
        lambda: len(runtime.state.history) >= 2, passes_within(runtime, 2), "two telemetry reads"
    )
    await runtime.stop()
    commands = [request[4] for request in simulator.requests()]
    # the guard's first read, telemetry on the timer, and the last read-back at the stop
    assert commands[0] == 0x43 and set(commands[1:-1]) == {0x0B} and commands[-1] == 0x43
    assert runtime.state.export_limit_kw == 5.0


async def test_two_option_changes_at_the_same_moment_keep_both(
    make_options: Callable[..., Options], tmp_path: Path
) -> None:
    path = tmp_path / "options.json"
    saver = file_saver(path)

    async def slow_save(options: Options) -> None:
        await asyncio.sleep(0.05)  # the Supervisor takes its time
        await saver(options)

    runtime = Runtime(make_options(), tmp_path, save_options=slow_save)
    await asyncio.gather(
        runtime.update_options({"export_limit_control_mode": "dred"}),
        runtime.update_options({"price_entity": "sensor.price", "price_policy": True}),
    )
    for options in (runtime.options, await asyncio.to_thread(load_options_file, path)):
        assert options.export_limit_control_mode == "dred" and options.price_policy


# -- background work survives anything


async def test_the_poll_loop_survives_any_exception(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = runtime.ops.get_telemetry_data

    async def flaky(*args: object, **kwargs: object) -> CommandResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug nobody expected")
        return await original()

    monkeypatch.setattr(runtime.ops, "get_telemetry_data", flaky)
    monkeypatch.setattr("sec1000.runtime.LOOP_ERROR_PAUSE", 0.01)
    runtime.options = Options.from_mapping({"scan_interval": 1}, base=runtime.options)
    await runtime.start()
    runtime._wake.set()
    await eventually(lambda: runtime.state.telemetry is not None, what="a read after the bug")
    await runtime.stop()
    assert calls >= 2


async def test_a_guard_check_that_fails_is_no_failed_telemetry_read(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the telemetry step counts as a read: three guard bugs must not make the values
    unavailable; three failed telemetry steps do."""
    monkeypatch.setattr("sec1000.runtime.LOOP_ERROR_PAUSE", 0)
    await runtime.ops.get_telemetry_data()

    async def bug() -> None:
        raise RuntimeError("a bug nobody expected")

    for _ in range(3):
        await runtime._guarded(bug(), "checking the export settings")
    assert runtime.state.telemetry_available and runtime.state.telemetry_failures == 0
    for _ in range(3):
        await runtime._guarded(bug(), "reading telemetry", telemetry=True)
    assert not runtime.state.telemetry_available
