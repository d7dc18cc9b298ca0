"""Benchmark the Home Assistant side of the add-on against a real Home Assistant Core.

Home Assistant Core is started here by the test harness (tests/ha_harness.py), the MQTT broker
is Debian's mosquitto (tests/mqtt_broker.py), the controller is the simulator; nothing is
mocked. Each entity mode gets a fresh Home Assistant of its own.

Over N runs (--runs, default 50) it prints p50 and p99, in ms, of:

REST (the WebSocket bridge: states posted, input_* helpers; issue 5)
- helper press: a Home Assistant user calls input_button.press on
  input_button.sec1000_get_export_limit (WebSocket call_service) until the simulated
  controller gets the first byte (accepts the add-on's connection);
- telemetry: runtime.ops.get_telemetry_data() until Home Assistant fires state_changed for
  sensor.sec1000_load_power.

MQTT (the device announced through the broker; issue 10)
- button press: a user calls button.press on button.sec1000_get_export_limit until the
  controller gets the first byte;
- telemetry: a telemetry read until Home Assistant fires state_changed for the MQTT entity
  sensor.sec1000_v1.

The request gap is 0, so the device's own gap is not counted. A read whose watched value did
not change is skipped (Home Assistant fires no state_changed for it). Goal: p99 <= 50 ms each.

Every figure is measured on each Core the tests run on (tests/ha_harness.py CORES; --ha-core
picks one) and printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sec1000.ha import Endpoint
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.websocket import WebSocketConnection
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from tests.ha_harness import CORES, Core, HomeAssistant, install
from tests.mqtt_broker import Mosquitto, set_up_mqtt

GOAL_MS = 50.0
SETTLE = 0.05  # seconds after a press, so its exchange ends before the next press
READ_PAUSE = 0.02  # seconds between telemetry reads
STALE_WAIT = 0.2  # seconds after a read that changed nothing watched, for stray events to pass
STATE_TIMEOUT = 5.0  # seconds a telemetry read may take to reach Home Assistant
READY_TIMEOUT = 60.0  # seconds for the add-on's entities to appear in Home Assistant


@dataclass(frozen=True)
class Figure:
    """One measurement on one Core: its samples in seconds."""

    core: str
    mode: str
    what: str
    samples: list[float]

    def pct(self, fraction: float) -> float:
        """The `fraction` percentile in ms (nearest rank)."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


# ---------------------------------------------------------------- Home Assistant and the add-on


@contextmanager
def home_assistant(core: Core, label: str) -> Iterator[HomeAssistant]:
    """A fresh, onboarded Home Assistant Core, stopped afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=f"sec1000-bench-ha-{core.version}-{label}-"))
    ha = HomeAssistant(core, install(core), directory)
    ha.start()
    try:
        ha.onboard()
        yield ha
    finally:
        ha.stop()


def endpoint_of(ha: HomeAssistant) -> Endpoint:
    """Home Assistant as the add-on and the user reach it: directly (HA_URL)."""
    return Endpoint(ha.api_url, ha.websocket_url, ha.token, "HA_URL")


@asynccontextmanager
async def addon(
    options: Options, ha: HomeAssistant, session: aiohttp.ClientSession
) -> AsyncIterator[tuple[Runtime, HomeAssistantAdapter]]:
    """The runtime (no polling timer: the benchmark reads) and its Home Assistant adapter;
    one telemetry read first, so every entity has a value from the start."""
    runtime = Runtime(options, Path(tempfile.mkdtemp(prefix="sec1000-bench-data-")))
    await runtime.ops.get_telemetry_data()
    adapter = HomeAssistantAdapter(Plant.of_one(runtime), endpoint_of(ha), session)
    adapter.start()
    try:
        yield runtime, adapter
    finally:
        await adapter.stop()


async def wait_for(check: Any, what: str, within: float = READY_TIMEOUT) -> None:
    """Poll the async `check` until it is true; TimeoutError naming `what` when it is not."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {within:g} s")
        await asyncio.sleep(0.1)


