"""The price policy with a service-only price integration, against a real Home Assistant Core.

No price integration can be set up offline, so this Core of the test's own runs a STAND-IN for
core's Nord Pool integration (tests/ha_standin/nordpool, labelled so in its name and code): a
custom component with the same domain, config entry, sensor unique id and unit, and the service
`nordpool.get_prices_for_date` with core's fields and answer shape. The add-on finds it through
the entity registry, asks the service over the WebSocket and acts on the slots it answers at the
slot boundary, with the sensor's state unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sec1000.ha import Endpoint
from sec1000.ha.websocket import WebSocketConnection
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.ha import connected, running_addon
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.homeassistant

STANDIN = Path(__file__).parents[1] / "ha_standin" / "nordpool"
PRICE_ENTITY = "sensor.nord_pool_se3_current_price"
SERVICE = "service:nordpool.get_prices_for_date"
BOUNDARY_IN = 35.0  # seconds from writing the prices to the slot where they turn negative


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def write_prices(ha: HomeAssistant, boundary: float, **extra: Any) -> None:
    """The stand-in's prices: 100 EUR/MWh until `boundary`, -50 for ten minutes, then 120;
    its sensor's state stays 0.1 EUR/kWh."""
    entries = [
        {"start": iso(boundary - 600), "end": iso(boundary), "price": 100.0},
        {"start": iso(boundary), "end": iso(boundary + 600), "price": -50.0},
        {"start": iso(boundary + 600), "end": iso(boundary + 1200), "price": 120.0},
    ]
    prices = {"area": "SE3", "currency": "EUR", "state": 0.1, "entries": entries, **extra}
    (ha.config_dir / "standin_prices.json").write_text(json.dumps(prices))


@pytest.fixture
async def standin_core(home_assistant_factory: Callable[[], HomeAssistant]) -> HomeAssistant:
    """A Core of the test's own with the Nord Pool stand-in installed (not yet configured)."""
    ha = await asyncio.to_thread(home_assistant_factory)
    shutil.copytree(STANDIN, ha.config_dir / "custom_components" / "nordpool")
    await ha.async_start()
    return ha


async def add_entry(ha: HomeAssistant) -> None:
    """Configure the stand-in (its flow creates the entry at once)."""
    async with (
        aiohttp.ClientSession(headers=ha.headers) as session,
        session.post(
            f"{ha.api_url}/config/config_entries/flow", json={"handler": "nordpool"}
        ) as response,
    ):
        result = await response.json()
    assert result.get("type") == "create_entry", result


@pytest.fixture
async def owner(
    standin_core: HomeAssistant,
) -> AsyncIterator[tuple[WebSocketConnection, list[Any]]]:
    """The owner's WebSocket, with the stand-in's calls collected."""
    ha = standin_core
    endpoint = Endpoint(ha.api_url, ha.websocket_url, ha.token, "test")
    async with aiohttp.ClientSession() as session:
        ws = await WebSocketConnection.open(session, endpoint)
        calls: list[Any] = []
        await ws.subscribe(
            {"type": "subscribe_events", "event_type": "sec1000_standin_call"},
            lambda event: calls.append(event["data"]),
        )
        yield ws, calls
        await ws.close()


async def policy_attributes(ws: WebSocketConnection) -> dict[str, Any]:
    states = await ws.send_command({"type": "get_states"})
    found = [s for s in states if s["entity_id"] == "sensor.sec1000_export_policy"]
    return dict(found[0]["attributes"]) if found else {}


async def wait_attributes(
    ws: WebSocketConnection, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        attributes = await policy_attributes(ws)
        if check(attributes):
            return attributes
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: sensor.sec1000_export_policy has {attributes}")
        await asyncio.sleep(0.1)


def use(runtime: Runtime, price_entity: str) -> None:
    runtime._use(
        Options.from_mapping(
            {
                "price_policy": True,
                "price_entity": price_entity,
                "export_on_above": 0.02,
                "policy_min_dwell_minutes": 0,
            },
            base=runtime.options,
        )
    )


async def test_a_service_only_integration_gives_the_forecast_the_policy_acts_on(
    standin_core: HomeAssistant,
    owner: tuple[WebSocketConnection, list[Any]],
    runtime: Runtime,
    simulator: SimulatorServer,
    aiohttp_server: Any,
) -> None:
    ha, (ws, calls) = standin_core, owner
    boundary = time.time() + BOUNDARY_IN
    write_prices(ha, boundary)
    await add_entry(ha)
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    use(runtime, PRICE_ENTITY)
    async with running_addon(runtime, supervisor) as addon:
        runtime.policy.start()
        try:
            await connected(addon)
            attributes = await wait_attributes(
                ws, lambda a: a.get("forecast_source") == SERVICE, "the service's forecast"
            )
            assert attributes["price"] == 0.1 and attributes["next_state"] == "export_off"
            planned = dt.datetime.fromisoformat(attributes["next_change_at"]).timestamp()
            assert planned == pytest.approx(boundary, abs=1)
            today = dt.datetime.now(dt.UTC).date()  # the test Core's zone is UTC
            assert calls[0] == {
                "config_entry": calls[0]["config_entry"],
                "date": today.isoformat(),
                "areas": ["SE3"],
                "currency": "EUR",
            }
            assert {call["date"] for call in calls[:2]} == {
                today.isoformat(),
                (today + dt.timedelta(days=1)).isoformat(),
            }
            assert runtime.policy.diagnostics()["time_zone_from"] == "home_assistant"
            assert simulator.device.export_limit_w == 8_000
            # At the boundary the slot's price (-50 EUR/MWh) counts, not the older state.
            await eventually(lambda: simulator.device.export_limit_w == 0, 40, "export off")
            assert time.time() >= boundary - 0.5
            attributes = await wait_attributes(ws, lambda a: a.get("price") == -0.05, "-0.05")
            assert attributes["forecast_source"] == SERVICE
        finally:
            await runtime.policy.stop()


async def test_without_a_service_answer_the_current_price_alone_counts_and_it_says_why(
    standin_core: HomeAssistant,
    owner: tuple[WebSocketConnection, list[Any]],
    runtime: Runtime,
    aiohttp_server: Any,
) -> None:
    ha, (ws, calls) = standin_core, owner
    write_prices(ha, time.time() + 3600, fail="the stand-in was told to fail")
    await add_entry(ha)
    async with (
        aiohttp.ClientSession(headers=ha.headers) as session,
        session.post(
            f"{ha.api_url}/states/sensor.posted_price",
            json={"state": "0.2", "attributes": {"unit_of_measurement": "EUR/kWh"}},
        ) as response,
    ):
        assert response.status in (200, 201)
    supervisor: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    use(runtime, PRICE_ENTITY)
    async with running_addon(runtime, supervisor) as addon:
        runtime.policy.start()
        try:
            await connected(addon)
            failed = await wait_attributes(
                ws, lambda a: "told to fail" in str(a.get("forecast_note")), "the failure"
            )
            assert failed["forecast_source"] == "none"
            assert failed["price"] == 0.1 and calls
            use(runtime, "sensor.posted_price")  # a state posted over REST: no registry entry
            unregistered = await wait_attributes(
                ws, lambda a: "entity registry" in str(a.get("forecast_note")), "no entry"
            )
            assert unregistered["forecast_source"] == "none"
            assert unregistered["price"] == 0.2
        finally:
            await runtime.policy.stop()
