"""Benchmark the Home Assistant bridge against a real Home Assistant Core (started here).

Over N runs prints p50/p99 of:
- a helper press (WebSocket call_service) until the first byte reaches the simulator;
- a telemetry read until Home Assistant's state changes (state_changed event).
The device gap is set to 0, so it is not counted. Goal (issue 5): each <= 50 ms p99.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sec1000.ha import Endpoint
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.websocket import WebSocketConnection
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from tests.ha_harness import HomeAssistant, install


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


async def measure(ha: HomeAssistant, runs: int) -> None:
    simulator = await SimulatorServer().start()
    options = Options.from_mapping(
        {"host": "127.0.0.1", "port": simulator.port, "request_gap_ms": 0}
    )
    endpoint = Endpoint(f"{ha.url}/api", f"{ha.url}/api/websocket", ha.token, "HA_URL")
    async with aiohttp.ClientSession() as session:
        runtime = Runtime(options, Path(tempfile.mkdtemp()))
        adapter = HomeAssistantAdapter(runtime, endpoint, session)
        adapter.start()
        while not adapter.client.connected:
            await asyncio.sleep(0.05)
        user = await WebSocketConnection.open(session, endpoint)
        changed: asyncio.Queue[float] = asyncio.Queue()

        def on_state(event: dict[str, Any]) -> None:
            if event["data"]["entity_id"] == "sensor.sec1000_load_power":
                changed.put_nowait(time.monotonic())

        await user.subscribe({"type": "subscribe_events", "event_type": "state_changed"}, on_state)
        await runtime.ops.get_telemetry_data()
        await asyncio.sleep(0.5)
        while not changed.empty():
            changed.get_nowait()

        press: list[float] = []
        for _ in range(runs):
            before = len(simulator.exchanges)
            started = time.monotonic()
            await user.send_command(
                {
                    "type": "call_service",
                    "domain": "input_button",
                    "service": "press",
                    "service_data": {"entity_id": "input_button.sec1000_get_export_limit"},
                }
            )
            while len(simulator.exchanges) == before:
                await asyncio.sleep(0.0005)
            press.append(simulator.exchanges[before].accepted - started)
            await asyncio.sleep(0.05)

        telemetry: list[float] = []
        while len(telemetry) < runs:
            previous = runtime.state.telemetry
            started = time.monotonic()
            await runtime.ops.get_telemetry_data()
            if (
                previous
                and runtime.state.telemetry
                and previous["load_power"] == runtime.state.telemetry["load_power"]
            ):
                continue  # same value: Home Assistant fires no state_changed
            telemetry.append(await asyncio.wait_for(changed.get(), 5) - started)
            await asyncio.sleep(0.02)

        print(f"runs: {runs} (Home Assistant Core 2025.4.4 on loopback, direct HA_URL, gap 0)")
        print(
            f"helper press -> first byte at simulator:  p50 {pct(press, 0.5):6.1f} ms  p99 {pct(press, 0.99):6.1f} ms  (goal p99 <= 50 ms)"
        )
        print(
            f"telemetry read -> HA state_changed:       p50 {pct(telemetry, 0.5):6.1f} ms  p99 {pct(telemetry, 0.99):6.1f} ms  (goal p99 <= 50 ms)"
        )
        await user.close()
        await adapter.stop()
    await simulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    ha = HomeAssistant(install(), Path(tempfile.mkdtemp(prefix="sec1000-bench-ha-")))
    ha.start()
    try:
        ha.onboard()
        asyncio.run(measure(ha, args.runs))
    finally:
        ha.stop()


if __name__ == "__main__":
    main()
