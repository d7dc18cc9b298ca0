"""Measures the History page's day: the memory a full day of reads keeps, the cost of one read
added to it, the time to take the audit trail's writes as marks, and the time to draw the day
chart (one live update of the History page) with a day of minutes and those writes.

Goals: ≤ 1 MB per controller; a read adds ≤ 50 µs; a draw ≤ 50 ms (well inside the panel's
1 s from a read to the screen).

    .venv/bin/python scripts/bench_day_chart.py [--scan 1] [--writes 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sec1000.limiter.audit import AuditLog
from sec1000.protocol import Feedback
from sec1000.state import DAY_SECONDS, StateModel
from sec1000.web.chart import build_day_chart

START = 1_800_000_000.0
OK = int(Feedback.OK)


def main(args: argparse.Namespace) -> int:
    reads = int(DAY_SECONDS / args.scan)
    clock = [START]

    def a_day(state: StateModel) -> None:
        for n in range(reads):
            clock[0] = START + n * args.scan
            values = {"meters_power": (n % 600) / 100, "inverters_power": 5.0, "load_power": 2.0}
            state.telemetry_read(values)

    began = time.perf_counter()
    a_day(StateModel(clock=lambda: clock[0]))
    per_read_us = (time.perf_counter() - began) / reads * 1e6
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    state = StateModel(clock=lambda: clock[0])
    a_day(state)
    kept = sum(
        stat.size_diff
        for stat in tracemalloc.take_snapshot().compare_to(before, "filename")
        if stat.size_diff > 0
    )
    tracemalloc.stop()
    now = clock[0]
    audit = AuditLog(Path(tempfile.mkdtemp()))
    for i in reversed(range(args.writes)):
        at = dt.datetime.fromtimestamp(now - i * DAY_SECONDS / args.writes).astimezone()
        audit.every.append(
            {"at": at.isoformat(timespec="seconds"), "origin": "policy", "verified": True,
             "command": "export_disable", "feedback": OK, "message": "export limit set"}
        )  # fmt: skip
    began = time.perf_counter()
    writes = audit.writes_since(now - DAY_SECONDS)
    parse_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    audit.writes_since(now - DAY_SECONDS)
    cached_ms = (time.perf_counter() - began) * 1000
    draws = []
    for _ in range(args.runs):
        began = time.perf_counter()
        chart = build_day_chart(state.day.points(), writes, now, args.scan)
        draws.append((time.perf_counter() - began) * 1000)
    print(f"day of reads every {args.scan:g} s: {reads} reads, {len(state.day)} minutes kept")
    print(f"memory kept by the hour and the day: {kept / 1024:.0f} KB (goal ≤ 1024 KB)")
    print(f"one read (the state model's whole telemetry_read): {per_read_us:.1f} µs (goal ≤ 50 µs)")
    print(
        f"the audit trail's {len(writes)} writes as marks: {parse_ms:.1f} ms the first time, "
        f"{cached_ms:.2f} ms again (parsed once per new entry)"
    )
    print(
        f"day chart with {args.writes} writes ({len(chart.markers)} marks, {chart.points} points): "
        f"min {min(draws):.1f} / median {statistics.median(draws):.1f} / max {max(draws):.1f} ms "
        "(goal ≤ 50 ms)"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", type=float, default=1.0, help="seconds between reads (default 1)")
    parser.add_argument("--writes", type=int, default=2000, help="audit writes in the day")
    parser.add_argument("--runs", type=int, default=5, help="draws timed (default 5)")
    sys.exit(main(parser.parse_args()))
