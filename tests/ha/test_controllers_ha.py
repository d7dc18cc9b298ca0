"""Several controllers in a real Home Assistant Core: every id of the second one is
`sec1000_barn_…`, its controls reach only its own simulator, and removing it from the options
leaves nothing of it behind (REST mode and MQTT mode).

The controllers are a real `Plant` on two simulators; the FAKE Supervisor stands in front of
Home Assistant (the real Supervisor cannot run here) and offers the broker (real mosquitto).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp.test_utils import TestServer
from sec1000.ha.discovery import components, discovery_topic
from sec1000.ha.entities import helpers_for, sensors_of
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.protocol import Command, PhaseMeasurement, write_export_limit_request
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.ha import (
    COMMAND_BUDGET,
    SHOWN_IN_CORE_WITHIN,
    User,
    ha_user,
    load_scripts_yaml,
    running_addon,
)
from tests.helpers.waiting import eventually, eventually_async
from tests.helpers.watchdog import short_watchdog
from tests.mqtt_broker import Mosquitto, set_up_mqtt

pytestmark = pytest.mark.homeassistant

BARN = "barn"
# export_disable's frame at either controller (capacity 10 kW, min 0: make_options).
DISABLE = write_export_limit_request(10_000, 0, PhaseMeasurement.SUM_OF_PHASES)


@pytest.fixture
async def barn_simulator() -> AsyncIterator[SimulatorServer]:
    """The second controller's simulator."""
    server = SimulatorServer(slow_delay=1.5)
    await server.start()
    yield server
    await server.stop()


def barn_item(simulator: SimulatorServer) -> dict[str, object]:
    return {"name": BARN, "host": "127.0.0.1", "port": simulator.port}


@contextlib.asynccontextmanager
async def plant_of(options: Options, data_dir: Path) -> AsyncIterator[Plant]:
    """A plant (not started: the tests read and press themselves), stopped at the end."""
    plant = Plant(options, data_dir, watchdog_timings=short_watchdog())
    try:
        yield plant
    finally:
        await plant.stop()


async def registry(user: User) -> list[dict[str, Any]]:
    """The entity registry's entries whose object id starts with sec1000."""
    entries = await user.ws.send_command({"type": "config/entity_registry/list"})
    return [e for e in entries if e["entity_id"].split(".", 1)[1].startswith("sec1000")]


async def sec1000_devices(user: User) -> dict[str, dict[str, Any]]:
    """The device registry's SEC1000 devices by their MQTT identifier."""
    items = await user.ws.send_command({"type": "config/device_registry/list"})
    return {
        ident[1]: item
        for item in items
        for ident in item["identifiers"]
        if ident[0] == "mqtt" and ident[1].startswith("sec1000")
    }


async def helpers(user: User) -> set[str]:
    out: set[str] = set()
    for domain in ("input_button", "input_number", "input_boolean"):
        items = await user.ws.send_command({"type": f"{domain}/list"})
        out |= {f"{domain}.{item['id']}" for item in items if item["id"].startswith("sec1000")}
    return out


async def states(user: User, prefix: str) -> set[str]:
    """The entity ids of every state whose object id starts with `prefix`."""
    items = await user.ws.send_command({"type": "get_states"})
    return {s["entity_id"] for s in items if s["entity_id"].split(".", 1)[1].startswith(prefix)}


async def notifications(user: User, prefix: str) -> set[str]:
    return {n for n in await user.notifications() if n.startswith(prefix)}


def writes(simulator: SimulatorServer) -> list[bytes]:
    """The export limit writes the simulator received."""
    return [r for r in simulator.requests() if r[4] == Command.WRITE_EXPORT_LIMIT]


def rest_ids(options: Options, controller: str) -> tuple[set[str], set[str]]:
    """A controller's sensor ids and helper ids in REST mode."""
    sensors = {sensor.entity_id for sensor in sensors_of(controller)}
    return sensors, {helper.entity_id for helper in helpers_for(options.price_entity, controller)}


