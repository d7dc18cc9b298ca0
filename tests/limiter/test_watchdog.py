"""The guarded reset export watchdog: the limiter is never left off."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore, WatchdogTimings
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.protocol import (
    Command,
    ControlMode,
    Feedback,
    PhaseMeasurement,
    Switch,
    mode_switch_request,
    read_export_settings_request,
    write_export_limit_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually
from tests.helpers.watchdog import reset_in_its_window, short_watchdog

PANEL = Origin("panel", "test")


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    return short_watchdog(off_window=0.2, restore_budget=1.5)


def record_path(runtime: Runtime) -> Path:
    return runtime.data_dir / RECORD_NAME


async def test_reset_runs_the_documented_sequence_and_confirms(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.state.settings_read(export_limit_kw=5.0)
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.OK, result.message
    # The inactive modes off first, the active one last; back on first; then the limit again.
    off = [
        mode_switch_request(cmd, Switch.OFF)
        for cmd in (Command.MODE_DRED, Command.MODE_RCR, Command.MODE_VALUE)
    ]
    switches = [
        mode_switch_request(Command.MODE_DRED, Switch.OFF),
        mode_switch_request(Command.MODE_RCR, Switch.OFF),
        mode_switch_request(Command.MODE_VALUE, Switch.ON),
    ]
    assert simulator.requests() == [
        *off,
        mode_switch_request(Command.MODE_VALUE, Switch.ON),
        write_export_limit_request(10_000, 5_000, PhaseMeasurement.SUM_OF_PHASES),
        *switches,
        read_export_settings_request(),
    ]
    assert simulator.device.mode is ControlMode.VALUE
    assert not record_path(runtime).exists()
    assert not runtime.state.restore_pending


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(off_window=0.5)])
async def test_reset_waits_the_off_window(runtime: Runtime, simulator: SimulatorServer) -> None:
    runtime.state.settings_read(export_limit_kw=5.0)
    await runtime.ops.reset_export_watchdog(PANEL)
    third_off, first_restore = simulator.exchanges[2], simulator.exchanges[3]
    assert first_restore.request_at is not None and third_off.answered_at is not None
    assert first_restore.request_at - third_off.answered_at >= 0.5


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(off_window=0.5)])
async def test_record_is_on_disk_while_the_limiter_is_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    saved = json.loads(record_path(runtime).read_text())
    assert saved["mode"] == "value" and saved["export_limit_w"] == 5_000
    assert runtime.state.restore_pending and runtime.state.watchdog_running
    assert (await task).feedback == Feedback.OK


async def test_second_reset_while_one_runs_is_refused(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.state.settings_read(export_limit_kw=5.0)
    first = asyncio.create_task(runtime.ops.reset_export_watchdog(PANEL))
    await asyncio.sleep(0.05)
    second = await runtime.ops.reset_export_watchdog(PANEL)
    assert second.feedback == Feedback.GENERAL_ERROR
    assert "already running" in second.message
    assert (await first).feedback == Feedback.OK


async def test_reset_is_refused_when_the_last_exchange_failed(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("reset", count=1)
    await runtime.ops.get_export_limit(PANEL)
    before = len(simulator.requests())
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.GENERAL_ERROR
    assert "last exchange with the device failed" in result.message
    assert len(simulator.requests()) == before
    assert simulator.device.mode is ControlMode.VALUE


async def test_failed_restore_step_is_retried_until_confirmed(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    simulator.set_fault("reset", count=3)  # the first restore attempts hit a flapping device
    result = await task
    assert result.feedback == Feedback.OK, result.message
    assert simulator.device.mode is ControlMode.VALUE
    assert simulator.device.export_limit_w == 5_000
    assert not record_path(runtime).exists()


async def test_unconfirmed_restore_answers_and_keeps_retrying(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    simulator.set_fault("reset")
    result = await task
    assert result.feedback == Feedback.SOCKET_ERROR
    assert "retried in the background" in result.message
    assert record_path(runtime).exists()
    assert runtime.state.restore_pending and runtime.state.restore_error
    blocked = await runtime.ops.export_enable(PANEL)
    assert (
        blocked.feedback == Feedback.GENERAL_ERROR and "restore is still pending" in blocked.message
    )
    simulator.clear_faults()
    await eventually(lambda: not runtime.state.restore_pending, what="restore confirmed")
    assert simulator.device.mode is ControlMode.VALUE
    assert not record_path(runtime).exists()


async def test_read_back_mismatch_is_not_a_confirmation(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    simulator.set_fault("nak")  # the device refuses the restore writes: the limiter stays off
    result = await task
    assert result.feedback == Feedback.GENERAL_ERROR
    assert "read-back" in result.message
    assert runtime.state.restore_pending
    simulator.clear_faults()
    await runtime.watchdog.shutdown(grace=5)
    assert simulator.device.mode is ControlMode.VALUE


async def test_pending_restore_is_finished_first_at_start(
    simulator: SimulatorServer, make_options: type[Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    record = RestoreRecord("value", 3_000, True, time.time())
    await asyncio.to_thread(RestoreStore(data).save, record)
    for switch in simulator.device.switches:
        simulator.device.switches[switch] = False
    runtime = Runtime(make_options(), data)  # type: ignore[operator]
    await runtime.start()
    await asyncio.wait_for(runtime.ready.wait(), 5)
    await runtime.stop()
    requests = simulator.requests()
    # the restore comes before any read: the active mode back on first
    assert requests[0] == mode_switch_request(Command.MODE_VALUE, Switch.ON)
    assert simulator.device.mode is ControlMode.VALUE
    assert simulator.device.export_limit_w == 3_000
    assert not (data / RECORD_NAME).exists()


def test_damaged_record_still_means_pending(tmp_path: Path) -> None:
    (tmp_path / RECORD_NAME).write_text("{not json")
    record = RestoreStore(tmp_path).load()
    assert record is not None and record.export_limit_w == -1


def _cli(simulator: SimulatorServer, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sec1000",
        "reset-watchdog",
        "--host",
        "127.0.0.1",
        "--port",
        str(simulator.port),
        "--data-dir",
        str(data_dir),
        "--gap-ms",
        "20",
        "--timeout",
        "2",
    ]


async def _start_cli_and_wait_for_window(
    simulator: SimulatorServer, data_dir: Path
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *_cli(simulator, data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SEC1000_OPTIONS": str(data_dir / "none.json")},
    )
    await eventually(lambda: simulator.device.mode is ControlMode.DEACTIVATED, what="limiter off")
    return process


async def test_sigterm_in_the_window_restores_the_limiter(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    process = await _start_cli_and_wait_for_window(simulator, tmp_path)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, stderr.decode()
    assert time.monotonic() - started < 4  # it did not sit out the 5 s window
    assert simulator.device.mode is ControlMode.VALUE
    assert not (tmp_path / RECORD_NAME).exists()


async def test_sigkill_in_the_window_is_restored_at_the_next_start(
    simulator: SimulatorServer, make_options: type[Options], tmp_path: Path
) -> None:
    process = await _start_cli_and_wait_for_window(simulator, tmp_path)
    process.kill()
    await process.wait()
    assert simulator.device.mode is ControlMode.DEACTIVATED
    assert (tmp_path / RECORD_NAME).exists()
    runtime = Runtime(make_options(), tmp_path)  # type: ignore[operator]
    await runtime.start()
    await asyncio.wait_for(runtime.ready.wait(), 10)
    await runtime.stop()
    assert simulator.device.mode is ControlMode.VALUE
    assert not (tmp_path / RECORD_NAME).exists()
