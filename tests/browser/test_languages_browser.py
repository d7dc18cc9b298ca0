"""Every page in German and Slovak, in a real headless Chromium: no English word is left (names,
units and ids aside), with a command's result, a failure, a refusal and a price policy decision
on screen; the language menu; numbers and times in the language's style."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect
from sec1000.commands import CommandName
from sec1000.limiter.writes import Origin
from sec1000.protocol import Feedback

from tests.helpers.browser import DESKTOP, HOUR, NEGATIVE, PHONE, feed, policy_on, shot
from tests.helpers.english import english_words
from tests.helpers.served_panel import Panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.browser

PAGES = ("", "setup", "history", "homeassistant", "diagnostics")
LOCALES = {"de": "de-DE", "sk": "sk-SK"}

# Every text of the page a user may read or hear: text nodes (hidden ones too: they show on a
# click), the accessible names and hints, and the title.
TEXTS_JS = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && node.parentElement.closest("script, style")) continue;
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder], [alt]")) {
    for (const name of ["aria-label", "title", "placeholder", "alt"]) {
      const value = el.getAttribute(name);
      if (value) out.push(value);
    }
  }
  return out;
}"""


async def page_texts(page: Page) -> list[str]:
    texts: list[str] = await page.evaluate(TEXTS_JS)
    return texts


async def busy_panel(panel: Panel) -> None:
    """A policy decision (export off at a negative price), a good result, a failure and a
    refused input: every kind of line the core says is on the dashboard."""
    runtime = panel.runtime
    await policy_on(runtime)
    await feed(runtime, [(-HOUR, HOUR, NEGATIVE)])
    await eventually(lambda: runtime.state.export_state == "off", what="the policy's write")
    await runtime.ops.get_export_limit()
    panel.simulator.set_fault("bad_checksum")
    await runtime.ops.run(CommandName.SET_DATETIME, {})
    panel.simulator.clear_faults()
    await runtime.ops.run(CommandName.SET_EXPORT_LIMIT, {"limit": "150"})
    assert runtime.state.feedback[CommandName.SET_EXPORT_LIMIT] & Feedback.INVALID_INPUT
    await runtime.ops.get_export_limit()  # a good exchange: the watchdog's reset may run
    reset = await runtime.ops.run(CommandName.RESET_EXPORT_WATCHDOG, {}, Origin("panel", "Anna"))
    assert reset.feedback & Feedback.OK, reset.message


@pytest.mark.parametrize("lang", sorted(LOCALES))
async def test_no_english_word_is_left_on_any_page_in_german_or_slovak(
    open_page: Any, panel: Panel, lang: str
) -> None:
    await busy_panel(panel)
    found: dict[str, dict[str, str]] = {}
    for path in PAGES:
        page, _ = await open_page(path, locale=LOCALES[lang])
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        if path == "setup":  # every error of a refused save shown too
            await page.locator("#f-max_export_limit").fill("abc")
            await page.locator("#f-min_export_limit").fill("-1")
            await page.locator("#save-limits").click()
            await expect(page.locator("#form-limits .error-text").first).to_be_visible()
        english = english_words(await page_texts(page), lang)
        if english:
            found[path or "dashboard"] = english
        await shot(page, f"language-{lang}-{path or 'dashboard'}")
        await page.context.close()
    assert found == {}, f"English on {lang} pages: {found}"


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
async def test_the_language_menu_switches_the_panel_and_the_browser_keeps_it(
    open_page: Any, panel: Panel, size: str, viewport: dict[str, int]
) -> None:
    page, _ = await open_page("setup", locale="en-US", viewport=viewport)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    if size == "phone":  # the menu is with the pages, behind the menu button
        await page.locator("#menu-button").click()
    await page.get_by_label("Language").select_option("sk")
    await page.locator("#language-apply").click()
    await expect(page.locator("html")).to_have_attribute("lang", "sk")
    assert page.url.endswith("/setup")  # back on the page it was chosen on
    await expect(page.locator("#save-limits")).to_have_text("Uložiť limity")
    await expect(page.locator("#language-select")).to_have_value("sk")
    # The live updates come in Slovak too (the WebSocket carries the cookie).
    await page.wait_for_function("window.sec1000Live && window.sec1000Live.updates > 0")
    await page.goto(panel.url)
    await page.wait_for_function("window.sec1000Live && window.sec1000Live.updates > 1")
    await expect(page.locator("#controls-title")).to_have_text("Ovládanie")
    await expect(page.locator("#link-status")).to_contain_text("Regulátor")
    await shot(page, f"language-menu-{size}")


@pytest.mark.parametrize("lang", sorted(LOCALES))
async def test_the_summary_of_two_controllers_has_no_english_word(
    open_two: Any, two_controllers: Panel, lang: str
) -> None:
    plant = two_controllers.plant
    assert plant is not None
    await eventually(
        lambda: all(r.state.telemetry_at for r in plant.runtimes.values()),
        what="a read of each controller",
    )
    two_controllers.simulators[1].set_fault("silence")  # one not answering: its words too
    for path in ("", "setup"):
        page, _ = await open_two(path, locale=LOCALES[lang])
        english = english_words(await page_texts(page), lang)
        await shot(page, f"language-{lang}-two-{path or 'dashboard'}")
        await page.context.close()
        assert english == {}, f"English on the {lang} {path or 'dashboard'}: {english}"
