"""The meter check in a real Home Assistant Core: an overshoot shows in
`binary_sensor.sec1000_export_over_limit` (with its attributes), in the two counters and in a
notification, in the REST mode and as the MQTT device (a real broker, mosquitto).

The simulator's `overshoot` fault adds 2 kW of export that nobody limits; the add-on reads
telemetry every second and calls 10 s over the limit an overshoot (the shortest allowed). The
broker reaches the add-on through the FAKE Supervisor (the real one cannot run here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sec1000.ha.entities import OVER_LIMIT, OVER_LIMIT_ENERGY, OVER_LIMIT_TODAY
from sec1000.ha.notifications import OVERSHOOT_NOTIFICATION
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.ha import (
    SHOWN_IN_CORE_WITHIN,
    User,
    connected,
    forget_posted_states,
    ha_user,
    has_notification,
    lacks_notification,
    running_addon,
)
from tests.helpers.waiting import eventually_async
from tests.mqtt_broker import Mosquitto, set_up_mqtt

pytestmark = pytest.mark.homeassistant

LIMIT_KW = 3.0


def meter_runtime(make_options: Callable[..., Options], data: Path) -> Runtime:
    return Runtime(
        make_options(scan_interval=1, overshoot_seconds=10, overshoot_margin_kw=0.2), data
    )


async def overshoot_seen_and_gone(user: User, runtime: Runtime, simulator: SimulatorServer) -> None:
    """Start an overshoot at the simulator, check what Home Assistant shows, then end it."""
    await user.wait_value(OVER_LIMIT.entity_id, "off", within=30)
    assert await user.value(OVER_LIMIT_ENERGY.entity_id) == "0.000"
    simulator.set_fault("overshoot")
    await user.wait_value(OVER_LIMIT.entity_id, "on", within=40)

    async def attributes_shown() -> bool:
        """The MQTT device sends the state and its attributes on two topics: Core may show the
        state a moment before the attributes."""
        state = await user.state(OVER_LIMIT.entity_id)
        return state is not None and state["attributes"].get("limit_kw") is not None

    await eventually_async(attributes_shown, SHOWN_IN_CORE_WITHIN, "the overshoot's attributes")
    state = await user.state(OVER_LIMIT.entity_id)
    assert state is not None
    attributes: dict[str, Any] = state["attributes"]
    assert attributes["device_class"] == "problem"
    assert attributes["limit_kw"] == LIMIT_KW
    assert attributes["max_kw"] == pytest.approx(5.0, abs=0.05)
    assert attributes["energy_over_kwh"] >= 0
    since = dt.datetime.fromisoformat(attributes["since"])
    assert since.tzinfo is not None
    assert abs(since.timestamp() - runtime.state.overshoot["since"]) < 1
    await eventually_async(
        lambda: has_notification(user, OVERSHOOT_NOTIFICATION), 20, "the overshoot notification"
    )
    simulator.clear_faults()
    await user.wait_value(OVER_LIMIT.entity_id, "off", within=40)
    await eventually_async(
        lambda: lacks_notification(user, OVERSHOOT_NOTIFICATION), 20, "the notification dismissed"
    )
    # the counters as the add-on counts them: over 0, and what Home Assistant shows
    totals = runtime.energy.snapshot()
    energy = totals["totals"]["over_limit"]
    minutes = totals["today"]["over_limit_min"]
    assert energy > 0 and minutes > 0
    await user.wait_value(OVER_LIMIT_ENERGY.entity_id, f"{energy:.3f}", within=SHOWN_IN_CORE_WITHIN)
    await user.wait_value(OVER_LIMIT_TODAY.entity_id, f"{minutes:.1f}", within=SHOWN_IN_CORE_WITHIN)
    energy_state = await user.state(OVER_LIMIT_ENERGY.entity_id)
    assert energy_state is not None
    assert energy_state["attributes"]["state_class"] == "total_increasing"
    assert energy_state["attributes"]["unit_of_measurement"] == "kWh"


async def test_an_overshoot_in_the_rest_mode(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    home_assistant: HomeAssistant,
    aiohttp_server: Any,
) -> None:
    await forget_posted_states(home_assistant)
    supervisor: TestServer = await aiohttp_server(
        create_fake_supervisor(home_assistant.url, home_assistant.token)
    )
    simulator.device.profile = lambda _t: (9_000.0, 500.0)  # sun: the limiter curtails
    runtime = meter_runtime(make_options, tmp_path)
    assert (await runtime.ops.set_export_limit(LIMIT_KW, Origin("panel"))).ok
    await runtime.start()
    try:
        async with running_addon(runtime, supervisor) as addon, ha_user(home_assistant) as user:
            await connected(addon)
            assert addon.entity_mode == "rest"
            await overshoot_seen_and_gone(user, runtime, simulator)
    finally:
        await runtime.stop()


async def test_an_overshoot_on_the_mqtt_device(
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    mosquitto: Mosquitto,
    aiohttp_server: Any,
) -> None:
    await set_up_mqtt(fresh_home_assistant, mosquitto)
    supervisor: TestServer = await aiohttp_server(
        create_fake_supervisor(fresh_home_assistant.url, fresh_home_assistant.token)
    )
    simulator.device.profile = lambda _t: (9_000.0, 500.0)
    runtime = meter_runtime(make_options, tmp_path)
    assert (await runtime.ops.set_export_limit(LIMIT_KW, Origin("panel"))).ok
    await runtime.start()
    try:
        async with (
            running_addon(runtime, supervisor, mosquitto) as addon,
            ha_user(fresh_home_assistant) as user,
        ):
            await connected(addon)
            await eventually_async(
                lambda: _on_the_mqtt_platform(user, OVER_LIMIT.entity_id), 60, "the MQTT entity"
            )
            assert addon.entity_mode == "mqtt"
            await overshoot_seen_and_gone(user, runtime, simulator)
    finally:
        await runtime.stop()


async def _on_the_mqtt_platform(user: User, entity_id: str) -> bool:
    entries = await user.ws.send_command({"type": "config/entity_registry/list"})
    return any(e["entity_id"] == entity_id and e["platform"] == "mqtt" for e in entries)
