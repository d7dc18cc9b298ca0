"""axe-core on every page of the panel, light and dark, 1280 and 390 px wide, in Chromium.

axe-core is npm's package, pinned in package-lock.json and installed by `scripts/dev test`
(`npm ci`); it is injected into the page as a script, so no request leaves the ingress prefix.
A serious or critical violation fails the test, named with its elements.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.browser import DESKTOP, HOUR, NEGATIVE, PHONE, feed, policy_on, violations
from tests.helpers.served_panel import Panel

pytestmark = pytest.mark.browser

PAGES = ("", "setup", "history", "homeassistant", "diagnostics")
SIZES = (("desktop", DESKTOP), ("phone", PHONE))


# English at both sizes in both schemes; German and Slovak (longer words, the language menu,
# lang attributes) on the desktop in light and on the phone in dark.
CASES = [
    *(("en-US", size, viewport, scheme) for size, viewport in SIZES for scheme in ("light", "dark")),
    *((locale, *case) for locale in ("de-DE", "sk-SK") for case in (
        ("desktop", DESKTOP, "light"), ("phone", PHONE, "dark"),
    )),
]  # fmt: skip


@pytest.mark.parametrize(("locale", "size", "viewport", "scheme"), CASES)
async def test_no_page_has_a_serious_accessibility_violation(
    open_page: Any, panel: Panel, locale: str, size: str, viewport: dict[str, int], scheme: str
) -> None:
    """Every page, with the price policy on and a result on the dashboard (more to check)."""
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
