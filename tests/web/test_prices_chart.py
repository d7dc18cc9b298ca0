"""The Prices card's chart: the day from local midnight in the zone the prices are read in, and
the slots that are a model's estimate."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sec1000.web.prices_chart import (
    BOTTOM,
    HEIGHT,
    LEFT,
    MIN_LABEL_GAP,
    PLOT_RIGHT,
    TOP,
    _apart,
    build_price_chart,
)

OSLO = ZoneInfo("Europe/Oslo")
MIDNIGHT = dt.datetime(2026, 6, 10, tzinfo=OSLO).timestamp()


def slots(estimate_from: int = 24) -> list[list[float | bool]]:
    """Hourly slots from Oslo's midnight; those from `estimate_from` on are estimates."""
    return [
        [MIDNIGHT + h * 3600, MIDNIGHT + (h + 1) * 3600, 0.1 - h / 100, h >= estimate_from]
        for h in range(24)
    ]


def policy(zone: str, estimate_from: int = 24) -> dict[str, object]:
    return {"time_zone": zone, "slots": slots(estimate_from)}


def test_the_day_starts_at_midnight_in_the_prices_zone() -> None:
    noon = MIDNIGHT + 12 * 3600
    chart = build_price_chart(policy("Europe/Oslo"), [], noon, 8.0)
    assert chart is not None
    assert chart.now_x == LEFT + (PLOT_RIGHT - LEFT) / 2  # noon in Oslo is the middle of its day
    assert chart.price_path.startswith(f"M{LEFT:.1f},")
    utc = build_price_chart(policy("UTC"), [], noon, 8.0)  # noon in Oslo is 10:00 UTC
    assert utc is not None and utc.now_x == LEFT + (PLOT_RIGHT - LEFT) * 10 / 24


def test_estimated_slots_are_shaded_and_market_prices_are_not() -> None:
    chart = build_price_chart(policy("Europe/Oslo", estimate_from=20), [], MIDNIGHT, 8.0)
    assert chart is not None and len(chart.estimates) == 4
    x, width = chart.estimates[0]
    assert x == LEFT + (PLOT_RIGHT - LEFT) * 20 / 24 and width > 0
    old = {"time_zone": "Europe/Oslo", "slots": [slot[:3] for slot in slots()]}
    three = build_price_chart(old, [], MIDNIGHT, 8.0)  # slots published before estimates existed
    assert three is not None and three.estimates == ()


def test_a_price_label_too_close_to_zeros_is_left_out_and_zero_is_always_kept() -> None:
    def y(price: float) -> float:
        return 100.0 - price * 100  # 1 EUR is 100 units up; zero at 100

    gap = MIN_LABEL_GAP / 100 * (HEIGHT - BOTTOM - TOP)
    near, far = gap / 100 / 2, gap / 100 * 2  # half the gap above zero, twice the gap below
    assert _apart({near, 0.0, -far}, y) == [-far, 0.0]
    assert _apart({0.0}, y) == [0.0]