async def test_two_controllers_in_rest_mode_added_pressed_commanded_and_removed(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    aiohttp_server: Any,
    tmp_path: Path,
) -> None:
    ha = fresh_home_assistant
    load_scripts_yaml(ha)
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    options = make_options(entities="rest")
    async with (
        plant_of(options, tmp_path / "data") as plant,
        running_addon(plant, supervisor) as addon,
        ha_user(ha) as user,
    ):
        await user.ws.subscribe(
            {"type": "subscribe_events", "event_type": "sec1000_command_result"},
            lambda event: user.results.append(event["data"]),
        )
        first_sensors, first_helpers = rest_ids(options, "sec1000")
        await eventually_async(lambda: _helpers_are(user, first_helpers), 60, "first's helpers")

        # a controller added while running: its states and helpers come without a restart
        await plant.save_controller(barn_item(barn_simulator), Origin("test"))
        barn = plant.get(BARN)
        barn_sensors, barn_helpers = rest_ids(plant.first.options, BARN)
        assert "sensor.sec1000_barn_export_limit" in barn_sensors
        assert "input_button.sec1000_barn_export_disable" in barn_helpers
        assert "input_number.sec1000_barn_export_limit_setpoint" in barn_helpers
        assert "input_boolean.sec1000_barn_export" in barn_helpers
        await eventually_async(
            lambda: _helpers_are(user, first_helpers | barn_helpers), 60, "barn's helpers"
        )
        await eventually_async(
            lambda: _states_include(user, first_sensors | barn_sensors), 30, "every sensor"
        )
        # the registries: exactly both controllers' helpers (states posted over REST have no
        # entry), each id once, and no device
        entries = await registry(user)
        assert sorted(e["entity_id"] for e in entries) == sorted(first_helpers | barn_helpers)
        assert await sec1000_devices(user) == {}
        await barn.ops.get_telemetry_data()
        await user.wait_value("sensor.sec1000_barn_v1", str(barn.state.telemetry["v1"]))  # type: ignore[index]
        state = await user.state("sensor.sec1000_barn_export_limit")
        assert state is not None
        assert state["attributes"]["friendly_name"] == "SEC1000 barn Export Limit"
        assert await user.value("sensor.sec1000_v1") == "unavailable"  # the first: never read

        # a press on barn's button reaches barn's simulator only
        simulator.exchanges.clear()
        barn_simulator.exchanges.clear()
        await user.call(
            "input_button", "press", entity_id="input_button.sec1000_barn_export_disable"
        )
        await eventually(lambda: bool(barn.state.commands), COMMAND_BUDGET, "barn's command")
        assert barn.state.commands[-1].command == "export_disable"
        assert writes(barn_simulator)[0] == DISABLE
        assert writes(simulator) == []
        assert not plant.first.state.commands
        await user.wait_value("sensor.sec1000_barn_export_disable_feedback", "1")
        await user.wait_value("input_boolean.sec1000_barn_export", "off")

        # sec1000_command names its controller; the result names it back
        barn_simulator.exchanges.clear()
        await _fire(user, {"command": "get_export_limit", "controller": BARN, "request_id": "b1"})
        result = await user.wait_result("get_export_limit")
        assert (result["controller"], result["request_id"], result["ok"]) == (BARN, "b1", True)
        assert barn_simulator.requests() and simulator.requests() == []
        await _fire(user, {"command": "get_export_limit", "request_id": "f1"})
        await eventually(
            lambda: any(r["request_id"] == "f1" for r in user.results), SHOWN_IN_CORE_WITHIN, "f1"
        )
        first = next(r for r in user.results if r["request_id"] == "f1")
        assert first["controller"] == "sec1000"
        # an unknown controller: an error result in words, nothing sent anywhere
        simulator.exchanges.clear()
        barn_simulator.exchanges.clear()
        await _fire(user, {"command": "export_enable", "controller": "attic", "request_id": "x"})
        await eventually(
            lambda: any(r["request_id"] == "x" for r in user.results), SHOWN_IN_CORE_WITHIN, "x"
        )
        unknown = next(r for r in user.results if r["request_id"] == "x")
        assert unknown["controller"] == "attic" and unknown["ok"] is False
        assert unknown["feedback"] == 128
        assert "no controller named 'attic'" in unknown["message"]
        assert "sec1000, barn" in unknown["message"]
        assert simulator.requests() == [] and barn_simulator.requests() == []
        assert addon.client is not None and addon.client.connected  # no crash

        # the awaitable scripts take the controller too, and answer with it
        assert {o["action"] for o in await addon.install_scripts()} == {"created"}
        answers = [
            (await _run_script(user, "sec1000_get_export_limit", **data))["response"]
            for data in ({"controller": BARN}, {}, {"controller": "attic"})
        ]
        assert [(a["controller"], a["ok"]) for a in answers] == [
            (BARN, True),
            ("sec1000", True),
            ("attic", False),
        ]
        assert answers[2]["feedback"] == 128

        # the price sensor (a shared option) reaches every controller's policy, and each gets
        # its policy switch
        async with user.session.post(
            f"{ha.api_url}/states/sensor.test_price",
            json={"state": "0.25", "attributes": {"unit_of_measurement": "EUR/kWh"}},
            headers=ha.headers,
        ) as response:
            assert response.status in (200, 201)
        await plant.first.update_options({"price_entity": "sensor.test_price"})
        assert barn.options.price_entity == "sensor.test_price"
        await eventually(
            lambda: all(_price_of(runtime) == 0.25 for runtime in (plant.first, barn)),
            20,
            "the price at both policies",
        )
        policy_switches = {
            "input_boolean.sec1000_price_policy",
            "input_boolean.sec1000_barn_price_policy",
        }
        await eventually_async(
            lambda: _helpers_are(user, first_helpers | barn_helpers | policy_switches),
            30,
            "both policy switches",
        )

        # removed from the options: nothing of barn is left, the first stays
        await plant.remove_controller(BARN, Origin("test"))
        await eventually_async(lambda: _nothing_of_barn(user), 30, "barn removed")
        assert await helpers(user) == first_helpers | {"input_boolean.sec1000_price_policy"}
        assert await _states_include(user, first_sensors)
        assert (tmp_path / "data" / BARN).is_dir()  # its files are kept


