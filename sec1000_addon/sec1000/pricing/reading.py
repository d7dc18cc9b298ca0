"""Electricity prices from a Home Assistant sensor or a price service (pure: no I/O, no clock).

A sensor gives its state and attributes (`read_price`); a service answer gives slots
(`read_service`); `with_forecast` lays a service's slots under a sensor's reading and
`keep_forecast` keeps a forecast across a state without one. Slots are kept in UTC: two
datetimes that share one ZoneInfo compare and subtract by wall clock, and a local time in the
repeated DST hour never equals (==) one in another zone (PEP 495).
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sec1000.common.numbers import NumberError, parse_number

SOURCES = (
    "nordpool_raw",
    "energi_data_service",
    "nordpool_list",
    "entsoe",
    "octopus",
    "tibber",
    "epex_spot",
    "amber",
    "state",
)
# Formats whose sensor state is not the current price: ENTSO-e keeps its lists on the sensor of
# the day's average; Amber's forecast sensor shows the next interval's price.
STATE_NOT_PRICE = frozenset({"entsoe", "amber"})
SERVICE_SHAPES = ("nordpool", "tibber", "energyzero", "amber")
# A week of 15-minute slots is 672 items: a longer list is junk, not a forecast.
MAX_ITEMS = 10_000
_MAX_TEXT = 64
# str(float) writes 1e-05; the one number parser takes plain decimals only.
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
_MINUS = "\u2212"  # MINUS SIGN, which some templates and locales write
_DAY_SLOTS = (timedelta(minutes=15), timedelta(hours=1))
RAW = ("raw_today", "raw_tomorrow")
ENTSOE = ("prices_today", "prices_tomorrow", "prices")
OCTOPUS = ("rates",)
# Tibber-like lists are recognised by their items (startsAt, total), not by the key.
TIBBER = ("today", "tomorrow", "prices", "price_info")
EPEX_VALUES = ("price_per_kwh", "price_ct_per_kwh")  # the second before Sept 2024
MWH_PER_KWH = 1000  # Nord Pool's service answers per MWh

Points = list[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One price interval: start and end in UTC (end > start), the price per kWh as given;
    `estimate` marks a model's prediction rather than a market price."""

    start: datetime
    end: datetime
    price: float
    estimate: bool = False


@dataclass(frozen=True, slots=True)
class PriceReading:
    """The price now, the forecast slots (sorted, non-overlapping), the format they came in,
    and the sensor state's own price (None where the state is no price or not the current
    one)."""

    current: float | None
    slots: tuple[PriceSlot, ...]
    source: str
    state: float | None = None
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


@dataclass(frozen=True, slots=True)
class ServiceForecast:
    """Slots read from a price service's answer, or in words why there are none."""

    slots: tuple[PriceSlot, ...]
    problem: str | None = None


def read_price(
    state: object, attributes: Mapping[str, Any] | object, now: datetime, tz: tzinfo
) -> PriceReading:
    """The reading of one sensor; never raises (junk gives "current price only" or None)."""
    zone = tz if isinstance(tz, tzinfo) else UTC
    moment = _instant(now, zone)
    own = parse_price(state)
    given = attributes if isinstance(attributes, Mapping) else {}
    unit = given.get("unit_of_measurement")
    unit = unit.strip()[:20] if isinstance(unit, str) else ""
    found = _forecast(given, moment, zone)
    if found is None:
        return PriceReading(own, (), "state", own, unit)
    slots, source = found
    own = None if source in STATE_NOT_PRICE else own
    return _current(PriceReading(None, slots, source, own, unit), moment)


