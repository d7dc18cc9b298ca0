"""Measures the meter check: the time from the start of a 2 kW overshoot to the binary sensor's
"on" (the real runtime against the simulator over sockets), the false overshoots over a
simulated day at accelerated time (±3 % regulation hover, watchdog resets, price-policy
switches with the controller settling), and the error of the kWh over the limit against the
exact integral of the simulated excess at a 5 s poll.

Goals: latency ≤ overshoot_seconds + one scan_interval; 0 false overshoots; kWh error ≤ 2 %.

    .venv/bin/python scripts/bench_overshoot.py [--runs 3] [--scan 5] [--seconds 10]
                                                [--day-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sec1000.metering.energy import EnergyMeter, Sample
from sec1000.metering.overshoot import threshold_kw
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

MARGIN = 0.2
DAY = 86_400
POLL = 5.0


async def latency_once(scan: int, seconds: int) -> float:
    """Seconds from the fault switched on to the binary sensor's state "on"."""
    with tempfile.TemporaryDirectory() as tmp:
        async with SimulatorServer() as simulator:
            simulator.device.profile = lambda _t: (9_000.0, 500.0)  # the limiter curtails
            options = Options.from_mapping(
                {
                    "host": "127.0.0.1",
                    "port": simulator.port,
                    "request_gap_ms": 20,
                    "scan_interval": scan,
                    "overshoot_seconds": seconds,
                    "overshoot_margin_kw": MARGIN,
                }
            )
            runtime = Runtime(options, Path(tmp))
            await runtime.ops.set_export_limit(3, Origin("bench"))
            await runtime.start()
            while runtime.state.telemetry is None:
                await asyncio.sleep(0.05)
            await asyncio.sleep(scan * 0.37)  # start the overshoot between two reads
            started = time.monotonic()
            simulator.set_fault("overshoot")
            while not runtime.state.overshoot.get("on"):
                await asyncio.sleep(0.02)
            latency = time.monotonic() - started
            await runtime.stop()
            return latency


class Plant:
    """A day of PV and load, a limiter that settles towards its limit (8 s time constant) with
    ±3 % hover, the price policy switching export off and on, and a watchdog reset every two
    hours (the mode off for 5 s)."""

    def __init__(self) -> None:
        self.export = 0.0

    @staticmethod
    def limit_at(t: float) -> float:
        hour = t / 3600
        return 0.0 if 11 <= hour < 13 or 15 <= hour < 15.5 else 8.0  # the policy's off blocks

    @staticmethod
    def resetting(t: float) -> bool:
        return t % 7200 < 5

    def step(self, t: float, dt: float) -> float:
        hour = t / 3600
        pv = max(0.0, 10 * math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
        load = 0.6 + 0.4 * math.sin(t / 900) ** 2
        free = pv - load
        limit = self.limit_at(t)
        target = free if self.resetting(t) else min(free, limit)
        if target < self.export:  # curtailing takes a few seconds to settle
            self.export = target + (self.export - target) * math.exp(-dt / 8)
        else:
            self.export = target
        hover = 0.03 * limit * math.sin(t / 37) if self.export >= limit - 0.01 else 0.0
        return self.export + hover


def false_overshoots(seconds: int) -> int:
    """Overshoots found over the day (there is none: settling, hover and resets only)."""
    clock = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        meter = EnergyMeter(
            Path(tmp), lambda: POLL, clock=lambda: clock[0], overshoot=lambda: (MARGIN, seconds)
        )
        plant, found = Plant(), 0
        for n in range(int(DAY / POLL)):
            t = n * POLL
            clock[0] = t
            export = plant.step(t, POLL)
            values = {"meters_power": export, "inverters_power": 0.0, "load_power": 0.0}
            by_value = not plant.resetting(t)
            sample = Sample.of(t, values, plant.limit_at(t), True, by_value)
            found += meter.add(sample).started is not None
        return found


def kwh_error(seconds: int) -> tuple[float, float]:
    """kWh over the limit counted at a 5 s poll, and the exact integral, for 30 minutes of an
    uncontrolled inverter adding 2 ± 0.5 kW above a 3 kW limit."""
    limit, start, length = 3.0, 600.0, 1800.0
    line = threshold_kw(limit, MARGIN)

    def export(t: float) -> float:
        inside = start <= t < start + length
        return limit + (2 + 0.5 * math.sin(2 * math.pi * t / 600) if inside else -0.5)

    # ∫ (export - line) dt over the overshoot, in closed form: the sine's periods cancel
    exact = (limit + 2 - line) * length / 3600
    clock = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        meter = EnergyMeter(
            Path(tmp), lambda: POLL, clock=lambda: clock[0], overshoot=lambda: (MARGIN, seconds)
        )
        counted = 0.0
        for n in range(int(3600 / POLL)):
            t = n * POLL
            clock[0] = t
            values = {"meters_power": export(t), "inverters_power": 0.0, "load_power": 0.0}
            counted += meter.add(Sample.of(t, values, limit, True, True)).kwh_over
    return counted, exact


async def run(args: argparse.Namespace) -> int:
    latencies = [await latency_once(args.scan, args.seconds) for _ in range(args.runs)]
    goal = args.seconds + args.scan
    worst = max(latencies)
    print(
        f"detection latency (overshoot_seconds {args.seconds}, scan {args.scan} s, "
        f"{args.runs} runs): median {statistics.median(latencies):.1f} s, max {worst:.1f} s "
        f"(goal ≤ {goal} s) {'ok' if worst <= goal else 'MISSED'}"
    )
    false = false_overshoots(args.day_seconds)
    print(
        f"false overshoots over a simulated day (overshoot_seconds {args.day_seconds}, ±3 % "
        f"hover, 12 resets, 2 policy off blocks, 8 s settling): {false} "
        f"{'ok' if false == 0 else 'MISSED'}"
    )
    counted, exact = kwh_error(args.seconds)
    error = abs(counted - exact) / exact * 100
    print(
        f"kWh over the limit at a 5 s poll: {counted:.4f} kWh, exact {exact:.4f} kWh, "
        f"error {error:.2f} % (goal ≤ 2 %) {'ok' if error <= 2 else 'MISSED'}"
    )
    return 0 if worst <= goal and false == 0 and error <= 2 else 1


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="latency runs (default 3)")
    parser.add_argument("--scan", type=int, default=5, help="scan_interval, s (default 5)")
    parser.add_argument(
        "--seconds", type=int, default=10, help="overshoot_seconds (default 10, the minimum)"
    )
    parser.add_argument(
        "--day-seconds",
        type=int,
        default=60,
        help="overshoot_seconds for the simulated day (default 60, the option's default)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
