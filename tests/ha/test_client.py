"""The Home Assistant client against a REAL Home Assistant Core (tests/ha_harness.py), directly and
through the fake Supervisor; garbage handling against a scripted WebSocket server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sec1000.common.backoff import backoff_delays
from sec1000.ha import (
    AuthenticationError,
    CannotConnectError,
    CommandFailedError,
    ConnectionClosedError,
    Endpoint,
    HttpStatusError,
    SupervisorError,
)
from sec1000.ha.client import ClientTimings, HomeAssistantClient
from sec1000.ha.handshake import CONNECT_TIMEOUT
from sec1000.ha.rest import HomeAssistantRest
from sec1000.ha.supervisor import (
    SupervisorOptionsStore,
    endpoint_from_env,
)
from sec1000.ha.websocket import WebSocketConnection

from tests.fake_supervisor import ADDON_TOKEN, FAKE, OPTIONS, create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.helpers.ports import free_port
from tests.helpers.waiting import eventually

homeassistant = pytest.mark.homeassistant


def direct_endpoint(ha: HomeAssistant, token: str | None = None) -> Endpoint:
    """The endpoint the add-on uses with HA_URL and HA_TOKEN."""
    endpoint = endpoint_from_env({"HA_URL": ha.url, "HA_TOKEN": token or ha.token})
    assert endpoint is not None
    return endpoint


def supervisor_endpoint(fake: TestServer, token: str = ADDON_TOKEN) -> Endpoint:
    """The endpoint the add-on uses under the (fake) Supervisor."""
    env = {"SUPERVISOR_TOKEN": token, "SUPERVISOR_URL": str(fake.make_url("")).rstrip("/")}
    endpoint = endpoint_from_env(env)
    assert endpoint is not None
    return endpoint


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The one shared ClientSession, as the add-on has."""
    async with aiohttp.ClientSession() as shared:
        yield shared


