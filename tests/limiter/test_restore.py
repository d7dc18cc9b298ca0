"""The watchdog's restore under what a hostile network or controller does: it goes back to the
controller it switched off, an absurd limit never wedges it, writes asked for meanwhile wait for
it, and a stop or a full queue never leaves the limiter off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sec1000.device.link import BusyError, LinkSettings, Priority
from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore, WatchdogTimings
from sec1000.operations import Origin
from sec1000.options import Options, OptionsError
from sec1000.protocol import Command, ControlMode, Feedback, InvalidInputError
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.device import Blocker, hold
from tests.helpers.watchdog import reset_in_its_window, short_watchdog

PANEL = Origin("panel", "test")


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    return short_watchdog(restore_budget=1.5)


async def test_the_restore_goes_to_the_controller_it_switched_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    record = await asyncio.to_thread(RestoreStore(runtime.data_dir).load)
    assert record is not None and record.target == ("127.0.0.1", simulator.port)
    # The options change underneath (as if saved while the limiter is off): the restore does not
    # follow them; it goes back to the controller that was switched off.
    runtime._use(Options.from_mapping({"port": 1}, base=runtime.options))
    result = await task
    assert result.feedback == Feedback.OK, result.message
    assert simulator.device.mode is ControlMode.VALUE


async def test_connection_changes_are_refused_while_a_restore_is_pending(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    with pytest.raises(OptionsError) as caught:
        await runtime.apply_options(Options.from_mapping({"port": 1}, base=runtime.options))
    assert "restore" in caught.value.errors["port"]
    assert runtime.options.port == simulator.port
    await runtime.apply_options(Options.from_mapping({"scan_interval": 60}, base=runtime.options))
    assert (await task).feedback == Feedback.OK
    await runtime.apply_options(Options.from_mapping({"port": 1}, base=runtime.options))
    assert runtime.options.port == 1


async def test_a_reset_is_refused_after_lookup_failures(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.link.configure(LinkSettings("a" * 64 + ".lan", 1234, 0, 1))
    poll = await runtime.ops.get_telemetry_data()
    assert poll.feedback == Feedback.SOCKET_ERROR
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.GENERAL_ERROR
    assert "last exchange with the device failed" in result.message
    assert simulator.requests() == []


# -- an absurd limit never wedges the restore


async def test_an_absurd_limit_read_back_restores_the_options_maximum(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.export_limit_w = 2**31 - 1
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.OK, result.message
    assert simulator.device.export_limit_w == 8_000  # max 8 kW, capacity 10 kW
    assert simulator.device.mode is ControlMode.VALUE


async def test_a_recorded_absurd_limit_is_restored_as_the_maximum_at_start(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(RestoreStore(data).save, RestoreRecord("value", 2**31 - 1, True, 0.0))
    runtime = Runtime(make_options(max_export_limit=9.5, total_capacity=10.5), data)
    assert await runtime.watchdog.resume_pending()
    assert simulator.device.export_limit_w == 9_500  # the options' maximum
    assert not (data / RECORD_NAME).exists()


async def test_a_record_that_can_never_be_written_is_retired_with_a_message(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def impossible(record: RestoreRecord) -> object:
        raise InvalidInputError("export limit must be a whole number of watts")

    record = RestoreRecord("value", 3_000, True, 0.0)
    await asyncio.to_thread(RestoreStore(runtime.data_dir).save, record)
    await asyncio.to_thread(runtime.restore_store.load)  # as a start would find it
    monkeypatch.setattr(runtime.watchdog, "_restore_write", impossible)
    assert await runtime.watchdog.resume_pending()
    assert not runtime.state.restore_pending
    assert runtime.state.restore_retired and "retired" in runtime.state.restore_retired
    assert not (runtime.data_dir / RECORD_NAME).exists()


# -- export commands wait for the restore, and the newest is what it writes


async def test_writes_asked_for_in_the_window_wait_and_the_newest_is_the_restore(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    older = asyncio.create_task(runtime.ops.export_disable(PANEL))
    newest = asyncio.create_task(runtime.ops.set_export_limit(3, Origin("policy")))
    await asyncio.sleep(0.05)
    assert not older.done() and not newest.done()  # they wait for the restore, not refused
    assert (await task).ok
    result = await newest
    assert result.ok and "3.00 kW" in result.message
    replaced = await older
    assert replaced.feedback == Feedback.GENERAL_ERROR and "replaced it" in replaced.message
    assert simulator.device.export_limit_w == 3_000
    assert simulator.device.mode is ControlMode.VALUE
    limit_writes = [r for r in simulator.requests() if r[4] == Command.WRITE_EXPORT_LIMIT]
    assert len(limit_writes) == 1  # the restore wrote the new limit: no second write after it
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 3_000


# -- a stop, a second reset, the guard and a full queue


async def test_a_reset_asked_for_during_a_stop_turns_nothing_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    busy = Blocker()

    holder = asyncio.create_task(hold(runtime.link, busy))  # the reset has to wait its turn
    await asyncio.sleep(0)
    runtime.state.settings_read(export_limit_kw=5.0)
    reset = asyncio.create_task(runtime.ops.reset_export_watchdog(PANEL))
    await asyncio.sleep(0.05)
    await runtime.watchdog.shutdown(grace=1)  # SIGTERM while the reset is queued
    busy.release()
    await holder
    result = await reset
    assert result.feedback == Feedback.GENERAL_ERROR and "stopping" in result.message
    assert simulator.requests() == [] and simulator.device.mode is ControlMode.VALUE
    refused = await runtime.ops.reset_export_watchdog(PANEL)
    assert "stopping" in refused.message


async def test_a_stop_in_the_window_of_a_second_reset_still_restores(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await (await reset_in_its_window(runtime, simulator))).ok
    second = await reset_in_its_window(runtime, simulator)
    await runtime.watchdog.shutdown(grace=5)
    assert simulator.device.mode is ControlMode.VALUE  # back on before shutdown() returned
    await second


async def test_the_guard_does_not_take_a_pending_restore_for_a_drift(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime._use(Options.from_mapping({"drift_action": "adopt"}, base=runtime.options))
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    task = await reset_in_its_window(runtime, simulator)
    await runtime.guard.check()  # reads mode deactivated: the watchdog's doing, no drift
    assert runtime.options.export_limit_control_mode == "value"
    assert (await task).ok
    assert simulator.device.mode is ControlMode.VALUE


async def test_a_restore_is_never_refused_as_busy(runtime: Runtime) -> None:
    link = runtime.link
    link.max_queued = 1
    busy = Blocker()

    running = [asyncio.create_task(hold(link, busy)) for _ in range(2)]  # 1 holds, 1 queued
    await asyncio.sleep(0.01)
    with pytest.raises(BusyError):
        await hold(link, busy)  # a user command: the queue is full
    restore = asyncio.create_task(hold(link, busy, Priority.RESTORE))
    await asyncio.sleep(0.01)
    assert link.queued == 2  # the restore waits its (first) turn
    busy.release()
    await asyncio.gather(*running, restore)
