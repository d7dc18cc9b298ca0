"""The panel in a real headless Chromium, behind an ingress proxy like Home Assistant's.

Each test fails on a console error, a page error, or any request outside
/api/hassio_ingress/<token>/ (checked by the `open_page` fixture at the end).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect
from sec1000.options import Options
from sec1000.protocol import ControlMode, Switch, mode_switch_request
from sec1000.protocol.messages import MODE_SWITCHES
from sec1000.state import UNAVAILABLE_AFTER_FAILURES

from tests.helpers.browser import (
    DESKTOP,
    PAGE_DELIVERY_MS,
    PANEL_TIMEOUT_S,
    PHONE,
    TIMER_READ_EXCHANGES,
    command_within_ms,
    shot,
    wait_kind,
)
from tests.helpers.served_panel import Panel, serve_panel
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.browser

# Records every data-kind a status element takes, in order, so a short "waiting" is not missed.
RECORD_KINDS = """
() => {
  window.kinds = {};
  const note = (el) => {
    if (!el.id || !el.dataset.kind) return;
    const list = (window.kinds[el.id] ||= []);
    if (list[list.length - 1] !== el.dataset.kind) list.push(el.dataset.kind);
  };
  document.querySelectorAll('[data-kind]').forEach(note);
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') note(r.target);
      for (const n of r.addedNodes || []) {
        if (n.nodeType === 1) { note(n); n.querySelectorAll('[data-kind]').forEach(note); }
      }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-kind']});
}
"""


async def kinds(page: Page, element_id: str) -> list[str]:
    result: list[str] = await page.evaluate(f"window.kinds[{json.dumps(element_id)}] || []")
    return result


async def wait_waiting_then(
    page: Page, element_id: str, seen: int, end: str, within_ms: float | None = None
) -> None:
    """Wait until, after the first `seen` recorded states, "waiting" came and then `end`."""
    await page.wait_for_function(
        """(a) => {
          const tail = (window.kinds[a.id] || []).slice(a.seen);
          const w = tail.indexOf('waiting');
          return w >= 0 && tail.slice(w + 1).includes(a.end);
        }""",
        arg={"id": element_id, "seen": seen, "end": end},
        timeout=command_within_ms() if within_ms is None else within_ms,
    )


async def test_dashboard_loads_under_the_prefix_and_live_values_change(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()
    await expect(page.locator("#live-indicator")).to_have_attribute("data-mode", "live")
    first = await page.locator("[data-key=telemetry_at]").inner_text()
    # The simulated plant changes at every read (every second here): the page follows, no reload.
    await page.wait_for_function(
        "(first) => document.querySelector('[data-key=telemetry_at]').textContent.trim() !== first",
        arg=first.strip(),
        timeout=command_within_ms(TIMER_READ_EXCHANGES),  # the next read, pushed
    )
    assert panel.proxy_log.websockets >= 1
    await expect(page.locator("#chart svg path.s-meters")).to_have_count(1)
    await expect(page.locator("#phases td[data-key=v1]")).not_to_have_text("—")
    await expect(page.locator("#export-info [data-key=export_limit]")).to_have_text("5.00")
    await expect(page.locator("#link-status")).to_contain_text("Controller online")
    await shot(page, "dashboard-desktop-light")


async def test_each_button_goes_from_waiting_to_ok(open_page: Any, panel: Panel) -> None:
    page, _ = await open_page()
    await page.evaluate(RECORD_KINDS)
    sim = panel.simulator

    # Every answer takes 0.4 s here, so "waiting" stays on screen long enough to be seen.
    async def press(button: str, status: str, *, slow: int = 1) -> None:
        seen = len(await kinds(page, status))
        sim.set_fault("slow", count=slow)
        await page.get_by_role("button", name=button, exact=True).click()
        await wait_waiting_then(page, status, seen, "ok")
        await wait_kind(page, status, "ok")

    await page.fill("#limit", "4.5")
    await press("Set export limit", "status-set_export_limit")
    await expect(page.locator("#status-set_export_limit")).to_contain_text("4.50 kW")
    assert sim.device.export_limit_w == 4500
    await expect(page.locator("#export-info [data-key=export_limit]")).to_have_text("4.50")
    # The headline says what holds now and who set it, live.
    await expect(page.locator("#headline")).to_have_text(
        "Export limited to 4.50 kW, set by Anna on the panel."
    )

    await press("Get export limit", "status-get_export_limit")
    await expect(page.locator("#status-get_export_limit")).to_contain_text("panel (Anna)")

    await press("Set date and time", "status-set_datetime")
    await expect(page.locator("#status-set_datetime")).to_contain_text("device clock set")

    # The toggle: export is on (4.5 kW > minimum): a press turns it off, another on again.
    toggle = page.get_by_role("switch", name="Export ON")
    await expect(toggle).to_have_attribute("aria-checked", "true")
    seen = len(await kinds(page, "toggle-status"))
    sim.set_fault("slow", count=4)
    await toggle.click()
    await wait_waiting_then(page, "toggle-status", seen, "ok")
    await expect(page.locator("#btn-export-toggle")).to_have_attribute("aria-checked", "false")
    assert sim.device.export_limit_w == 0
    sim.set_fault("slow", count=4)
    await page.get_by_role("switch", name="Export OFF").click()
    await expect(page.locator("#btn-export-toggle")).to_have_attribute("aria-checked", "true")
    assert sim.device.export_limit_w == 8000

    # The watchdog reset asks first, stating the risk; Cancel sends nothing.
    before = len(sim.requests())
    await page.get_by_role("button", name="Reset export watchdog").click()
    dialog = page.get_by_role("dialog", name="Reset the export watchdog?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("off for about 5 seconds")
    await expect(dialog).to_contain_text("export its full power")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    # Only the timer's reads went out since (as many as the time took): no switch of the reset.
    switches = {mode_switch_request(switch, Switch.OFF) for switch in MODE_SWITCHES.values()}
    assert not switches & set(sim.requests()[before:])
    await page.get_by_role("button", name="Reset export watchdog").click()
    await dialog.get_by_role("button", name="Reset: full export for ~5 s").click()
    # The reset: three switches off, the off window, three on, the limit written and read back
    # twice: ten exchanges.
    await wait_waiting_then(
        page, "status-reset_export_watchdog", 0, "ok", within_ms=command_within_ms(10)
    )
    await expect(page.locator("#status-reset_export_watchdog")).to_contain_text("confirmed")
    assert sim.device.mode is ControlMode.VALUE
    await shot(page, "dashboard-after-commands")


async def test_buttons_are_labelled_and_work_from_the_keyboard(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page(viewport=PHONE)
    for name in (
        "Set export limit",
        "Get export limit",
        "Set date and time",
        "Reset export watchdog",
    ):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    await expect(page.get_by_role("switch")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Export limit")).to_be_visible()
    # Tab from the limit input to its button, and press Enter.
    await page.get_by_role("textbox", name="Export limit").focus()
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.id")
    assert focused == "btn-set_export_limit"
    for following in ("quick-off", "quick-half", "quick-maximum", "btn-get_export_limit"):
        await page.keyboard.press("Tab")  # the quick choices, then the next command
        assert await page.evaluate("document.activeElement.id") == following
    await page.keyboard.press("Enter")
    await wait_kind(page, "status-get_export_limit", "ok")
    # Focus stays on the button while its state changes live.
    assert await page.evaluate("document.activeElement.id") == "btn-get_export_limit"
    # The dialog: Escape closes it, and focus goes back to its button.
    await page.get_by_role("button", name="Reset export watchdog").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()
    assert await page.evaluate("document.activeElement.id") == "btn-reset_export_watchdog"


async def test_a_commands_answer_arriving_after_the_live_update_does_not_undo_it(
    open_page: Any, panel: Panel
) -> None:
    """The button's answer ("waiting") and the live channel's "OK" travel on two connections;
    on a busy machine the answer can arrive second. Held back here until the OK is shown, it
    must not turn the status back to waiting."""
    page, _ = await open_page()
    answered: list[str] = []
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        response = await route.fetch()
        answered.append(await response.text())
        await release.wait()
        await route.fulfill(response=response)

    await page.route("**/command", hold)
    await page.evaluate(
        "window.answers = 0;"
        "document.addEventListener('htmx:finally:request', () => { window.answers += 1; });"
    )
    done = len(panel.runtime.state.commands)
    await page.get_by_role("button", name="Get export limit", exact=True).click()
    await eventually(lambda: len(panel.runtime.state.commands) > done, what="the command")
    await wait_kind(page, "status-get_export_limit", "ok")  # from the live channel
    # The answer was rendered when the command started; on a busy machine it can reach the
    # hold only after the live channel's OK has been shown.
    await eventually(lambda: bool(answered), what="the command's answer, held")
    assert 'data-kind="waiting"' in answered[0]  # the held answer is older
    release.set()
    await page.wait_for_function("window.answers > 0", timeout=PAGE_DELIVERY_MS)
    status = page.locator("#status-get_export_limit")
    assert await status.get_attribute("data-kind") == "ok"
    held = re.search(r'id="status-get_export_limit"[^>]*data-live-seq="(\d+)"', answered[0])
    assert held is not None
    assert int(await status.get_attribute("data-live-seq") or 0) > int(held[1])


async def test_every_value_shows_its_age_and_is_marked_old_after_two_reads(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()
    flow, phases = page.locator("#flow"), page.locator("#phases")
    await expect(flow).to_have_attribute("data-old", "false")
    fresh = re.compile(r"^read (just now|\d+ s ago)$")
    await expect(flow.locator(".read-age")).to_have_text(fresh)
    await expect(phases.locator(".read-age")).to_have_text(fresh)
    # Old: two reads (1 s each here) and a request's timeout without a good one. The page
    # counts on by itself: nothing has to arrive for the mark to come.
    old_after_s = 2 * 1 + PANEL_TIMEOUT_S
    panel.simulator.set_fault("silence")
    within = command_within_ms(TIMER_READ_EXCHANGES) + 1000 * old_after_s
    await expect(flow).to_have_attribute("data-old", "true", timeout=within)
    await expect(phases).to_have_attribute("data-old", "true", timeout=within)
    await expect(flow.locator(".read-age")).to_have_text(re.compile(r"^old: read \d+ s ago$"))
    await expect(flow.locator(".value").first).to_have_css("opacity", "0.55")
    await shot(page, "dashboard-old-values")
    # The next good read makes them live again.
    panel.simulator.clear_faults()
    await expect(flow).to_have_attribute("data-old", "false", timeout=within)
    await expect(phases.locator(".read-age")).to_have_text(fresh)


@pytest.mark.parametrize(
    ("fault", "headline", "bit", "words"),
    [
        ("bad_checksum", "The answer was garbled", 32, "checksum error"),
        ("wrong_echo", "The controller answered something unexpected", 16, "unexpected packet"),
        ("reset", "The controller cannot be reached", 64, "socket error"),
        ("silence", "No answer from the controller", 8, "timeout"),
    ],
)
async def test_simulator_faults_show_the_error_in_words(
    open_page: Any, panel: Panel, fault: str, headline: str, bit: int, words: str
) -> None:
    """The headline is words; the bit stays in the detail line."""
    # No timer reads meanwhile: three failed reads in a row would make the buttons wait for the
    # controller (tests/browser/test_first_start_browser.py), and this press is what is shown.
    runtime = panel.runtime
    await runtime.apply_options(Options.from_mapping({"scan_interval": 3600}, base=runtime.options))
    diagnostics, _ = await open_page("diagnostics")
    await diagnostics.get_by_role("button", name=fault.replace("_", " "), exact=True).click()
    await expect(
        diagnostics.get_by_role("button", name=fault.replace("_", " "), exact=True)
    ).to_have_attribute("aria-pressed", "true")
    assert fault in panel.simulator.faults

    page, _ = await open_page()
    await page.evaluate(RECORD_KINDS)
    seen = len(await kinds(page, "status-get_export_limit"))
    if fault != "silence":  # a fault answered at once: slow it, so "waiting" is on screen
        panel.simulator.set_fault("slow", count=1)
    await page.get_by_role("button", name="Get export limit", exact=True).click()
    await wait_waiting_then(page, "status-get_export_limit", seen, "error")
    status = page.locator("#status-get_export_limit")
    await expect(status.locator(".word")).to_have_text(headline)
    await expect(status.locator(".detail")).to_contain_text(f"{words}")
    await expect(status.locator(".detail")).to_contain_text(f"(feedback {bit})")
    # The failed exchange shows in the diagnostics' counters and the command log.
    row = diagnostics.locator("#command-log tbody tr").first
    await expect(row).to_contain_text(headline)
    await expect(row).to_contain_text(f"(feedback {bit})")
    await expect(diagnostics.locator(f'#link-health [data-key="count-{bit}"]')).not_to_have_text(
        "0"
    )
    if fault == "bad_checksum":
        await shot(page, "dashboard-error-state")
        await shot(diagnostics, "diagnostics-with-fault")
    await diagnostics.get_by_role("button", name="Clear all").click()
    await expect(
        diagnostics.get_by_role("button", name=fault.replace("_", " "), exact=True)
    ).to_have_attribute("aria-pressed", "false")


async def test_the_toggle_shows_an_error_and_the_buttons_wait_while_the_device_is_silent(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page()
    panel.simulator.set_fault("reset")
    await page.get_by_role("switch").click()
    await wait_kind(page, "toggle-status", "error")
    await expect(page.locator("#toggle-status")).to_contain_text("socket error")
    await expect(page.locator("#btn-export-toggle")).to_have_attribute("data-state", "error")
    # Reads keep failing: the buttons wait for the controller, and say so (the reset too: the
    # core refuses it anyway while the last exchange failed, tests/limiter/test_watchdog.py).
    gate = page.locator("#controls-gate")
    reads = command_within_ms(TIMER_READ_EXCHANGES * (UNAVAILABLE_AFTER_FAILURES + 1))
    await expect(gate).to_have_attribute("data-blocked", "true", timeout=reads)
    await expect(gate).to_contain_text("it has not answered since")
    reset = page.get_by_role("button", name="Reset export watchdog")
    await expect(reset).to_be_disabled()
    await expect(reset).to_have_accessible_description(re.compile("The buttons wait for"))
    panel.simulator.clear_faults()
    await expect(gate).to_have_attribute("data-blocked", "false", timeout=reads)
    await expect(reset).to_be_enabled()


async def test_a_command_from_home_assistant_shows_on_the_panel(
    open_page: Any, panel: Panel
) -> None:
    from sec1000.operations import Origin

    page, _ = await open_page()
    await page.evaluate(RECORD_KINDS)
    panel.simulator.set_fault("slow", count=1)
    await panel.runtime.ops.run("set_datetime", {}, Origin("home_assistant", "Bob"))
    await wait_kind(page, "status-set_datetime", "ok")
    await expect(page.locator("#status-set_datetime")).to_contain_text("Home Assistant (Bob)")
    assert await kinds(page, "status-set_datetime") == ["ready", "waiting", "ok"]


async def test_an_invalid_form_is_refused_and_a_valid_one_saved_and_applied(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page("setup")
    stored = panel.options_file.read_text()
    before = panel.runtime.options
    form = page.locator("#form-limits")
    await form.get_by_label("Minimum export limit").fill("6")
    await form.get_by_label("Maximum export limit").fill("5")
    await form.get_by_role("button", name="Save limits").click()
    await expect(page.locator("#failure-limits")).to_contain_text("Not saved")
    await expect(page.locator("#e-min_export_limit")).to_contain_text("above the maximum")
    await expect(page.get_by_label("Minimum export limit")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.get_by_label("Minimum export limit")).to_have_value("6")  # nothing lost
    await expect(page.get_by_label("Minimum export limit")).to_be_focused()  # the first bad field
    assert panel.options_file.read_text() == stored
    assert panel.runtime.options == before
    await shot(page, "setup-invalid")

    connection = page.locator("#form-connection")
    await connection.get_by_label("Refresh interval").fill("soon")
    # By the keyboard: leaving the field sends its warning check, then Enter saves. (One CI run
    # saw a click here reach no request at all, on a loaded machine; the keys need no layout.)
    await connection.get_by_role("button", name="Save connection").press("Enter")
    await expect(page.locator("#e-scan_interval")).to_contain_text(
        "Refresh interval must be a number"
    )
    await expect(page.get_by_label("Refresh interval")).to_be_focused()
    await connection.get_by_label("Refresh interval").fill("")
    await connection.get_by_role("button", name="Save connection").press("Enter")
    await expect(page.locator("#e-scan_interval")).to_contain_text("the field is empty")
    await expect(page.locator("#e-scan_interval")).not_to_contain_text("got ''")
    assert panel.options_file.read_text() == stored

    form = page.locator("#form-limits")
    await form.get_by_label("Minimum export limit").fill("1")
    await form.get_by_label("Maximum export limit").fill("4,5")  # below the 5 kW it holds
    await form.get_by_role("button", name="Save limits").click()
    await expect(page.locator("#notice-limits")).to_contain_text("Saved and applied")
    # Like the Mode step, the write to the controller ends in done (or failed), live.
    await wait_kind(page, "apply-limits", "ok")
    await expect(page.locator("#apply-limits .word")).to_have_text("Done")
    assert json.loads(panel.options_file.read_text())["max_export_limit"] == 4.5
    assert panel.runtime.options.max_export_limit == 4.5
    assert panel.simulator.device.export_limit_w == 4500  # never above the new maximum
    # A save the controller already holds (a new minimum while export is on) writes nothing.
    await form.get_by_label("Minimum export limit").fill("0,5")
    await form.get_by_role("button", name="Save limits").click()
    await expect(page.locator("#notice-limits")).to_contain_text("nothing to write")
    assert panel.runtime.options.min_export_limit == 0.5
    # Applied at once: "export off" now writes 0.5 kW.
    await panel.runtime.ops.export_disable()
    assert panel.simulator.device.export_limit_w == 500

    # Test connection reads once from the form's address, saving nothing.
    await page.locator("#form-connection").get_by_role("button", name="Test connection").click()
    await expect(page.locator("#test-result .result-words")).to_have_text(
        f"The controller at 127.0.0.1:{panel.simulator.port} answered."
    )
    await shot(page, "setup-saved")


async def test_saving_a_mode_switches_the_controller_and_shows_its_progress(
    open_page: Any, panel: Panel
) -> None:
    page, _ = await open_page("setup")
    form = page.locator("#form-mode")
    await form.get_by_label("RCR").check()
    await form.get_by_role("button", name="Save mode").click()
    await expect(page.locator("#notice-mode")).to_contain_text("Switching the controller")
    await wait_kind(page, "status-set_control_mode", "ok")
    assert panel.simulator.device.mode is ControlMode.RCR
    assert json.loads(panel.options_file.read_text())["export_limit_control_mode"] == "rcr"


async def test_live_updates_fall_back_to_polling_when_websockets_are_not_relayed(
    browser: Any, tmp_path: Path
) -> None:
    from tests.browser.ingress_proxy import PREFIX
    from tests.helpers.browser import Watch

    async with serve_panel(tmp_path, websocket=False) as served:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        watch = Watch(PREFIX)
        watch.allow(r"WebSocket connection to .* failed")
        page.on("console", watch.console)
        page.on("pageerror", watch.page_error)
        page.on("request", watch.request)
        await page.goto(served.url)
        await expect(page.locator("#live-indicator")).to_have_attribute("data-mode", "polling")
        first = await page.locator("[data-key=telemetry_at]").inner_text()
        await page.wait_for_function(
            "(first) => document.querySelector('[data-key=telemetry_at]').textContent.trim() !== first",
            arg=first.strip(),
            timeout=command_within_ms(TIMER_READ_EXCHANGES),  # the next read, pushed
        )
        await page.get_by_role("button", name="Get export limit", exact=True).click()
        await wait_kind(page, "status-get_export_limit", "ok")
        await context.close()
        watch.check(served.proxy_log)
        assert served.proxy_log.websockets == 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
async def test_every_page_fits_the_screen_in_light_and_dark(
    open_page: Any, panel: Panel, scheme: str, size: str, viewport: dict[str, int]
) -> None:
    await panel.runtime.ops.set_datetime()  # a marker on the chart, a row in the log
    await eventually(lambda: len(panel.runtime.state.history) >= 2, what="two chart points")
    for path in ("", "setup", "diagnostics"):
        page, _ = await open_page(path, viewport=viewport, scheme=scheme)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path or 'dashboard'} is wider than a {size} screen by {overflow}px"
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(part) for part in background[4:-1].split(","))
        assert ((red + green + blue) / 3 < 100) == (scheme == "dark"), background
        await shot(page, f"{path or 'dashboard'}-{size}-{scheme}")


DAY_WORDS = {
    "en-US": ("The last 24 hours", "kW · last 10 min", "Set export limit"),
    "de-DE": ("Die letzten 24 Stunden", "kW · letzte 10 min", "Einspeisegrenze setzen"),
}


@pytest.mark.parametrize(
    ("locale", "viewport"), [("en-US", DESKTOP), ("de-DE", PHONE)], ids=["en-1280", "de-390"]
)
async def test_the_history_page_draws_the_day_and_marks_each_write_live(
    open_page: Any, panel: Panel, locale: str, viewport: dict[str, int]
) -> None:
    title, unit, command = DAY_WORDS[locale]
    runtime = panel.runtime
    assert (await runtime.ops.set_export_limit("3")).ok
    await eventually(lambda: len(runtime.state.day) >= 1, what="a minute of the day")
    page, _ = await open_page("history", viewport=viewport, locale=locale)
    await expect(page.locator("#day-title")).to_have_text(title)
    day = page.locator("#day-chart")
    await expect(day.locator("svg")).to_be_visible()
    await expect(day.locator(".legend .unit")).to_have_text(unit)  # all it knows: 10 minutes
    width = await day.evaluate("(el) => el.getBoundingClientRect().right")
    assert width <= viewport["width"], width
    pins = "[...document.querySelectorAll('#day-chart .pin')]"
    count = f"{pins}.reduce((n, pin) => n + Number(pin.dataset.count), 0)"
    assert await page.evaluate(count) == 1
    assert command in (await day.locator(".pin").first.get_attribute("title") or "")
    assert (await runtime.ops.set_export_limit("4")).ok  # marked live, without a reload
    await page.wait_for_function(f"{count} === 2", timeout=command_within_ms(1))
    await shot(page, f"history-day-{locale}")
