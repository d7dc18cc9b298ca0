"""Several controllers on the panel: the choice carried in the URL.

Every page, fragment, form and download is for one controller, named by the `controller` query
(`setup?controller=barn`); without it, the first controller's. The URLs stay relative, so they
work under Home Assistant's ingress prefix; the first controller's are today's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from sec1000.options import FIRST_CONTROLLER
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
