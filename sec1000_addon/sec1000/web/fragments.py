"""The panel's live fragments and how each is rendered.

A fragment is an element with an id, rendered by one template for the page and for the live
updates alike; the table says which state topics change it and which pages show it. `make_view`
takes one consistent look at a controller for a render pass; `render_fragment` and
`render_update` turn fragments into HTML (an update carries `hx-swap-oob` for HTMX). The live
channel (`live.py`) decides when; this module decides what.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sec1000.commands import CommandName
from sec1000.runtime import Runtime
from sec1000.state import CommandDone, FeedbackChanged, StateEvent, Topic
from sec1000.web.i18n import ENGLISH, Translator
from sec1000.web.keys import (
    APPLIES,
    APPLY_STEPS,
    CONTROLLERS,
    HA_STATUS,
    HUB,
    RUNTIME,
    TEMPLATES,
    demo_of,
)
from sec1000.web.render import BUTTONS, SummaryRow, View, old_after
from sec1000.web.status import TOGGLE_COMMANDS, WRITE_COMMANDS, read_age

PAGES = ("dashboard", "setup", "history", "homeassistant", "diagnostics")
ALL_PAGES = frozenset(PAGES)
TICK_TOPIC = "tick"
PLANT_TOPIC = "plant"  # a controller added or removed
# The fragments about every controller (or none): the same whichever controller a page is for.
SHARED = ""
SHARED_FRAGMENTS = frozenset({"switcher", "summary", "ha-status"})


@dataclass(frozen=True, slots=True)
class Fragment:
    """One live element: its id, template, the topics that change it, and where it is shown."""

    id: str
    template: str
    topics: frozenset[str]
    pages: frozenset[str]
    # Morph in place (the same nodes stay: focus is kept and screen readers hear the live
    # region change), else replace.
    morph: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)


ON_DASHBOARD = frozenset({"dashboard"})
ON_SETUP = frozenset({"setup"})
ON_DIAGNOSTICS = frozenset({"diagnostics"})
ON_HISTORY = frozenset({"history"})
T = Topic
RESULTS = frozenset({T.FEEDBACK, T.COMMAND})  # an operation's progress and its result
TICKS = frozenset({TICK_TOPIC})


def _status(operation: CommandName, pages: frozenset[str]) -> Fragment:
    """A command button's status line (its feedback in words; the reset's also counts down its
    off window)."""
    context = {"operation": operation.value}
    topics = RESULTS | {T.RESTORE} if operation is CommandName.RESET_EXPORT_WATCHDOG else RESULTS
    return Fragment(f"status-{operation.value}", "_status.html", topics, pages, True, context)


def _apply(step: str) -> Fragment:
    """A setup step's live result line (its save written to the controller)."""
    return Fragment(f"apply-{step}", "_apply.html", RESULTS, ON_SETUP, True, {"step": step})


# Every live element: its id, template, the topics that change it, the pages that show it, and
# whether it is morphed. The banner is: an overshoot changes it at every read, and its alert
# must not be said again.
FRAGMENTS: dict[str, Fragment] = {
    fragment.id: fragment
    for fragment in (
        Fragment("banner", "_banner.html",
                 frozenset({T.RESTORE, T.OPTIONS, T.OVERSHOOT, T.LINK}), ALL_PAGES, morph=True),
        Fragment("link-status", "_link_status.html", frozenset({T.LINK, T.TELEMETRY}), ALL_PAGES),
        Fragment("switcher", "_switcher.html", frozenset({PLANT_TOPIC}), ALL_PAGES),
        Fragment("headline", "_headline.html",
                 frozenset({T.SETTINGS, T.TELEMETRY, T.GUARD, T.POLICY, T.OPTIONS, T.RESTORE}),
                 ON_DASHBOARD, morph=True),
        Fragment("summary", "_summary.html",
                 frozenset({T.LINK, T.TELEMETRY, T.SETTINGS, T.GUARD, PLANT_TOPIC}), ON_DASHBOARD),
        Fragment("flow", "_flow.html", frozenset({T.TELEMETRY, T.LINK, T.OVERSHOOT}), ON_DASHBOARD),
        Fragment("controls-gate", "_controls_gate.html", frozenset({T.LINK, T.TELEMETRY}),
                 ON_DASHBOARD, morph=True),
        Fragment("phases", "_phases.html", frozenset({T.TELEMETRY}), ON_DASHBOARD),
        Fragment("energy", "_energy.html", frozenset({T.ENERGY}), ON_DASHBOARD),
        Fragment("prices", "_prices.html", frozenset({T.POLICY, T.SETTINGS}), ON_DASHBOARD),
        Fragment("export-info", "_export_info.html",
                 frozenset({T.SETTINGS, T.OPTIONS, T.TELEMETRY, T.GUARD, T.OVERSHOOT}),
                 ON_DASHBOARD),
        Fragment("chart", "_chart.html",
                 frozenset({T.TELEMETRY, T.COMMAND, T.SETTINGS, T.OVERSHOOT}), ON_DASHBOARD),
        Fragment("day-chart", "_day_chart.html",
                 frozenset({T.TELEMETRY, T.COMMAND, T.GUARD, T.RESTORE, T.OVERSHOOT}), ON_HISTORY),
        Fragment("export-toggle", "_toggle.html",
                 frozenset({T.SETTINGS, T.FEEDBACK, T.COMMAND, T.OPTIONS, T.POLICY}),
                 ON_DASHBOARD, morph=True),
        *(_status(operation, ON_DASHBOARD) for operation in BUTTONS),
        _status(CommandName.SET_CONTROL_MODE, ON_SETUP),
        *(_apply(step) for step in APPLY_STEPS),
        Fragment("link-health", "_link_health.html", frozenset({T.LINK, T.OPTIONS}),
                 ON_DIAGNOSTICS),
        Fragment("frames", "_frames.html", frozenset({T.LINK}), ON_DIAGNOSTICS),
        Fragment("command-log", "_command_log.html", frozenset({T.COMMAND}), ON_DIAGNOSTICS),
        Fragment("ha-status", "_ha_status.html", TICKS, ON_DIAGNOSTICS),
        Fragment("sim-faults", "_sim_faults.html", TICKS, ON_DIAGNOSTICS),
    )
}  # fmt: skip

