"""What the templates show: feedback in words, the power flow, and one view of the whole state."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from sec1000.commands import COMMANDS, CommandName
from sec1000.device.health import LinkHealth
from sec1000.operations import CommandResult
from sec1000.options import Options
from sec1000.protocol import Feedback, describe_feedback
from sec1000.state import CommandRecord, OperationName, StateModel
from sec1000.web.chart import Chart, build_chart
from sec1000.web.prices_chart import PriceChart, build_price_chart

# The dashboard's styled buttons, in registry order, each with its feedback sensor.
DASHBOARD = tuple(spec for spec in COMMANDS if spec.dashboard and spec.feedback is not None)
BUTTONS = tuple(spec.feedback for spec in DASHBOARD if spec.feedback is not None)
TOGGLE_OPERATIONS = (OperationName.EXPORT_ENABLE, OperationName.EXPORT_DISABLE)
# The commands the export switch runs: its own element shows their progress.
TOGGLE_COMMANDS = (
    CommandName.EXPORT_ENABLE,
    CommandName.EXPORT_DISABLE,
    CommandName.EXPORT_TOGGLE,
)
MODE_HINTS = {
    "value": ("By value", "limit the export to a value in kW; most plants"),
    "dred": ("DRED", "Demand Response Enabled Device: Australia and New Zealand"),
    "rcr": ("RCR", "Ripple Control Receiver: Germany"),
    "deactivated": ("Deactivated", "no limit: the full PV power may go to the grid"),
}
FEEDBACK_BITS = tuple(bit for bit in Feedback if bit)  # every bit but WAITING, low to high


@dataclass(frozen=True, slots=True)
class Status:
    """A button's live state, decoded in words."""

    kind: str  # ready | waiting | ok | error
    word: str
    detail: str
    feedback: int | None = None
    at: float | None = None
    source: str | None = None


def clock(at: float | None) -> str:
    """A wall time as HH:MM:SS (local), or a dash."""
    return "—" if at is None else dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def kw(value: float | None, digits: int = 2) -> str:
    """A power in kW, or a dash."""
    return "—" if value is None else f"{value:.{digits}f}"


def last_record(commands: Iterable[CommandRecord], names: Iterable[str]) -> CommandRecord | None:
    """The newest command log entry for any of `names`."""
    wanted = set(names)
    for record in reversed(list(commands)):
        if record.command in wanted:
            return record
    return None


def running(state: StateModel, operation: OperationName) -> bool:
    """True while the operation waits for the device (0 is also the value before any run)."""
    return state.feedback[operation] == Feedback.WAITING and operation in state.messages


def status(state: StateModel, operation: OperationName) -> Status:
    """The live state of one operation's button, whoever started it (panel, Home Assistant...)."""
    value = state.feedback[operation]
    message = state.messages.get(operation, "")
    if operation not in state.messages:
        return Status("ready", "Ready", "not run since the add-on started")
    if value == Feedback.WAITING:
        return Status("waiting", "Waiting…", message or "waiting for the device", 0)
    record = last_record(state.commands, [operation.value])
    at, source = (record.at, record.source) if record is not None else (None, None)
    if value & Feedback.OK:
        word = "OK, corrected" if value & Feedback.INVALID_INPUT else "OK"
        return Status("ok", word, message, value, at, source)
    detail = describe_feedback(value)
    if message and message != detail:
        detail = f"{detail}: {message}"
    return Status("error", f"Error {value}", detail, value, at, source)


@dataclass(frozen=True, slots=True)
class Toggle:
    """The export ON/OFF switch: its state, what a press does, and how the last switch went."""

    kind: str  # on | off | unknown, with waiting / error on top
    checked: bool
    label: str
    command: str
    status: Status


def toggle(state: StateModel, options: Options) -> Toggle:
    """The export switch: on/off from the limit, waiting while a switch runs, else the last result."""
    export = state.export_state
    checked = bool(state.exporting)
    if export is None:
        label, command = "Export ?", "export_toggle"
    else:
        label = "Export ON" if checked else "Export OFF"
        command = "export_disable" if checked else "export_enable"
    busy = [op for op in TOGGLE_OPERATIONS if running(state, op)]
    if busy:
        word = "Switching on…" if busy[-1] is OperationName.EXPORT_ENABLE else "Switching off…"
        return Toggle(
            "waiting",
            checked,
            label,
            command,
            Status("waiting", word, state.messages.get(busy[-1], "")),
        )
    record = last_record(state.commands, [op.value for op in TOGGLE_OPERATIONS])
    if record is not None and not record.feedback & Feedback.OK:
        return Toggle(
            "error", checked, label, command, status(state, OperationName(record.command))
        )
    if export is None:
        detail = "the export state is not known yet; a press reads it first"
        return Toggle("unknown", False, label, command, Status("ready", "Unknown", detail))
    limit = kw(state.export_limit_kw)
    if checked:
        detail = f"limit {limit} kW; off writes the minimum, {options.min_export_limit:g} kW"
    else:
        detail = f"limit {limit} kW; on writes the maximum, {options.max_export_limit:g} kW"
    ok = record is not None
    return Toggle(
        "on" if checked else "off",
        checked,
        label,
        command,
        Status(
            "ok" if ok else "ready",
            "On" if checked else "Off",
            detail,
            record.feedback if record else None,
            record.at if record else None,
            record.source if record else None,
        ),
    )


