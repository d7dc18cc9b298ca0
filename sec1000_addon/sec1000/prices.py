"""Electricity prices from a Home Assistant sensor's state and attributes (pure: no I/O, no clock).

Slots are kept in UTC: two datetimes that share one ZoneInfo compare and subtract by wall clock,
and a local time in the repeated DST hour never equals (==) one in another zone (PEP 495).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any

SOURCES = ("nordpool_raw", "nordpool_list", "entsoe", "octopus", "tibber", "state")
# A week of 15-minute slots is 672 items: a longer list is junk, not a forecast.
MAX_ITEMS = 10_000
_MAX_TEXT = 64
# Plain ASCII decimals; the exponent is there because str(float) writes 1e-05.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DAY_SLOTS = (timedelta(minutes=15), timedelta(hours=1))
RAW = ("raw_today", "raw_tomorrow")
ENTSOE = ("prices_today", "prices_tomorrow", "prices")
OCTOPUS = ("rates",)
# Tibber-like lists are recognised by their items (startsAt, total), not by the key.
TIBBER = ("today", "tomorrow", "prices", "price_info")

Points = list[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One price interval: start and end in UTC (end > start), the price per kWh as given."""

    start: datetime
    end: datetime
    price: float


@dataclass(frozen=True, slots=True)
class PriceReading:
    """The price now, the forecast slots (sorted, non-overlapping) and the format they came in."""

    current: float | None
    slots: tuple[PriceSlot, ...]
    source: str
    unit: str = ""  # the sensor's unit_of_measurement, e.g. "EUR/kWh" (shown on charts)

    def slot_at(self, when: datetime) -> PriceSlot | None:
        """The slot with start <= when < end; None in a hole or for a naive `when`."""
        if when.utcoffset() is None:
            return None
        index = bisect_right(self.slots, when, key=lambda slot: slot.start)
        if index and when < self.slots[index - 1].end:
            return self.slots[index - 1]
        return None

    def next_boundary(self, after: datetime) -> datetime | None:
        """The first slot start or end strictly after `after`; None past the last or if naive."""
        if after.utcoffset() is None:
            return None
        index = bisect_right(self.slots, after, key=lambda slot: slot.start)
        if index and after < self.slots[index - 1].end:
            return self.slots[index - 1].end
        return self.slots[index].start if index < len(self.slots) else None


def read_price(
    state: object, attributes: Mapping[str, Any] | object, now: datetime, tz: tzinfo
) -> PriceReading:
    """The reading of one sensor; never raises (junk gives "current price only" or None)."""
    zone = tz if isinstance(tz, tzinfo) else UTC
    moment = _instant(now, zone)
    fallback = parse_price(state)
    given = attributes if isinstance(attributes, Mapping) else {}
    unit = given.get("unit_of_measurement")
    unit = unit.strip()[:20] if isinstance(unit, str) else ""
    found = _forecast(given, moment, zone)
    if found is None:
        return PriceReading(fallback, (), "state", unit)
    reading = PriceReading(None, *found, unit=unit)
    slot = reading.slot_at(moment) if moment is not None else None
    return replace(reading, current=slot.price if slot else fallback)


def parse_price(raw: object) -> float | None:
    """A finite float from a JSON number or plain ASCII number text; None for anything else."""
    if isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str) and len(raw) <= _MAX_TEXT and _NUMBER.fullmatch(raw.strip()):
            value = float(raw.strip())
        else:
            return None
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _instant(raw: object, tz: tzinfo) -> datetime | None:
    """An ISO text or datetime as an instant in UTC (no offset: local in `tz`); None if not one."""
    if isinstance(raw, str):
        if len(raw) > _MAX_TEXT or not raw.isascii():
            return None
        try:
            raw = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
    if not isinstance(raw, datetime):
        return None
    try:
        local = raw if raw.utcoffset() is not None else raw.replace(tzinfo=tz)
        return local.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _items(raw: object) -> Sequence[Any]:
    """A list attribute's items; nothing for non-lists and for lists too long to be a forecast."""
    if isinstance(raw, list | tuple) and len(raw) <= MAX_ITEMS:
        return raw
    return ()


def _forecast(
    attributes: Mapping[Any, Any], now: datetime | None, tz: tzinfo
) -> tuple[tuple[PriceSlot, ...], str] | None:
    """The slots of the first format that gives any, with its name; raw Nord Pool comes first."""
    readers: tuple[tuple[str, Callable[[], list[PriceSlot]]], ...] = (
        ("nordpool_raw", lambda: _spans(_lists(attributes, RAW), "start", "end", "value", tz)),
        ("nordpool_list", lambda: _day_lists(attributes, now, tz)),
        ("entsoe", lambda: _stamped(_lists(attributes, ENTSOE), "time", "price", tz)),
        (
            "octopus",
            lambda: _spans(_lists(attributes, OCTOPUS), "start", "end", "value_inc_vat", tz),
        ),
        ("tibber", lambda: _stamped(_tibber_lists(attributes), "startsAt", "total", tz)),
    )
    for source, reader in readers:
        slots = _tidy(reader())
        if slots:
            return slots, source
    return None


