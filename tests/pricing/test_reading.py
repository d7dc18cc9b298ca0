"""Prices from sensor attributes: every format, 15/60-minute slots, DST days, junk never raises."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.pricing.reading import (
    MAX_ITEMS,
    SERVICE_SHAPES,
    SOURCES,
    PriceReading,
    PriceSlot,
    ServiceForecast,
    keep_forecast,
    merge_forecasts,
    parse_price,
    read_price,
    read_service,
    with_forecast,
    zone_named,
)

OSLO = ZoneInfo("Europe/Oslo")
BERLIN = ZoneInfo("Europe/Berlin")
SUMMER = date(2025, 6, 10)
SPRING_DST = date(2025, 3, 30)  # 23 hours in Europe
AUTUMN_DST = date(2025, 10, 26)  # 25 hours in Europe
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def midnight(day: date, tz: tzinfo = OSLO) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def starts(day: date, step: timedelta, tz: tzinfo = OSLO) -> list[datetime]:
    """Every slot start of the local day, stepping in real time (so DST days come out right)."""
    moment, end = midnight(day, tz).astimezone(UTC), midnight(day + timedelta(days=1), tz)
    found = []
    while moment < end:
        found.append(moment.astimezone(tz))
        moment += step
    return found


def price(index: int) -> float:
    return round(0.1 + index / 1000, 4)


def raw(day: date, step: timedelta, tz: tzinfo = OSLO, *, text: bool = True) -> list[Any]:
    """A Nord Pool raw list: start, end (ISO text or local datetimes) and value."""
    bounds = [(start, later(start, step)) for start in starts(day, step, tz)]
    return [
        {
            "start": start.isoformat() if text else start,
            "end": end.isoformat() if text else end,
            "value": price(i),
        }
        for i, (start, end) in enumerate(bounds)
    ]


def later(moment: datetime, step: timedelta) -> datetime:
    """`moment + step` in real time: adding to a ZoneInfo datetime adds wall-clock time."""
    return (moment.astimezone(UTC) + step).astimezone(moment.tzinfo)


def stamped(day: date, step: timedelta, time_key: str, value_key: str, tz: tzinfo) -> list[Any]:
    return [
        {time_key: str(start), value_key: price(i)} for i, start in enumerate(starts(day, step, tz))
    ]


def at(day: date, hour: int, minute: int = 0, tz: tzinfo = OSLO, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, fold=fold), tzinfo=tz)


def check_shape(reading: PriceReading) -> None:
    assert reading.source in SOURCES
    for slot in reading.slots:
        assert slot.start.utcoffset() is not None
        assert slot.end > slot.start
    for a, b in zip(reading.slots, reading.slots[1:], strict=False):
        assert a.end <= b.start


# Nord Pool: raw lists


def test_nordpool_raw_hourly_today_and_tomorrow() -> None:
    attributes = {
        "raw_today": raw(SUMMER, HOUR),
        "raw_tomorrow": raw(SUMMER + timedelta(days=1), HOUR),
        "today": [9.0] * 24,
    }
    reading = read_price("0.5", attributes, at(SUMMER, 13, 20), OSLO)
    assert reading.source == "nordpool_raw"
    assert len(reading.slots) == 48
    assert reading.slots[0].start == midnight(SUMMER)
    assert reading.slots[-1].end == midnight(SUMMER + timedelta(days=2))
    assert reading.current == price(13)
    check_shape(reading)


def test_nordpool_raw_quarter_hours_as_datetimes() -> None:
    attributes = {"raw_today": raw(SUMMER, QUARTER, text=False), "raw_tomorrow": []}
    reading = read_price("0.5", attributes, at(SUMMER, 13, 20), OSLO)
    assert (reading.source, len(reading.slots)) == ("nordpool_raw", 96)
    assert reading.current == price(13 * 4 + 1)
    assert {slot.end - slot.start for slot in reading.slots} == {QUARTER}


def test_nordpool_raw_junk_falls_back_to_the_lists() -> None:
    attributes = {"raw_today": [{"start": "x", "end": None, "value": 1}], "today": [0.3] * 24}
    reading = read_price("0.5", attributes, at(SUMMER, 1), OSLO)
    assert (reading.source, reading.current, len(reading.slots)) == ("nordpool_list", 0.3, 24)


@pytest.mark.parametrize(
    ("day", "step", "count"),
    [
        (SPRING_DST, HOUR, 23),
        (SPRING_DST, QUARTER, 92),
        (AUTUMN_DST, HOUR, 25),
        (AUTUMN_DST, QUARTER, 100),
    ],
)
def test_nordpool_raw_on_dst_days(day: date, step: timedelta, count: int) -> None:
    attributes = {"raw_today": raw(day, step), "raw_tomorrow": None}
    reading = read_price(None, attributes, at(day, 12), OSLO)
    assert len(reading.slots) == count
    assert reading.slots[-1].end - reading.slots[0].start == (count * step)
    check_shape(reading)


def test_nordpool_raw_repeated_hour_gives_the_second_price() -> None:
    reading = read_price(None, {"raw_today": raw(AUTUMN_DST, HOUR)}, at(AUTUMN_DST, 2, 30), OSLO)
    first, second = (
        reading.slot_at(at(AUTUMN_DST, 2, 30)),
        reading.slot_at(at(AUTUMN_DST, 2, 30, fold=1)),
    )
    assert first is not None and second is not None
    assert (first.price, second.price) == (price(2), price(3))


# Nord Pool: bare lists from local midnight


@pytest.mark.parametrize("tomorrow", [None, [], "", "missing"])
@pytest.mark.parametrize(("count", "step"), [(24, HOUR), (96, QUARTER)])
def test_nordpool_list_with_tomorrow_missing(count: int, step: timedelta, tomorrow: object) -> None:
    attributes: dict[str, Any] = {"today": [price(i) for i in range(count)]}
    if tomorrow != "missing":
        attributes["tomorrow"] = tomorrow
    reading = read_price("0.5", attributes, at(SUMMER, 13, 20), OSLO)
    assert (reading.source, len(reading.slots)) == ("nordpool_list", count)
    assert reading.slots[0].start == midnight(SUMMER)
    assert reading.slots[-1].end == midnight(SUMMER + timedelta(days=1))
    assert {slot.end - slot.start for slot in reading.slots} == {step}
    assert reading.current == price(13 * count // 24 + (1 if step == QUARTER else 0))


def test_nordpool_list_slot_length_is_detected_per_list() -> None:
    attributes = {"today": [1.0] * 24, "tomorrow": ["2.5"] * 96}
    reading = read_price(None, attributes, at(SUMMER, 23, 59), OSLO)
    lengths = [slot.end - slot.start for slot in reading.slots]
    assert lengths == [HOUR] * 24 + [QUARTER] * 96
    assert reading.slots[24].start == midnight(SUMMER + timedelta(days=1))
    assert (reading.current, reading.slots[-1].price) == (1.0, 2.5)


@pytest.mark.parametrize(
    ("day", "count", "step"),
    [
        (SPRING_DST, 23, HOUR),
        (SPRING_DST, 92, QUARTER),
        (AUTUMN_DST, 25, HOUR),
        (AUTUMN_DST, 100, QUARTER),
    ],
)
def test_nordpool_list_on_dst_days(day: date, count: int, step: timedelta) -> None:
    reading = read_price(None, {"today": [price(i) for i in range(count)]}, at(day, 12), OSLO)
    # In the repeated hour a local datetime never equals one in another zone (PEP 495): use UTC.
    assert [slot.start for slot in reading.slots] == [s.astimezone(UTC) for s in starts(day, step)]
    assert reading.slots[-1].end == midnight(day + timedelta(days=1))
    assert reading.current == price(count * 11 // 23 if day == SPRING_DST else count * 13 // 25)


def test_nordpool_list_dst_hours_in_local_time() -> None:
    spring = read_price(None, {"today": [price(i) for i in range(23)]}, at(SPRING_DST, 12), OSLO)
    assert spring.slots[2].start == at(SPRING_DST, 3)  # 02:00 does not exist
    autumn = read_price(None, {"today": [price(i) for i in range(25)]}, at(AUTUMN_DST, 12), OSLO)
    assert autumn.slots[2].start == at(AUTUMN_DST, 2).astimezone(UTC)
    assert autumn.slots[3].start == at(AUTUMN_DST, 2, fold=1).astimezone(UTC)
    assert autumn.slot_at(at(AUTUMN_DST, 2, 10, fold=1)) == autumn.slots[3]


def test_nordpool_list_tomorrow_is_a_dst_day() -> None:
    attributes = {"today": [1.0] * 24, "tomorrow": [2.0] * 25}
    reading = read_price(None, attributes, at(AUTUMN_DST - timedelta(days=1), 20), OSLO)
    assert len(reading.slots) == 49
    assert reading.slots[-1].end == midnight(AUTUMN_DST + timedelta(days=1))


@pytest.mark.parametrize(
    ("day", "count"),
    [
        (SPRING_DST, 24),
        (SPRING_DST, 96),
        (AUTUMN_DST, 24),
        (AUTUMN_DST, 96),
        (SUMMER, 23),
        (SUMMER, 48),
        (SUMMER, 97),
        (SUMMER, 1),
    ],
)
def test_nordpool_list_that_does_not_fit_the_day_is_ignored(day: date, count: int) -> None:
    reading = read_price("0.7", {"today": [0.1] * count}, at(day, 12), OSLO)
    assert (reading.source, reading.slots, reading.current) == ("state", (), 0.7)


def test_nordpool_list_keeps_the_good_values_of_a_list() -> None:
    values: list[Any] = [price(i) for i in range(24)]
    values[5], values[6], values[7] = None, "n/a", float("inf")
    reading = read_price("0.9", {"today": values}, at(SUMMER, 6, 30), OSLO)
    assert len(reading.slots) == 21
    assert reading.current == 0.9  # no slot covers 06:30: the state
    assert reading.next_boundary(at(SUMMER, 6, 30)) == at(SUMMER, 8)


# ENTSO-e, Octopus, Tibber


def test_entsoe_quarter_today_hourly_tomorrow() -> None:
    attributes = {
        "prices_today": stamped(SUMMER, QUARTER, "time", "price", BERLIN),
        "prices_tomorrow": stamped(SUMMER + timedelta(days=1), HOUR, "time", "price", BERLIN),
        "prices": stamped(SUMMER, QUARTER, "time", "price", BERLIN),
    }
    assert attributes["prices_today"][0]["time"] == "2025-06-10 00:00:00+02:00"
    reading = read_price("1", attributes, at(SUMMER, 10, 50, BERLIN), BERLIN)
    assert (reading.source, len(reading.slots)) == ("entsoe", 96 + 24)
    assert reading.current == price(43)
    assert reading.slots[95].end == midnight(SUMMER + timedelta(days=1), BERLIN)
    assert reading.slots[-1].end == midnight(SUMMER + timedelta(days=2), BERLIN)
    check_shape(reading)


def test_entsoe_a_bad_item_leaves_a_hole() -> None:
    items = stamped(SUMMER, HOUR, "time", "price", BERLIN)
    items[5]["price"] = "unavailable"
    items[9]["time"] = "25:00"
    reading = read_price("0.2", {"prices": items}, at(SUMMER, 5, 30, BERLIN), BERLIN)
    assert len(reading.slots) == 22
    assert reading.slot_at(at(SUMMER, 5, 30, BERLIN)) is None
    # The lists sit on ENTSO-e's sensor of the day's average: its state is never the price now.
    assert (reading.current, reading.state) == (None, None)
    slot = reading.slot_at(at(SUMMER, 4, 30, BERLIN))
    assert slot is not None and slot.end == at(SUMMER, 5, tz=BERLIN)


def test_entsoe_dst_day_in_berlin() -> None:
    items = stamped(AUTUMN_DST, QUARTER, "time", "price", BERLIN)
    reading = read_price(
        None, {"prices_today": items}, at(AUTUMN_DST, 2, 20, BERLIN, fold=1), BERLIN
    )
    assert len(reading.slots) == 100
    assert reading.current == price(4 * 3 + 1)


def test_octopus_rates() -> None:
    first = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    rates = [
        {
            "start": (first + i * timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "end": (first + (i + 1) * timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "value_inc_vat": str(price(i)),
            "is_capped": False,
        }
        for i in range(48)
    ]
    reading = read_price("0.3", {"rates": rates}, datetime(2025, 6, 10, 1, 10, tzinfo=UTC), OSLO)
    assert (reading.source, len(reading.slots), reading.current) == ("octopus", 48, price(2))


@pytest.mark.parametrize("key", ["today", "prices", "price_info"])
def test_tibber_list_under_any_key(key: str) -> None:
    items = [
        {"startsAt": start.isoformat(timespec="milliseconds"), "total": price(i), "level": "CHEAP"}
        for i, start in enumerate(starts(SUMMER, QUARTER))
    ]
    reading = read_price(None, {key: items, "tomorrow": []}, at(SUMMER, 0, 50), OSLO)
    assert (reading.source, len(reading.slots), reading.current) == ("tibber", 96, price(3))
    assert reading.slots[-1].end == midnight(SUMMER + timedelta(days=1))


def test_tibber_price_info_mapping_with_today_and_tomorrow() -> None:
    info = {
        "today": stamped(SUMMER, HOUR, "startsAt", "total", OSLO),
        "tomorrow": stamped(SUMMER + timedelta(days=1), HOUR, "startsAt", "total", OSLO),
        "current": {"total": 5},
    }
    reading = read_price(None, {"price_info": info}, at(SUMMER, 13, 5), OSLO)
    assert (reading.source, len(reading.slots), reading.current) == ("tibber", 48, price(13))


def test_a_one_item_list_borrows_the_spacing_of_the_other_lists() -> None:
    tomorrow = stamped(SUMMER + timedelta(days=1), HOUR, "startsAt", "total", OSLO)[:1]
    attributes = {"today": stamped(SUMMER, HOUR, "startsAt", "total", OSLO), "tomorrow": tomorrow}
    reading = read_price(None, attributes, at(SUMMER, 1), OSLO)
    assert len(reading.slots) == 25
    assert reading.slots[-1].end - reading.slots[-1].start == HOUR
    lonely = read_price("0.4", {"prices": tomorrow}, at(SUMMER, 1), OSLO)
    assert (lonely.source, lonely.current) == ("state", 0.4)


def test_timestamps_without_offset_are_local() -> None:
    items = [{"time": f"2025-06-10T{h:02}:00:00", "price": h} for h in range(24)]
    reading = read_price(None, {"prices": items}, at(SUMMER, 7, 59), OSLO)
    assert reading.slots[0].start == midnight(SUMMER)
    assert reading.current == 7.0


# Merging, current, boundaries


def test_duplicates_and_overlaps_are_dropped() -> None:
    today = raw(SUMMER, HOUR)
    overlapping = {
        "start": at(SUMMER, 3, 30).isoformat(),
        "end": at(SUMMER, 5).isoformat(),
        "value": 9,
    }
    reading = read_price(
        None, {"raw_today": today, "raw_tomorrow": [*today, overlapping]}, at(SUMMER, 3, 40), OSLO
    )
    assert len(reading.slots) == 25
    assert reading.current == 9.0
    assert reading.slot_at(at(SUMMER, 3, 10)) == PriceSlot(
        at(SUMMER, 3).astimezone(UTC), at(SUMMER, 3, 30).astimezone(UTC), price(3)
    )
    check_shape(reading)


def test_same_start_keeps_the_shorter_slot() -> None:
    hourly = raw(SUMMER, HOUR)
    quarters = raw(SUMMER, QUARTER)
    reading = read_price(None, {"raw_today": hourly, "raw_tomorrow": quarters}, at(SUMMER, 1), OSLO)
    assert len(reading.slots) == 96
    assert {slot.end - slot.start for slot in reading.slots} == {QUARTER}


def test_current_from_the_state_when_no_slot_covers_now() -> None:
    attributes = {"raw_today": raw(SUMMER, HOUR)}
    later = read_price("0.42", attributes, at(SUMMER + timedelta(days=3), 12), OSLO)
    assert (later.source, later.current, len(later.slots)) == ("nordpool_raw", 0.42, 24)
    assert read_price("unavailable", attributes, at(SUMMER, 12), OSLO).current == price(12)
    assert read_price("unavailable", {}, at(SUMMER, 12), OSLO).current is None


def test_now_in_another_zone_or_naive() -> None:
    attributes = {"raw_today": raw(SUMMER, HOUR)}
    utc_now = at(SUMMER, 13, 20).astimezone(UTC)
    assert read_price(None, attributes, utc_now, OSLO).current == price(13)
    naive = datetime(2025, 6, 10, 13, 20)
    assert read_price(None, attributes, naive, OSLO).current == price(13)
    assert read_price(None, {"today": [1.0] * 24}, naive, OSLO).current == 1.0


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("0.12", 0.12),
        (" 1.5\n", 1.5),
        (3, 3.0),
        (-0.5, -0.5),
        ("-0.5", -0.5),
        ("1e-05", 1e-05),
        (".5", 0.5),
        ("unknown", None),
        ("unavailable", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("-Infinity", None),
        (float("nan"), None),
        (float("inf"), None),
        ("1e999", None),
        (10**400, None),
        (True, None),
        (None, None),
        ("1,5", 1.5),
        ("-0,05", -0.05),
        ("\u22120.05", -0.05),
        ("\u22120,05", -0.05),
        (" \u22121e-05 ", -1e-05),
        ("\u2212", None),
        ("--1", None),
        ("1,2,3", None),
        ("1.234,5", None),
        ("1_000", None),
        ("0x10", None),
        ("١٢", None),
        ("\uff11\uff12", None),
        ("12 €", None),
        ([1], None),
        ({"price": 1}, None),
    ],
)
def test_state_values(state: object, expected: float | None) -> None:
    assert parse_price(state) == expected
    reading = read_price(state, {}, at(SUMMER, 12), OSLO)
    assert (reading.current, reading.slots, reading.source) == (expected, (), "state")
    assert reading.state == expected


def test_slot_at_and_next_boundary() -> None:
    items = stamped(SUMMER, HOUR, "time", "price", OSLO)
    del items[5]
    reading = read_price(None, {"prices": items}, at(SUMMER, 0), OSLO)
    assert reading.slot_at(at(SUMMER, 4)) == reading.slots[4]  # start is inside
    assert reading.slot_at(at(SUMMER, 5)) is None  # end is outside; 05-06 is a hole
    assert reading.slot_at(at(SUMMER, 0) - timedelta(microseconds=1)) is None
    assert reading.slot_at(datetime(2025, 6, 10, 4)) is None  # naive
    assert reading.next_boundary(at(SUMMER, 0) - timedelta(hours=3)) == at(SUMMER, 0)
    assert reading.next_boundary(at(SUMMER, 0)) == at(SUMMER, 1)  # strictly after
    assert reading.next_boundary(at(SUMMER, 4, 59)) == at(SUMMER, 5)
    assert reading.next_boundary(at(SUMMER, 5, 10)) == at(SUMMER, 6)
    assert reading.next_boundary(at(SUMMER, 23, 30).astimezone(UTC)) == at(
        SUMMER + timedelta(days=1), 0
    )
    assert reading.next_boundary(midnight(SUMMER + timedelta(days=1))) is None
    assert reading.next_boundary(datetime(2025, 6, 10, 4)) is None
    empty = read_price("1", None, at(SUMMER, 0), OSLO)
    assert (empty.slot_at(at(SUMMER, 0)), empty.next_boundary(at(SUMMER, 0))) == (None, None)


# Junk


GARBAGE: list[Any] = [
    None,
    0,
    3.5,
    "raw_today",
    b"bytes",
    [],
    [1, 2, 3],
    {},
    {"raw_today": "nope", "today": "also", "prices": 5, "rates": {"a": 1}},
    {"raw_today": [None, 1, "x", [], {}], "raw_tomorrow": {"start": 1}},
    {"raw_today": [{"start": 1, "end": 2, "value": 3}]},
    {
        "raw_today": [
            {"start": "2025-06-10T01:00+02:00", "end": "2025-06-10T00:00+02:00", "value": 1}
        ]
    },
    {
        "raw_today": [
            {"start": "2025-06-10T00:00+02:00", "end": "2025-06-10T01:00+02:00", "value": True}
        ]
    },
    {
        "raw_today": [
            {"start": "2025-06-10T00:00+02:00", "end": "2025-06-10T01:00+02:00", "value": "1e400"}
        ]
    },
    {"today": [None] * 24, "tomorrow": ["x"] * 96},
    {"today": [True] * 24},
    {"today": ["nan"] * 24, "tomorrow": [float("inf")] * 24},
    {"today": [[1.0]] * 24},
    {"today": [{"a": 1}] * 24},
    {"prices": [[1, 2]], "prices_today": [{"time": None, "price": 1}] * 3},
    {"prices_today": [{"time": "2025-06-10T00:00+02:00", "price": 1}] * 5},
    {"rates": [{"start": "2025-13-01T00:00Z", "end": "2025-13-01T00:30Z", "value_inc_vat": 1}]},
    {"rates": [{"start": "0001-01-01T00:00", "end": "0001-01-01T00:30", "value_inc_vat": 1}]},
    {"price_info": {"today": {"startsAt": "2025-06-10T00:00+02:00", "total": 1}}},
    {"today": [{"startsAt": "2025-06-10T00:00+02:00" * 10, "total": 1}] * 3},
    {"today": [{"startsAt": "\uff12\uff10\uff12\uff15-06-10T00:00+02:00", "total": 1}] * 3},
    {"raw_today": [[[[[[[[[[]]]]]]]]]], "nested": {"a": {"b": {"c": [None]}}}},
    {1: [1], None: None, (1, 2): "tuple key"},
    {"today": [0.1] * (MAX_ITEMS + 1)},
    {"today": [0.1] * 1_000_000, "raw_today": [{"start": "x"}] * 1_000_000},
    {"prices": [{"time": "2025-06-10T00:00+02:00", "price": 1}] * (MAX_ITEMS + 1)},
]


@pytest.mark.parametrize("attributes", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_attributes_give_the_current_price_only(attributes: object) -> None:
    reading = read_price("0.25", attributes, at(SUMMER, 12), OSLO)
    assert (reading.current, reading.slots, reading.source) == (0.25, (), "state")


@pytest.mark.parametrize("now", [None, "now", datetime.max, datetime.min.replace(tzinfo=UTC)])
def test_junk_now_does_not_raise(now: Any) -> None:
    attributes = {"today": [1.0] * 24, "raw_today": raw(SUMMER, HOUR)}
    reading = read_price("2", attributes, now, OSLO)
    check_shape(reading)
    assert reading.source == "nordpool_raw"


def test_huge_valid_raw_list_within_limit() -> None:
    first = midnight(SUMMER).astimezone(UTC)
    items = [
        {"start": first + i * QUARTER, "end": first + (i + 1) * QUARTER, "value": i}
        for i in range(MAX_ITEMS)
    ]
    reading = read_price(None, {"raw_today": items}, first, OSLO)
    assert (len(reading.slots), reading.current) == (MAX_ITEMS, 0.0)


# Properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=40,
)
KEYS = st.sampled_from(
    [
        "raw_today",
        "raw_tomorrow",
        "today",
        "tomorrow",
        "prices_today",
        "prices_tomorrow",
        "prices",
        "rates",
        "price_info",
        "data",
        "forecasts",
        "forecast",
    ]
)
FORMS = [
    ("start", "end", "value"),
    ("time", "price"),
    ("start", "end", "value_inc_vat"),
    ("startsAt", "total"),
    ("start_time", "end_time", "price_per_kwh"),
    ("start_time", "end_time", "price_ct_per_kwh"),
    ("start_time", "end_time", "per_kwh"),
    ("hour", "price"),
]
VALUE_KEYS = {
    "value",
    "price",
    "value_inc_vat",
    "total",
    "price_per_kwh",
    "price_ct_per_kwh",
    "per_kwh",
}
AWARE: st.SearchStrategy[tzinfo] = st.sampled_from([OSLO, BERLIN, UTC])


def around(first: datetime) -> st.SearchStrategy[datetime]:
    """Naive and aware datetimes in the two days from `first`."""
    last = first + timedelta(days=2)
    naive = st.datetimes(min_value=first, max_value=last)
    return naive | st.datetimes(min_value=first, max_value=last, timezones=AWARE)


# Two DST weekends: overlapping and repeated local times are the hard cases.
STAMPS = st.sampled_from([datetime(2025, 3, 29), datetime(2025, 10, 25)]).flatmap(around)
TIMES = STAMPS.map(lambda d: d.isoformat()) | STAMPS.map(str) | STAMPS | JSON
VALUES = st.floats() | st.integers() | st.sampled_from(["0.1", "-2", "x", "nan", "1e400"]) | JSON
ITEMS = st.sampled_from(FORMS).flatmap(
    lambda keys: st.fixed_dictionaries({k: VALUES if k in VALUE_KEYS else TIMES for k in keys})
)
LISTS = (
    st.lists(ITEMS | JSON, max_size=30)
    | st.lists(st.floats() | st.none(), min_size=23, max_size=25)
    | st.lists(st.floats() | st.none(), min_size=92, max_size=100)
)
PLAUSIBLE = st.dictionaries(
    KEYS,
    LISTS | st.dictionaries(st.sampled_from(["today", "tomorrow", "prices"]), LISTS),
    max_size=5,
)
ZONES = st.sampled_from([OSLO, BERLIN, UTC, ZoneInfo("Australia/Lord_Howe")])
NOWS = STAMPS.filter(lambda d: d.tzinfo is not None)


def sound(reading: PriceReading, now: datetime) -> None:
    check_shape(reading)
    if not reading.slots:
        assert reading.source == "state"
    slot = reading.slot_at(now)
    assert slot is None or reading.current == slot.price
    boundary = reading.next_boundary(now)
    assert boundary is None or boundary > now
    assert all(math.isfinite(slot.price) for slot in reading.slots)


@given(state=JSON, attributes=JSON, now=NOWS, tz=ZONES)
def test_any_json_never_raises(
    state: object, attributes: object, now: datetime, tz: tzinfo
) -> None:
    sound(read_price(state, attributes, now, tz), now)


@given(state=JSON, attributes=PLAUSIBLE, now=NOWS, tz=ZONES)
def test_almost_valid_attributes_never_raise(
    state: object, attributes: dict[str, Any], now: datetime, tz: tzinfo
) -> None:
    sound(read_price(state, attributes, now, tz), now)


@given(
    data=st.data(),
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    step=st.sampled_from([QUARTER, HOUR]),
)
def test_nordpool_lists_always_cover_the_local_day(
    data: st.DataObject, day: date, step: timedelta
) -> None:
    """A list as long as the local day (23, 24 or 25 hours) has is read as that day's slots."""
    day_length = midnight(day + timedelta(days=1), BERLIN).astimezone(UTC) - midnight(day, BERLIN)
    count = day_length // step
    values = data.draw(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False) | st.none(),
            min_size=count,
            max_size=count,
        ).filter(lambda drawn: any(v is not None for v in drawn))
    )
    reading = read_price(None, {"today": values}, at(day, 12), BERLIN)
    assert reading.source == "nordpool_list"
    assert [slot.price for slot in reading.slots] == [v for v in values if v is not None]


