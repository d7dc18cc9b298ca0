"""Benchmark Home Assistant Core restarts (and MQTT broker restarts) with the add-on running.

On each Core the tests run on (tests/ha_harness.py CORES; --ha-core picks one), with a real
Core, Debian's mosquitto, the simulator and the FAKE Supervisor in front of Core (the real one
cannot run here); the add-on keeps its own retry delays. Two runs per Core:

- REST states and helpers: N Core restarts in a row (--restarts, default 5);
- the MQTT device: N Core restarts, then N broker restarts (no persistence: every retained
  message is lost).

Each restart starts while a `set_export_limit` is under way at a slow controller (answers 1.5 s
late). Per Core, mode and kind it prints the seconds until every entity is back (from Core
answering RUNNING, or from Home Assistant being back on the broker: its birth message), p50
and max; the `_2` ids seen; whether the helpers kept their values; and the command's outcome
(exactly one result event, one write when ok). Goals: back <= 10 s, no `_2`, helpers kept,
every command once. tests/test_restarts.py asserts the same with 2 restarts of each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import CORES, Core, HomeAssistant, install
from tests.mqtt_broker import Mosquitto, set_up_mqtt
from tests.restarts import BACK_WITHIN, Cycle, restart_scenario


async def one_run(core: Core, mqtt: bool, restarts: int) -> list[Cycle]:
    """A fresh Core (and broker), the add-on, and the restarts."""
    directory = Path(tempfile.mkdtemp(prefix=f"sec1000-bench-restarts-{core.version}-"))
    ha = HomeAssistant(core, install(core), directory / "ha")
    broker = Mosquitto(directory) if mqtt else None
    simulator = SimulatorServer(slow_delay=1.5)
    await simulator.start()
    try:
        await asyncio.to_thread(ha.start)
        await asyncio.to_thread(ha.onboard)
        if broker is not None:
            broker.start()
            await set_up_mqtt(ha, broker)
        options = Options.from_mapping(
            {
                "host": "127.0.0.1",
                "port": simulator.port,
                "request_gap_ms": 20,
                "request_timeout": 3,
                "max_export_limit": 8.0,
            }
        )
        runtime = Runtime(options, directory / "data")
        supervisor = TestServer(create_fake_supervisor(ha.url, ha.token))
        await supervisor.start_server()
        try:
            return await restart_scenario(ha, runtime, simulator, supervisor, broker, restarts)
        finally:
            await supervisor.close()
    finally:
        await simulator.stop()
        await asyncio.to_thread(ha.stop)
        if broker is not None:
            broker.stop()


def print_rows(core: Core, mode: str, cycles: list[Cycle]) -> None:
    """One row per kind of restart."""
    for kind in ("core", "broker"):
        mine = [cycle for cycle in cycles if cycle.kind == kind]
        if not mine:
            continue
        backs = [cycle.back_s for cycle in mine]
        duplicates = sorted({d for cycle in mine for d in cycle.duplicates})
        kept = all(cycle.helpers_kept for cycle in mine)
        once = sum(cycle.command_once for cycle in mine)
        verdict = (
            "ok"
            if max(backs) <= BACK_WITHIN and not duplicates and kept and once == len(mine)
            else "FAILED"
        )
        print(
            f"{core.version:<9} {mode:<4} {kind:<6} {len(mine):>3} {statistics.median(backs):8.1f}"
            f" {max(backs):8.1f}  {len(duplicates):>4}  {'yes' if kept else 'NO':<5}"
            f" {once}/{len(mine):<5} {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--restarts", type=int, default=5, help="restarts of each kind")
    parser.add_argument(
        "--ha-core",
        action="append",
        choices=[core.version for core in CORES],
        help="measure on this Core only (default: every Core)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the add-on's retry warnings are expected here
    print(
        f"goal: every entity back <= {BACK_WITHIN:g} s, no _2 id, helpers kept, each command "
        "across a restart ends once"
    )
    print("core      mode kind     n  p50 s    max s   _2s  kept  once    verdict")
    for core in CORES:
        if args.ha_core and core.version not in args.ha_core:
            continue
        for mode in ("rest", "mqtt"):
            cycles = asyncio.run(one_run(core, mode == "mqtt", args.restarts))
            print_rows(core, mode, cycles)


if __name__ == "__main__":
    main()
