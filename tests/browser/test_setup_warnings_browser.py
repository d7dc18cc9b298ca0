"""Setup in a real headless Chromium behind the ingress proxy: every error of a step after one
save, and a risky value warned of before it is saved (Save anyway), at 390 and 1280 px."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import expect
from sec1000.options import Options

from tests.helpers.browser import DESKTOP, PHONE, shot, violations
from tests.helpers.served_panel import Panel

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
async def test_a_risky_refresh_is_warned_of_before_the_save_and_saved_only_when_confirmed(
    open_page: Any, panel: Panel, viewport: dict[str, int]
) -> None:
    runtime = panel.runtime
    await runtime.apply_options(Options.from_mapping({"scan_interval": 30}, base=runtime.options))
    page, _ = await open_page("setup", viewport=viewport)
    form = page.locator("#form-connection")
    field = form.get_by_label("Refresh interval")
    await field.fill("2")
    await expect(form.locator("#w-scan_interval")).to_be_hidden()
    await field.press("Tab")  # leaving the field: its warning is said, before any save
    await expect(form.locator("#w-scan_interval")).to_contain_text("power-cycled")
    await expect(field).to_have_accessible_description(re.compile("power-cycled"))
    assert runtime.options.scan_interval == 30
    await form.get_by_role("button", name="Save connection").click()
    await expect(form.locator("#confirm-connection")).to_contain_text("Not saved yet")
    await expect(form.locator("#w-scan_interval")).to_contain_text("power-cycled")
    await expect(field).to_be_focused()  # the warned field, to change it at once
    await expect(field).to_have_value("2")
    assert runtime.options.scan_interval == 30
    assert json.loads(panel.options_file.read_text())["scan_interval"] == 30
    anyway = form.get_by_role("button", name="Save anyway")
    await expect(anyway).to_be_visible()
    await expect(anyway).to_be_in_viewport()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
    assert await violations(page) == []
    await shot(page, f"setup-warning-before-save-{viewport['width']}")
    await anyway.focus()  # the keyboard reaches it
    await page.keyboard.press("Enter")
    await expect(form.locator("#notice-connection")).to_contain_text("Saved and applied.")
    await expect(form.locator("#w-scan_interval")).to_be_visible()  # still said
    await expect(form.get_by_role("button", name="Save anyway")).to_have_count(0)
    assert runtime.options.scan_interval == 2
    assert json.loads(panel.options_file.read_text())["scan_interval"] == 2
    await field.fill("30")
    await field.press("Tab")  # a safe value again: the warning goes, live
    await expect(form.locator("#w-scan_interval")).to_be_hidden()


async def test_every_error_of_the_limits_step_shows_after_one_save(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page("setup")
    form = page.locator("#form-limits")
    await form.get_by_label("Minimum export limit").fill("abc")
    await form.get_by_label("Maximum export limit").fill("20")  # above the capacity, 10 kW
    await form.get_by_role("button", name="Save limits").click()
    await expect(form.locator("#e-min_export_limit")).to_contain_text("must be a number")
    await expect(form.locator("#e-max_export_limit")).to_contain_text("above the total capacity")
    await expect(form.get_by_label("Minimum export limit")).to_be_focused()
    assert runtime_unchanged(panel)


def runtime_unchanged(panel: Panel) -> bool:
    stored = json.loads(panel.options_file.read_text())
    return stored["min_export_limit"] == 0 and stored["max_export_limit"] == 8
