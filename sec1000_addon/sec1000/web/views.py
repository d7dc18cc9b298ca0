"""Request handlers: thin; they read the state, call the operations and render templates."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

from aiohttp import web
from markupsafe import Markup, escape

from sec1000 import __version__
from sec1000.commands import COMMANDS, CommandName
from sec1000.operations import Origin
from sec1000.runtime import Runtime
from sec1000.web.forms import read_form
from sec1000.web.fragments import OPERATION_FRAGMENTS, make_view, render_fragment, render_update
from sec1000.web.i18n import COOKIE, LANGUAGES, N_, request_translator
from sec1000.web.keys import (
    CONTROLLERS,
    DEMO,
    HA_STATUS,
    HUB,
    SIGNED_IN,
    TASKS,
    TEMPLATES,
    chosen,
    demo_of,
)
from sec1000.web.render import View

_LOGGER = logging.getLogger(__name__)

# The commands the panel may start, from the registry.
PANEL_COMMANDS = {spec.name.value: spec for spec in COMMANDS if spec.panel}
AUDIT_IN_DIAGNOSTICS = 200  # the newest audit lines in the download
COMPLIANCE_DAYS = 90  # the compliance report's days, today included
# X-Ingress-Path is "/api/hassio_ingress/<token>"; anything else is not used for <base>.
INGRESS_PATH = re.compile(r"^(/[A-Za-z0-9_~.\-]+)+$")


def ingress_base(request: web.Request) -> str | None:
    """The prefix the browser sees (from X-Ingress-Path) with a trailing slash, if sane."""
    path = request.headers.get("X-Ingress-Path", "").rstrip("/")
    if not path or not INGRESS_PATH.match(path) or "/../" in f"{path}/" or "/./" in f"{path}/":
        return None
    return f"{path}/"


# Where the language menu may send the browser back to: a page of the panel, for a controller.
LANGUAGE_BACK = re.compile(r"(\./|[a-z]+)?(\?controller=[a-z0-9_]{1,20})?")
LANGUAGE_COOKIE_AGE = 400 * 86400  # as long as browsers keep a cookie


async def choose_language(request: web.Request) -> web.Response:
    """GET language?lang=de&back=setup: remember the language chosen in the menu (a cookie on
    the panel's path, per browser), then back to the page it was chosen on."""
    lang = request.query.get("lang", "")
    back = request.query.get("back", "./")
    if not LANGUAGE_BACK.fullmatch(back) or not back:
        back = "./"
    # Relative: the browser stays under the ingress prefix.
    response = web.Response(status=303, headers={"Location": back})
    if lang in LANGUAGES:
        response.set_cookie(
            COOKIE,
            lang,
            max_age=LANGUAGE_COOKIE_AGE,
            path=ingress_base(request) or "/",
            httponly=True,
            samesite="Lax",
        )
    return response


def origin(request: web.Request) -> Origin:
    """The panel user: the one signed in through Home Assistant (never a client's own headers
    then), else the one named by Home Assistant's ingress headers."""
    if SIGNED_IN in request:
        signed_in = request[SIGNED_IN]
        user = signed_in.name if signed_in else None
    else:
        user = request.headers.get("X-Remote-User-Display-Name") or request.headers.get(
            "X-Remote-User-Name"
        )
    return Origin("panel", user.strip() if user and user.strip() else None)


def html(text: str, status: int = 200) -> web.Response:
    """An HTML response (pages and fragments)."""
    return web.Response(text=text, content_type="text/html", status=status)


def render_page(
    request: web.Request,
    template: str,
    page: str,
    view: View | None = None,
    http_status: int = 200,
    **context: Any,
) -> web.Response:
    """A whole page, for the request's controller; its live fragments come from the same
    templates as the updates."""
    app = request.app
    tr = request_translator(request)
    view = view or make_view(app, tr, chosen(request), page)

    def fragment(fid: str) -> Markup:
        return Markup(render_fragment(app, fid, view))

    text = (
        app[TEMPLATES]
        .get_template(template)
        .render(
            v=view,
            page=page,
            base=ingress_base(request),
            seq=app[HUB].seq,
            version=__version__,
            demo=DEMO in app,
            several=len(app[CONTROLLERS].names) > 1,
            fragment=fragment,
            tr=view.tr,
            signed_in=request.get(SIGNED_IN),
            **context,
        )
    )
    return html(text, http_status)


# -- pages


async def dashboard(request: web.Request) -> web.Response:
    """GET /: power flow, values, export settings, controls, the last hour."""
    return render_page(request, "dashboard.html", "dashboard")


async def diagnostics(request: web.Request) -> web.Response:
    """GET diagnostics: link health, command log, raw frames, Home Assistant status."""
    return render_page(request, "diagnostics.html", "diagnostics")


def unknown_controller(request: web.Request, name: str) -> web.Response:
    """The page for a controller name nobody has (404): it names the ones there are."""
    return render_page(
        request, "unknown_controller.html", "unknown", http_status=404, unknown=name[:40]
    )


# -- actions


async def command(request: web.Request) -> web.Response:
    """POST command: start an operation and answer at once with its button's new state.

    The operation may take seconds (1 s between packets, 8 s for a watchdog reset): it runs as a
    task, and waiting → OK / error arrives on the live channel like any other change.
    """
    form = await read_form(request)
    spec = PANEL_COMMANDS.get(str(form.get("command", "")))
    if spec is None:
        raise web.HTTPBadRequest(
            text="unknown command; the panel knows " + ", ".join(PANEL_COMMANDS)
        )
    app = request.app
    tr = request_translator(request)
    if spec.confirm and form.get("confirm") != "yes":
        words = tr.gettext(N_("Nothing was done: it needs its confirmation ({action})."))
        note = (
            f'<p id="note-{spec.name}" class="note" hx-swap-oob="true" role="alert">'
            f"{escape(words.format(action=tr.gettext(spec.confirm.action)))}</p>"
        )
        return html(note)
    data = {param.name: form.get(param.name) for param in spec.params}
    runtime = chosen(request)
    app[TASKS].spawn(
        runtime.ops.submit(spec, data, origin(request)),
        name=f"panel command {spec.name} on {runtime.name}",
    )
    await asyncio.sleep(0)  # let the operation mark itself waiting before we render it
    update = render_update(app, sorted(OPERATION_FRAGMENTS[spec.name]), tr, runtime)
    if spec.confirm:
        update += f'\n<p id="note-{spec.name}" class="note" hx-swap-oob="true"></p>'
    return html(update)


async def resume_policy(request: web.Request) -> web.Response:
    """POST policy/resume: end a manual override; the price policy decides again at once."""
    await read_form(request)
    runtime = chosen(request)
    runtime.policy.resume()
    _LOGGER.info("price policy of %s resumed from the panel by %s", runtime.name, origin(request))
    tr = request_translator(request)
    return html(render_update(request.app, ["export-toggle", "prices"], tr, runtime))


# -- data


def diagnostics_data(app: web.Application, runtime: Runtime) -> dict[str, Any]:
    """Everything a bug report on one controller needs, JSON-ready (no secrets: the MQTT
    password is masked)."""
    state = runtime.state
    health = runtime.link.health
    demo = demo_of(app, runtime.name)
    return {
        "version": __version__,
        "controller": runtime.name,
        "generated_at": time.time(),
        "options": runtime.options.public_dict(),
        "options_error": runtime.options_error.errors if runtime.options_error else None,
        "options_warnings": runtime.options.warnings(),
        "link": {
            "target": "{}:{}".format(*runtime.link.target),
            "queued": runtime.link.queued,
            **health.as_dict(),
        },
        "frames": health.frame_log(),
        "state": state.snapshot(),
        "feedback_words": {name.value: state.messages.get(name, "") for name in CommandName},
        "commands": [record.as_dict() for record in state.commands],
        "history_points": len(state.history),
        "home_assistant": dict(app[HA_STATUS]()),
        "simulator": dict(demo.status()) if demo is not None else None,
        "audit": runtime.audit.tail(AUDIT_IN_DIAGNOSTICS),
        "audit_error": runtime.audit.error,
        "energy": dict(state.energy),
        "prices": runtime.policy.diagnostics(),
    }


def attachment(text: str, content_type: str, what: str, suffix: str) -> web.Response:
    """A download named sec1000-<what>-<time>.<suffix>."""
    name = f"sec1000-{what}-{time.strftime('%Y%m%d-%H%M%S')}.{suffix}"
    return web.Response(
        text=text,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def diagnostics_json(request: web.Request) -> web.Response:
    """GET diagnostics.json: the download."""
    text = json.dumps(diagnostics_data(request.app, chosen(request)), indent=2, default=str)
    return attachment(text, "application/json", "diagnostics", "json")


async def energy_csv(request: web.Request) -> web.Response:
    """GET energy.csv: the daily totals (up to 400 days)."""
    return attachment(chosen(request).energy.csv(), "text/csv", "energy", "csv")


async def compliance_csv(request: web.Request) -> web.Response:
    """GET compliance.csv: the meter check's evidence, one row per local day of the last 90."""
    report = await chosen(request).meter_check.compliance_csv(COMPLIANCE_DAYS)
    return attachment(report, "text/csv", "compliance", "csv")


async def api_state(request: web.Request) -> web.Response:
    """GET api/state: the state model as JSON."""
    return web.json_response(chosen(request).state.snapshot())
