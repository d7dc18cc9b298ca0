"""Write the /data folder a release leaves behind, from that release's own code, for the upgrade test.

Run it with the release's checkout first on the path (its `sec1000`, not this one's):

    git worktree add /tmp/v010 db50dfc
    PYTHONPATH=/tmp/v010/sec1000_addon .venv/bin/python scripts/make_data_fixture.py \\
        --out tests/fixtures/data/0.1.0

It starts two of that release's simulators on loopback (127.0.0.1 only) and that release's
plant on a fresh data folder, over real sockets: the first controller and one named `barn`.
It then runs real commands (an export limit set from the panel, export off from an
automation, the price policy switched on, a control mode), lets the poll loop count energy
from telemetry reads, saves the counters and the audit trail, and starts a watchdog reset on
each controller with a long off window. While both limiters are off (each restore record
written, as the watchdog writes it before switching off) the folder is copied: that is the
disk a kill in the window leaves. The copy also gets `fixture.json` (the release, the
simulators' ports, what the simulators held) and `entity_ids.json` (every entity id and MQTT
unique id that release derives for each controller). Nothing but loopback is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sec1000
from sec1000.ha import discovery, entities
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.limiter.writes import Origin
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.runtime import file_saver
from sec1000.simulator import SimulatorServer

LOOPBACK = "127.0.0.1"
BARN = "barn"
# Long enough that the copy is taken inside the window; the stop afterwards restores.
OFF_WINDOW = 600.0
TELEMETRY_READS = 4


def options_document(first_port: int, barn_port: int) -> dict[str, Any]:
    """What a user of that release might have typed: two controllers, a negative price."""
    return {
        "host": LOOPBACK,
        "port": first_port,
        "scan_interval": 1,
        "min_export_limit": 0.5,
        "max_export_limit": 8.0,
        "total_capacity": 10.0,
        "request_gap_ms": 50,
        "request_timeout": 2,
        "price_entity": "sensor.electricity_price",
        "export_off_below": -0.05,
        "export_on_above": 0.02,
        "policy_min_dwell_minutes": 30,
        "controllers": [
            {"name": BARN, "host": LOOPBACK, "port": barn_port, "max_export_limit": 5.0}
        ],
    }


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition()` holds, for at most a minute (this script's own wait)."""
    try:
        async with asyncio.timeout(60.0):
            while not condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise SystemExit(f"gave up waiting for {what}") from None


def entity_ids(options: Options, names: list[str]) -> dict[str, Any]:
    """Every id the release derives per controller: REST sensors and helpers, MQTT components."""
    return {
        name: {
            "sensors": sorted(sensor.entity_id for sensor in entities.sensors_of(name)),
            "helpers": sorted(helper.entity_id for helper in entities.helpers_of(name)),
            "mqtt": {
                component.unique_id: component.entity_id
                for component in discovery.components(options, name)
            },
        }
        for name in names
    }


def commit_of(package: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(package), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def prepare(data: Path, options: Options) -> Path:
    """A fresh data folder holding the options file, as the Supervisor writes it."""
    data.mkdir(parents=True)
    options_path = data / "options.json"
    options_path.write_text(json.dumps(options.to_dict()))
    return options_path


async def run_release(
    data: Path, first: SimulatorServer, barn: SimulatorServer
) -> tuple[Plant, list[asyncio.Task[Any]]]:
    """The release's plant on `data`: real commands, counted energy, then a reset on each
    controller left in its window."""
    options = Options.from_mapping(options_document(first.port, barn.port))
    options_path = await asyncio.to_thread(prepare, data, options)
    plant = Plant(
        options,
        data,
        save_options=file_saver(options_path),
        watchdog_timings=WatchdogTimings(off_window=OFF_WINDOW, settle=0.2, backoff_first=0.2),
    )
    await plant.start()
    await plant.wait_ready()
    home, shed = plant.first, plant.get(BARN)
    alice = Origin("panel", "alice")
    results = [
        await home.ops.set_export_limit(3.5, alice),
        await shed.ops.export_disable(Origin("automation")),
        await shed.ops.set_control_mode("rcr", None, Origin("home_assistant", "bob")),
        await home.ops.get_export_limit(alice),
    ]
    for result in results:
        if not result.ok:
            raise SystemExit(f"a command failed: {result.message}")
    # The price policy switched on (the panel's switch: an options change).
    await home.update_options({"price_policy": True}, alice)
    ticks = {name: runtime.ticks for name, runtime in plant.runtimes.items()}
    await until(
        lambda: all(
            runtime.ticks >= ticks[name] + TELEMETRY_READS
            for name, runtime in plant.runtimes.items()
        ),
        "telemetry reads",
    )
    for runtime in plant.runtimes.values():
        await asyncio.to_thread(runtime.energy.save)
        await runtime.audit.flush()
    resets = [
        asyncio.create_task(runtime.ops.reset_export_watchdog(alice))
        for runtime in plant.runtimes.values()
    ]
    await until(
        lambda: (
            all(runtime.restore_store.pending for runtime in plant.runtimes.values())
            and all(server.device.mode.option == "deactivated" for server in (first, barn))
        ),
        "both limiters off",
    )
    return plant, resets


def copy_the_disk(data: Path, out: Path) -> None:
    """The disk at the kill: every file the release wrote (its temporaries aside)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(data, out, ignore=shutil.ignore_patterns(".*"))


async def record(data: Path, out: Path) -> dict[str, Any]:
    """Run the release, copy its disk in the reset window, then stop it (it restores)."""
    async with SimulatorServer(host=LOOPBACK) as first, SimulatorServer(host=LOOPBACK) as barn:
        plant, resets = await run_release(data, first, barn)
        await asyncio.to_thread(copy_the_disk, data, out)
        held = {
            name: {
                "mode": server.device.mode.option,
                "export_limit_w": server.device.export_limit_w,
            }
            for name, server in ((entities.FIRST_CONTROLLER, first), (BARN, barn))
        }
        options = plant.first.options
        await plant.stop()
        await asyncio.gather(*resets, return_exceptions=True)
    return {
        "ports": {entities.FIRST_CONTROLLER: first.port, BARN: barn.port},
        "held_at_the_kill": held,
        "entity_ids": entity_ids(options, [entities.FIRST_CONTROLLER, BARN]),
    }


def main(out: Path) -> None:
    package = Path(sec1000.__file__).resolve().parent
    print(f"sec1000 {sec1000.__version__} from {package}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        made = asyncio.run(record(Path(scratch) / "data", out))
    fixture = {
        "release": sec1000.__version__,
        "commit": commit_of(package),
        "made_by": "scripts/make_data_fixture.py",
        "loopback": LOOPBACK,
        "ports": made["ports"],
        "held_at_the_kill": made["held_at_the_kill"],
    }
    (out / "fixture.json").write_text(json.dumps(fixture, indent=2) + "\n")
    (out / "entity_ids.json").write_text(json.dumps(made["entity_ids"], indent=2) + "\n")
    for path in sorted(out.rglob("*")):
        print(path.relative_to(out), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the fixture folder to (re)write")
    args = parser.parse_args()
    main(args.out.resolve())
    sys.exit(0)
