"""What a user reads and types, in a real headless Chromium behind the ingress proxy: the kW
field, refusals in words, results that age, the phone's header, the price policy's pause at the
toggle, the Setup warnings, the looks, and a second language.

Each test fails on a console error, a page error, or any request outside the ingress prefix
(checked by the `open_page` fixture at the end).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sec1000.pricing.decide import PolicyState
from sec1000.protocol import read_export_settings_request, read_telemetry_request

from tests.helpers.browser import (
    AGES_REFRESH_MS,
    DESKTOP,
    HOUR,
    NEGATIVE,
    PHONE,
    POSITIVE,
    TIMER_READ_EXCHANGES,
    command_within_ms,
    feed,
    policy_on,
    shot,
    wait_kind,
)
from tests.helpers.served_panel import Panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.browser


def limit_writes(panel: Panel) -> int:
    """The requests the simulator received that are no read (telemetry, export settings)."""
    reads = (read_telemetry_request(), read_export_settings_request())
    return sum(1 for frame in panel.simulator.requests() if frame not in reads)


async def set_limit(page: Page, text: str) -> None:
    await page.locator("#limit").fill(text)
    await page.locator("#btn-set_export_limit").click()


async def test_a_decimal_comma_sends_3_5_kw_in_an_english_chromium_and_the_text_stays(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()  # en-US: a type=number field would have made 35 of it
    assert await page.locator("#limit").get_attribute("inputmode") == "decimal"
    assert await page.locator("#limit").get_attribute("type") == "text"
    panel.simulator.set_fault("slow", count=1)  # "waiting" stays on screen a moment
    await set_limit(page, "3,5")
    await wait_kind(page, "status-set_export_limit", "waiting")
    await expect(page.locator("#limit")).to_have_value("3,5")  # the user's text, untouched
    await wait_kind(page, "status-set_export_limit", "ok")
    assert panel.simulator.device.export_limit_w == 3500
    await expect(page.locator("#limit")).to_have_value("3,5")
    await expect(page.locator("#limit")).not_to_have_attribute("aria-invalid", "true")


async def good_read_shown_after(page: Page, element_id: str) -> None:
    """Wait until the page holds a good read newer than the result in `element_id`, and until
    the page has looked at its results again (panel.js does it a task after each change)."""
    await page.wait_for_function(
        """id => {
          const pill = document.getElementById("link-status");
          const status = document.getElementById(id);
          return Number(pill.dataset.goodAt || 0) > Number(status.dataset.at || Infinity);
        }""",
        arg=element_id,
        timeout=command_within_ms(TIMER_READ_EXCHANGES),
    )
    await page.evaluate("() => new Promise(done => setTimeout(done, 0))")


async def test_a_refused_limit_names_the_rule_it_broke_and_marks_the_field(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()
    status = page.locator("#status-set_export_limit")
    field = page.locator("#limit")
    await eventually(lambda: panel.runtime.state.export_state is not None, what="the startup read")
    writes = limit_writes(panel)
    refused = (
        ("abc", "“abc” is not a number"),
        ("", "The field is empty"),
        ("1e3", "“1e3” is not written in plain digits"),
        ("-1", "-1 kW is below the minimum of 0 kW"),
        ("150", "150 kW is above the maximum of 8 kW"),  # the user's maximum, not the device's
        ("9", "9 kW is above the maximum of 8 kW"),  # never clamped to the maximum
    )
    for typed, words in refused:
        await set_limit(page, typed)
        await expect(status.locator(".word")).to_have_text(words)
        await expect(status).to_have_attribute("data-invalid", "true")
        await expect(status.locator(".detail")).to_contain_text("(feedback 128)")
        await expect(status).not_to_contain_text("got ''")
        # The input itself is marked (aria-invalid and its look), not only the button.
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(field).to_have_value(typed)
        colour = await field.evaluate("el => getComputedStyle(el).borderTopColor")
        button = await page.locator("#btn-set_export_limit").evaluate(
            "el => getComputedStyle(el).borderTopColor"
        )
        assert colour != button, "the refused field looks like any other"
        await shot(page, "dashboard-refused-limit")
        await field.fill("4")  # typing again clears the mark; the words fade
        await expect(field).not_to_have_attribute("aria-invalid", "true")
        await expect(status).to_have_attribute("data-cleared", "true")
    assert limit_writes(panel) == writes, "a refused limit reached the controller"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
async def test_a_refusal_stays_through_good_reads_until_the_field_is_changed(
    open_page: Any, panel: Panel, viewport: dict[str, int]
) -> None:
    page, _ = await open_page(viewport=viewport)
    status = page.locator("#status-set_export_limit")
    field = page.locator("#limit")
    await set_limit(page, "12")
    await expect(status.locator(".word")).to_have_text("12 kW is above the maximum of 8 kW")
    red = await status.locator(".word").evaluate("el => getComputedStyle(el).color")
    await good_read_shown_after(page, "status-set_export_limit")  # reads every second
    # The controller answering changes nothing about what was typed: mark and words stay.
    await expect(status).to_have_attribute("data-stale", "false")
    await expect(status).not_to_have_attribute("data-cleared", "true")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(status.locator(".word")).to_have_text("12 kW is above the maximum of 8 kW")
    await expect(status).not_to_contain_text("The controller has answered since.")
    assert await status.locator(".word").evaluate("el => getComputedStyle(el).color") == red
    await expect(status.locator(".word")).to_be_in_viewport()
    await shot(page, f"dashboard-refusal-stays-{viewport['width']}")
    await field.press("End")
    await field.press("Backspace")  # "1": an input event, as the user types
    await expect(field).not_to_have_attribute("aria-invalid", "true")
    await expect(status).to_have_attribute("data-cleared", "true")
    assert await status.locator(".word").evaluate("el => getComputedStyle(el).color") != red


async def test_a_failure_shows_its_age_and_fades_after_the_next_good_read(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()
    status = page.locator("#status-get_export_limit")
    panel.simulator.set_fault("bad_checksum")
    await page.get_by_role("button", name="Get export limit", exact=True).click()
    await wait_kind(page, "status-get_export_limit", "error", command_within_ms(1))
    await expect(status).to_have_attribute("data-stale", "false")
    await expect(status.locator("time")).to_have_text(re.compile(r"just now|s ago"))
    await expect(status.locator(".since")).to_be_hidden()
    # The button keeps its own outline: the result's colour stays in the line below it.
    button = page.locator("#btn-get_export_limit")
    await page.mouse.move(0, 0)  # no hover
    toggle_colour = await page.locator("#btn-set_date_and_time, #btn-set_datetime").first.evaluate(
        "el => getComputedStyle(el).borderTopColor"
    )
    assert await button.evaluate("el => getComputedStyle(el).borderTopColor") == toggle_colour
    panel.simulator.clear_faults()
    reads = panel.runtime.state.telemetry_at or 0
    await eventually(
        lambda: (panel.runtime.state.telemetry_at or 0) > reads, what="a good read after it"
    )
    await expect(status).to_have_attribute(
        "data-stale", "true", timeout=command_within_ms(TIMER_READ_EXCHANGES) + AGES_REFRESH_MS
    )
    await expect(status.locator(".since")).to_be_visible()
    await expect(status.locator(".since")).to_have_text("The controller has answered since.")


async def test_the_phone_header_is_two_short_rows_with_a_menu(open_page: Any, panel: Panel) -> None:
    page, _ = await open_page(viewport=PHONE)
    # The name and the menu, then the connection in words (tests/browser/test_phone_browser.py).
    header = await page.locator("header.bar").bounding_box()
    assert header is not None and header["height"] <= 100, header
    await expect(page.locator("#pages")).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_role("link", name="Setup", exact=True)).to_be_visible()
    await shot(page, "phone-menu-open")
    await page.keyboard.press("Escape")
    await expect(page.locator("#pages")).to_be_hidden()
    await expect(menu).to_be_focused()
    await menu.press("Enter")
    await page.get_by_role("link", name="History", exact=True).click()
    await expect(page).to_have_url(f"{panel.url}history")
    # The count in the header is explained in words.
    panel.simulator.set_fault("silence")
    await expect(page.locator("#link-status")).to_contain_text(
        "failed tr", timeout=command_within_ms(TIMER_READ_EXCHANGES)
    )
    panel.simulator.clear_faults()


async def test_the_toggle_says_the_price_policy_is_paused_and_resumes_it(
    open_page: Any, panel: Panel
) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, POSITIVE)])
    await eventually(lambda: runtime.state.export_state == "on", what="export on by price")
    page, _ = await open_page()
    await expect(page.locator("#policy-paused")).to_have_count(0)
    await page.get_by_role("switch").click()
    paused = page.locator("#policy-paused")
    await expect(paused).to_contain_text("paused by this switch until")
    await expect(paused).to_contain_text("the next price slot")
    assert runtime.policy.decision.state is PolicyState.OVERRIDE
    await shot(page, "toggle-policy-paused")
    await paused.get_by_role("button", name="Resume the price policy now").click()
    await expect(page.locator("#policy-paused")).to_have_count(0)
    await eventually(lambda: runtime.state.export_state == "on", what="the policy's write")
    assert runtime.policy.decision.state is PolicyState.EXPORT_ON


async def test_setup_warns_before_mode_off_while_the_policy_keeps_export_off(
    open_page: Any, panel: Panel
) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, NEGATIVE)])  # below "export off below" (0)
    page, _ = await open_page("setup")
    warning = page.locator("#w-deactivate")
    await expect(warning).to_be_hidden()  # not while "By value" is chosen
    await page.locator("#form-mode").get_by_label("Off").check()
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("without any limit")
    await page.locator("#form-mode").get_by_label("By value").check()
    await expect(warning).to_be_hidden()


async def test_the_looks_setup_labels_and_the_home_assistant_page(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page("setup")
    await expect(page.get_by_role("button", name="Save Home Assistant")).to_be_visible()
    text = page.locator("#f-mqtt_username")
    password = page.locator("#f-mqtt_password")
    for prop in ("minHeight", "borderTopWidth", "borderRadius", "backgroundColor"):
        want = await text.evaluate(f"el => getComputedStyle(el).{prop}")
        assert await password.evaluate(f"el => getComputedStyle(el).{prop}") == want, prop
    menus = {"f-entities": "Automatic", "f-price_stale_action": "Keep", "f-drift_action": "Restore"}
    for field, label in menus.items():
        await expect(page.locator(f"#{field} option").first).to_contain_text(label)
    await expect(page.locator("#f-log_level option[value=info]")).to_have_text("Info (normal)")
    for hint in await page.locator(".field").all():  # help text on every field
        assert (await hint.locator("p.hint").inner_text()).strip()

    ha, _ = await open_page("homeassistant")
    cards = ha.locator("main section.card")
    first, second = await cards.nth(0).bounding_box(), await cards.nth(1).bounding_box()
    assert first and second and second["y"] - (first["y"] + first["height"]) >= 12
    # "rest: states", the colon right after the word (it stood apart as "rest : states").
    gap = await ha.locator("#mode-in-effect strong").evaluate(
        """el => { const range = document.createRange(); const text = el.nextSibling;
                   range.setStart(text, 0); range.setEnd(text, 1);
                   return range.getBoundingClientRect().left - el.getBoundingClientRect().right; }"""
    )
    assert abs(gap) < 2, gap
    install = ha.get_by_role("button", name="Install the scripts")
    await expect(install).to_be_disabled()
    assert await install.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"


async def test_the_prices_card_names_its_currency_and_keeps_its_labels_inside(
    open_page: Any, panel: Panel
) -> None:
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, NEGATIVE)])
    for viewport in (None, PHONE):
        page, _ = await open_page(viewport=viewport)
        card = page.locator("#prices")
        await expect(card.locator(".unit-label")).to_have_text("EUR/kWh")  # the sensor's unit
        whole = await card.bounding_box()
        assert whole is not None
        for label in await card.locator(".price-label").all():
            box = await label.bounding_box()
            assert box is not None
            assert (
                whole["x"] - 0.5 <= box["x"]
                and box["x"] + box["width"] <= whole["x"] + whole["width"] + 0.5
            )
        # The limit's label sits right of the plot, off the price line.
        plot = await card.locator("svg.price-chart").bounding_box()
        limit = await card.locator(".limit-label").first.bounding_box()
        assert plot is not None and limit is not None and limit["x"] >= plot["x"] + plot["width"]
        for item in await card.locator(".legend-item").all():  # each square beside its label
            swatch, whole = await item.locator(".swatch").bounding_box(), await item.bounding_box()
            assert (
                swatch
                and whole
                and abs(swatch["y"] + swatch["height"] / 2 - (whole["y"] + whole["height"] / 2)) < 6
            )


@pytest.mark.parametrize(
    ("locale", "lang", "controls"), [("de-DE", "de", "Bedienung"), ("sk-SK", "sk", "Ovládanie")]
)
async def test_a_german_or_slovak_browser_reads_its_language_with_decimal_commas(
    open_page: Any, panel: Panel, locale: str, lang: str, controls: str
) -> None:
    page, _ = await open_page(locale=locale)
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.locator("#controls-title")).to_have_text(controls)
    await eventually(lambda: panel.runtime.state.export_limit_kw is not None, what="a read")
    await expect(page.locator("[data-key=export_limit]")).to_contain_text(",")
    await set_limit(page, "2,75")
    await wait_kind(page, "status-set_export_limit", "ok")
    assert panel.simulator.device.export_limit_w == 2750
    await shot(page, f"dashboard-{lang}")
    setup, _ = await open_page("setup", locale=locale)
    await expect(setup.locator("html")).to_have_attribute("lang", lang)
    await expect(setup.locator("#f-max_export_limit")).to_have_value("8")
    await expect(setup.locator("#f-total_capacity")).to_have_value("10")


async def test_a_refusal_names_its_rule_in_german_with_a_decimal_comma(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page(viewport=PHONE, locale="de-DE")
    status = page.locator("#status-set_export_limit")
    await set_limit(page, "12,5")
    await expect(status.locator(".word")).to_have_text("12,5 kW liegt über dem Maximum von 8 kW")
    await expect(status.locator(".detail")).to_contain_text("Einrichtung → Grenzen")
    await expect(status.locator(".detail")).to_contain_text("(Rückmeldung 128)")
    await set_limit(page, "abc")
    await expect(status.locator(".word")).to_have_text("„abc“ ist keine Zahl")
    await expect(page.locator("#limit")).to_have_attribute("aria-invalid", "true")
