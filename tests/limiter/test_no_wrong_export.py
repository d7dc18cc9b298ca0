"""No path to a wrong export: failed or interrupted writes never become the wanted state, writes
are built once they hold the device, stops finish what they began, and damaged files never stop
a restore. Each test replays one way the controller was once left exporting more than wanted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sec1000.limiter.wanted import WANTED_NAME, Wanted, WantedStore
from sec1000.limiter.watchdog import RestoreRecord, RestoreStore
from sec1000.metering.energy import ENERGY_NAME, EnergyMeter
from sec1000.operations import Origin
from sec1000.options import Options, OptionsError, load_options_file
from sec1000.protocol import Command, ControlMode, Feedback, read_export_settings_request
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import GuardState

from tests.helpers.notifications import NoClient
from tests.helpers.waiting import eventually
from tests.helpers.watchdog import reset_in_its_window, short_watchdog

PANEL = Origin("panel", "Anna")
POLICY = Origin("policy")
NEGATIVE = -0.05


def writes(simulator: SimulatorServer) -> list[bytes]:
    """The 0x42 limit writes the controller received."""
    return [r for r in simulator.requests() if r[4] == Command.WRITE_EXPORT_LIMIT]


def deactivate(simulator: SimulatorServer) -> None:
    """Another tool switches every control mode off: the plant exports without limit."""
    for switch in simulator.device.switches:
        simulator.device.switches[switch] = False


async def started(runtime: Runtime) -> Runtime:
    """The runtime with its loops running, once the guard has read the controller."""
    await runtime.start()
    await eventually(lambda: runtime.guard.wanted is not None, what="the guard's first read")
    return runtime


def use(runtime: Runtime, **changes: object) -> None:
    runtime._use(Options.from_mapping(changes, base=runtime.options))


# -- 1. only a write confirmed by read-back becomes the wanted state


async def test_a_write_that_timed_out_never_becomes_the_wanted_state(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.export_disable(POLICY)).ok  # wanted: off, 0 kW
    simulator.set_fault("silence")
    result = await runtime.ops.export_enable(POLICY)
    assert result.feedback == Feedback.TIMEOUT
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 0
    await runtime.guard.flush()
    assert json.loads((runtime.data_dir / WANTED_NAME).read_text())["export_limit_w"] == 0
    simulator.clear_faults()
    before = len(simulator.requests())
    assert await runtime.guard.check()  # the controller answers again
    assert simulator.requests()[before:] == [read_export_settings_request()]  # nothing "restored"
    assert simulator.device.export_limit_w == 0


async def test_a_write_cut_after_its_mode_switches_went_off_is_put_back_at_once(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    """0x42 and the two "off" switches arrive, the last "value on" is lost: the controller is
    deactivated. The guard restores the last confirmed state at once, not at the next check."""
    use(runtime, verify_interval=86400)
    await started(runtime)
    assert (await runtime.ops.set_export_limit(3, PANEL)).ok
    simulator.set_fault("silence", count=1, after=3)
    result = await runtime.ops.set_export_limit(4, PANEL)
    assert result.feedback == Feedback.TIMEOUT
    await eventually(
        lambda: (
            simulator.device.mode is ControlMode.VALUE and simulator.device.export_limit_w == 3_000
        ),
        what="the last confirmed state back",
    )
    await runtime.stop()
    assert runtime.state.guard.state is GuardState.IN_SYNC


async def test_the_guards_restore_that_loses_its_last_packet_is_retried_at_once(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    use(runtime, verify_interval=86400)
    await started(runtime)
    assert (await runtime.ops.set_export_limit(3, PANEL)).ok
    deactivate(simulator)
    simulator.set_fault("silence", count=1, after=4)  # the read, then 0x42 off off [on lost]
    runtime.guard.wake()
    await eventually(lambda: simulator.device.mode is ControlMode.VALUE, what="value on again")
    await eventually(lambda: runtime.state.guard.state is GuardState.IN_SYNC, what="in sync")
    await runtime.stop()


# -- 2. every write is built from the wanted state once it holds the device


async def test_options_saved_while_an_export_off_runs_never_undo_it(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await started(runtime)
    assert (await runtime.ops.export_enable(PANEL)).ok  # 8 kW
    simulator.slow_delay = 0.3
    simulator.set_fault("slow", count=3)
    off = asyncio.create_task(runtime.ops.export_disable(POLICY))
    await eventually(lambda: simulator.active > 0, what="the off write under way")
    await runtime.apply_options(Options.from_mapping({"max_export_limit": 7}, base=runtime.options))
    assert (await off).ok
    await eventually(lambda: not runtime.guard.options_pending(runtime.options), what="settled")
    await asyncio.sleep(0.2)
    await runtime.stop()
    assert simulator.device.export_limit_w == 0
    assert len(writes(simulator)) == 2  # export on, export off: the save wrote nothing


async def test_a_mode_change_queued_behind_export_off_keeps_export_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.export_enable(PANEL)).ok
    simulator.slow_delay = 0.3
    simulator.set_fault("slow", count=3)
    off = asyncio.create_task(runtime.ops.export_disable(POLICY))
    await eventually(lambda: simulator.active > 0, what="the off write under way")
    mode = await runtime.ops.set_control_mode("dred", origin=PANEL)
    assert (await off).ok and mode.ok
    assert simulator.device.export_limit_w == 0 and simulator.device.mode is ControlMode.DRED


# -- 3. the policy compares the controller with its decision


async def policy_on(runtime: Runtime, **options: object) -> None:
    use(
        runtime,
        price_policy=True,
        price_entity="sensor.price",
        export_off_below=0.0,
        export_on_above=0.02,
        scan_interval=1,
        **options,
    )
    await started(runtime)
    runtime.policy.price_changed(NEGATIVE, {})
    await eventually(lambda: simulator_limit(runtime) == 0.0, what="export off at -0.05")


def simulator_limit(runtime: Runtime) -> float | None:
    return runtime.state.export_limit_kw


@pytest.mark.parametrize("action", ["adopt", "notify"])
async def test_another_tool_raising_the_limit_at_a_negative_price_is_switched_off(
    runtime: Runtime, simulator: SimulatorServer, action: str
) -> None:
    await policy_on(runtime, drift_action=action)
    simulator.drift(8_000)  # export on, behind the add-on's back
    runtime.guard.wake()
    await eventually(lambda: simulator.device.export_limit_w == 0, what="export off again")
    await runtime.stop()


async def test_a_policy_write_that_failed_is_made_again_once_the_controller_answers(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    use(runtime, price_policy=True, price_entity="sensor.price", scan_interval=1)
    await started(runtime)  # the controller holds 5 kW: export on
    simulator.set_fault("silence")
    runtime.policy.price_changed(NEGATIVE, {})
    await eventually(lambda: simulator.exchange_count > 3, what="the policy's write tried")
    await asyncio.sleep(1.5)
    simulator.clear_faults()
    await eventually(lambda: simulator.device.export_limit_w == 0, 15, what="export off")
    await runtime.stop()


# -- 4. a stop finishes what it began, then reads back once


async def test_a_stop_during_a_mode_change_lets_it_finish(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await started(runtime)
    simulator.slow_delay = 0.2
    simulator.set_fault("slow", count=6)
    await runtime.apply_options(
        Options.from_mapping({"export_limit_control_mode": "dred"}, base=runtime.options), PANEL
    )
    await eventually(lambda: len(writes(simulator)) == 1, what="the mode change under way")
    await runtime.stop()
    assert simulator.device.mode is ControlMode.DRED


async def test_a_cancelled_command_finishes_its_packets_first(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.slow_delay = 0.2
    simulator.set_fault("slow", count=6)
    task = asyncio.create_task(runtime.ops.set_control_mode("rcr", origin=PANEL))
    await eventually(lambda: len(writes(simulator)) == 1, what="the write under way")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert simulator.device.mode is ControlMode.RCR  # never left between the switches
    assert runtime.link.queued == 0
    assert (await runtime.ops.get_export_limit(PANEL)).ok  # the link is free again


async def test_a_stop_right_after_an_outside_drift_restores_it(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await started(runtime)
    assert (await runtime.ops.set_export_limit(3, PANEL)).ok
    use(runtime, verify_interval=86400)
    deactivate(simulator)  # just before SIGTERM, before any check
    await runtime.stop()
    assert simulator.device.mode is ControlMode.VALUE
    assert simulator.device.export_limit_w == 3_000


# -- 6. options saved during a reset are written right after its restore


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(off_window=0.5)])
async def test_options_saved_during_a_reset_are_written_after_its_restore(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    use(runtime, verify_interval=0)  # no periodic check to catch it later
    await started(runtime)
    assert (await runtime.ops.export_enable(PANEL)).ok  # 8 kW
    task = await reset_in_its_window(runtime, simulator)
    await runtime.apply_options(Options.from_mapping({"max_export_limit": 3}, base=runtime.options))
    assert (await task).ok
    await eventually(lambda: simulator.device.export_limit_w == 3_000, what="the new maximum")
    await runtime.stop()
    assert simulator.device.mode is ControlMode.VALUE


# -- 7. a damaged file never stops the add-on before its restore


def test_energy_json_with_a_byte_that_is_not_utf8_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / ENERGY_NAME).write_bytes(b'{"days": {"\xff": 1}}')
    meter = EnergyMeter(tmp_path, lambda: 30)
    assert meter.broken and "moved" in meter.broken
    assert not (tmp_path / ENERGY_NAME).exists()


@pytest.mark.parametrize(
    "content", [b'{"host": "\xff"}', b"[" * 100_000, b"\x00\x01", b'{"port": 1e999}']
)
def test_an_options_file_with_any_content_is_a_clear_options_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "options.json"
    path.write_bytes(content)
    with pytest.raises(OptionsError) as caught:
        load_options_file(path)
    assert str(tmp_path) in str(caught.value) or "port" in caught.value.errors


@pytest.mark.parametrize(
    "stored",
    [
        {"export_limit_w": 10**15, "mode": "value", "total_capacity_w": 10_000},
        {"export_limit_w": -5, "mode": "value", "total_capacity_w": 10_000},
        {"export_limit_w": 3_000, "mode": "value", "total_capacity_w": 10**12},
        {"export_limit_w": 3_000.5, "mode": "value", "total_capacity_w": 10_000},
    ],
)
def test_an_absurd_wanted_file_is_rejected_never_clamped(
    tmp_path: Path, stored: dict[str, object]
) -> None:
    (tmp_path / WANTED_NAME).write_text(json.dumps({**stored, "three_phase_sum": True}))
    assert WantedStore(tmp_path).load() is None


async def test_a_pending_restore_runs_first_whatever_else_the_data_dir_holds(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(RestoreStore(data).save, RestoreRecord("value", 3_000, True, 0.0))
    (data / ENERGY_NAME).write_bytes(b"\xff\xfe garbage")
    (data / WANTED_NAME).write_bytes(b"\x00" * 64)
    (data / f".{WANTED_NAME}.abc123.sec1000-tmp").write_text("half a file")
    deactivate(simulator)
    runtime = Runtime(make_options(), data)
    await runtime.start()
    await asyncio.wait_for(runtime.ready.wait(), 10)
    await runtime.stop()
    assert simulator.device.mode is ControlMode.VALUE and simulator.device.export_limit_w == 3_000
    assert not list(data.glob("*.sec1000-tmp")) and not list(data.glob(".*.sec1000-tmp"))


# -- 8. the wanted state on a full disk, and after a kill between the write and the save


async def test_a_wanted_state_that_cannot_be_saved_is_said_where_users_look(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    (runtime.data_dir / WANTED_NAME).mkdir(parents=True)  # every save fails, like a full disk
    assert (await runtime.ops.export_disable(PANEL)).ok
    await runtime.guard.flush()
    await asyncio.sleep(0)  # the failure is told on the event loop
    guard = runtime.state.guard
    assert "cannot save the wanted export state" in guard.save_error
    assert "controller's own settings are kept" in guard.save_error
    from sec1000.ha.notifications import UNSAVED_NOTIFICATION, Notifications

    title, message = Notifications(runtime, NoClient()).desired()[UNSAVED_NOTIFICATION]
    assert "not saved" in title and "cannot save the wanted export state" in message


async def test_at_start_the_write_in_flight_at_a_kill_wins_over_an_older_file(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    options = make_options()
    # wanted.json still says "on" (8 kW) with the "off" recorded in flight: the kill came after
    # the verified "off", before its outcome was saved
    wanted = Wanted(8_000, "value", 10_000, True, {}).under(options)
    off = replace(wanted, export_limit_w=0).write()
    await asyncio.to_thread(WantedStore(data).save, wanted, off)
    simulator.device.export_limit_w = 0
    runtime = Runtime(options, data)
    await started(runtime)
    await runtime.stop()
    assert writes(simulator) == []
    assert simulator.device.export_limit_w == 0
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 0
    adopted = [e for e in runtime.audit.tail() if e["command"] == "adopt"]
    assert adopted and "the write in flight when the add-on stopped" in adopted[0]["message"]


async def test_at_start_a_limit_above_the_maximum_is_not_taken_for_the_wanted_one(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    options = make_options()
    wanted = Wanted(3_000, "value", 10_000, True, {}).under(options)
    await asyncio.to_thread(WantedStore(data).save, wanted)
    simulator.drift(9_990)  # above the 8 kW maximum: somebody else's, restored
    runtime = Runtime(options, data)
    await started(runtime)
    await eventually(lambda: simulator.device.export_limit_w == 3_000, what="restored")
    await runtime.stop()