def _lists(attributes: Mapping[Any, Any], keys: Iterable[str]) -> list[Sequence[Any]]:
    """The list attributes under `keys`, each on its own."""
    return [_items(attributes.get(key)) for key in keys]


def _tibber_lists(attributes: Mapping[Any, Any]) -> list[Sequence[Any]]:
    """Tibber-like lists, also inside a mapping (Tibber's priceInfo holds today and tomorrow)."""
    found: list[Sequence[Any]] = []
    for key in TIBBER:
        value = attributes.get(key)
        if isinstance(value, Mapping):
            found.extend(_lists(value, ("today", "tomorrow")))
        else:
            found.append(_items(value))
    return found


def _spans(
    lists: list[Sequence[Any]], start_key: str, end_key: str, value_key: str, tz: tzinfo
) -> list[PriceSlot]:
    """Slots from items that carry their own start and end."""
    slots = []
    for item in (item for items in lists for item in items):
        if not isinstance(item, Mapping):
            continue
        start = _instant(item.get(start_key), tz)
        end = _instant(item.get(end_key), tz)
        price = parse_price(item.get(value_key))
        if start is not None and end is not None and price is not None and start < end:
            slots.append(PriceSlot(start, end, price))
    return slots


def _stamped(
    lists: list[Sequence[Any]], time_key: str, value_key: str, tz: tzinfo
) -> list[PriceSlot]:
    """Slots from items that carry only a start: each ends at the next, or after the list's spacing."""
    points = [_points(items, time_key, value_key, tz) for items in lists]
    common = _spacing(sorted(point for found in points for point in found))
    slots = []
    for found in points:
        spacing = _spacing(found) or common
        if spacing is not None:
            slots.extend(_chain(found, spacing))
    return slots


def _points(items: Sequence[Any], time_key: str, value_key: str, tz: tzinfo) -> Points:
    """The (start, price) pairs that parse, sorted by start, the first of equal starts kept."""
    found: dict[datetime, float] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        start = _instant(item.get(time_key), tz)
        price = parse_price(item.get(value_key))
        if start is not None and price is not None:
            found.setdefault(start, price)
    return sorted(found.items())


def _spacing(points: Points) -> timedelta | None:
    """The most common gap between consecutive starts (the shorter on a tie)."""
    gaps = Counter(b[0] - a[0] for a, b in pairwise(points) if b[0] > a[0])
    return min(gaps, key=lambda gap: (-gaps[gap], gap)) if gaps else None


def _chain(points: Points, spacing: timedelta) -> list[PriceSlot]:
    """Each point's slot: to the next start, but no longer than `spacing` (a hole stays a hole)."""
    slots = []
    for index, (start, price) in enumerate(points):
        end = _plus(start, spacing)
        if end is not None and index + 1 < len(points):
            end = min(end, points[index + 1][0])
        if end is not None:
            slots.append(PriceSlot(start, end, price))
    return slots


def _day_lists(attributes: Mapping[Any, Any], now: datetime | None, tz: tzinfo) -> list[PriceSlot]:
    """Nord Pool's `today` and `tomorrow`: bare prices from local midnight, 15 or 60 minutes each."""
    try:
        today = now.astimezone(tz).date() if now is not None else None
    except (OverflowError, ValueError):
        return []
    slots: list[PriceSlot] = []
    for offset, key in enumerate(("today", "tomorrow")):
        values = _items(attributes.get(key))
        day = _local_day(today, offset, tz) if today is not None and values else None
        if day is not None:
            slots.extend(_day_slots(values, *day))
    return slots


def _day_slots(values: Sequence[Any], start: datetime, end: datetime) -> list[PriceSlot]:
    """One day's bare prices; none when the count fits neither 15 nor 60 minutes for that day."""
    length = (end - start) / len(values)
    if length not in _DAY_SLOTS or length * len(values) != end - start:
        return []
    slots = []
    for index, raw in enumerate(values):
        price = parse_price(raw)
        if price is not None:
            slots.append(PriceSlot(start + index * length, start + (index + 1) * length, price))
    return slots


def _local_day(today: date, offset: int, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """The UTC bounds of the local day `offset` days after `today` (23, 24 or 25 hours)."""
    try:
        first = today + timedelta(days=offset)
        bounds = (first, first + timedelta(days=1))
        start, end = (datetime.combine(day, time(), tzinfo=tz).astimezone(UTC) for day in bounds)
    except (OverflowError, ValueError):
        return None
    return (start, end) if start < end else None


def _plus(moment: datetime, delta: timedelta) -> datetime | None:
    """`moment + delta`, or None past the calendar's end."""
    try:
        return moment + delta
    except OverflowError:
        return None


def _tidy(slots: list[PriceSlot]) -> tuple[PriceSlot, ...]:
    """Sorted, one slot per start (the shortest), each cut where the next begins."""
    kept: list[PriceSlot] = []
    for slot in sorted(slots, key=lambda slot: (slot.start, slot.end)):
        if kept and kept[-1].start == slot.start:
            continue
        if kept and kept[-1].end > slot.start:
            kept[-1] = replace(kept[-1], end=slot.start)
        kept.append(slot)
    return tuple(kept)