def _price_of(runtime: Runtime) -> float | None:
    price = runtime.policy.price
    return None if price is None else price.reading.current


async def _run_script(user: User, object_id: str, **data: Any) -> dict[str, Any]:
    """Call a script and wait for its response: {"context": …, "response": …}."""
    result: dict[str, Any] = await user.ws.send_command(
        {
            "type": "call_service",
            "domain": "script",
            "service": object_id,
            "service_data": data,
            "return_response": True,
        }
    )
    return result


async def _fire(user: User, data: dict[str, Any]) -> None:
    await user.ws.send_command(
        {"type": "fire_event", "event_type": "sec1000_command", "event_data": data}
    )


async def _helpers_are(user: User, wanted: set[str]) -> bool:
    return await helpers(user) == wanted


async def _states_include(user: User, wanted: set[str]) -> bool:
    return wanted <= await states(user, "sec1000")


async def _nothing_of_barn(user: User) -> bool:
    prefix = "sec1000_barn"
    left = (
        await states(user, prefix),
        {h for h in await helpers(user) if h.split(".", 1)[1].startswith(prefix)},
        [e for e in await registry(user) if e["entity_id"].split(".", 1)[1].startswith(prefix)],
        await notifications(user, prefix),
        [d for d in await sec1000_devices(user) if d.startswith(prefix)],
    )
    if any(left):
        print("left of barn:", left)
    return not any(left)


