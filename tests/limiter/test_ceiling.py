"""The export ceiling is a hard limit on the controller, whatever changed it; a start compares
the controller with wanted.json; a stop ends an overshoot's account and never hangs. Each test
replays one of issue #29's scenarios against the simulator over real sockets."""

from __future__ import annotations

import asyncio
import errno
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from sec1000.limiter import wanted as wanted_module
from sec1000.limiter.audit import kind_of
from sec1000.limiter.watchdog import RestoreRecord, RestoreStore
from sec1000.metering.energy import ENERGY_NAME
from sec1000.operations import Origin
from sec1000.options import Options, OptionsError
from sec1000.protocol import Command, ControlMode, Feedback
from sec1000.runtime import STOP_BUDGET, Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import GuardState

from tests.helpers.waiting import eventually

PANEL = Origin("panel", "Anna")
CEILING = {"export_ceiling_kw": 3.0, "max_export_limit": 3.0}
SCAN = 1  # scan_interval of these tests (s)
# One verified write (0x42, three switches, 0x43) and a read at the tests' 20 ms gap, with room
# for a busy machine: the budget of "put back" after the read that sees it.
ONE_WRITE = 4.0
SUN = (9_000.0, 500.0)  # PV and load W: the limiter curtails, export follows the limit


def limits_written(simulator: SimulatorServer) -> list[int]:
    """The export limit of every 0x42 write the controller received."""
    return [
        struct.unpack(">i", request[9:13])[0]
        for request in simulator.requests()
        if request[4] == Command.WRITE_EXPORT_LIMIT
    ]


def set_mode(simulator: SimulatorServer, mode: ControlMode) -> None:
    """Another tool switches the control mode (all switches off for deactivated)."""
    for command in simulator.device.switches:
        simulator.device.switches[command] = False
    switch = {
        ControlMode.VALUE: Command.MODE_VALUE,
        ControlMode.DRED: Command.MODE_DRED,
        ControlMode.RCR: Command.MODE_RCR,
    }.get(mode)
    if switch is not None:
        simulator.device.switches[switch] = True


def reads(simulator: SimulatorServer) -> int:
    """The 0x43 reads the controller answered so far."""
    return sum(1 for r in simulator.requests() if r[4] == Command.READ_EXPORT_SETTINGS)


async def started(runtime: Runtime, simulator: SimulatorServer, *, settled: bool = True) -> Runtime:
    """The runtime with its loops running, once the guard has read the controller (and, when
    `settled`, written what the options ask and found the controller in sync)."""
    before = reads(simulator)
    await runtime.start()
    await eventually(lambda: reads(simulator) > before, what="the guard's first read")
    if settled:
        await eventually(
            lambda: (
                runtime.state.guard.state is GuardState.IN_SYNC
                and not runtime.guard.options_pending(runtime.options)
            ),
            what="the controller in sync",
        )
    return runtime


def above_ceiling(simulator: SimulatorServer, ceiling_w: int) -> bool:
    device = simulator.device
    return device.export_limit_w > ceiling_w or device.mode is not ControlMode.VALUE


# -- 3. a limit or mode beyond the ceiling, set by another tool, is put back within one scan


@pytest.mark.parametrize("action", ["restore", "adopt", "notify"])
async def test_a_limit_above_the_ceiling_by_another_tool_is_put_back_within_one_scan(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer, action: str
) -> None:
    simulator.device.profile = lambda _t: (0.0, 500.0)  # night: the meter sees nothing over
    options = make_options(**CEILING, scan_interval=SCAN, verify_interval=300, drift_action=action)
    runtime = await started(Runtime(options, tmp_path), simulator)
    simulator.drift(9_000)  # 9 kW on a 3 kW ceiling
    await eventually(
        lambda: not above_ceiling(simulator, 3_000), SCAN + ONE_WRITE, "the ceiling back"
    )
    await runtime.stop()
    assert simulator.device.export_limit_w == 3_000
    assert [e for e in runtime.audit.tail() if kind_of(e) == "ceiling"]