@dataclass(frozen=True, slots=True)
class Flow:
    """Solar, home and grid power, and which way the grid power goes."""

    solar: float
    home: float
    grid: float
    direction: str  # exporting | importing | balanced


def flow(values: Mapping[str, float] | None) -> Flow | None:
    """The power flow at a glance (meters power is + when exporting, - when importing)."""
    if not values:
        return None
    meters = values["meters_power"]
    direction = "exporting" if meters > 0.005 else "importing" if meters < -0.005 else "balanced"
    return Flow(values["inverters_power"], values["load_power"], abs(meters), direction)


def counters(health: LinkHealth) -> list[tuple[int, str, int]]:
    """Exchanges counted per feedback bit: (bit, words, count), every bit listed."""
    out = []
    for bit in FEEDBACK_BITS:
        name = (bit.name or str(int(bit))).lower()
        out.append((int(bit), describe_feedback(int(bit)), health.counters.get(name, 0)))
    return out


def result_words(feedback: int) -> str:
    """A command's result in a few words."""
    if feedback & Feedback.OK:
        return "OK, corrected" if feedback & Feedback.INVALID_INPUT else "OK"
    return f"error {feedback}: {describe_feedback(feedback)}"


def connection_words(result: CommandResult) -> str:
    """A connection test's outcome in words."""
    if result.ok:
        return result.message
    return f"{describe_feedback(result.feedback)} (feedback {result.feedback}): {result.message}"


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


ENERGY_SERIES = (("pv", "Solar"), ("grid_export", "Export"), ("grid_import", "Import"))
ENERGY_CHART_HEIGHT = 120.0
ENERGY_DAY_WIDTH = 60.0
ENERGY_BAR_WIDTH = 14.0


def energy_week(week: Iterable[Mapping[str, Any]]) -> list[EnergyDay]:
    """The last 7 days as grouped bars (solar, export, import), scaled to the largest value."""
    days = list(week)
    top = max((float(d.get(key, 0.0)) for d in days for key, _ in ENERGY_SERIES), default=0.0)
    scale = ENERGY_CHART_HEIGHT / top if top > 0 else 0.0
    out = []
    for n, day in enumerate(days):
        x = n * ENERGY_DAY_WIDTH + 6
        bars = tuple(
            EnergyBar(
                x + i * (ENERGY_BAR_WIDTH + 2),
                float(day.get(key, 0.0)) * scale,
                key,
                float(day.get(key, 0.0)),
            )
            for i, (key, _) in enumerate(ENERGY_SERIES)
        )
        label = dt.date.fromisoformat(str(day["date"])).strftime("%a %d")
        out.append(EnergyDay(label, x, bars))
    return out


class View:
    """The state as the templates read it; computed parts are built once per render."""

    def __init__(
        self,
        *,
        state: StateModel,
        options: Options,
        options_error: Any,
        health: LinkHealth,
        link_target: str,
        ha_status: Mapping[str, Any],
        faults: Mapping[str, bool] | None,
        overloaded: bool = False,
        now: float | None = None,
    ) -> None:
        self.state = state
        self.options = options
        self.options_error = options_error
        self.health = health
        self.link_target = link_target
        self.ha = ha_status
        self.faults = faults
        self.overloaded = overloaded
        self.now = time.time() if now is None else now

    @functools.cached_property
    def price_chart(self) -> PriceChart | None:
        """The Prices card's chart, or None before any price."""
        return build_price_chart(
            self.state.policy, self.state.limit_log, self.now, self.options.max_export_limit
        )

    @functools.cached_property
    def energy_days(self) -> list[EnergyDay]:
        """The Energy card's last 7 days."""
        return energy_week(self.state.energy.get("week", ()))

    @functools.cached_property
    def flow(self) -> Flow | None:
        """The power flow, or None before the first read."""
        return flow(self.state.telemetry)

    @functools.cached_property
    def chart(self) -> Chart:
        """The last hour."""
        return build_chart(
            self.state.history, self.state.commands, self.now, self.options.scan_interval
        )

    @functools.cached_property
    def toggle(self) -> Toggle:
        """The export switch."""
        return toggle(self.state, self.options)

    def status(self, operation: str) -> Status:
        """One button's live state."""
        return status(self.state, OperationName(operation))

    @functools.cached_property
    def counters(self) -> list[tuple[int, str, int]]:
        """Exchanges per feedback bit."""
        return counters(self.health)

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
            return f"{self.state.export_limit_kw:.2f}"
        return ""

    @property
    def mode(self) -> str | None:
        """The control mode the device reported (or confirmed)."""
        mode = self.state.control_mode
        return mode.option if mode is not None else None

    @property
    def link_ok(self) -> bool:
        """True when the last exchange with the device succeeded."""
        return self.health.last_success is not None and self.health.consecutive_failures == 0


def environment() -> jinja2.Environment:
    """Jinja2 with the package's templates, autoescaped, and the panel's filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sec1000.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["clock"] = clock
    env.filters["kw"] = kw
    env.filters["result"] = result_words
    env.globals["BUTTONS"] = [op.value for op in BUTTONS]
    env.globals["DASHBOARD"] = DASHBOARD
    env.globals["MODE_HINTS"] = MODE_HINTS
    env.globals["ENERGY_SERIES"] = ENERGY_SERIES
    return env