# Fixtures written from each integration's own code (the function names its source); the
# parser is checked against them, never the other way round.

LONDON = ZoneInfo("Europe/London")
SPRING_2026 = date(2026, 3, 29)  # 23 hours in Oslo and London
AUTUMN_2026 = date(2026, 10, 25)  # 25 hours in Oslo and London
DST_DAYS = [
    (SPRING_2026, OSLO, 92),
    (AUTUMN_2026, OSLO, 100),
    (SPRING_2026, LONDON, 92),
    (AUTUMN_2026, LONDON, 100),
]


def negative_midday(index: int, count: int) -> float:
    """A day's price per kWh: negative over the middle sixth of the day."""
    return round(-0.03 - index / 10000 if count * 5 // 12 <= index < count * 7 // 12 else 0.1, 5)


def epex_spot(day: date, step: timedelta, tz: tzinfo, *, old: bool = False) -> dict[str, Any]:
    """mampfes/ha_epex_spot sensor.py: `data` items {start_time, end_time, price_per_kwh} with
    isoformat() times; before Sept 2024 {..., price_eur_per_mwh, price_ct_per_kwh}."""
    bounds = [(start, later(start, step)) for start in starts(day, step, tz)]
    data = []
    for index, (start, end) in enumerate(bounds):
        price = negative_midday(index, len(bounds))
        item: dict[str, Any] = {"start_time": start.isoformat(), "end_time": end.isoformat()}
        if old:
            item |= {"price_eur_per_mwh": price * 1000, "price_ct_per_kwh": price * 100}
        else:
            item["price_per_kwh"] = price
        data.append(item)
    return {"data": data, "unit_of_measurement": "ct/kWh" if old else "EUR/kWh"}


def amber_interval(start: datetime, minutes: int, cents: float, feed_in: bool) -> dict[str, Any]:
    """homeassistant/components/amberelectric (sensor.py AmberForecastSensor and services.py
    get_forecasts): one interval, cents to dollars rounded to 2 places, feed-in negated;
    Amber's intervals start one second past the minute."""
    dollars = round(cents / 100, 2)
    return {
        "duration": minutes,
        "date": start.date().isoformat(),
        "nem_date": (start + timedelta(minutes=minutes)).astimezone(BRISBANE).isoformat(),
        "per_kwh": dollars * -1 if feed_in else dollars,
        "spot_per_kwh": round(cents / 200, 2),
        "start_time": (start + timedelta(seconds=1)).isoformat(),
        "end_time": (start + timedelta(minutes=minutes)).isoformat(),
        "renewables": 41,
        "spike_status": "none",
        "descriptor": "negative" if (cents > 0) == feed_in else "low",
    }


BRISBANE = ZoneInfo("Australia/Brisbane")


def amber_forecasts(first: datetime, cents: list[float], feed_in: bool = False) -> list[Any]:
    return [
        amber_interval(first + n * timedelta(minutes=5), 5, price, feed_in)
        for n, price in enumerate(cents)
    ]


def eds_items(day: date, tz: tzinfo, prices: list[float]) -> list[dict[str, Any]]:
    """MTrab/energidataservice sensor.py _add_raw: {"hour": local datetime, "price"}; Home
    Assistant writes the datetime as ISO text."""
    hours = starts(day, HOUR, tz)
    return [
        {"hour": hour.isoformat(), "price": price}
        for hour, price in zip(hours, prices, strict=True)
    ]


def nordpool_service(day: date, tz: tzinfo, areas: tuple[str, ...] = ("SE3",)) -> Any:
    """homeassistant/components/nordpool/services.py: {area: [{start, end, price}]} with
    pynordpool's UTC datetimes as isoformat() and the price per MWh."""
    bounds = [
        (s.astimezone(UTC), later(s, QUARTER).astimezone(UTC)) for s in starts(day, QUARTER, tz)
    ]
    return {
        area: [
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "price": negative_midday(i, len(bounds)) * 1000 + offset,
            }
            for i, (start, end) in enumerate(bounds)
        ]
        for offset, area in enumerate(areas)
    }