async def state_changes(
    user: WebSocketConnection, entity_id: str
) -> asyncio.Queue[tuple[float, str]]:
    """Each state_changed Home Assistant fires for `entity_id`: (monotonic time of arrival,
    the new state)."""
    changed: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

    def on_state(event: dict[str, Any]) -> None:
        data = event["data"]
        if data["entity_id"] == entity_id and data.get("new_state"):
            changed.put_nowait((time.monotonic(), str(data["new_state"]["state"])))

    await user.subscribe({"type": "subscribe_events", "event_type": "state_changed"}, on_state)
    return changed


def same_value(state: str, value: Any) -> bool:
    """Home Assistant's state shows `value` (numbers compared as numbers: "230" == 230.0)."""
    try:
        return float(state) == float(value)
    except (TypeError, ValueError):
        return state == str(value)


async def available(user: WebSocketConnection, entity_id: str) -> bool:
    """Home Assistant has a state for the entity, and it is not unavailable."""
    for state in await user.send_command({"type": "get_states"}):
        if state["entity_id"] == entity_id:
            return bool(state["state"] != "unavailable")
    return False


# ---------------------------------------------------------------- the two measurements


async def press_to_first_byte(
    user: WebSocketConnection,
    simulator: SimulatorServer,
    domain: str,
    entity_id: str,
    runs: int,
) -> list[float]:
    """A user's press (WebSocket call_service) until the controller gets the first byte."""
    samples: list[float] = []
    for _ in range(runs):
        before = simulator.exchange_count
        started = time.monotonic()
        await user.send_command(
            {
                "type": "call_service",
                "domain": domain,
                "service": "press",
                "service_data": {"entity_id": entity_id},
            }
        )
        while simulator.exchange_count == before:
            if time.monotonic() - started > STATE_TIMEOUT:
                raise TimeoutError(
                    f"pressing {entity_id} reached no controller in {STATE_TIMEOUT:g} s"
                )
            await asyncio.sleep(0.0005)
        samples.append(simulator.exchanges[before - simulator.exchange_count].accepted - started)
        await asyncio.sleep(SETTLE)
    return samples


async def read_to_state_changed(
    runtime: Runtime, changed: asyncio.Queue[tuple[float, str]], key: str, runs: int
) -> list[float]:
    """A telemetry read until Home Assistant fires state_changed showing its new `key` value
    (events for other values, such as attribute-only changes, are passed over)."""
    samples: list[float] = []
    while len(samples) < runs:
        await asyncio.sleep(READ_PAUSE)  # earlier changes arrive, then are dropped
        while not changed.empty():
            changed.get_nowait()
        previous = runtime.state.telemetry
        started = time.monotonic()
        await runtime.ops.get_telemetry_data()
        current = runtime.state.telemetry
        if current is None or (previous is not None and previous[key] == current[key]):
            await asyncio.sleep(STALE_WAIT)  # the same value: no state_changed for it
            continue
        async with asyncio.timeout(STATE_TIMEOUT):
            while True:
                arrived, state = await changed.get()
                if same_value(state, current[key]):
                    break
        samples.append(arrived - started)
    return samples


# ---------------------------------------------------------------- per entity mode


Ready = Callable[[HomeAssistantAdapter, WebSocketConnection], Awaitable[bool]]


async def measure(
    ha: HomeAssistant, runs: int, modes: dict[str, Any], button: str, key: str, ready: Ready
) -> tuple[list[float], list[float]]:
    """Press `button` and read telemetry until `sensor.sec1000_<key>` changes, `runs` times
    each, with the add-on on a simulator under `modes` (its entity options)."""
    simulator = await SimulatorServer().start()
    options = Options.from_mapping(
        {"host": "127.0.0.1", "port": simulator.port, "request_gap_ms": 0, **modes}
    )
    try:
        async with (
            aiohttp.ClientSession() as session,
            addon(options, ha, session) as (runtime, adapter),
        ):
            user = await WebSocketConnection.open(session, endpoint_of(ha))
            try:
                changed = await state_changes(user, f"sensor.sec1000_{key}")
                await wait_for(lambda: ready(adapter, user), f"{button} in Home Assistant")
                domain = button.split(".", 1)[0]
                press = await press_to_first_byte(user, simulator, domain, button, runs)
                telemetry = await read_to_state_changed(runtime, changed, key, runs)
            finally:
                await user.close()
    finally:
        await simulator.stop()
    return press, telemetry


