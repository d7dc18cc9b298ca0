"""The setup forms: the options in three steps (and Advanced), validated on the server.

Each step is its own form and saves only its own keys on top of the current options, so a
step never touches what another step holds. An invalid value is never saved: the form comes
back with the user's input as typed and a message under each bad field. A valid one is saved
(Supervisor API under the Supervisor, else the options file) and applied at once; a save that
fails (Supervisor or disk) changes nothing and says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from markupsafe import Markup

from sec1000.options import SPECS_BY_KEY, Options, OptionsError
from sec1000.protocol import describe_feedback
from sec1000.runtime import Applied, Runtime
from sec1000.web.forms import read_form
from sec1000.web.i18n import N_, Translator
from sec1000.web.keys import APPLIES, APPLY_STEPS, PRICE_SENSORS, RUNTIME, SAVE_LOCK, TEMPLATES
from sec1000.web.live import make_view, render_fragment, request_translator
from sec1000.web.setup_steps import STEPS, STEPS_BY_ID, Step
from sec1000.web.views import html, origin, render_page
from sec1000.web.words import OPTION_LABELS, labelled, mode_name

_LOGGER = logging.getLogger(__name__)

# What a save that changes nothing answers (what one that does answers is in SAVED); each is
# translated where the form shows it.
NOT_VALID = N_("Not saved: fix the values marked below. Nothing was changed.")
NOTHING_NEW = N_("Nothing to save: these are the options in use.")
NOT_NOW = N_("Not saved: the values marked below cannot change now. Nothing was changed.")


def shown(value: Any, tr: Translator | None = None) -> Any:
    """An option value as a form shows it (10.0 kW as "10", "0,05" in German; booleans kept)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return tr.short(value) if tr is not None else f"{value:g}"
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
    tr = request_translator(request)
    current = {
        key: shown(value, tr)
        for key, value in {**runtime.options.to_dict(), **runtime.stored}.items()
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
    view = make_view(app, tr)
    return (
        app[TEMPLATES]
        .get_template("_setup_step.html")
        .render(
            tr=tr,
            step=step,
            values={**current, **(values or {})},
            errors={k: v for k, v in errors.items() if k in step.keys},
            other_errors={k: v for k, v in errors.items() if k not in step.keys},
            warnings={k: v for k, v in warnings.items() if k in step.keys},
            notice=tr.gettext(notice) if notice else None,
            failure=tr.gettext(failure) if failure else None,
            v=view,
            entity_choices=entity_choices(app),
            fragment=lambda fid: Markup(render_fragment(app, fid, view)),
            deactivate_warning=deactivate_warning(runtime, tr),
            apply=step.id in APPLY_STEPS,
        )
    )


def deactivate_warning(runtime: Runtime, tr: Translator) -> str | None:
    """Why choosing mode "Off" now exports at a price the policy keeps export off for, or None.

    Mode Off lifts every limit, so the price policy's "export off" no longer holds.
    """
    options = runtime.options
    price = runtime.policy.price
    current = price.reading.current if price is not None else None
    if not (options.price_policy and current is not None and current < options.export_off_below):
        return None
    text = N_(
        "The price policy is on and the price now ({price}) is below “Export off below” "
        "({below}): with mode Off the controller exports without any limit, at this price too."
    )
    return tr.gettext(text).format(
        price=tr.short(current), below=tr.short(options.export_off_below)
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
            return _not_saved(request, step, values, NOT_VALID, err.errors)
        if options == before and runtime.options_error is None:
            return _answer(request, step, render_step(request, step, notice=NOTHING_NEW))
        try:
            applied = await runtime.apply_options(options, origin(request))
        except OptionsError as err:  # refused for now (a restore pending): say why, keep all
            return _not_saved(request, step, values, NOT_NOW, err.errors)
        except Exception as err:  # the Supervisor or the disk refused: nothing was changed
            _LOGGER.error("saving the options failed: %s", err)
            return _not_saved(request, step, values, f"Not saved: {err}. Nothing was changed.")
    _LOGGER.info("options saved from the panel (%s step) by %s", step.id, origin(request))
    saved_at = time.time()
    notice, writes = SAVED[applied]
    if writes:  # the step shows how its write goes, live
        app[APPLIES][step.id] = saved_at
    else:
        app[APPLIES].pop(step.id, None)
    tr = request_translator(request)
    return _answer(request, step, render_step(request, step, notice=saved(notice, options, tr)))


# What a save did, in words, and whether a write to the controller follows it.
SAVED = {
    Applied.NOTHING: (N_("Saved and applied."), False),
    Applied.HELD: (
        N_("Saved and applied. The controller already holds these settings: nothing to write."),
        False,
    ),
    Applied.AFTER_RESTORE: (
        N_(
            "Saved. The export limiter is being restored after a watchdog reset: the new "
            "settings are written to the controller right after it is confirmed back on."
        ),
        True,
    ),
    Applied.MODE: ("Switching the controller", True),
    Applied.WRITING: (N_("Saved and applied. Writing the new settings to the controller…"), True),
}


def saved(notice: str, options: Options, tr: Translator) -> str:
    """The notice of a save, in the page's language, the mode by its one name."""
    if "Switching the controller" in notice:
        text = tr.gettext(N_("Saved and applied. Switching the controller to mode {mode}…"))
        return text.format(mode=mode_name(options.export_limit_control_mode, tr))
    return tr.gettext(notice)


def _not_saved(
    request: web.Request,
    step: Step,
    values: Mapping[str, Any],
    failure: str,
    errors: Mapping[str, str] | None = None,
) -> web.Response:
    """The step's form back as typed, with why nothing was saved (and under which fields)."""
    text = render_step(request, step, values=values, errors=errors, failure=failure)
    return _answer(request, step, text)


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
    tr = request_translator(request)
    try:
        candidate = Options.from_mapping(address, base=runtime.options)
    except OptionsError as err:
        text = "; ".join(
            f"{tr.gettext(OPTION_LABELS.get(key, key))} {labelled(words, tr)}"
            for key, words in err.errors.items()
        )
        return html(
            _test_result(
                request,
                False,
                tr.gettext(N_("Check the address: {problem}.")).format(problem=text),
                "",
            )
        )
    result = await runtime.ops.test_connection(candidate.host, candidate.port)
    target = f"{candidate.host}:{candidate.port}"
    if result.ok:
        words = tr.gettext(N_("The controller at {target} answered.")).format(target=target)
        return html(_test_result(request, True, words, result.message))
    words = tr.gettext(N_("No controller answered at {target}.")).format(target=target)
    detail = f"{describe_feedback(result.feedback)} (feedback {result.feedback}): {result.message}"
    return html(_test_result(request, False, words, detail))


def _test_result(request: web.Request, ok: bool, message: str, detail: str) -> str:
    template = request.app[TEMPLATES].get_template("_test_result.html")
    return template.render(ok=ok, message=message, detail=detail, tr=request_translator(request))
