"""Benchmark the device link: its own overhead per exchange, export_enable (with its read-back)
against the gap floor, and the watchdog window at the default gap.

Runs the simulator in a separate process on loopback, so the figures include real sockets.
Goals: overhead <= 2 ms p99; export_enable <= 1.05 x (packets x gap); the limiter off for at
most 5 s + one gap (from the packet that turns the active mode off to the one that turns it on).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sec1000.device.link import DeviceLink, LinkSettings
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.protocol import (
    TELEMETRY_DATA_LENGTH,
    Command,
    Switch,
    mode_switch_request,
    read_telemetry_request,
)
from sec1000.runtime import Runtime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def raw_exchange(port: int, request: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    header = await reader.readexactly(7)
    await reader.readexactly(int.from_bytes(header[5:7], "big"))
    writer.close()
    await writer.wait_closed()


async def overhead(port: int, rounds: int) -> None:
    link = DeviceLink(LinkSettings("127.0.0.1", port, 0.0, 5))
    request = read_telemetry_request()
    in_socket: list[float] = []
    original = link._send

    async def timed_send(data: bytes, host: str, port: int) -> bytes:
        started = time.perf_counter()
        try:
            return await original(data, host, port)
        finally:
            in_socket.append(time.perf_counter() - started)

    link._send = timed_send  # type: ignore[method-assign]

    async def read() -> None:
        async with link.session() as session:
            await session.exchange(request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH)

    link_total: list[float] = []
    raw: list[float] = []
    for _ in range(20):  # warm-up
        await read()
        await raw_exchange(port, request)
    in_socket.clear()
    for _ in range(rounds):
        started = time.perf_counter()
        await read()
        link_total.append(time.perf_counter() - started)
        started = time.perf_counter()
        await raw_exchange(port, request)
        raw.append(time.perf_counter() - started)
    own = [total - sock for total, sock in zip(link_total, in_socket, strict=True)]
    print(
        f"exchanges measured:             {rounds} (gap 0, telemetry read, simulator in its own process)"
    )
    print(
        f"raw socket exchange:            p50 {percentile(raw, 0.5) * 1e3:7.3f} ms   p99 {percentile(raw, 0.99) * 1e3:7.3f} ms"
    )
    print(
        f"link exchange (total):          p50 {percentile(link_total, 0.5) * 1e3:7.3f} ms   p99 {percentile(link_total, 0.99) * 1e3:7.3f} ms"
    )
    print(
        f"link's own overhead:            p50 {percentile(own, 0.5) * 1e3:7.3f} ms   p99 {percentile(own, 0.99) * 1e3:7.3f} ms   (goal p99 <= 2 ms)"
    )
    print(
        f"link total - raw, per pctl:     p50 {(percentile(link_total, 0.5) - percentile(raw, 0.5)) * 1e3:7.3f} ms   p99 {(percentile(link_total, 0.99) - percentile(raw, 0.99)) * 1e3:7.3f} ms"
    )


async def export_enable(port: int, runs: int) -> None:
    options = Options.from_mapping({"host": "127.0.0.1", "port": port})  # default gap: 1000 ms
    gap = options.request_gap_ms / 1000
    times = []
    with tempfile.TemporaryDirectory() as data:
        runtime = Runtime(options, Path(data))
        for _ in range(runs):
            await asyncio.sleep(gap)  # start each run with the gap already served
            started = time.perf_counter()
            result = await runtime.ops.export_enable(Origin("bench"))
            times.append(time.perf_counter() - started)
            assert result.ok, result.message
    packets = 5  # 0x42, three mode switches, the 0x43 read-back
    floor = packets * gap
    print(
        f"export_enable ({packets} packets with its read-back, gap {gap:g} s): median "
        f"{statistics.median(times):.3f} s, max {max(times):.3f} s over {runs} runs"
    )
    print(
        f"floor (packets x gap):          {floor:.3f} s  -> ratio {max(times) / floor:.3f} (goal <= 1.05)"
    )
    print(
        f"strict floor ({packets - 1} gaps between {packets} packets): {(packets - 1) * gap:.3f} s "
        f"-> ratio {max(times) / ((packets - 1) * gap):.3f}"
    )


async def watchdog_window(port: int, runs: int) -> None:
    """The limiter's off time per reset, from the link's own send times of the two packets."""
    options = Options.from_mapping({"host": "127.0.0.1", "port": port})  # default gap: 1000 ms
    gap = options.request_gap_ms / 1000
    off = mode_switch_request(Command.MODE_VALUE, Switch.OFF).hex(" ")
    on = mode_switch_request(Command.MODE_VALUE, Switch.ON).hex(" ")
    windows, totals = [], []
    with tempfile.TemporaryDirectory() as data:
        runtime = Runtime(options, Path(data))
        runtime.state.settings_read(export_limit_kw=5.0)
        for _ in range(runs):
            runtime.link.health.frames.clear()
            started = time.perf_counter()
            result = await runtime.ops.reset_export_watchdog(Origin("bench"))
            totals.append(time.perf_counter() - started)
            assert result.ok, result.message
            sent = [(at, text) for at, way, text in runtime.link.health.frames if way == "tx"]
            off_at = next(at for at, text in sent if text == off)
            on_at = next(at for at, text in sent if text == on)
            windows.append(on_at - off_at)
    limit = runtime.watchdog.timings.off_window + gap
    print(
        f"watchdog window (active mode off -> on, gap {gap:g} s, {runs} resets): "
        f"min {min(windows):.3f} s, median {statistics.median(windows):.3f} s, "
        f"max {max(windows):.3f} s (goal <= {limit:g} s)"
    )
    print(f"whole reset, to its confirmed read-back: median {statistics.median(totals):.3f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window-runs", type=int, default=20)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    simulator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "simulate",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert simulator.stdout is not None
        await simulator.stdout.readline()
        await overhead(port, args.rounds)
        await export_enable(port, args.runs)
        if args.window_runs:
            await watchdog_window(port, args.window_runs)
    finally:
        simulator.terminate()
        await simulator.wait()


if __name__ == "__main__":
    asyncio.run(main())
