"""The energy sensors in Home Assistant's Energy dashboard: preferences saved over WebSocket,
`energy/validate` clean, and the recorder's own 5-minute statistics equal to the add-on's counter.

A real Home Assistant Core of the test's own (each Core the tests run on), with `recorder:` and
`energy:` added to the harness configuration (the shared instance has neither), behind the FAKE
Supervisor.

Nothing in 2025.4.4 or 2026.2.3 compiles statistics on demand: no service, no WebSocket command (the
recorder's commands only read, import, adjust or clear them). The recorder compiles the 5-minute
period that just ended at every UTC minute divisible by 5, at second 10. And
`recorder/statistic_during_period` takes the oldest row's sum as the baseline when no row comes
before the period asked for, so the first compiled period of a new statistic always shows a
change of 0 there (the Energy dashboard's `recorder/statistics_during_period` counts it from 0).
So the test waits for two compiles: the next boundary's, then the following one's; it compares
the full period between them. That is 5.5 to 11 minutes, about 8 on average.

The wait is on the wall clock, so the first of the test's runs (one per Core) measures every
selected Core at once, each with its own Core, controller and add-on, and keeps the figures;
each run then checks its own Core's. Two Cores thus wait one period, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sec1000.ha import Endpoint
from sec1000.ha.entities import ENERGY_SENSORS
from sec1000.ha.websocket import WebSocketConnection
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.simulator.device import SimulatedDevice

from tests import ha_harness
from tests.conftest import TEST_GAP_MS, TEST_TIMEOUT_S
from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import Core, HomeAssistant, make_template
from tests.helpers.ha import connected, running_addon

pytestmark = pytest.mark.homeassistant

RECORDER_AND_ENERGY = "recorder:\n  commit_interval: 1\nenergy:\n"
EXPORT = ENERGY_SENSORS["grid_export"].entity_id
IMPORT = ENERGY_SENSORS["grid_import"].entity_id
PV = ENERGY_SENSORS["pv"].entity_id
PERIOD = 300.0  # the recorder's short-term statistics period (s), aligned on UTC
COMPILE_AT = 10.0  # ... compiled at second 10 after each boundary
QUIET = 1.5  # no read this close before a boundary: its state lands on the right side of it
READ_EVERY = 1.0

# What the energy panel's settings dialog sends (every key present: data.py's grid flow
# validator reads entity_energy_price and number_energy_price with [], not .get()).
PREFERENCES: dict[str, Any] = {
    "energy_sources": [
        {
            "type": "grid",
            "flow_from": [
                {
                    "stat_energy_from": IMPORT,
                    "stat_cost": None,
                    "entity_energy_price": None,
                    "number_energy_price": None,
                }
            ],
            "flow_to": [
                {
                    "stat_energy_to": EXPORT,
                    "stat_compensation": None,
                    "entity_energy_price": None,
                    "number_energy_price": None,
                }
            ],
            "cost_adjustment_day": 0,
        },
        {"type": "solar", "stat_energy_from": PV, "config_entry_solar_forecast": None},
    ],
    "device_consumption": [],
}


def plant(seconds: float) -> tuple[float, float]:
    """A 50 kW roof (36 kW now) exporting about 31 kW, moving a little every second (pv W, load W)."""
    pv = 36_000 + 2_000 * math.sin(2 * math.pi * seconds / 60)
    load = 5_000 + 500 * math.sin(2 * math.pi * seconds / 17)
    return pv, load


async def start_simulator() -> SimulatorServer:
    """A simulator with a known steady plant, below its 45 kW export limit."""
    device = SimulatedDevice(total_capacity_w=50_000, export_limit_w=45_000, profile=plant)
    return await SimulatorServer(device=device).start()


def make_runtime(simulator: SimulatorServer, data_dir: Path) -> Runtime:
    """The core on that plant (its options match it); counters start at 0 in a fresh data dir."""
    options = {
        "host": "127.0.0.1",
        "port": simulator.port,
        "request_gap_ms": TEST_GAP_MS,
        "request_timeout": TEST_TIMEOUT_S,
        "total_capacity": 50.0,
        "max_export_limit": 45.0,
    }
    return Runtime(Options.from_mapping(options), data_dir)


@asynccontextmanager
async def energy_home_assistant(core: Core, directory: Path) -> AsyncIterator[HomeAssistant]:
    """A running, onboarded Home Assistant of its own with the recorder and the energy
    integration; stopped afterwards."""
    hass = await asyncio.to_thread(ha_harness.install, core)
    template = await asyncio.to_thread(make_template, core, hass, directory / "template")
    instance = template.instance(directory / "instance")
    try:
        await instance.async_start()
        yield instance
    finally:
        await instance.async_stop()


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def issue_types(validation: dict[str, Any]) -> list[list[tuple[str, list[str]]]]:
    """energy/validate's answer as [source][issue] -> (type, affected entity ids)."""
    return [
        [(issue["type"], sorted(e[0] for e in issue["affected_entities"])) for issue in source]
        for source in validation["energy_sources"]
    ]


