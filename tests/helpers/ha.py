"""Shared by the tests against a real Home Assistant Core: a user on their own connection, the
add-on's Home Assistant side wired as `serve` wires it, and a Core that loads scripts.yaml."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sec1000.ha import RECONNECT_MAX, Endpoint
from sec1000.ha.adapter import AdapterTimings, HomeAssistantAdapter
from sec1000.ha.rest import DEFAULT_TIMEOUT as REST_TIMEOUT
from sec1000.ha.supervisor import SupervisorOptionsStore, endpoint_from_env
from sec1000.ha.websocket import WebSocketConnection
from sec1000.limiter.watchdog import DEFAULT_TIMINGS
from sec1000.plant import Plant
from sec1000.runtime import Runtime

from tests.fake_supervisor import ADDON_TOKEN, FAKE
from tests.ha_harness import HomeAssistant
from tests.helpers.device import TEST_GAP_MS, TEST_TIMEOUT_S
from tests.helpers.waiting import eventually
from tests.mqtt_broker import Mosquitto

# How long a command's effect may take to show in Core: the longest command on the tests' link
# (a reset: three switches off, the real off window and settle, three on, the limit written and
# read back twice: ten exchanges, each after the gap and at most the timeout), then the add-on's
# write of the new state to Core (its REST call's timeout; an MQTT publish has the same 10 s).
LONGEST_COMMAND_EXCHANGES = 10
COMMAND_BUDGET = (
    DEFAULT_TIMINGS.off_window
    + DEFAULT_TIMINGS.settle
    + LONGEST_COMMAND_EXCHANGES * (TEST_GAP_MS / 1000 + TEST_TIMEOUT_S)
)
SHOWN_IN_CORE_WITHIN = COMMAND_BUDGET + (REST_TIMEOUT.total or 0)


def controllers_of(core: Runtime | Plant) -> Plant:
    """What the adapter takes: the plant, or the plant of a lone runtime."""
    return Plant.of_one(core) if isinstance(core, Runtime) else core


class User:
    """A Home Assistant user on their own WebSocket and REST calls (the real token)."""

    def __init__(
        self, ha: HomeAssistant, session: aiohttp.ClientSession, ws: WebSocketConnection
    ) -> None:
        self.ha, self.session, self.ws = ha, session, ws
        self.results: list[dict[str, Any]] = []

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        async with self.session.get(
            f"{self.ha.url}/api/states/{entity_id}",
            headers={"Authorization": f"Bearer {self.ha.token}"},
        ) as response:
            return await response.json() if response.status == 200 else None

    async def value(self, entity_id: str) -> str | None:
        state = await self.state(entity_id)
        return None if state is None else state["state"]

    async def stamp(self, entity_id: str) -> str:
        """When the state was last written (last_reported counts a write of the same value too),
        "" when there is none: a later stamp proves a new write."""
        state = await self.state(entity_id)
        return "" if state is None else written(state)

    async def wait_value(
        self,
        entity_id: str,
        expected: str,
        within: float = SHOWN_IN_CORE_WITHIN,
        newer_than: str | None = None,
    ) -> None:
        """Wait for `expected`; with `newer_than` (a stamp taken before the action), written
        after it: feedback starts at 1, so a "1" alone proves nothing."""
        deadline = time.monotonic() + within
        while True:
            state = await self.state(entity_id)
            value = None if state is None else state["state"]
            fresh = newer_than is None or (state is not None and written(state) > newer_than)
            if value == expected and fresh:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{entity_id} is {value!r}, expected a new write of {expected!r}")
            await asyncio.sleep(0.05)

    async def wait_attribute(
        self, entity_id: str, key: str, expected: str, within: float = SHOWN_IN_CORE_WITHIN
    ) -> None:
        """Wait until the entity's attribute `key` is `expected`."""
        deadline = time.monotonic() + within
        while True:
            state = await self.state(entity_id)
            value = None if state is None else state["attributes"].get(key)
            if value == expected:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{entity_id}'s {key} is {value!r}, expected {expected!r}")
            await asyncio.sleep(0.05)

    async def wait_result(
        self, command: str, within: float = SHOWN_IN_CORE_WITHIN
    ) -> dict[str, Any]:
        """The first result event of `command` since this user subscribed (a new event each)."""
        await eventually(
            lambda: any(r["command"] == command for r in self.results), within, f"{command} result"
        )
        return next(r for r in self.results if r["command"] == command)

    async def call(self, domain: str, service: str, **data: Any) -> Any:
        return await self.ws.send_command(
            {"type": "call_service", "domain": domain, "service": service, "service_data": data}
        )

    async def notifications(self) -> set[str]:
        items = await self.ws.send_command({"type": "persistent_notification/get"})
        return {item["notification_id"] for item in items}


