"""The meter check on the panel: the compliance report, the History's filters, the Export
settings card, the banner, the shaded chart and the Home Assistant page's entity list.

The overshoot itself is the core's (tests/test_meter_check.py drives it over real sockets, and
tests/browser/test_meter_check_browser.py end to end); here the state model is told of one
through its own entry point, `overshoot_seen()`, with the detector's own `Overshoot`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path

from sec1000.limiter.audit import KINDS
from sec1000.metering.check import overshoot_entry
from sec1000.metering.overshoot import Overshoot
from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import HistoryPoint, Topic
from sec1000.web import fragments
from sec1000.web.chart import MIN_BAND, WIDTH, build_chart
from sec1000.web.history import FILTERS

from tests.helpers.events import sample_event
from tests.helpers.web import ClientFactory, StandIn, panel

ANNA = Origin("panel", "Anna")
REPORT_HEADER = (
    "date,max_export_kw,limit_in_force_kw,minutes_over_limit,kwh_over_limit,limiter_writes,"
    "drifts,data,measured_min,overshoots"
)


def hm(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M")


def hms(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def kinds(body: str) -> list[str]:
    return [part.split('"')[0] for part in body.split('data-kind="')[1:]]


# -- the compliance report


async def test_the_compliance_report_is_a_download_of_90_days_and_its_header(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    before = (await (await client.get("/compliance.csv")).text()).splitlines()
    assert before[-1].split(",")[5:7] == ["0", "0"]  # no write today yet
    assert (await runtime.ops.set_export_limit("3", ANNA)).ok
    simulator.drift(4_000)
    await runtime.guard.check()  # a drift, and its restore

    response = await client.get("/compliance.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="sec1000-compliance-\d{8}-\d{6}\.csv"', disposition)
    lines = (await response.text()).splitlines()
    assert lines[0] == REPORT_HEADER and len(lines) == 2  # no day before the first counted
    today = lines[-1].split(",")
    assert today[0] == dt.date.today().isoformat()
    assert today[5:7] == ["2", "1"]  # the limit and the restore written, one drift
    assert [line.split(",")[0] for line in lines[1:]] == sorted(
        line.split(",")[0] for line in lines[1:]
    )


async def test_the_dashboard_and_the_history_link_the_report_relatively(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    for path in ("/", "/history"):
        body = await (await client.get(path)).text()
        assert '<a href="compliance.csv" download id="download-compliance"' in body.replace(
            'class="btn" ', ""
        ), path
        assert "Compliance report (CSV)" in body


# -- the History page


async def overshoot_and_ceiling(
    make_options: Callable[..., Options], tmp_path: Path, simulator: SimulatorServer
) -> tuple[Runtime, Overshoot]:
    """A ceiling restore made by the real guard, and an overshoot's audit entry as the runtime
    writes it when one ends."""
    runtime = Runtime(make_options(export_ceiling_kw=6.0, max_export_limit=6.0), tmp_path)
    assert (await runtime.ops.set_export_limit(3, ANNA)).ok
    simulator.drift(9_000)  # above the contract: put back at once, audited as `ceiling`
    assert await runtime.guard.check()
    now = time.time()
    ended = Overshoot(now - 150, 5.02, 3.0, 0.073, until=now - 30)
    runtime.audit.append(overshoot_entry(ended))
    return runtime, ended


async def test_history_filters_overshoots_and_ceiling_restores(
    aiohttp_client: ClientFactory,
    make_options: Callable[..., Options],
    tmp_path: Path,
    simulator: SimulatorServer,
) -> None:
    runtime, ended = await overshoot_and_ceiling(make_options, tmp_path, simulator)
    client = await panel(aiohttp_client, runtime)
    everything = await (await client.get("/history")).text()
    assert kinds(everything) == ["overshoot", "ceiling", "write"]  # no drift: put back at once
    assert 'href="history?kind=overshoot">Over the limit<' in everything
    assert 'href="history?kind=ceiling">Ceiling restores<' in everything

    over = await (await client.get("/history?kind=overshoot")).text()
    assert kinds(over) == ["overshoot"]
    assert '<tr class="bad" data-kind="overshoot">' in over  # a problem, styled as one
    assert f"from {hms(ended.since)} to {hms(ended.until or 0)}" in over
    assert "up to 5.02 kW with a limit of 3.00 kW" in over
    assert "<strong>over the limit</strong>" in over and "0.073 kWh above the limit" in over

    ceiling = await (await client.get("/history?kind=ceiling")).text()
    assert kinds(ceiling) == ["ceiling"] and '<tr class="warn" data-kind="ceiling">' in ceiling
    assert "export ceiling of 6 kW" in ceiling and "<strong>verified</strong>" in ceiling


def test_every_audit_kind_has_a_filter() -> None:
    assert set(FILTERS) == {"all", *KINDS}


async def test_a_damaged_audit_line_is_shown_as_far_as_it_goes(
    aiohttp_client: ClientFactory, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit.jsonl").write_text(  # as an older version, or a hand, left them
        '{"command": "overshoot", "since": "yesterday", "max_kw": null}\n'
        '{"command": "set_export_limit", "feedback": "8"}\n'
        '{"command": "overshoot", "until": 1e999}\n'
    )
    runtime = Runtime(make_options(), data)  # reads the newest entries of the file at start
    client = await panel(aiohttp_client, runtime)
    response = await client.get("/history")
    body = await response.text()
    assert response.status == 200
    assert kinds(body) == ["overshoot", "failure", "overshoot"]
    assert "<strong>not verified</strong>" in body and 'data-key="overshoot_period"' not in body


# -- the dashboard while an overshoot is on


async def test_the_export_card_shows_the_ceiling_or_none(
    aiohttp_client: ClientFactory, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    without = await panel(aiohttp_client, Runtime(make_options(), tmp_path / "a"))
    assert 'data-key="export_ceiling">no ceiling<' in await (await without.get("/")).text()
    runtime = Runtime(make_options(export_ceiling_kw=6.5, max_export_limit=6), tmp_path / "b")
    client = await panel(aiohttp_client, runtime)
    assert 'data-key="export_ceiling">6.5 kW<' in await (await client.get("/")).text()
    german = await client.get("/", headers={"Accept-Language": "de"})
    assert 'data-key="export_ceiling">6,5 kW<' in await german.text()


async def test_an_overshoot_on_warns_on_the_card_and_in_a_banner(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    calm = await (await client.get("/")).text()
    assert 'data-state="off" data-key="overshoot">no overshoot<' in calm
    assert "overshoot-banner" not in calm and "overshoot-warning" not in calm

    since = time.time() - 75
    runtime.state.overshoot_seen(Overshoot(since, 5.04, 3.0, 0.02).as_dict())
    body = await (await client.get("/")).text()
    warning = f"Export over the limit since {hm(since)}: up to 5.04 kW with a limit of 3.00 kW"
    assert f'<span class="error-text" id="overshoot-warning">{warning}</span>' in body
    assert 'data-state="on" data-key="overshoot">over the limit<' in body
    assert f"<strong>Export over the limit since {hm(since)}.</strong>" in body
    setup = await (await client.get("/setup")).text()
    assert 'id="overshoot-banner"' in setup  # the banner is on every page

    runtime.state.overshoot_seen(
        {**Overshoot(since, 5.04, 3.0, 0.02).as_dict(), "until": since + 90}, ended=True
    )
    after = await (await client.get("/")).text()
    assert "overshoot-banner" not in after and 'data-key="overshoot">no overshoot<' in after


async def test_the_grid_tile_says_an_overshoot_not_exporting_in_the_warning_colour(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    values = {"meters_power": 5.04, "inverters_power": 6.0, "load_power": 0.96}
    runtime.state.telemetry_read({**{f"{k}{n}": 0.0 for k in "vip" for n in (1, 2, 3)}, **values})
    calm = await (await client.get("/")).text()
    assert 'data-direction="exporting">exporting<' in calm

    runtime.state.overshoot_seen(Overshoot(time.time() - 75, 5.04, 3.0, 0.02).as_dict())
    over = await (await client.get("/")).text()
    assert 'data-direction="over_limit">over the limit<' in over
    assert 'class="flow exporting over"' in over  # .flow.over: the warning colour, not green
    assert ">exporting<" not in over
    german = await (await client.get("/", headers={"Accept-Language": "de"})).text()
    assert 'data-direction="over_limit">über der Grenze<' in german


def test_an_overshoot_event_refreshes_the_chart_the_card_and_the_banner() -> None:
    ids = fragments.affected(sample_event(Topic.OVERSHOOT))
    assert {"chart", "export-info", "banner", "flow"} <= ids
    assert fragments.FRAGMENTS["banner"].morph  # the alert is not said again at every read


# -- the chart

NOW = 1_800_000_000.0


def hour() -> list[HistoryPoint]:
    return [HistoryPoint(NOW - 3600 + i * 10, 4.0, 6.0, 2.0, 3.0) for i in range(361)]


def test_the_chart_shades_each_overshoot_inside_the_hour_an_open_one_to_now() -> None:
    periods = [
        [NOW - 7200, NOW - 5400],  # ended before the hour: not shown
        [NOW - 3900, NOW - 3000],  # began before it: cut at its start
        [NOW - 1800, NOW - 1800],  # an instant: still visible
        [NOW - 360, None],  # lasting: to now
    ]
    bands = build_chart(hour(), [], NOW, 10, overshoots=periods).overshoots
    assert [(b.x, b.width) for b in bands] == [
        (0.0, round(600 / 3600 * WIDTH, 1)),
        (500.0, MIN_BAND),
        (900.0, 100.0),
    ]
    assert bands[-1].until is None and bands[-1].since == hm(NOW - 360)
    assert bands[0].until == hm(NOW - 3000)
    assert build_chart(hour(), [], NOW, 10).overshoots == ()


async def test_the_chart_fragment_draws_the_bands_with_a_legend_and_says_so(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    for _ in range(2):
        assert (await runtime.ops.get_telemetry_data()).ok
    client = await panel(aiohttp_client, runtime)
    plain = await (await client.get("/")).text()
    assert 'class="overshoot"' not in plain and "overshoot-key" not in plain
    since = time.time() - 30
    runtime.state.overshoot_seen(Overshoot(since, 5.0, 3.0, 0.01).as_dict())
    body = await (await client.get("/")).text()
    assert body.count('<rect class="overshoot"') == 1
    assert f"<title>Over the limit since {hm(since)}</title>" in body
    assert '<span class="key overshoot-key">Over the limit</span>' in body
    assert "1 period over the limit shaded." in body


# -- the Home Assistant page


class ListsTheBinarySensor(StandIn):
    def entity_ids(self) -> list[str]:
        return ["sensor.sec1000_v1", "binary_sensor.sec1000_export_over_limit"]


async def test_the_entity_list_shows_the_over_limit_sensors_state(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    app_client = await panel(aiohttp_client, runtime, home_assistant=ListsTheBinarySensor([]))
    entity = "<code>binary_sensor.sec1000_export_over_limit</code>"
    body = await (await app_client.get("/homeassistant")).text()
    assert f'{entity} <span class="badge" data-entity-state="off">off</span>' in body
    runtime.state.overshoot_seen(Overshoot(time.time(), 5.0, 3.0, 0.0).as_dict())
    body = await (await app_client.get("/homeassistant")).text()
    assert f'{entity} <span class="badge over" data-entity-state="on">on</span>' in body
