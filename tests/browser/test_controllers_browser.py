"""Two controllers in Chromium, behind the ingress proxy: the switcher, the summary, a button on
the second controller (checked on the second simulator's frames), and axe on the new parts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect
from sec1000.protocol.frames import Command
from sec1000.simulator import SimulatorServer

from tests.helpers.browser import (
    DESKTOP,
    PANEL_TIMEOUT_S,
    PHONE,
    TIMER_READ_EXCHANGES,
    command_within_ms,
    shot,
    violations,
    wait_kind,
)
from tests.helpers.served_panel import Panel

pytestmark = pytest.mark.browser


def limit_writes(simulator: SimulatorServer) -> list[bytes]:
    """The export limit writes (0x42) the simulator received."""
    return [r for r in simulator.requests() if r[4] == Command.WRITE_EXPORT_LIMIT]


async def test_the_switcher_takes_every_page_to_the_chosen_controller(
    open_two: Any, two_controllers: Panel
) -> None:
    page, _ = await open_two()
    switcher = page.get_by_role("navigation", name="Controllers")
    await expect(switcher).to_be_visible()
    await expect(switcher.get_by_role("link", name="sec1000")).to_have_attribute(
        "aria-current", "true"
    )
    await switcher.get_by_role("link", name="barn").click()
    await expect(page).to_have_url(re.compile(r"/\?controller=barn$"))
    await page.wait_for_function("window.sec1000Live && window.sec1000Live.updates > 0")
    await expect(switcher.get_by_role("link", name="barn")).to_have_attribute(
        "aria-current", "true"
    )
    # The live channel follows barn: its own state shows on barn's page.
    barn = two_controllers.plant.get("barn") if two_controllers.plant else None
    assert barn is not None
    barn.state.settings_read(export_limit_kw=6.25)
    await expect(page.locator("#export-info [data-key=export_limit]")).to_have_text("6.25")
    # Every page of the menu stays on barn.
    await (
        page.get_by_role("navigation", name="Panel pages").get_by_role("link", name="Setup").click()
    )
    await expect(page).to_have_url(re.compile(r"/setup\?controller=barn$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Setup · barn")
    await expect(page.locator("#f-scan_interval")).to_have_count(0)  # a shared option
    await switcher.get_by_role("link", name="sec1000").click()
    await expect(page).to_have_url(re.compile(r"/setup$"))
    await expect(page.locator("#f-scan_interval")).to_have_count(1)


async def test_the_summary_shows_every_controller_live(
    open_two: Any, two_controllers: Panel
) -> None:
    page, _ = await open_two()
    summary = page.get_by_role("region", name="Controllers")
    await expect(summary).to_be_visible()
    rows = summary.locator("tbody tr")
    await expect(rows).to_have_count(2)
    for name in ("sec1000", "barn"):
        row = page.locator(f"#summary-{name}")
        connection = row.locator("[data-key=connection]")
        await expect(connection).to_have_text(
            re.compile(r"^Controller online · read (just now|\d+ s ago)$")
        )
        await expect(row).to_have_attribute("data-old", "false")
        await expect(row.locator("[data-key=export_power]")).to_have_text(re.compile(r"kW$"))
        await expect(row.locator("[data-key=guard] .badge")).to_be_visible()
    assert two_controllers.plant is not None
    two_controllers.plant.get("barn").state.settings_read(export_limit_kw=3.75)
    await expect(page.locator("#summary-barn [data-key=export_limit]")).to_have_text("3.75 kW")
    # A silent controller's row does not look live: its values are dimmed and say how old.
    barn = page.locator("#summary-barn")
    two_controllers.simulators[1].set_fault("silence")
    old_after_s = 2 * 1 + PANEL_TIMEOUT_S  # two reads (1 s here) and a request's timeout
    within = command_within_ms(TIMER_READ_EXCHANGES) + 1000 * old_after_s
    await expect(barn).to_have_attribute("data-old", "true", timeout=within)
    await expect(barn.locator("[data-key=connection]")).to_contain_text(
        re.compile(r"old: read \d+ s ago$")
    )
    await expect(barn.locator("[data-key=export_limit]")).to_have_css("opacity", "0.55")
    await expect(page.locator("#summary-sec1000")).to_have_attribute("data-old", "false")
    two_controllers.simulators[1].clear_faults()
    await expect(barn).to_have_attribute("data-old", "false", timeout=within)
    await page.locator("#summary-barn").get_by_role("link", name="barn").click()
    await expect(page).to_have_url(re.compile(r"\?controller=barn$"))


async def test_a_button_on_the_second_controller_reaches_only_the_second_simulator(
    open_two: Any, two_controllers: Panel
) -> None:
    first, barn = two_controllers.simulators
    assert two_controllers.plant is not None
    page, _ = await open_two("?controller=barn")
    before = len(limit_writes(first))
    await page.fill("#limit", "2.5")
    await page.get_by_role("button", name="Set export limit", exact=True).click()
    await wait_kind(page, "status-set_export_limit", "ok")
    await expect(page.locator("#status-set_export_limit")).to_contain_text("2.50 kW")
    assert barn.device.export_limit_w == 2500
    assert limit_writes(barn)
    assert len(limit_writes(first)) == before
    assert first.device.export_limit_w != 2500
    assert not any(
        r.command == "set_export_limit" for r in two_controllers.plant.first.state.commands
    )
    await shot(page, "controllers-barn-after-set-limit")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
async def test_the_switcher_summary_and_controllers_step_have_no_serious_violation(
    open_two: Any, scheme: str, size: str, viewport: dict[str, int]
) -> None:
    found = {}
    for path in ("", "setup", "?controller=barn", "setup?controller=barn"):
        page, _ = await open_two(path, viewport=viewport, scheme=scheme)
        problems = await violations(page)
        if problems:
            found[path or "dashboard"] = problems
        await page.context.close()
    assert found == {}, f"{size} {scheme}: {found}"


async def test_a_controller_is_added_and_removed_on_setup(
    open_two: Any, two_controllers: Panel
) -> None:
    plant = two_controllers.plant
    assert plant is not None
    page, _ = await open_two("setup")
    step = page.locator("#form-controllers")
    await step.get_by_label("Name").fill("Big Shed")
    await step.get_by_role("button", name="Add controller").click()
    await expect(page.locator("#failure-controllers")).to_be_visible()
    await expect(page.locator("#ce-name")).to_be_visible()
    await expect(page.locator("#ce-host")).to_be_visible()
    await expect(page.locator("#c-name")).to_have_value("Big Shed")  # kept as typed
    await expect(page.locator("#c-name")).to_be_focused()
    assert plant.names == ["sec1000", "barn"]
    await page.locator("#c-name").fill("shed")
    await page.locator("#c-host").fill("127.0.0.1")
    await page.locator("#c-port").fill("9")  # nobody listens there: it is shown offline
    await page.get_by_role("button", name="Add controller").click()
    await expect(page.locator("#notice-controllers")).to_contain_text("Controller shed added")
    assert plant.names == ["sec1000", "barn", "shed"]
    # Every open page's switcher learns of it, live.
    await expect(
        page.get_by_role("navigation", name="Controllers").get_by_role("link", name="shed")
    ).to_be_visible()
    await page.get_by_role("button", name="Remove shed").click()
    dialog = page.get_by_role("dialog", name="Remove controller shed?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Remove").click()
    await expect(page.locator("#notice-controllers")).to_contain_text("Controller shed removed")
    assert plant.names == ["sec1000", "barn"]
    await expect(
        page.get_by_role("navigation", name="Controllers").get_by_role("link", name="shed")
    ).to_have_count(0)
