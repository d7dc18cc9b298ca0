"""The Home Assistant page: the connection, the entity mode, the entities, and the scripts."""

from __future__ import annotations

import logging

from aiohttp import web
from markupsafe import Markup

from sec1000.state import StateModel
from sec1000.web.forms import read_form
from sec1000.web.i18n import N_, Translator, request_translator
from sec1000.web.keys import HA_STATUS, HOME_ASSISTANT, TEMPLATES, chosen
from sec1000.web.views import html, render_page

_LOGGER = logging.getLogger(__name__)

MODE_WORDS = {
    "mqtt": N_("one device through MQTT"),
    "rest": N_("states through the REST API, with helpers for the controls"),
}


OVER_LIMIT = "binary_sensor.sec1000_export_over_limit"


def entity_states(state: StateModel) -> dict[str, str]:
    """The states the entity list shows beside an id: the meter check's binary sensor."""
    return {OVER_LIMIT: "on" if state.overshoot.get("on") else "off"}


async def homeassistant_page(request: web.Request) -> web.Response:
    """GET homeassistant."""
    app = request.app
    side = app.get(HOME_ASSISTANT)
    status = dict(app[HA_STATUS]())
    entities = status.pop("entities", None) or {}
    return render_page(
        request,
        "homeassistant.html",
        "homeassistant",
        status=status,
        entities=entities,
        mode_words=MODE_WORDS,
        entity_ids=side.entity_ids() if side is not None else [],
        entity_states=entity_states(chosen(request).state),
        scripts=Markup(scripts_fragment(app, None, None, request_translator(request))),
    )


def scripts_fragment(
    app: web.Application,
    outcomes: list[dict[str, str]] | None,
    failure: str | None,
    tr: Translator,
) -> str:
    """The scripts card's result area."""
    return (
        app[TEMPLATES]
        .get_template("_scripts.html")
        .render(outcomes=outcomes, failure=failure, available=HOME_ASSISTANT in app, tr=tr)
    )


async def install_scripts(request: web.Request) -> web.Response:
    """POST homeassistant/scripts: install or update the add-on's scripts; answer the result."""
    await read_form(request)  # an unreadable body is a 400, as on every form
    app = request.app
    tr = request_translator(request)
    side = app.get(HOME_ASSISTANT)
    if side is None:
        failure = tr.gettext(N_("No Home Assistant is configured."))
        return html(scripts_fragment(app, None, failure, tr))
    try:
        outcomes = [dict(outcome) for outcome in await side.install_scripts()]
    except ConnectionError as err:
        failure = tr.gettext(N_("Not installed: {reason}")).format(reason=err)
        return html(scripts_fragment(app, None, failure, tr))
    _LOGGER.info("scripts: %s", ", ".join(f"{o['entity_id']} {o['action']}" for o in outcomes))
    return html(scripts_fragment(app, outcomes, None, tr))