def tibber_service(day: date, tz: tzinfo, homes: tuple[str, ...] = ("Home",)) -> Any:
    """homeassistant/components/tibber/services.py: {"prices": {home name: [{start_time,
    price, level}]}}, start_time being Tibber's own startsAt text (milliseconds, offset)."""
    hours = starts(day, HOUR, tz)
    items = [
        {
            "start_time": hour.isoformat(timespec="milliseconds"),
            "price": negative_midday(i, len(hours)),
            "level": "VERY_CHEAP",
        }
        for i, hour in enumerate(hours)
    ]
    return {"prices": {home: items for home in homes}}


def energyzero_service(day: date, tz: tzinfo, step: timedelta = HOUR) -> Any:
    """homeassistant/components/energyzero (and easyenergy) services.py: {"prices":
    [{"timestamp": str(UTC datetime), "price"}]}."""
    moments = starts(day, step, tz)
    return {
        "prices": [
            {"timestamp": str(moment.astimezone(UTC)), "price": negative_midday(i, len(moments))}
            for i, moment in enumerate(moments)
        ]
    }


# EPEX Spot


@pytest.mark.parametrize("old", [False, True])
def test_epex_spot_a_96_slot_day_with_negative_prices(old: bool) -> None:
    attributes = epex_spot(SUMMER, QUARTER, BERLIN, old=old)
    now = at(SUMMER, 12, 5, BERLIN)
    state = "-3.5" if old else "-0.035"  # the state: the price now in the sensor's unit
    reading = read_price(state, attributes, now, BERLIN)
    assert (reading.source, len(reading.slots)) == ("epex_spot", 96)
    assert {slot.end - slot.start for slot in reading.slots} == {QUARTER}
    slot = reading.slot_at(now)
    assert slot is not None and slot.price < 0
    expected = negative_midday(48, 96) * (100 if old else 1)
    assert slot.price == pytest.approx(expected)
    assert reading.state == parse_price(state)
    assert sum(slot.price < 0 for slot in reading.slots) == 16


