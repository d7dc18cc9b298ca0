"""The Prices card's chart: the price as steps (negative part shaded), the planned export-off
windows, the slots that are a model's estimate, and the export limit over the same time axis,
from the local midnight of the zone the prices are read in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sec1000.pricing.reading import zone_named
from sec1000.web.chart import percent

# The chart's own units. The SVG shows only the plot (LEFT … PLOT_RIGHT across, TOP … HEIGHT -
# BOTTOM down), stretched to the card; its labels are HTML around it, placed in percent of the
# plot, so they keep the page's font size at any width (a phone's 390 px included).
WIDTH, HEIGHT, TOP, BOTTOM, LEFT, RIGHT = 720.0, 190.0, 30.0, 22.0, 72.0, 78.0
PLOT_RIGHT = WIDTH - RIGHT
MIN_LABEL_GAP = 10.0  # percent of the plot's height between two price labels, else one goes


@dataclass(frozen=True, slots=True)
class PriceChart:
    """SVG pieces, in the chart's own units."""

    price_path: str
    negative: tuple[tuple[float, float, float, float], ...]  # x, y, width, height
    off_windows: tuple[tuple[float, float], ...]  # x, width
    estimates: tuple[tuple[float, float], ...]  # x, width of slots that are a model's estimate
    limit_path: str
    zero_y: float
    now_x: float | None
    hours: tuple[tuple[float, str], ...]  # x, label
    price_labels: tuple[tuple[float, str], ...]  # y, label
    span_hours: int
    limit_top: str = ""  # the limit axis' top label, e.g. "10 kW"

    @property
    def plot(self) -> tuple[float, float, float, float]:
        """The plot area: left, top, right, bottom."""
        return LEFT, TOP, PLOT_RIGHT, HEIGHT - BOTTOM

    @property
    def price_ticks(self) -> tuple[tuple[float, str], ...]:
        """The price labels, each at its height in percent of the plot (0: the top)."""
        return tuple(
            (percent(y, TOP, HEIGHT - BOTTOM - TOP), label) for y, label in self.price_labels
        )

    @property
    def hour_ticks(self) -> tuple[tuple[float, str], ...]:
        """The hour labels, each at its place in percent of the plot's width."""
        return tuple((percent(x, LEFT, PLOT_RIGHT - LEFT), label) for x, label in self.hours)

    @property
    def price_chars(self) -> int:
        """The longest price label's length: the width of the left axis, in characters."""
        return max((len(label) for _, label in self.price_labels), default=1)


def build_price_chart(
    policy: Mapping[str, Any],
    limit_log: Iterable[tuple[float, float]],
    now: float,
    limit_top_kw: float,
    number: Callable[[float], str] = lambda value: f"{value:g}",
) -> PriceChart | None:
    """The chart for today (and tomorrow, when its prices are known); None without prices."""
    slots: Sequence[Sequence[float]] = policy.get("slots") or []
    if not slots:
        return None
    start = _midnight(now, policy.get("time_zone"))
    day0 = start.timestamp()
    end = max(slot[1] for slot in slots)
    span = 48 if end > day0 + 25 * 3600 else 24
    stop = (start + dt.timedelta(days=span // 24)).timestamp()
    shown = [slot for slot in slots if slot[1] > day0 and slot[0] < stop]
    if not shown:
        return None
    prices = [slot[2] for slot in shown]
    low, high = min(0.0, *prices), max(0.0, *prices)
    if high - low < 1e-9:
        high = low + 1.0

    def x(at: float) -> float:
        return LEFT + (min(max(at, day0), stop) - day0) / (stop - day0) * (PLOT_RIGHT - LEFT)

    def y(price: float) -> float:
        return TOP + (high - price) / (high - low) * (HEIGHT - TOP - BOTTOM)

    path, end_at = [], None
    for slot in shown:  # joined steps; a new stroke only after a hole in the prices
        if end_at is not None and abs(slot[0] - end_at) < 1:
            path.append(f"V{y(slot[2]):.1f}H{x(slot[1]):.1f}")
        else:
            path.append(f"M{x(slot[0]):.1f},{y(slot[2]):.1f}H{x(slot[1]):.1f}")
        end_at = slot[1]
    negative = tuple(
        (x(s[0]), y(0.0), x(s[1]) - x(s[0]), y(s[2]) - y(0.0)) for s in shown if s[2] < 0
    )
    windows = tuple(
        (x(a), x(b) - x(a)) for a, b in (policy.get("off_windows") or []) if b > day0 and a < stop
    )
    estimates = tuple((x(s[0]), x(s[1]) - x(s[0])) for s in shown if len(s) > 3 and s[3])
    log = list(limit_log)
    top_kw = max(limit_top_kw, *(kw for _, kw in log), 0.01)
    return PriceChart(
        " ".join(path),
        negative,
        windows,
        estimates,
        _limit_path(log, day0, now, x, top_kw),
        y(0.0),
        x(now) if day0 <= now <= stop else None,
        tuple((x(day0 + h * 3600), f"{h % 24:02d}") for h in range(0, span, 6)),
        tuple((y(v), number(v)) for v in _apart({round(low, 3), 0.0, round(high, 3)}, y)),
        span,
        f"{number(top_kw)} kW" if log else "",
    )


def _apart(prices: set[float], y: Callable[[float], float]) -> list[float]:
    """The prices to label, lowest first, without one too close to zero's label to be read."""
    gap = MIN_LABEL_GAP / 100 * (HEIGHT - BOTTOM - TOP)
    return sorted(p for p in prices if p == 0 or abs(y(p) - y(0.0)) >= gap)


def _limit_path(
    log: list[tuple[float, float]], day0: float, now: float, x: Any, top_kw: float
) -> str:
    """The export limit as steps, from when it is known to now, on a 0 kW … `top_kw` scale."""
    if not log:
        return ""
    bottom, top = HEIGHT - BOTTOM, TOP

    def level(kw: float) -> float:
        return bottom - kw / top_kw * (bottom - top)

    start = max(day0, log[0][0])
    known = [kw for at, kw in log if at <= start]
    path = f"M{x(start):.1f},{level(known[-1] if known else log[0][1]):.1f}"
    for at, kw in log:
        if start < at <= now:
            path += f"H{x(at):.1f}V{level(kw):.1f}"
    return path + f"H{x(now):.1f}"


def _midnight(now: float, zone_name: object) -> dt.datetime:
    """The local midnight before `now` in the zone the prices are read in (else the system's)."""
    zone = zone_named(zone_name)
    local = dt.datetime.fromtimestamp(now, zone).astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
