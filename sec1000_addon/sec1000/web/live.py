"""Live updates: state events mark page fragments as changed; a WebSocket pushes them, or polling.

Each fragment is an element with an id, rendered by one template for the page and for the
updates alike. An update is HTML carrying `hx-swap-oob`, applied by HTMX in the browser. Both
channels ask for "what changed since sequence number N", so a burst of events (four packets,
feedback, settings) becomes one small push, and a client that fell back to polling loses
nothing. Nothing is compressed: no permessage-deflate, no gzip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sec1000.commands import CommandName
from sec1000.plant import Change, PlantEvent
from sec1000.runtime import Runtime
from sec1000.state import CommandDone, FeedbackChanged, StateEvent, Topic
from sec1000.web.i18n import COOKIE, ENGLISH, Translator, choose, translator
from sec1000.web.keys import (
    APPLIES,
    APPLY_STEPS,
    CONTROLLERS,
    DEMO,
    HA_STATUS,
    RUNTIME,
    TEMPLATES,
    chosen,
    demo_of,
)
from sec1000.web.render import BUTTONS, SummaryRow, View, old_after
from sec1000.web.status import TOGGLE_COMMANDS, WRITE_COMMANDS, read_age

_LOGGER = logging.getLogger(__name__)

PAGES = ("dashboard", "setup", "history", "homeassistant", "diagnostics")
ALL_PAGES = frozenset(PAGES)
PUSH_DELAY = 0.05  # coalesce a burst of events into one push
TICK = 2.0  # how often the Home Assistant status and the demo's switches are looked at
HEARTBEAT = 25.0
# A stop gives every live socket this long to answer its close, then drops the connection.
CLOSE_GRACE = 1.0
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


_APPLY = {f"apply-{step}" for step in APPLY_STEPS}


def affected(event: StateEvent) -> set[str]:
    """The fragment ids a state event changes."""
    ids = {f.id for f in FRAGMENTS.values() if event.topic in f.topics}
    if (name := _command_of(event)) is not None:
        ids = (ids - _PER_OPERATION - _APPLY) | OPERATION_FRAGMENTS.get(name, set())
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


def request_translator(request: web.Request) -> Translator:
    """The request's language: the one chosen in the panel's menu, else Home Assistant's, else
    the browser's, else English."""
    ha_language = request.app[HA_STATUS]().get("language")
    home_assistant = ha_language if isinstance(ha_language, str) else None
    chosen = request.cookies.get(COOKIE)
    return translator(choose(request.headers.get("Accept-Language"), home_assistant, chosen))


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


