"""The ingress panel's application factory: routes, middlewares, templates, app state."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from sec1000.common.tasks import TaskSet
from sec1000.plant import Plant
from sec1000.web import connection_test, history, homeassistant, live, setup, views
from sec1000.web.controllers import UNKNOWN_PAGE, chosen_controller
from sec1000.web.keys import (
    APPLIES,
    CONTROLLERS,
    HA_STATUS,
    HUB,
    RUNTIME,
    SAVE_LOCK,
    SUPERVISED,
    TASKS,
    TEMPLATES,
    HaStatus,
)
from sec1000.web.render import environment

STATIC = Path(__file__).parent / "static"
# Under the Supervisor every panel request comes from its ingress proxy at this address.
SUPERVISOR_INGRESS_IP = "172.30.32.2"
STATIC_MAX_AGE = 86400  # static URLs carry a content hash, so a day is safe

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def no_home_assistant() -> Mapping[str, Any]:
    """The Home Assistant status when none is configured (the demo, panel only)."""
    return {"connected": False, "status": "not configured"}


@web.middleware
async def ingress_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under the Supervisor, answer only its ingress proxy; refuse anyone else with 403."""
    if request.app[SUPERVISED] and request.remote != SUPERVISOR_INGRESS_IP:
        raise web.HTTPForbidden(text="only Home Assistant ingress may open this panel")
    return await handler(request)


@web.middleware
async def caching(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages, fragments and data are never cached; static files are, by their hashed URL.

    Nothing is compressed here (the Supervisor and Core decide that), and nothing redirects.
    """
    try:
        response = await handler(request)
    except web.HTTPException as err:
        err.headers["Cache-Control"] = "no-cache"
        err.headers["X-Content-Type-Options"] = "nosniff"
        raise
    if response.prepared:  # a WebSocket (or a stream) has sent its headers already
        return response
    if request.path.startswith("/static/") and response.status == 200:
        response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
    else:
        response.headers["Cache-Control"] = "no-cache"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def static_version() -> str:
    """A short hash of the static files, appended to their URLs so browsers refetch on change."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    hub.start()
    yield
    await hub.stop()
    await app[TASKS].cancel()


def create_app(
    plant: Plant,
    *,
    supervised: bool = False,
    ha_status: HaStatus | None = None,
) -> web.Application:
    """Build the panel around the plant; it reads the state and calls the operations, nothing
    else. A page is for the controller its `controller` query names (`Plant.of_one` makes the
    plant of a runtime built alone). `supervised` refuses every request not from the Supervisor's ingress proxy. `ha_status`
    returns the Home Assistant connection for diagnostics ({"connected": bool, "status": str},
    more keys are shown too); it can also be set later through `app[HA_STATUS]` before start.
    """
    app = web.Application(middlewares=[ingress_only, caching, chosen_controller])
    runtime = plant.first
    app[RUNTIME] = runtime
    app[CONTROLLERS] = plant
    app[UNKNOWN_PAGE] = views.unknown_controller
    app[SUPERVISED] = supervised
    app[HA_STATUS] = ha_status or no_home_assistant
    templates = environment()
    templates.globals["static_version"] = static_version()
    app[TEMPLATES] = templates
    app[TASKS] = TaskSet()
    app[APPLIES] = {}
    app[SAVE_LOCK] = runtime.options_lock  # one lock for every change of the options
    app[HUB] = live.LiveHub(app)
    app.cleanup_ctx.append(_lifecycle)

    for register in (
        _register_dashboard,
        _register_setup,
        _register_history,
        _register_diagnostics,
        _register_homeassistant,
        _register_live,
        _register_static,
    ):
        register(app)
    return app


# -- routes, one function per area (HTMX posts answer with the fragments they changed)


def _register_dashboard(app: web.Application) -> None:
    """The dashboard, its commands and the price policy's resume."""
    app.router.add_routes(
        [
            web.get("/", views.dashboard, name="dashboard"),
            web.post("/command", views.command, name="command"),
            web.post("/policy/resume", views.resume_policy, name="policy-resume"),
            web.get("/language", views.choose_language, name="language"),
        ]
    )


def _register_setup(app: web.Application) -> None:
    """The Setup page, its saves and the connection test."""
    app.router.add_routes(
        [
            web.get("/setup", setup.setup_page, name="setup"),
            web.post("/setup", setup.setup_save, name="setup-save"),
            web.post("/setup/check", setup.setup_check, name="setup-check"),
            web.post("/test-connection", connection_test.test_connection, name="test-connection"),
            web.post("/controllers", setup.controllers_save, name="controllers"),
        ]
    )


def _register_history(app: web.Application) -> None:
    """The History page and the downloads: the audit trail, energy, the compliance report."""
    app.router.add_routes(
        [
            web.get("/history", history.history_page, name="history"),
            web.get("/audit.jsonl", history.history_download, name="audit"),
            web.get("/energy.csv", views.energy_csv, name="energy-csv"),
            web.get("/compliance.csv", views.compliance_csv, name="compliance-csv"),
        ]
    )


def _register_diagnostics(app: web.Application) -> None:
    """The Diagnostics page, its download and the state as JSON."""
    app.router.add_routes(
        [
            web.get("/diagnostics", views.diagnostics, name="diagnostics"),
            web.get("/diagnostics.json", views.diagnostics_json, name="diagnostics-json"),
            web.get("/api/state", views.api_state, name="api-state"),
        ]
    )


def _register_homeassistant(app: web.Application) -> None:
    """The Home Assistant page and its scripts' install."""
    app.router.add_routes(
        [
            web.get("/homeassistant", homeassistant.homeassistant_page, name="homeassistant"),
            web.post("/homeassistant/scripts", homeassistant.install_scripts, name="scripts"),
        ]
    )


def _register_live(app: web.Application) -> None:
    """Live updates: the WebSocket, and polling as the fallback."""
    app.router.add_routes(
        [
            web.get("/ws", live.websocket, name="ws"),
            web.get("/live", live.poll, name="live"),
        ]
    )


def _register_static(app: web.Application) -> None:
    """The static files (their URLs carry a content hash)."""
    app.router.add_routes([web.static("/static/", STATIC, name="static", append_version=False)])
