"""A FAKE Supervisor for the tests: the real one cannot run here.

It checks the add-on's bearer token, forwards /core/api and /core/websocket to the real Home
Assistant started by the tests (swapping in the real token), and serves /addons/self/info and
/addons/self/options from memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

ADDON_TOKEN = "fake-supervisor-token-for-tests"
OPTIONS = web.AppKey("options", dict)
UPSTREAM = web.AppKey("upstream", dict)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def _authorised(request: web.Request) -> None:
    if request.headers.get("Authorization") != f"Bearer {ADDON_TOKEN}":
        raise web.HTTPUnauthorized(text="fake supervisor: bad token")


async def core_api(request: web.Request) -> web.StreamResponse:
    """Forward a REST call to Home Assistant."""
    _authorised(request)
    upstream = request.app[UPSTREAM]
    url = f"{upstream['url']}/api/{request.match_info['path']}"
    async with request.app[SESSION].request(
        request.method,
        url,
        data=await request.read(),
        headers={
            "Authorization": f"Bearer {upstream['token']}",
            "Content-Type": request.content_type,
        },
    ) as response:
        return web.Response(
            status=response.status, body=await response.read(), content_type=response.content_type
        )


async def core_websocket(request: web.Request) -> web.WebSocketResponse:
    """Relay a WebSocket frame by frame; the add-on's auth message gets the real token."""
    downstream = web.WebSocketResponse()
    await downstream.prepare(request)
    upstream_info = request.app[UPSTREAM]
    try:
        upstream = await request.app[SESSION].ws_connect(f"{upstream_info['url']}/api/websocket")
    except aiohttp.ClientError:
        await downstream.close()
        return downstream

    async def to_core() -> None:
        async for message in downstream:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data: Any = message.json()
            if isinstance(data, dict) and data.get("type") == "auth":
                if data.get("access_token") != ADDON_TOKEN:
                    await downstream.send_json(
                        {"type": "auth_invalid", "message": "fake supervisor: bad token"}
                    )
                    break
                data = {"type": "auth", "access_token": upstream_info["token"]}
            await upstream.send_json(data)

    async def to_addon() -> None:
        async for message in upstream:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            await downstream.send_str(message.data)

    tasks = [asyncio.create_task(to_core()), asyncio.create_task(to_addon())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await upstream.close()
    await downstream.close()
    return downstream


async def addon_info(request: web.Request) -> web.Response:
    """GET /addons/self/info."""
    _authorised(request)
    return web.json_response(
        {"result": "ok", "data": {"slug": "sec1000", "options": request.app[OPTIONS]}}
    )


async def addon_options(request: web.Request) -> web.Response:
    """POST /addons/self/options: {"options": {...}} replaces the stored options."""
    _authorised(request)
    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("options"), dict):
        return web.json_response(
            {"result": "error", "message": "expected {'options': {...}}"}, status=400
        )
    request.app[OPTIONS].clear()
    request.app[OPTIONS].update(body["options"])
    return web.json_response({"result": "ok", "data": {}})


def create_fake_supervisor(ha_url: str, ha_token: str) -> web.Application:
    """The fake Supervisor app; `app[OPTIONS]` holds the saved options."""
    app = web.Application()
    app[OPTIONS] = {}
    app[UPSTREAM] = {"url": ha_url, "token": ha_token}

    async def session_ctx(app: web.Application) -> Any:
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/core/api/{path:.*}", core_api)
    app.router.add_get("/core/websocket", core_websocket)
    app.router.add_get("/addons/self/info", addon_info)
    app.router.add_post("/addons/self/options", addon_options)
    return app
