"""The dashboard's Prices card in a real headless Chromium, behind the ingress proxy.

The price policy is switched on with the demo's price sensor; a Nord Pool day (raw format)
with a negative block around now is fed to it, and its write is verified on the simulator
before the page opens. Each test fails on a console error, a page error, or any request
outside /api/hassio_ingress/<token>/ (checked by the `open_page` fixture at the end).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect
from sec1000.pricing.decide import PolicyState

from tests.helpers.browser import ARTIFACTS, HOUR, NEGATIVE, PHONE, POSITIVE, feed, policy_on, shot
from tests.helpers.served_panel import Panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.browser


def bounds(rect: dict[str, str]) -> tuple[float, float]:
    return float(rect["x"]), float(rect["x"]) + float(rect["width"])


async def rects(card: Locator, selector: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = await card.locator(selector).evaluate_all(
        "els => els.map(e => ({x: e.getAttribute('x'), width: e.getAttribute('width'),"
        " y: e.getAttribute('y'), height: e.getAttribute('height')}))"
    )
    return found


async def limit_level(page: Page) -> float:
    """Where the export limit line ends (its last vertical step), in the chart's units."""
    d = await page.locator("#prices path.limit").get_attribute("d")
    assert d, "the export limit line is missing"
    levels = re.findall(r"[V,]([0-9.]+)", d)
    return float(levels[-1])


async def test_prices_card_shows_prices_plan_limit_and_decisions(
    open_page: Any, panel: Panel
) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR + HOUR / 2, NEGATIVE)])  # negative now, for 2.5 hours
    assert runtime.policy.decision.state is PolicyState.EXPORT_OFF
    await eventually(lambda: runtime.state.export_state == "off", what="the policy's write")
    assert panel.simulator.device.export_limit_w == 0  # written and read back on the device
    policy = runtime.state.policy

    page, _ = await open_page()
    card = page.locator("#prices")
    await expect(card.locator("[data-key=policy_state]")).to_have_text("export off")
    await expect(card.locator("[data-key=policy_reason]")).to_contain_text("below 0")
    note = card.locator("[data-key=forecast_note]")
    await expect(note).to_have_text("forecast from the price sensor's attributes")
    await expect(card.locator("svg.price-chart")).to_be_visible()
    await expect(card.locator("svg path.price")).to_have_count(1)
    assert await card.locator("svg path.price").get_attribute("d")

    # Every negative slot is shaded, every planned off window drawn, the one now holds "now".
    negatives = await rects(card, "rect.negative")
    assert len(negatives) == sum(1 for slot in policy["slots"] if slot[2] < 0)
    windows = await rects(card, "rect.off-window")
    assert len(windows) == len(policy["off_windows"]) >= 1
    now_x = float(await card.locator("line.now").get_attribute("x1") or "nan")
    assert any(a <= now_x <= b for a, b in map(bounds, windows)), (now_x, windows)
    zero_y = float(await card.locator("line.zero").get_attribute("y1") or "nan")
    for rect in negatives:  # hanging from the zero line
        assert float(rect["y"]) == pytest.approx(zero_y, abs=0.06)
        assert float(rect["height"]) > 0

    # The limit line ends at the bottom: 0 kW, the policy's write, read back.
    await expect(card.locator("svg path.limit")).to_have_count(1)
    assert await limit_level(page) == pytest.approx(168.0)

    rows = card.locator("table.decisions tbody tr")
    await expect(rows.first).to_contain_text("export off")
    await expect(rows.first).to_contain_text(f"price {NEGATIVE:g} is below 0: export off")
    await shot(page, "prices-desktop-light")
    await card.screenshot(path=str(ARTIFACTS / "prices-card-desktop-light.png"))

    # A positive price now, negative again in an hour: the policy switches export on, and the
    # card follows live (no reload): badge, limit line back at the top, the next change planned.
    await feed(runtime, [(-HOUR, HOUR, POSITIVE), (HOUR, 2 * HOUR, NEGATIVE)])
    await eventually(lambda: runtime.state.export_state == "on", what="export back on")
    await expect(card.locator("[data-key=policy_state]")).to_have_text("export on")
    await expect(card).to_contain_text("next: export off at")
    await page.wait_for_function(
        "() => /V30\\.0H[0-9.]+$/.test(document.querySelector('#prices path.limit').getAttribute('d'))"
    )
    await expect(rows.first).to_contain_text(f"price {POSITIVE:g} is at or above 0: export on")
    assert await rows.count() >= 2
    await card.screenshot(path=str(ARTIFACTS / "prices-card-live-on.png"))


async def test_prices_card_fits_a_phone_in_dark_mode(open_page: Any, panel: Panel) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, NEGATIVE)])
    await eventually(lambda: runtime.state.export_state == "off", what="the policy's write")

    page, _ = await open_page(viewport=PHONE, scheme="dark")
    card = page.locator("#prices")
    await expect(card.locator("svg path.price")).to_be_visible()
    await expect(card.locator("rect.off-window").first).to_be_attached()
    box = await card.locator("svg.price-chart").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    wide = await page.evaluate("document.documentElement.scrollWidth")
    assert wide <= PHONE["width"], "the Prices card makes the page scroll sideways"
    await shot(page, "prices-phone-dark")
    await card.screenshot(path=str(ARTIFACTS / "prices-card-phone-dark.png"))