async def wait_out_the_compile() -> None:
    """Start away from a compile: from 15 s before a boundary to 25 s after it, wait."""
    phase = time.time() % PERIOD
    if phase > PERIOD - 15:
        await asyncio.sleep(PERIOD - phase + 25)
    elif phase < 25:
        await asyncio.sleep(25 - phase)


async def keep_reading(runtime: Runtime, reads: list[tuple[float, float]]) -> None:
    """Poll the controller every second (never in the last QUIET s before a boundary, nor in
    the first 0.5 s after it) and note the add-on's exact export total after each read."""
    while True:
        phase = time.time() % PERIOD
        if phase > PERIOD - QUIET or phase < 0.5:
            await asyncio.sleep(0.1)
            continue
        result = await runtime.ops.get_telemetry_data()
        assert result.ok, result.message
        reads.append((time.time(), runtime.energy.book.totals["grid_export"]))
        await asyncio.sleep(READ_EVERY)


async def short_term_rows(ws: WebSocketConnection, start: float, end: float) -> list[Any]:
    answer = await ws.send_command(
        {
            "type": "recorder/statistics_during_period",
            "start_time": iso(start),
            "end_time": iso(end),
            "statistic_ids": [EXPORT],
            "period": "5minute",
            "types": ["change", "state", "sum"],
        }
    )
    return list(answer.get(EXPORT, []))


def total_before(reads: list[tuple[float, float]], at: float) -> float:
    """The add-on's exact export total after its last read before `at` (0 before any read)."""
    return max((entry for entry in reads if entry[0] < at), default=(0.0, 0.0))[1]


async def wait_for_compile(ws: WebSocketConnection, boundary: float) -> list[Any]:
    """Sleep until the compile after `boundary`; return the export rows up to it once there."""
    await asyncio.sleep(max(0.0, boundary + COMPILE_AT - time.time()))
    deadline = time.time() + 90
    while True:
        rows = await short_term_rows(ws, boundary - 2 * PERIOD, boundary)
        if any(row["end"] == boundary * 1000 for row in rows):
            return rows
        assert time.time() < deadline, f"no 5-minute statistics 100 s after {iso(boundary)}"
        await asyncio.sleep(1)


@dataclass
class EnergyRun:
    """What one Core answered, and the add-on's own totals, over two compiles."""

    saved: dict[str, Any]  # energy/save_prefs
    prefs: dict[str, Any]  # energy/get_prefs after it
    before: dict[str, Any]  # energy/validate before the first compile
    after: dict[str, Any]  # ... and after it
    recorder_issues: dict[str, Any]  # recorder/validate_statistics after it
    first_rows: list[Any]  # the export's 5-minute rows up to the first boundary
    second_rows: list[Any]  # ... up to the second
    during: dict[str, Any]  # recorder/statistic_during_period between the two boundaries
    reads: list[tuple[float, float]]  # (time, the add-on's export total) after each read
    first_boundary: float
    second_boundary: float


async def read_until_compiled(
    ws: WebSocketConnection, runtime: Runtime, reads: list[tuple[float, float]]
) -> EnergyRun:
    """With the add-on connected: preferences, validations and the rows of two compiles."""
    first_boundary = (math.floor(time.time() / PERIOD) + 1) * PERIOD
    second_boundary = first_boundary + PERIOD
    reader = asyncio.create_task(keep_reading(runtime, reads))
    try:
        while len(reads) < 3:
            await asyncio.sleep(0.1)
            if reader.done():
                reader.result()  # a failed read fails the test here
        saved = await ws.send_command({"type": "energy/save_prefs", **PREFERENCES})
        prefs = await ws.send_command({"type": "energy/get_prefs"})
        before = await ws.send_command({"type": "energy/validate"})
        first_rows = await wait_for_compile(ws, first_boundary)
        after = await ws.send_command({"type": "energy/validate"})
        recorder_issues = await ws.send_command({"type": "recorder/validate_statistics"})
        # statistic_during_period takes the oldest row's sum as its baseline when no row
        # precedes the period, so it needs one full period after the first compile.
        second_rows = await wait_for_compile(ws, second_boundary)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    during = await ws.send_command(
        {
            "type": "recorder/statistic_during_period",
            "statistic_id": EXPORT,
            "fixed_period": {"start_time": iso(first_boundary), "end_time": iso(second_boundary)},
            "types": ["change"],
        }
    )
    return EnergyRun(
        saved, prefs, before, after, recorder_issues, first_rows, second_rows, during, reads,
        first_boundary, second_boundary,
    )  # fmt: skip


