"""Replays the ways the controller was once left exporting more than wanted, against the
simulator over real sockets at an accelerated gap, and prints for each the seconds the
controller allowed more export than the wanted state, next to the time of one verified write.

Goal: 0 s beyond one verified write in every scenario.

    .venv/bin/python scripts/bench_wrong_export.py [--gap-ms 50] [--window 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sec1000.energy import ENERGY_NAME
from sec1000.limiter.wanted import WANTED_NAME
from sec1000.limiter.watchdog import RestoreRecord, RestoreStore, WatchdogTimings
from sec1000.operations import Origin
from sec1000.options import Options, OptionsError
from sec1000.plant import Plant
from sec1000.protocol import Command, ControlMode, Switch, mode_switch_request
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer

PANEL = Origin("panel", "bench")
POLICY = Origin("policy")
HOME_ASSISTANT = Origin("home_assistant", "automation")
UNLIMITED_W = 10**9  # a deactivated controller limits nothing
MAX_KW = 8.0
TIMINGS = WatchdogTimings(off_window=0.5, settle=0.1)  # the reset's windows, shortened


@dataclass
class Watch:
    """Samples what the controller allows every 5 ms and what is wanted, and adds up the time
    the controller allows more."""

    simulator: SimulatorServer
    wanted_w: int | None = None  # None: not judged yet
    above: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def allowed_w(self) -> int:
        device = self.simulator.device
        return UNLIMITED_W if device.mode is ControlMode.DEACTIVATED else device.export_limit_w

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            if self.wanted_w is not None and self.allowed_w() > self.wanted_w:
                self.above += now - last
            last = now

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.above


@dataclass
class Bench:
    """One scenario's parts: a simulator, a data dir, and the options every run starts from."""

    gap_ms: int
    window: float
    simulator: SimulatorServer
    data: Path

    def options(self, **changes: object) -> Options:
        base = {
            "host": "127.0.0.1",
            "port": self.simulator.port,
            "request_gap_ms": self.gap_ms,
            "request_timeout": 1,
            "max_export_limit": MAX_KW,
            "scan_interval": 1,
        }
        return Options.from_mapping({**base, **changes})

    async def runtime(self, **changes: object) -> Runtime:
        runtime = Runtime(self.options(**changes), self.data, watchdog_timings=TIMINGS)
        await runtime.start()
        await until(lambda: runtime.guard.wanted is not None, 10)
        return runtime


