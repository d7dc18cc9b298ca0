"""Shared by the panel's tests: one builder of the panel under test, and a stand-in that answers
as the Home Assistant adapter does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.simulator.panel import register_demo
from sec1000.web import create_app
from sec1000.web.keys import HOME_ASSISTANT

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


class StandIn:
    """Answers as the Home Assistant adapter does (a stand-in, not Home Assistant)."""

    def __init__(self, outcomes: list[dict[str, str]] | None, error: str | None = None) -> None:
        self.outcomes, self.error, self.calls = outcomes or [], error, 0

    def diagnostics(self) -> Mapping[str, Any]:
        return {
            "connected": True,
            "status": "connected",
            "entities": {
                "option": "auto",
                "mode": "mqtt",
                "broker": "Broker(127.0.0.1:1883 from the Supervisor)",
                "mqtt": {"status": "connected to 127.0.0.1:1883"},
                "problem": None,
            },
        }

    def entity_ids(self) -> list[str]:
        return ["sensor.sec1000_v1", "button.sec1000_export_enable"]

    async def install_scripts(self) -> Sequence[Mapping[str, str]]:
        self.calls += 1
        if self.error:
            raise ConnectionError(self.error)
        return self.outcomes


async def panel(
    aiohttp_client: ClientFactory,
    runtime: Runtime | Plant,
    simulator: SimulatorServer | None = None,
    *,
    home_assistant: StandIn | None = None,
    middleware: Any = None,
    **kwargs: Any,
) -> TestClient[Any, Any]:
    """The panel on `runtime` (or a plant: every controller) (`kwargs` go to `create_app`); with `simulator`, the demo's
    switches too (as `serve --demo`); with `home_assistant`, that stand-in in the adapter's
    place (its diagnostics are the Home Assistant status); `middleware` goes in front of all."""
    if home_assistant is not None:
        kwargs.setdefault("ha_status", home_assistant.diagnostics)
    plant = runtime if isinstance(runtime, Plant) else Plant.of_one(runtime)
    app = create_app(plant, **kwargs)
    if home_assistant is not None:
        app[HOME_ASSISTANT] = home_assistant
    if simulator is not None:
        register_demo(app, simulator)
    if middleware is not None:
        app.middlewares.insert(0, middleware)
    return await aiohttp_client(app)


def as_if_from(address: str) -> Any:
    """A middleware put in front of the app: the request arrives from `address` (the test's
    stand-in for the network: the test client always connects from 127.0.0.1)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request.clone(remote=address))

    return middleware


def with_barn(options: Options, barn: SimulatorServer, **settings: object) -> Options:
    """`options` with a second controller, `barn`, on the simulator `barn` (its own keys:
    `settings`)."""
    item = {"name": "barn", "host": "127.0.0.1", "port": barn.port, **settings}
    return Options.from_mapping({"controllers": [item]}, base=options)


def plant_of(options: Options, data_dir: Path, options_file: Path) -> Plant:
    """A plant on `options`, saving into `options_file` (as outside the Supervisor)."""
    return Plant(options, data_dir, save_options=file_saver(options_file))