def read_service(
    shape: str, response: object, tz: tzinfo, pick: str | None = None
) -> ServiceForecast:
    """The slots of one service answer in `shape` (one of SERVICE_SHAPES); `pick` names the
    area (Nord Pool) or home (Tibber) when the answer holds several. Never raises."""
    zone = tz if isinstance(tz, tzinfo) else UTC
    body = response if isinstance(response, Mapping) else {}
    if shape == "nordpool":
        items, problem = _pick(body, pick, "area")
        slots = _spans([items], "start", "end", ("price",), zone)
        slots = [replace(slot, price=slot.price / MWH_PER_KWH) for slot in slots]
    elif shape == "tibber":
        homes = body.get("prices")
        items, problem = _pick(homes if isinstance(homes, Mapping) else {}, pick, "home")
        slots = _stamped([items], "start_time", "price", zone)
    elif shape == "energyzero":
        items, problem = _items(body.get("prices")), None
        slots = _stamped([items], "timestamp", "price", zone)
    elif shape == "amber":
        items, problem = _items(body.get("forecasts")), None
        slots = _amber(items, zone)
    else:
        return ServiceForecast((), f"no reader for the answer shape {shape!r}")
    tidy = _tidy(slots)
    if tidy:
        return ServiceForecast(tidy)
    return ServiceForecast((), problem or "the answer holds no prices this add-on can read")


def merge_forecasts(forecasts: Iterable[ServiceForecast]) -> ServiceForecast:
    """Several answers (today's and tomorrow's) as one; the first problem when none has slots."""
    found = list(forecasts)
    slots = _tidy([slot for forecast in found for slot in forecast.slots])
    if slots:
        return ServiceForecast(slots)
    problems = [forecast.problem for forecast in found if forecast.problem]
    return ServiceForecast((), problems[0] if problems else "no answer")


def with_forecast(
    reading: PriceReading, slots: Sequence[PriceSlot], source: str, now: datetime
) -> PriceReading:
    """The reading with `slots` (a service's) where it has none of its own; its source becomes
    `source` when it had no slots."""
    if not slots:
        return reading
    own = list(reading.slots)
    merged = tuple(sorted([*own, *_uncovered(slots, own)], key=lambda slot: slot.start))
    combined = replace(reading, slots=merged, source=reading.source if own else source)
    return _current(combined, _instant(now, UTC))


def keep_forecast(old: PriceReading | None, new: PriceReading, now: datetime) -> PriceReading:
    """A reading without slots keeps the slots of `old` still to come: a sensor that went
    unavailable (or lost its attributes) keeps the forecast it gave."""
    moment = _instant(now, UTC)
    if new.slots or old is None or not old.slots or moment is None:
        return new
    kept = tuple(slot for slot in old.slots if slot.end > moment)
    if not kept:
        return new
    state = None if old.source in STATE_NOT_PRICE else new.state
    return _current(PriceReading(None, kept, old.source, state, new.unit or old.unit), moment)