@pytest.fixture
async def connection(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> AsyncIterator[WebSocketConnection]:
    """An authenticated WebSocket to the shared Home Assistant."""
    ws = await WebSocketConnection.open(session, direct_endpoint(home_assistant))
    yield ws
    await ws.close()


async def make_fake_supervisor(aiohttp_server: Any, ha: HomeAssistant) -> TestServer:
    server: TestServer = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    return server


# ---------------------------------------------------------------- endpoint selection (no I/O)


def test_endpoint_under_the_supervisor_uses_the_proxy_and_the_supervisor_token() -> None:
    endpoint = endpoint_from_env(
        {"SUPERVISOR_TOKEN": "abc", "HA_URL": "http://ignored:8123", "HA_TOKEN": "x"}
    )
    assert endpoint == Endpoint(
        "http://supervisor/core/api", "ws://supervisor/core/websocket", "abc", "supervisor"
    )


def test_endpoint_supervisor_url_is_overridable_for_tests() -> None:
    endpoint = endpoint_from_env(
        {"SUPERVISOR_TOKEN": "abc", "SUPERVISOR_URL": "http://127.0.0.1:4321/"}
    )
    assert endpoint is not None
    assert endpoint.rest_url == "http://127.0.0.1:4321/core/api"
    assert endpoint.websocket_url == "ws://127.0.0.1:4321/core/websocket"


def test_endpoint_from_ha_url_and_token() -> None:
    expected = Endpoint(
        "http://127.0.0.1:8123/api", "ws://127.0.0.1:8123/api/websocket", "tok", "HA_URL"
    )
    assert endpoint_from_env({"HA_URL": "http://127.0.0.1:8123", "HA_TOKEN": "tok"}) == expected
    assert endpoint_from_env({"HA_URL": "http://127.0.0.1:8123/", "HA_TOKEN": "tok"}) == expected
    assert endpoint_from_env({"HA_URL": "http://127.0.0.1:8123/api", "HA_TOKEN": "tok"}) == expected
    secure = endpoint_from_env({"HA_URL": "https://ha.example:8123", "HA_TOKEN": "tok"})
    assert secure is not None and secure.websocket_url == "wss://ha.example:8123/api/websocket"


def test_no_endpoint_without_supervisor_or_both_ha_variables() -> None:
    assert endpoint_from_env({}) is None
    assert endpoint_from_env({"HA_URL": "http://127.0.0.1:8123"}) is None
    assert endpoint_from_env({"HA_TOKEN": "tok"}) is None
    assert endpoint_from_env({"SUPERVISOR_TOKEN": ""}) is None


def test_backoff_doubles_from_one_second_and_is_capped_at_thirty() -> None:
    delays = backoff_delays()
    assert [next(delays) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


# ---------------------------------------------------------------- WebSocket commands


@homeassistant
async def test_connection_authenticates_and_answers_commands(
    connection: WebSocketConnection, home_assistant: HomeAssistant
) -> None:
    assert connection.ha_version == home_assistant.version
    config = await connection.send_command({"type": "get_config"})
    assert config["version"] == home_assistant.version
    assert config["state"] == "RUNNING"
    await connection.ping()
    assert {"input_boolean", "input_button", "input_number", "persistent_notification"} <= set(
        config["components"]
    )


@homeassistant
async def test_failed_command_raises_typed_error_and_the_connection_goes_on(
    connection: WebSocketConnection, home_assistant: HomeAssistant
) -> None:
    with pytest.raises(CommandFailedError) as failure:
        await connection.send_command({"type": "sec1000/no_such_command"})
    assert failure.value.code == "unknown_command"
    with pytest.raises(CommandFailedError) as failure:
        await connection.send_command(
            {"type": "call_service", "domain": "sec1000_nothing", "service": "nope"}
        )
    assert failure.value.code == "not_found"
    config = await connection.send_command({"type": "get_config"})
    assert config["version"] == home_assistant.version


@homeassistant
async def test_wrong_token_is_refused_on_websocket_and_rest(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthenticationError):
        await WebSocketConnection.open(session, direct_endpoint(home_assistant, "not-a-token"))
    rest = HomeAssistantRest(session, home_assistant.api_url, "not-a-token")
    with pytest.raises(AuthenticationError):
        await rest.get_state("sun.sun")


@homeassistant
async def test_subscribed_event_is_delivered(
    connection: WebSocketConnection, home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    event_type = f"sec1000_test_{uuid.uuid4().hex[:8]}"
    received: list[dict[str, Any]] = []
    subscription = await connection.subscribe(
        {"type": "subscribe_events", "event_type": event_type}, received.append
    )
    rest = HomeAssistantRest(session, home_assistant.api_url, home_assistant.token)
    await rest.fire_event(event_type, {"command": "export_enable", "request_id": "r1"})
    await eventually(lambda: bool(received), 30, "the event")
    assert received[0]["event_type"] == event_type
    assert received[0]["data"] == {"command": "export_enable", "request_id": "r1"}
    assert received[0]["context"]["user_id"]  # who fired it: the owner behind the token

    await connection.unsubscribe(subscription)
    await rest.fire_event(event_type, {})
    await connection.ping()  # the event would have come before the pong
    assert len(received) == 1


@homeassistant
async def test_helper_created_and_watched_with_a_state_trigger(
    connection: WebSocketConnection,
) -> None:
    name = f"SEC1000 test {uuid.uuid4().hex[:8]}"
    helper = await connection.send_command({"type": "input_boolean/create", "name": name})
    entity_id = f"input_boolean.{helper['id']}"
    try:
        triggers: list[dict[str, Any]] = []
        await connection.subscribe(
            {"type": "subscribe_trigger", "trigger": {"platform": "state", "entity_id": entity_id}},
            triggers.append,
        )
        await connection.send_command(
            {
                "type": "call_service",
                "domain": "input_boolean",
                "service": "turn_on",
                "target": {"entity_id": entity_id},
            }
        )
        await eventually(lambda: bool(triggers), 30, "the state trigger")
        trigger = triggers[0]["variables"]["trigger"]
        assert trigger["entity_id"] == entity_id
        assert trigger["to_state"]["state"] == "on"
    finally:
        await connection.send_command(
            {"type": "input_boolean/delete", "input_boolean_id": helper["id"]}
        )


# ---------------------------------------------------------------- REST


@homeassistant
async def test_rest_state_set_and_get(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    rest = HomeAssistantRest(session, home_assistant.api_url, home_assistant.token)
    entity_id = f"sensor.sec1000_test_{uuid.uuid4().hex[:8]}"
    attributes = {
        "friendly_name": "SEC1000 Voltage L1",
        "unit_of_measurement": "V",
        "device_class": "voltage",
        "state_class": "measurement",
    }
    written = await rest.set_state(entity_id, "231.5", attributes)
    assert written["state"] == "231.5"
    read = await rest.get_state(entity_id)
    assert read is not None
    assert read["state"] == "231.5"
    assert read["attributes"] == attributes
    await rest.set_state(entity_id, "unavailable", attributes)
    read = await rest.get_state(entity_id)
    assert read is not None and read["state"] == "unavailable"
    assert await rest.get_state("sensor.sec1000_never_published") is None


@homeassistant
async def test_rest_errors_are_wrapped(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    rest = HomeAssistantRest(session, home_assistant.api_url, home_assistant.token)
    with pytest.raises(HttpStatusError) as bad_request:
        await rest.request("POST", "states/sensor.sec1000_test_bad", {"attributes": {}})
    assert bad_request.value.status == 400
    nowhere = HomeAssistantRest(session, f"http://127.0.0.1:{free_port()}/api", "token")
    with pytest.raises(CannotConnectError):
        await nowhere.get_state("sensor.sec1000_v1")


@homeassistant
async def test_rest_services_and_events(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    rest = HomeAssistantRest(session, home_assistant.api_url, home_assistant.token)
    notification_id = f"sec1000_test_{uuid.uuid4().hex[:8]}"
    await rest.call_service(
        "persistent_notification",
        "create",
        {"notification_id": notification_id, "title": "SEC1000", "message": "test"},
    )
    ws = await WebSocketConnection.open(session, direct_endpoint(home_assistant))
    try:
        shown = await ws.send_command({"type": "persistent_notification/get"})
        assert notification_id in {item["notification_id"] for item in shown}
        await rest.call_service(
            "persistent_notification", "dismiss", {"notification_id": notification_id}
        )
        shown = await ws.send_command({"type": "persistent_notification/get"})
        assert notification_id not in {item["notification_id"] for item in shown}
    finally:
        await ws.close()


# ---------------------------------------------------------------- closing and reconnecting


@homeassistant
async def test_pending_command_fails_when_the_socket_closes(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    fake = await make_fake_supervisor(aiohttp_server, home_assistant)
    ws = await WebSocketConnection.open(session, supervisor_endpoint(fake))
    # execute_script answers only when the script ends: a command that stays pending.
    pending = asyncio.create_task(
        ws.send_command({"type": "execute_script", "sequence": [{"delay": {"seconds": 60}}]})
    )
    await asyncio.sleep(0.3)
    assert not pending.done()
    await fake.app[FAKE].drop_websockets()  # the network between add-on and Supervisor fails
    async with asyncio.timeout(5):
        with pytest.raises(ConnectionClosedError):
            await pending
    assert ws.closed
    with pytest.raises(ConnectionClosedError):
        await ws.send_command({"type": "get_config"})


@homeassistant
async def test_pending_command_fails_when_closed_locally(
    connection: WebSocketConnection,
) -> None:
    pending = asyncio.create_task(
        connection.send_command(
            {"type": "execute_script", "sequence": [{"delay": {"seconds": 60}}]}
        )
    )
    await asyncio.sleep(0.3)
    await connection.close()
    async with asyncio.timeout(5):
        with pytest.raises(ConnectionClosedError):
            await pending


class Recorder:
    """An application as the bridge is one: its client is built with its on_connected (which
    re-subscribes and counts the set-ups) and its on_disconnected."""

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession, event_type: str) -> None:
        self.event_type = event_type
        self.setups = 0
        self.disconnects = 0
        self.events: list[dict[str, Any]] = []
        self.client = HomeAssistantClient(
            endpoint,
            session,
            on_connected=self.on_connected,
            on_disconnected=self.on_disconnected,
            timings=ClientTimings(backoff_first=0.2, backoff_max=1),
        )

    async def on_connected(self) -> None:
        await self.client.subscribe(
            {"type": "subscribe_events", "event_type": self.event_type}, self.events.append
        )
        self.setups += 1

    def on_disconnected(self) -> None:
        self.disconnects += 1


@homeassistant
async def test_client_reconnects_and_resubscribes_after_home_assistant_restarts(
    fresh_home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    ha = fresh_home_assistant
    app = Recorder(direct_endpoint(ha), session, "sec1000_test_restart")
    client = app.client
    client.start()
    try:
        async with asyncio.timeout(30):
            await client.wait_connected()
        assert app.setups == 1 and client.status == "connected"

        await ha.async_restart()  # same port, same config dir, the same token still works
        await eventually(lambda: client.connects == 2 and client.connected, 30, "the reconnect")
        assert app.setups == 2
        assert app.disconnects == 1

        await client.api.fire_event("sec1000_test_restart", {"after": "restart"})
        await eventually(lambda: bool(app.events), 30, "the event on the new subscription")
        assert app.events[0]["data"] == {"after": "restart"}
        assert client.running
    finally:
        await client.stop()
    assert not client.connected and not client.running


@homeassistant
async def test_client_waits_while_home_assistant_is_down_at_start(
    fresh_home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    ha = fresh_home_assistant
    await ha.async_stop()
    app = Recorder(direct_endpoint(ha), session, "sec1000_test_down")
    client = app.client
    client.start()
    try:
        # The first attempt fails within the connect timeout (a refused socket: at once).
        await eventually(
            lambda: "unreachable" in client.status, CONNECT_TIMEOUT, "the first attempt failed"
        )
        assert not client.connected
        assert "retrying" in client.status
        assert client.diagnostics()["last_error"]
        with pytest.raises(ConnectionClosedError):
            await client.send_command({"type": "get_config"})

        await ha.async_start()
        async with asyncio.timeout(30):
            await client.wait_connected()
        assert app.setups == 1
        assert (await client.send_command({"type": "get_config"}))["version"] == ha.version
    finally:
        await client.stop()


@homeassistant
async def test_client_retries_when_set_up_after_connecting_fails(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession
) -> None:
    attempts = 0

    async def on_connected() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await client.send_command({"type": "sec1000/no_such_command"})

    client = HomeAssistantClient(
        direct_endpoint(home_assistant),
        session,
        on_connected=on_connected,
        timings=ClientTimings(backoff_first=0.1, backoff_max=0.2),
    )
    client.start()
    try:
        async with asyncio.timeout(30):
            await client.wait_connected()
        assert attempts == 2
        assert client.connects == 1
        assert "unknown_command" in (client.last_error or "")
    finally:
        await client.stop()


# ---------------------------------------------------------------- through the fake Supervisor


@homeassistant
async def test_client_through_the_fake_supervisor(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    fake = await make_fake_supervisor(aiohttp_server, home_assistant)
    endpoint = supervisor_endpoint(fake)
    assert endpoint.via == "supervisor"
    app = Recorder(endpoint, session, "sec1000_test_supervised")
    client = app.client
    client.start()
    try:
        async with asyncio.timeout(30):
            await client.wait_connected()
        assert client.diagnostics()["ha_version"] == home_assistant.version
        entity_id = f"sensor.sec1000_test_{uuid.uuid4().hex[:8]}"
        await client.set_state(entity_id, "1", {"friendly_name": "SEC1000 test"})
        state = await HomeAssistantRest(
            session, home_assistant.api_url, home_assistant.token
        ).get_state(entity_id)
        assert state is not None and state["state"] == "1"
        assert f"POST /states/{entity_id}" in fake.app[FAKE].rest_calls

        await client.api.fire_event("sec1000_test_supervised", {"via": "supervisor"})
        await eventually(lambda: bool(app.events), 30, "the event through the relay")

        await fake.app[FAKE].drop_websockets()
        await eventually(lambda: client.connects == 2 and client.connected, 30, "the reconnect")
        assert app.setups == 2
    finally:
        await client.stop()


@homeassistant
async def test_fake_supervisor_refuses_a_wrong_token(
    home_assistant: HomeAssistant, session: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    fake = await make_fake_supervisor(aiohttp_server, home_assistant)
    wrong = supervisor_endpoint(fake, token="wrong")
    with pytest.raises(AuthenticationError):
        await WebSocketConnection.open(session, wrong)
    with pytest.raises(AuthenticationError):
        await HomeAssistantRest.from_endpoint(session, wrong).get_state("sun.sun")


@homeassistant
async def test_supervised_client_rides_out_a_home_assistant_restart(
    fresh_home_assistant: HomeAssistant, session: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    ha = fresh_home_assistant
    fake = await make_fake_supervisor(aiohttp_server, ha)
    app = Recorder(supervisor_endpoint(fake), session, "sec1000_test_supervised_restart")
    client = app.client
    await ha.async_stop()  # down at start: the Supervisor answers 502
    client.start()
    try:
        await asyncio.sleep(1.0)
        assert not client.connected and "502" in client.status
        with pytest.raises(CannotConnectError):
            await client.api.get_state("sun.sun")

        await ha.async_start()
        async with asyncio.timeout(30):
            await client.wait_connected()
        await ha.async_restart()
        await eventually(lambda: client.connects == 2 and client.connected, 30, "the reconnect")
        assert app.setups == 2
        assert (await client.send_command({"type": "get_config"}))["state"] == "RUNNING"
    finally:
        await client.stop()


async def test_supervisor_options_are_saved_loaded_and_refusals_explained(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    fake: TestServer = await aiohttp_server(create_fake_supervisor("http://127.0.0.1:9", "x"))
    base_url = str(fake.make_url("")).rstrip("/")
    store = SupervisorOptionsStore.from_env(
        session, {"SUPERVISOR_TOKEN": ADDON_TOKEN, "SUPERVISOR_URL": base_url}
    )
    assert store is not None
    await store.save({"host": "192.168.1.50", "port": 1234, "three_phase_sum": True})
    assert fake.app[OPTIONS] == {"host": "192.168.1.50", "port": 1234, "three_phase_sum": True}
    assert await store.load() == fake.app[OPTIONS]

    fake.app[FAKE].reject_options = "value could not be parsed for option 'port'"
    with pytest.raises(SupervisorError, match="could not be parsed for option 'port'"):
        await store.save({"host": "h", "port": -1})
    assert fake.app[OPTIONS]["port"] == 1234  # nothing stored

    intruder = SupervisorOptionsStore(session, base_url, "wrong-token")
    with pytest.raises(SupervisorError, match="401"):
        await intruder.save({"host": "h"})
    assert SupervisorOptionsStore.from_env(session, {}) is None


# ---------------------------------------------------------------- garbage (no Home Assistant)

GARBAGE = [
    "not json {",
    "null",
    '"a string"',
    "[1, 2, 3]",
    '{"type": "result", "success": true}',
    '{"id": "7", "type": "result", "success": true}',
    '{"id": true, "type": "result", "success": true}',
    '{"id": 999, "type": "result", "success": true}',
    '{"id": 999, "type": "event", "event": {}}',
    '{"id": 1, "type": "mystery"}',
    '{"id": 1, "type": "event", "event": "not an object"}',
    json.dumps({"id": 998, "type": "result", "success": False, "error": "not an object"}),
]


class GarbageServer:
    """A scripted WebSocket server that speaks just enough of the protocol to send garbage.

    Its first connection sends garbage instead of `auth_required`; later ones authenticate.
    Commands: `get_config` (Home Assistant still starting, for the first two), `garbage` (garbage, a binary frame, then the result), `subscribe_events` (the event
    arrives before the result, in one frame), `hang_up` (closes with the command pending).
    """

    def __init__(self) -> None:
        self.connections = 0
        self.get_configs = 0
        self.ids: list[int] = []

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if self.connections == 1:
            await ws.send_str("<html>502 Bad Gateway</html>")
            await ws.close()
            return ws
        await ws.send_json({"type": "auth_required", "ha_version": "garbage"})
        await ws.receive_json()
        await ws.send_json({"type": "auth_ok", "ha_version": "garbage"})
        async for message in ws:
            command = json.loads(message.data)
            self.ids.append(command["id"])
            if command["type"] == "get_config":
                self.get_configs += 1
                state = "RUNNING" if self.get_configs > 2 else "NOT_RUNNING"
                await ws.send_json(
                    {
                        "id": command["id"],
                        "type": "result",
                        "success": True,
                        "result": {"state": state, "language": "sk"},
                    }
                )
            elif command["type"] == "garbage":
                for junk in GARBAGE:
                    await ws.send_str(junk)
                await ws.send_bytes(b"\x00\xff")
                await ws.send_json(
                    {"id": command["id"], "type": "result", "success": True, "result": "alive"}
                )
            elif command["type"] == "subscribe_events":
                event = {"id": command["id"], "type": "event", "event": {"data": "first"}}
                result = {"id": command["id"], "type": "result", "success": True, "result": None}
                await ws.send_str(json.dumps([event, result]))
            elif command["type"] == "hang_up":
                await ws.close()
        return ws


async def test_garbage_from_home_assistant_does_not_crash_the_client(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    scripted = GarbageServer()
    app = web.Application()
    app.router.add_get("/api/websocket", scripted.handler)
    server: TestServer = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    endpoint = endpoint_from_env({"HA_URL": url, "HA_TOKEN": "token"})
    assert endpoint is not None
    set_up_after: list[int] = []

    async def on_connected() -> None:
        set_up_after.append(scripted.get_configs)

    client = HomeAssistantClient(
        endpoint,
        session,
        on_connected=on_connected,
        timings=ClientTimings(backoff_first=0.05, backoff_max=0.1),
    )
    client.start()
    try:
        async with asyncio.timeout(10):
            await client.wait_connected()  # after the garbage greeting, the retry got in
        assert scripted.connections == 2
        assert set_up_after == [3]  # the set-up waited until Home Assistant was RUNNING
        assert client.diagnostics()["language"] == "sk"  # the panel's default language
        assert await client.send_command({"type": "garbage"}) == "alive"
        assert client.connected
        connection = client._require()
        assert connection.ignored_messages >= len(GARBAGE) - 3

        events: list[dict[str, Any]] = []
        await client.subscribe({"type": "subscribe_events"}, events.append)
        assert events == [{"data": "first"}]  # it came before its subscription's result

        with pytest.raises(ConnectionClosedError):
            await client.send_command({"type": "hang_up"})
        await eventually(lambda: client.connects == 2 and client.connected, 10, "the reconnect")
        assert client.running
        assert scripted.ids[:6] == [1, 2, 3, 4, 5, 6]  # integer ids from one counter per connection
    finally:
        await client.stop()
