"""The limit field's quick choices (off, half, maximum) and the watchdog reset's countdown, on
the panel over the simulator (the clicks themselves: tests/browser/test_phone_browser.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from sec1000.commands import CommandName
from sec1000.limiter.watchdog import WatchdogTimings
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import Topic
from sec1000.web import fragments
from sec1000.web.render import quick_limits

from tests.helpers.events import sample_event
from tests.helpers.waiting import eventually
from tests.helpers.watchdog import short_watchdog
from tests.helpers.web import ClientFactory, panel

OFF_WINDOW = 3.0  # long enough to read the page inside it


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    return short_watchdog(OFF_WINDOW)


def choices(body: str) -> dict[str, tuple[str, str]]:
    """The quick choices on the dashboard: key → (the value it fills in, its words)."""
    found = re.findall(r'id="quick-(\w+)" data-fill="limit" data-value="([^"]*)">([^<]*)<', body)
    return {key: (value, words) for key, value, words in found}


def test_the_choices_are_off_half_and_the_highest_limit_allowed_in_10_w_steps(
    make_options: Callable[..., Options],
) -> None:
    assert [kw for _, _, kw in quick_limits(make_options())] == [0.0, 4.0, 8.0]
    odd = make_options(max_export_limit=3.335, export_ceiling_kw=4)  # 10 W steps, rounded down
    assert [kw for _, _, kw in quick_limits(odd)] == [0.0, 1.66, 3.33]
    tiny = make_options(max_export_limit=0.01)  # half of 10 W is no step of its own
    assert [key for key, _, _ in quick_limits(tiny)] == ["off", "maximum"]
    assert [key for key, _, _ in quick_limits(make_options(max_export_limit=0))] == ["off"]


async def test_the_dashboard_offers_the_choices_in_the_pages_language(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    assert choices(body) == {
        "off": ("0", "Off: 0 kW"),
        "half": ("4", "Half: 4 kW"),
        "maximum": ("8", "Maximum: 8 kW"),
    }
    assert 'role="group" aria-label="Set the export limit to"' in body
    german = await (await client.get("/", headers={"Accept-Language": "de"})).text()
    assert choices(german)["half"] == ("4", "Hälfte: 4 kW")


async def test_with_a_ceiling_the_maximum_choice_is_within_it_and_goes_through(
    aiohttp_client: ClientFactory,
    make_options: Callable[..., Options],
    runtime: Runtime,
    simulator: SimulatorServer,
) -> None:
    await runtime.apply_options(make_options(max_export_limit=2.5, export_ceiling_kw=2.5))
    client = await panel(aiohttp_client, runtime)
    german = await (await client.get("/", headers={"Accept-Language": "sk"})).text()
    assert choices(german) == {
        "off": ("0", "Vypnuté: 0 kW"),
        "half": ("1,25", "Polovica: 1,25 kW"),
        "maximum": ("2,5", "Maximum: 2,5 kW"),
    }
    # The button fills the field with its value and submits the field's own command.
    value = choices(german)["maximum"][0]
    await client.post("/command", data={"command": "set_export_limit", "limit": value})
    await eventually(lambda: simulator.device.export_limit_w == 2500, what="2.5 kW written")


async def test_the_reset_counts_down_its_off_window_then_the_countdown_goes(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert "status-reset_export_watchdog" in fragments.affected(sample_event(Topic.RESTORE))
    client = await panel(aiohttp_client, runtime)
    assert 'class="countdown"' not in await (await client.get("/")).text()
    data = {"command": "reset_export_watchdog", "confirm": "yes"}
    assert (await client.post("/command", data=data)).status == 200
    await eventually(lambda: runtime.state.watchdog_off_until is not None, what="the window")
    body = await (await client.get("/")).text()
    shown = re.search(
        r'<span class="countdown" id="countdown-reset_export_watchdog" aria-live="off" '
        r'data-until="([0-9.]+)" data-words="The limiter is off: back on in \{n\} s">'
        r"The limiter is off: back on in (\d) s</span>",
        body,
    )
    assert shown is not None, body[body.index('id="status-reset_export_watchdog"') :][:900]
    assert float(shown[1]) == runtime.state.watchdog_off_until
    assert 1 <= int(shown[2]) <= OFF_WINDOW
    german = await (await client.get("/", headers={"Accept-Language": "de"})).text()
    assert "Die Begrenzung ist aus: wieder an in" in german

    await eventually(
        lambda: runtime.state.feedback[CommandName.RESET_EXPORT_WATCHDOG] & 1,
        OFF_WINDOW + 10,
        "the reset confirmed",
    )
    assert runtime.state.watchdog_off_until is None
    assert 'class="countdown"' not in await (await client.get("/")).text()
    await asyncio.sleep(0)
