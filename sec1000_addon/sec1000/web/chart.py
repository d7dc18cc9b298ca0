"""The last hour (or day) as a server-rendered SVG: grid, solar and home power, the limit,
command marks, and the meter check's overshoots shaded."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sec1000.protocol import Feedback, describe_feedback
from sec1000.state import (
    DAY_SECONDS,
    DAY_STEP,
    HISTORY_SECONDS,
    CommandRecord,
    HistoryPoint,
    mean_point,
)
from sec1000.web.i18n import ENGLISH, N_, Translator
from sec1000.web.phrases import command, origin, say
from sec1000.web.words import headline

# The SVG is drawn in a fixed box and stretched to the card (preserveAspectRatio="none",
# non-scaling strokes); axis labels and markers are HTML placed in percent, so they stay legible.
WIDTH = 1000
HEIGHT = 300
MAX_POINTS = 300  # per series, whatever the refresh interval: keeps the page small
MIN_WINDOW = 600.0  # until ten minutes are known, show ten minutes
TICK_MINUTES = (2, 5, 10, 15, 30, 60, 120, 180, 240, 360)  # the time axis steps, in minutes
MAX_TIME_TICKS = 6  # steps across the window (one more label when both ends fall on one)
SERIES = (
    ("meters", "Grid", "s-meters"),
    ("inverters", "Solar", "s-inverters"),
    ("load", "Home", "s-load"),
)
HIDDEN_SOURCES = ("poll",)
GROUP_PERCENT = 2.5  # commands closer than this share one mark (90 s of an hour)
TITLE_LINES = 10  # a mark's title names its first commands, then says how many more
MIN_BAND = 2.0  # SVG units: an overshoot shorter than a pixel or two still shows
SMALLEST_SPAN = 0.001  # kW or kWh: a watt (or watt-hour) is the finest an axis tells apart


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


def percent(value: float, start: float, length: float) -> float:
    """Where `value` falls across [start, start + length], in percent (two decimals): how the
    charts place their HTML labels and marks over a stretched SVG."""
    return round((value - start) / length * 100, 2)


def hour_minute(at: float) -> str:
    """A wall time as HH:MM (local)."""
    return dt.datetime.fromtimestamp(at).strftime("%H:%M")


def nice_step(span: float, target: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = max(span, SMALLEST_SPAN) / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def step_decimals(step: float) -> int:
    """How many decimals tell the multiples of a tick step apart (0.25 → 2, 5 → 0)."""
    for decimals in range(16):
        if abs(round(step, decimals) - step) <= abs(step) * 1e-9:
            return decimals
    return 16


def tick_text(value: float, step: float, tr: Translator = ENGLISH) -> str:
    """An axis label as short as its value, yet with the decimals its step needs: two ticks of
    one axis never read the same ("0.0005" and "0.001", not "0.001" twice)."""
    text = f"{value:.{step_decimals(step)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.replace(".", tr.decimal)


def downsample(points: Sequence[HistoryPoint], start: float, window: float) -> list[HistoryPoint]:
    """Average the samples into at most MAX_POINTS time buckets (the limit keeps its last value)."""
    if len(points) <= MAX_POINTS:
        return list(points)
    size = window / MAX_POINTS
    buckets: dict[int, list[HistoryPoint]] = {}
    for point in points:
        index = min(int((point.at - start) // size), MAX_POINTS - 1)  # `now` is in the last
        buckets.setdefault(index, []).append(point)
    return [mean_point(group) for group in buckets.values()]


@dataclass(frozen=True, slots=True)
class Scale:
    """Where the plot puts a time and a power: [start, start + window] seconds across, [low,
    high] kW up, labelled every `step` kW."""

    start: float
    window: float
    low: float
    high: float
    step: float

    def x(self, at: float) -> float:
        """A time's place across the SVG box."""
        return round((at - self.start) / self.window * WIDTH, 1)

    def y(self, kw: float) -> float:
        """A power's height in the SVG box (more is higher up)."""
        return round(HEIGHT - (kw - self.low) / (self.high - self.low) * HEIGHT, 1)


@dataclass(frozen=True, slots=True)
class Span:
    """What a chart covers: at most `seconds` back from now, of samples `spacing` seconds apart
    (the refresh interval, or a minute for the day's averages)."""

    seconds: float
    spacing: float
    # The window reaches back to the oldest mark too: the day's power starts again at a
    # restart, its marks (the audit trail's writes) do not.
    widen_to_marks: bool = False


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
    return lay_out(history, commands, now, Span(HISTORY_SECONDS, scan_interval), tr, overshoots)


def build_day_chart(
    minutes: Iterable[HistoryPoint],
    writes: Iterable[CommandRecord],
    now: float,
    scan_interval: float,
    tr: Translator = ENGLISH,
    overshoots: Iterable[Sequence[float | None]] = (),
) -> Chart:
    """Lay out the last day of minute averages, with the day's writes and overshoots."""
    span = Span(DAY_SECONDS, max(scan_interval, DAY_STEP), widen_to_marks=True)
    return lay_out(minutes, writes, now, span, tr, overshoots)