# Amber


def test_amber_forecast_sensor_state_is_the_next_interval_not_now() -> None:
    first = datetime(2026, 6, 10, 2, 5, tzinfo=UTC)  # the next interval; now is in the one before
    attributes = {
        "forecasts": amber_forecasts(first, [12.3, -4.0, -5.0, 8.0]),
        "channel_type": "general",
    }
    now = datetime(2026, 6, 10, 2, 3, 20, tzinfo=UTC)
    reading = read_price("0.12", attributes, now, UTC)
    assert (reading.source, reading.current, reading.state) == ("amber", None, None)
    assert [slot.start for slot in reading.slots] == [
        first + n * timedelta(minutes=5) for n in range(4)
    ]
    assert all(a.end == b.start for a, b in pairwise(reading.slots))  # :01 starts leave no hole
    inside = read_price("0.12", attributes, first + timedelta(minutes=5, seconds=0.5), UTC)
    assert inside.current == -0.04  # the slot that covers now, even in its first second


def test_amber_feed_in_is_negated() -> None:
    first = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
    attributes = {"forecasts": amber_forecasts(first, [10.0, -2.0], feed_in=True)}
    reading = read_price("-0.10", attributes, first + timedelta(minutes=1), UTC)
    assert [slot.price for slot in reading.slots] == [-0.1, 0.02]
    assert reading.current == -0.1


