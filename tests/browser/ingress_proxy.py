"""A test stand-in for Home Assistant's ingress: the panel mounted under /api/hassio_ingress/<token>/.

Like Core's ingress view it strips the prefix, adds X-Ingress-Path and the X-Remote-User-*
headers, streams the answer back, and relays WebSockets frame by frame. Every request that
does not start with the prefix is recorded as escaped (and answered 404), so a test can fail
on an absolute URL. `websocket=False` refuses WebSocket upgrades, as a proxy that cannot relay
them would, to exercise the polling fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

TOKEN = "k3yTOKENfromHomeAssistant_0123456789abcdef"
PREFIX = f"/api/hassio_ingress/{TOKEN}"
USER = {
    "X-Remote-User-Id": "8f1e",
    "X-Remote-User-Name": "anna",
    "X-Remote-User-Display-Name": "Anna",
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass
class ProxyLog:
    """What went through the proxy."""

    escaped: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    websockets: int = 0


PROXY_LOG = web.AppKey("proxy_log", ProxyLog)
UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
RELAY_WS = web.AppKey("relay_ws", bool)


def _headers(request: web.Request) -> CIMultiDict[str]:
    headers = CIMultiDict(
        (key, value) for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP
    )
    for key in [k for k in headers if k.lower().startswith(("x-ingress", "x-remote-user"))]:
        del headers[key]
    headers["X-Ingress-Path"] = PREFIX
    headers.update(USER)
    headers["X-Forwarded-For"] = request.remote or ""
    return headers


async def ingress(request: web.Request) -> web.StreamResponse:
    """Forward one request to the panel, as Home Assistant's ingress view does."""
    log = request.app[PROXY_LOG]
    tail = request.match_info["tail"]
    url = f"{request.app[UPSTREAM]}/{tail}"
    log.forwarded.append(request.path_qs)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        if not request.app[RELAY_WS]:
            raise web.HTTPBadGateway(text="this proxy does not relay WebSockets")
        return await _websocket(request, url)
    async with request.app[SESSION].request(
        request.method,
        url,
        params=request.query,
        headers=_headers(request),
        data=await request.read() if request.can_read_body else None,
        allow_redirects=False,
        auto_decompress=False,
    ) as upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def _websocket(request: web.Request, url: str) -> web.WebSocketResponse:
    log = request.app[PROXY_LOG]
    log.websockets += 1
    downstream = web.WebSocketResponse(autoping=True)
    await downstream.prepare(request)
    headers = {
        k: v for k, v in _headers(request).items() if not k.lower().startswith("sec-websocket")
    }
    async with request.app[SESSION].ws_connect(
        url, params=request.query, headers=headers, autoping=True
    ) as upstream:

        async def to_panel() -> None:
            async for message in downstream:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await upstream.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await upstream.send_bytes(message.data)
                else:
                    break

        async def to_browser() -> None:
            async for message in upstream:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await downstream.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await downstream.send_bytes(message.data)
                else:
                    break

        tasks = [asyncio.create_task(to_panel()), asyncio.create_task(to_browser())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
    await downstream.close()
    return downstream


async def escaped(request: web.Request) -> web.Response:
    """Anything outside the ingress prefix: the panel used an absolute URL."""
    request.app[PROXY_LOG].escaped.append(request.path_qs)
    return web.Response(status=404, text="outside the ingress prefix")


def create_proxy(upstream: str, *, websocket: bool = True) -> web.Application:
    """The proxy app; `upstream` is the panel's base URL (no trailing slash)."""
    app = web.Application()
    app[PROXY_LOG] = ProxyLog()
    app[UPSTREAM] = upstream.rstrip("/")
    app[RELAY_WS] = websocket

    async def session(app: web.Application) -> Any:
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", PREFIX + "/{tail:.*}", ingress)
    app.router.add_route("*", "/{tail:.*}", escaped)
    return app
