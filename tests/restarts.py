"""Restarts of Home Assistant Core, and of the MQTT broker, with the add-on running.

Shared by tests/test_restarts.py (which asserts) and scripts/bench_restarts.py (which prints).
Nothing is mocked: a real Core (tests/ha_harness.py), Debian's mosquitto, the simulator, the
FAKE Supervisor in front of Core (the real one cannot run here).

One cycle: a `set_export_limit` to a new value is under way at a slow controller (each answer
1.5 s late) when Core (or the broker) goes down; then it comes back (Core once the command has
ended, so its result must wait for Core). Measured:

- `back_s`: from Core answering (RUNNING), or from Home Assistant being back on the broker
  (its birth message; the broker answering if that came before an observer could see it), until
  every entity of the add-on is there and not unavailable, helpers included;
- `duplicates`: entity ids of the add-on with a numbered suffix (`_2`), in states or registry;
- `helpers_kept`: the setpoint and the export switch show the controller's limit and state;
- `results` / `writes`: the command's `sec1000_command_result` events and its writes at the
  controller. Neither lost nor run twice: exactly one result, and one write when it is ok.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiomqtt
from aiohttp.test_utils import TestServer
from sec1000.ha import Endpoint
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.discovery import HA_STATUS_TOPIC, components
from sec1000.ha.entities import ALL_SENSORS, HELPERS, RESULT_EVENT
from sec1000.ha.websocket import WebSocketConnection
from sec1000.protocol import PhaseMeasurement, write_export_limit_request
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import FAKE, FakeSupervisorState
from tests.ha_harness import HomeAssistant
from tests.helpers.ha import running_addon
from tests.mqtt_broker import Mosquitto

BACK_WITHIN = 10.0  # the goal: every entity back within this many seconds
WAIT = 90.0  # how long anything is waited for before the cycle fails
NUMBERED = re.compile(r"^[a-z_]+\.sec1000\w*_\d+$")  # sensor.sec1000_v1_2, input_number..._2
CAPACITY_W = 10_000  # the options of the scenario (tests/conftest.py make_options)


@dataclass
class Cycle:
    """What one restart did."""

    kind: str  # "core" or "broker"
    number: int
    limit_kw: float
    back_s: float
    duplicates: list[str]
    helpers_kept: bool
    results: list[dict[str, Any]]
    writes: int
    went_away: bool = True  # unavailable while the broker was down (Core down: it had none)

    @property
    def command_once(self) -> bool:
        """Exactly one result; one write when it is ok, at most one when it failed in words."""
        if len(self.results) != 1:
            return False
        result = self.results[0]
        return self.writes == 1 if result["ok"] else bool(result["message"]) and self.writes <= 1


class ResultListener:
    """A user's subscription to the result events that outlives Core's restarts: it connects
    again at once (Core's WebSocket answers while Core is still starting, before the add-on,
    which waits for RUNNING, can fire anything)."""

    def __init__(self, ha: HomeAssistant, session: aiohttp.ClientSession) -> None:
        self.ha, self.session = ha, session
        self.results: list[dict[str, Any]] = []
        self.subscriptions = 0
        self.subscribed_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        endpoint = Endpoint(self.ha.api_url, self.ha.websocket_url, self.ha.token, "listener")
        while True:
            try:
                ws = await WebSocketConnection.open(self.session, endpoint)
            except Exception:  # Core is down: again in a moment
                await asyncio.sleep(0.05)
                continue
            try:
                await ws.subscribe(
                    {"type": "subscribe_events", "event_type": RESULT_EVENT},
                    lambda event: self.results.append(event["data"]),
                )
                self.subscriptions += 1
                self.subscribed_at = time.monotonic()
                await ws.wait_closed()
            except Exception:
                pass
            finally:
                await ws.close()

    async def wait_subscribed(self, count: int) -> None:
        await _until(lambda: self.subscriptions >= count, f"result subscription {count}")


async def _until(predicate: Any, what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {within:g} s")
        await asyncio.sleep(0.05)


@dataclass
class Scenario:
    """The add-on running against one Core (and in MQTT mode a broker), with a user."""

    ha: HomeAssistant
    runtime: Runtime
    simulator: SimulatorServer
    addon: HomeAssistantAdapter
    session: aiohttp.ClientSession
    listener: ResultListener
    broker: Mosquitto | None = None
    cycles: list[Cycle] = field(default_factory=list)
    supervisor: FakeSupervisorState | None = None

    @property
    def mqtt(self) -> bool:
        return self.broker is not None

    def entity_ids(self) -> set[str]:
        """Every entity the add-on owns in this mode."""
        if self.mqtt:
            return {component.entity_id for component in components(self.runtime.options)}
        return {sensor.entity_id for sensor in ALL_SENSORS} | {h.entity_id for h in HELPERS}

    async def user(self) -> WebSocketConnection:
        endpoint = Endpoint(self.ha.api_url, self.ha.websocket_url, self.ha.token, "user")
        return await WebSocketConnection.open(self.session, endpoint)

    async def states(self) -> dict[str, str]:
        async with self.session.get(f"{self.ha.api_url}/states", headers=self.ha.headers) as r:
            if r.status != 200:
                return {}
            return {state["entity_id"]: state["state"] for state in await r.json()}

    async def all_back(self) -> bool:
        try:
            states = await self.states()
        except aiohttp.ClientError:
            return False
        return all(
            states.get(entity_id, "unavailable") != "unavailable" for entity_id in self.entity_ids()
        )

    async def wait_all_back(self, since: float) -> float:
        """Seconds from `since` until every entity is back."""
        deadline = time.monotonic() + WAIT
        while not await self.all_back():
            if time.monotonic() > deadline:
                raise TimeoutError(f"entities still missing {WAIT:g} s after the restart")
            await asyncio.sleep(0.05)
        return time.monotonic() - since

    async def duplicates(self) -> list[str]:
        ws = await self.user()
        try:
            entries = await ws.send_command({"type": "config/entity_registry/list"})
        finally:
            await ws.close()
        ids = {entry["entity_id"] for entry in entries} | set(await self.states())
        return sorted(entity_id for entity_id in ids if NUMBERED.match(entity_id))

    async def helpers_kept(self, limit_kw: float) -> bool:
        """The setpoint shows the limit the controller holds, the export switch says on."""
        platform = ("number", "switch") if self.mqtt else ("input_number", "input_boolean")
        setpoint = f"{platform[0]}.sec1000_export_limit_setpoint"
        switch = f"{platform[1]}.sec1000_export"

        async def shown() -> bool:
            states = await self.states()
            value = states.get(setpoint, "")
            try:
                return float(value) == limit_kw and states.get(switch) == "on"
            except ValueError:
                return False

        deadline = time.monotonic() + 15
        while not await shown():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def fire(self, data: dict[str, Any]) -> None:
        ws = await self.user()
        try:
            await ws.send_command(
                {"type": "fire_event", "event_type": "sec1000_command", "event_data": data}
            )
        finally:
            await ws.close()

    async def set_setpoint(self, limit_kw: float) -> None:
        """A user sets the MQTT number: Home Assistant publishes it, the add-on takes it."""
        ws = await self.user()
        try:
            await ws.send_command(
                {
                    "type": "call_service",
                    "domain": "number",
                    "service": "set_value",
                    "service_data": {
                        "entity_id": "number.sec1000_export_limit_setpoint",
                        "value": limit_kw,
                    },
                }
            )
        finally:
            await ws.close()


def writes_of(frames: list[bytes], limit_kw: float) -> int:
    """How many 0x42 writes of this limit the controller got."""
    frame = write_export_limit_request(
        CAPACITY_W, round(limit_kw * 1000), PhaseMeasurement.SUM_OF_PHASES
    )
    return frames.count(frame)


async def _slow_command_under_way(scenario: Scenario, start: Any) -> int:
    """Make the controller slow, start the command, return once its first frame arrived."""
    simulator = scenario.simulator
    before = len(simulator.requests())
    simulator.set_fault("slow")
    await start()
    await _until(lambda: len(simulator.requests()) > before, "frame of the command")
    return before


async def _settle_results(scenario: Scenario, marker: str) -> None:
    """A second command after the first: the add-on fires results in order, so once the
    marker's result is there, any repeat of the first would have come before it."""
    scenario.simulator.clear_faults()
    await scenario.fire({"command": "get_export_limit", "request_id": marker})
    listener = scenario.listener
    await _until(
        lambda: any(r.get("request_id") == marker for r in listener.results), f"{marker} result"
    )


