"""Placeholder app factory; the panel replaces it."""

from __future__ import annotations

from aiohttp import web

from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

RUNTIME = web.AppKey("runtime", Runtime)


def create_app(
    runtime: Runtime, *, simulator: SimulatorServer | None = None, supervised: bool = False
) -> web.Application:
    """Build the web application."""
    app = web.Application()
    app[RUNTIME] = runtime

    async def snapshot(request: web.Request) -> web.Response:
        return web.json_response(request.app[RUNTIME].state.snapshot())

    app.router.add_get("/api/state", snapshot, name="state")
    return app
