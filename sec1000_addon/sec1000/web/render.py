"""What the templates show: one view of the whole state, the power flow, the energy chart, and
the Jinja2 environment with the panel's filters (the live state in words is in status.py)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from sec1000.commands import COMMANDS, CommandName
from sec1000.device.health import LinkHealth
from sec1000.headline import Headline, headline
from sec1000.limiter.audit import AuditLog
from sec1000.options import FIRST_CONTROLLER, Options
from sec1000.state import DAY_SECONDS, CommandRecord, StateModel
from sec1000.web.chart import (
    Chart,
    build_chart,
    build_day_chart,
    hour_minute,
    nice_step,
    percent,
    tick_text,
)
from sec1000.web.controllers import at
from sec1000.web.i18n import ENGLISH, LANGUAGES, N_, Translator, install, of_context
from sec1000.web.phrases import command, origin, say
from sec1000.web.prices_chart import PriceChart, build_price_chart
from sec1000.web.status import (
    ReadAge,
    Status,
    Toggle,
    Unreachable,
    ago_words,
    applied,
    blocked,
    clock,
    counters,
    read_age,
    result_words,
    status,
    toggle,
    unreachable,
)
from sec1000.web.words import (
    CHOICES,
    FAULTS,
    HA_KEYS,
    MODES,
    OPTION_LABELS,
    choice_label,
    mode_name,
)

# The dashboard's styled buttons, in registry order, each with its feedback sensor.
DASHBOARD = tuple(spec for spec in COMMANDS if spec.dashboard and spec.feedback is not None)
BUTTONS = tuple(spec.feedback for spec in DASHBOARD if spec.feedback is not None)


@dataclass(frozen=True, slots=True)
class Flow:
    """Solar, home and grid power, and which way the grid power goes."""

    solar: float
    home: float
    grid: float
    direction: str  # exporting | importing | balanced
    over: bool = False  # the meter check sees the export over the limit: not a good export


def flow(values: Mapping[str, float] | None, over: bool = False) -> Flow | None:
    """The power flow at a glance (meters power is + when exporting, - when importing);
    `over`: the meter check has an overshoot under way."""
    if not values:
        return None
    meters = values["meters_power"]
    direction = "exporting" if meters > 0.005 else "importing" if meters < -0.005 else "balanced"
    return Flow(values["inverters_power"], values["load_power"], abs(meters), direction, over)


@dataclass(frozen=True, slots=True)
class EnergyBar:
    """One series' bar of one day in the Energy card's chart (SVG units)."""

    x: float
    height: float
    series: str
    kwh: float


@dataclass(frozen=True, slots=True)
class EnergyDay:
    """One day of the Energy card's chart: its label and its bars."""

    label: str
    x: float
    bars: tuple[EnergyBar, ...]


ENERGY_SERIES = (("pv", N_("Solar")), ("grid_export", N_("Export")), ("grid_import", N_("Import")))
ENERGY_CHART_HEIGHT = (
    106.0  # the bars' full height (room above for the unit); the axis at ENERGY_BASE
)
ENERGY_BASE = 126.0
ENERGY_LEFT = 40.0  # room for the y-axis labels
ENERGY_DAY_WIDTH = 54.0
ENERGY_BAR_WIDTH = 14.0
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


ENERGY_TOP = ENERGY_BASE - ENERGY_CHART_HEIGHT
ENERGY_RIGHT = ENERGY_LEFT + 7 * ENERGY_DAY_WIDTH + 2