# Tibber custom integrations: today and tomorrow as mappings


def test_tibber_today_as_a_mapping_with_prices() -> None:
    today = stamped(SUMMER, QUARTER, "startsAt", "total", OSLO)
    attributes = {
        "today": {"prices": today, "count": len(today)},
        "tomorrow": {"prices": [], "count": 0},
    }
    reading = read_price("0.2", attributes, at(SUMMER, 6, 40), OSLO)
    assert (reading.source, len(reading.slots)) == ("tibber", 96)
    assert reading.current == price(6 * 4 + 2)


# Energi Data Service


def test_energi_data_service_market_prices_then_marked_model_forecast() -> None:
    today = [round(0.5 - i / 100, 3) for i in range(24)]
    forecast = eds_items(SUMMER, OSLO, [9.0] * 24) + eds_items(
        SUMMER + timedelta(days=1), OSLO, [-0.2] * 24
    )
    attributes = {
        "today": today,  # bare prices too: the raw lists come first
        "raw_today": eds_items(SUMMER, OSLO, today),
        "raw_tomorrow": None,
        "forecast": forecast,
    }
    reading = read_price("0.37", attributes, at(SUMMER, 13, 30), OSLO)
    assert (reading.source, len(reading.slots), reading.current) == (
        "energi_data_service",
        48,
        0.37,
    )
    market, predicted = reading.slots[:24], reading.slots[24:]
    assert [slot.price for slot in market] == today and not any(s.estimate for s in market)
    assert all(slot.estimate and slot.price == -0.2 for slot in predicted)
    assert predicted[0].start == midnight(SUMMER + timedelta(days=1))


