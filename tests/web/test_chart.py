"""The last hour's (and day's) chart, piece by piece: the scale, the series, the limit, the ticks, the bands.

`build_chart` as a whole is tested in tests/web/test_render.py and tests/web/test_meter_check.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from sec1000.state import CommandRecord, HistoryPoint
from sec1000.web.chart import (
    HEIGHT,
    MAX_POINTS,
    MIN_BAND,
    WIDTH,
    Band,
    Scale,
    Tick,
    build_chart,
    build_day_chart,
    chart_scale,
    hour_minute,
    limit_line,
    overshoot_bands,
    power_ticks,
    series_paths,
    time_ticks,
)
from sec1000.web.i18n import translator

NOW = 1_800_000_000.0  # a whole hour of the epoch
# 100 s across 1000 units (x = 10 per second), 0..10 kW up 300 units (y = 300 - 30 per kW).
BOX = Scale(start=0.0, window=100.0, low=0.0, high=10.0, step=2.5)


def point(at: float, meters: float = 1.0, limit: float | None = 5.0) -> HistoryPoint:
    return HistoryPoint(at, meters, 2.0, 3.0, limit)


def test_the_scale_runs_in_whole_steps_from_below_the_lowest_to_above_the_highest_power() -> None:
    points = [HistoryPoint(NOW - 60, -2.3, 4.1, 6.4, 5.0), HistoryPoint(NOW, 1.0, 1.0, 1.0, None)]
    scale = chart_scale(points, NOW - 600, 600)
    assert scale == Scale(NOW - 600, 600, -2.5, 7.5, 2.5)
    assert (scale.x(NOW - 600), scale.x(NOW), scale.y(-2.5), scale.y(7.5)) == (0, WIDTH, HEIGHT, 0)


def test_the_scale_of_nothing_but_zeros_is_one_step_high() -> None:
    scale = chart_scale([HistoryPoint(NOW, 0.0, 0.0, 0.0, None)], NOW - 600, 600)
    assert (scale.low, scale.high, scale.step) == (0.0, 0.25, 0.25)


def test_each_series_is_one_path_that_a_pause_longer_than_the_gap_breaks() -> None:
    points = [point(0, 1.0), point(10, 2.0), point(20, 3.0), point(100, 4.0)]
    paths = series_paths(points, BOX, gap=25)
    assert paths["meters"] == "M0.0 270.0L100.0 240.0L200.0 210.0M1000.0 180.0"
    assert paths["inverters"] == "M0.0 240.0L100.0 240.0L200.0 240.0M1000.0 240.0"
    assert set(paths) == {"meters", "inverters", "load"}
    assert series_paths(points, BOX, gap=100)["load"].count("M") == 1


def test_the_limit_holds_its_value_until_it_changes_then_runs_to_the_edge() -> None:
    points = [point(0, limit=None), point(10, limit=5.0), point(20, limit=5.0)]
    points.append(point(60, limit=2.5))
    assert limit_line(points, BOX) == "M100.0 150.0H600.0V225.0H1000"
    assert limit_line([point(0, limit=None)], BOX) == ""


def test_power_ticks_label_every_step_from_the_bottom_up_in_the_pages_decimal_mark() -> None:
    scale = Scale(0.0, 1.0, -2.5, 7.5, 2.5)
    assert power_ticks(scale) == (
        Tick(100.0, "-2.5"),
        Tick(75.0, "0"),
        Tick(50.0, "2.5"),
        Tick(25.0, "5"),
        Tick(0.0, "7.5"),
    )
    assert [t.text for t in power_ticks(scale, translator("de"))][:3] == ["-2,5", "0", "2,5"]


def test_power_ticks_of_a_quarter_kilowatt_step_say_their_values() -> None:
    quarters = power_ticks(Scale(0.0, 1.0, 0.0, 1.0, 0.25))
    assert [t.text for t in quarters] == ["0", "0.25", "0.5", "0.75", "1"]
    tenths = power_ticks(Scale(0.0, 1.0, -0.2, 0.4, 0.2))  # -0.2 + 3 * 0.2 is 0.4000000000000001
    assert [t.text for t in tenths] == ["-0.2", "0", "0.2", "0.4"]


def test_time_ticks_fall_on_whole_ten_minutes_of_an_hour_and_two_of_ten_minutes() -> None:
    hour = time_ticks(Scale(NOW - 3570, 3570, 0, 1, 1), NOW)
    assert [t.text for t in hour] == [hour_minute(NOW - 3000 + 600 * i) for i in range(6)]
    assert hour[0].percent == round(570 / 3570 * 100, 2) and hour[-1].percent == 100.0
    short = time_ticks(Scale(NOW - 600, 600, 0, 1, 1), NOW)
    assert [t.percent for t in short] == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    quarter = time_ticks(Scale(NOW - 900, 900, 0, 1, 1), NOW)
    assert len(quarter) == 4  # every 5 minutes


def test_overshoot_bands_keep_what_falls_in_the_window_an_open_one_running_to_now() -> None:
    periods = [(100.0, 300.0), (-50.0, -10.0), (999.5, None), (None, 5.0), (1200.0, None)]
    assert overshoot_bands(periods, 0.0, 1000.0) == (
        Band(100.0, 200.0, hour_minute(100), hour_minute(300)),
        Band(WIDTH - MIN_BAND, MIN_BAND, hour_minute(999.5), None),  # too short: kept visible
    )


def test_a_days_time_ticks_fall_on_whole_local_hours_every_four() -> None:
    ticks = time_ticks(Scale(NOW - 86400, 86400, 0, 1, 1), NOW)
    assert 6 <= len(ticks) <= 7
    stamps = [NOW - 86400 + t.percent / 100 * 86400 for t in ticks]
    assert all(abs(b - a - 4 * 3600) < 10 for a, b in itertools.pairwise(stamps))
    assert all(t.text.endswith(":00") and int(t.text[:2]) % 4 == 0 for t in ticks), ticks


def test_a_day_of_minute_averages_is_one_line_even_at_a_one_second_refresh() -> None:
    day = [point(NOW - 86400 + 60 * i) for i in range(1441)]
    chart = build_day_chart(day, [], NOW, 1)
    assert chart.minutes == 1440 and chart.points == MAX_POINTS  # downsampled
    assert chart.paths["meters"].count("M") == 1  # no gap between two minutes
    hour = build_chart(day, [], NOW, 1)
    assert hour.minutes == 60 and hour.points == 61  # the hour view of the same points
    gap = [p for p in day if not NOW - 7200 < p.at < NOW - 3600]  # an hour without reads
    assert build_day_chart(gap, [], NOW, 1).paths["meters"].count("M") == 2


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "America/St_Johns"])
@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25", "2026-07-01"])
def test_a_days_ticks_stay_on_whole_local_hours_in_any_zone_and_across_summer_time(
    monkeypatch: pytest.MonkeyPatch, zone: str, day: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        now = dt.datetime.fromisoformat(f"{day}T18:07:00").timestamp()
        ticks = time_ticks(Scale(now - 86400, 86400, 0, 1, 1), now)
        assert 5 <= len(ticks) <= 8, ticks
        for tick in ticks:
            hour, minute = (int(part) for part in tick.text.split(":"))
            assert minute == 0 and hour % 4 == 0, (zone, day, ticks)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_mark_of_many_writes_names_ten_and_counts_the_rest() -> None:
    writes = [CommandRecord(NOW - 60 + i / 4, "policy", "export_disable", 1, "") for i in range(25)]
    refused = CommandRecord(
        NOW - 55, "panel:Anna", "set_export_limit", 0, "holds 3.00 kW, not 4.00 kW"
    )
    (mark,) = build_day_chart([point(NOW - 600), point(NOW)], [*writes, refused], NOW, 30).markers
    lines = mark.title.splitlines()
    assert mark.count == 26 and not mark.ok and len(lines) == 11
    assert lines[-1] == "… and 16 more"
    (alone,) = build_day_chart([point(NOW)], [refused], NOW, 30).markers
    assert alone.title.endswith(": holds 3.00 kW, not 4.00 kW")  # the reason, as the log has it
