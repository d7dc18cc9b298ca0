"""The meter check over real sockets: over-limit export seen by the controller's own meter, and
a contracted export ceiling that no path can exceed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sec1000.limiter.audit import kind_of
from sec1000.operations import Origin
from sec1000.options import Options, OptionsError
from sec1000.protocol import ControlMode, Feedback
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.device import passes_within
from tests.helpers.notifications import NoClient
from tests.helpers.waiting import eventually

CEILING = {"export_ceiling_kw": 6.0, "max_export_limit": 6.0}
ORIGINS = [
    Origin("panel", "Anna"),
    Origin("home_assistant", "Bob"),
    Origin("automation"),
    Origin("mqtt"),
    Origin("policy"),
]


def ceiling_runtime(make_options: Callable[..., Options], data: Path, **extra: object) -> Runtime:
    return Runtime(make_options(**CEILING, **extra), data)


# -- the ceiling


def test_options_refuse_a_maximum_above_the_ceiling_and_mode_off_under_one() -> None:
    with pytest.raises(OptionsError) as above:
        Options.from_mapping({"export_ceiling_kw": 5, "max_export_limit": 6})
    assert "above the export ceiling of 5 kW" in above.value.errors["max_export_limit"]
    with pytest.raises(OptionsError) as off:
        Options.from_mapping(
            {
                "export_ceiling_kw": 5,
                "max_export_limit": 5,
                "export_limit_control_mode": "deactivated",
            }
        )
    assert "cannot be deactivated" in off.value.errors["export_limit_control_mode"]
    assert Options.from_mapping({"export_ceiling_kw": 0, "max_export_limit": 9}).ceiling_w is None


@pytest.mark.parametrize("origin", ORIGINS, ids=lambda o: o.tag)
async def test_no_origin_writes_above_the_ceiling_and_nothing_is_sent(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    origin: Origin,
) -> None:
    runtime = ceiling_runtime(make_options, tmp_path)
    for command, data in (
        ("set_export_limit", {"limit": "7"}),
        ("set_export_limit", {"limit": "6,01"}),
        ("set_control_mode", {"mode": "deactivated"}),
    ):
        result = await runtime.ops.run(command, data, origin)
        assert result.feedback == Feedback.INVALID_INPUT, (command, result.message)
        assert "export ceiling of 6 kW" in result.message and "nothing was sent" in result.message
    assert simulator.requests() == []


async def test_the_cli_refuses_above_the_ceiling_and_sends_nothing(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({**CEILING, "host": "127.0.0.1", "port": simulator.port}))
    command = [
        sys.executable, "-m", "sec1000", "set-limit", "6.5", "--host", "127.0.0.1", "--port",
        str(simulator.port), "--options", str(options), "--data-dir", str(tmp_path / "d"),
        "--gap-ms", "20",
    ]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert done.returncode != 0 and "export ceiling of 6 kW" in done.stderr
    assert simulator.requests() == []


async def test_the_policy_and_export_on_stay_under_the_ceiling(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    runtime = ceiling_runtime(make_options, tmp_path)
    assert (await runtime.ops.export_enable(Origin("policy"))).ok
    assert simulator.device.export_limit_w == 6_000


@pytest.mark.parametrize("action", ["notify", "adopt", "restore"])
async def test_a_controller_above_the_ceiling_is_put_back_whatever_drift_action_says(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    action: str,
) -> None:
    runtime = ceiling_runtime(make_options, tmp_path, drift_action=action)
    assert (await runtime.ops.set_export_limit(3, Origin("panel"))).ok
    simulator.drift(9_000)  # another tool, above the contract
    assert await runtime.guard.check()
    assert simulator.device.export_limit_w == 3_000
    for switch in simulator.device.switches:  # and the limiter switched off
        simulator.device.switches[switch] = False
    assert await runtime.guard.check()
    assert simulator.device.mode is ControlMode.VALUE
    ceilings = [e for e in runtime.audit.tail() if e["command"] == "ceiling"]
    assert len(ceilings) == 2 and all(kind_of(e) == "ceiling" for e in ceilings)
    assert "export ceiling of 6 kW" in ceilings[0]["message"]


# -- over-limit export


async def test_an_uncontrolled_inverter_is_an_overshoot_noticed_counted_and_audited(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> None:
    from sec1000.ha.notifications import OVERSHOOT_NOTIFICATION, Notifications

    simulator.device.profile = lambda _t: (9_000.0, 500.0)  # sun: the limiter curtails
    overshoot_s = 10  # the shortest the option allows
    runtime = Runtime(
        make_options(scan_interval=1, overshoot_seconds=overshoot_s, overshoot_margin_kw=0.2),
        tmp_path,
    )
    assert (await runtime.ops.set_export_limit(3, Origin("panel"))).ok
    await runtime.start()
    await eventually(lambda: runtime.state.telemetry is not None, what="a first read")
    simulator.set_fault("overshoot")  # +2 kW nobody limits
    # Seen at the first read after it lasted overshoot_s, which began at most a pass after the
    # fault: overshoot_s and two passes.
    seen_within = overshoot_s + passes_within(runtime, 2)
    await eventually(lambda: runtime.state.overshoot.get("on"), seen_within, "the overshoot seen")
    over = runtime.state.overshoot
    assert over["limit_kw"] == 3.0 and over["max_kw"] == pytest.approx(5.0, abs=0.05)
    title, message = Notifications(runtime, NoClient()).desired()[OVERSHOOT_NOTIFICATION]
    assert "over the limit" in title and "5.00 kW" in message
    simulator.clear_faults()
    # It ends once export stayed under for as long again (sec1000/overshoot.py): the same bound.
    await eventually(lambda: not runtime.state.overshoot.get("on"), seen_within, "back under")
    await runtime.stop()
    (entry,) = [e for e in runtime.audit.tail() if kind_of(e) == "overshoot"]
    assert entry["limit_kw"] == 3.0 and entry["until"] > entry["since"]
    # 1.75 kW above 3.25 kW for about as long as it lasted
    minutes = (entry["until"] - entry["since"]) / 60
    assert entry["energy_over_kwh"] == pytest.approx(1.75 * minutes / 60, rel=0.25)
    totals = runtime.energy.snapshot()
    assert totals["totals"]["over_limit"] == pytest.approx(entry["energy_over_kwh"], abs=0.002)
    assert totals["today"]["over_limit_min"] > 0
    assert runtime.state.overshoot["periods"][-1][1] == entry["until"]


async def test_the_compliance_report_has_a_row_per_day_with_the_days_figures(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.set_export_limit(3, Origin("panel"))).ok
    simulator.drift(4_000)
    await runtime.guard.check()
    report = (await runtime.meter_check.compliance_csv(90)).splitlines()
    assert report[0].startswith("date,max_export_kw,limit_in_force_kw,minutes_over_limit")
    assert len(report) == 2  # today only: nothing was counted before
    today = report[-1].split(",")
    assert today[5:7] == ["2", "1"]  # two writes (the limit, the restore), one drift
