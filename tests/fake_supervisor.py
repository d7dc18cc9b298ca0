"""A FAKE Supervisor for the tests: the real one cannot run here. Not a mock of Home Assistant.

It stands where the add-on expects `http://supervisor` and behaves like the Supervisor's proxy
(supervisor/api/proxy.py) in front of the REAL Home Assistant the tests start:

- `/core/api/...` needs `Authorization: Bearer <add-on token>` (401 otherwise), answers 502 while
  Home Assistant is not running, and forwards to Home Assistant with the real Home Assistant
  token;
- `/core/websocket` answers 502 while Home Assistant is not running; it does the auth phase itself
  (`auth_required` with Core's version, then the add-on's token → `auth_ok` or `auth_invalid`),
  then connects upstream with the real token and relays every frame both ways;
- `GET /services/mqtt`: the broker in `fake.mqtt` (as the Mosquitto add-on provides it), or
  400 "No service mqtt available" while it is None, as the Supervisor answers without one;
- `GET /addons/self/info` and `POST /addons/self/options` (body `{"options": {...}}`, stored in
  `app[OPTIONS]`); `fake.reject_options = "message"` makes the next saves fail like a schema error.

`create_fake_supervisor(ha_url, ha_token)` builds the app; its state is `app[FAKE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

ADDON_TOKEN = "fake-supervisor-token-for-tests"


@dataclass
class FakeSupervisorState:
    """What the fake knows and what the tests can change or read."""

    ha_url: str
    ha_token: str
    addon_token: str = ADDON_TOKEN
    options: dict[str, Any] = field(default_factory=dict)
    reject_options: str | None = None  # the message of the refusal, or None to accept
    mqtt: dict[str, Any] | None = None  # GET /services/mqtt's data: host, port, ssl, username…
    saved: list[dict[str, Any]] = field(default_factory=list)  # every accepted options body
    rest_calls: list[str] = field(default_factory=list)  # "METHOD /path" of forwarded calls
    websockets_opened: int = 0
    # While set and not open, the add-on's WebSocket waits here before it reaches Core (a test
    # lets a user's subscription in first, so that no result is fired before anyone listens).
    websocket_gate: asyncio.Event | None = None
    relays: set[asyncio.Future[Any]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None

    async def drop_websockets(self) -> None:
        """Cut every relayed WebSocket, as a network failure between add-on and Supervisor."""
        for task in list(self.relays):
            task.cancel()
        await asyncio.gather(*self.relays, return_exceptions=True)


FAKE = web.AppKey("fake_supervisor", FakeSupervisorState)
OPTIONS = web.AppKey("options", dict)  # the same dict as app[FAKE].options


def _check_token(request: web.Request) -> None:
    fake = request.app[FAKE]
    header = request.headers.get("Authorization", "")
    token = header.split(" ")[-1] if header else request.headers.get("X-Ha-Access", "")
    if token != fake.addon_token:
        raise web.HTTPUnauthorized(text="fake supervisor: unknown token")


def _session(request: web.Request) -> aiohttp.ClientSession:
    session = request.app[FAKE].session
    assert session is not None
    return session


async def _running_version(request: web.Request) -> str | None:
    """Core's version while it runs, else None (the Supervisor knows the version it runs)."""
    fake = request.app[FAKE]
    try:
        async with _session(request).get(
            f"{fake.ha_url}/api/config",
            headers={"Authorization": f"Bearer {fake.ha_token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response:
            if response.status != 200:
                return None
            config = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("state") != "RUNNING":
        return None
    return str(config.get("version"))


async def core_api(request: web.Request) -> web.Response:
    """Forward a REST call to Home Assistant, as the Supervisor does."""
    _check_token(request)
    if await _running_version(request) is None:
        raise web.HTTPBadGateway()
    fake = request.app[FAKE]
    path = request.match_info["path"]
    fake.rest_calls.append(f"{request.method} /{path}")
    try:
        async with _session(request).request(
            request.method,
            f"{fake.ha_url}/api/{path}",
            params=request.query,
            data=await request.read(),
            headers={
                "Authorization": f"Bearer {fake.ha_token}",
                "Content-Type": request.headers.get("Content-Type", "application/json"),
            },
            timeout=aiohttp.ClientTimeout(total=300),
        ) as response:
            return web.Response(
                status=response.status,
                body=await response.read(),
                content_type=response.content_type,
            )
    except (aiohttp.ClientError, TimeoutError) as err:
        raise web.HTTPBadGateway() from err


async def _relay(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    while not source.closed and not target.closed:
        message = await source.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            await target.send_str(message.data)
        elif message.type is aiohttp.WSMsgType.BINARY:
            await target.send_bytes(message.data)
        elif message.type is aiohttp.WSMsgType.CLOSING:
            continue
        else:  # CLOSE, CLOSED, ERROR
            await target.close()
            return


async def core_websocket(request: web.Request) -> web.WebSocketResponse:
    """The Supervisor's WebSocket proxy: its own auth phase, then a frame-by-frame relay."""
    fake = request.app[FAKE]
    if fake.websocket_gate is not None:
        await fake.websocket_gate.wait()
    version = await _running_version(request)
    if version is None:
        raise web.HTTPBadGateway()
    addon = web.WebSocketResponse(heartbeat=30)
    await addon.prepare(request)
    await addon.send_json({"type": "auth_required", "ha_version": version})
    try:
        hello = await addon.receive_json(timeout=10)
    except (TimeoutError, ValueError, TypeError):
        await addon.close()
        return addon
    token = (
        hello.get("access_token") or hello.get("api_password") if isinstance(hello, dict) else None
    )
    if token != fake.addon_token:
        await addon.send_json({"type": "auth_invalid", "message": "Invalid access"})
        await addon.close()
        return addon
    await addon.send_json({"type": "auth_ok", "ha_version": version})
    try:
        core = await _session(request).ws_connect(
            f"{fake.ha_url}/api/websocket", heartbeat=30, max_msg_size=64 * 1024 * 1024
        )
    except (aiohttp.ClientError, OSError):
        await addon.close()
        return addon
    try:
        greeting = await core.receive_json(timeout=10)
        if greeting.get("type") == "auth_required":
            await core.send_json({"type": "auth", "access_token": fake.ha_token})
            greeting = await core.receive_json(timeout=10)
        if greeting.get("type") != "auth_ok":
            raise ValueError(f"Home Assistant refused the fake Supervisor: {greeting}")
    except (TimeoutError, ValueError, TypeError, aiohttp.ClientError):
        await core.close()
        await addon.close()
        return addon
    fake.websockets_opened += 1
    relay = asyncio.ensure_future(asyncio.gather(_relay(addon, core), _relay(core, addon)))
    fake.relays.add(relay)
    try:
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
            await relay
    finally:
        fake.relays.discard(relay)
        relay.cancel()
        await core.close()
        await addon.close()
    return addon


async def addon_info(request: web.Request) -> web.Response:
    """GET /addons/self/info."""
    _check_token(request)
    fake = request.app[FAKE]
    return web.json_response(
        {
            "result": "ok",
            "data": {"slug": "local_sec1000", "state": "started", "options": fake.options},
        }
    )


async def mqtt_service(request: web.Request) -> web.Response:
    """GET /services/mqtt."""
    _check_token(request)
    fake = request.app[FAKE]
    if fake.mqtt is None:
        return web.json_response(
            {"result": "error", "message": "No service mqtt available"}, status=400
        )
    return web.json_response({"result": "ok", "data": fake.mqtt})


async def addon_options(request: web.Request) -> web.Response:
    """POST /addons/self/options: {"options": {...}} replaces the stored options."""
    _check_token(request)
    fake = request.app[FAKE]
    try:
        body = await request.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or set(body) != {"options"}
        or not isinstance(body["options"], dict)
    ):
        return web.json_response(
            {"result": "error", "message": "fake supervisor: expected {'options': {...}}"},
            status=400,
        )
    if fake.reject_options is not None:
        return web.json_response({"result": "error", "message": fake.reject_options}, status=400)
    fake.options.clear()
    fake.options.update(body["options"])
    fake.saved.append(dict(body["options"]))
    return web.json_response({"result": "ok", "data": {}})


def create_fake_supervisor(ha_url: str, ha_token: str) -> web.Application:
    """The fake Supervisor in front of the Home Assistant at `ha_url` (which takes `ha_token`)."""
    app = web.Application()
    fake = FakeSupervisorState(ha_url.rstrip("/"), ha_token)
    app[FAKE] = fake
    app[OPTIONS] = fake.options

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        fake.session = aiohttp.ClientSession()
        yield
        await fake.drop_websockets()
        await fake.session.close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/core/api/{path:.*}", core_api)
    app.router.add_get("/core/websocket", core_websocket)
    app.router.add_get("/addons/self/info", addon_info)
    app.router.add_post("/addons/self/options", addon_options)
    app.router.add_get("/services/mqtt", mqtt_service)
    return app
