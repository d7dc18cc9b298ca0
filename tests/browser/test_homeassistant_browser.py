"""The Home Assistant page in Chromium, with the real adapter connected to a real Core."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect
from sec1000.ha import Endpoint
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.web.keys import CONTROLLERS, HA_STATUS, HOME_ASSISTANT

from tests.ha_harness import HomeAssistant
from tests.helpers.browser import DESKTOP, shot
from tests.helpers.ha import load_scripts_yaml
from tests.helpers.served_panel import serve_panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.homeassistant


async def test_the_home_assistant_page_shows_the_entities_and_installs_the_scripts(
    browser: Browser, fresh_home_assistant: HomeAssistant, tmp_path: Path
) -> None:
    ha = fresh_home_assistant
    load_scripts_yaml(ha)
    endpoint = Endpoint(ha.api_url, ha.websocket_url, ha.token, "HA_URL")
    async with aiohttp.ClientSession() as session:
        adapters: list[HomeAssistantAdapter] = []

        def attach(app: web.Application) -> None:
            adapter = HomeAssistantAdapter(app[CONTROLLERS], endpoint, session)
            app[HA_STATUS] = adapter.diagnostics
            app[HOME_ASSISTANT] = adapter
            adapters.append(adapter)

        async with serve_panel(tmp_path, configure=attach) as panel:
            (adapter,) = adapters
            adapter.start()
            try:
                await eventually(
                    lambda: adapter.client is not None and adapter.client.connected, 60, "HA"
                )
                context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(panel.url + "homeassistant")
                await expect(page.locator("#ha-connected")).to_have_text("connected")
                await expect(page.locator("#mode-in-effect")).to_have_attribute("data-mode", "rest")
                await page.locator("summary").click()
                await expect(page.locator("#entity-ids")).to_contain_text("sensor.sec1000_v1")
                await expect(page.locator("#entity-ids")).to_contain_text(
                    "input_button.sec1000_export_enable"
                )

                await page.locator("#install-scripts").click()
                row = page.locator('[data-script="script.sec1000_set_export_limit"]')
                await expect(row).to_contain_text("created", timeout=30_000)
                await shot(page, "homeassistant-scripts")
                await page.locator("#install-scripts").click()
                await expect(row).to_contain_text("unchanged", timeout=30_000)
                assert errors == []
                await context.close()
            finally:
                await adapter.stop()
