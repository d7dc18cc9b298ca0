"""The meter check's detector: over-limit export timed, integrated and told, on known series."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.metering.overshoot import OvershootDetector, Reading, Step, area_above, threshold_kw

MARGIN = 0.2
SECONDS = 60.0


def feed(series: list[tuple[float, float, float | None, bool]]) -> list[Step]:
    detector = OvershootDetector()
    return [
        detector.add(Reading(at, export, limit, counted), MARGIN, SECONDS)
        for at, export, limit, counted in series
    ]


def every(step: float, until: float, export: object, limit: float = 5.0) -> list[tuple]:
    """Reads every `step` seconds; `export` is a number or a function of the time."""
    times = [n * step for n in range(int(until / step) + 1)]
    value = export if callable(export) else (lambda _t: export)
    return [(t, value(t), limit, True) for t in times]


def test_the_threshold_is_the_margin_or_five_percent_of_the_limit() -> None:
    assert threshold_kw(3.0, 0.2) == pytest.approx(3.2)
    assert threshold_kw(10.0, 0.2) == pytest.approx(10.5)  # 5 % of 10 kW is more than 0.2


def test_a_two_kw_overshoot_starts_after_overshoot_seconds_and_counts_its_energy() -> None:
    steps = feed(every(5, 300, lambda t: 7.0 if 20 <= t < 200 else 4.0))
    started = [(n, s.started) for n, s in enumerate(steps) if s.started]
    ((index, event),) = started
    assert event is not None and event.since == 20 and index * 5 == 80  # 60 s after 20 s
    assert event.max_kw == 7.0 and event.limit_kw == 5.0
    ended = [s.ended for s in steps if s.ended]
    assert len(ended) == 1 and ended[0] is not None and ended[0].until == 200
    kwh = sum(s.kwh_over for s in steps)
    # 1.75 kW above the 5.25 kW threshold from its first read over (20 s) to its last (195 s),
    # and the ramp down to the next read (linear, above the line for 5 x 1.75 / 3 s)
    ramp = 1.75 * (5 * 1.75 / 3) / 2
    assert kwh == pytest.approx((1.75 * 175 + ramp) / 3600, rel=1e-6)
    assert sum(s.seconds_over for s in steps) == pytest.approx(180, abs=5)


def test_an_excess_shorter_than_overshoot_seconds_is_the_controller_settling() -> None:
    steps = feed(every(5, 300, lambda t: 9.0 if 100 <= t < 150 else 5.0))
    assert not any(s.started or s.ended for s in steps)
    assert sum(s.kwh_over for s in steps) == 0 and sum(s.seconds_over for s in steps) == 0


def test_hovering_three_percent_around_the_limit_is_never_an_overshoot() -> None:
    steps = feed(every(5, 86400, lambda t: 5.0 * (1 + 0.03 * math.sin(t / 7))))
    assert not any(s.started for s in steps)


def test_a_short_dip_inside_an_overshoot_does_not_end_it() -> None:
    steps = feed(every(5, 400, lambda t: 4.0 if 150 <= t < 180 or t >= 300 else 8.0))
    assert sum(1 for s in steps if s.started) == 1
    (ended,) = [s.ended for s in steps if s.ended]
    assert ended is not None and ended.since == 0 and ended.until == 300
    assert sum(s.seconds_over for s in steps) == pytest.approx(300, abs=5)


def test_reads_in_another_mode_or_missing_count_neither_way() -> None:
    series = every(5, 200, 8.0)
    holes = [(t, e, lim, not 100 <= t < 140) for t, e, lim, _ in series]
    steps = feed(holes)
    (index,) = [n for n, s in enumerate(steps) if s.started]
    assert index * 5 == 60  # the run from 0 s was not broken by the reads left out
    assert not feed([(0.0, 9.0, None, True), (5.0, 9.0, 5.0, False)])[0].started


@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 120, allow_nan=False),
            st.floats(-20, 30, allow_nan=False),
            st.one_of(st.none(), st.floats(0, 20, allow_nan=False)),
            st.booleans(),
        ),
        max_size=200,
    )
)
def test_any_series_gives_sane_events_and_never_a_crash(
    raw: list[tuple[float, float, float | None, bool]],
) -> None:
    at, series = 0.0, []
    for gap, export, limit, counted in raw:
        at += gap
        series.append((at, export, limit, counted))
    steps = feed(series)
    assert all(s.kwh_over >= 0 and s.seconds_over >= 0 for s in steps)
    open_event = False
    for step in steps:
        if step.started:
            assert not open_event
            open_event = True
        if step.ended:
            assert open_event and step.ended.until is not None
            assert step.ended.since < step.ended.until
            open_event = False
    if all(lim is None or e <= threshold_kw(lim, MARGIN) for _, e, lim, _ in series):
        assert not any(s.started for s in steps) and sum(s.kwh_over for s in steps) == 0


@given(
    st.floats(-5, 5, allow_nan=False),
    st.floats(-5, 5, allow_nan=False),
    st.floats(0.1, 600, allow_nan=False),
)
def test_the_area_above_a_line_matches_a_fine_sum(a: float, b: float, seconds: float) -> None:
    steps = 20_000
    fine = sum(max(0.0, a + (b - a) * (n + 0.5) / steps) * seconds / steps for n in range(steps))
    assert area_above(a, b, 0.0, 0.0, seconds) == pytest.approx(fine, rel=1e-3, abs=1e-6)