async def rest_figures(ha: HomeAssistant, runs: int) -> list[Figure]:
    """The WebSocket bridge: states posted, input_* helpers."""
    button = "input_button.sec1000_get_export_limit"

    async def ready(adapter: HomeAssistantAdapter, user: WebSocketConnection) -> bool:
        return adapter.entity_mode == "rest" and await available(user, button)

    press, telemetry = await measure(ha, runs, {"entities": "rest"}, button, "load_power", ready)
    return [
        Figure(ha.version, "REST", "helper press -> first byte at controller", press),
        Figure(ha.version, "REST", "telemetry read -> state_changed load_power", telemetry),
    ]


async def mqtt_entity_ready(user: WebSocketConnection, entity_id: str) -> bool:
    """The entity is in Home Assistant's registry from the MQTT platform and is available."""
    entries = await user.send_command({"type": "config/entity_registry/list"})
    if not any(e["entity_id"] == entity_id and e["platform"] == "mqtt" for e in entries):
        return False
    return await available(user, entity_id)


async def mqtt_figures(ha: HomeAssistant, broker: Mosquitto, runs: int) -> list[Figure]:
    """The MQTT device, announced through the broker."""
    await set_up_mqtt(ha, broker)
    button = "button.sec1000_get_export_limit"

    async def ready(adapter: HomeAssistantAdapter, user: WebSocketConnection) -> bool:
        return (
            adapter.entity_mode == "mqtt"
            and adapter.mqtt is not None
            and adapter.mqtt.connected
            and await mqtt_entity_ready(user, "sensor.sec1000_v1")
            and await mqtt_entity_ready(user, button)
        )

    modes = {"entities": "mqtt", "mqtt_host": broker.host, "mqtt_port": broker.port}
    press, telemetry = await measure(ha, runs, modes, button, "v1", ready)
    return [
        Figure(ha.version, "MQTT", "button press -> first byte at controller", press),
        Figure(ha.version, "MQTT", "telemetry read -> state_changed v1", telemetry),
    ]


# ---------------------------------------------------------------- report


def print_table(figures: list[Figure], runs: int) -> None:
    """One row per measurement, one p50/p99 pair per Core, and whether every p99 meets the goal."""
    cores = list(dict.fromkeys(figure.core for figure in figures))
    rows = list(dict.fromkeys((figure.mode, figure.what) for figure in figures))
    by_key = {(figure.core, figure.mode, figure.what): figure for figure in figures}
    print(
        f"runs: {runs} each (Home Assistant Core {' and '.join(cores)} on loopback, direct "
        "HA_URL, mosquitto broker for MQTT, request gap 0); p50 / p99 in ms"
    )
    width = max(len(what) for _, what in rows)
    header = f"{'mode':<5} {'measurement':<{width}}" + "".join(f" {core:>17}" for core in cores)
    print(header + "  goal p99")
    print("-" * (len(header) + 10))
    for mode, what in rows:
        line = f"{mode:<5} {what:<{width}}"
        worst = 0.0
        for core in cores:
            figure = by_key[(core, mode, what)]
            worst = max(worst, figure.pct(0.99))
            line += f" {figure.pct(0.5):8.1f}/{figure.pct(0.99):8.1f}"
        verdict = "ok" if worst <= GOAL_MS else "OVER"
        print(f"{line}  <= {GOAL_MS:g} ms {verdict}")


def core_figures(core: Core, runs: int) -> list[Figure]:
    """Both entity modes on one Core, each on a fresh Home Assistant of its own."""
    figures: list[Figure] = []
    with home_assistant(core, "rest") as ha:
        figures += asyncio.run(rest_figures(ha, runs))
    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="sec1000-bench-mqtt-")))
    broker.start()
    try:
        with home_assistant(core, "mqtt") as ha:
            figures += asyncio.run(mqtt_figures(ha, broker, runs))
    finally:
        broker.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50, help="samples per measurement")
    parser.add_argument(
        "--ha-core",
        action="append",
        choices=[core.version for core in CORES],
        help="measure on this Core only (default: every Core)",
    )
    args = parser.parse_args()
    figures: list[Figure] = []
    for core in CORES:
        if not args.ha_core or core.version in args.ha_core:
            figures += core_figures(core, args.runs)
    print_table(figures, args.runs)


if __name__ == "__main__":
    main()
