"""The last hour as a server-rendered SVG: grid, solar and home power, the limit, command marks,
and the meter check's overshoots shaded."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sec1000.protocol import Feedback, describe_feedback
from sec1000.state import HISTORY_SECONDS, CommandRecord, HistoryPoint
from sec1000.web.i18n import ENGLISH, N_, Translator
from sec1000.web.words import headline

# The SVG is drawn in a fixed box and stretched to the card (preserveAspectRatio="none",
# non-scaling strokes); axis labels and markers are HTML placed in percent, so they stay legible.
WIDTH = 1000
HEIGHT = 300
MAX_POINTS = 300  # per series, whatever the refresh interval: keeps the page small
MIN_WINDOW = 600.0  # until ten minutes are known, show ten minutes
SERIES = (
    ("meters", "Grid", "s-meters"),
    ("inverters", "Solar", "s-inverters"),
    ("load", "Home", "s-load"),
)
HIDDEN_SOURCES = ("poll",)
GROUP_PERCENT = 2.5  # commands closer than this share one mark (90 s of an hour)
MIN_BAND = 2.0  # SVG units: an overshoot shorter than a pixel or two still shows


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis label at a position in percent of the plot."""

    percent: float
    text: str


@dataclass(frozen=True, slots=True)
class Marker:
    """Commands applied close together, drawn as one mark: where, whether all went well, what."""

    percent: float
    x: float
    ok: bool
    title: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Band:
    """An overshoot period, shaded across the plot: where (SVG units) and when (HH:MM)."""

    x: float
    width: float
    since: str
    until: str | None  # None while it lasts


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the chart template draws."""

    width: int = WIDTH
    height: int = HEIGHT
    paths: dict[str, str] = field(default_factory=dict)
    limit: str = ""
    zero: float | None = None
    y_ticks: tuple[Tick, ...] = ()
    x_ticks: tuple[Tick, ...] = ()
    markers: tuple[Marker, ...] = ()
    overshoots: tuple[Band, ...] = ()
    minutes: int = 0
    points: int = 0

    @property
    def empty(self) -> bool:
        """True before the first telemetry read."""
        return self.points == 0


def hour_minute(at: float) -> str:
    """A wall time as HH:MM (local)."""
    return dt.datetime.fromtimestamp(at).strftime("%H:%M")


def nice_step(span: float, target: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def downsample(points: Sequence[HistoryPoint], start: float, window: float) -> list[HistoryPoint]:
    """Average the samples into at most MAX_POINTS time buckets (the limit keeps its last value)."""
    if len(points) <= MAX_POINTS:
        return list(points)
    size = window / MAX_POINTS
    buckets: dict[int, list[HistoryPoint]] = {}
    for point in points:
        buckets.setdefault(int((point.at - start) // size), []).append(point)
    out = []
    for group in buckets.values():
        n = len(group)
        out.append(
            HistoryPoint(
                sum(p.at for p in group) / n,
                sum(p.meters for p in group) / n,
                sum(p.inverters for p in group) / n,
                sum(p.load for p in group) / n,
                group[-1].limit,
            )
        )
    return out


def build_chart(
    history: Iterable[HistoryPoint],
    commands: Iterable[CommandRecord],
    now: float,
    scan_interval: float,
    tr: Translator = ENGLISH,
    overshoots: Iterable[Sequence[float | None]] = (),
) -> Chart:
    """Lay out the last hour; a pause longer than three refresh intervals breaks the lines.
    `overshoots` are the meter check's periods, [since, until or None while it lasts]."""
    points = [p for p in history if now - HISTORY_SECONDS <= p.at <= now]
    if not points:
        return Chart()
    window = min(float(HISTORY_SECONDS), max(MIN_WINDOW, now - points[0].at))
    start = now - window
    points = downsample(points, start, window)

    values = [v for p in points for v in (p.meters, p.inverters, p.load)]
    values += [p.limit for p in points if p.limit is not None]
    low, high = min(0.0, *values), max(0.0, *values)
    step = nice_step(high - low or 1.0)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    if high - low < step:
        high = low + step

    def x(at: float) -> float:
        return round((at - start) / window * WIDTH, 1)

    def y(kw: float) -> float:
        return round(HEIGHT - (kw - low) / (high - low) * HEIGHT, 1)

    gap = max(3 * scan_interval, 3 * window / MAX_POINTS) + 1.0
    paths = {}
    for attribute, _, _ in SERIES:
        parts = []
        previous: float | None = None
        for point in points:
            verb = "M" if previous is None or point.at - previous > gap else "L"
            parts.append(f"{verb}{x(point.at)} {y(getattr(point, attribute))}")
            previous = point.at
        paths[attribute] = "".join(parts)

    # The export limit as a step line: it holds its value until the next change.
    limit_parts: list[str] = []
    held: float | None = None
    for point in points:
        if point.limit is None:
            continue
        if held is None:
            limit_parts.append(f"M{x(point.at)} {y(point.limit)}")
        elif point.limit != held:
            limit_parts.append(f"H{x(point.at)}V{y(point.limit)}")
        held = point.limit
    if held is not None:
        limit_parts.append(f"H{WIDTH}")

    y_ticks = []
    count = round((high - low) / step)
    for i in range(count + 1):
        value = low + i * step
        text = f"{value:g}" if step >= 1 else f"{value:.1f}" if step >= 0.1 else f"{value:.2f}"
        text = text.replace(".", tr.decimal)
        y_ticks.append(Tick(round(100 - (value - low) / (high - low) * 100, 2), text))

    minutes = round(window / 60)
    tick_minutes = 10 if minutes > 20 else 5 if minutes > 10 else 2
    first = math.ceil(start / (tick_minutes * 60)) * tick_minutes * 60
    x_ticks = [
        Tick(round((at - start) / window * 100, 2), hour_minute(at))
        for at in range(int(first), int(now) + 1, tick_minutes * 60)
    ]

    markers = group_markers(
        [r for r in commands if start <= r.at <= now and r.source not in HIDDEN_SOURCES],
        start,
        window,
        tr,
    )

    return Chart(
        paths=paths,
        limit="".join(limit_parts),
        zero=y(0.0) if low < 0 < high else None,
        y_ticks=tuple(y_ticks),
        x_ticks=tuple(x_ticks),
        markers=tuple(markers),
        overshoots=overshoot_bands(overshoots, start, now),
        minutes=minutes,
        points=len(points),
    )


