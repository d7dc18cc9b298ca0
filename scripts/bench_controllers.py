"""Several controllers side by side: whether one slows, blocks or fails another.

Two simulators, each in its own process, one plant of two controllers (`main` and `barn`), the
default 1 s gap. Prints three figures against the goals of issue 18:
1. `export_enable` on both controllers at once, against one alone (goal: <= 1.1 x), and the
   shortest gap each controller's link kept (goal: >= its own gap);
2. command latency on `main` while `barn` is silent (its timeouts running, commands queued on
   it), against `main` on its own (goal: within 10 %);
3. the watchdog window of each controller while the other is busy with commands (goal:
   <= 5 s + one gap);
4. what one more controller costs in memory (Python's own allocations, after a read each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sec1000.operations import CommandResult, Origin
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.protocol import Command, Switch, mode_switch_request
from sec1000.runtime import Runtime

BENCH = Origin("bench")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def simulator(*faults: str) -> AsyncIterator[int]:
    """`sec1000 simulate` in a process of its own; yields its port."""
    port = free_port()
    args = [arg for fault in faults for arg in ("--fault", fault)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "simulate",
        "--port",
        str(port),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        await process.stdout.readline()
        yield port
    finally:
        process.terminate()
        await process.wait()


def plant_of(ports: list[int], gap_ms: int, data: Path) -> Plant:
    """A plant: `main` on the first port, `barn` on the second (if any), `barn_2`…"""
    names = ["barn", *(f"barn_{n}" for n in range(2, len(ports)))]
    items = [
        {"name": name, "host": "127.0.0.1", "port": port}
        for name, port in zip(names, ports[1:], strict=False)
    ]
    options = Options.from_mapping(
        {
            "host": "127.0.0.1",
            "port": ports[0],
            "request_gap_ms": gap_ms,
            "scan_interval": 5,
            "controllers": items,
        }
    )
    return Plant(options, data)


async def timed(call: Callable[[], Awaitable[CommandResult]]) -> float:
    started = time.perf_counter()
    result = await call()
    elapsed = time.perf_counter() - started
    assert result.ok, result.message
    return elapsed


def shortest_gap(runtime: Runtime) -> float:
    """The shortest time from an answer to the next request on this controller's link."""
    gaps, answered = [], None
    for at, way, _ in runtime.link.health.frames:
        if way == "rx":
            answered = at
        elif answered is not None:
            gaps.append(at - answered)
            answered = None
    return min(gaps) if gaps else float("nan")


