"""The setup forms: the options in three steps (and Advanced), validated on the server.

Each step is its own form and saves only its own keys on top of the current options, so a
step never touches what another step holds. An invalid value is never saved: the form comes
back with the user's input as typed and a message under each bad field. A valid one is saved
(Supervisor API under the Supervisor, else the options file) and applied at once; a save that
fails (Supervisor or disk) changes nothing and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup

from sec1000.options import SPECS_BY_KEY, Options, OptionsError, OptionSpec
from sec1000.runtime import Runtime
from sec1000.web.forms import read_form
from sec1000.web.keys import PRICE_SENSORS, RUNTIME, SAVE_LOCK, TEMPLATES
from sec1000.web.live import make_view, render_fragment
from sec1000.web.render import connection_words
from sec1000.web.views import html, origin, render_page

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Field:
    """How one option is asked for."""

    key: str
    label: str
    help: str = ""
    widget: str = "number"  # text | number | radio | checkbox | select | password
    step: str | None = None
    unit: str = ""

    @property
    def spec(self) -> OptionSpec:
        """The option's kind and bounds (the same checks as the Configuration tab)."""
        return SPECS_BY_KEY[self.key]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the setup."""

    id: str
    number: str
    title: str
    intro: str
    fields: tuple[Field, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The option keys this step saves."""
        return tuple(f.key for f in self.fields)


STEPS = (
    Step(
        "connection",
        "1",
        "Connection",
        "Where the controller is on your network, and how often its values are read.",
        (
            Field(
                "host",
                "Controller address",
                "IP address or host name of the SEC1000 (GoodWe's default is 192.168.1.200).",
                "text",
            ),
            Field("port", "Port", "TCP port of the controller, usually 1234."),
            Field(
                "scan_interval",
                "Refresh interval",
                "Seconds between two telemetry reads; 30 s is the usual choice.",
                unit="s",
            ),
        ),
    ),
    Step(
        "limits",
        "2",
        "Limits",
        "What “export off” and “export on” write, and the size of the PV plant.",
        (
            Field(
                "min_export_limit",
                "Minimum export limit",
                "Written by “export off”. Export counts as off below it + 0.01 kW.",
                step="0.01",
                unit="kW",
            ),
            Field(
                "max_export_limit",
                "Maximum export limit",
                "Written by “export on”: at least the minimum, at most the capacity.",
                step="0.01",
                unit="kW",
            ),
            Field(
                "total_capacity",
                "Total PV capacity",
                "Sent with every limit write; a higher limit is clamped to it.",
                step="0.01",
                unit="kW",
            ),
        ),
    ),
    Step(
        "mode",
        "3",
        "Mode",
        "How the controller limits the export. Saving a new mode also switches the controller.",
        (
            Field("export_limit_control_mode", "Export limit control mode", widget="radio"),
            Field(
                "three_phase_sum",
                "Three-phase sum",
                "On: limit the sum of the three phases. Off: measure each phase separately.",
                "checkbox",
            ),
        ),
    ),
    Step(
        "policy",
        "4",
        "Price policy",
        "Switch export off while the grid pays badly (negative prices), back on when it is good.",
        (
            Field(
                "price_policy",
                "Price policy",
                "On: the add-on switches export by the price. Also a helper in Home Assistant.",
                "checkbox",
            ),
            Field(
                "price_entity",
                "Price sensor",
                "A sensor priced per kWh, or Octopus Energy's day-rates event; DOCS lists the "
                "entity to pick for each price integration.",
                "text",
            ),
            Field(
                "export_off_below",
                "Export off below",
                "Export goes off at once below this price.",
                step="0.001",
                unit="per kWh",
            ),
            Field(
                "export_on_above",
                "Export on at or above",
                "Export comes back on at or above this price (at least the off price).",
                step="0.001",
                unit="per kWh",
            ),
            Field(
                "policy_min_dwell_minutes",
                "Minimum time off",
                "Export stays off at least this long, so a flapping price costs few writes.",
                unit="min",
            ),
            Field(
                "price_stale_minutes",
                "Price stale after",
                "Minutes without a new price (outside its forecast) before it counts as stale.",
                unit="min",
            ),
            Field("price_stale_action", "With a stale price", widget="select"),
        ),
    ),
    Step(
        "home_assistant",
        "5",
        "Home Assistant",
        "How the entities reach Home Assistant: as a device through MQTT, or as plain states.",
        (
            Field(
                "entities",
                "Entities",
                "auto: MQTT when a broker is found (the Mosquitto add-on, or the broker below), "
                "else REST; mqtt: always MQTT; rest: states through the REST API and helpers.",
                widget="select",
            ),
            Field(
                "mqtt_host",
                "MQTT broker",
                "Only outside the Supervisor: the broker's address. Under the Supervisor the "
                "Mosquitto add-on is found by itself.",
                "text",
            ),
            Field("mqtt_port", "MQTT port", "The broker's TCP port, usually 1883."),
            Field("mqtt_username", "MQTT user name", "Empty when the broker needs none.", "text"),
            Field(
                "mqtt_password",
                "MQTT password",
                "Stored, never shown or logged. Leave empty to keep the one saved.",
                "password",
            ),
        ),
    ),
    Step(
        "advanced",
        "",
        "Advanced",
        "The controller is fragile: change these only when you know why.",
        (
            Field(
                "request_gap_ms",
                "Gap between packets",
                "Keep 1000 ms or more: faster traffic can make the controller fall silent.",
                unit="ms",
            ),
            Field("request_timeout", "Answer timeout", "Seconds to wait for one answer.", unit="s"),
            Field(
                "offline_notification_minutes",
                "Offline notification after",
                "Minutes without an answer before Home Assistant shows a notification.",
                unit="min",
            ),
            Field(
                "verify_interval",
                "Check the controller every",
                "Seconds between two read-backs of the export settings (0: only at start-up "
                "and after each write).",
                unit="s",
            ),
            Field(
                "drift_action",
                "When the controller's limit changed behind the add-on's back",
                "restore: write the wanted limit again; adopt: keep the controller's; notify: "
                "only tell Home Assistant.",
                widget="select",
            ),
            Field("log_level", "Log level", widget="select"),
        ),
    ),
)
STEPS_BY_ID = {step.id: step for step in STEPS}


