"""Energy counters (kWh) integrated from every good telemetry read, the time at the limit, and
the meter check's figures (energy and minutes over the limit, the day's highest export and
limit, writes and drifts), the evidence of a grid contract kept.

Trapezoidal between two consecutive good reads; a power that changes sign inside an interval
is split at its zero crossing (so import and export are never mixed); nothing is counted
across a gap longer than 3 x the scan interval or 5 minutes, whichever is longer. Daily totals
are split at local midnight and kept for 400 days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sec1000.common.files import write_atomic
from sec1000.metering.overshoot import OvershootDetector, Reading, Step, area_above

_LOGGER = logging.getLogger(__name__)

ENERGY_NAME = "energy.json"
COUNTERS = ("grid_export", "grid_import", "pv", "load")
TIME_AT_LIMIT = "time_at_limit"  # minutes, in the daily totals
OVER_LIMIT = "over_limit"  # kWh above limit + margin during overshoots (a total and per day)
OVER_LIMIT_MIN = "over_limit_min"  # minutes inside overshoots, per day
MAX_EXPORT = "max_export_kw"  # the day's highest export read (kW)
LIMIT_IN_FORCE = "limit_kw"  # the day's highest limit held by value (kW)
MEASURED_MIN = "measured_min"  # minutes between good reads counted that day (not gaps)
DAY_COUNTS = ("writes", "drifts")  # limiter writes and drifts seen that day
DAY_KEYS = (*COUNTERS, TIME_AT_LIMIT, OVER_LIMIT, OVER_LIMIT_MIN)
GAP_FLOOR = 300.0  # seconds: a gap is longer than max(3 x scan interval, 5 min)
DAYS_KEPT = 400
SAVE_EVERY = 60.0
# "At the limit": meters power ≥ limit - max(0.1 kW, 2 % of the limit).
AT_LIMIT_MARGIN_KW = 0.1
AT_LIMIT_MARGIN_SHARE = 0.02


def positive_area(start: float, end: float, seconds: float) -> float:
    """∫ max(0, p(t)) dt for p linear from `start` to `end` over `seconds` (kW·s)."""
    return area_above(start, end, 0.0, 0.0, seconds)


@dataclass(frozen=True, slots=True)
class Sample:
    """One good read: when, and the four powers in kW (meters: + export, - import)."""

    at: float
    meters: float
    inverters: float
    load: float
    at_limit: bool
    limit_kw: float | None = None  # the limit the controller holds by value, else None

    @classmethod
    def of(
        cls,
        at: float,
        values: Mapping[str, float],
        limit_kw: float | None,
        on: bool,
        by_value: bool = False,
    ) -> Sample:
        """A sample from the telemetry values, judged against the export limit; `by_value`:
        the limiter holds that limit by value (the meter check counts the read)."""
        meters = float(values["meters_power"])
        held = False
        if on and limit_kw is not None:
            margin = max(AT_LIMIT_MARGIN_KW, AT_LIMIT_MARGIN_SHARE * limit_kw)
            held = meters >= limit_kw - margin
        inverters, load = float(values["inverters_power"]), float(values["load_power"])
        return cls(at, meters, inverters, load, held, limit_kw if by_value else None)

    def reading(self) -> Reading:
        """What the meter check needs of it."""
        return Reading(self.at, self.meters, self.limit_kw, self.limit_kw is not None)


def interval_energy(a: Sample, b: Sample) -> dict[str, float]:
    """kWh of each counter between two samples, and the minutes at the limit."""
    seconds = b.at - a.at
    kwh = {
        "grid_export": positive_area(a.meters, b.meters, seconds),
        "grid_import": positive_area(-a.meters, -b.meters, seconds),
        "pv": positive_area(a.inverters, b.inverters, seconds),
        "load": positive_area(a.load, b.load, seconds),
    }
    out = {key: value / 3600 for key, value in kwh.items()}
    out[TIME_AT_LIMIT] = (a.at_limit + b.at_limit) / 2 * seconds / 60
    out[MEASURED_MIN] = seconds / 60
    return out


@dataclass
class EnergyBook:
    """Totals since the start, today's and each day's figures, and the gaps not counted."""

    totals: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys((*COUNTERS, OVER_LIMIT), 0.0)
    )
    days: dict[str, dict[str, float]] = field(default_factory=dict)
    last: Sample | None = None
    gaps: int = 0
    gap_seconds: float = 0.0
    last_gap_at: float | None = None

    def day(self, date: dt.date) -> dict[str, float]:
        """The figures of one local day (zeros when nothing was counted)."""
        return {**dict.fromkeys(DAY_KEYS, 0.0), **self.days.get(date.isoformat(), {})}

    def to_json(self) -> dict[str, Any]:
        """What energy.json holds."""
        last = self.last
        return {
            "version": 1,
            "totals": self.totals,
            "days": self.days,
            "last": None
            if last is None
            else [last.at, last.meters, last.inverters, last.load, last.at_limit],
            "gaps": self.gaps,
            "gap_seconds": self.gap_seconds,
            "last_gap_at": self.last_gap_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> EnergyBook:
        """Read energy.json's object; raises ValueError (or KeyError, TypeError) when broken."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not an energy file of version 1")
        totals = {key: float(data["totals"][key]) for key in COUNTERS}
        totals[OVER_LIMIT] = float(data["totals"].get(OVER_LIMIT, 0.0))  # older files: none
        if any(not math.isfinite(value) or value < 0 for value in totals.values()):
            raise ValueError("a negative or not finite total")
        days = {
            str(dt.date.fromisoformat(day)): {key: float(v) for key, v in figures.items()}
            for day, figures in dict(data.get("days") or {}).items()
        }
        raw = data.get("last")
        last = (
            None
            if raw is None
            else Sample(float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]), bool(raw[4]))
        )
        return cls(
            totals,
            days,
            last,
            int(data.get("gaps", 0)),
            float(data.get("gap_seconds", 0.0)),
            data.get("last_gap_at"),
        )


