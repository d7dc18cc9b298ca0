"""Typed application state keys shared by the panel's modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2
from aiohttp import web

from sec1000.common.tasks import TaskSet
from sec1000.plant import Plant
from sec1000.runtime import Runtime

HaStatus = Callable[[], Mapping[str, Any]]


class DemoControls(Protocol):
    """A simulated controller's switches, shown on the diagnostics page (the demo only)."""

    def status(self) -> Mapping[str, Any]:
        """{"faults": {name: on}, "overloaded": bool, "exchanges": int}."""

    def act(self, action: str, on: bool) -> None:
        """Apply one switch: a fault name, "clear" or "power_cycle"."""


class HomeAssistantSide(Protocol):
    """The Home Assistant adapter as the panel's Home Assistant page sees it."""

    def diagnostics(self) -> Mapping[str, Any]:
        """The connection ({"connected", "status", …}) and `entities` (option, mode, broker…)."""

    def entity_ids(self) -> list[str]:
        """The entity ids the add-on gives Home Assistant in the mode in effect."""

    async def install_scripts(self) -> Sequence[Mapping[str, str]]:
        """Install the awaitable scripts: [{"entity_id", "action", "detail"}]; raises
        ConnectionError (in words) when Home Assistant cannot be reached."""


class LiveChanges(Protocol):
    """The live channel's count of changes (`live.LiveHub`), as renderers and the demo use it."""

    seq: int

    def mark(self, ids: Iterable[str], controller: str = "") -> None:
        """Fragments `ids` of `controller` changed."""

    def start(self) -> None:
        """Follow every controller (the panel starts)."""

    async def stop(self) -> None:
        """Stop following; close the live sockets (the panel stops)."""

    async def close_sockets(self, grace: float = ...) -> None:
        """Close every live socket (a stop)."""


# The first controller's runtime (the options document, the options lock, the data folder).
RUNTIME = web.AppKey("runtime", Runtime)
# Every controller; a request's own is `CHOSEN` (from its `controller` query).
CONTROLLERS = web.AppKey("controllers", Plant)
# The controller a request is for: set by the `chosen_controller` middleware.
CHOSEN: web.RequestKey[Runtime] = web.RequestKey("chosen")
# The Home Assistant page's view of the adapter; absent when serve runs without it.
HOME_ASSISTANT: web.AppKey[HomeAssistantSide] = web.AppKey("home_assistant")
# The sensors priced per kWh that Home Assistant has ({entity id: name}), offered as the price
# sensor on the Setup page; serve passes the bridge's list.
PriceSensors = Callable[[], Mapping[str, str]]
PRICE_SENSORS: web.AppKey[PriceSensors] = web.AppKey("price_sensors")
# Present only in the demo: each simulator registers its switches under its controller's name.
DEMO: web.AppKey[dict[str, DemoControls]] = web.AppKey("demo")
SUPERVISED = web.AppKey("supervised", bool)
# Home Assistant connection status for diagnostics: a callable returning at least
# {"connected": bool, "status": str}; serve.py passes the HA client's `diagnostics`.
HA_STATUS: web.AppKey[HaStatus] = web.AppKey("ha_status")
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# Commands started by the panel run as tasks, kept here; cancelled when the panel stops.
TASKS = web.AppKey("tasks", TaskSet)
SAVE_LOCK = web.AppKey("save_lock", asyncio.Lock)
# The live channel: every change numbered, and each fragment's last change (`live.LiveHub`).
HUB: web.AppKey[LiveChanges] = web.AppKey("hub")


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user signed in through Home Assistant (setup_auth), as handlers and pages see them."""

    name: str
    csrf_token: str


# Set by the sign-in middleware on every request it lets through: the session's user, or None
# on the sign-in routes and static files. Absent without setup_auth (Home Assistant's ingress
# headers name the user there).
SIGNED_IN: web.RequestKey[SignedIn | None] = web.RequestKey("signed_in")
# The setup steps whose save can write to the controller, each with a live result line.
APPLY_STEPS = ("limits", "mode")
# When each of those steps last started writing, per controller ({name: {step id: time}}).
APPLIES: web.AppKey[dict[str, dict[str, float]]] = web.AppKey("applies")


def chosen(request: web.Request) -> Runtime:
    """The runtime of the controller the request is for (the first one without a choice)."""
    return request.get(CHOSEN) or request.app[RUNTIME]


def demo_of(app: web.Application, name: str) -> DemoControls | None:
    """The demo's switches of controller `name`, if it is simulated."""
    return app.get(DEMO, {}).get(name)