@dataclass(frozen=True, slots=True)
class EnergyChart:
    """The Energy card's chart: the days' bars and the kWh axis (y, label). The SVG shows the
    plot only (ENERGY_LEFT … ENERGY_RIGHT, ENERGY_TOP … ENERGY_BASE), stretched to the card; the
    labels are HTML beside it, in percent of the plot, legible at any width."""

    days: tuple[EnergyDay, ...]
    ticks: tuple[tuple[float, str], ...]

    @property
    def box(self) -> str:
        """The SVG's viewBox: the plot."""
        return (
            f"{ENERGY_LEFT:g} {ENERGY_TOP:g} {ENERGY_RIGHT - ENERGY_LEFT:g} {ENERGY_CHART_HEIGHT:g}"
        )

    @property
    def tick_marks(self) -> tuple[tuple[float, str], ...]:
        """The kWh labels at their heights, in percent of the plot (0: the top)."""
        return tuple(
            (percent(y, ENERGY_TOP, ENERGY_CHART_HEIGHT), label) for y, label in self.ticks
        )

    @property
    def day_marks(self) -> tuple[tuple[float, str, str], ...]:
        """Each day's label under its bars: its place in percent of the plot, weekday, date."""
        marks = []
        for day in self.days:
            weekday, date = day.label.rsplit(" ", 1)
            centre = day.x + (3 * ENERGY_BAR_WIDTH + 4) / 2
            marks.append((percent(centre, ENERGY_LEFT, ENERGY_RIGHT - ENERGY_LEFT), weekday, date))
        return tuple(marks)

    @property
    def tick_chars(self) -> int:
        """The longest kWh label: the width of the axis, in characters."""
        return max((len(label) for _, label in self.ticks), default=1)


def energy_week(week: Iterable[Mapping[str, Any]], tr: Translator = ENGLISH) -> EnergyChart:
    """The last 7 days as grouped bars (solar, export, import) on a round kWh scale."""
    days = list(week)
    top = max((float(d.get(key, 0.0)) for d in days for key, _ in ENERGY_SERIES), default=0.0)
    step = nice_step(top or 1.0, 3)
    top = max(step, math.ceil(top / step - 1e-9) * step)
    scale = ENERGY_CHART_HEIGHT / top
    ticks = tuple(
        (ENERGY_BASE - n * step * scale, tick_text(n * step, step, tr))
        for n in range(round(top / step) + 1)
    )
    out = []
    for n, day in enumerate(days):
        x = ENERGY_LEFT + n * ENERGY_DAY_WIDTH + 4
        bars = tuple(
            EnergyBar(
                x + i * (ENERGY_BAR_WIDTH + 2),
                float(day.get(key, 0.0)) * scale,
                key,
                float(day.get(key, 0.0)),
            )
            for i, (key, _) in enumerate(ENERGY_SERIES)
        )
        date = dt.date.fromisoformat(str(day["date"]))
        out.append(EnergyDay(f"{tr.gettext(WEEKDAYS[date.weekday()])} {date.day:02d}", x, bars))
    return EnergyChart(tuple(out), ticks)


QUICK_WORDS = {
    "off": N_("Off: {kw} kW"),
    "half": N_("Half: {kw} kW"),
    "maximum": N_("Maximum: {kw} kW"),
}


