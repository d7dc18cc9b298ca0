"""The export guard over real sockets: verified writes, the wanted state kept, drift handled,
the watchdog window as documented, and the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sec1000.device.sequences import LimitWrite
from sec1000.limiter.audit import AUDIT_NAME, AuditLog, kind_of
from sec1000.limiter.wanted import WANTED_NAME, WantedStore
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.limiter.writes import WriteJob, WriteReport, write_reported
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.protocol import (
    Command,
    ControlMode,
    Feedback,
    PhaseMeasurement,
    Sec1000Error,
    Switch,
    mode_switch_request,
    read_export_settings_request,
    write_export_limit_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import GuardState

from tests.helpers.waiting import eventually
from tests.helpers.watchdog import short_watchdog

PANEL = Origin("panel", "Anna")


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    return short_watchdog()


def audit(runtime: Runtime) -> list[dict[str, object]]:
    return runtime.audit.tail(1000)


# -- 1. verified writes


async def test_a_write_is_read_back_byte_for_byte_and_audited(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    result = await runtime.ops.set_export_limit("3", PANEL)
    assert result.feedback == Feedback.OK, result.message
    assert simulator.requests() == [
        write_export_limit_request(10_000, 3_000, PhaseMeasurement.SUM_OF_PHASES),
        mode_switch_request(Command.MODE_DRED, Switch.OFF),
        mode_switch_request(Command.MODE_RCR, Switch.OFF),
        mode_switch_request(Command.MODE_VALUE, Switch.ON),
        read_export_settings_request(),
    ]
    (entry,) = audit(runtime)
    assert entry["origin"] == "panel:Anna" and entry["command"] == "set_export_limit"
    assert entry["requested"] == {
        "export_limit_kw": 3.0,
        "mode": "value",
        "total_capacity_kw": 10.0,
        "three_phase_sum": True,
    }
    assert entry["after"] == {"export_limit_kw": 3.0, "mode": "value", "total_capacity_kw": 10.0}
    assert entry["verified"] is True and entry["feedback"] == 1
    assert str(entry["at"])[:4].isdigit() and (
        "+" in str(entry["at"]) or "-" in str(entry["at"])[10:]
    )
    assert runtime.state.guard.state is GuardState.IN_SYNC


async def test_ignored_writes_give_2_in_words_and_the_guard_says_unverified(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("ignore_writes")
    result = await runtime.ops.set_export_limit("3", PANEL)
    assert result.feedback == Feedback.GENERAL_ERROR
    assert "the controller holds 5.00 kW in mode value, not 3.00 kW in mode value" in result.message
    assert simulator.requests().count(read_export_settings_request()) == 2  # one more attempt
    assert simulator.device.export_limit_w == 5_000
    guard = runtime.state.guard
    assert guard.state is GuardState.UNVERIFIED and "holds 5.00 kW" in guard.message
    (entry,) = audit(runtime)
    assert entry["verified"] is False and entry["feedback"] == 2 and kind_of(entry) == "failure"


async def test_every_writing_command_is_verified(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("ignore_writes")
    for command, data in (
        ("export_enable", {}),
        ("export_disable", {"limit": None}),
        ("set_control_mode", {"mode": "dred"}),
    ):
        result = await runtime.ops.run(command, data, PANEL)
        assert result.feedback == Feedback.GENERAL_ERROR, (command, result.message)
        assert "the controller holds" in result.message
    assert runtime.options.export_limit_control_mode == "value"  # a mode not taken is not saved


async def test_a_write_that_raises_is_reported_too(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    """Every limiter write reaches the audit: one that never got its answer as well (the
    watchdog's restore attempts used to leave those out)."""
    reports: list[WriteReport] = []
    simulator.set_fault("reset")
    write = LimitWrite(10_000, 5_000, ControlMode.VALUE, PhaseMeasurement.SUM_OF_PHASES)
    with pytest.raises(Sec1000Error):
        async with runtime.link.session() as session:
            await write_reported(
                session,
                runtime.state,
                write,
                reports.append,
                WriteJob("guard", "restore", done="the limiter restored", sets_wanted=False),
            )
    (report,) = reports
    assert (report.after, report.feedback, report.verified) == (None, 64, False)
    assert report.origin == "guard" and report.message


# -- 2. the wanted state, kept


async def drifted(runtime: Runtime, simulator: SimulatorServer, action: str) -> None:
    runtime._use(Options.from_mapping({"drift_action": action}, base=runtime.options))
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    simulator.drift(9_990)  # an installer tool writes behind the add-on's back
    await runtime.guard.check()


async def test_drift_restore_writes_the_wanted_state_again(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await drifted(runtime, simulator, "restore")
    assert simulator.device.export_limit_w == 3_000
    assert runtime.state.guard.state is GuardState.IN_SYNC
    assert runtime.state.guard.drifts_24h == 1
    kinds = [(e["origin"], e["command"], kind_of(e)) for e in audit(runtime)]
    assert kinds == [
        ("panel:Anna", "set_export_limit", "write"),
        ("guard", "drift", "drift"),
        ("guard", "restore", "write"),
    ]


async def test_drift_adopt_takes_the_controllers_state_into_the_options(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.total_capacity_w = 10_000
    await drifted(runtime, simulator, "adopt")
    assert simulator.device.export_limit_w == 9_990  # nothing written back
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 9_990
    assert runtime.state.guard.state is GuardState.IN_SYNC
    assert runtime.options.total_capacity == 10.0
    await runtime.guard.flush()
    assert json.loads((runtime.data_dir / WANTED_NAME).read_text())["export_limit_w"] == 9_990


async def test_drift_adopt_saves_a_new_mode_and_capacity(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime._use(Options.from_mapping({"drift_action": "adopt"}, base=runtime.options))
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    simulator.device.total_capacity_w = 9_000
    simulator.device.switches[Command.MODE_VALUE] = False
    simulator.device.switches[Command.MODE_DRED] = True
    await runtime.guard.check()
    assert runtime.options.export_limit_control_mode == "dred"
    assert runtime.options.total_capacity == 9.0
    assert runtime.options.max_export_limit == 8.0  # still under the new capacity


async def test_drift_notify_only_reports(runtime: Runtime, simulator: SimulatorServer) -> None:
    await drifted(runtime, simulator, "notify")
    assert simulator.device.export_limit_w == 9_990
    guard = runtime.state.guard
    assert guard.state is GuardState.DRIFT
    assert "holds 99.90 kW" not in guard.message and "holds 9.99 kW" in guard.message
    assert guard.device_limit_kw == 9.99 and guard.wanted_limit_kw == 3.0
    for _ in range(3):  # the same drift at every check: one audit line, one count
        await runtime.guard.check()
    assert [kind_of(e) for e in audit(runtime)].count("drift") == 1
    assert runtime.state.guard.drifts_24h == 1 and runtime.state.guard.state is GuardState.DRIFT
    simulator.drift(8_880)  # another drift is news
    await runtime.guard.check()
    assert [kind_of(e) for e in audit(runtime)].count("drift") == 2


async def test_the_same_drift_three_times_in_an_hour_is_contested(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await drifted(runtime, simulator, "restore")
    simulator.drift(9_990)
    await runtime.guard.check()
    assert simulator.device.export_limit_w == 3_000  # the second is still restored
    simulator.drift(9_990)
    await runtime.guard.check()
    assert simulator.device.export_limit_w == 9_990  # the third is not fought
    guard = runtime.state.guard
    assert guard.state is GuardState.CONTESTED
    assert "something else writes to the controller" in guard.message
    writes, drifts = len(simulator.requests()), len(audit(runtime))
    await runtime.guard.check()
    assert len(simulator.requests()) == writes + 1  # a read, no write
    assert len(audit(runtime)) == drifts  # and no new audit line
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok  # the user's word ends it
    assert runtime.state.guard.state is GuardState.IN_SYNC


async def test_the_simulators_drift_fault_changes_the_limit_on_its_own(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.drift_after = 0.05
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    simulator.set_fault("drift", count=1)
    await asyncio.sleep(0.1)
    await runtime.start()  # the guard's loop, woken by what get_export_limit reads
    result = await runtime.ops.get_export_limit(PANEL)
    assert "12.35 kW" in result.message
    await eventually(lambda: simulator.device.export_limit_w == 3_000, what="drift restored")
    await runtime.stop()


async def test_options_from_the_configuration_tab_reach_the_controller_at_start_up(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = Runtime(make_options(), data)
    assert (await first.ops.export_disable(PANEL)).ok  # wanted: "export off" at 0 kW
    await first.guard.flush()
    # Stopped; the user sets a new minimum, capacity and mode in the Configuration tab.
    options = make_options(
        min_export_limit=0.5, total_capacity=9.0, export_limit_control_mode="rcr"
    )
    second = Runtime(options, data)
    await second.start()
    await eventually(
        lambda: any(e["origin"] == "startup" for e in audit(second)), what="the start-up write"
    )
    await second.stop()
    assert simulator.device.mode is ControlMode.RCR
    assert simulator.device.export_limit_w == 500  # the limit followed the new minimum
    assert simulator.device.total_capacity_w == 9_000
    startup = [e for e in audit(second) if e["origin"] == "startup"]
    assert startup and startup[-1]["verified"] is True


async def test_a_first_start_on_a_controller_that_holds_the_options_writes_nothing(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await runtime.start()
    await eventually(lambda: runtime.guard.wanted is not None, what="the wanted state set")
    await runtime.stop()
    assert all(request[4] in (0x43, 0x0B) for request in simulator.requests())
    assert runtime.state.guard.state is GuardState.IN_SYNC


async def test_a_damaged_wanted_file_is_set_anew(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / WANTED_NAME).write_text("{not json")
    assert await asyncio.to_thread(WantedStore(data).load) is None
    runtime = Runtime(make_options(), data)  # starts with no wanted state, and no crash
    assert runtime.guard.wanted is None
    assert (await runtime.ops.set_export_limit("4", PANEL)).ok
    await runtime.guard.flush()
    assert json.loads((data / WANTED_NAME).read_text())["export_limit_w"] == 4_000


# -- 3. the watchdog window


async def test_the_watchdog_window_is_the_off_window_plus_at_most_one_gap(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.state.settings_read(export_limit_kw=5.0)
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.ok, result.message
    value_off = mode_switch_request(Command.MODE_VALUE, Switch.OFF)
    value_on = mode_switch_request(Command.MODE_VALUE, Switch.ON)
    times = [(e.request, e.request_at) for e in simulator.exchanges if e.request_at]
    off_at = next(at for request, at in times if request == value_off)
    on_at = next(at for request, at in times if request == value_on)
    window = on_at - off_at
    # Never shorter than the off window; how much longer is the gap and the machine's own
    # scheduling, which a busy machine stretches: the result says what the device saw.
    assert runtime.watchdog.timings.off_window <= window
    said = re.search(r"off for ([0-9.]+) s", result.message)
    assert said is not None, result.message
    assert abs(float(said.group(1)) - window) <= 0.1


# -- 4. the audit trail


def test_the_audit_trail_rotates_at_its_size_and_keeps_three_files(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=400)
    for n in range(40):
        log.append({"origin": "cli", "command": "set_export_limit", "n": n, "verified": True})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [AUDIT_NAME, f"{AUDIT_NAME}.1", f"{AUDIT_NAME}.2"]
    assert all(p.stat().st_size <= 400 for p in tmp_path.iterdir())
    numbers = [entry["n"] for entry in log.read(None)]
    assert numbers == sorted(numbers) and numbers[-1] == 39 and numbers[0] > 0


async def test_a_broken_audit_file_does_not_stop_the_add_on(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    (runtime.data_dir / AUDIT_NAME).mkdir(parents=True)  # not a file: every append fails
    result = await runtime.ops.set_export_limit("3", PANEL)
    assert result.ok
    await runtime.audit.flush()
    assert runtime.audit.error and AUDIT_NAME in runtime.audit.error
    # the History page still shows what happened, from memory
    assert [e["command"] for e in runtime.audit.tail()] == ["set_export_limit"]


def test_garbage_lines_in_the_audit_trail_are_skipped(tmp_path: Path) -> None:
    (tmp_path / AUDIT_NAME).write_text('{"command": "a"}\nnot json\n[1]\n\x00\n{"command": "b"}\n')
    assert [e["command"] for e in AuditLog(tmp_path).tail()] == ["a", "b"]


async def test_a_silent_controller_makes_the_guard_unverified_and_writes_nothing(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    simulator.set_fault("reset")
    requests = len(simulator.requests())
    await runtime.guard.check()  # never raises
    guard = runtime.state.guard
    assert guard.state is GuardState.UNVERIFIED and "cannot read the controller" in guard.message
    assert len(simulator.requests()) == requests + 1  # the read, no write


async def test_a_wanted_file_that_cannot_be_written_keeps_the_state_in_memory(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    (runtime.data_dir / WANTED_NAME).mkdir(parents=True)  # not a file: every save fails
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 3_000
