"""Print each energy counter after a simulated day polled every 5 s and 30 s, next to the exact integral of the known power profile, with the error in % (goals: <= 1 % at 5 s, <= 3 % at 30 s)."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sec1000.device.link import DeviceLink, LinkSettings
from sec1000.metering.energy import (
    AT_LIMIT_MARGIN_KW,
    AT_LIMIT_MARGIN_SHARE,
    COUNTERS,
    TIME_AT_LIMIT,
    EnergyMeter,
    Sample,
)
from sec1000.protocol import (
    TELEMETRY_DATA_LENGTH,
    Command,
    decode_telemetry,
    read_telemetry_request,
)
from sec1000.simulator.device import SimulatedDevice
from sec1000.simulator.server import SimulatorServer

DAY = 86_400.0
START = dt.datetime(2026, 6, 21, 0, 0, tzinfo=dt.UTC).timestamp()  # a local midnight (UTC)
GOALS = {5.0: 1.0, 30.0: 3.0}  # poll interval (s) -> the largest error allowed (%)
RUN_TIMEOUT = 300.0  # seconds of wall time for one simulated day at most


def hms(hours: float, minutes: float = 0.0, seconds: float = 0.0) -> float:
    """Seconds since midnight."""
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class Cloud:
    """The sun dimmed by `depth` (0-1) from `start` to `end`, with linear edges of `edge` s."""

    start: float
    end: float
    depth: float
    edge: float

    def shade(self, t: float) -> float:
        if t <= self.start - self.edge or t >= self.end + self.edge:
            return 0.0
        if t < self.start:
            return self.depth * (t - self.start + self.edge) / self.edge
        if t > self.end:
            return self.depth * (self.end + self.edge - t) / self.edge
        return self.depth


@dataclass
class Profile:
    """A clear-sky PV curve with clouds, a base load and one load step (W, by seconds since 0:00)."""

    peak_w: float
    clouds: tuple[Cloud, ...]
    base_load_w: float
    step_w: float
    step_on: float
    step_off: float
    starts: list[float] = field(init=False, repr=False)  # where each cloud's shade begins

    def __post_init__(self) -> None:
        self.starts = [cloud.start - cloud.edge for cloud in self.clouds]

    def clear_sky(self, t: float) -> float:
        hour = t / 3600
        if not 6.0 < hour < 20.0:
            return 0.0
        return self.peak_w * math.sin(math.pi * (hour - 6.0) / 14.0) ** 1.5

    def __call__(self, t: float) -> tuple[float, float]:
        """(pv W, load W) at `t` seconds since midnight."""
        pv = self.clear_sky(t)
        if pv > 0:
            index = bisect.bisect_right(self.starts, t)
            shade = 0.0
            for cloud in self.clouds[max(0, index - 2) : index]:  # clouds never overlap
                shade = max(shade, cloud.shade(t))
            pv *= 1.0 - shade
        load = self.base_load_w + (self.step_w if self.step_on <= t < self.step_off else 0.0)
        return pv, load


def make_profile(seed: int) -> Profile:
    """The bench's day: a few passing clouds, a broken-cloud spell at noon, an overcast hour."""
    rng = random.Random(seed)
    clouds: list[Cloud] = []

    def spell(
        begin: float, end: float, gaps: tuple[float, float], lengths: tuple[float, float]
    ) -> None:
        t = begin
        while True:
            t += rng.uniform(*gaps)
            length = rng.uniform(*lengths)
            edge = rng.uniform(10.0, 60.0)
            if t + length + edge >= end:
                return
            clouds.append(Cloud(t + edge, t + edge + length, rng.uniform(0.3, 0.85), edge))
            t += length + 2 * edge

    spell(hms(8), hms(11), (600.0, 1800.0), (60.0, 300.0))  # a few passing clouds
    spell(hms(11, 30), hms(14), (45.0, 300.0), (30.0, 480.0))  # broken clouds around noon
    clouds.append(Cloud(hms(15, 10), hms(16, 5), 0.65, 240.0))  # an overcast hour
    spell(hms(16, 30), hms(19, 30), (300.0, 1500.0), (60.0, 600.0))
    return Profile(
        peak_w=8_500.0,
        clouds=tuple(clouds),
        base_load_w=480.0,
        step_w=2_600.0,  # an oven and a heat pump from 12:20 to 18:40, off the poll grid
        step_on=hms(12, 20, 2.7),
        step_off=hms(18, 40, 11.3),
    )


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exact(
    profile: Callable[[float], tuple[float, float]], limit_w: float, step: float
) -> dict[str, float]:
    """The integrals of the profile over the day (trapezoids of `step` s), capped as the limiter does."""
    limit_kw = limit_w / 1000
    margin = max(AT_LIMIT_MARGIN_KW, AT_LIMIT_MARGIN_SHARE * limit_kw) * 1000
    sums = dict.fromkeys((*COUNTERS, TIME_AT_LIMIT), 0.0)
    count = round(DAY / step)
    for n in range(count + 1):
        pv, load = profile(n * step)
        inverters = min(pv, load + limit_w)  # the limiter curtails the plant (mode active)
        meters = inverters - load
        weight = 0.5 if n in (0, count) else 1.0
        sums["grid_export"] += weight * max(0.0, meters)
        sums["grid_import"] += weight * max(0.0, -meters)
        sums["pv"] += weight * inverters
        sums["load"] += weight * load
        sums[TIME_AT_LIMIT] += weight * (meters >= limit_w - margin)
    out = {key: sums[key] * step / 3600 / 1000 for key in COUNTERS}  # W·s -> kWh
    out[TIME_AT_LIMIT] = sums[TIME_AT_LIMIT] * step / 60
    return out