async def until(predicate: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def deactivate(simulator: SimulatorServer) -> None:
    for switch in simulator.device.switches:
        simulator.device.switches[switch] = False


def policy_options() -> dict[str, object]:
    return {"price_policy": True, "price_entity": "sensor.price", "export_on_above": 0.02}


# -- the scenarios: each returns the seconds above the wanted state


async def failed_write_becomes_wanted(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime(policy_min_dwell_minutes=0, **policy_options())
    runtime.policy.price_changed(-0.05, {})
    await until(lambda: runtime.state.export_limit_kw == 0.0, 5)  # off, read back
    bench.simulator.set_fault("silence")
    runtime.policy.price_changed(0.10, {})  # the policy's "on" write times out
    await asyncio.sleep(2.5)
    runtime.policy.price_changed(-0.05, {})  # negative again while the controller is silent
    watch.wanted_w = 0
    bench.simulator.clear_faults()  # the controller answers again
    runtime.guard.wake()  # its next check
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def write_built_before_the_link(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime()
    await runtime.ops.export_enable(PANEL)
    bench.simulator.slow_delay = 0.3
    bench.simulator.set_fault("slow", count=3)
    off = asyncio.create_task(runtime.ops.export_disable(POLICY))
    await until(lambda: bench.simulator.active > 0, 5)
    options = Options.from_mapping({"max_export_limit": 7}, base=runtime.options)
    await runtime.apply_options(options, PANEL)
    await off
    watch.wanted_w = 0
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def policy_trusts_its_memory(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime(drift_action="notify", **policy_options())
    runtime.policy.price_changed(-0.05, {})
    await until(lambda: runtime.state.export_limit_kw == 0.0, 5)  # off, read back
    watch.wanted_w = 0
    bench.simulator.drift(8_000)  # another tool raises the limit at a negative price
    runtime.guard.wake()  # as the next verify_interval would
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def stop_abandons_a_write(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime(export_limit_control_mode="dred")
    bench.simulator.slow_delay = 0.2
    bench.simulator.set_fault("slow", count=6)
    options = Options.from_mapping({"export_limit_control_mode": "value"}, base=runtime.options)
    sent = len(bench.simulator.requests())
    await runtime.apply_options(options, PANEL)
    dred_off = mode_switch_request(Command.MODE_DRED, Switch.OFF)  # every mode is off now
    await until(lambda: dred_off in bench.simulator.requests()[sent:], 5)
    watch.wanted_w = runtime.guard.wanted_under(runtime.options).export_limit_w
    await runtime.stop()  # SIGTERM in the middle of the mode change
    await asyncio.sleep(bench.window)  # the add-on is gone: what did it leave?
    return watch.above


async def lost_last_packet(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime(verify_interval=300)
    await runtime.ops.set_export_limit(3, PANEL)
    watch.wanted_w = 3_000
    deactivate(bench.simulator)
    bench.simulator.set_fault("silence", count=1, after=4)  # the restore's "value on" is lost
    runtime.guard.wake()
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def options_during_a_reset(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime(verify_interval=0)
    await runtime.ops.export_enable(PANEL)
    reset = asyncio.create_task(runtime.ops.reset_export_watchdog(PANEL))
    await until(lambda: bench.simulator.device.mode is ControlMode.DEACTIVATED, 5)
    options = Options.from_mapping({"max_export_limit": 3}, base=runtime.options)
    await runtime.apply_options(options, PANEL)
    await reset
    watch.wanted_w = 3_000  # from the end of the reset's documented window
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def damaged_file_before_a_restore(bench: Bench, watch: Watch) -> float:
    RestoreStore(bench.data).save(RestoreRecord("value", 3_000, True, time.time()))
    (bench.data / ENERGY_NAME).write_bytes(b"\xff not json")
    bench.simulator.device.export_limit_w = 3_000  # the switches went off, the limit stayed
    deactivate(bench.simulator)
    watch.wanted_w = 3_000
    try:
        runtime = Runtime(bench.options(), bench.data)
    except (OptionsError, ValueError):
        await asyncio.sleep(bench.window)  # the add-on could not start: nothing restores
        return watch.above
    await runtime.start()
    await asyncio.sleep(bench.window)
    await runtime.stop()
    return watch.above


async def full_disk_loses_the_wanted_state(bench: Bench, watch: Watch) -> float:
    runtime = await bench.runtime()
    await runtime.ops.export_enable(PANEL)
    (bench.data / WANTED_NAME).unlink()
    (bench.data / WANTED_NAME).mkdir()  # every save fails from now on, like a full disk
    await runtime.ops.export_disable(PANEL)
    watch.wanted_w = 0
    await runtime.stop()
    (bench.data / WANTED_NAME).rmdir()
    (bench.data / WANTED_NAME).write_text(
        '{"export_limit_w": 8000, "mode": "value", "total_capacity_w": 10000, '
        '"three_phase_sum": true, "basis": {}}'
    )  # what the file held before the full disk
    again = await bench.runtime()  # the restart
    await asyncio.sleep(bench.window)
    await again.stop()
    return watch.above


@dataclass(frozen=True)
class Scenario:
    """One way to a wrong export, and what no software can avoid in it, in exchanges and
    timeouts beyond one verified write: reading to notice a change made behind the add-on's
    back, and waiting out a packet the controller never answered."""

    name: str
    run: Callable[[Bench, Watch], Awaitable[float]]
    reads: int = 0
    timeouts: int = 0
    writes: int = 1

    def allowed(self, write_s: float, timeout_s: float) -> float:
        """The unavoidable time: a telemetry poll already holding the device is never cut
        short, so one exchange more (and one for the event loop's scheduling)."""
        exchange_s = write_s / 5  # a verified write is five exchanges
        reads = self.reads + 2
        return self.writes * write_s + reads * exchange_s + self.timeouts * timeout_s


SCENARIOS = (
    Scenario("1 a failed write becomes the wanted state", failed_write_becomes_wanted),
    Scenario("2 a write built before the device is held", write_built_before_the_link),
    Scenario("3 the policy trusts its memory (notify)", policy_trusts_its_memory, reads=1),
    Scenario("4 a stop in the middle of a mode change", stop_abandons_a_write),
    # the drift is read, the restore's last packet times out, read again, written again
    Scenario("5 a restore loses its last packet", lost_last_packet, reads=2, timeouts=1, writes=2),
    Scenario("6 options saved during a reset", options_during_a_reset),
    Scenario("7 a damaged file before a pending restore", damaged_file_before_a_restore),
    Scenario("8 a full disk, then a restart", full_disk_loses_the_wanted_state),
)
# -- several controllers (issue 29): each controller its own, one bad item guards the others


async def _plant(bench: Bench, barn: SimulatorServer | None, **top: object) -> Plant:
    """A started plant: the bench's simulator first, and `barn` when given (address only)."""
    items = [] if barn is None else [{"name": "barn", "host": "127.0.0.1", "port": barn.port}]
    options = bench.options(controllers=items, **top)
    path = bench.data / "options.json"
    path.write_text(json.dumps(options.to_dict()))
    plant = Plant(
        options, bench.data / "data", save_options=file_saver(path), watchdog_timings=TIMINGS
    )
    await plant.start()
    await until(lambda: all(r.guard.wanted is not None for r in plant.runtimes.values()), 10)
    return plant


def _lock(plant: Plant) -> asyncio.Lock:
    return getattr(plant, "options_lock", plant.first.options_lock)  # before: the first's


async def mode_without_controller(bench: Bench, watch: Watch) -> float:
    async with SimulatorServer() as barn:
        plant = await _plant(bench, barn)
        barn_watch = Watch(barn, wanted_w=barn.device.export_limit_w)
        barn_watch.start()
        for mode in ("rcr", "deactivated"):  # sec1000_command with no controller
            await plant.get(None).ops.set_control_mode(mode, None, HOME_ASSISTANT)
        await asyncio.sleep(bench.window)
        await plant.stop(5)
        return await barn_watch.stop()


async def adopt_on_the_first(bench: Bench, watch: Watch) -> float:
    async with SimulatorServer() as barn:
        plant = await _plant(bench, barn, drift_action="adopt", verify_interval=5)
        barn_watch = Watch(barn, wanted_w=barn.device.export_limit_w)
        barn_watch.start()
        bench.simulator.device.switches[Command.MODE_VALUE] = False  # another tool, on the first
        plant.first.guard.wake()
        await asyncio.sleep(bench.window)
        await plant.stop(5)
        return await barn_watch.stop()


async def two_saves_at_once(bench: Bench, watch: Watch) -> float:
    async with SimulatorServer() as barn:
        plant = await _plant(bench, barn)
        await plant.first.ops.export_enable(PANEL)  # the first exports up to its maximum
        own = {"name": "barn", "host": "127.0.0.1", "port": barn.port, "max_export_limit": 3}
        await plant.save_controller(own, PANEL)
        saver = plant.first.save_options
        assert saver is not None
        gate = asyncio.Event()

        async def slow(options: Options) -> None:  # the Supervisor is slow with barn's save
            await gate.wait()
            await saver(options)

        plant.first.save_options = slow
        phase = asyncio.create_task(plant.get("barn").ops.set_control_mode("value", False, PANEL))
        await asyncio.sleep(0.5)

        async def setup_save() -> None:
            async with _lock(plant):
                plant.first.save_options = saver
                ceiling = {"export_ceiling_kw": 3, "max_export_limit": 3}
                await plant.first.apply_options(
                    Options.from_mapping(ceiling, base=plant.first.options), PANEL
                )

        saving = asyncio.create_task(setup_save())
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.gather(phase, saving)
        watch.wanted_w = 3_000  # the ceiling saved and answered
        await plant.first.ops.export_enable(POLICY)  # the next "on": up to the maximum
        await asyncio.sleep(bench.window)
        await plant.stop(5)
        return watch.above


async def one_bad_item(bench: Bench, watch: Watch) -> float:
    from sec1000.options import InvalidOptions, load_options_file, stored_options

    top = bench.options(export_ceiling_kw=3, max_export_limit=3).to_dict()
    top["controllers"] = [{"name": "Garage", "host": "127.0.0.1", "port": 1}]
    path = bench.data / "options.json"
    path.write_text(json.dumps(top))
    bench.simulator.device.export_limit_w = 8_000  # another tool, above the ceiling
    watch.wanted_w = 3_000
    try:
        options, invalid = load_options_file(path), None
    except OptionsError as err:  # before: the whole document refused (a loopback stand-in)
        options = Options.from_mapping({"host": "127.0.0.1", "port": 1})
        invalid = InvalidOptions(err, stored_options(path))
    plant = Plant(
        options,
        bench.data / "data",
        invalid=invalid,
        save_options=file_saver(path),
        watchdog_timings=TIMINGS,
    )
    await plant.start()
    await asyncio.sleep(bench.window)
    await plant.stop(5)
    return watch.above


async def removed_during_its_reset(bench: Bench, watch: Watch) -> float:
    async with SimulatorServer() as barn:
        record = RestoreRecord("value", 3_000, True, time.time(), "127.0.0.1", barn.port)
        (bench.data / "data" / "barn").mkdir(parents=True)
        RestoreStore(bench.data / "data" / "barn").save(record)
        (bench.data / "data" / "controllers.json").write_text('["barn"]')
        deactivate(barn)  # killed in its reset's window, then removed in the Configuration tab
        plant = Plant(bench.options(), bench.data / "data", watchdog_timings=TIMINGS)
        barn_watch = Watch(barn, wanted_w=3_000)  # from the add-on's start
        barn_watch.start()
        await plant.start()
        await asyncio.sleep(bench.window)
        await plant.stop(5)
        return await barn_watch.stop()


async def moved_with_a_record(bench: Bench, watch: Watch) -> float:
    async with SimulatorServer() as old, SimulatorServer() as barn:
        gone = old.port
        await old.stop()  # nothing answers at the old address any more
        record = RestoreRecord("value", 3_000, True, time.time(), "127.0.0.1", gone)
        (bench.data / "data" / "barn").mkdir(parents=True)
        RestoreStore(bench.data / "data" / "barn").save(record)
        plant = Plant(
            bench.options(controllers=[{"name": "barn", "host": "127.0.0.1", "port": barn.port}]),
            bench.data / "data",
            watchdog_timings=TIMINGS,
        )
        await plant.start()
        barn_watch = Watch(barn, wanted_w=0)
        barn_watch.start()
        await plant.get("barn").ops.export_disable(PANEL)  # the user's command on barn
        await asyncio.sleep(bench.window)
        await plant.stop(5)
        return await barn_watch.stop()


async def one_device_two_spellings(bench: Bench, watch: Watch) -> float:
    plant = await _plant(bench, None, max_export_limit=3)
    await plant.first.ops.set_export_limit(3, PANEL)
    watch.wanted_w = 3_000
    barn = {
        "name": "barn",
        "host": "localhost",
        "port": bench.simulator.port,
        "max_export_limit": 8,
    }
    try:
        await plant.save_controller(barn, PANEL)
    except OptionsError:
        pass  # refused: the device has one controller
    else:
        await plant.get("barn").ops.set_export_limit(MAX_KW, PANEL)
    await asyncio.sleep(bench.window)
    await plant.stop(5)
    return watch.above


SEVERAL = (
    Scenario("29.1 a mode sent without a controller (barn)", mode_without_controller, writes=2),
    Scenario("29.1 a drift adopted on the first (barn)", adopt_on_the_first, reads=1),
    Scenario("29.2 a Setup save and barn's change at once", two_saves_at_once, writes=2),
    Scenario("29.5 one bad item in the options", one_bad_item, reads=1),
    # a restore is eight exchanges: three switches, 0x42, three switches, the read-back
    Scenario("29.7 removed during its reset (barn)", removed_during_its_reset, writes=2),
    Scenario("29.7 moved, its record at the old address", moved_with_a_record, timeouts=1),
    Scenario("29.8 one device under two spellings", one_device_two_spellings),
)

TIMEOUT_S = 1.0  # the request timeout the scenarios run with


async def one_write_seconds(gap_ms: int, runs: int = 5) -> float:
    """The median time of one verified write (0x42, three switches, 0x43) at this gap."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            async with SimulatorServer() as simulator:
                times.append(await _timed_write(simulator, Path(tmp), gap_ms))
    return statistics.median(times)


async def _timed_write(simulator: SimulatorServer, data: Path, gap_ms: int) -> float:
    options = {"host": "127.0.0.1", "port": simulator.port, "request_gap_ms": gap_ms}
    runtime = Runtime(Options.from_mapping(options), data)
    started = time.monotonic()
    await runtime.ops.set_export_limit(3, PANEL)
    return time.monotonic() - started


async def run(args: argparse.Namespace) -> int:
    write_s = await one_write_seconds(args.gap_ms)
    print(f"one verified write at a {args.gap_ms} ms gap (median of 5): {write_s:.2f} s")
    print(f"{'scenario':44} {'above wanted':>13} {'unavoidable':>12}  verdict")
    failures = 0
    for scenario in (*SCENARIOS, *SEVERAL):
        if args.only and not any(part in scenario.name for part in args.only):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            async with SimulatorServer() as simulator:
                watch = Watch(simulator)
                bench = Bench(args.gap_ms, args.window, simulator, Path(tmp))
                watch.start()
                try:
                    above = await asyncio.wait_for(scenario.run(bench, watch), 60)
                finally:
                    await watch.stop()
        allowed = scenario.allowed(write_s, TIMEOUT_S)
        ok = above <= allowed
        failures += not ok
        verdict = "ok" if ok else "EXPORTS ABOVE THE WANTED STATE"
        print(f"{scenario.name:44} {above:>11.2f} s {allowed:>10.2f} s  {verdict}")
    print(
        "9 prices and 10 small things are input rules, checked by "
        "tests/limiter/test_no_wrong_export.py and the price tests"
    )
    return 1 if failures else 0


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)  # the scenarios' own errors are expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap-ms", type=int, default=50, help="the device gap (default 50)")
    parser.add_argument(
        "--window", type=float, default=6.0, help="seconds watched after each event (default 6)"
    )
    parser.add_argument(
        "--only", nargs="*", default=[], help="run only scenarios whose name holds one of these"
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
