"""Over-limit export seen by the controller's own meter: detected, timed and integrated.

Export up to limit + max(margin, 5 % of the limit) is normal regulation. An overshoot starts
when export stays above that for `seconds` in a row (shorter is the controller settling) and
ends when it stays at or below it for as long again. Only good reads while the limiter holds a
limit by value count; a missing read, or one in another mode, is neither over nor under: it
breaks no run and extends none (a run never spans such a hole). The energy over is the
trapezoidal area above the threshold between two counted reads, kept only for a run that
became an overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

SHARE_OF_LIMIT = 0.05  # 5 % of the limit is regulation too
MAX_HOLE = 300.0  # seconds: two reads farther apart are not one run (nothing is integrated)


def threshold_kw(limit_kw: float, margin_kw: float) -> float:
    """Export above this is over the limit."""
    return limit_kw + max(margin_kw, SHARE_OF_LIMIT * limit_kw)


@dataclass(frozen=True, slots=True)
class Reading:
    """One good telemetry read as the detector needs it."""

    at: float
    export_kw: float  # meters power: positive = export to the grid
    limit_kw: float | None  # the limit the controller holds (None: unknown)
    counted: bool  # the limiter holds a limit by value (no other mode, no watchdog window)


@dataclass(frozen=True, slots=True)
class Overshoot:
    """One overshoot: from `since` (its first read over) to `until` (None while it lasts)."""

    since: float
    max_kw: float
    limit_kw: float
    energy_over_kwh: float
    until: float | None = None
    at_stop: bool = False  # still under way when the add-on stopped: `until` is its last read

    def as_dict(self) -> dict[str, float | None]:
        """JSON-ready."""
        return {
            "since": self.since,
            "until": self.until,
            "max_kw": round(self.max_kw, 3),
            "limit_kw": round(self.limit_kw, 3),
            "energy_over_kwh": round(self.energy_over_kwh, 4),
        }


@dataclass(frozen=True, slots=True)
class Step:
    """What one read changed: energy and seconds over to count, an overshoot begun or ended."""

    kwh_over: float = 0.0  # kWh above the threshold newly counted (an overshoot's only)
    seconds_over: float = 0.0  # time inside an overshoot newly counted
    started: Overshoot | None = None
    ended: Overshoot | None = None


def area_above(a: float, b: float, line_a: float, line_b: float, seconds: float) -> float:
    """∫ max(0, p(t) - line(t)) dt, p and line linear over `seconds` (kW·s)."""
    start, end = a - line_a, b - line_b
    if start >= 0 and end >= 0:
        return (start + end) / 2 * seconds
    if start <= 0 and end <= 0:
        return 0.0
    crossing = seconds * start / (start - end)
    if start > 0:
        return start * crossing / 2
    return end * (seconds - crossing) / 2


class OvershootDetector:
    """Feed it every good read, in order; it says when an overshoot starts and ends."""

    def __init__(self) -> None:
        self.active: Overshoot | None = None
        self._last: Reading | None = None  # the last counted read
        self._run_start: float | None = None  # first read of the present run over (or under)
        self._run_over = False
        self._run_kwh = 0.0  # energy over in a run that is not an overshoot yet
        self._run_max = 0.0
        self._run_limit = 0.0
        self._tail = 0.0  # seconds of an overshoot under the threshold, until it ends or resumes

    def add(self, reading: Reading, margin_kw: float, seconds: float) -> Step:
        """Count one read; readings must come in time order."""
        if not reading.counted or reading.limit_kw is None or not math.isfinite(reading.export_kw):
            return Step()  # neither over nor under
        last, self._last = self._last, reading
        line = threshold_kw(reading.limit_kw, margin_kw)
        over = reading.export_kw > line
        if last is None or not 0 < reading.at - last.at <= MAX_HOLE:
            self._start_run(reading, over)
            return self._judge(reading, seconds)
        assert last.limit_kw is not None
        elapsed = reading.at - last.at
        before = threshold_kw(last.limit_kw, margin_kw)
        kwh = area_above(last.export_kw, reading.export_kw, before, line, elapsed) / 3600
        counted = self._count(kwh, elapsed, over)
        if over != self._run_over:
            self._start_run(reading, over)
        elif over:
            self._run_max = max(self._run_max, reading.export_kw)
            self._run_limit = reading.limit_kw
        if self.active is not None and over:
            self.active = replace(
                self.active,
                max_kw=max(self.active.max_kw, reading.export_kw),
                limit_kw=reading.limit_kw,
            )
        judged = self._judge(reading, seconds)
        return replace(
            judged,
            kwh_over=counted.kwh_over + judged.kwh_over,
            seconds_over=counted.seconds_over + judged.seconds_over,
        )

    def close(self) -> Overshoot | None:
        """The overshoot under way, ended at its last read (the add-on stops: its audit entry
        is written now, its energy is counted up to that read); None when there is none."""
        active, last = self.active, self._last
        if active is None:
            return None
        self.active, self._tail, self._last = None, 0.0, None
        return replace(active, until=last.at if last is not None else active.since, at_stop=True)

    def _count(self, kwh: float, elapsed: float, over: bool) -> Step:
        """One interval: inside an overshoot it counts at once (its time once over again);
        in a run that may become one, it waits."""
        if self.active is None:
            if self._run_over:
                self._run_kwh += kwh
            return Step()
        self.active = replace(self.active, energy_over_kwh=self.active.energy_over_kwh + kwh)
        if not over:
            self._tail += elapsed
            return Step(kwh_over=kwh)
        seconds, self._tail = self._tail + elapsed, 0.0
        return Step(kwh_over=kwh, seconds_over=seconds)

    def _start_run(self, reading: Reading, over: bool) -> None:
        assert reading.limit_kw is not None
        self._run_start = reading.at
        self._run_over = over
        self._run_kwh = 0.0
        self._run_max = reading.export_kw
        self._run_limit = reading.limit_kw

    def _judge(self, reading: Reading, seconds: float) -> Step:
        assert self._run_start is not None
        lasted = reading.at - self._run_start
        if self.active is None and self._run_over and lasted >= seconds:
            self.active = Overshoot(self._run_start, self._run_max, self._run_limit, self._run_kwh)
            kwh, self._run_kwh = self._run_kwh, 0.0
            return Step(kwh_over=kwh, seconds_over=lasted, started=self.active)
        if self.active is not None and not self._run_over and lasted >= seconds:
            ended = replace(self.active, until=self._run_start)
            self.active, self._tail = None, 0.0
            return Step(ended=ended)
        return Step()
