"""The energy sensors in Home Assistant's Energy dashboard: preferences saved over WebSocket,
`energy/validate` clean, and the recorder's own 5-minute statistics equal to the add-on's counter.

A real Home Assistant Core of the test's own (each Core the tests run on), with `recorder:` and
`energy:` added to the harness configuration (the shared instance has neither), behind the FAKE
Supervisor.

Core compiles the 5-minute period that just ended at every UTC minute divisible by 5 (second 10)
and offers no way to compile sooner, so the Core also loads a TEST HOOK,
tests/ha_hooks/statistics_on_demand: its service queues the recorder's own compile task for a
given period and answers once it has run. The test compiles the period the add-on's sensors were
created in (their first rows), then the next one; each compile comes after the add-on's last
read has reached Core, so each row holds exactly the states before it. The next period has no
state of its own yet: the recorder carries the latest one into it, and its row's change (what
the Energy dashboard adds up, from `recorder/statistics_during_period`) is the one between the
two compiles. (`recorder/statistic_during_period` cuts a period at now, so it has nothing to
say about that row.) The first row of a new statistic counts from 0, as the dashboard shows it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import shutil
import time
from collections.abc import AsyncIterator, Callable
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
from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.device import TEST_GAP_MS, TEST_TIMEOUT_S
from tests.helpers.ha import connected, running_addon
from tests.helpers.waiting import eventually_async

pytestmark = pytest.mark.homeassistant

HOOK = "statistics_on_demand"
STATISTICS_HOOK = Path(__file__).parents[1] / "ha_hooks" / HOOK
CONFIGURATION = f"recorder:\n  commit_interval: 1\nenergy:\n{HOOK}:\n"
EXPORT = ENERGY_SENSORS["grid_export"].entity_id
IMPORT = ENERGY_SENSORS["grid_import"].entity_id
PV = ENERGY_SENSORS["pv"].entity_id
PERIOD = 300.0  # the recorder's short-term statistics period (s), aligned on UTC
MARGIN = 60.0  # s before a boundary the test starts no later than (it needs about 10)
READ_EVERY = 1.0  # s between reads, as the add-on polls
FIRST_READS, SECOND_READS = 3, 5
PUBLISH_WITHIN = 30.0  # s for a read's total to reach Core: the add-on's REST call's budget

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
async def energy_home_assistant(
    factory: Callable[[], HomeAssistant], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[HomeAssistant]:
    """A running, onboarded Home Assistant of its own with the recorder, the energy integration
    and the statistics hook; stopped afterwards."""
    monkeypatch.setattr(ha_harness, "CONFIGURATION", ha_harness.CONFIGURATION + CONFIGURATION)
    instance = await asyncio.to_thread(factory)  # copies the onboarded template
    await asyncio.to_thread(
        shutil.copytree, STATISTICS_HOOK, instance.config_dir / "custom_components" / HOOK
    )
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


async def clear_of_the_boundary() -> None:
    """Start at least MARGIN before the next 5-minute boundary (and 25 s after the last, clear of
    the recorder's own compile at second 10), so the sensors' first states and the first
    compile fall in one period."""
    phase = time.time() % PERIOD
    if phase > PERIOD - MARGIN:
        await asyncio.sleep(PERIOD - phase + 25)
    elif phase < 25:
        await asyncio.sleep(25 - phase)


async def read(runtime: Runtime, reads: list[tuple[float, float]], count: int) -> None:
    """`count` reads of the controller, one a second as the add-on polls, noting the add-on's
    exact export total after each."""
    for _ in range(count):
        result = await runtime.ops.get_telemetry_data()
        assert result.ok, result.message
        reads.append((time.time(), runtime.energy.book.totals["grid_export"]))
        await asyncio.sleep(READ_EVERY)


async def published(ha: HomeAssistant, session: aiohttp.ClientSession, total: float) -> None:
    """Wait until Core shows the export total the add-on holds (its last read published): the
    recorder has then queued that state ahead of any compile asked for after it."""

    async def shown() -> bool:
        async with session.get(f"{ha.api_url}/states/{EXPORT}", headers=ha.headers) as response:
            return response.status == 200 and (await response.json())["state"] == f"{total:.3f}"

    await eventually_async(shown, PUBLISH_WITHIN, f"{EXPORT} at {total:.3f} in Core")


async def compile_period(ws: WebSocketConnection, start: float) -> None:
    """Have the recorder compile the 5-minute period that begins at `start` (the test hook)."""
    await ws.send_command(
        {
            "type": "call_service",
            "domain": HOOK,
            "service": "compile",
            "service_data": {"start": iso(start)},
        }
    )


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


@dataclass
class EnergyRun:
    """What one Core answered, and the add-on's own totals, over two compiles."""

    saved: dict[str, Any]  # energy/save_prefs
    prefs: dict[str, Any]  # energy/get_prefs after it
    before: dict[str, Any]  # energy/validate before the first compile
    after: dict[str, Any]  # ... and after it
    recorder_issues: dict[str, Any]  # recorder/validate_statistics after it
    first_rows: list[Any]  # the export's 5-minute rows up to the end of the first period
    second_rows: list[Any]  # ... up to the end of the second
    reads: list[tuple[float, float]]  # (time, the add-on's export total) after each read
    first_compiled: float  # when each compile was asked for
    second_compiled: float
    first_boundary: float  # the end of the first period (the start of the second)


async def read_and_compile(
    ha: HomeAssistant,
    session: aiohttp.ClientSession,
    ws: WebSocketConnection,
    runtime: Runtime,
    connected_at: float,
) -> EnergyRun:
    """With the add-on connected: reads, preferences, validations, and the two compiles."""
    reads: list[tuple[float, float]] = []
    first_start = math.floor(connected_at / PERIOD) * PERIOD
    first_boundary = first_start + PERIOD
    await read(runtime, reads, FIRST_READS)
    saved = await ws.send_command({"type": "energy/save_prefs", **PREFERENCES})
    prefs = await ws.send_command({"type": "energy/get_prefs"})
    before = await ws.send_command({"type": "energy/validate"})
    await published(ha, session, reads[-1][1])
    first_compiled = time.time()
    await compile_period(ws, first_start)
    first_rows = await short_term_rows(ws, first_start - PERIOD, first_boundary)
    after = await ws.send_command({"type": "energy/validate"})
    recorder_issues = await ws.send_command({"type": "recorder/validate_statistics"})
    await read(runtime, reads, SECOND_READS)
    await published(ha, session, reads[-1][1])
    second_compiled = time.time()
    await compile_period(ws, first_boundary)
    second_rows = await short_term_rows(ws, first_start - PERIOD, first_boundary + PERIOD)
    return EnergyRun(
        saved, prefs, before, after, recorder_issues, first_rows, second_rows, reads,
        first_compiled, second_compiled, first_boundary,
    )  # fmt: skip


async def test_energy_dashboard_accepts_the_sensors_and_the_statistics_match_the_addon(
    home_assistant_factory: Callable[[], HomeAssistant],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    simulator = await start_simulator()
    try:
        async with (
            energy_home_assistant(home_assistant_factory, monkeypatch) as ha,
            aiohttp.ClientSession() as session,
            fake_supervisor_for(ha) as supervisor,
        ):
            endpoint = Endpoint(f"{ha.url}/api", ha.websocket_url, ha.token, "test")
            ws = await WebSocketConnection.open(session, endpoint)
            try:
                await clear_of_the_boundary()
                runtime = make_runtime(simulator, tmp_path / "data")
                async with running_addon(runtime, supervisor) as addon:
                    connected_at = time.time()
                    await connected(addon)  # every sensor published, the energy ones at 0.000
                    run = await read_and_compile(ha, session, ws, runtime, connected_at)
            finally:
                await ws.close()
    finally:
        await simulator.stop()
    check(run)


@asynccontextmanager
async def fake_supervisor_for(ha: HomeAssistant) -> AsyncIterator[TestServer]:
    """The FAKE Supervisor in front of `ha`, closed afterwards."""
    supervisor = TestServer(create_fake_supervisor(ha.url, ha.token))
    await supervisor.start_server()
    try:
        yield supervisor
    finally:
        await supervisor.close()


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
    at_first = total_before(run.reads, run.first_compiled)
    changes = [row["change"] for row in run.first_rows]
    assert changes == [pytest.approx(round(at_first, 3))], run.first_rows
    # The second period, as the recorder sums it and as the add-on counted between the compiles.
    assert [row["end"] for row in run.second_rows] == [
        run.first_boundary * 1000,
        (run.first_boundary + PERIOD) * 1000,
    ], run.second_rows
    at_second = total_before(run.reads, run.second_compiled)
    addon_delta = at_second - at_first
    assert addon_delta > 0.01, run.reads  # about 31 kW for the reads' seconds: 8.6 Wh a second
    during = run.second_rows[1]["change"]
    # The only difference is the 3 decimals the sensors are published with (0.0005 each end).
    assert during == pytest.approx(addon_delta, abs=0.001), (run.second_rows, addon_delta)
    published_delta = round(at_second, 3) - round(at_first, 3)
    assert during == pytest.approx(published_delta, abs=1e-9), run.second_rows
    assert run.second_rows[1]["sum"] == pytest.approx(round(at_second, 3), abs=1e-9)