async def measure(core: Core, directory: Path) -> EnergyRun:
    """One Core with the recorder and energy, its own controller and add-on, measured."""
    simulator = await start_simulator()
    supervisor: TestServer | None = None
    try:
        async with (
            energy_home_assistant(core, directory) as ha,
            aiohttp.ClientSession() as session,
        ):
            supervisor = TestServer(create_fake_supervisor(ha.url, ha.token))
            await supervisor.start_server()
            endpoint = Endpoint(f"{ha.url}/api", ha.websocket_url, ha.token, "test")
            ws = await WebSocketConnection.open(session, endpoint)
            try:
                await wait_out_the_compile()
                runtime = make_runtime(simulator, directory / "data")
                async with running_addon(runtime, supervisor) as addon:
                    await connected(addon)  # every sensor published, the energy ones at 0.000
                    return await read_until_compiled(ws, runtime, [])
            finally:
                await ws.close()
    finally:
        if supervisor is not None:
            await supervisor.close()
        await simulator.stop()


_RUNS: dict[str, EnergyRun | BaseException] = {}  # per Core version, from the first run


@pytest.mark.timeout(900)
async def test_energy_dashboard_accepts_the_sensors_and_the_statistics_match_the_addon(
    ha_core: Core,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if ha_core.version not in _RUNS:  # the first run measures every selected Core at once
        monkeypatch.setattr(
            ha_harness, "CONFIGURATION", ha_harness.CONFIGURATION + RECORDER_AND_ENERGY
        )
        cores = [c for c in ha_harness.selected_cores(request.config) if c.version not in _RUNS]
        outcomes = await asyncio.gather(
            *(measure(c, tmp_path_factory.mktemp(f"energy-{c.version}")) for c in cores),
            return_exceptions=True,
        )
        _RUNS.update(zip((c.version for c in cores), outcomes, strict=True))
    run = _RUNS[ha_core.version]
    if isinstance(run, BaseException):
        raise run
    check(run)


def check(run: EnergyRun) -> None:
    """The Energy dashboard's view of the sensors, and the recorder's sums, against the add-on."""
    assert run.saved["energy_sources"] == PREFERENCES["energy_sources"]
    assert run.prefs == run.saved
    # Before the first compile the only finding is that no statistics exist yet: the validator
    # looks the ids up in the recorder's statistics metadata, which the first 5-minute compile
    # creates. Unit, device class, state class, state: all accepted.
    assert issue_types(run.before) == [
        [("statistics_not_defined", [EXPORT, IMPORT])],
        [("statistics_not_defined", [PV])],
    ], run.before
    assert run.before["device_consumption"] == []
    # The first compile: the statistics exist, the preferences validate clean (2026.x also lists
    # water consumption devices, `device_consumption_water`), and the first row's change (what
    # the Energy dashboard adds up) is what was published.
    assert run.after["energy_sources"] == [[], []], run.after
    assert all(run.after[key] == [] for key in run.after if key.startswith("device_")), run.after
    assert not {EXPORT, IMPORT, PV} & set(run.recorder_issues), run.recorder_issues
    at_first = total_before(run.reads, run.first_boundary)
    changes = [row["change"] for row in run.first_rows]
    assert changes == [pytest.approx(round(at_first, 3))], run.first_rows
    # The period between the two compiles, as the recorder sums it and as the add-on counted.
    at_second = total_before(run.reads, run.second_boundary)
    addon_delta = at_second - at_first
    assert addon_delta > 2.0, run.reads  # about 31 kW for 5 minutes
    during = run.during["change"]
    assert during == pytest.approx(addon_delta, rel=0.01), (run.during, addon_delta)
    # The only difference is the 3 decimals the sensors are published with.
    published = round(at_second, 3) - round(at_first, 3)
    assert during == pytest.approx(published, abs=1e-9), (run.during, run.second_rows)