class LiveHub:
    """Numbers every change and remembers, per controller and fragment, the number of its last
    change (the shared fragments under SHARED)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.seq = 1
        self.changed: dict[tuple[str, str], int] = {}
        self._following: dict[str, Callable[[], None]] = {}
        # Each open live socket, with its connection (aborted when the close is not answered).
        self.sockets: dict[web.WebSocketResponse, asyncio.Transport | None] = {}
        self.closing = False  # set by close_sockets: no new live sockets
        self._wakers: set[asyncio.Event] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._last_tick: Any = None

    def start(self) -> None:
        """Follow every controller's state model, and the controllers added and removed; look
        at the Home Assistant status and the demo now and then."""
        controllers = self.app[CONTROLLERS]
        for name in controllers.names:
            self._follow(controllers.get(name))
        controllers.subscribe(self.on_plant)
        self._ticker = asyncio.create_task(self._tick(), name="sec1000-panel-tick")

    def _follow(self, runtime: Runtime) -> None:
        name = runtime.name
        self._following[name] = runtime.state.subscribe(lambda event: self.on_event(event, name))

    def on_plant(self, event: PlantEvent) -> None:
        """A controller was added (follow it) or removed (stop following it)."""
        if self._ticker is None or self._ticker.done():
            return  # not started, or stopped
        unsubscribe = self._following.pop(event.runtime.name, None)
        if unsubscribe is not None:
            unsubscribe()
        if event.change is Change.ADDED:
            self._follow(event.runtime)
        self.mark(self._topic_ids(PLANT_TOPIC), SHARED)

    async def stop(self) -> None:
        """Stop following; close every live socket still open (see `close_sockets`)."""
        for unsubscribe in self._following.values():
            unsubscribe()
        self._following.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.close_sockets()

    async def close_sockets(self, grace: float = CLOSE_GRACE) -> None:
        """Refuse new live sockets and close the open ones all at once, each within `grace` s.

        Call it before the server's own shutdown: from then on aiohttp reads nothing more from
        the connections (no close answer, no pong) and waits for every open handler. A socket
        that does not answer in time (asleep, or not reading: its send buffer full, so even the
        close frame cannot be written) has its connection aborted, which ends its handler.
        """
        self.closing = True

        async def close(ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
            try:
                async with asyncio.timeout(grace):
                    if await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"):
                        return  # closed (answered, or its connection already gone)
            except (TimeoutError, ConnectionError, RuntimeError) as err:
                _LOGGER.debug("live socket did not close in time (%r): dropped", err)
            # Unanswered, or closed earlier (the heartbeat) while its handler still waits to
            # write: a graceful close never finishes while the peer reads nothing.
            if transport is not None:
                transport.abort()

        await asyncio.gather(*(close(ws, tr) for ws, tr in list(self.sockets.items())))

    def on_event(self, event: StateEvent, controller: str) -> None:
        """A state event of a controller (called synchronously by its state model)."""
        ids = affected(event)
        if self.app[APPLIES].get(controller) and writes(event):  # a setup save is writing
            ids |= _APPLY
        self.mark(ids - SHARED_FRAGMENTS, controller)
        self.mark(ids & SHARED_FRAGMENTS, SHARED)

    def mark(self, ids: Iterable[str], controller: str = SHARED) -> None:
        """These fragments of a controller's pages changed (of every page: SHARED)."""
        ids = list(ids)
        if not ids:
            return
        self.seq += 1
        for fid in ids:
            self.changed[controller, fid] = self.seq
        for waker in self._wakers:
            waker.set()

    def changed_since(self, seq: int, page: str, controller: str) -> list[str]:
        """The fragments of a controller's page changed after `seq` (all of them for an
        unknown or future seq)."""
        ids = page_fragments(self.app, page, controller)
        if seq <= 0 or seq > self.seq:
            return ids
        changed = self.changed
        return [
            fid
            for fid in ids
            if max(changed.get((controller, fid), 0), changed.get((SHARED, fid), 0)) > seq
        ]

    @staticmethod
    def _topic_ids(topic: str) -> list[str]:
        return [f.id for f in FRAGMENTS.values() if topic in f.topics]

    @contextlib.contextmanager
    def waker(self) -> Any:
        """An event set at every change, while the caller listens."""
        event = asyncio.Event()
        self._wakers.add(event)
        try:
            yield event
        finally:
            self._wakers.discard(event)

    def _tick_signature(self) -> Any:
        ha = dict(self.app[HA_STATUS]())
        shown = {name: demo.status() for name, demo in self.app.get(DEMO, {}).items()}
        return ha, {name: (s["faults"], s["overloaded"]) for name, s in shown.items()}

    async def _tick(self) -> None:
        while True:
            try:
                signature = self._tick_signature()
                if signature != self._last_tick:
                    self._last_tick = signature
                    self.mark(self._topic_ids(TICK_TOPIC), SHARED)
            except Exception:
                _LOGGER.exception("panel status check failed")
            await asyncio.sleep(TICK)


HUB = web.AppKey("hub", LiveHub)


def _page(request: web.Request) -> str:
    page = request.query.get("page", "dashboard")
    if page not in PAGES:
        raise web.HTTPBadRequest(text="unknown page; the pages are " + ", ".join(PAGES))
    return page


def _since(request: web.Request) -> int:
    try:
        return int(request.query.get("since", "0"))
    except ValueError:
        return 0


async def poll(request: web.Request) -> web.Response:
    """GET live?page=P&since=N[&controller=C]: the fragments changed since N (the polling
    fallback)."""
    page, since = _page(request), _since(request)
    hub = request.app[HUB]
    seq = hub.seq
    runtime = chosen(request)
    ids = hub.changed_since(since, page, runtime.name)
    tr = request_translator(request)
    return web.Response(
        text=render_update(request.app, ids, tr, runtime, page) if ids else "",
        content_type="text/html",
        headers={"X-Live-Seq": str(seq)},
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """GET ws?page=P&since=N[&controller=C]: push what changed since N at once, then after each
    burst."""
    page, since = _page(request), _since(request)
    hub = request.app[HUB]
    runtime = chosen(request)
    if hub.closing:  # the browser falls back to polling, which still answers while stopping
        raise web.HTTPServiceUnavailable(text="the add-on is stopping")
    tr = request_translator(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, compress=False)
    await ws.prepare(request)
    hub.sockets[ws] = request.transport
    reader = asyncio.create_task(_drain(ws))
    with hub.waker() as wake:
        try:
            # The first message comes at once: the changes since the page was rendered, and
            # always the link status (so the page knows the channel is up).
            ids = hub.changed_since(since, page, runtime.name)
            ids += [] if "link-status" in ids else ["link-status"]
            since = hub.seq
            await ws.send_str(render_update(request.app, ids, tr, runtime, page))
            while not ws.closed:
                waiter = asyncio.create_task(wake.wait())
                done, _ = await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    waiter.cancel()
                    break
                await asyncio.sleep(PUSH_DELAY)
                wake.clear()
                ids = hub.changed_since(since, page, runtime.name)
                since = hub.seq
                if ids:
                    await ws.send_str(render_update(request.app, ids, tr, runtime, page))
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.debug("live socket closed: %s", err)
        finally:
            hub.sockets.pop(ws, None)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the browser sends, until the socket closes."""
    async for message in ws:
        if message.type is WSMsgType.ERROR:
            break
