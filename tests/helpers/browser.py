"""Shared by the browser tests: Debian's Chromium and its pages (watched, opened, shot), a price
day fed to the policy, axe-core's findings, a wait for a status element's kind, and how long a
page may take to show what the core did."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Page, Request, expect
from sec1000.options import Options
from sec1000.pricing.reading import RAW
from sec1000.runtime import Runtime
from sec1000.simulator.prices import DEMO_PRICE_ENTITY, demo_price_state

from tests.browser.ingress_proxy import PREFIX, ProxyLog
from tests.helpers.served_panel import PANEL_GAP_MS, PANEL_TIMEOUT_S, Panel
from tests.helpers.waiting import eventually

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

NEGATIVE = -0.05
POSITIVE = 0.15
HOUR = dt.timedelta(hours=1)
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

# What a wait in a page is bounded by: the work it waits for, never a round number.
# The longest command on the panel: the limit written and read back, twice (write_verified's
# attempts), after the three mode switches.
LONGEST_COMMAND_EXCHANGES = 7
# The timer's telemetry read may hold the link when a command comes: two exchanges (its retry).
TIMER_READ_EXCHANGES = 2
# The page shows what the core holds once it is pushed over the panel's WebSocket (or answered
# to its POST); a lost socket is tried again at most RETRY_MAX_MS later (panel.js, 30 s).
PAGE_DELIVERY_MS = 30_000
# The ages ("s ago", stale) are refreshed on every change, and at least every 10 s (panel.js).
AGES_REFRESH_MS = 10_000


def command_within_ms(exchanges: int = LONGEST_COMMAND_EXCHANGES) -> float:
    """How long a command's result may take to reach the page: its exchanges behind the timer's
    read, each after the gap and at most the timeout, then the page's delivery."""
    per_exchange = PANEL_GAP_MS + 1000 * PANEL_TIMEOUT_S
    return (TIMER_READ_EXCHANGES + exchanges) * per_exchange + PAGE_DELIVERY_MS


def priced_day(now: dt.datetime, blocks: list[tuple[dt.timedelta, dt.timedelta, float]]) -> Any:
    """The demo's day (today and tomorrow, 15-minute slots), with `blocks` (start and end
    relative to now, and the price) laid over it: the card then shows the same thing at any
    time of day."""
    _, attributes = demo_price_state(now)
    current = None
    for key in RAW:
        for item in attributes[key]:
            start = dt.datetime.fromisoformat(item["start"])
            end = dt.datetime.fromisoformat(item["end"])
            for first, last, price in blocks:
                if now + first <= start < now + last or start <= now + first < end:
                    item["value"] = price
            if start <= now < end:
                current = item["value"]
    assert current is not None
    return f"{current:.3f}", attributes


async def policy_on(runtime: Runtime) -> None:
    """The price policy on, on the demo's sensor, without a dwell; the startup read is done."""
    await runtime.apply_options(
        Options.from_mapping(
            {
                "price_policy": True,
                "price_entity": DEMO_PRICE_ENTITY,
                "export_off_below": 0,
                "export_on_above": 0,
                "policy_min_dwell_minutes": 0,
            },
            base=runtime.options,
        )
    )
    await eventually(lambda: runtime.state.export_state == "on", what="the startup read")


async def feed(runtime: Runtime, blocks: list[tuple[dt.timedelta, dt.timedelta, float]]) -> None:
    state, attributes = priced_day(dt.datetime.now().astimezone(), blocks)
    runtime.policy.price_changed(state, attributes)
    await runtime.policy.evaluate()


async def violations(page: Page) -> list[str]:
    """The serious and critical axe violations of the page as it is now, one line each."""
    assert AXE.exists(), "axe-core is missing: scripts/dev test installs it (npm ci)"
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} — "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in found
        if v["impact"] in BLOCKING
    ]


async def wait_kind(page: Page, element_id: str, kind: str, within_ms: float | None = None) -> None:
    """Wait until the status shows `kind`; by default within the longest command's budget."""
    await expect(page.locator(f"#{element_id}")).to_have_attribute(
        "data-kind", kind, timeout=command_within_ms() if within_ms is None else within_ms
    )


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
