"""The demo's controls on the panel: switch the simulator's faults, clear them, power-cycle.

`serve --demo` calls `register_demo(app, server, name)` for each simulated controller; the panel
itself knows nothing of the simulator, only the `DemoControls` shape it shows on the diagnostics
page of the controller it is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sec1000.options import FIRST_CONTROLLER
from sec1000.simulator.server import FAULTS, SimulatorServer
from sec1000.web.forms import read_form
from sec1000.web.fragments import render_update
from sec1000.web.keys import DEMO, HUB, chosen, demo_of

DEMO_FRAGMENT = "sim-faults"


class SimulatorControls:
    """What the panel shows of the simulator, and the actions its switches take."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server

    def status(self) -> Mapping[str, Any]:
        """{"faults": {name: on}, "overloaded": bool, "exchanges": int}."""
        server = self.server
        return {
            "faults": {name: name in server.faults for name in FAULTS},
            "overloaded": server.overloaded,
            "exchanges": server.exchange_count,
        }

    def act(self, action: str, on: bool) -> None:
        """Apply one switch; raises KeyError for an unknown action."""
        if action == "clear":
            self.server.clear_faults()
        elif action == "power_cycle":
            self.server.power_cycle()
        elif action in FAULTS:
            self.server.set_fault(action, on)
        else:
            raise KeyError(action)


async def simulator_action(request: web.Request) -> web.Response:
    """POST simulator[?controller=C]: switch a simulated fault of the chosen controller, clear
    them, or power-cycle it."""
    runtime = chosen(request)
    controls = demo_of(request.app, runtime.name)
    form = await read_form(request)
    if controls is None:
        raise web.HTTPBadRequest(text=f"controller {runtime.name} is not simulated")
    try:
        controls.act(str(form.get("action", "")), form.get("on") == "true")
    except KeyError:
        raise web.HTTPBadRequest(text="unknown simulator action") from None
    request.app[HUB].mark([DEMO_FRAGMENT], runtime.name)
    text = render_update(request.app, [DEMO_FRAGMENT], runtime=runtime, page="diagnostics")
    return web.Response(text=text, content_type="text/html")


def register_demo(
    app: web.Application, server: SimulatorServer, controller: str = FIRST_CONTROLLER
) -> None:
    """Show the simulator's switches on the diagnostics page of `controller` and accept them
    at POST simulator?controller=…"""
    if DEMO not in app:
        app[DEMO] = {}
        app.router.add_post("/simulator", simulator_action, name="simulator")
    app[DEMO][controller] = SimulatorControls(server)