def shown(value: Any) -> Any:
    """An option value as a form shows it (10.0 kW as "10", booleans kept)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def submitted(step: Step, form: Mapping[str, Any]) -> dict[str, Any]:
    """The step's keys from a posted form; a checkbox's hidden "false" comes first, so last wins."""
    getall = getattr(form, "getall", None)
    values: dict[str, Any] = {}
    for key in step.keys:
        if key in form:
            raw = getall(key)[-1] if getall is not None else form[key]
            value = raw if isinstance(raw, str) else str(raw)
            if value or SPECS_BY_KEY[key].kind != "password":  # empty keeps the saved password
                values[key] = value
    return values


def entity_choices(app: web.Application) -> dict[str, list[tuple[str, str]]]:
    """Fields that offer Home Assistant entities: the price entity, from the sensors per kWh
    and Octopus Energy's day-rates events."""
    sensors = dict(app[PRICE_SENSORS]()) if PRICE_SENSORS in app else {}
    current = app[RUNTIME].options.price_entity
    if current and current not in sensors:
        sensors[current] = current
    return {"price_entity": sorted(sensors.items())} if sensors else {}


def render_step(
    request: web.Request,
    step: Step,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    failure: str | None = None,
) -> str:
    """One step's form, with the values to show and the messages under the fields."""
    app = request.app
    runtime = app[RUNTIME]
    current = {
        key: shown(value) for key, value in {**runtime.options.to_dict(), **runtime.stored}.items()
    }
    if values is None and runtime.options_error is not None:
        errors = {**runtime.options_error.errors, **(errors or {})}
    errors = dict(errors or {})
    warnings: dict[str, str] = {}
    if not errors:
        try:
            candidate = Options.from_mapping(dict(values or {}), base=runtime.options)
            warnings = candidate.warnings()
        except OptionsError:
            warnings = {}
    view = make_view(app)
    return (
        app[TEMPLATES]
        .get_template("_setup_step.html")
        .render(
            step=step,
            values={**current, **(values or {})},
            errors={k: v for k, v in errors.items() if k in step.keys},
            other_errors={k: v for k, v in errors.items() if k not in step.keys},
            warnings={k: v for k, v in warnings.items() if k in step.keys},
            notice=notice,
            failure=failure,
            v=view,
            entity_choices=entity_choices(app),
            fragment=lambda fid: Markup(render_fragment(app, fid, view)),
        )
    )


