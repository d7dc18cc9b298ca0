"""The ingress panel's application factory: routes, middlewares, templates, app state."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.web import live, views
from sec1000.web.keys import HA_STATUS, RUNTIME, SIMULATOR, SOCKETS, SUPERVISED, TASKS, TEMPLATES

STATIC = Path(__file__).parent / "static"
SUPERVISOR_INGRESS_IP = "172.30.32.2"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def no_home_assistant() -> dict[str, Any]:
    """The Home Assistant status when none is configured."""
    return {"connected": False, "status": "not configured (panel only)"}


@web.middleware
async def ingress_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under the Supervisor, answer only the Supervisor's ingress proxy."""
    if request.app[SUPERVISED] and request.remote != SUPERVISOR_INGRESS_IP:
        raise web.HTTPForbidden(text="only Home Assistant ingress may open this panel")
    return await handler(request)


@web.middleware
async def no_cache(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages and fragments are never cached; nothing is compressed here."""
    response = await handler(request)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"
    return response


def create_app(
    runtime: Runtime,
    *,
    simulator: SimulatorServer | None = None,
    supervised: bool = False,
    ha_status: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """Build the panel around a running core."""
    app = web.Application(middlewares=[ingress_only, no_cache])
    app[RUNTIME] = runtime
    app[SUPERVISED] = supervised
    app[HA_STATUS] = ha_status or no_home_assistant
    app[TASKS] = set()
    app[SOCKETS] = weakref.WeakSet()
    if simulator is not None:
        app[SIMULATOR] = simulator
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.PackageLoader("sec1000.web", "templates"),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    router = app.router
    router.add_get("/", views.dashboard, name="dashboard")
    router.add_get("/setup", views.setup_page, name="setup")
    router.add_post("/setup", views.setup_save, name="setup-save")
    router.add_post("/setup/test", views.setup_test, name="setup-test")
    router.add_get("/diagnostics", views.diagnostics_page, name="diagnostics")
    router.add_get("/diagnostics.json", views.diagnostics_json, name="diagnostics-json")
    router.add_post("/command/{command}", views.command, name="command")
    router.add_post("/simulator/fault", views.simulator_fault, name="simulator-fault")
    router.add_get("/live", live.snapshot, name="live")
    router.add_get("/ws", live.websocket, name="ws")
    router.add_get("/api/state", views.api_state, name="api-state")
    router.add_static("/static/", STATIC, name="static")
    app.on_shutdown.append(live.close_sockets)
    return app
