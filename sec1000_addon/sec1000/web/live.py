"""Live updates: a WebSocket that pushes re-rendered fragments, and a polling fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from sec1000.state import StateEvent
from sec1000.web import render
from sec1000.web.keys import RUNTIME, SOCKETS, TEMPLATES

_LOGGER = logging.getLogger(__name__)

# Bursts of state events (four packets, a feedback, settings) become one push.
PUSH_DELAY = 0.1


def parts(app: web.Application) -> dict[str, str]:
    """Every live fragment by element id."""
    state = app[RUNTIME].state
    templates = app[TEMPLATES]
    out = {
        "live-values": templates.get_template("_values.html").render(
            state=state,
            flow=render.flow(dict(state.telemetry) if state.telemetry else None),
            clock=render.clock,
            options=app[RUNTIME].options,
        ),
        "chart": templates.get_template("_chart.html").render(
            chart=render.chart(state.history, state.commands)
        ),
        "export-toggle": templates.get_template("_toggle.html").render(state=state),
        "restore-banner": templates.get_template("_banner.html").render(
            state=state, runtime=app[RUNTIME]
        ),
    }
    status_template = templates.get_template("_status.html")
    for operation in render.BUTTONS:
        out[f"status-{operation.value}"] = status_template.render(
            status=render.status(state, operation)
        )
    return out


async def snapshot(request: web.Request) -> web.Response:
    """GET live: every fragment as JSON (the polling fallback)."""
    return web.json_response({"parts": parts(request.app)})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """GET ws: push every fragment at once, then again after each burst of state changes."""
    ws = web.WebSocketResponse(heartbeat=30, compress=False)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    wake = asyncio.Event()

    def on_event(event: StateEvent) -> None:
        wake.set()

    unsubscribe = request.app[RUNTIME].state.subscribe(on_event)
    sender = asyncio.create_task(_push(request.app, ws, wake))
    try:
        async for message in ws:
            if message.type is WSMsgType.ERROR:
                break
    finally:
        unsubscribe()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


async def _push(app: web.Application, ws: web.WebSocketResponse, wake: asyncio.Event) -> None:
    payload: dict[str, Any] = {"parts": parts(app)}
    while not ws.closed:
        try:
            await ws.send_json(payload)
        except (ConnectionError, RuntimeError):
            return
        await wake.wait()
        await asyncio.sleep(PUSH_DELAY)
        wake.clear()
        payload = {"parts": parts(app)}


async def close_sockets(app: web.Application) -> None:
    """On shutdown, close every live socket so the server can stop."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close()