def test_energi_data_service_tomorrow_replaces_the_forecast_it_covers() -> None:
    tomorrow = SUMMER + timedelta(days=1)
    attributes = {
        "raw_today": eds_items(SUMMER, OSLO, [0.4] * 24),
        "raw_tomorrow": eds_items(tomorrow, OSLO, [0.3] * 24),
        "forecast": eds_items(tomorrow, OSLO, [-1.0] * 24)
        + eds_items(tomorrow + timedelta(days=1), OSLO, [-1.0] * 24),
    }
    reading = read_price(None, attributes, at(SUMMER, 1), OSLO)
    assert [slot.estimate for slot in reading.slots] == [False] * 48 + [True] * 24
    assert {slot.price for slot in reading.slots[:48]} == {0.4, 0.3}


# ENTSO-e: the state of the average sensor is never the price now


def test_entsoe_average_state_is_not_taken_past_the_lists() -> None:
    attributes = {"prices_today": stamped(SUMMER, HOUR, "time", "price", BERLIN)}
    reading = read_price("0.11", attributes, at(SUMMER + timedelta(days=1), 3, tz=BERLIN), BERLIN)
    assert (reading.source, reading.current, reading.state) == ("entsoe", None, None)


# DST days in Oslo and London, 2026


@pytest.mark.parametrize(("day", "tz", "count"), DST_DAYS)
def test_nordpool_service_answer_on_dst_days(day: date, tz: tzinfo, count: int) -> None:
    forecast = read_service("nordpool", nordpool_service(day, tz), tz)
    assert forecast.problem is None and len(forecast.slots) == count
    assert forecast.slots[0].start == midnight(day, tz)
    assert forecast.slots[-1].end == midnight(day + timedelta(days=1), tz)
    assert forecast.slots[0].price == pytest.approx(0.1)  # per MWh in the answer, per kWh here
    assert any(slot.price < 0 for slot in forecast.slots)


