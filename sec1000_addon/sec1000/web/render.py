"""What the templates show: words for feedback, power flow, and the last hour as an SVG chart."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sec1000.protocol import Feedback, describe_feedback
from sec1000.state import HISTORY_SECONDS, CommandRecord, HistoryPoint, OperationName, StateModel

CHART_WIDTH = 600
CHART_HEIGHT = 200
MIN_WINDOW_SECONDS = 300
BUTTONS = (
    OperationName.SET_EXPORT_LIMIT,
    OperationName.GET_EXPORT_LIMIT,
    OperationName.SET_DATETIME,
    OperationName.RESET_EXPORT_WATCHDOG,
    OperationName.EXPORT_ENABLE,
    OperationName.EXPORT_DISABLE,
)


@dataclass(frozen=True, slots=True)
class Status:
    """A button's state: css class, short word and the full sentence."""

    kind: str  # ready | waiting | ok | error
    word: str
    detail: str


def status(state: StateModel, operation: OperationName) -> Status:
    """The live state of one operation's button."""
    value = state.feedback[operation]
    message = state.messages.get(operation, "")
    if operation not in state.messages:
        return Status("ready", "ready", "not run since the add-on started")
    if value == Feedback.WAITING:
        return Status("waiting", "waiting…", message or "waiting for the device")
    if value & Feedback.OK:
        word = "OK (corrected)" if value & Feedback.INVALID_INPUT else "OK"
        return Status("ok", word, message)
    return Status("error", f"error {value}: {describe_feedback(value)}", message)


def clock(at: float | None) -> str:
    """A wall time as HH:MM:SS (local), or a dash."""
    return "—" if at is None else dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def flow(values: dict[str, float] | None) -> dict[str, Any]:
    """Grid, solar and home power with the grid's direction."""
    if not values:
        return {"known": False}
    meters = values["meters_power"]
    direction = "exporting" if meters > 0 else ("importing" if meters < 0 else "balanced")
    return {
        "known": True,
        "solar": values["inverters_power"],
        "home": values["load_power"],
        "grid": abs(meters),
        "direction": direction,
    }


def _scale(points: Iterable[float], pad: float = 0.2) -> tuple[float, float]:
    values = list(points) or [0.0]
    low, high = min(*values, 0.0), max(*values, 0.1)
    span = high - low
    return low - span * pad / 2, high + span * pad / 2


def chart(
    history: Iterable[HistoryPoint], commands: Iterable[CommandRecord], now: float | None = None
) -> dict[str, Any]:
    """Polylines (meters, inverters, load), the limit as a step line, and command markers."""
    now = time.time() if now is None else now
    points = [p for p in history if p.at >= now - HISTORY_SECONDS]
    # Until an hour has been seen, span what there is (at least 5 minutes), not an empty hour.
    window = min(HISTORY_SECONDS, max(MIN_WINDOW_SECONDS, now - points[0].at if points else 0.0))
    start = now - window
    low, high = _scale(
        [
            v
            for p in points
            for v in (p.meters, p.inverters, p.load, p.limit if p.limit is not None else 0.0)
        ]
    )

    def x(at: float) -> float:
        return round((at - start) / window * CHART_WIDTH, 1)

    def y(kw: float) -> float:
        return round(CHART_HEIGHT - (kw - low) / (high - low) * CHART_HEIGHT, 1)

    def line(attribute: str) -> str:
        return " ".join(f"{x(p.at)},{y(getattr(p, attribute))}" for p in points)

    step: list[str] = []
    previous: float | None = None
    for point in points:
        if point.limit is None:
            continue
        if previous is not None and previous != point.limit:
            step.append(f"{x(point.at)},{y(previous)}")
        step.append(f"{x(point.at)},{y(point.limit)}")
        previous = point.limit
    if previous is not None:
        step.append(f"{CHART_WIDTH},{y(previous)}")
    markers = [
        {
            "x": x(record.at),
            "title": f"{clock(record.at)} {record.command}: {record.message}",
            "ok": bool(record.feedback & Feedback.OK),
        }
        for record in commands
        if record.at >= start
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "meters": line("meters"),
        "inverters": line("inverters"),
        "load": line("load"),
        "limit": " ".join(step),
        "zero": y(0.0),
        "top": round(high, 2),
        "bottom": round(low, 2),
        "markers": markers,
        "empty": not points,
        "minutes": round(window / 60),
    }
