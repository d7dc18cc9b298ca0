"""Shared by the browser tests: a price day fed to the policy, axe-core's findings, a wait for a
status element's kind, and how long a page may take to show what the core did."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect
from sec1000.options import Options
from sec1000.pricing.reading import RAW
from sec1000.runtime import Runtime
from sec1000.simulator.prices import DEMO_PRICE_ENTITY, demo_price_state

from tests.helpers.waiting import eventually

NEGATIVE = -0.05
POSITIVE = 0.15
HOUR = dt.timedelta(hours=1)
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

# What a wait in a page is bounded by: the work it waits for, never a round number.
PANEL_GAP_MS = 30  # the browser tests' link to the simulator (tests/browser/conftest.py)
PANEL_TIMEOUT_S = 2
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
