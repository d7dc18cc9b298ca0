"""The meter check in Chromium: an uncontrolled inverter switched on from the demo's simulator
card makes the last-hour chart shade the overshoot and the Export settings card warn, live; the
compliance report is downloaded through the page; axe finds nothing serious meanwhile."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect
from sec1000.operations import Origin
from sec1000.options import Options

from tests.helpers.browser import PAGE_DELIVERY_MS, shot, violations
from tests.helpers.device import passes_within
from tests.helpers.served_panel import Panel
from tests.helpers.waiting import eventually, eventually_async

pytestmark = pytest.mark.browser

OVERSHOOT_SECONDS = 10  # the options' minimum
SEEN_WITHIN = 30_000  # ms: the overshoot's 10 s, reads every second, and room for a slow machine


async def curtailing(panel: Panel) -> None:
    """Sun enough for the limiter to curtail at 3 kW, and the meter check at its quickest."""
    runtime = panel.runtime
    # The day's highest limit is the 5 kW of the start: a read must have counted it first (a
    # loaded machine's first read may come after the 3 kW below).
    await eventually(
        lambda: any(point.limit == 5.0 for point in runtime.state.history),
        passes_within(runtime, 2),
        "a read while the controller holds 5 kW",
    )
    panel.simulator.device.profile = lambda _t: (9_000.0, 500.0)
    await runtime.apply_options(
        Options.from_mapping({"overshoot_seconds": OVERSHOOT_SECONDS}, base=runtime.options)
    )
    assert (await runtime.ops.set_export_limit(3, Origin("panel", "Anna"))).ok


async def switch_fault_on(page: Page, name: str) -> None:
    button = page.get_by_role("button", name=name, exact=True)
    await expect(button).to_have_attribute("aria-pressed", "false")
    await button.click()
    await expect(button).to_have_attribute("aria-pressed", "true")


async def download_report(page: Page) -> tuple[str, list[str]]:
    """Click the Energy card's link; the file's name and lines."""
    async with page.expect_download() as info:
        await page.locator("#download-compliance").click()
    download = await info.value
    path = await download.path()
    return download.suggested_filename, Path(path).read_text(encoding="utf-8").splitlines()


async def test_an_overshoot_is_shaded_warned_and_in_the_compliance_report(
    open_page: Any, panel: Panel
) -> None:
    await curtailing(panel)
    page, _ = await open_page()
    chart, warning = page.locator("#chart svg rect.overshoot"), page.locator("#overshoot-warning")
    await expect(page.locator("#export-info [data-key=overshoot]")).to_have_text("no overshoot")
    await expect(page.locator("#chart svg path.s-meters")).to_have_count(1)
    await expect(chart).to_have_count(0)
    _, before = await download_report(page)
    assert before[-1].split(",")[3:5] == ["0.0", "0.000"]  # no minute, no kWh over today

    diagnostics, _ = await open_page("diagnostics")
    await switch_fault_on(diagnostics, "overshoot")  # +2 kW that the controller cannot limit

    await expect(chart).to_have_count(1, timeout=SEEN_WITHIN)
    await expect(page.locator("#chart .overshoot-key")).to_have_text("Over the limit")
    await expect(warning).to_contain_text(re.compile(r"Export over the limit since \d\d:\d\d: "))
    await expect(warning).to_contain_text("with a limit of 3.00 kW")
    await expect(page.locator("#overshoot-banner")).to_be_visible()

    async def shaded_top_to_bottom() -> bool:
        """The chart is drawn again at every read: a box taken mid-redraw is none."""
        try:
            box = await chart.bounding_box()
        except PlaywrightError:  # the rect was replaced while measured
            return False
        return box is not None and box["width"] > 0 and box["height"] > 100

    await eventually_async(shaded_top_to_bottom, PAGE_DELIVERY_MS / 1000, "the shaded area")
    await shot(page, "meter-check-overshoot")

    name, lines = await download_report(page)
    assert re.fullmatch(r"sec1000-compliance-\d{8}-\d{6}\.csv", name)
    assert lines[0].startswith("date,max_export_kw,limit_in_force_kw,minutes_over_limit,")
    assert len(lines) == 2  # the panel started today: no day before it is reported
    row = next(csv.reader(lines[-1:]))
    date, max_export, limit, minutes, kwh = row[:5]
    data = row[7]
    assert date == dt.date.today().isoformat() and data == "measured"
    assert limit == "5.00"  # the day's highest: 5 at start
    assert float(max_export) > 4.5 and float(minutes) > 0 and float(kwh) > 0
    # The overshoot names the limit in force while it lasted, not the day's highest.
    assert re.fullmatch(r"\d\d:\d\d-\(under way\) up to \d+\.\d\d kW, limit 3\.00 kW", row[-1])

    for scheme in ("light", "dark"):
        checked, _ = await open_page(scheme=scheme)
        await expect(checked.locator("#overshoot-banner")).to_be_visible()
        assert await violations(checked) == [], scheme
        await checked.context.close()
