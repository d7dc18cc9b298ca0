"""A first start with a wrong address, in a real headless Chromium behind the ingress proxy: the
problem in words with a link to Setup, buttons that cannot act and say why (to the keyboard and
the screen reader too), and all of it gone live once the controller answers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sec1000.options import Options

from tests.helpers.browser import (
    DESKTOP,
    PHONE,
    TIMER_READ_EXCHANGES,
    command_within_ms,
    opener,
    shot,
    violations,
)
from tests.helpers.served_panel import Panel, serve_panel

pytestmark = pytest.mark.browser

CLOSED_PORT = 1  # nothing listens on loopback's port 1
BUTTONS = ("set_export_limit", "get_export_limit", "set_datetime", "reset_export_watchdog")
WORDS = f"The controller at 127.0.0.1:{CLOSED_PORT} cannot be reached: nothing is listening there."


@pytest.fixture
async def wrong_address(tmp_path: Path) -> AsyncIterator[Panel]:
    """The panel of a controller whose address has the wrong port (the simulator is elsewhere)."""
    async with serve_panel(tmp_path, port=CLOSED_PORT) as served:
        yield served


@pytest.fixture
async def open_wrong(browser: Browser, wrong_address: Panel) -> AsyncIterator[Callable[..., Any]]:
    """`open_page` on the panel with the wrong address."""
    async with opener(browser, wrong_address) as open_:
        yield open_


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
async def test_a_wrong_address_is_said_in_words_and_the_buttons_wait_for_the_controller(
    open_wrong: Any, wrong_address: Panel, viewport: dict[str, int]
) -> None:
    page, _ = await open_wrong(viewport=viewport)
    banner = page.locator("#unreachable-banner")
    within = command_within_ms(TIMER_READ_EXCHANGES)
    await expect(banner).to_contain_text(WORDS, timeout=within)
    await expect(banner.locator(".detail")).to_contain_text("Connect call failed")
    gate = page.locator("#controls-gate")
    await expect(gate).to_have_attribute("data-blocked", "true")
    await expect(gate).to_be_visible()
    await expect(gate).to_contain_text("The buttons wait for the controller")
    for name in (*BUTTONS, "export-toggle"):
        button = page.locator(f"#btn-{name}")
        await expect(button).to_have_attribute("aria-disabled", "true")
        await expect(button).to_be_disabled()  # aria-disabled: focusable, but not pressable
        await expect(button).to_have_accessible_description(re.compile("The buttons wait for"))
    # No button claims to be "Ready" while it cannot act.
    await expect(page.locator("#status-get_export_limit")).to_be_hidden()
    # Nothing in the page is wider than the screen.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
    assert await violations(page) == []
    await shot(page, f"first-start-wrong-address-{viewport['width']}")

    # The keyboard reaches a waiting button, and a press sends nothing.
    posted: list[str] = []
    page.on(
        "request", lambda request: posted.append(request.url) if request.method == "POST" else None
    )
    button = page.locator("#btn-get_export_limit")
    await button.focus()
    await expect(button).to_be_focused()
    await page.keyboard.press("Enter")
    await page.locator("#limit").fill("3")
    await page.locator("#limit").press("Enter")  # the form's implicit submit: held back too
    await page.locator("#btn-export-toggle").click(force=True)  # a pointer press, forced
    await page.evaluate("() => fetch('api/state').then(answer => answer.text())")  # a round trip
    assert posted == []
    assert list(wrong_address.runtime.state.commands) == []

    # The link leads to Setup, under the ingress prefix.
    link = banner.get_by_role("link", name="Check its address in Setup.")
    assert await link.get_attribute("href") == "setup#step-connection"

    # The right port, saved: the controller answers and everything comes back, live.
    runtime = wrong_address.runtime
    fixed = Options.from_mapping({"port": wrong_address.simulator.port}, base=runtime.options)
    await runtime.apply_options(fixed)
    await expect(gate).to_have_attribute("data-blocked", "false", timeout=within)
    await expect(banner).to_have_count(0)
    for name in (*BUTTONS, "export-toggle"):
        await expect(page.locator(f"#btn-{name}")).not_to_have_attribute("aria-disabled", "true")
        await expect(page.locator(f"#btn-{name}")).to_be_enabled()
    await expect(page.locator("#status-get_export_limit")).to_be_visible()
    await page.locator("#btn-get_export_limit").click()
    await expect(page.locator("#status-get_export_limit")).to_have_attribute(
        "data-kind", "ok", timeout=command_within_ms(1)
    )


async def test_the_link_in_the_words_opens_setup_at_the_address(
    open_wrong: Any, wrong_address: Panel
) -> None:
    page, _ = await open_wrong()
    link = page.locator("#unreachable-setup")
    await expect(link).to_be_visible(timeout=command_within_ms(TIMER_READ_EXCHANGES))
    await link.click()
    await expect(page).to_have_url(f"{wrong_address.url}setup#step-connection")
    await expect(page.locator("#form-connection").get_by_label("Port", exact=True)).to_have_value(
        str(CLOSED_PORT)
    )


async def test_the_prices_card_says_nothing_of_prices_without_a_price_sensor(
    open_wrong: Any,
) -> None:
    page, _ = await open_wrong(viewport=PHONE)
    prices = page.locator("#prices")
    await expect(prices).to_contain_text("choose a price sensor in Setup")
    await expect(prices).not_to_contain_text("forecast")
