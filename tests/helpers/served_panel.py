"""The panel as the browser tests (and the panel's benchmark) serve it: simulator → core (timer
running) → panel → ingress proxy, all on real loopback sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.simulator.panel import register_demo
from sec1000.web import create_app

from tests.browser.ingress_proxy import PREFIX, PROXY_LOG, ProxyLog, create_proxy

# The browser tests' link to the simulator: a fast, gentle one.
PANEL_GAP_MS = 30
PANEL_TIMEOUT_S = 2


@dataclass
class Panel:
    """The panel behind the ingress proxy, with the parts a test pokes at."""

    url: str  # the ingress URL of the dashboard, as Home Assistant's sidebar opens it
    origin: str
    runtime: Runtime
    simulator: SimulatorServer
    options_file: Path
    proxy_log: ProxyLog
    # With several controllers: the plant, and every simulator in the controllers' order.
    plant: Plant | None = None
    simulators: tuple[SimulatorServer, ...] = ()


async def _site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def panel_options(port: int, *barns: int) -> Options:
    """The browser tests' options: a fast, gentle link to the simulator on `port` (and one
    more controller on each of `barns`: barn, barn2, …)."""
    controllers = [
        {"name": "barn" + (str(n + 1) if n else ""), "host": "127.0.0.1", "port": barn}
        for n, barn in enumerate(barns)
    ]
    return Options.from_mapping(
        {
            "controllers": controllers,
            "host": "127.0.0.1",
            "port": port,
            "scan_interval": 1,
            "request_gap_ms": PANEL_GAP_MS,
            "request_timeout": PANEL_TIMEOUT_S,
            "min_export_limit": 0,
            "max_export_limit": 8,
            "total_capacity": 10,
        }
    )


@contextlib.asynccontextmanager
async def serve_panel(
    tmp_path: Path,
    *,
    websocket: bool = True,
    configure: Callable[[web.Application], None] | None = None,
    controllers: int = 1,
    watchdog_timings: WatchdogTimings | None = None,
    port: int | None = None,
) -> AsyncIterator[Panel]:
    """Simulator → core (timer running) → panel → ingress proxy, all on real loopback sockets.

    `configure` adds to the panel's application before it starts (e.g. Home Assistant). With
    `controllers` > 1, a plant runs one simulated controller more each (barn, barn2, …). With
    `port`, the first controller's address has that port instead of its simulator's (a wrong
    address; the simulator still runs, to be chosen later).
    """
    simulators = [await SimulatorServer(slow_delay=0.4).start() for _ in range(controllers)]
    simulator = simulators[0]
    options = panel_options(port or simulator.port, *(s.port for s in simulators[1:]))
    options_file = tmp_path / "options.json"
    save = file_saver(options_file)
    await save(options)
    # the real 5 s window, shortened (unless a test asks for its own): the sequence is the same
    timings = watchdog_timings or WatchdogTimings(off_window=0.4, settle=0.1)
    plant = None
    if controllers > 1:
        plant = Plant(options, tmp_path / "data", save_options=save, watchdog_timings=timings)
        runtime = plant.first
        app = create_app(plant)
        for name, server in zip(plant.names, simulators, strict=True):
            register_demo(app, server, name)
    else:
        runtime = Runtime(options, tmp_path / "data", save_options=save, watchdog_timings=timings)
        app = demo_app(runtime, simulator)
    if configure is not None:
        configure(app)
    panel_runner, panel_url = await _site(app)
    proxy = create_proxy(panel_url, websocket=websocket)
    proxy_runner, proxy_url = await _site(proxy)
    await (plant.start() if plant is not None else runtime.start())
    try:
        yield Panel(
            f"{proxy_url}{PREFIX}/",
            proxy_url,
            runtime,
            simulator,
            options_file,
            proxy[PROXY_LOG],
            plant,
            tuple(simulators),
        )
    finally:
        await (plant.stop() if plant is not None else runtime.stop())
        await proxy_runner.cleanup()
        await panel_runner.cleanup()
        for server in simulators:
            await server.stop()


def demo_app(runtime: Runtime, simulator: SimulatorServer) -> web.Application:
    """The panel with the demo's switches, as `serve --demo` builds it."""
    app = create_app(Plant.of_one(runtime))
    register_demo(app, simulator)
    return app