# Feedback and command events name their operation: only that operation's elements change.
OPERATION_FRAGMENTS: dict[str, set[str]] = {
    **{op.value: {f"status-{op.value}"} for op in BUTTONS},
    CommandName.SET_CONTROL_MODE.value: {f"status-{CommandName.SET_CONTROL_MODE.value}"},
    **{name.value: {"export-toggle"} for name in TOGGLE_COMMANDS},
}
_PER_OPERATION = {fid for ids in OPERATION_FRAGMENTS.values() for fid in ids}


APPLY_FRAGMENTS = frozenset(f"apply-{step}" for step in APPLY_STEPS)


def affected(event: StateEvent) -> set[str]:
    """The fragment ids a state event changes."""
    ids = {f.id for f in FRAGMENTS.values() if event.topic in f.topics}
    if (name := _command_of(event)) is not None:
        ids = (ids - _PER_OPERATION - APPLY_FRAGMENTS) | OPERATION_FRAGMENTS.get(name, set())
    return ids


def _command_of(event: StateEvent) -> str | None:
    """The command a feedback or a command's end is about (None: another event)."""
    if isinstance(event, FeedbackChanged):
        return event.operation.value
    if isinstance(event, CommandDone):
        return event.record.command
    return None


def writes(event: StateEvent) -> bool:
    """True for the feedback or result of a write (a setup step's result may follow it)."""
    return _command_of(event) in WRITE_COMMANDS


def page_fragments(app: web.Application, page: str, controller: str) -> list[str]:
    """The ids of the live fragments shown on a page of a controller."""
    ids = [f.id for f in FRAGMENTS.values() if page in f.pages]
    if demo_of(app, controller) is None:
        ids = [fid for fid in ids if fid != "sim-faults"]
    return ids


def summary_row(runtime: Runtime, tr: Translator, now: float) -> SummaryRow:
    """One controller's row of the summary, with the age of its telemetry."""
    state = runtime.state
    age = read_age(state.telemetry_at, now, old_after(runtime.options), tr)
    return SummaryRow(runtime.name, state, runtime.link.health, age)


def make_view(
    app: web.Application,
    tr: Translator = ENGLISH,
    runtime: Runtime | None = None,
    page: str = "dashboard",
) -> View:
    """One consistent view of a controller's state (the first one's without `runtime`) for a
    render pass of a page, in one language."""
    runtime = runtime or app[RUNTIME]
    demo = demo_of(app, runtime.name)
    demo_status = demo.status() if demo is not None else {}
    price = runtime.policy.price
    controllers = app[CONTROLLERS]
    names = tuple(controllers.names)
    now = time.time()
    rows = tuple(summary_row(controllers.get(n), tr, now) for n in names) if len(names) > 1 else ()
    return View(
        state=runtime.state,
        options=runtime.options,
        options_error=runtime.options_error,
        health=runtime.link.health,
        link_target="{}:{}".format(*runtime.link.target),
        ha=app[HA_STATUS](),
        faults=demo_status.get("faults"),
        overloaded=bool(demo_status.get("overloaded", False)),
        tr=tr,
        price_unit=price.reading.unit if price is not None else None,
        applies=app.get(APPLIES, {}).get(runtime.name, {}),
        controller=runtime.name,
        names=names,
        rows=rows,
        page=page,
        now=now,
        audit=runtime.audit,
    )


def render_fragment(app: web.Application, fid: str, view: View, *, oob: bool = False) -> str:
    """One fragment's HTML; with `oob` it carries the swap instruction for HTMX. It is stamped
    with the change number it shows (`data-live-seq`): the page keeps the newest of two copies
    that cross (a command's answer and the live channel's next update)."""
    fragment = FRAGMENTS[fid]
    swap = ("outerMorph" if fragment.morph else "true") if oob else None
    template = app[TEMPLATES].get_template(fragment.template)
    seq = app[HUB].seq
    return template.render(v=view, fid=fid, oob=swap, live_seq=seq, tr=view.tr, **fragment.context)


def render_update(
    app: web.Application,
    ids: Iterable[str],
    tr: Translator = ENGLISH,
    runtime: Runtime | None = None,
    page: str = "dashboard",
) -> str:
    """Several fragments of a controller's page (the first one's without `runtime`) as one
    out-of-band update."""
    view = make_view(app, tr, runtime, page)
    return "\n".join(render_fragment(app, fid, view, oob=True) for fid in ids)
