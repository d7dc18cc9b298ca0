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
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sec1000.plant import Change, PlantEvent
from sec1000.runtime import Runtime
from sec1000.state import StateEvent
from sec1000.web.fragments import (
    APPLY_FRAGMENTS,
    FRAGMENTS,
    PAGES,
    PLANT_TOPIC,
    SHARED,
    SHARED_FRAGMENTS,
    TICK_TOPIC,
    affected,
    page_fragments,
    render_update,
    writes,
)
from sec1000.web.i18n import request_translator
from sec1000.web.keys import APPLIES, CONTROLLERS, DEMO, HA_STATUS, HUB, chosen

_LOGGER = logging.getLogger(__name__)

PUSH_DELAY = 0.05  # coalesce a burst of events into one push
TICK = 2.0  # how often the Home Assistant status and the demo's switches are looked at
HEARTBEAT = 25.0
# A stop gives every live socket this long to answer its close, then drops the connection.
CLOSE_GRACE = 1.0


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
            ids |= APPLY_FRAGMENTS
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


def _hub(app: web.Application) -> LiveHub:
    hub = app[HUB]
    assert isinstance(hub, LiveHub)  # create_app sets it
    return hub


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
    hub = _hub(request.app)
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
    hub = _hub(request.app)
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
