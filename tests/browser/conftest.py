"""Real-browser fixtures: the simulator, the core, the panel behind an ingress proxy, Chromium.

Chromium is Debian's package (/usr/bin/chromium, installed by scripts/dev test with apt-get),
driven by Playwright's async API. No browser is ever downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    async_playwright,
    expect,
)
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.simulator.panel import register_demo
from sec1000.web import create_app

from tests.browser.ingress_proxy import PREFIX, PROXY_LOG, ProxyLog, create_proxy
from tests.helpers.browser import PAGE_DELIVERY_MS, PANEL_GAP_MS, PANEL_TIMEOUT_S

# Every `expect` in a page waits as long as the page's own delivery may take (Playwright's 5 s
# default is shorter than a loaded machine's Chromium needs).
expect.set_options(timeout=PAGE_DELIVERY_MS)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


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


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[Panel]:
    """The panel under /api/hassio_ingress/<token>/, WebSockets relayed."""
    async with serve_panel(tmp_path) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium."""
    assert CHROMIUM.exists(), "install Debian's chromium (scripts/dev test does it with apt-get)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@dataclass
class Watch:
    """Console errors, page errors and requests that left the ingress prefix."""

    prefix: str
    errors: list[str] = field(default_factory=list)
    escaped: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.errors.append(f"console: {message.text}")

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")

    def request(self, request: Request) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        path = re.sub(r"^[a-z]+://[^/]+", "", url)
        if not path.startswith(self.prefix + "/"):
            self.escaped.append(url)

    def allow(self, pattern: str) -> None:
        """Accept console errors matching `pattern` (a test that breaks something on purpose)."""
        self.allowed.append(re.compile(pattern))

    def check(self, proxy_log: ProxyLog) -> None:
        assert self.errors == [], self.errors
        assert self.escaped == [], f"requests outside the ingress prefix: {self.escaped}"
        assert proxy_log.escaped == [], f"requests outside the ingress prefix: {proxy_log.escaped}"


OpenPage = Callable[..., Any]


@pytest.fixture
async def two_controllers(tmp_path: Path) -> AsyncIterator[Panel]:
    """The panel on two controllers (sec1000 and barn), each on its simulator, behind ingress."""
    async with serve_panel(tmp_path, controllers=2) as served:
        yield served


@pytest.fixture
async def open_page(browser: Browser, panel: Panel) -> AsyncIterator[Callable[..., Any]]:
    """Open a page of the panel in a fresh context; every page is watched, and checked at the end."""
    async with opener(browser, panel) as open_:
        yield open_


@pytest.fixture
async def open_two(browser: Browser, two_controllers: Panel) -> AsyncIterator[Callable[..., Any]]:
    """`open_page` on the panel of two controllers."""
    async with opener(browser, two_controllers) as open_:
        yield open_


@contextlib.asynccontextmanager
async def opener(browser: Browser, panel: Panel) -> AsyncIterator[Callable[..., Any]]:
    """Opens pages of `panel`, each in a fresh context, watched, and checked at the end."""
    contexts = []
    watches: list[Watch] = []

    async def open_(
        path: str = "",
        *,
        viewport: dict[str, int] | None = None,
        scheme: str = "light",
        locale: str = "en-US",
    ) -> tuple[Page, Watch]:
        context = await browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            color_scheme=scheme,  # type: ignore[arg-type]
            reduced_motion="no-preference",
            locale=locale,  # also the Accept-Language header
        )
        contexts.append(context)
        page = await context.new_page()
        watch = Watch(PREFIX)
        watches.append(watch)
        page.on("console", watch.console)
        page.on("pageerror", watch.page_error)
        page.on("request", watch.request)
        page.on("websocket", lambda ws: watch.request(_WsRequest(ws.url)))  # type: ignore[arg-type]
        await page.goto(panel.url + path)
        await page.wait_for_function("window.sec1000Live && window.sec1000Live.updates > 0")
        return page, watch

    yield open_
    for context in contexts:
        with contextlib.suppress(Exception):
            await context.close()
    for watch in watches:
        watch.check(panel.proxy_log)


@dataclass
class _WsRequest:
    url: str


async def shot(page: Page, name: str) -> None:
    """Keep a screenshot as a (git-ignored) test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def settle(seconds: float = 0.05) -> None:
    """Give the event loop (core, panel, proxy) a moment."""
    await asyncio.sleep(seconds)


def demo_app(runtime: Runtime, simulator: SimulatorServer) -> web.Application:
    """The panel with the demo's switches, as `serve --demo` builds it."""
    app = create_app(Plant.of_one(runtime))
    register_demo(app, simulator)
    return app
