"""Request handlers: thin, they read the state and call the operations."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from sec1000 import __version__
from sec1000.operations import Origin
from sec1000.options import OPTION_SPECS, Options, OptionsError
from sec1000.protocol import describe_feedback
from sec1000.simulator import FAULTS
from sec1000.web import live, render
from sec1000.web.keys import HA_STATUS, RUNTIME, SIMULATOR, TASKS, TEMPLATES

_LOGGER = logging.getLogger(__name__)

COMMANDS = (
    "export_enable",
    "export_disable",
    "export_toggle",
    "set_export_limit",
    "get_export_limit",
    "set_datetime",
    "reset_export_watchdog",
)


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    runtime = request.app[RUNTIME]
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            ingress_path=request.headers.get("X-Ingress-Path", "").rstrip("/"),
            runtime=runtime,
            state=runtime.state,
            parts=live.parts(request.app),
            version=__version__,
            demo=SIMULATOR in request.app,
            **context,
        )
    )
    return web.Response(text=html, content_type="text/html")


def origin(request: web.Request) -> Origin:
    """The panel user from Home Assistant's ingress headers."""
    user = request.headers.get("X-Remote-User-Display-Name") or request.headers.get(
        "X-Remote-User-Name"
    )
    return Origin("panel", user or None)


async def dashboard(request: web.Request) -> web.Response:
    """GET /: live values, power flow, chart, controls."""
    return _page(request, "dashboard.html", page="dashboard")


async def command(request: web.Request) -> web.Response:
    """POST command/<name>: start the operation; its progress arrives on the live channel."""
    name = request.match_info["command"]
    if name not in COMMANDS:
        raise web.HTTPNotFound(text=f"unknown command {name}")
    form = await request.post()
    limit = form.get("limit") if name == "set_export_limit" else None
    runtime = request.app[RUNTIME]
    task = asyncio.create_task(runtime.ops.run(name, limit, origin(request)))
    request.app[TASKS].add(task)
    task.add_done_callback(request.app[TASKS].discard)
    return web.Response(status=204)


def _form_context(
    runtime: Any, values: dict[str, Any], errors: dict[str, str], saved: bool
) -> dict[str, Any]:
    options: Options = runtime.options
    try:
        warnings = Options.from_mapping(values, base=options).warnings() if not errors else {}
    except OptionsError:
        warnings = {}
    return {
        "values": values,
        "errors": errors,
        "warnings": warnings if errors or saved else options.warnings(),
        "saved": saved,
        "specs": {spec.key: spec for spec in OPTION_SPECS},
        "options_error": runtime.options_error,
    }


async def setup_page(request: web.Request) -> web.Response:
    """GET setup: the options in three steps."""
    runtime = request.app[RUNTIME]
    context = _form_context(runtime, runtime.options.to_dict(), {}, saved=False)
    if runtime.options_error is not None:
        context["errors"] = dict(runtime.options_error.errors)
    return _page(request, "setup.html", page="setup", **context)


def _submitted(form: Any) -> dict[str, Any]:
    # A checkbox sends nothing when off: a hidden "false" comes first, the checkbox's "true" last.
    return {
        key: form.getall(key)[-1]
        for key in set(form.keys())
        if key in {s.key for s in OPTION_SPECS}
    }


async def setup_save(request: web.Request) -> web.Response:
    """POST setup: validate; save and apply at once, or show what is wrong and keep everything."""
    runtime = request.app[RUNTIME]
    values = _submitted(await request.post())
    try:
        options = Options.from_mapping(values, base=runtime.options)
    except OptionsError as err:
        context = _form_context(
            runtime, {**runtime.options.to_dict(), **values}, err.errors, saved=False
        )
        return _fragment(request, "_setup_form.html", **context)  # 200: HTMX swaps it, browsers log no error
    try:
        await runtime.apply_options(options)
    except Exception as err:  # the Supervisor or the file refused: nothing changed
        _LOGGER.error("saving the options failed: %s", err)
        context = _form_context(
            runtime,
            {**runtime.options.to_dict(), **values},
            {"options": f"not saved: {err}"},
            saved=False,
        )
        return _fragment(request, "_setup_form.html", status=502, **context)
    context = _form_context(runtime, runtime.options.to_dict(), {}, saved=True)
    return _fragment(request, "_setup_form.html", **context)


async def setup_test(request: web.Request) -> web.Response:
    """POST setup/test: read telemetry once from the address in the form."""
    runtime = request.app[RUNTIME]
    values = _submitted(await request.post())
    try:
        candidate = Options.from_mapping(
            {k: values[k] for k in ("host", "port") if k in values}, base=runtime.options
        )
    except OptionsError as err:
        return _fragment(request, "_test_result.html", ok=False, message=str(err))
    result = await runtime.ops.test_connection(candidate.host, candidate.port)
    message = (
        result.message if result.ok else f"{result.message} ({describe_feedback(result.feedback)})"
    )
    return _fragment(request, "_test_result.html", ok=result.ok, message=message)


def _fragment(
    request: web.Request, template: str, status: int = 200, **context: Any
) -> web.Response:
    html = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, content_type="text/html", status=status)


def diagnostics_data(request: web.Request) -> dict[str, Any]:
    """Everything a bug report needs, JSON-ready."""
    runtime = request.app[RUNTIME]
    state = runtime.state
    return {
        "version": __version__,
        "generated_at": time.time(),
        "options": runtime.options.to_dict(),
        "options_error": str(runtime.options_error) if runtime.options_error else None,
        "state": state.snapshot(),
        "link": runtime.link.health.as_dict(),
        "frames": runtime.link.health.frame_log(),
        "commands": [
            {
                "at": r.at,
                "source": r.source,
                "command": r.command,
                "feedback": r.feedback,
                "message": r.message,
            }
            for r in state.commands
        ],
        "home_assistant": request.app[HA_STATUS](),
    }


async def diagnostics_page(request: web.Request) -> web.Response:
    """GET diagnostics: link health, command log, raw frames, Home Assistant status."""
    simulator = request.app.get(SIMULATOR)
    return _page(
        request,
        "diagnostics.html",
        page="diagnostics",
        diag=diagnostics_data(request),
        clock=render.clock,
        faults=FAULTS,
        active_faults=set(simulator.faults) if simulator else set(),
    )


async def diagnostics_json(request: web.Request) -> web.Response:
    """GET diagnostics.json: the download."""
    body = json.dumps(diagnostics_data(request), indent=2, default=str)
    return web.Response(
        text=body,
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="sec1000-diagnostics.json"'},
    )


async def simulator_fault(request: web.Request) -> web.Response:
    """POST simulator/fault (demo only): switch a simulated fault on or off."""
    simulator = request.app.get(SIMULATOR)
    if simulator is None:
        raise web.HTTPNotFound(text="no simulator: this is not the demo")
    form = await request.post()
    name = str(form.get("fault", ""))
    if name == "power_cycle":
        simulator.power_cycle()
    elif name in FAULTS:
        simulator.set_fault(name, form.get("on") == "on")
    else:
        raise web.HTTPBadRequest(text=f"unknown fault {name!r}")
    raise web.HTTPSeeOther("../diagnostics")  # relative: the panel lives under the ingress prefix


async def api_state(request: web.Request) -> web.Response:
    """GET api/state: the state model as JSON."""
    return web.json_response(request.app[RUNTIME].state.snapshot())