def quick_limits(options: Options) -> tuple[tuple[str, str, float], ...]:
    """Off, half and the highest limit a user may set now (the maximum export limit, or the
    export ceiling when lower), each rounded down to 10 W; a choice equal to one before it is
    left out."""
    top = options.max_export_limit
    if options.export_ceiling_kw:
        top = min(top, options.export_ceiling_kw)
    top = math.floor(top * 100 + 1e-6) / 100
    choices: list[tuple[str, str, float]] = []
    for key, kw in (("off", 0.0), ("half", math.floor(top * 50 + 1e-6) / 100), ("maximum", top)):
        if not choices or kw > choices[-1][2]:
            choices.append((key, QUICK_WORDS[key], kw))
    return tuple(choices)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One controller's row of the dashboard's summary (with more than one controller)."""

    name: str
    state: StateModel
    health: LinkHealth
    age: ReadAge | None = None  # how old its telemetry is

    @property
    def link_ok(self) -> bool:
        """True when the last exchange with the controller succeeded."""
        return self.health.last_success is not None and self.health.consecutive_failures == 0

    @property
    def export_kw(self) -> float | None:
        """The power going to the grid now (negative: drawn from it), or None before a read."""
        telemetry = self.state.telemetry
        return telemetry["meters_power"] if telemetry else None


def old_after(options: Options) -> float:
    """Seconds after which a controller's values are old: two reads and a request's timeout."""
    return 2 * options.scan_interval + options.request_timeout


@dataclass(kw_only=True)
class View:
    """The state as the templates read it; computed parts are built once per render."""

    state: StateModel
    options: Options
    options_error: Any
    health: LinkHealth
    link_target: str
    ha: Mapping[str, Any]  # Home Assistant's status, as the adapter tells it
    faults: Mapping[str, bool] | None
    overloaded: bool = False
    now: float = field(default_factory=time.time)
    tr: Translator = ENGLISH
    price_unit: str | None = None  # the price sensor's unit, e.g. EUR/kWh
    applies: dict[str, float] = field(default_factory=dict)
    controller: str = FIRST_CONTROLLER  # the chosen controller's name
    names: tuple[str, ...] = (FIRST_CONTROLLER,)  # every controller's, the first one first
    rows: tuple[SummaryRow, ...] = ()  # the summary, with more than one controller
    page: str = "dashboard"
    audit: AuditLog | None = None  # the controller's audit trail: the day chart's marks

    def at(self, path: str, name: str | None = None) -> str:
        """A relative URL of the panel for the chosen controller (or for `name`)."""
        return at(path, name or self.controller)

    @functools.cached_property
    def headline(self) -> Headline:
        """What limits the export, who set it and until when."""
        return headline(self.state, self.options)

    @functools.cached_property
    def price_chart(self) -> PriceChart | None:
        """The Prices card's chart, or None before any price."""
        return build_price_chart(
            self.state.policy,
            self.state.limit_log,
            self.now,
            self.options.max_export_limit,
            self.tr.short,
        )

    @functools.cached_property
    def energy_chart(self) -> EnergyChart | None:
        """The Energy card's last 7 days, or None before any day is counted."""
        week = list(self.state.energy.get("week", ()))
        return energy_week(week, self.tr) if week else None

    @functools.cached_property
    def flow(self) -> Flow | None:
        """The power flow, or None before the first read."""
        return flow(self.state.telemetry, bool(self.state.overshoot.get("on")))

    @functools.cached_property
    def chart(self) -> Chart:
        """The last hour."""
        return build_chart(
            self.state.history,
            self.state.commands,
            self.now,
            self.options.scan_interval,
            self.tr,
            self.state.overshoot.get("periods", ()),
        )

    @functools.cached_property
    def day_chart(self) -> Chart:
        """The last day: minute averages, the audit trail's writes, the day's overshoots."""
        writes = self.audit.writes_since(self.now - DAY_SECONDS) if self.audit else ()
        return build_day_chart(
            self.state.day.points(),
            writes,
            self.now,
            self.options.scan_interval,
            self.tr,
            self.state.overshoot.get("periods", ()),
        )

    @functools.cached_property
    def toggle(self) -> Toggle:
        """The export switch."""
        return toggle(self.state, self.options, self.tr, self.now)

    @functools.cached_property
    def unreachable(self) -> Unreachable | None:
        """Why the controller has never answered (None: it has, or the options are invalid)."""
        if self.options_error is not None:
            return None
        host, _, port = self.link_target.rpartition(":")
        return unreachable(self.health, (host, int(port)), self.tr)

    @functools.cached_property
    def blocked(self) -> str | None:
        """Why the dashboard's buttons cannot act now, or None."""
        return blocked(self.state, self.health, self.tr)

    @property
    def old_after(self) -> float:
        """Seconds after which a read's values are old: two reads and a request's timeout."""
        return old_after(self.options)

    def read_age(self, at: float | None) -> ReadAge:
        """The age of values read at `at`, and whether they are old."""
        return read_age(at, self.now, self.old_after, self.tr)

    def status(self, operation: str) -> Status:
        """One button's live state."""
        return status(self.state, CommandName(operation), self.tr, self.now)

    @functools.cached_property
    def counters(self) -> list[tuple[int, str, int]]:
        """Exchanges per feedback bit."""
        return counters(self.health, self.tr)

    @functools.cached_property
    def commands(self) -> list[CommandRecord]:
        """The command log, newest first."""
        return list(reversed(self.state.commands))

    @functools.cached_property
    def frames(self) -> list[dict[str, Any]]:
        """Recent raw frames, newest first."""
        return list(reversed(self.health.frame_log()))

    def field_value(self, name: str) -> str:
        """What a command's field shows before the user types: the value the device holds."""
        if name == "limit" and self.state.export_limit_kw is not None:
            return self.tr.number(self.state.export_limit_kw)
        return ""

    @functools.cached_property
    def quick_limits(self) -> tuple[tuple[str, str, str], ...]:
        """The limit field's quick choices: (key, words, value as the field shows it) for off,
        half and the maximum a limit may be now (the maximum export limit, or the export
        ceiling when that is lower), in the controller's 10 W steps, never above either."""
        return tuple(
            (key, self.tr.gettext(words).format(kw=self.tr.short(kw)), self.tr.short(kw))
            for key, words, kw in quick_limits(self.options)
        )

    @property
    def mode(self) -> str | None:
        """The control mode the device reported (or confirmed)."""
        mode = self.state.control_mode
        return mode.option if mode is not None else None

    def applied(self, step: str) -> Status | None:
        """How a setup step's write to the controller went, or None when it started none."""
        return applied(self.state, self.applies.get(step), self.tr, self.now)

    @property
    def mode_name(self) -> str:
        """The reported control mode's one name."""
        return mode_name(self.mode, self.tr)

    @property
    def link_ok(self) -> bool:
        """True when the last exchange with the device succeeded."""
        return self.health.last_success is not None and self.health.consecutive_failures == 0


