"""The Home Assistant bridge against a real Home Assistant Core, through a fake Supervisor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sec1000.ha import Endpoint
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.entities import ALL_SENSORS, HELPERS
from sec1000.ha.notifications import (
    CONFIG_NOTIFICATION,
    GUARD_NOTIFICATION,
    OFFLINE_NOTIFICATION,
    RESTORE_NOTIFICATION,
)
from sec1000.ha.websocket import WebSocketConnection
from sec1000.limiter.watchdog import RestoreRecord
from sec1000.operations import Origin
from sec1000.options import OptionsError
from sec1000.plant import Plant
from sec1000.protocol import (
    Command,
    ControlMode,
    PhaseMeasurement,
    Switch,
    mode_switch_request,
    write_export_limit_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.ha import (
    COMMAND_BUDGET,
    SHOWN_IN_CORE_WITHIN,
    User,
    connected,
    forget_posted_states,
    has_notification,
    lacks_notification,
    running_addon,
)
from tests.helpers.waiting import eventually, eventually_async
from tests.helpers.watchdog import short_watchdog

pytestmark = pytest.mark.homeassistant


@pytest.fixture
async def user(home_assistant: HomeAssistant) -> AsyncIterator[User]:
    async with aiohttp.ClientSession() as session:
        endpoint = Endpoint(
            f"{home_assistant.url}/api",
            f"{home_assistant.url}/api/websocket",
            home_assistant.token,
            "test",
        )
        ws = await WebSocketConnection.open(session, endpoint)
        person = User(home_assistant, session, ws)
        await ws.subscribe(
            {"type": "subscribe_events", "event_type": "sec1000_command_result"},
            lambda event: person.results.append(event["data"]),
        )
        yield person
        await ws.close()


@pytest.fixture
async def supervisor(home_assistant: HomeAssistant, aiohttp_server: Any) -> TestServer:
    """The FAKE Supervisor in front of the real (shared) Home Assistant, with no state left by
    an earlier test's add-on."""
    await forget_posted_states(home_assistant)
    server: TestServer = await aiohttp_server(
        create_fake_supervisor(home_assistant.url, home_assistant.token)
    )
    return server


@pytest.fixture
async def addon(runtime: Runtime, supervisor: TestServer) -> AsyncIterator[HomeAssistantAdapter]:
    """The add-on connected to the shared Home Assistant through the fake Supervisor."""
    async with running_addon(runtime, supervisor) as adapter:
        yield adapter


async def test_sensors_appear_with_contract_ids_and_attributes(
    addon: HomeAssistantAdapter, runtime: Runtime, user: User
) -> None:
    await connected(addon)
    await runtime.ops.get_telemetry_data()
    await runtime.ops.get_export_limit(Origin("test"))
    telemetry = runtime.state.telemetry
    assert telemetry is not None
    await user.wait_value("sensor.sec1000_load_power", str(telemetry["load_power"]))
    v1 = await user.state("sensor.sec1000_v1")
    assert v1 is not None and v1["attributes"] == {
        "friendly_name": "SEC1000 Voltage L1",
        "unit_of_measurement": "V",
        "device_class": "voltage",
        "state_class": "measurement",
        "icon": "mdi:flash",
    }
    meters = await user.state("sensor.sec1000_meters_power")
    assert meters is not None and meters["attributes"]["unit_of_measurement"] == "kW"
    assert meters["attributes"]["friendly_name"] == "SEC1000 Meters Power"
    await user.wait_value("sensor.sec1000_export_limit", "5.0")
    await user.wait_value("sensor.sec1000_export_state", "on")
    await user.wait_value("sensor.sec1000_modul_started", "on")
    feedback = await user.state("sensor.sec1000_get_export_limit_feedback")
    assert feedback is not None and feedback["state"] == "1"
    assert feedback["attributes"]["friendly_name"] == "SEC1000 Get Export Limit - Feedback"
    for sensor in ALL_SENSORS:
        assert await user.state(sensor.entity_id) is not None, sensor.entity_id


