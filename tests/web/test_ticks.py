"""The charts' axis labels: every tick of an axis reads differently, at any scale, in any
language (the energy chart once read "0.001 / 0.001 / 0")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sec1000.state import HistoryPoint
from sec1000.web.chart import chart_scale, power_ticks, step_decimals, tick_text
from sec1000.web.i18n import translator
from sec1000.web.render import energy_week

NOW = 1_800_000_000.0
POWER = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
ENERGY = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
LANGUAGES = st.sampled_from(["en", "de", "sk"])


def test_a_small_week_of_energy_has_distinct_ticks() -> None:
    week = [{"date": "2026-12-01", "pv": 0.0012, "grid_export": 0.0, "grid_import": 0.0}]
    labels = [label for _, label in energy_week(week).ticks]
    assert labels == ["0", "0.0005", "0.001", "0.0015"]


def test_a_tick_says_only_the_decimals_its_step_needs() -> None:
    assert [step_decimals(step) for step in (5.0, 2.5, 0.25, 0.0005, 1e-7)] == [0, 1, 2, 4, 7]
    assert tick_text(0.30000000000000004, 0.1) == "0.3"
    assert tick_text(-1e-17, 0.5) == "0"  # never "-0"
    assert tick_text(1_000_000.0, 250_000.0) == "1000000"  # never "1e+06"
    assert tick_text(2.5, 2.5, translator("de")) == "2,5"


@given(st.lists(POWER, min_size=1, max_size=6), LANGUAGES)
def test_the_power_axis_never_repeats_a_tick_at_any_scale(values: list[float], lang: str) -> None:
    points = [HistoryPoint(NOW, value, value / 2, -value, None) for value in values]
    ticks = power_ticks(chart_scale(points, NOW - 600, 600), translator(lang))
    texts = [tick.text for tick in ticks]
    assert len(texts) >= 2 and len(set(texts)) == len(texts), texts
    assert all("e" not in text for text in texts), texts
    assert [tick.percent for tick in ticks] == sorted((t.percent for t in ticks), reverse=True)


@given(st.lists(st.tuples(ENERGY, ENERGY, ENERGY), min_size=1, max_size=7), LANGUAGES)
def test_the_energy_axis_never_repeats_a_tick_at_any_scale(
    days: list[tuple[float, float, float]], lang: str
) -> None:
    week = [
        {"date": f"2026-12-0{n + 1}", "pv": pv, "grid_export": out, "grid_import": into}
        for n, (pv, out, into) in enumerate(days)
    ]
    ticks = energy_week(week, translator(lang)).ticks
    texts = [label for _, label in ticks]
    assert len(texts) >= 2 and len(set(texts)) == len(texts), texts
    assert texts[0] == "0" and all("e" not in text for text in texts), texts
