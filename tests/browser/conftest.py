"""Real-browser fixtures: the panel behind an ingress proxy (tests/helpers/served_panel.py), and
Chromium opening its pages (tests/helpers/browser.py).

Chromium is Debian's package (/usr/bin/chromium, installed by scripts/dev test with apt-get),
driven by Playwright's async API. No browser is ever downloaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, PAGE_DELIVERY_MS, opener
from tests.helpers.served_panel import Panel, serve_panel

# Every `expect` in a page waits as long as the page's own delivery may take (Playwright's 5 s
# default is shorter than a loaded machine's Chromium needs).
expect.set_options(timeout=PAGE_DELIVERY_MS)


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[Panel]:
    """The panel under /api/hassio_ingress/<token>/, WebSockets relayed."""
    async with serve_panel(tmp_path) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium."""
    assert CHROMIUM.exists(), "install Debian's chromium (scripts/dev test does it with apt-get)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def two_controllers(tmp_path: Path) -> AsyncIterator[Panel]:
    """The panel on two controllers (sec1000 and barn), each on its simulator, behind ingress."""
    async with serve_panel(tmp_path, controllers=2) as served:
        yield served


@pytest.fixture
async def open_page(browser: Browser, panel: Panel) -> AsyncIterator[Callable[..., Any]]:
    """Open a page of the panel in a fresh context; every page is watched, and checked at the end."""
    async with opener(browser, panel) as open_:
        yield open_


@pytest.fixture
async def open_two(browser: Browser, two_controllers: Panel) -> AsyncIterator[Callable[..., Any]]:
    """`open_page` on the panel of two controllers."""
    async with opener(browser, two_controllers) as open_:
        yield open_
