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

from sec1000.options import FIRST_CONTROLLER, SPECS_BY_KEY, Options, OptionsError
from sec1000.runtime import Applied, Runtime
from sec1000.web.forms import read_form
from sec1000.web.fragments import make_view, render_fragment
from sec1000.web.i18n import N_, Translator, request_translator
from sec1000.web.keys import (
    APPLIES,
    APPLY_STEPS,
    CONTROLLERS,
    PRICE_SENSORS,
    RUNTIME,
    SAVE_LOCK,
    TEMPLATES,
    chosen,
)
from sec1000.web.setup_steps import STEPS_BY_ID, Step, steps_for
from sec1000.web.views import html, origin, render_page
from sec1000.web.words import mode_name

_LOGGER = logging.getLogger(__name__)

# What a save that changes nothing answers (what one that does answers is in SAVED); each is
# translated where the form shows it.
NOT_VALID = N_("Not saved: fix the values marked below. Nothing was changed.")
NOTHING_NEW = N_("Nothing to save: these are the options in use.")
NOT_NOW = N_("Not saved: the values marked below cannot change now. Nothing was changed.")
# The keys `Options.warnings()` may name: their fields have a warning line, live.
WARNED_KEYS = frozenset({"scan_interval", "export_ceiling_kw", "verify_interval"})
NOT_YET = N_("Not saved yet: read the warning below. Change the value, or save anyway.")


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
    """One step's form, with the values to show and the messages under the fields (a failure
    NOT_YET, a save with new warnings, asks whether to save anyway)."""
    confirm, failure = (failure, None) if failure == NOT_YET else (None, failure)
    app = request.app
    runtime = chosen(request)
    tr = request_translator(request)
    if step.id == "controllers":
        return render_controllers(request, values, errors, notice or failure, bool(failure))
    current = {
        key: shown(value, tr)
        for key, value in {**runtime.options.to_dict(), **runtime.stored}.items()
    }
    inherited: dict[str, Any] = {}
    if runtime.name != FIRST_CONTROLLER:  # its own keys; empty ones show the first's
        current, inherited = own_values(app[RUNTIME].options, runtime, tr)
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
    view = make_view(app, tr, runtime, "setup")
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
            confirm=tr.gettext(confirm) if confirm else None,
            v=view,
            entity_choices=entity_choices(app),
            inherited=inherited,
            fragment=lambda fid: Markup(render_fragment(app, fid, view)),
            deactivate_warning=deactivate_warning(runtime, tr),
            apply=step.id in APPLY_STEPS,
            WARNED_KEYS=WARNED_KEYS,
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


def own_values(
    top: Options, runtime: Runtime, tr: Translator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An additional controller's form values: the keys it sets (a yes/no or a choice always
    shows what is in use), and what the first controller's values are for the others."""
    own = next((c.values for c in top.controllers if c.name == runtime.name), {})
    options = runtime.options.to_dict()
    current = {
        key: shown(own[key], tr)
        if key in own
        else shown(options[key], tr)
        if SPECS_BY_KEY[key].kind in ("bool", "list")
        else ""
        for key in options
    }
    inherited = {key: shown(getattr(top, key), tr) for key in options if key not in own}
    return current, inherited


def steps(request: web.Request) -> tuple[Step, ...]:
    """The Setup steps of the request's controller."""
    return steps_for(chosen(request).name)


async def setup_page(request: web.Request) -> web.Response:
    """GET setup: the steps of the chosen controller, each with its current options."""
    shown_steps = steps(request)
    forms = {step.id: Markup(render_step(request, step)) for step in shown_steps}
    return render_page(request, "setup.html", "setup", steps=shown_steps, forms=forms)