@pytest.mark.parametrize(("day", "tz", "count"), DST_DAYS)
def test_tibber_service_answer_on_dst_days(day: date, tz: tzinfo, count: int) -> None:
    forecast = read_service("tibber", tibber_service(day, tz), tz)
    assert len(forecast.slots) == count // 4
    assert forecast.slots[-1].end == midnight(day + timedelta(days=1), tz)


@pytest.mark.parametrize(("day", "tz", "count"), DST_DAYS)
@pytest.mark.parametrize("step", [HOUR, QUARTER])
def test_energyzero_service_answer_on_dst_days(
    day: date, tz: tzinfo, count: int, step: timedelta
) -> None:
    forecast = read_service("energyzero", energyzero_service(day, tz, step), tz)
    assert len(forecast.slots) == count // (4 if step == HOUR else 1)
    assert {slot.end - slot.start for slot in forecast.slots} == {step}


@pytest.mark.parametrize(("day", "tz", "count"), DST_DAYS)
def test_nordpool_list_on_2026_dst_days(day: date, tz: tzinfo, count: int) -> None:
    values = [negative_midday(i, count) for i in range(count)]
    reading = read_price(None, {"today": values}, at(day, 12, tz=tz), tz)
    assert (reading.source, len(reading.slots)) == ("nordpool_list", count)
    assert reading.slots[-1].end == midnight(day + timedelta(days=1), tz)