async def core_cycle(scenario: Scenario, number: int) -> Cycle:
    """A command under way, then Core restarts; everything measured after it."""
    limit = 1.0 + 0.25 * number
    request_id = f"across-core-restart-{number}"
    listener, ha = scenario.listener, scenario.ha
    seen = len(listener.results)
    before = await _slow_command_under_way(
        scenario,
        lambda: scenario.fire(
            {"command": "set_export_limit", "limit": limit, "request_id": request_id}
        ),
    )
    subscriptions = listener.subscriptions
    client = scenario.addon.client
    assert client is not None
    connects = client.connects
    # The add-on reaches Core again only once the user's listener has subscribed again: on a
    # busy machine the listener can lose the race to the add-on, and miss the result it waits for.
    gate = asyncio.Event()
    if scenario.supervisor is not None:
        scenario.supervisor.websocket_gate = gate
    await ha.async_stop()
    # Core stays down until the command has ended: its result has nowhere to go but the queue.
    commands = scenario.runtime.state.commands
    await _until(lambda: any(c.request_id == request_id for c in commands), "the command's end")
    await ha.async_start()
    answered = time.monotonic()
    await listener.wait_subscribed(subscriptions + 1)
    listened = time.monotonic()
    gate.set()
    back = await scenario.wait_all_back(answered)
    # The MQTT entities come back through the broker; events need the add-on's own connection.
    await _until(lambda: client.connects > connects, "the add-on connected again")
    if scenario.supervisor is None and listener.subscribed_at > answered:
        raise RuntimeError("the listener subscribed after Core was RUNNING: results unseen")
    if listener.subscribed_at > listened:  # subscribed again since: it could have missed one
        raise RuntimeError("the listener lost its subscription while the add-on came back")
    await _settle_results(scenario, f"after-core-restart-{number}")
    results = [r for r in listener.results[seen:] if r.get("request_id") == request_id]
    return Cycle(
        "core",
        number,
        limit,
        back,
        await scenario.duplicates(),
        await scenario.helpers_kept(limit),
        results,
        writes_of(scenario.simulator.requests()[before:], limit),
    )