async def setup_page(request: web.Request) -> web.Response:
    """GET setup: the steps, each with the current options."""
    forms = {step.id: Markup(render_step(request, step)) for step in STEPS}
    return render_page(request, "setup.html", "setup", steps=STEPS, forms=forms)


async def setup_save(request: web.Request) -> web.Response:
    """POST setup: validate one step; save and apply it, or show what is wrong and keep everything."""
    form = await read_form(request)
    step = STEPS_BY_ID.get(str(form.get("step", "")))
    if step is None:
        raise web.HTTPBadRequest(text="unknown setup step")
    values = submitted(step, form)
    app = request.app
    runtime = app[RUNTIME]
    async with app[SAVE_LOCK]:
        before = runtime.options
        try:
            # While the stored options are invalid they are the base (never the defaults).
            options = (
                Options.from_mapping({**runtime.stored, **values})
                if runtime.stored
                else Options.from_mapping(values, base=before)
            )
        except OptionsError as err:
            text = render_step(
                request,
                step,
                values=values,
                errors=err.errors,
                failure="Not saved: fix the values marked below. Nothing was changed.",
            )
            return _answer(request, step, text)
        if options == before and runtime.options_error is None:
            text = render_step(
                request, step, notice="Nothing to save: these are the options in use."
            )
            return _answer(request, step, text)
        try:
            await runtime.apply_options(options, origin(request))
        except OptionsError as err:  # refused for now (a restore pending): say why, keep all
            text = render_step(
                request,
                step,
                values=values,
                errors=err.errors,
                failure="Not saved: the values marked below cannot change now. Nothing was changed.",
            )
            return _answer(request, step, text)
        except Exception as err:  # the Supervisor or the disk refused: nothing was changed
            _LOGGER.error("saving the options failed: %s", err)
            text = render_step(
                request,
                step,
                values=values,
                failure=f"Not saved: {err}. Nothing was changed.",
            )
            return _answer(request, step, text)
    _LOGGER.info("options saved from the panel (%s step) by %s", step.id, origin(request))
    return _answer(request, step, render_step(request, step, notice=_saved(runtime, before)))


def _saved(runtime: Runtime, before: Options) -> str:
    """What a save did: the guard writes what reaches the controller once, in the background."""
    options = runtime.options
    if not runtime.guard.options_pending(options):
        return "Saved and applied."
    if runtime.guard.holds_options(options):
        return "Saved and applied. The controller already holds these settings: nothing to write."
    if runtime.watchdog.pending:
        return (
            "Saved. The export limiter is being restored after a watchdog reset: the new "
            "settings are written to the controller right after it is confirmed back on."
        )
    if options.export_limit_control_mode != before.export_limit_control_mode:
        return (
            f"Saved and applied. Switching the controller to mode "
            f"{options.export_limit_control_mode}…"
        )
    return "Saved and applied. Writing the new settings to the controller…"


def _answer(request: web.Request, step: Step, form_html: str) -> web.Response:
    # HTMX swaps the form in place; a plain form post (no script) gets the whole page back.
    if request.headers.get("HX-Request"):
        return html(form_html)
    forms = {s.id: Markup(form_html if s is step else render_step(request, s)) for s in STEPS}
    return render_page(request, "setup.html", "setup", steps=STEPS, forms=forms)


async def test_connection(request: web.Request) -> web.Response:
    """POST test-connection: read telemetry once from the form's address, through the one link."""
    form = await read_form(request)
    values = submitted(STEPS_BY_ID["connection"], form)
    address = {key: values[key] for key in ("host", "port") if key in values}
    runtime = request.app[RUNTIME]
    try:
        candidate = Options.from_mapping(address, base=runtime.options)
    except OptionsError as err:
        message = "; ".join(f"{key}: {text}" for key, text in err.errors.items())
        return html(_test_result(request, False, f"Not tested: {message}"))
    result = await runtime.ops.test_connection(candidate.host, candidate.port)
    return html(_test_result(request, result.ok, connection_words(result)))


def _test_result(request: web.Request, ok: bool, message: str) -> str:
    return request.app[TEMPLATES].get_template("_test_result.html").render(ok=ok, message=message)