def written(state: dict[str, Any]) -> str:
    """When a state was last written, as Home Assistant's ISO text ("" when it does not say)."""
    return str(state.get("last_reported") or state.get("last_updated") or "")


async def has_notification(user: User, notification_id: str) -> bool:
    return notification_id in await user.notifications()


async def lacks_notification(user: User, notification_id: str) -> bool:
    return notification_id not in await user.notifications()


@asynccontextmanager
async def running_addon(
    runtime: Runtime | Plant,
    supervisor: TestServer,
    broker: Mosquitto | None = None,
    *,
    quick_reconnect: bool = True,
) -> AsyncIterator[HomeAssistantAdapter]:
    """The add-on's Home Assistant side, wired as `serve` wires it under the Supervisor; the
    FAKE Supervisor offers `broker` as its MQTT service (none: it answers as without one).
    `quick_reconnect` shortens its retry delays to 1 s (False: the add-on's own)."""
    supervisor.app[FAKE].mqtt = (
        None
        if broker is None
        else {"host": broker.host, "port": broker.port, "ssl": False, "protocol": "3.1.1"}
    )
    base = str(supervisor.make_url("")).rstrip("/")
    endpoint = endpoint_from_env({"SUPERVISOR_TOKEN": ADDON_TOKEN, "SUPERVISOR_URL": base})
    assert endpoint is not None and endpoint.via == "supervisor"
    async with aiohttp.ClientSession() as session:
        adapter = HomeAssistantAdapter(
            controllers_of(runtime),
            endpoint,
            session,
            supervisor=SupervisorOptionsStore(session, base, ADDON_TOKEN),
            timings=AdapterTimings(
                reconnect_max=1 if quick_reconnect else RECONNECT_MAX, broker_lookup_interval=0.5
            ),
        )
        adapter.start()
        try:
            yield adapter
        finally:
            await adapter.stop()


async def connected(addon: HomeAssistantAdapter, connects: int = 1) -> None:
    """Wait until the adapter has connected (and set up) `connects` times and is connected."""
    await eventually(
        lambda: addon.client.connects >= connects and addon.client.connected,
        60,
        "Home Assistant connection",
    )


def load_scripts_yaml(ha: HomeAssistant) -> None:
    """Make the config API's scripts load, as in a default install; the harness's configuration
    has no `script:` section (script.reload reads configuration.yaml again)."""
    (ha.config_dir / "scripts.yaml").write_text("")
    with (ha.config_dir / "configuration.yaml").open("a") as configuration:
        configuration.write("script: !include scripts.yaml\n")


@asynccontextmanager
async def ha_user(ha: HomeAssistant) -> AsyncIterator[User]:
    """A user of `ha` on their own connection."""
    async with aiohttp.ClientSession() as session:
        endpoint = Endpoint(ha.api_url, ha.websocket_url, ha.token, "test")
        ws = await WebSocketConnection.open(session, endpoint)
        try:
            yield User(ha, session, ws)
        finally:
            await ws.close()


async def forget_posted_states(ha: HomeAssistant) -> None:
    """Remove the sensor states an earlier test's add-on posted to the shared Home Assistant,
    so every value a test waits for is one its own add-on posted."""
    async with aiohttp.ClientSession(headers=ha.headers) as session:
        async with session.get(f"{ha.api_url}/states") as response:
            states = await response.json()
        for state in states:
            entity_id = state["entity_id"]
            if entity_id.startswith(("sensor.sec1000", "binary_sensor.sec1000")):
                async with session.delete(f"{ha.api_url}/states/{entity_id}") as response:
                    assert response.status in (200, 404), entity_id