def figures(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s, max {max(times):.3f} s"


async def both_at_once(gap_ms: int, runs: int) -> None:
    async with simulator() as one, simulator() as two, plant_in([one, two], gap_ms) as plant:
        main, barn = plant.first, plant.get("barn")
        solo, pair = [], []
        for _ in range(runs):
            await asyncio.gather(main.ops.export_disable(BENCH), barn.ops.export_disable(BENCH))
            solo.append(await timed(lambda: main.ops.export_enable(BENCH)))
            await main.ops.export_disable(BENCH)
            started = time.perf_counter()
            results = await asyncio.gather(
                main.ops.export_enable(BENCH), barn.ops.export_enable(BENCH)
            )
            pair.append(time.perf_counter() - started)
            assert all(result.ok for result in results)
        ratio = statistics.median(pair) / statistics.median(solo)
        print(f"1. export_enable, one controller:      {figures(solo)} over {runs} runs")
        print(f"   export_enable, both at once:         {figures(pair)}")
        print(f"   ratio of the medians {ratio:.3f} (goal <= 1.1)")
        print(
            f"   shortest gap kept: main {shortest_gap(main):.3f} s, barn "
            f"{shortest_gap(barn):.3f} s (goal >= {gap_ms / 1000:g} s each)"
        )


@contextlib.asynccontextmanager
async def plant_in(ports: list[int], gap_ms: int) -> AsyncIterator[Plant]:
    """A started plant on these simulators, in a temporary data folder."""
    with tempfile.TemporaryDirectory() as data:
        plant = plant_of(ports, gap_ms, Path(data))
        await plant.start()
        await asyncio.wait_for(plant.wait_ready(), 30)
        try:
            yield plant
        finally:
            await plant.stop()


async def latencies(runtime: Runtime, runs: int) -> list[float]:
    """export_disable then export_enable, each timed, `runs` times."""
    times = []
    for _ in range(runs):
        times.append(await timed(lambda: runtime.ops.export_disable(BENCH)))
        times.append(await timed(lambda: runtime.ops.export_enable(BENCH)))
    return times


async def busy(runtime: Runtime, stop: asyncio.Event) -> int:
    """Commands on one controller, one after the other, until stopped; how many were sent."""
    sent = 0
    while not stop.is_set():
        write = runtime.ops.export_disable if sent % 2 else runtime.ops.export_enable
        await write(BENCH)
        sent += 1
    return sent


async def beside_a_silent_one(gap_ms: int, runs: int) -> None:
    async with simulator() as one, plant_in([one], gap_ms) as plant:
        solo = await latencies(plant.first, runs)
    async with (
        simulator() as one,
        simulator("silence") as two,
        plant_in([one, two], gap_ms) as plant,
    ):
        stop = asyncio.Event()
        silent = asyncio.create_task(busy(plant.get("barn"), stop))
        beside = await latencies(plant.first, runs)
        stop.set()
        failed = await silent
        counters = plant.get("barn").link.health.counters
        timeouts = sum(count for name, count in counters.items() if name != "ok")
    change = (statistics.median(beside) / statistics.median(solo) - 1) * 100
    print(f"2. main's commands, on its own:         {figures(solo)} over {2 * runs} commands")
    print(f"   main's commands, barn silent:        {figures(beside)}")
    print(
        f"   change of the median {change:+.1f} % (goal within 10 %); barn meanwhile: "
        f"{failed} commands tried, {timeouts} exchanges failed"
    )


async def windows_while_busy(gap_ms: int, runs: int) -> None:
    off = mode_switch_request(Command.MODE_VALUE, Switch.OFF).hex(" ")
    on = mode_switch_request(Command.MODE_VALUE, Switch.ON).hex(" ")
    async with simulator() as one, simulator() as two, plant_in([one, two], gap_ms) as plant:
        for name, other in (("sec1000", "barn"), ("barn", "sec1000")):
            runtime, windows = plant.get(name), []
            stop = asyncio.Event()
            other_task = asyncio.create_task(busy(plant.get(other), stop))
            for _ in range(runs):
                runtime.link.health.frames.clear()
                result = await runtime.ops.reset_export_watchdog(BENCH)
                assert result.ok, result.message
                sent = [(at, text) for at, way, text in runtime.link.health.frames if way == "tx"]
                off_at = next(at for at, text in sent if text == off)
                on_at = next(at for at, text in sent if text == on)
                windows.append(on_at - off_at)
            stop.set()
            commands = await other_task
            limit = runtime.watchdog.timings.off_window + gap_ms / 1000
            print(
                f"3. watchdog window of {name:7}: {figures(windows)} over {runs} resets, while "
                f"{other} sent {commands} commands (goal <= {limit:g} s)"
            )


async def memory_per_controller(gap_ms: int, runs: int) -> None:
    """Allocations of a started plant of 1 and of 5 controllers, each read once."""
    sizes = {}
    for count in (1, 5):
        async with contextlib.AsyncExitStack() as stack:
            ports = [await stack.enter_async_context(simulator()) for _ in range(count)]
            tracemalloc.start()
            async with plant_in(ports, gap_ms) as plant:
                for runtime in plant.runtimes.values():
                    assert (await runtime.ops.get_telemetry_data(BENCH)).ok
                sizes[count] = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
    each = (sizes[5] - sizes[1]) / 4
    print(
        f"4. memory of a plant: 1 controller {sizes[1] / 1024:.0f} KiB, 5 controllers "
        f"{sizes[5] / 1024:.0f} KiB: {each / 1024:.0f} KiB per additional controller"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gap-ms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the silent controller's timeouts are expected
    steps: list[Callable[[int, int], Awaitable[Any]]] = [
        both_at_once,
        beside_a_silent_one,
        windows_while_busy,
        memory_per_controller,
    ]
    for step in steps:
        await step(args.gap_ms, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