async def setup_save(request: web.Request) -> web.Response:
    """POST setup: validate one step; save and apply it, or show what is wrong and keep everything."""
    form = await read_form(request)
    step = {s.id: s for s in steps(request)}.get(str(form.get("step", "")))
    if step is None or step.id == "controllers":
        raise web.HTTPBadRequest(text="unknown setup step")
    values = submitted(step, form)
    app = request.app
    runtime = chosen(request)
    if runtime.name != FIRST_CONTROLLER:
        return await save_own(request, step, values)
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
        if new_warnings(step, before, options) and form.get("confirm") != "yes":
            text = render_step(request, step, values=values, failure=NOT_YET)
            return _answer(request, step, text)
        try:
            applied = await runtime.apply_options(options, origin(request))
        except OptionsError as err:  # refused for now (a restore pending): say why, keep all
            return _not_saved(request, step, values, NOT_NOW, err.errors)
        except Exception as err:  # the Supervisor or the disk refused: nothing was changed
            _LOGGER.error("saving the options failed: %s", err)
            return _not_saved(request, step, values, f"Not saved: {err}. Nothing was changed.")
    _LOGGER.info("options saved from the panel (%s step) by %s", step.id, origin(request))
    notice = _mark_applies(request, step, applied)
    tr = request_translator(request)
    return _answer(request, step, render_step(request, step, notice=saved(notice, options, tr)))


async def setup_check(request: web.Request) -> web.Response:
    """POST setup/check: a step's warnings for the values typed so far, said under their fields
    before any save (each field's warning line, swapped in place; nothing is saved)."""
    form = await read_form(request)
    step = {s.id: s for s in steps(request)}.get(str(form.get("step", "")))
    if step is None or step.id == "controllers":
        raise web.HTTPBadRequest(text="unknown setup step")
    runtime = chosen(request)
    try:
        warnings = Options.from_mapping(submitted(step, form), base=runtime.options).warnings()
    except OptionsError:
        warnings = {}  # a value that is wrong: the save says so, under its field
    tr = request_translator(request)
    template = request.app[TEMPLATES].get_template("_warning.html")
    lines = [
        template.render(key=key, text=warnings.get(key), oob=True, tr=tr)
        for key in step.keys
        if key in WARNED_KEYS
    ]
    return html("\n".join(lines))


def new_warnings(step: Step, before: Options, options: Options) -> dict[str, str]:
    """The warnings of the step's keys that a save would bring (those in force already aside):
    they are shown, and the save asks first."""
    known = before.warnings()
    return {
        key: text
        for key, text in options.warnings().items()
        if key in step.keys and known.get(key) != text
    }


def _mark_applies(request: web.Request, step: Step, applied: Applied) -> str:
    """What a save did, in words; a step whose save writes to the controller shows it live."""
    notice, writes = SAVED[applied]
    applies = request.app[APPLIES].setdefault(chosen(request).name, {})
    if writes:
        applies[step.id] = time.time()
    else:
        applies.pop(step.id, None)
    return notice


async def save_own(request: web.Request, step: Step, values: dict[str, Any]) -> web.Response:
    """An additional controller's step: its own keys saved into its item of the document (an
    empty one takes the first controller's value again), with the same checks as the option."""
    app = request.app
    runtime = chosen(request)
    async with app[SAVE_LOCK]:
        top = app[RUNTIME].options
        own = next((c.values for c in top.controllers if c.name == runtime.name), {})
        item: dict[str, object] = {"name": runtime.name, **own}
        for key, value in values.items():
            if key in own or value == "" or not _same(value, getattr(top, key)):
                item[key] = value  # an empty value is dropped: the first controller's again
        before = runtime.options
        try:
            await app[CONTROLLERS].save_controller(item, origin(request))
        except OptionsError as err:
            return _not_saved(request, step, values, NOT_VALID, err.errors)
        except Exception as err:  # the Supervisor or the disk refused: nothing was changed
            _LOGGER.error("saving the options failed: %s", err)
            return _not_saved(request, step, values, f"Not saved: {err}. Nothing was changed.")
    options = runtime.options
    if options == before:
        return _answer(request, step, render_step(request, step, notice=NOTHING_NEW))
    _LOGGER.info("controller %s saved from the panel by %s", runtime.name, origin(request))
    notice = _mark_applies(request, step, runtime.applied(before))
    tr = request_translator(request)
    return _answer(request, step, render_step(request, step, notice=saved(notice, options, tr)))


def _same(raw: str, value: Any) -> bool:
    """A posted yes/no or choice that says what the first controller has (left unset then)."""
    if isinstance(value, bool):
        return raw.strip().lower() in ("true", "on", "1", "yes") if value else raw == "false"
    return isinstance(value, str) and raw == value


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
    shown_steps = steps(request)
    forms = {
        s.id: Markup(form_html if s.id == step.id else render_step(request, s)) for s in shown_steps
    }
    return render_page(request, "setup.html", "setup", steps=shown_steps, forms=forms)


