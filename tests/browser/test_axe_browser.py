"""axe-core on every page of the panel, light and dark, 1280 and 390 px wide, in Chromium.

axe-core is npm's package, pinned in package-lock.json and installed by `scripts/dev test`
(`npm ci`); it is injected into the page as a script, so no request leaves the ingress prefix.
A serious or critical violation fails the test, named with its elements.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Panel
from tests.helpers.browser import HOUR, NEGATIVE, feed, policy_on, violations

pytestmark = pytest.mark.browser

PAGES = ("", "setup", "history", "homeassistant", "diagnostics")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
async def test_no_page_has_a_serious_accessibility_violation(
    open_page: Any, panel: Panel, scheme: str, size: str, viewport: dict[str, int]
) -> None:
    """Every page, with the price policy on and a result on the dashboard (more to check)."""
    await policy_on(panel.runtime)
    await feed(panel.runtime, [(-HOUR, HOUR, NEGATIVE)])
    await panel.runtime.ops.get_export_limit()
    found = {}
    for path in PAGES:
        page, _ = await open_page(path, viewport=viewport, scheme=scheme)
        problems = await violations(page)
        if problems:
            found[path or "dashboard"] = problems
        await page.context.close()
    assert found == {}, f"{size} {scheme}: {found}"


@pytest.mark.parametrize("locale", ["de-DE", "sk-SK"])
@pytest.mark.parametrize(
    ("size", "viewport", "scheme"), [("desktop", DESKTOP, "light"), ("phone", PHONE, "dark")]
)
async def test_no_page_has_a_serious_accessibility_violation_in_german_or_slovak(
    open_page: Any, panel: Panel, locale: str, size: str, viewport: dict[str, int], scheme: str
) -> None:
    """The same pages in the other languages: longer words, the language menu, lang attributes."""
    await policy_on(panel.runtime)
    await feed(panel.runtime, [(-HOUR, HOUR, NEGATIVE)])
    await panel.runtime.ops.get_export_limit()
    found = {}
    for path in PAGES:
        page, _ = await open_page(path, viewport=viewport, scheme=scheme, locale=locale)
        problems = await violations(page)
        if problems:
            found[path or "dashboard"] = problems
        await page.context.close()
    assert found == {}, f"{locale} {size} {scheme}: {found}"