class EnergyMeter:
    """Integrates the reads into an EnergyBook, keeps it in energy.json, never goes backwards."""

    def __init__(
        self,
        directory: Path,
        scan_interval: Callable[[], float],
        *,
        clock: Callable[[], float] = time.time,
        tz: dt.tzinfo | None = None,
        overshoot: Callable[[], tuple[float, float]] = lambda: (0.2, 60.0),
    ) -> None:
        self.path = directory / ENERGY_NAME
        self._scan_interval = scan_interval
        self._overshoot = overshoot  # (margin kW, seconds) of the meter check
        self.detector = OvershootDetector()
        self._clock = clock
        self.tz = tz
        self.broken: str | None = None  # why the file was set aside, for a notification
        self.book = self._load()
        self._saved_at = self._clock()
        self._due = False  # counted energy over the limit not saved yet

    # -- reads

    def add(self, sample: Sample) -> Step:
        """Count from the previous good read to this one (or note a gap); the meter check's
        step (an overshoot begun or ended) is returned."""
        self._count_energy(sample)
        margin_kw, seconds = self._overshoot()
        step = self.detector.add(sample.reading(), margin_kw, seconds)
        day = self._day(sample.at)
        day[OVER_LIMIT] = day.get(OVER_LIMIT, 0.0) + step.kwh_over
        day[OVER_LIMIT_MIN] = day.get(OVER_LIMIT_MIN, 0.0) + step.seconds_over / 60
        self.book.totals[OVER_LIMIT] += step.kwh_over
        if step.kwh_over or step.started or step.ended:
            self._due = True  # energy over the limit is evidence: saved at this read's poll
        day[MAX_EXPORT] = max(day.get(MAX_EXPORT, sample.meters), sample.meters)
        if sample.limit_kw is not None:
            day[LIMIT_IN_FORCE] = max(day.get(LIMIT_IN_FORCE, 0.0), sample.limit_kw)
        return step

    def count(self, what: str, at: float | None = None) -> None:
        """One more limiter write or drift ('writes', 'drifts') on that day."""
        day = self._day(self._clock() if at is None else at)
        day[what] = day.get(what, 0.0) + 1

    def _day(self, at: float) -> dict[str, float]:
        date = self.date_of(at).isoformat()
        return self.book.days.setdefault(date, dict.fromkeys(DAY_KEYS, 0.0))

    def _count_energy(self, sample: Sample) -> None:
        previous, self.book.last = self.book.last, sample
        if previous is None:
            return
        seconds = sample.at - previous.at
        if seconds <= 0:
            return  # the clock went back: count nothing, start again from here
        if seconds > max(3 * self._scan_interval(), GAP_FLOOR):
            self.book.gaps += 1
            self.book.gap_seconds += seconds
            self.book.last_gap_at = sample.at
            _LOGGER.info("energy: %.0f s without a good read: not counted", seconds)
            return
        for start, end in self._split_at_midnight(previous, sample):
            figures = interval_energy(start, end)
            day = self._day(start.at)
            for key, value in figures.items():
                day[key] = day.get(key, 0.0) + value
                if key in self.book.totals:
                    self.book.totals[key] += value
        self._trim_days()

    def _split_at_midnight(self, a: Sample, b: Sample) -> list[tuple[Sample, Sample]]:
        """The interval, cut at every local midnight inside it (values interpolated)."""
        parts = []
        while self.date_of(a.at) != self.date_of(b.at):
            midnight = self._next_midnight(a.at)
            if not a.at < midnight < b.at:
                break
            share = (midnight - a.at) / (b.at - a.at)
            cut = Sample(
                midnight,
                a.meters + share * (b.meters - a.meters),
                a.inverters + share * (b.inverters - a.inverters),
                a.load + share * (b.load - a.load),
                a.at_limit and b.at_limit,
            )
            parts.append((a, cut))
            a = cut
        parts.append((a, b))
        return parts

    def date_of(self, at: float) -> dt.date:
        """The local date of a time (the meter's time zone)."""
        return dt.datetime.fromtimestamp(at, self.tz).date()

    def _next_midnight(self, at: float) -> float:
        """The first local midnight after `at` (the start of the next local day, even over DST)."""
        day = self.date_of(at) + dt.timedelta(days=1)
        # A naive local time follows the system's DST rules; an explicit zone follows its own.
        start = dt.datetime.combine(day, dt.time(0), self.tz).timestamp()
        # Where midnight does not exist (DST at 24:00), the day starts at the first valid time.
        while self.date_of(start) != day:
            start += 60
        return start

    def _trim_days(self) -> None:
        if len(self.book.days) > DAYS_KEPT:
            for old in sorted(self.book.days)[: len(self.book.days) - DAYS_KEPT]:
                del self.book.days[old]

    # -- what is shown

    def snapshot(self) -> dict[str, Any]:
        """Totals (kWh, 3 decimals), today's figures, the gaps and a broken file, JSON-ready."""
        today = self.today()
        return {
            "totals": {key: round(value, 3) for key, value in self.book.totals.items()},
            "today": {key: round(value, 3) for key, value in today.items()},
            "time_at_limit_today": round(today[TIME_AT_LIMIT], 1),
            "gaps": self.book.gaps,
            "gap_seconds": round(self.book.gap_seconds),
            "last_gap_at": self.book.last_gap_at,
            "broken": self.broken,
            "week": [
                {"date": day.isoformat(), **{k: round(v, 3) for k, v in figures.items()}}
                for day, figures in self.last_days(7)
            ],
        }

    def today(self) -> dict[str, float]:
        """Today's figures (kWh and minutes at the limit)."""
        return self.book.day(self.date_of(self._clock()))

    def last_days(self, count: int = 7) -> list[tuple[dt.date, dict[str, float]]]:
        """The last `count` local days, oldest first, today included."""
        today = self.date_of(self._clock())
        return [
            (day, self.book.day(day))
            for day in (today - dt.timedelta(days=n) for n in range(count - 1, -1, -1))
        ]

    def csv(self) -> str:
        """Every kept day as CSV: date, the four kWh figures, minutes at the limit."""
        header = "date,grid_export_kwh,grid_import_kwh,pv_kwh,load_kwh,time_at_limit_min\n"
        rows = [
            f"{day},{f['grid_export']:.3f},{f['grid_import']:.3f},{f['pv']:.3f},{f['load']:.3f},{f[TIME_AT_LIMIT]:.1f}\n"
            for day, f in sorted(self.book.days.items())
        ]
        return header + "".join(rows)

    # -- the file

    def _load(self) -> EnergyBook:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return EnergyBook()
        except OSError as err:
            return self._set_aside(f"cannot read it: {err.strerror or err}")
        try:
            return EnergyBook.from_json(json.loads(raw.decode("utf-8")))
        except Exception as err:  # any content: set aside, never stop the add-on
            return self._set_aside(str(err)[:200] or type(err).__name__)

    def _set_aside(self, reason: str) -> EnergyBook:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{ENERGY_NAME}.broken-{stamp}")
        try:
            self.path.replace(aside)
        except OSError as err:
            _LOGGER.error("cannot move the broken %s aside: %s", self.path, err)
        self.broken = f"{self.path.name} was broken ({reason}); it was moved to {aside.name} and counting starts again from 0"
        _LOGGER.error("energy: %s", self.broken)
        return EnergyBook()

    async def save_if_due(self) -> None:
        """Save when the last save is 60 s old, or at once while energy over the limit is
        counted (a kill loses at most one scan of it); the file (fsync and all) is written off
        the event loop, from a copy taken on it."""
        if self._due or self._clock() - self._saved_at >= SAVE_EVERY:
            self._saved_at = self._clock()
            self._due = False
            await asyncio.to_thread(self._write, json.dumps(self.book.to_json()))

    def save(self) -> None:
        """Write energy.json atomically now (at stop); a failure is logged, the counters stay."""
        self._saved_at = self._clock()
        self._due = False
        self._write(json.dumps(self.book.to_json()))

    def _write(self, text: str) -> None:
        try:
            write_atomic(self.path, text)
        except OSError as err:
            _LOGGER.error("cannot save the energy counters to %s: %s", self.path, err)