# -- the Controllers step: the additional controllers, added and removed

CONTROLLER_FIELDS = ("name", "host", "port")


def render_controllers(
    request: web.Request,
    values: Mapping[str, Any] | None,
    errors: Mapping[str, str] | None,
    message: str | None,
    failed: bool,
) -> str:
    """The Controllers step: the additional controllers, and a form to add one."""
    app = request.app
    tr = request_translator(request)
    top = app[RUNTIME].options
    errors = dict(errors or {})
    rows = [
        {
            "name": item.name,
            "address": f"{item.values['host']}:{item.values.get('port', top.port)}",
            "own": [key for key in item.values if key not in ("host", "port")],
        }
        for item in top.controllers
    ]
    view = make_view(app, tr, chosen(request), "setup")
    return (
        app[TEMPLATES]
        .get_template("_controllers_step.html")
        .render(
            tr=tr,
            v=view,
            step=STEPS_BY_ID["controllers"],
            rows=rows,
            first_port=top.port,
            host_help=STEPS_BY_ID["connection"].fields[0].help,
            port_help=STEPS_BY_ID["connection"].fields[1].help,
            values={key: "" for key in CONTROLLER_FIELDS} | dict(values or {}),
            errors={k: v for k, v in errors.items() if k in CONTROLLER_FIELDS},
            other_errors={k: v for k, v in errors.items() if k not in CONTROLLER_FIELDS},
            notice=None if failed or not message else tr.gettext(message),
            failure=tr.gettext(message) if failed and message else None,
        )
    )


async def controllers_save(request: web.Request) -> web.Response:
    """POST controllers: add a controller (action=add: name, host, port) or remove one
    (action=remove: name); an invalid one is refused by field, and nothing is changed."""
    form = await read_form(request)
    action = str(form.get("action", ""))
    values = {key: str(form.get(key, "")).strip() for key in CONTROLLER_FIELDS}
    app = request.app
    controllers = app[CONTROLLERS]
    tr = request_translator(request)
    if action not in ("add", "remove"):
        raise web.HTTPBadRequest(text="unknown action: add or remove")
    async with app[SAVE_LOCK]:
        try:
            if action == "remove":
                if values["name"] not in controllers.names[1:]:
                    raise web.HTTPBadRequest(text="no additional controller of that name")
                await controllers.remove_controller(values["name"], origin(request))
            else:
                if values["name"] in controllers.names:
                    raise OptionsError({"name": TAKEN})
                await controllers.save_controller(dict(values), origin(request))
        except OptionsError as err:
            errors = dict(err.errors)
            if " is at " in errors.get("controllers", ""):  # another controller's address
                errors["host"] = errors.pop("controllers")
            return _controllers_answer(request, values, errors, NOT_VALID, failed=True)
        except web.HTTPException:
            raise
        except Exception as err:  # the Supervisor or the disk refused: nothing was changed
            _LOGGER.error("saving the controllers failed: %s", err)
            failure = tr.gettext(N_("Not saved: {reason}. Nothing was changed.")).format(reason=err)
            return _controllers_answer(request, values, {}, failure, failed=True)
    _LOGGER.info("controller %s: %s from the panel by %s", values["name"], action, origin(request))
    words = ADDED if action == "add" else REMOVED
    notice = tr.gettext(words).format(name=values["name"])
    response = _controllers_answer(request, None, {}, notice, failed=False)
    if action == "remove" and values["name"] == chosen(request).name:
        response.headers["HX-Redirect"] = "setup"  # its pages are gone: the first controller's
    return response


TAKEN = N_("is taken: that controller is there already; choose it in the header to change it")
ADDED = N_("Controller {name} added and started. Choose it in the header to change its settings.")
REMOVED = N_("Controller {name} removed: its connection is closed; its files are kept.")


def _controllers_answer(
    request: web.Request,
    values: Mapping[str, Any] | None,
    errors: Mapping[str, str],
    message: str,
    *,
    failed: bool,
) -> web.Response:
    text = render_controllers(request, values, errors, message, failed)
    return _answer(request, STEPS_BY_ID["controllers"], text)
