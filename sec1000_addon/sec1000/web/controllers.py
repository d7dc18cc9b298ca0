"""Several controllers on the panel: the choice carried in the URL, one controller alone.

Every page, fragment, form and download is for one controller, named by the `controller` query
(`setup?controller=barn`); without it, the first controller's. The URLs stay relative, so they
work under Home Assistant's ingress prefix; the first controller's are today's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from sec1000.operations import Origin
from sec1000.options import FIRST_CONTROLLER, OptionsError
from sec1000.plant import PlantEvent, UnknownController
from sec1000.runtime import Runtime
from sec1000.web.keys import CHOSEN, CONTROLLERS

CONTROLLER_QUERY = "controller"
# Renders the page for a controller name nobody has: set by the app (views render pages).
UnknownPage = Callable[[web.Request, str], web.StreamResponse]
UNKNOWN_PAGE: web.AppKey[UnknownPage] = web.AppKey("unknown_page")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def at(path: str, name: str) -> str:
    """A relative URL of the panel for controller `name` (the first one's as today's)."""
    if name == FIRST_CONTROLLER:
        return path
    return f"{path}{'&' if '?' in path else '?'}{CONTROLLER_QUERY}={name}"


@web.middleware
async def chosen_controller(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The controller named by the request's `controller` query becomes its CHOSEN runtime; an
    unknown name is answered with a page that says so (404), whatever was asked."""
    name = request.query.get(CONTROLLER_QUERY, "")
    if name and not request.path.startswith("/static/"):
        try:
            request[CHOSEN] = request.app[CONTROLLERS].get(name)
        except KeyError:
            return request.app[UNKNOWN_PAGE](request, name)
    return await handler(request)


@dataclass
class OneController:
    """A lone runtime as the panel's controllers (the add-on itself always has a plant)."""

    first: Runtime

    @property
    def names(self) -> list[str]:
        """The one name."""
        return [self.first.name]

    def get(self, name: str | None = None) -> Runtime:
        """The runtime, for its own name or none."""
        if not name or name == self.first.name:
            return self.first
        raise UnknownController(name, self.names)

    def subscribe(self, listener: Callable[[PlantEvent], None]) -> None:
        """Nothing is ever added."""

    async def save_controller(self, values: dict[str, object], origin: Origin) -> None:
        """Refused: only the add-on's plant runs further controllers."""
        raise OptionsError({"controllers": "this panel runs one controller only"})

    async def remove_controller(self, name: str, origin: Origin) -> None:
        """There is none to remove."""
        raise UnknownController(name, [])