@pytest.mark.parametrize(("day", "tz", "count"), DST_DAYS)
def test_epex_spot_on_2026_dst_days(day: date, tz: tzinfo, count: int) -> None:
    reading = read_price(None, epex_spot(day, QUARTER, tz), at(day, 12, tz=tz), tz)
    assert (reading.source, len(reading.slots)) == ("epex_spot", count)


# Service answers: several areas or homes, failures


def test_nordpool_service_picks_the_sensors_area() -> None:
    answer = nordpool_service(SUMMER, OSLO, ("SE3", "SE4"))
    picked = read_service("nordpool", answer, OSLO, "SE4")
    assert picked.slots[0].price == pytest.approx(0.101)  # SE4's offset of 1 EUR/MWh
    unknown = read_service("nordpool", answer, OSLO, None)
    assert unknown.slots == () and "SE3, SE4" in (unknown.problem or "")


def test_tibber_service_picks_the_home_by_name() -> None:
    answer = tibber_service(SUMMER, OSLO, ("Cabin", "Home"))
    assert len(read_service("tibber", answer, OSLO, "Cabin").slots) == 24
    assert read_service("tibber", answer, OSLO, None).slots == ()


def test_amber_service_answer() -> None:
    first = datetime(2026, 6, 10, 2, 5, tzinfo=UTC)
    answer = {"forecasts": amber_forecasts(first, [3.0, -1.0] * 144)}
    forecast = read_service("amber", answer, BRISBANE)
    assert len(forecast.slots) == 288
    assert forecast.slots[0].start == first and forecast.slots[1].price == -0.01


@pytest.mark.parametrize(
    ("shape", "answer"),
    [
        ("nordpool", {}),
        ("nordpool", {"SE3": []}),
        ("tibber", {"prices": {}}),
        ("energyzero", {"prices": "none"}),
        ("amber", None),
        ("amber", {"forecasts": [{"start_time": "x", "end_time": "y", "per_kwh": 1}]}),
        ("unknown", {"prices": []}),
    ],
)
def test_a_service_answer_without_prices_says_why(shape: str, answer: object) -> None:
    forecast = read_service(shape, answer, OSLO)
    assert forecast.slots == () and forecast.problem


def test_merging_answers_and_laying_them_under_a_reading() -> None:
    today = read_service("nordpool", nordpool_service(SUMMER, OSLO), OSLO)
    tomorrow = ServiceForecast((), "empty_response")
    merged = merge_forecasts([today, tomorrow])
    assert (len(merged.slots), merged.problem) == (96, None)
    assert merge_forecasts([tomorrow]).problem == "empty_response"
    state_only = read_price("0.2", {}, at(SUMMER, 12), OSLO)
    now = at(SUMMER, 12, 10)
    combined = with_forecast(state_only, merged.slots, "service:nordpool.get_prices_for_date", now)
    assert combined.source == "service:nordpool.get_prices_for_date" and combined.state == 0.2
    assert combined.current == pytest.approx(negative_midday(48, 96))
    own = read_price("0.2", {"raw_today": raw(SUMMER, HOUR)}, now, OSLO)
    assert with_forecast(own, merged.slots, "service:x", now).slots == own.slots


def test_a_reading_without_slots_keeps_the_old_forecast_still_to_come() -> None:
    old = read_price("0.1", {"raw_today": raw(SUMMER, HOUR)}, at(SUMMER, 10), OSLO)
    new = read_price("unavailable", {}, at(SUMMER, 10, 30), OSLO)
    kept = keep_forecast(old, new, at(SUMMER, 10, 30))
    assert (kept.source, len(kept.slots), kept.state, kept.current) == (
        "nordpool_raw",
        14,
        None,
        price(10),
    )
    assert keep_forecast(old, new, at(SUMMER + timedelta(days=1), 0)) == new
    assert keep_forecast(None, new, at(SUMMER, 10)) == new


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Europe/Oslo", "Europe/Oslo"),
        ("UTC", "UTC"),
        ("", None),
        ("Nowhere/City", None),
        ("../../../etc/passwd", None),
        (None, None),
        (3, None),
        ("Europe/Oslo" * 10, None),
    ],
)
def test_zone_named(name: object, expected: str | None) -> None:
    zone = zone_named(name)
    assert (str(zone) if zone is not None else None) == expected


@given(
    shape=st.sampled_from([*SERVICE_SHAPES, "other"]),
    answer=JSON,
    tz=ZONES,
    pick=st.none() | st.text(max_size=5),
)
def test_any_service_answer_gives_slots_or_a_reason(
    shape: str, answer: object, tz: tzinfo, pick: str | None
) -> None:
    forecast = read_service(shape, answer, tz, pick)
    assert bool(forecast.slots) != bool(forecast.problem)
    check_shape(PriceReading(None, forecast.slots, "amber"))


SERVICE_ITEMS = st.fixed_dictionaries(
    {
        k: TIMES if k in ("start", "end", "start_time", "end_time", "timestamp") else VALUES
        for k in ("start", "end", "price", "start_time", "end_time", "per_kwh", "timestamp")
    }
)


@given(
    shape=st.sampled_from(SERVICE_SHAPES),
    items=st.lists(SERVICE_ITEMS, max_size=20),
    tz=ZONES,
)
def test_almost_valid_service_answers_never_raise(shape: str, items: list[Any], tz: tzinfo) -> None:
    answers = {
        "nordpool": {"SE3": items},
        "tibber": {"prices": {"Home": items}},
        "energyzero": {"prices": items},
        "amber": {"forecasts": items},
    }
    forecast = read_service(shape, answers[shape], tz)
    assert bool(forecast.slots) != bool(forecast.problem)
    check_shape(PriceReading(None, forecast.slots, "amber"))
