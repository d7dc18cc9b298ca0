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
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import AsyncIterator, Callable
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
from tests.test_ha_bridge import connected, running_addon

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


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    """The conftest simulator with a known steady plant, below its 45 kW export limit."""
    device = SimulatedDevice(total_capacity_w=50_000, export_limit_w=45_000, profile=plant)
    server = SimulatorServer(device=device)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def runtime(make_options: Callable[..., Options], tmp_path: Path) -> Runtime:
    """The core on that plant (its options match it); counters start at 0 in a fresh data dir."""
    return Runtime(make_options(total_capacity=50.0, max_export_limit=45.0), tmp_path / "data")


@pytest.fixture
async def energy_home_assistant(
    home_assistant_factory: Callable[[], HomeAssistant], monkeypatch: pytest.MonkeyPatch
) -> HomeAssistant:
    """A running Home Assistant of the test's own with the recorder and the energy integration."""
    monkeypatch.setattr(ha_harness, "CONFIGURATION", ha_harness.CONFIGURATION + RECORDER_AND_ENERGY)
    instance = await asyncio.to_thread(home_assistant_factory)
    await instance.async_start()
    return instance


@pytest.fixture
async def ws(energy_home_assistant: HomeAssistant) -> AsyncIterator[WebSocketConnection]:
    """The owner's WebSocket to that Home Assistant."""
    ha = energy_home_assistant
    async with aiohttp.ClientSession() as session:
        endpoint = Endpoint(f"{ha.url}/api", ha.websocket_url, ha.token, "test")
        connection = await WebSocketConnection.open(session, endpoint)
        yield connection
        await connection.close()


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


@pytest.mark.timeout(900)
async def test_energy_dashboard_accepts_the_sensors_and_the_statistics_match_the_addon(
    energy_home_assistant: HomeAssistant,
    ws: WebSocketConnection,
    runtime: Runtime,
    aiohttp_server: Any,
) -> None:
    ha = energy_home_assistant
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    await wait_out_the_compile()
    reads: list[tuple[float, float]] = []
    async with running_addon(runtime, supervisor) as addon:
        await connected(addon)  # every sensor published, the energy ones at 0.000
        first_boundary = (math.floor(time.time() / PERIOD) + 1) * PERIOD
        second_boundary = first_boundary + PERIOD
        reader = asyncio.create_task(keep_reading(runtime, reads))
        try:
            while len(reads) < 3:
                await asyncio.sleep(0.1)
                if reader.done():
                    reader.result()  # a failed read fails the test here

            saved = await ws.send_command({"type": "energy/save_prefs", **PREFERENCES})
            assert saved["energy_sources"] == PREFERENCES["energy_sources"]
            assert (await ws.send_command({"type": "energy/get_prefs"})) == saved

            # Before the first compile the only finding is that no statistics exist yet: the
            # validator looks the ids up in the recorder's statistics metadata, which the first
            # 5-minute compile creates. Unit, device class, state class, state: all accepted.
            before = await ws.send_command({"type": "energy/validate"})
            assert issue_types(before) == [
                [("statistics_not_defined", [EXPORT, IMPORT])],
                [("statistics_not_defined", [PV])],
            ], before
            assert before["device_consumption"] == []

            # The first compile: the statistics exist, the preferences validate clean, and the
            # first row's change (what the Energy dashboard adds up) is what was published.
            rows = await wait_for_compile(ws, first_boundary)
            after = await ws.send_command({"type": "energy/validate"})
            # 2026.x also lists water consumption devices (`device_consumption_water`).
            assert after["energy_sources"] == [[], []], after
            assert all(after[key] == [] for key in after if key.startswith("device_")), after
            recorder_issues = await ws.send_command({"type": "recorder/validate_statistics"})
            assert not {EXPORT, IMPORT, PV} & set(recorder_issues), recorder_issues
            at_first = total_before(reads, first_boundary)
            assert [row["change"] for row in rows] == [pytest.approx(round(at_first, 3))], rows

            # statistic_during_period takes the oldest row's sum as its baseline when no row
            # precedes the period, so it needs one full period after the first compile.
            rows = await wait_for_compile(ws, second_boundary)
        finally:
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader

    during = await ws.send_command(
        {
            "type": "recorder/statistic_during_period",
            "statistic_id": EXPORT,
            "fixed_period": {"start_time": iso(first_boundary), "end_time": iso(second_boundary)},
            "types": ["change"],
        }
    )
    addon_delta = total_before(reads, second_boundary) - at_first
    assert addon_delta > 2.0, reads  # about 31 kW for 5 minutes
    assert during["change"] == pytest.approx(addon_delta, rel=0.01), (during, addon_delta, rows)
    # The only difference is the 3 decimals the sensors are published with.
    published = round(total_before(reads, second_boundary), 3) - round(at_first, 3)
    assert during["change"] == pytest.approx(published, abs=1e-9), (during, rows)