def lay_out(
    history: Iterable[HistoryPoint],
    commands: Iterable[CommandRecord],
    now: float,
    span: Span,
    tr: Translator,
    overshoots: Iterable[Sequence[float | None]],
) -> Chart:
    """The chart of what `span` covers up to `now`."""
    points = [p for p in history if now - span.seconds <= p.at <= now]
    if not points:
        return Chart()
    marks = [
        r for r in commands if now - span.seconds <= r.at <= now and r.source not in HIDDEN_SOURCES
    ]
    oldest = min([points[0].at, *(r.at for r in marks)] if span.widen_to_marks else [points[0].at])
    window = min(float(span.seconds), max(MIN_WINDOW, now - oldest))
    start = now - window
    points = downsample(points, start, window)
    scale = chart_scale(points, start, window)
    gap = max(3 * span.spacing, 3 * window / MAX_POINTS) + 1.0
    shown = [r for r in marks if start <= r.at]
    return Chart(
        paths=series_paths(points, scale, gap),
        limit=limit_line(points, scale),
        zero=scale.y(0.0) if scale.low < 0 < scale.high else None,
        y_ticks=power_ticks(scale, tr),
        x_ticks=time_ticks(scale, now),
        markers=group_markers(shown, start, window, tr),
        overshoots=overshoot_bands(overshoots, start, now),
        minutes=round(window / 60),
        points=len(points),
    )


def chart_scale(points: Sequence[HistoryPoint], start: float, window: float) -> Scale:
    """The power axis: whole steps from the lowest value (or 0) to the highest (or 0)."""
    values = [v for p in points for v in (p.meters, p.inverters, p.load)]
    values += [p.limit for p in points if p.limit is not None]
    low, high = min(0.0, *values), max(0.0, *values)
    step = nice_step(high - low or 1.0)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    if high - low < step:
        high = low + step
    return Scale(start, window, low, high, step)


def series_paths(points: Sequence[HistoryPoint], scale: Scale, gap: float) -> dict[str, str]:
    """One SVG path per series; a pause longer than `gap` seconds starts a new line."""
    paths = {}
    for attribute, _, _ in SERIES:
        parts = []
        previous: float | None = None
        for point in points:
            verb = "M" if previous is None or point.at - previous > gap else "L"
            parts.append(f"{verb}{scale.x(point.at)} {scale.y(getattr(point, attribute))}")
            previous = point.at
        paths[attribute] = "".join(parts)
    return paths


def limit_line(points: Sequence[HistoryPoint], scale: Scale) -> str:
    """The export limit as a step line: it holds its value until the next change, then to the
    right edge; "" when no point knows it."""
    parts: list[str] = []
    held: float | None = None
    for point in points:
        if point.limit is None:
            continue
        if held is None:
            parts.append(f"M{scale.x(point.at)} {scale.y(point.limit)}")
        elif point.limit != held:
            parts.append(f"H{scale.x(point.at)}V{scale.y(point.limit)}")
        held = point.limit
    if held is not None:
        parts.append(f"H{WIDTH}")
    return "".join(parts)


def power_ticks(scale: Scale, tr: Translator = ENGLISH) -> tuple[Tick, ...]:
    """A label at every step of the power axis, as short as its value, in the page's style."""
    low, high, step = scale.low, scale.high, scale.step
    values = (low + i * step for i in range(round((high - low) / step) + 1))
    return tuple(
        Tick(percent(high, value, high - low), tick_text(value, step, tr)) for value in values
    )


def time_ticks(scale: Scale, now: float) -> tuple[Tick, ...]:
    """HH:MM at every whole step of local time (10 minutes in an hour, 4 hours in a day; the
    smallest step of TICK_MINUTES giving at most MAX_TIME_TICKS) up to `now`. Each candidate's
    own local time decides, so a change to or from summer time keeps the ticks on the grid."""
    minutes = scale.window / 60
    tick_minutes = next(
        (m for m in TICK_MINUTES if minutes / m <= MAX_TIME_TICKS), TICK_MINUTES[-1]
    )
    # Every zone's offset is whole quarter hours: local whole steps fall on these candidates.
    every = 60 if tick_minutes < 15 else 900
    first = math.ceil(scale.start / every) * every
    ticks = []
    for at in range(int(first), int(now) + 1, every):
        local = dt.datetime.fromtimestamp(at)
        if (local.hour * 60 + local.minute) % tick_minutes == 0:
            ticks.append(Tick(percent(at, scale.start, scale.window), hour_minute(at)))
    return tuple(ticks)


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
        if groups and (record.at - groups[-1][0].at) / window * 100 < GROUP_PERCENT:
            groups[-1].append(record)
        else:
            groups.append([record])
    markers = []
    for group in groups:
        at = group[0].at
        lines = []
        for record in group[:TITLE_LINES]:
            ok = bool(record.feedback & Feedback.OK)
            result = (
                tr.gettext(N_("OK"))
                if ok
                else f"{headline(record.feedback, tr)} ({say(describe_feedback(record.feedback), tr)})"
            )
            if not ok and record.message:
                result = f"{result}: {say(record.message, tr)}"  # the reason, as the log has it
            words = tr.gettext(N_("{at} {command} from {source}: {result}"))
            lines.append(
                words.format(
                    at=hour_minute(record.at),
                    command=command(record.command, tr),
                    source=origin(record.source, tr),
                    result=result,
                )
            )
        if len(group) > TITLE_LINES:
            more = len(group) - TITLE_LINES
            words = tr.ngettext("… and %(count)s more", "… and %(count)s more", more)
            lines.append(words % {"count": more})
        markers.append(
            Marker(
                percent(at, start, window),
                round((at - start) / window * WIDTH, 1),
                all(r.feedback & Feedback.OK for r in group),
                "\n".join(lines),
                len(group),
            )
        )
    return tuple(markers)