def overshoot_bands(
    periods: Iterable[Sequence[float | None]], start: float, now: float
) -> tuple[Band, ...]:
    """The overshoot periods inside [start, now] as shaded bands; an open one runs to now."""
    window = now - start
    bands = []
    for since, until in periods:
        if since is None or window <= 0:
            continue
        left, right = max(since, start), min(now if until is None else until, now)
        if right < left:
            continue  # ended before the window, or starts after now
        x = (left - start) / window * WIDTH
        width = max(MIN_BAND, (right - left) / window * WIDTH)
        x = min(x, WIDTH - width)
        shown_until = None if until is None else hour_minute(until)
        bands.append(Band(round(x, 1), round(width, 1), hour_minute(since), shown_until))
    return tuple(bands)


def group_markers(
    records: Sequence[CommandRecord], start: float, window: float, tr: Translator = ENGLISH
) -> tuple[Marker, ...]:
    """One mark per run of commands closer than GROUP_PERCENT; its title lists each of them."""
    groups: list[list[CommandRecord]] = []
    for record in sorted(records, key=lambda r: r.at):
        percent = (record.at - start) / window * 100
        if groups and percent - (groups[-1][0].at - start) / window * 100 < GROUP_PERCENT:
            groups[-1].append(record)
        else:
            groups.append([record])
    markers = []
    for group in groups:
        at = group[0].at
        lines = []
        for record in group:
            ok = bool(record.feedback & Feedback.OK)
            result = (
                tr.gettext(N_("OK"))
                if ok
                else f"{headline(record.feedback, tr)} ({describe_feedback(record.feedback)})"
            )
            words = tr.gettext(N_("{at} {command} from {source}: {result}"))
            lines.append(
                words.format(
                    at=hour_minute(record.at),
                    command=record.command,
                    source=record.source,
                    result=result,
                )
            )
        markers.append(
            Marker(
                round((at - start) / window * 100, 2),
                round((at - start) / window * WIDTH, 1),
                all(r.feedback & Feedback.OK for r in group),
                "\n".join(lines),
                len(group),
            )
        )
    return tuple(markers)