async def test_an_over_limit_reading_wakes_the_guard_at_once(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    """No ceiling and a check once a day: the meter's reading above the limit is what wakes
    the guard, which restores the wanted limit."""
    simulator.device.profile = lambda _t: SUN
    options = make_options(scan_interval=SCAN, verify_interval=86400)
    runtime = Runtime(options, tmp_path)
    assert (await runtime.ops.set_export_limit(3, PANEL)).ok
    await started(runtime, simulator)
    simulator.drift(9_000)  # another tool: 8.5 kW exported with a 3 kW limit wanted
    await eventually(
        lambda: simulator.device.export_limit_w == 3_000, 2 * SCAN + ONE_WRITE, "3 kW back"
    )
    await runtime.stop()


async def test_verify_interval_0_with_a_ceiling_still_reads_every_scan(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    simulator.device.profile = lambda _t: (0.0, 500.0)
    options = make_options(**CEILING, scan_interval=SCAN, verify_interval=0)
    assert "still read every scan_interval (1 s)" in options.warnings()["verify_interval"]
    runtime = await started(Runtime(options, tmp_path), simulator)
    simulator.drift(9_000)
    await eventually(
        lambda: simulator.device.export_limit_w == 3_000, SCAN + ONE_WRITE, "the ceiling back"
    )
    await runtime.stop()


@pytest.mark.parametrize(
    "mode", [ControlMode.DEACTIVATED, ControlMode.DRED, ControlMode.RCR], ids=lambda m: m.option
)
async def test_a_mode_set_by_another_tool_under_a_ceiling_is_put_back_never_adopted(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    mode: ControlMode,
) -> None:
    simulator.device.profile = lambda _t: (0.0, 500.0)
    options = make_options(**CEILING, scan_interval=SCAN, drift_action="adopt")
    runtime = await started(Runtime(options, tmp_path), simulator)
    set_mode(simulator, mode)
    await eventually(
        lambda: simulator.device.mode is ControlMode.VALUE, SCAN + ONE_WRITE, "mode value back"
    )
    await runtime.stop()
    assert runtime.options.export_limit_control_mode == "value"
    assert simulator.device.export_limit_w <= 3_000


# -- DRED and RCR under a ceiling: refused from every origin


@pytest.mark.parametrize("mode", ["dred", "rcr", "deactivated"])
async def test_modes_other_than_value_are_refused_under_a_ceiling_and_nothing_is_sent(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer, mode: str
) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({**CEILING, "export_limit_control_mode": mode})
    assert "export ceiling of 3 kW" in caught.value.errors["export_limit_control_mode"]
    item = {"name": "barn", "host": "10.0.0.9", "export_limit_control_mode": mode}
    with pytest.raises(OptionsError) as controller:
        Options.from_mapping({**CEILING, "controllers": [item]})
    assert "export ceiling of 3 kW" in controller.value.errors["controllers"]
    runtime = Runtime(make_options(**CEILING), tmp_path)
    for origin in (PANEL, Origin("mqtt"), Origin("automation")):
        result = await runtime.ops.run("set_control_mode", {"mode": mode}, origin)
        assert result.feedback == Feedback.INVALID_INPUT, result.message
        assert "export ceiling of 3 kW" in result.message and "nothing was sent" in result.message
    assert simulator.requests() == []


# -- 4. a ceiling between two 10 W steps


async def test_a_ceiling_between_two_10_w_steps_is_rounded_down_and_held(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({"export_ceiling_kw": 2.995, "max_export_limit": 2.995})
    assert "as 3.00 kW, above the export ceiling in force of 2.99 kW" in str(caught.value)
    options = make_options(export_ceiling_kw="2,995", max_export_limit=2.99)
    assert options.ceiling_w == 2_990
    assert "ceiling in force is 2.99 kW (rounded down)" in options.warnings()["export_ceiling_kw"]
    runtime = Runtime(options, tmp_path)
    enabled = await runtime.ops.export_enable(Origin("policy"))
    assert enabled.ok and simulator.device.export_limit_w == 2_990
    simulator.drift(2_995)  # another tool, 5 W above the ceiling in force
    assert await runtime.guard.check()
    assert simulator.device.export_limit_w == 2_990
    for _ in range(3):  # in sync now: every check only reads
        assert await runtime.guard.check()
    assert len([e for e in runtime.audit.tail() if kind_of(e) == "ceiling"]) == 1
    assert limits_written(simulator) == [2_990, 2_990]


# -- 6. a change made while the add-on was stopped


@pytest.mark.parametrize("action", ["restore", "notify"])
async def test_a_change_made_while_the_add_on_was_stopped_is_a_drift_at_start(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer, action: str
) -> None:
    options = make_options(drift_action=action)
    first = Runtime(options, tmp_path)
    assert (await first.ops.export_disable(PANEL)).ok  # wanted: export off, 0 W
    await first.stop()
    simulator.drift(8_000)  # another tool, while the add-on is stopped
    runtime = await started(Runtime(options, tmp_path), simulator, settled=False)
    if action == "restore":
        await eventually(lambda: simulator.device.export_limit_w == 0, ONE_WRITE, "0 W back")
    else:
        await eventually(lambda: runtime.state.guard.state is GuardState.DRIFT, what="a drift")
        assert simulator.device.export_limit_w == 8_000
    await runtime.stop()
    drifts = [e for e in runtime.audit.tail() if e["command"] == "drift"]
    assert drifts and "holds 8.00 kW in mode value, not the wanted 0.00 kW" in drifts[0]["message"]
    assert not [e for e in runtime.audit.tail() if e["command"] == "adopt"]


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """wanted.json can no longer be written, as on a full disk (removing a file still works);
    a full disk cannot be had here."""

    def no_space(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(wanted_module, "write_atomic", no_space)


async def test_after_a_full_disk_a_restart_keeps_the_controllers_state_not_an_older_file(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = make_options()
    first = Runtime(options, tmp_path)
    assert (await first.ops.export_enable(PANEL)).ok  # saved: 8 kW
    await first.guard.flush()
    with monkeypatch.context() as patch:
        full_disk(patch)
        assert (await first.ops.export_disable(PANEL)).ok  # 0 W, not saved
        await first.stop()
    assert "cannot save the wanted export state" in first.state.guard.save_error
    runtime = await started(Runtime(options, tmp_path), simulator)
    await runtime.stop()
    assert limits_written(simulator) == [8_000, 0]  # nothing written at the restart
    assert simulator.device.export_limit_w == 0


# -- 9. a pending restore and a ceiling set since


async def test_a_pending_restore_never_writes_above_todays_ceiling(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    record = RestoreRecord("value", 2_000, True, 0.0, "127.0.0.1", simulator.port, 10_000)
    await asyncio.to_thread(RestoreStore(tmp_path).save, record)
    set_mode(simulator, ControlMode.DEACTIVATED)  # the kill came in the reset's window
    options = make_options(export_ceiling_kw=1.5, max_export_limit=1.5)
    runtime = Runtime(options, tmp_path)
    await runtime.start()
    await eventually(runtime.ready.is_set, 10, "the restore confirmed")
    await runtime.stop()
    assert limits_written(simulator) and max(limits_written(simulator)) <= 1_500
    assert simulator.device.mode is ControlMode.VALUE
    assert simulator.device.export_limit_w == 1_500


# -- an overshoot under way at a stop, or a kill


async def test_an_overshoot_under_way_at_a_stop_is_audited_and_its_energy_kept_each_scan(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    simulator.device.profile = lambda _t: SUN
    options = make_options(scan_interval=SCAN, overshoot_seconds=10, overshoot_margin_kw=0.2)
    runtime = Runtime(options, tmp_path)
    assert (await runtime.ops.set_export_limit(3, PANEL)).ok
    await runtime.start()
    simulator.set_fault("overshoot")  # +2 kW nobody limits
    await eventually(lambda: runtime.state.overshoot.get("on"), 25, "the overshoot seen")

    def saved_over() -> float:  # what a SIGKILL now would leave
        try:
            data = json.loads((tmp_path / ENERGY_NAME).read_text())
        except (OSError, ValueError):
            return 0.0
        return float(data["totals"]["over_limit"])

    await eventually(lambda: saved_over() > 0, 2 * SCAN + 1, "the energy over saved")
    await runtime.stop()
    (entry,) = [e for e in runtime.audit.tail() if kind_of(e) == "overshoot"]
    assert "still under way when the add-on stopped" in entry["message"]
    assert entry["until"] > entry["since"] and entry["energy_over_kwh"] > 0
    assert saved_over() == pytest.approx(runtime.energy.book.totals["over_limit"])


# -- a stop never waits on a loop that swallowed its cancellation


@pytest.mark.parametrize("turns", range(6))
async def test_the_loops_end_when_cancelled_even_as_they_are_woken(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer, turns: int
) -> None:
    """Python 3.11's wait_for returned normally when its cancellation came with the event it
    waited for: the guard's loop then ran on, and a stop waited out its whole budget."""
    runtime = await started(Runtime(make_options(scan_interval=SCAN), tmp_path), simulator)
    await asyncio.sleep(0.2)  # the loops are waiting for their next turn
    loops = [task for task in (runtime._task, runtime._guard_task) if task is not None]
    runtime.guard.wake()
    runtime._wake.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    for task in loops:
        task.cancel()
    await asyncio.wait(loops, timeout=STOP_BUDGET)
    assert all(task.cancelled() for task in loops)
    runtime._task = runtime._guard_task = None
    await runtime.stop()