async def test_every_helper_exists_once_after_several_connects(
    addon: HomeAssistantAdapter, runtime: Runtime, user: User, supervisor: TestServer
) -> None:
    await connected(addon)
    second = HomeAssistantAdapter(
        Plant.of_one(runtime), addon.client.endpoint, addon.client.session
    )
    second.start()
    await eventually(lambda: second.client.connected, 30, "second connection")
    await second.stop()
    for domain in ("input_button", "input_number", "input_boolean"):
        items = await user.ws.send_command({"type": f"{domain}/list"})
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids))
        for helper in HELPERS:
            if helper.domain == domain:
                assert ids.count(helper.object_id) == 1, (helper.object_id, ids)
    states = await user.ws.send_command({"type": "get_states"})
    entity_ids = [state["entity_id"] for state in states]
    for helper in HELPERS:
        assert entity_ids.count(helper.entity_id) == 1
        assert f"{helper.entity_id}_2" not in entity_ids


@pytest.mark.parametrize(
    ("button", "command", "first_frame"),
    [
        (
            "input_button.sec1000_export_enable",
            "export_enable",
            write_export_limit_request(10_000, 8_000, PhaseMeasurement.SUM_OF_PHASES),
        ),
        (
            "input_button.sec1000_export_disable",
            "export_disable",
            write_export_limit_request(10_000, 0, PhaseMeasurement.SUM_OF_PHASES),
        ),
        (
            "input_button.sec1000_get_export_limit",
            "get_export_limit",
            bytes.fromhex("00 05 01 01 43 00 45"),
        ),
        ("input_button.sec1000_set_datetime", "set_datetime", None),
    ],
)
async def test_button_press_sends_frames_then_feedback_and_result_event(
    addon: HomeAssistantAdapter,
    simulator: SimulatorServer,
    user: User,
    button: str,
    command: str,
    first_frame: bytes | None,
) -> None:
    await connected(addon)
    feedback = f"sensor.sec1000_{command}_feedback"
    posted = await user.stamp(feedback)
    await user.call("input_button", "press", entity_id=button)
    await eventually(lambda: bool(simulator.requests()), COMMAND_BUDGET, "a frame at the simulator")
    if first_frame is not None:
        assert simulator.requests()[0] == first_frame
    else:
        assert simulator.requests()[0][4] == Command.SET_DATETIME
    result = await user.wait_result(command)
    assert result["ok"] is True and result["feedback"] == 1 and result["message"]
    await user.wait_value(feedback, "1", newer_than=posted)


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(off_window=0.2)])
async def test_reset_watchdog_button_runs_the_guarded_sequence(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    feedback = "sensor.sec1000_reset_export_watchdog_feedback"
    posted = await user.stamp(feedback)
    await user.call("input_button", "press", entity_id="input_button.sec1000_reset_export_watchdog")
    result = await user.wait_result("reset_export_watchdog")
    assert result["ok"] is True, result
    off = mode_switch_request(Command.MODE_VALUE, Switch.OFF)
    on = mode_switch_request(Command.MODE_VALUE, Switch.ON)
    frames = simulator.requests()
    assert off in frames and on in frames[frames.index(off) :], frames  # limiter off, then on
    assert simulator.device.mode is ControlMode.VALUE
    await user.wait_value(feedback, "1", newer_than=posted)


async def test_setpoint_change_sets_the_limit(
    addon: HomeAssistantAdapter, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    feedback = "sensor.sec1000_set_export_limit_feedback"
    posted = await user.stamp(feedback)
    await user.call(
        "input_number",
        "set_value",
        entity_id="input_number.sec1000_export_limit_setpoint",
        value=2.75,
    )
    result = await user.wait_result("set_export_limit")  # not the feedback: it starts at 1
    assert result["ok"] is True, result
    assert simulator.device.export_limit_w == 2_750
    await user.wait_value(feedback, "1", newer_than=posted)


async def test_export_switch_turns_export_off_and_on(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    await runtime.ops.get_export_limit(Origin("test"))
    await user.wait_value("input_boolean.sec1000_export", "on")
    await user.call("input_boolean", "turn_off", entity_id="input_boolean.sec1000_export")
    await user.wait_value("sensor.sec1000_export_state", "off")
    assert simulator.device.export_limit_w == 0
    # The headline says who: the user who pressed the switch in Home Assistant.
    who = runtime.state.set_by
    assert who is not None and who.origin.startswith("home_assistant:"), who
    name = who.origin.partition(":")[2]
    assert name and name != "automation"
    off = f"Export off, set by {name} in Home Assistant."
    await user.wait_attribute("sensor.sec1000_export_state", "headline", off)
    await user.call("input_boolean", "turn_on", entity_id="input_boolean.sec1000_export")
    await user.wait_value("sensor.sec1000_export_state", "on")
    assert simulator.device.export_limit_w == 8_000
    on = f"Export limited to 8.00 kW, set by {name} in Home Assistant."
    await user.wait_attribute("sensor.sec1000_export_state", "headline", on)


async def test_failed_switch_command_puts_the_switch_back(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    await runtime.ops.get_export_limit(Origin("test"))
    await user.wait_value("input_boolean.sec1000_export", "on")
    simulator.set_fault("reset")
    await user.call("input_boolean", "turn_off", entity_id="input_boolean.sec1000_export")
    await user.wait_value("sensor.sec1000_export_disable_feedback", "64")
    await user.wait_value("input_boolean.sec1000_export", "on")


async def test_the_addons_own_helper_updates_trigger_no_command(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    result = await runtime.ops.set_export_limit(3.3, Origin("panel", "someone"))
    assert result.ok
    await user.wait_value("input_number.sec1000_export_limit_setpoint", "3.3")
    await runtime.ops.export_disable(Origin("panel", "someone"))
    await user.wait_value("input_boolean.sec1000_export", "off")
    await user.wait_value("input_number.sec1000_export_limit_setpoint", "0.0")
    await asyncio.sleep(1.0)  # time for a wrongly taken command to reach the device
    assert len(simulator.requests()) == 10  # the two panel commands, five packets each
    assert [record.command for record in runtime.state.commands] == [
        "set_export_limit",
        "export_disable",
    ]


@pytest.mark.parametrize(
    ("data", "feedback", "frames"),
    [
        ({"command": "set_export_limit", "limit": 2.5, "request_id": "abc"}, 1, 5),
        ({"command": "set_export_limit", "limit": "2,5", "request_id": "abc"}, 1, 5),
        ({"command": "set_export_limit", "limit": "lots", "request_id": "abc"}, 128, 0),
        ({"command": "set_export_limit", "limit": -3, "request_id": "abc"}, 128, 0),
        ({"command": "explode", "request_id": "abc"}, 128, 0),
        ({"limit": 5, "request_id": "abc"}, 128, 0),
        ({"command": ["export_enable"], "request_id": "abc"}, 128, 0),
        ({"command": "export_enable", "request_id": "abc"}, 1, 5),
    ],
)
async def test_command_event_with_good_and_bad_data(
    addon: HomeAssistantAdapter,
    simulator: SimulatorServer,
    user: User,
    data: dict[str, Any],
    feedback: int,
    frames: int,
) -> None:
    await connected(addon)
    await user.ws.send_command(
        {"type": "fire_event", "event_type": "sec1000_command", "event_data": data}
    )
    await eventually(
        lambda: any(r["request_id"] == "abc" for r in user.results),
        SHOWN_IN_CORE_WITHIN,
        "result event",
    )
    result = next(r for r in user.results if r["request_id"] == "abc")
    assert result["feedback"] == feedback, result
    assert result["ok"] is (feedback == 1)
    assert result["message"]
    assert len(simulator.requests()) == frames


async def test_command_log_names_the_home_assistant_user(
    addon: HomeAssistantAdapter, runtime: Runtime, user: User
) -> None:
    await connected(addon)
    await user.call("input_button", "press", entity_id="input_button.sec1000_get_export_limit")
    await eventually(lambda: bool(runtime.state.commands), COMMAND_BUDGET, "a logged command")
    assert runtime.state.commands[-1].source == "home_assistant (Test Owner)"


async def test_telemetry_sensors_go_unavailable_after_three_failures_and_come_back(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    await runtime.ops.get_telemetry_data()
    simulator.set_fault("reset")
    for _ in range(3):
        await runtime.ops.get_telemetry_data()
    await user.wait_value("sensor.sec1000_v1", "unavailable")
    await user.wait_value("sensor.sec1000_get_telemetry_data_feedback", "64")
    simulator.clear_faults()
    await runtime.ops.get_telemetry_data()
    telemetry = runtime.state.telemetry
    assert telemetry is not None
    await user.wait_value("sensor.sec1000_v1", str(telemetry["v1"]))


async def test_home_assistant_restart_republishes_without_duplicates(
    runtime: Runtime, fresh_home_assistant: HomeAssistant, aiohttp_server: Any
) -> None:
    ha = fresh_home_assistant
    supervisor = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    async with running_addon(runtime, supervisor) as addon, aiohttp.ClientSession() as session:
        await connected(addon)
        await runtime.ops.get_telemetry_data()
        volts = str(runtime.state.telemetry["v1"])  # type: ignore[index]
        endpoint = Endpoint(ha.api_url, ha.websocket_url, ha.token, "test")
        before = User(ha, session, await WebSocketConnection.open(session, endpoint))
        await before.wait_value("sensor.sec1000_v1", volts)
        await before.ws.close()
        await (
            ha.async_restart()
        )  # REST-set states do not survive a restart: they must be re-published
        await connected(addon, connects=2)
        after = User(ha, session, await WebSocketConnection.open(session, endpoint))
        await after.wait_value("sensor.sec1000_v1", volts)
        for sensor in ALL_SENSORS:
            assert await after.state(sensor.entity_id) is not None, sensor.entity_id
        for domain in ("input_button", "input_number", "input_boolean"):
            ids = [item["id"] for item in await after.ws.send_command({"type": f"{domain}/list"})]
            assert len(ids) == len(set(ids)) and all(
                ids.count(h.object_id) == 1 for h in HELPERS if h.domain == domain
            )
        await after.ws.close()
        assert addon.client.running  # the add-on never exits


async def test_home_assistant_down_at_start(
    runtime: Runtime, fresh_home_assistant: HomeAssistant, aiohttp_server: Any
) -> None:
    ha = fresh_home_assistant
    await ha.async_stop()
    app = create_fake_supervisor(ha.url, ha.token)
    tries = 0  # the add-on's WebSocket connects the (fake) Supervisor was asked for

    @web.middleware
    async def count_tries(request: web.Request, handler: Any) -> web.StreamResponse:
        nonlocal tries
        if request.path == "/core/websocket":
            tries += 1
        return await handler(request)

    app.middlewares.append(count_tries)
    supervisor = await aiohttp_server(app)
    async with running_addon(runtime, supervisor) as addon, aiohttp.ClientSession() as session:
        # Core is down: the Supervisor answers 502, and the add-on keeps asking (every second:
        # quick_reconnect), says why, and has never connected.
        await eventually(lambda: tries >= 3, 15, "the add-on trying again while Core is down")
        assert addon.client.running and not addon.client.connected
        assert addon.client.connects == 0
        assert "HTTP 502" in str(addon.client.last_error), addon.client.last_error
        assert (await runtime.ops.get_telemetry_data()).ok  # the device side keeps working
        await ha.async_start()
        await connected(addon)
        async with session.get(
            f"{ha.api_url}/states/sensor.sec1000_v1", headers=ha.headers
        ) as response:
            assert response.status == 200


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(backoff_first=0.1)])
async def test_notifications_appear_and_are_dismissed(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    # configuration invalid
    runtime.options_error = OptionsError({"host": "must not be empty"})
    runtime.state.options_changed({})
    await eventually_async(lambda: has_notification(user, CONFIG_NOTIFICATION))
    await runtime.apply_options(runtime.options)
    await eventually_async(lambda: lacks_notification(user, CONFIG_NOTIFICATION))
    # device unreachable for longer than the configured time
    addon.bridge.notifications.started_at = time.time() - 3600
    simulator.set_fault("reset")
    await runtime.ops.get_telemetry_data()
    await eventually_async(lambda: has_notification(user, OFFLINE_NOTIFICATION))
    simulator.clear_faults()
    await runtime.ops.get_telemetry_data()
    await eventually_async(lambda: lacks_notification(user, OFFLINE_NOTIFICATION))
    # a watchdog restore pending, then confirmed
    record = RestoreRecord("value", 4_000, True, time.time())
    await asyncio.to_thread(runtime.restore_store.save, record)  # as a crash would leave it
    simulator.set_fault("silence")
    resume = asyncio.create_task(runtime.watchdog.resume_pending())
    await eventually_async(lambda: has_notification(user, RESTORE_NOTIFICATION))
    simulator.clear_faults()
    assert await asyncio.wait_for(resume, 30)
    await eventually_async(lambda: lacks_notification(user, RESTORE_NOTIFICATION))
    assert simulator.device.export_limit_w == 4_000


async def test_the_export_guard_sensor_and_its_notification(
    addon: HomeAssistantAdapter, runtime: Runtime, simulator: SimulatorServer, user: User
) -> None:
    await connected(addon)
    assert (await runtime.ops.set_export_limit("3", Origin("test"))).ok
    await user.wait_value("sensor.sec1000_export_guard", "in_sync")
    guard = await user.state("sensor.sec1000_export_guard")
    assert guard is not None
    attributes = guard["attributes"]
    assert attributes["friendly_name"] == "SEC1000 Export Guard"
    assert attributes["wanted_limit_kw"] == 3.0 and attributes["device_limit_kw"] == 3.0
    assert attributes["wanted_mode"] == "value" and attributes["device_mode"] == "value"
    assert attributes["last_verified_at"] and attributes["drifts_24h"] == 0
    assert "last_drift_at" in attributes
    # a controller that acknowledges writes without taking them
    simulator.set_fault("ignore_writes")
    result = await runtime.ops.set_export_limit("4", Origin("test"))
    assert result.feedback == 2
    await user.wait_value("sensor.sec1000_export_guard", "unverified")
    await eventually_async(lambda: has_notification(user, GUARD_NOTIFICATION))
    items = await user.ws.send_command({"type": "persistent_notification/get"})
    (note,) = [item for item in items if item["notification_id"] == GUARD_NOTIFICATION]
    assert "holds 3.00 kW in mode value, not 4.00 kW" in note["message"]
    simulator.clear_faults()
    assert (await runtime.ops.set_export_limit("4", Origin("test"))).ok
    await user.wait_value("sensor.sec1000_export_guard", "in_sync")
    await eventually_async(lambda: lacks_notification(user, GUARD_NOTIFICATION))


def nord_pool(now: float, prices: list[float]) -> dict[str, Any]:
    """A Nord Pool custom component sensor: hourly raw_today slots starting this hour."""
    start = (int(now) // 3600) * 3600
    raw = [
        {
            "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + n * 3600)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + (n + 1) * 3600)),
            "value": price,
        }
        for n, price in enumerate(prices)
    ]
    return {"unit_of_measurement": "EUR/kWh", "raw_today": raw, "raw_tomorrow": []}


async def test_the_price_policy_follows_a_nord_pool_sensor_and_its_helper(
    runtime: Runtime, supervisor: TestServer, simulator: SimulatorServer, user: User
) -> None:
    from sec1000.options import Options

    runtime._use(
        Options.from_mapping(
            {
                "price_policy": True,
                "price_entity": "sensor.nordpool_test",
                "export_on_above": 0.02,
                "policy_min_dwell_minutes": 0,
            },
            base=runtime.options,
        )
    )
    price_url = f"{user.ha.url}/api/states/sensor.nordpool_test"
    headers = {"Authorization": f"Bearer {user.ha.token}"}

    async def post_price(price: float) -> None:
        body = {"state": str(price), "attributes": nord_pool(time.time(), [price] * 3)}
        async with user.session.post(price_url, json=body, headers=headers) as response:
            assert response.status in (200, 201)

    await post_price(0.10)
    async with running_addon(runtime, supervisor) as addon:
        runtime.policy.start()
        try:
            await connected(addon)
            await user.wait_value("input_boolean.sec1000_price_policy", "on")
            await user.wait_value("sensor.sec1000_export_policy", "export_on")
            simulator.exchanges.clear()
            await post_price(-0.05)  # negative: the minimum is written at once, verified
            await eventually(lambda: simulator.device.export_limit_w == 0, what="export off")
            await user.wait_value("sensor.sec1000_export_policy", "export_off")
            policy = await user.state("sensor.sec1000_export_policy")
            assert policy is not None
            attributes = policy["attributes"]
            assert attributes["friendly_name"] == "SEC1000 Export Policy"
            assert attributes["price"] == -0.05 and attributes["export_on_above"] == 0.02
            assert "below 0" in attributes["reason"]
            assert {"since", "next_change_at", "next_state", "override_until"} <= set(attributes)
            assert any(r[4] == Command.READ_EXPORT_SETTINGS for r in simulator.requests())
            audit = [e for e in runtime.audit.tail() if e["origin"] == "policy"]
            assert audit and audit[-1]["verified"] is True
            await post_price(0.08)  # past the threshold: the maximum
            await eventually(lambda: simulator.device.export_limit_w == 8_000, what="export on")
            await user.call(
                "input_boolean", "turn_off", entity_id="input_boolean.sec1000_price_policy"
            )
            await eventually(lambda: not runtime.options.price_policy, what="policy off")
            await user.wait_value("sensor.sec1000_export_policy", "disabled")
            writes = len(simulator.requests())
            await post_price(-0.5)
            await asyncio.sleep(1.0)
            assert len(simulator.requests()) == writes  # nothing is written
        finally:
            await runtime.policy.stop()
