"""The History page and the audit trail in the panel: filters, the download, diagnostics."""

from __future__ import annotations

import datetime as dt
import json
import time

from sec1000.operations import Origin
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import Topic
from sec1000.web import fragments

from tests.helpers.events import sample_event
from tests.helpers.web import ClientFactory, panel

ANNA = Origin("panel", "Anna")


async def some_history(runtime: Runtime, simulator: SimulatorServer) -> None:
    assert (await runtime.ops.set_export_limit("3", ANNA)).ok
    simulator.set_fault("ignore_writes")
    assert not (await runtime.ops.set_export_limit("4", ANNA)).ok
    simulator.clear_faults()
    simulator.drift(9_990)
    await runtime.guard.check()


async def test_history_lists_writes_drifts_and_failures_newest_first(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    await some_history(runtime, simulator)
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/history")).text()
    kinds = [part.split('"')[0] for part in body.split('data-kind="')[1:]]
    assert kinds == ["write", "drift", "failure", "write"]  # restore, drift, the 4 kW, the 3 kW
    assert 'data-origin="panel:Anna"' in body and "holds 3.00 kW in mode value, not 4.00 kW" in body
    for kind, expected in (("write", {"write"}), ("drift", {"drift"}), ("failure", {"failure"})):
        page = await (await client.get(f"/history?kind={kind}")).text()
        shown = {part.split('"')[0] for part in page.split('data-kind="')[1:]}
        assert shown == expected, kind
    odd = await client.get("/history?kind=<script>")
    assert odd.status == 200 and "<script>" not in await odd.text()


async def test_the_audit_download_and_the_diagnostics_carry_the_trail(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    await some_history(runtime, simulator)
    client = await panel(aiohttp_client, runtime)
    download = await client.get("/audit.jsonl")
    assert download.status == 200 and "attachment" in download.headers["Content-Disposition"]
    lines = [json.loads(line) for line in (await download.text()).splitlines()]
    assert [entry["command"] for entry in lines] == [
        "set_export_limit",
        "set_export_limit",
        "drift",
        "restore",
    ]
    diagnostics = await (await client.get("/diagnostics.json")).json()
    assert diagnostics["audit"] == lines and diagnostics["audit_error"] is None
    assert diagnostics["state"]["guard"]["state"] == "in_sync"


async def test_the_export_card_shows_wanted_and_controller(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.set_export_limit("3", ANNA)).ok
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    assert 'data-key="guard">in sync' in body
    assert "wanted 3.00 kW, By value · controller 3.00 kW, By value" in body


async def test_the_energy_card_and_its_csv(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    for _ in range(3):
        assert (await runtime.ops.get_telemetry_data()).ok
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    assert 'id="energy"' in body and 'class="energy-chart"' in body
    assert body.count('class="bar pv"') == 7
    csv = await client.get("/energy.csv")
    lines = (await csv.text()).splitlines()
    assert csv.status == 200 and "attachment" in csv.headers["Content-Disposition"]
    assert lines[0] == "date,grid_export_kwh,grid_import_kwh,pv_kwh,load_kwh,time_at_limit_min"
    day = next(iter(runtime.energy.book.days))
    assert lines[1:] == [runtime.energy.csv().splitlines()[1]] and lines[1].startswith(day)


async def test_the_history_page_draws_the_day_with_the_audit_trails_writes(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    empty = await (await client.get("/history")).text()
    assert 'id="day-chart"' in empty and "The chart fills in as telemetry arrives." in empty
    await some_history(runtime, simulator)
    assert (await runtime.ops.get_telemetry_data(ANNA)).ok
    body = await (await client.get("/history")).text()
    day = body.split('id="day-chart"')[1].split('id="history-title"')[0]
    assert "<svg" in day and 'id="day-chart-summary"' in day
    # The 3 kW, the refused 4 kW and the guard's restore: three writes, one of them failed.
    counts = [int(part.split('"')[0]) for part in day.split('data-count="')[1:]]
    assert sum(counts) == 3 and 'class="pin bad"' in day
    titles = [part.split('"')[0] for part in day.split('title="')[1:]]
    assert titles and not any("Drift" in title for title in titles)  # a drift is not a write
    assert any("4.00 kW" in title for title in titles)  # the refused write says why
    assert len(runtime.audit.writes_since(0)) == 3
    assert runtime.audit.writes_since(time.time() + 60) == []  # none from the future on


async def test_the_days_marks_outlive_a_restart_and_an_adoption_is_no_mark(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    hours_ago = dt.datetime.now().astimezone() - dt.timedelta(hours=5)
    runtime.audit.append(
        {"at": hours_ago.isoformat(timespec="seconds"), "origin": "policy",
         "command": "export_disable", "verified": True, "feedback": 1, "message": ""}
    )  # fmt: skip
    runtime.audit.append({"origin": "guard", "command": "adopt", "verified": True, "feedback": 1})
    assert [r.command for r in runtime.audit.writes_since(0)] == ["export_disable"]
    assert (await runtime.ops.get_telemetry_data(ANNA)).ok  # the first read since the start
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/history")).text()
    day = body.split('id="day-chart"')[1].split('id="history-title"')[0]
    assert 'data-count="1"' in day and "Export off" in day  # five hours back, still marked
    assert "kW · last 5 h" in day  # the window reaches back to it


def test_the_guards_and_the_watchdogs_writes_redraw_the_day_at_once() -> None:
    """Restores, ceiling restores and the watchdog's restore emit no command event: their
    marks must not wait for the next read (up to the refresh interval)."""
    for topic in (Topic.GUARD, Topic.RESTORE, Topic.COMMAND, Topic.TELEMETRY):
        assert "day-chart" in fragments.affected(sample_event(topic)), topic
    assert "day-chart" not in fragments.affected(sample_event(Topic.LINK))