async def simulate(
    profile: Callable[[float], tuple[float, float]], limit_w: int, poll: float
) -> tuple[dict[str, float], int, float]:
    """The add-on's counters after one simulated day polled every `poll` s through the real link."""
    clock = FakeClock(START)
    device = SimulatedDevice(clock=clock, profile=profile, export_limit_w=limit_w)
    limit_kw = limit_w / 1000
    request = read_telemetry_request()
    started = time.perf_counter()
    reads = 0
    with tempfile.TemporaryDirectory() as data:
        meter = EnergyMeter(Path(data), lambda: poll, clock=clock, tz=dt.UTC)
        async with SimulatorServer(device=device) as server, asyncio.timeout(RUN_TIMEOUT):
            link = DeviceLink(LinkSettings("127.0.0.1", server.port, 0.0, 5.0))
            for n in range(round(DAY / poll) + 1):
                clock.now = START + n * poll
                async with link.session() as session:
                    frame = await session.exchange(
                        request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
                    )
                meter.add(Sample.of(clock.now, decode_telemetry(frame).values(), limit_kw, True))
                reads += 1
        counted = dict(meter.book.totals)
        counted[TIME_AT_LIMIT] = meter.book.day(dt.datetime.fromtimestamp(START, dt.UTC).date())[
            TIME_AT_LIMIT
        ]
        assert meter.book.gaps == 0, "a gap in a bench without faults"
    return counted, reads, time.perf_counter() - started


def error_pct(counted: float, truth: float) -> float:
    return 100 * (counted - truth) / truth if truth else math.inf


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=float, nargs="+", default=[5.0, 30.0], metavar="S")
    parser.add_argument("--export-limit-w", type=int, default=5_000)
    parser.add_argument("--exact-step", type=float, default=0.1, help="seconds (default 0.1)")
    parser.add_argument("--seed", type=int, default=1, help="the clouds' positions (default 1)")
    args = parser.parse_args()

    profile = make_profile(args.seed)
    truth = exact(profile, args.export_limit_w, args.exact_step)
    print(
        f"simulated day: 24 h from 00:00 UTC; clear-sky peak {profile.peak_w / 1000:g} kW with "
        f"{len(profile.clouds)} clouds; load {profile.base_load_w / 1000:g} kW + a "
        f"{profile.step_w / 1000:g} kW step 12:20-18:40; export limit {args.export_limit_w / 1000:g} kW"
    )
    print(f"exact: trapezoids of {args.exact_step:g} s over the profile, same cap, same sign split")
    failed = []
    for poll in args.polls:
        counted, reads, wall = await simulate(profile, args.export_limit_w, poll)
        print(f"\npoll every {poll:g} s: {reads} reads over TCP in {wall:.1f} s of wall time")
        print(f"  {'counter':<16}{'add-on':>12}{'exact':>12}{'error':>10}")
        worst = 0.0
        for key in COUNTERS:
            err = error_pct(counted[key], truth[key])
            worst = max(worst, abs(err))
            print(f"  {key + ' kWh':<16}{counted[key]:>12.3f}{truth[key]:>12.3f}{err:>+9.3f}%")
        err = error_pct(counted[TIME_AT_LIMIT], truth[TIME_AT_LIMIT])
        print(
            f"  {'at limit min':<16}{counted[TIME_AT_LIMIT]:>12.1f}{truth[TIME_AT_LIMIT]:>12.1f}"
            f"{err:>+9.3f}%  (no goal)"
        )
        goal = GOALS.get(poll)
        if goal is not None:
            verdict = "met" if worst <= goal else "FAILED"
            print(f"  worst counter error {worst:.3f} % (goal <= {goal:g} %): {verdict}")
            if worst > goal:
                failed.append(f"{poll:g} s ({worst:.3f} % > {goal:g} %)")
    print("\ngoals met" if not failed else f"\ngoals FAILED at: {', '.join(failed)}")


if __name__ == "__main__":
    asyncio.run(main())