async def _home_assistant_rejoined(broker: Mosquitto, within: float = 45.0) -> float | None:
    """When Home Assistant said `online` on its birth topic after the broker came back (about
    15 s after it: Core's own reconnect loop); None if this observer missed it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.subscribe(HA_STATUS_TOPIC)
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    async for message in client.messages:
                        if message.payload == b"online":
                            return time.monotonic()
        except aiomqtt.MqttError:
            await asyncio.sleep(0.02)
        except TimeoutError:
            return None
    return None


async def broker_cycle(scenario: Scenario, number: int) -> Cycle:
    """An MQTT command under way, then the broker restarts (losing every retained message);
    the entities are unavailable until Home Assistant is back on the broker."""
    broker = scenario.broker
    assert broker is not None
    limit = 1.0 + 0.25 * number
    listener = scenario.listener
    seen = len(listener.results)
    before = await _slow_command_under_way(scenario, lambda: scenario.set_setpoint(limit))
    await asyncio.to_thread(broker.stop)
    rejoined = asyncio.create_task(_home_assistant_rejoined(broker))
    await asyncio.to_thread(broker.start)
    answered = time.monotonic()
    went_away = not await scenario.all_back()
    since = await rejoined or answered  # missed: counted from the broker, which is longer
    back = await scenario.wait_all_back(since)
    await _settle_results(scenario, f"after-broker-restart-{number}")
    results = [
        r
        for r in listener.results[seen:]
        if r.get("command") == "set_export_limit" and r.get("request_id") is None
    ]
    return Cycle(
        "broker",
        number,
        limit,
        back,
        await scenario.duplicates(),
        await scenario.helpers_kept(limit),
        results,
        writes_of(scenario.simulator.requests()[before:], limit),
        went_away,
    )


@asynccontextmanager
async def listening(
    ha: HomeAssistant,
) -> AsyncIterator[tuple[aiohttp.ClientSession, ResultListener]]:
    """A session and a result listener, subscribed before anything happens."""
    async with aiohttp.ClientSession() as session:
        listener = ResultListener(ha, session)
        listener.start()
        try:
            await listener.wait_subscribed(1)
            yield session, listener
        finally:
            await listener.stop()


async def run_cycles(scenario: Scenario, cores: int, brokers: int) -> list[Cycle]:
    """`cores` Core restarts in a row, then `brokers` broker restarts."""
    for number in range(1, cores + 1):
        scenario.cycles.append(await core_cycle(scenario, number))
    for number in range(1, brokers + 1):
        scenario.cycles.append(await broker_cycle(scenario, cores + number))
    return scenario.cycles


async def restart_scenario(
    ha: HomeAssistant,
    runtime: Runtime,
    simulator: SimulatorServer,
    supervisor: TestServer,
    broker: Mosquitto | None,
    restarts: int,
) -> list[Cycle]:
    """The add-on (its own retry delays) on `ha` behind the FAKE Supervisor, REST entities, or
    the MQTT device on `broker`; `restarts` Core restarts, then as many broker restarts."""
    await runtime.ops.get_telemetry_data()
    await runtime.ops.get_export_limit()
    async with (
        listening(ha) as (session, listener),
        running_addon(runtime, supervisor, broker, quick_reconnect=False) as addon,
    ):
        scenario = Scenario(
            ha,
            runtime,
            simulator,
            addon,
            session,
            listener,
            broker,
            supervisor=supervisor.app[FAKE],
        )
        await scenario.wait_all_back(time.monotonic())
        return await run_cycles(scenario, restarts, restarts if broker else 0)
