"""Benchmark the device link: its own overhead per exchange, and export_enable against the gap floor.

Runs the simulator in a separate process on loopback, so the figures include real sockets.
Goals (issue 2): overhead <= 2 ms p99; export_enable <= 1.05 x (packets x gap).
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

from sec1000.link import DeviceLink, Session
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.protocol import TELEMETRY_DATA_LENGTH, Command, read_telemetry_request
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
    link = DeviceLink("127.0.0.1", port, gap=0.0, timeout=5)
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

    async def read(session: Session) -> None:
        await session.exchange(request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH)

    link_total: list[float] = []
    raw: list[float] = []
    for _ in range(20):  # warm-up
        await link.run(read)
        await raw_exchange(port, request)
    in_socket.clear()
    for _ in range(rounds):
        started = time.perf_counter()
        await link.run(read)
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
    floor = 4 * gap
    print(
        f"export_enable (4 packets, gap {gap:g} s): median {statistics.median(times):.3f} s, "
        f"max {max(times):.3f} s over {runs} runs"
    )
    print(
        f"floor (packets x gap):          {floor:.3f} s  -> ratio {max(times) / floor:.3f} (goal <= 1.05)"
    )
    print(
        f"strict floor (3 gaps between 4 packets): {3 * gap:.3f} s -> ratio {max(times) / (3 * gap):.3f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
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
    finally:
        simulator.terminate()
        await simulator.wait()


if __name__ == "__main__":
    asyncio.run(main())