def parse_price(raw: object) -> float | None:
    """A finite float from a JSON number or number text ("0.05", "-0,05", "1e-05", a leading
    MINUS SIGN for "-"); None for anything else."""
    if isinstance(raw, str):
        if len(raw) > _MAX_TEXT:
            return None
        raw = raw.strip()
        if raw.startswith(_MINUS):
            raw = "-" + raw[1:]
        if _EXPONENT.fullmatch(raw):
            value = float(raw)
            return value if math.isfinite(value) else None
    try:
        value = parse_number(raw)
    except (NumberError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def zone_named(name: object) -> ZoneInfo | None:
    """The IANA zone called `name` ("Europe/Oslo"); None for anything else."""
    if not isinstance(name, str) or not name or len(name) > _MAX_TEXT or not name.isascii():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _current(reading: PriceReading, moment: datetime | None) -> PriceReading:
    """The reading with `current`: the slot that covers `moment`, else the state's price."""
    slot = reading.slot_at(moment) if moment is not None else None
    return replace(reading, current=slot.price if slot else reading.state)


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


def _pick(
    lists: Mapping[Any, Any], pick: str | None, what: str
) -> tuple[Sequence[Any], str | None]:
    """The list under `pick`, else the only list; with several and none named, a problem."""
    if pick is not None and pick in lists:
        return _items(lists[pick]), None
    if len(lists) == 1:
        return _items(next(iter(lists.values()))), None
    if not lists:
        return (), "the answer holds no prices"
    names = ", ".join(sorted(str(name) for name in lists)[:5])
    return (), f"the answer holds several of {what} ({names}) and the sensor's is unknown"


def _forecast(
    attributes: Mapping[Any, Any], now: datetime | None, tz: tzinfo
) -> tuple[tuple[PriceSlot, ...], str] | None:
    """The slots of the first format that gives any, with its name; raw Nord Pool comes first."""
    readers: tuple[tuple[str, Callable[[], list[PriceSlot]]], ...] = (
        ("nordpool_raw", lambda: _spans(_lists(attributes, RAW), "start", "end", ("value",), tz)),
        ("energi_data_service", lambda: _energi_data_service(attributes, tz)),
        ("nordpool_list", lambda: _day_lists(attributes, now, tz)),
        ("entsoe", lambda: _stamped(_lists(attributes, ENTSOE), "time", "price", tz)),
        (
            "octopus",
            lambda: _spans(_lists(attributes, OCTOPUS), "start", "end", ("value_inc_vat",), tz),
        ),
        ("tibber", lambda: _stamped(_tibber_lists(attributes), "startsAt", "total", tz)),
        (
            "epex_spot",
            lambda: _spans(
                _lists(attributes, ("data",)), "start_time", "end_time", EPEX_VALUES, tz
            ),
        ),
        ("amber", lambda: _amber(_items(attributes.get("forecasts")), tz)),
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
    """Tibber-like lists, also inside a mapping: Tibber's priceInfo holds today and tomorrow,
    and some custom integrations give `today` as {"prices": [...], "count": n}."""
    found: list[Sequence[Any]] = []
    for key in TIBBER:
        value = attributes.get(key)
        if isinstance(value, Mapping):
            found.extend(_lists(value, ("today", "tomorrow", "prices")))
        else:
            found.append(_items(value))
    return found


def _energi_data_service(attributes: Mapping[Any, Any], tz: tzinfo) -> list[PriceSlot]:
    """Energi Data Service: market prices in `raw_today`/`raw_tomorrow` ({hour, price}); its
    `forecast` (a model's predictions, same items) only where no market price covers a slot,
    marked as estimates."""
    market = list(_tidy(_stamped(_lists(attributes, RAW), "hour", "price", tz)))
    if not market:
        return []
    predicted = _tidy(_stamped(_lists(attributes, ("forecast",)), "hour", "price", tz))
    return [*market, *(replace(slot, estimate=True) for slot in _uncovered(predicted, market))]


def _amber(items: Sequence[Any], tz: tzinfo) -> list[PriceSlot]:
    """Amber intervals ({start_time, end_time, per_kwh}): they start one second past the minute
    (10:00:01-10:05:00), so each start goes back to its minute to leave no hole."""
    slots = _spans([items], "start_time", "end_time", ("per_kwh",), tz)
    return [replace(slot, start=slot.start.replace(second=0, microsecond=0)) for slot in slots]


def _value(item: Mapping[Any, Any], keys: Sequence[str]) -> float | None:
    """The price under the first of `keys` the item has."""
    for key in keys:
        if key in item:
            return parse_price(item[key])
    return None


def _spans(
    lists: list[Sequence[Any]], start_key: str, end_key: str, value_keys: Sequence[str], tz: tzinfo
) -> list[PriceSlot]:
    """Slots from items that carry their own start and end."""
    slots = []
    for item in (item for items in lists for item in items):
        if not isinstance(item, Mapping):
            continue
        start = _instant(item.get(start_key), tz)
        end = _instant(item.get(end_key), tz)
        price = _value(item, value_keys)
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


def _uncovered(extra: Iterable[PriceSlot], base: Sequence[PriceSlot]) -> list[PriceSlot]:
    """The slots of `extra` that overlap no slot of `base` (sorted, non-overlapping)."""
    starts = [slot.start for slot in base]
    kept = []
    for slot in extra:
        index = bisect_right(starts, slot.start)
        if index and base[index - 1].end > slot.start:
            continue
        if index < len(base) and base[index].start < slot.end:
            continue
        kept.append(slot)
    return kept


def _tidy(slots: Iterable[PriceSlot]) -> tuple[PriceSlot, ...]:
    """Sorted, one slot per start (the shortest), each cut where the next begins."""
    kept: list[PriceSlot] = []
    for slot in sorted(slots, key=lambda slot: (slot.start, slot.end)):
        if kept and kept[-1].start == slot.start:
            continue
        if kept and kept[-1].end > slot.start:
            kept[-1] = replace(kept[-1], end=slot.start)
        kept.append(slot)
    return tuple(kept)
