"""The energy counters on an injected clock: exact integrals, gaps, sign flips, midnight, files."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sec1000.metering.compliance import compliance_csv
from sec1000.metering.energy import (
    ENERGY_NAME,
    TIME_AT_LIMIT,
    EnergyMeter,
    Sample,
    positive_area,
)
from sec1000.options import Options

from tests.helpers.notifications import NoClient, Recorder

UTC = dt.UTC
START = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample(
    at: float,
    meters: float = 0.0,
    inverters: float = 0.0,
    load: float = 0.0,
    at_limit: bool = False,
) -> Sample:
    return Sample(at, meters, inverters, load, at_limit)


def meter(
    tmp_path: Path, scan: float = 5.0, tz: dt.tzinfo | None = UTC, clock: Clock | None = None
) -> EnergyMeter:
    return EnergyMeter(tmp_path, lambda: scan, clock=clock or Clock(), tz=tz)


def test_a_constant_power_gives_p_times_t_exactly(tmp_path: Path) -> None:
    m = meter(tmp_path)
    for n in range(721):  # one hour at 5 s
        m.add(sample(START + 5 * n, meters=2.0, inverters=3.0, load=1.0))
    totals = m.book.totals
    assert totals["grid_export"] == pytest.approx(2.0, abs=1e-12)
    assert totals["pv"] == pytest.approx(3.0, abs=1e-12)
    assert totals["load"] == pytest.approx(1.0, abs=1e-12)
    assert totals["grid_import"] == 0


def test_a_ramp_is_integrated_exactly(tmp_path: Path) -> None:
    m = meter(tmp_path)
    m.add(sample(START, inverters=0.0))
    m.add(sample(START + 3600, inverters=4.0))  # a gap is 3 x scan or 5 min: use a long scan
    assert m.book.gaps == 1  # 1 h between reads is a gap at a 5 s scan
    m2 = meter(tmp_path / "b", scan=1800)
    m2.add(sample(START, inverters=0.0))
    m2.add(sample(START + 1800, inverters=2.0))
    m2.add(sample(START + 3600, inverters=4.0))
    assert m2.book.totals["pv"] == pytest.approx(2.0)  # the area under 0 → 4 kW over 1 h


def test_a_sign_flip_is_split_at_the_zero_crossing(tmp_path: Path) -> None:
    m = meter(tmp_path, scan=100)
    m.add(sample(START, meters=3.0))
    m.add(sample(START + 60, meters=-1.0))  # crosses zero after 45 s
    assert m.book.totals["grid_export"] == pytest.approx(3.0 * 45 / 2 / 3600)
    assert m.book.totals["grid_import"] == pytest.approx(1.0 * 15 / 2 / 3600)
    assert positive_area(-2, -1, 10) == 0 and positive_area(0, 0, 10) == 0


def test_a_gap_longer_than_the_cap_counts_nothing_and_is_shown(tmp_path: Path) -> None:
    m = meter(tmp_path, scan=30)
    m.add(sample(START, meters=5.0))
    m.add(sample(START + 91, meters=5.0))  # 3 x 30 s = 90 s, but 5 min is longer: counted
    assert m.book.totals["grid_export"] == pytest.approx(5.0 * 91 / 3600)
    before = dict(m.book.totals)
    m.add(sample(START + 91 + 301, meters=5.0))  # more than 5 minutes
    assert m.book.totals == before
    assert m.book.gaps == 1 and m.book.gap_seconds == 301


def test_the_clock_going_back_counts_nothing(tmp_path: Path) -> None:
    m = meter(tmp_path)
    m.add(sample(START, meters=5.0))
    m.add(sample(START - 10, meters=5.0))
    m.add(sample(START - 5, meters=5.0))
    assert m.book.totals["grid_export"] == pytest.approx(5.0 * 5 / 3600)


def test_time_at_limit_counts_minutes_held_at_the_limit(tmp_path: Path) -> None:
    values = {"meters_power": 4.95, "inverters_power": 6.0, "load_power": 1.05}
    assert Sample.of(START, values, 5.0, True).at_limit  # within 0.1 kW of 5 kW
    assert not Sample.of(START, {**values, "meters_power": 4.85}, 5.0, True).at_limit
    assert not Sample.of(START, values, 5.0, False).at_limit  # the limiter is off
    assert Sample.of(START, {**values, "meters_power": 19.7}, 20.0, True).at_limit  # 2 % of 20
    m = meter(tmp_path)
    for n in range(13):
        m.add(sample(START + 5 * n, meters=5.0, at_limit=True))
    assert m.today()[TIME_AT_LIMIT] == pytest.approx(1.0)


async def test_restart_keeps_the_totals_and_a_kill_between_saves_loses_at_most_60_s(
    tmp_path: Path,
) -> None:
    clock = Clock()
    m = meter(tmp_path, clock=clock)
    for n in range(0, 121):  # 10 minutes at 5 s, saving when 60 s are due
        clock.now = START + 5 * n
        m.add(sample(clock.now, meters=6.0))
        await m.save_if_due()
    kept = json.loads((tmp_path / ENERGY_NAME).read_text())["totals"]["grid_export"]
    assert m.book.totals["grid_export"] - kept <= 6.0 * 60 / 3600 + 1e-9  # SIGKILL now
    again = meter(tmp_path, clock=clock)
    assert again.book.totals["grid_export"] == pytest.approx(kept)
    await asyncio.to_thread(m.save)
    assert meter(tmp_path, clock=clock).book.totals == m.book.totals


@pytest.mark.parametrize(
    "content",
    [
        "{broken",
        "[]",
        '{"version": 1, "totals": {"pv": -1}}',
        '{"version": 1, "totals": {"grid_export": "NaN", "grid_import": 0, "pv": 0, "load": 0}}',
    ],
)
def test_a_broken_file_is_moved_aside_and_counting_starts_from_0(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / ENERGY_NAME).write_text(content)
    m = meter(tmp_path)
    assert m.book.totals == {
        "grid_export": 0,
        "grid_import": 0,
        "pv": 0,
        "load": 0,
        "over_limit": 0,
    }
    assert m.broken and "moved to" in m.broken
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{ENERGY_NAME}.broken-")]
    assert len(aside) == 1 and aside[0].read_text() == content


def test_daily_totals_are_split_at_midnight(tmp_path: Path) -> None:
    midnight = dt.datetime(2026, 6, 2, tzinfo=UTC).timestamp()
    m = meter(tmp_path, scan=600)
    m.add(sample(midnight - 30, inverters=2.0, at_limit=True))
    m.add(sample(midnight + 90, inverters=2.0, at_limit=True))
    days = m.book.days
    assert days["2026-06-01"]["pv"] == pytest.approx(2.0 * 30 / 3600)
    assert days["2026-06-02"]["pv"] == pytest.approx(2.0 * 90 / 3600)
    assert days["2026-06-01"][TIME_AT_LIMIT] == pytest.approx(0.5)
    assert days["2026-06-02"][TIME_AT_LIMIT] == pytest.approx(1.5)


def test_the_dst_midnight_starts_the_new_day_at_its_first_minute(tmp_path: Path) -> None:
    # Chile starts summer time at midnight: 2026-09-06 00:00 does not exist, the day starts at 01:00.
    chile = ZoneInfo("America/Santiago")
    before = dt.datetime(2026, 9, 5, 23, 50, tzinfo=chile).timestamp()
    m = meter(tmp_path, scan=3600, tz=chile)
    m.add(sample(before, inverters=6.0, at_limit=True))
    m.add(sample(before + 1200, inverters=6.0, at_limit=True))  # 20 real minutes later
    days = m.book.days
    assert days["2026-09-05"][TIME_AT_LIMIT] == pytest.approx(10.0)
    assert days["2026-09-06"][TIME_AT_LIMIT] == pytest.approx(10.0)
    assert days["2026-09-05"]["pv"] + days["2026-09-06"]["pv"] == pytest.approx(2.0)


def test_400_days_are_kept_and_the_csv_lists_them(tmp_path: Path) -> None:
    m = meter(tmp_path, scan=86400)
    day0 = dt.datetime(2025, 1, 1, 12, tzinfo=UTC).timestamp()
    for n in range(420):
        m.add(sample(day0 + n * 86400, inverters=1.0))
    assert len(m.book.days) == 400
    lines = m.csv().splitlines()
    assert lines[0].startswith("date,grid_export_kwh") and len(lines) == 401


def test_the_last_seven_days_end_today(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2026, 6, 10, 12, tzinfo=UTC).timestamp())
    m = meter(tmp_path, clock=clock)
    days = [day for day, _ in m.last_days(7)]
    assert days[0] == dt.date(2026, 6, 4) and days[-1] == dt.date(2026, 6, 10)


# -- wired into the add-on (real sockets against the simulator)


async def test_good_reads_move_the_counters_and_a_stop_saves_them(
    runtime: Any, simulator: Any
) -> None:
    for _ in range(3):
        assert (await runtime.ops.get_telemetry_data()).ok
    book = runtime.energy.book  # reads 20 ms apart: far below the sensors' 3 decimals
    assert book.totals["pv"] > 0 and book.totals["load"] > 0
    snapshot = runtime.state.energy
    assert len(snapshot["week"]) == 7 and snapshot["week"][-1]["date"] in book.days
    await runtime.stop()
    saved = json.loads((runtime.data_dir / ENERGY_NAME).read_text())
    assert saved["totals"]["pv"] == pytest.approx(runtime.energy.book.totals["pv"])


async def test_a_failed_read_counts_nothing(runtime: Any, simulator: Any) -> None:
    assert (await runtime.ops.get_telemetry_data()).ok
    simulator.set_fault("reset")
    assert not (await runtime.ops.get_telemetry_data()).ok
    assert runtime.energy.book.totals["pv"] == 0  # one good read: nothing to integrate yet


def test_a_broken_energy_file_raises_a_notification(
    make_options: Callable[..., Options], tmp_path: Path
) -> None:
    from sec1000.ha.notifications import ENERGY_NOTIFICATION, Notifications
    from sec1000.runtime import Runtime

    data = tmp_path / "data"
    data.mkdir()
    (data / ENERGY_NAME).write_text("{broken")
    runtime = Runtime(make_options(), data)
    _, message = Notifications(runtime, NoClient()).desired()[ENERGY_NOTIFICATION]
    assert "moved to energy.json.broken-" in message and "from 0" in message


async def test_the_broken_file_notification_is_told_once_not_at_every_reconnect(
    make_options: Callable[..., Options], tmp_path: Path
) -> None:
    from sec1000.ha.notifications import ENERGY_NOTIFICATION, Notifications
    from sec1000.runtime import Runtime

    data = tmp_path / "data"
    data.mkdir()
    (data / ENERGY_NAME).write_text("{broken")
    client = Recorder()
    notifications = Notifications(Runtime(make_options(), data), client)
    for _ in range(3):  # connected, then two reconnects (each forgets what it showed)
        await notifications.update(resync=True)
        notifications.forget_shown()
    created = [c for c in client.calls if c["service"] == "create"]
    dismissed = [c for c in client.calls if c["service"] == "dismiss"]
    assert [c["service_data"]["notification_id"] for c in created] == [ENERGY_NOTIFICATION]
    assert ENERGY_NOTIFICATION not in [c["service_data"]["notification_id"] for c in dismissed]


def test_an_unreadable_energy_file_is_set_aside_and_counting_goes_on(tmp_path: Path) -> None:
    (tmp_path / ENERGY_NAME).mkdir()  # not a file: it cannot be read
    m = meter(tmp_path)
    assert m.broken is not None and "cannot read it" in m.broken
    m.add(sample(START, meters=2.0))
    m.add(sample(START + 5, meters=2.0))
    m.save()
    assert json.loads((tmp_path / ENERGY_NAME).read_text())["totals"]["grid_export"] > 0


def test_an_energy_save_that_fails_is_logged_and_the_counters_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = meter(tmp_path / "missing" / "deeper")
    (tmp_path / "missing").write_text("a file where the folder should be")
    m.add(sample(START, meters=2.0))
    m.add(sample(START + 5, meters=2.0))
    counted = m.book.totals["grid_export"]
    m.save()  # the folder cannot be made: logged, never raised
    assert "cannot save the energy counters" in caplog.text
    assert not (tmp_path / "missing" / "deeper").exists()
    (tmp_path / "missing").unlink()  # the folder can be made again: the next save keeps all
    m.save()
    saved = json.loads((tmp_path / "missing" / "deeper" / ENERGY_NAME).read_text())
    assert counted > 0 and saved["totals"]["grid_export"] == pytest.approx(counted)


def test_the_compliance_report_starts_at_the_first_day_counted_and_says_no_data(
    tmp_path: Path,
) -> None:
    clock = Clock()
    m = meter(tmp_path, scan=60, clock=clock)
    day = 86_400.0
    # Day 1: an hour at a 10 kW limit; day 2: nothing (the add-on was off); day 3: today.
    for n in range(61):
        m.add(Sample(START + 60 * n, 2.0, 3.0, 1.0, False, limit_kw=10.0 if n < 50 else 0.0))
    for n in range(11):
        m.add(Sample(START + 2 * day + 60 * n, 1.0, 2.0, 1.0, False, limit_kw=5.0))
    clock.now = START + 2 * day + 600
    overshoot = {"since": START + 3000, "until": START + 3600, "max_kw": 2.0, "limit_kw": 0.0}
    rows = list(csv.reader(compliance_csv(m, 90, [overshoot]).splitlines()))
    assert rows[0][:3] == ["date", "max_export_kw", "limit_in_force_kw"]  # 0.2.0's order
    assert rows[0][-3:] == ["data", "measured_min", "overshoots"]
    assert [row[0] for row in rows[1:]] == ["2026-06-01", "2026-06-02", "2026-06-03"]
    first, gap, today = rows[1:]
    assert first[1:3] == ["2.000", "10.00"] and first[7:9] == ["measured", "60"]
    # The overshoot names the limit in force then (0 kW), not the day's highest (10 kW).
    assert first[-1] == "10:50-11:00 up to 2.00 kW, limit 0.00 kW"
    assert gap[1:5] == ["", "", "", ""] and gap[7:9] == ["no data", ""]  # nothing claimed
    assert today[7:9] == ["measured", "10"] and today[-1] == ""


def test_a_report_before_any_read_is_one_row_of_no_data(tmp_path: Path) -> None:
    rows = compliance_csv(meter(tmp_path), 90).splitlines()
    assert rows[1:] == ["2026-06-01,,,,,0,0,no data,,"]
