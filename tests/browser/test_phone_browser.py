"""The panel on a 390 px phone in Chromium: every page fits the screen, the charts' labels are
legible (11 px or more on screen) and apart, the summary is one block per controller, and the
header says the connection in words.

Sizes are measured as Chromium lays them out: an SVG label's size is its font size times the
SVG's scale on screen (`getScreenCTM()`), an HTML label's its computed font size.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sec1000.limiter.watchdog import WatchdogTimings

from tests.helpers.browser import (
    ARTIFACTS,
    HOUR,
    NEGATIVE,
    PHONE,
    command_within_ms,
    feed,
    opener,
    policy_on,
    shot,
    wait_kind,
)
from tests.helpers.served_panel import Panel, serve_panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.browser

SMALLEST_PX = 11.0
OFF_WINDOW = 4.0  # the watchdog's window in the countdown's test: long enough to watch it count
PAGES = ("", "setup", "history", "homeassistant", "diagnostics")

# Every label of a chart as {text, px, box}: SVG text scaled by its SVG, HTML labels as laid out.
LABELS_JS = """
([selector, card]) => ({card: document.querySelector(card).getBoundingClientRect().toJSON(),
labels: Array.from(document.querySelectorAll(selector)).map((el) => {
  const style = getComputedStyle(el);
  let px = parseFloat(style.fontSize);
  if (el instanceof SVGElement) {
    const ctm = el.ownerSVGElement.getScreenCTM();
    px *= Math.min(Math.abs(ctm.a), Math.abs(ctm.d));
  }
  const r = el.getBoundingClientRect();
  return {text: el.textContent.trim(), px, box: {left: r.left, right: r.right, top: r.top,
          bottom: r.bottom}};
}).filter((label) => label.text && label.box.right > label.box.left)})
"""

# Elements that stick out of their card (or out of the screen), outside the scrolling regions.
STICKING_OUT_JS = """
() => {
  const out = [];
  const width = document.documentElement.clientWidth;
  for (const el of document.querySelectorAll('main *, header *')) {
    if (el.closest('.scroll, .visually-hidden, dialog, [hidden], .skip')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const card = el.parentElement && el.parentElement.closest('.card');
    const edge = card ? card.getBoundingClientRect().right : width;
    if (r.right > edge + 0.5 || r.left < -0.5) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className.baseVal ?? el.className}`
               + ` right ${Math.round(r.right)} > ${Math.round(edge)}`);
    }
  }
  return out;
}
"""

# A summary row's cells (the name, then the values): where each is, and the label before it.
ROW_JS = """
(selector) => Array.from(document.querySelectorAll(`${selector} th, ${selector} td`)).map((el) => {
  const r = el.getBoundingClientRect();
  return {top: r.top, left: r.left, right: r.right,
          label: getComputedStyle(el, '::before').content};
})
"""
# An element's box on the page (not the viewport), for a screenshot of it.
BOX_JS = """
(selector) => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height};
}
"""
WIDTH_JS = "(selector) => document.querySelector(selector).getBoundingClientRect().width"


def overlapping(labels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs of labels whose boxes overlap (by more than half a pixel)."""
    pairs = []
    for n, a in enumerate(labels):
        for b in labels[n + 1 :]:
            x = min(a["box"]["right"], b["box"]["right"]) - max(a["box"]["left"], b["box"]["left"])
            y = min(a["box"]["bottom"], b["box"]["bottom"]) - max(a["box"]["top"], b["box"]["top"])
            if x > 0.5 and y > 0.5:
                pairs.append((a["text"], b["text"]))
    return pairs


async def assert_legible(page: Page, selector: str, card: str) -> list[dict[str, Any]]:
    """Every label is 11 px or more on screen, none overlaps another, all inside the card.
    Measured in one go: the live fragments are replaced at every read (once a second here)."""
    found: dict[str, Any] = await page.evaluate(LABELS_JS, [selector, card])
    labels: list[dict[str, Any]] = found["labels"]
    assert labels, f"no labels found for {selector}"
    small = [(label["text"], round(label["px"], 1)) for label in labels if label["px"] < 11]
    assert small == [], f"labels under {SMALLEST_PX} px in {selector}: {small}"
    assert overlapping(labels) == [], f"labels overlap in {selector}"
    box = found["card"]
    outside = [
        label["text"]
        for label in labels
        if label["box"]["left"] < box["left"] - 0.5 or label["box"]["right"] > box["right"] + 0.5
    ]
    assert outside == [], f"labels cut off at the card's edge in {selector}: {outside}"
    return labels


async def shot_card(page: Page, card: str, name: str) -> None:
    """Keep a screenshot of one card (a test artifact). The card is replaced at every change:
    its box is measured in one go, then the page is taken clipped to it."""
    box = await page.evaluate(BOX_JS, card)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), clip=box, full_page=True)


async def assert_fits(page: Page, where: str) -> None:
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{where} is {wide} px wider than the phone"
    out = await page.evaluate(STICKING_OUT_JS)
    assert out == [], f"{where}: {out}"


async def test_the_charts_labels_are_legible_and_apart_on_a_phone(
    open_page: Any, panel: Panel
) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, NEGATIVE)])  # a negative price: a "-0.05" label
    await eventually(lambda: runtime.state.export_state == "off", what="the policy's write")
    await eventually(lambda: len(runtime.state.history) >= 2, what="two chart points")
    await eventually(lambda: runtime.state.energy.get("week"), what="a day of energy")

    page, _ = await open_page(viewport=PHONE)
    await expect(page.locator("#prices .price-plot")).to_be_visible()
    prices = await assert_legible(page, "#prices .price-label", "#prices")
    texts = [label["text"] for label in prices]
    assert "EUR/kWh" in texts and f"{NEGATIVE:g}" in texts and "0 kW" in texts, texts
    await assert_legible(page, "#chart .y-axis span, #chart .x-axis span", "#chart")
    await expect(page.locator("#energy svg.energy-chart")).to_be_visible()
    await assert_legible(page, "#energy .energy-label", "#energy")
    await assert_fits(page, "the dashboard")
    await shot(page, "phone-dashboard")
    await shot_card(page, "#prices", "phone-prices-card")


async def test_every_page_fits_a_phone_with_two_controllers(
    open_two: Any, two_controllers: Panel
) -> None:
    for controller in ("", "controller=barn"):
        for path in PAGES:
            query = ("&" if "?" in path else "?") + controller if controller else ""
            page, _ = await open_two(path + query, viewport=PHONE)
            await assert_fits(page, f"{path or 'dashboard'} {controller}")
            await page.context.close()


async def test_an_error_in_setup_controllers_keeps_the_form_inside_its_card(
    open_two: Any, two_controllers: Panel
) -> None:
    page, _ = await open_two("setup", viewport=PHONE)
    step = page.locator("#form-controllers")
    await step.get_by_label("Name").fill("A very long name for a shed far away")
    await step.get_by_label("Port").fill("123456789012345678901234567890")
    await step.get_by_role("button", name="Add controller").click()
    await expect(page.locator("#failure-controllers")).to_be_visible()
    await expect(page.locator("#ce-name")).to_be_visible()
    await assert_fits(page, "setup with an error in Controllers")


async def test_the_summary_is_one_block_per_controller_on_a_phone(
    open_two: Any, two_controllers: Panel
) -> None:
    plant = two_controllers.plant
    assert plant is not None
    await eventually(
        lambda: all(plant.get(name).state.export_limit_kw is not None for name in plant.names),
        what="both limits read",
    )
    page, _ = await open_two(viewport=PHONE)
    summary = page.locator("#summary")
    for name in ("sec1000", "barn"):
        row = summary.locator(f"#summary-{name}")
        await expect(row.locator("[data-key=export_limit]")).to_contain_text("kW")
        # Measured in one go: the summary is replaced at every read (once a second here).
        cells = await page.evaluate(ROW_JS, f"#summary-{name}")
        tops = [cell["top"] for cell in cells]
        assert len(cells) == 5 and tops == sorted(tops) and len(set(tops)) == 5, cells
        assert all(cell["left"] >= 0 and cell["right"] <= PHONE["width"] for cell in cells), cells
        # Each value says what it is: the column's name is shown beside it.
        labels = [cell["label"] for cell in cells]
        assert labels[1:] == [
            '"Connection"',
            '"Export power"',
            '"Export limit"',
            '"Export guard"',
        ], labels
    await assert_fits(page, "the summary")
    await shot(page, "phone-summary-two-controllers")
    await shot_card(page, "#summary", "phone-summary-card")


async def test_the_header_says_the_connection_in_words_on_a_phone(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page(viewport=PHONE)
    pill = page.locator("#link-status")
    await expect(pill).to_contain_text("Controller online", timeout=command_within_ms(1))
    # Measured in one go: the pill is replaced at every read (once a second here).
    words = await page.evaluate(WIDTH_JS, "#link-status .pill-text")
    assert words > 40, "the words are hidden on a phone"
    assert await page.evaluate(WIDTH_JS, "#live-indicator .pill-text") > 15
    await expect(page.locator("#live-indicator")).to_have_text("live")
    menu = await page.locator("#menu-button").bounding_box()
    assert menu is not None and menu["x"] + menu["width"] <= PHONE["width"]
    await assert_fits(page, "the header")


async def test_a_quick_choice_fills_the_field_and_sets_that_limit(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page(viewport=PHONE)
    field = page.get_by_role("textbox", name="Export limit")
    choices = page.get_by_role("group", name="Set the export limit to")
    await choices.get_by_role("button", name="Half: 4 kW").click()
    await expect(field).to_have_value("4")
    await wait_kind(page, "status-set_export_limit", "ok")
    assert panel.simulator.device.export_limit_w == 4000
    await choices.get_by_role("button", name="Off: 0 kW").click()
    await expect(field).to_have_value("0")
    await page.wait_for_function(
        "() => document.querySelector('#status-set_export_limit').textContent.includes('0.00 kW')",
        timeout=command_within_ms(),
    )
    await wait_kind(page, "status-set_export_limit", "ok")
    assert panel.simulator.device.export_limit_w == 0
    await expect(choices.get_by_role("button", name="Maximum: 8 kW")).to_be_visible()
    await assert_fits(page, "the controls with the quick choices")


async def test_the_watchdog_reset_counts_down_its_off_window_live(
    browser: Browser, tmp_path: Path
) -> None:
    timings = WatchdogTimings(off_window=OFF_WINDOW, settle=0.1)
    async with (
        serve_panel(tmp_path, watchdog_timings=timings) as served,
        opener(browser, served) as open_,
    ):
        page, _ = await open_(viewport=PHONE)
        await page.get_by_role("button", name="Reset export watchdog").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_role("button", name="Reset: full export for ~5 s").click()
        countdown = page.locator("#countdown-reset_export_watchdog")
        # The window opens after the three mode switches (behind the timer's read).
        await expect(countdown).to_be_visible(timeout=command_within_ms(3))
        first = await seconds_left(page)
        assert first is not None and 1 <= first <= OFF_WINDOW
        await shot(page, "phone-watchdog-countdown")
        # It counts on by itself: the page is told only when the window opens and shuts.
        await page.wait_for_function(
            f"() => /in [0-{first - 1}] s/.test("
            "(document.querySelector('#countdown-reset_export_watchdog') || {}).textContent)",
            timeout=command_within_ms(0) + 1000 * OFF_WINDOW,
        )
        # Shut, then the limiter back and confirmed: the countdown goes.
        await wait_kind(page, "status-reset_export_watchdog", "ok", within_ms=command_within_ms(10))
        await expect(countdown).to_have_count(0)
        await page.context.close()


async def seconds_left(page: Page) -> int | None:
    text = await page.evaluate(
        "(document.querySelector('#countdown-reset_export_watchdog') || {}).textContent || ''"
    )
    found = re.search(r"in (\d+) s", text)
    return int(found[1]) if found else None