async def retained(broker: Mosquitto, topic: str, wait: float = 1.0) -> bytes | None:
    """The retained message on `topic` (None when there is none)."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for message in client.messages:
                    payload = message.payload
                    return bytes(payload) if isinstance(payload, bytes | bytearray) else None
    return None


async def test_two_controllers_as_two_mqtt_devices_pressed_removed_and_added(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    mosquitto: Mosquitto,
    aiohttp_server: Any,
    tmp_path: Path,
) -> None:
    ha = fresh_home_assistant
    await set_up_mqtt(ha, mosquitto)
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    options = make_options(entities="mqtt", controllers=[barn_item(barn_simulator)])
    async with (
        plant_of(options, tmp_path / "data") as plant,
        running_addon(plant, supervisor, mosquitto) as addon,
        ha_user(ha) as user,
    ):
        barn = plant.get(BARN)
        wanted = {
            name: {c.entity_id: c.unique_id for c in components(options, name)}
            for name in ("sec1000", BARN)
        }
        assert (
            wanted[BARN]["sensor.sec1000_barn_export_limit"] == "sec1000_barn_sensor_export_limit"
        )
        assert wanted["sec1000"]["sensor.sec1000_export_limit"] == "sec1000_sensor_export_limit"
        every = {**wanted["sec1000"], **wanted[BARN]}
        await eventually_async(lambda: _registry_is(user, every), 60, "both devices' entities")
        # the registries: every entity id and unique id exactly, one device per controller
        entries = {e["entity_id"]: e for e in await registry(user)}
        assert {e: entry["unique_id"] for e, entry in entries.items()} == every
        devices = await sec1000_devices(user)
        assert set(devices) == {"sec1000", "sec1000_barn"}
        assert devices["sec1000_barn"]["name"] == "SEC1000 barn"
        assert devices["sec1000"]["name"] == "SEC1000"
        for name, device in (("sec1000", "sec1000"), (BARN, "sec1000_barn")):
            owners = {entries[entity_id]["device_id"] for entity_id in wanted[name]}
            assert owners == {devices[device]["id"]}, name
        assert await helpers(user) == set()
        assert set(addon.devices) == {"sec1000", BARN}
        await barn.ops.get_telemetry_data()
        await user.wait_value("sensor.sec1000_barn_v1", str(barn.state.telemetry["v1"]), 20)  # type: ignore[index]
        state = await user.state("sensor.sec1000_barn_v1")
        assert state is not None
        assert state["attributes"]["friendly_name"] == "SEC1000 barn Voltage L1"

        # barn's button reaches barn's simulator only
        simulator.exchanges.clear()
        barn_simulator.exchanges.clear()
        await user.call("button", "press", entity_id="button.sec1000_barn_export_disable")
        await eventually(lambda: bool(barn.state.commands), COMMAND_BUDGET, "barn's command")
        assert (barn.state.commands[-1].command, barn.state.commands[-1].source) == (
            "export_disable",
            "mqtt",
        )
        assert writes(barn_simulator)[0] == DISABLE
        assert writes(simulator) == [] and not plant.first.state.commands
        await user.wait_value("sensor.sec1000_barn_export_disable_feedback", "1")

        # removed from the options: its device, entities and retained config go
        await plant.remove_controller(BARN, Origin("test"))
        await eventually_async(lambda: _nothing_of_barn(user), 30, "barn's device removed")
        assert await retained(mosquitto, discovery_topic(BARN)) is None
        assert await retained(mosquitto, discovery_topic()) is not None  # the first's stays
        assert set(await sec1000_devices(user)) == {"sec1000"}
        assert {e["entity_id"] for e in await registry(user)} == set(wanted["sec1000"])
        assert set(addon.devices) == {"sec1000"}

        # added again while running: its device comes back with the same ids
        await plant.save_controller(barn_item(barn_simulator), Origin("test"))
        await eventually_async(lambda: _registry_is(user, every), 60, "barn's device back")
        assert set(await sec1000_devices(user)) == {"sec1000", "sec1000_barn"}


async def _registry_is(user: User, wanted: dict[str, str]) -> bool:
    return {e["entity_id"]: e["unique_id"] for e in await registry(user)} == wanted


async def test_a_controller_removed_while_the_addon_was_stopped_is_removed_at_its_start(
    make_options: Callable[..., Options],
    barn_simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    aiohttp_server: Any,
    tmp_path: Path,
) -> None:
    """The usual way to remove one: the Configuration tab, then a restart. The next run
    finds barn in `controllers.json` but not in the options, and removes what it left."""
    ha = fresh_home_assistant
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    options = make_options(entities="rest", controllers=[barn_item(barn_simulator)])
    first_sensors, first_helpers = rest_ids(options, "sec1000")
    barn_sensors, barn_helpers = rest_ids(options, BARN)
    data = tmp_path / "data"
    async with ha_user(ha) as user:
        async with plant_of(options, data) as plant, running_addon(plant, supervisor):
            await eventually_async(
                lambda: _helpers_are(user, first_helpers | barn_helpers), 60, "both helpers"
            )
            await eventually_async(
                lambda: _states_include(user, first_sensors | barn_sensors), 30, "both sensors"
            )
        assert await helpers(user) == first_helpers | barn_helpers  # a stop removes nothing
        without = Options.from_mapping({"controllers": []}, base=options)
        async with plant_of(without, data) as plant, running_addon(plant, supervisor):
            assert list(plant.departed) == [BARN]
            await eventually_async(lambda: _nothing_of_barn(user), 60, "barn's leftovers gone")
            await eventually(lambda: not plant.departed, 10, "barn forgotten")
            assert await helpers(user) == first_helpers
            assert await _states_include(user, first_sensors)
        assert (data / "controllers.json").read_text().strip() == '["sec1000"]'
        assert (data / BARN).is_dir()  # its files are kept