@jinja2.pass_context
def _kw(context: jinja2.runtime.Context, value: float | None, digits: int = 2) -> str:
    return of_context(context).number(value, digits)


@jinja2.pass_context
def _num(context: jinja2.runtime.Context, value: float) -> str:
    return of_context(context).short(value)


@jinja2.pass_context
def _result(context: jinja2.runtime.Context, feedback: int) -> str:
    return result_words(feedback, of_context(context))


@jinja2.pass_context
def _ago_words(context: jinja2.runtime.Context) -> dict[str, object]:
    return ago_words(of_context(context))


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, at: object) -> str:
    """An ISO time (the audit trail's) as a date and time of day in the page's language."""
    try:
        when = dt.datetime.fromisoformat(str(at))
    except ValueError:
        return str(at)[:19].replace("T", " ")
    return f"{of_context(context).date(when)} {when:%H:%M:%S}"


@jinja2.pass_context
def _say(context: jinja2.runtime.Context, message: str | None) -> str:
    return say(message, of_context(context))


@jinja2.pass_context
def _origin(context: jinja2.runtime.Context, source: str | None) -> str:
    return origin(source, of_context(context))


@jinja2.pass_context
def _command(context: jinja2.runtime.Context, name: str) -> str:
    return command(name, of_context(context))


@jinja2.pass_context
def _choice(context: jinja2.runtime.Context, choice: str, key: str) -> str:
    return choice_label(key, choice, of_context(context))


def environment() -> jinja2.Environment:
    """Jinja2 with the package's templates, autoescaped, translated, and the panel's filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sec1000.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,  # the templates are read once, at start: no disk on a request
    )
    install(env)
    env.filters["clock"] = clock
    env.filters["hm"] = hour_minute  # HH:MM
    env.filters["kw"] = _kw  # a number with fixed decimals, in the page's language
    env.filters["num"] = _num  # a number without trailing zeros, in the page's language
    env.filters["result"] = _result
    env.filters["when"] = _when  # an ISO time: the date in the language's order, HH:MM:SS
    env.filters["say"] = _say  # a sentence of the core in the page's language, options by label
    env.filters["origin"] = _origin  # who started it: "panel (anna)", "price policy"
    env.filters["command"] = _command  # a command by its words
    env.filters["choice"] = _choice  # a menu choice's label: {{ choice|choice(key) }}
    env.globals["BUTTONS"] = [op.value for op in BUTTONS]
    env.globals["DASHBOARD"] = DASHBOARD
    env.globals["MODE_HINTS"] = MODES  # {mode: (its one name, a hint)}
    env.globals["ENERGY_SERIES"] = ENERGY_SERIES
    env.globals["OPTION_LABELS"] = OPTION_LABELS
    env.globals["CHOICES"] = CHOICES
    env.globals["FAULTS"] = FAULTS
    env.globals["HA_KEYS"] = HA_KEYS
    env.globals["LANGUAGES"] = LANGUAGES  # the language menu: each in its own name
    env.globals["ago_words"] = _ago_words  # an age's words for panel.js
    for name in env.list_templates():
        env.get_template(name)
    return env
