"""What the panel shows: feedback in words, the toggle, the power flow, the chart, the live map."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from sec1000.options import Options
from sec1000.protocol import Feedback
from sec1000.state import CommandRecord, HistoryPoint, OperationName, StateEvent, StateModel, Topic
from sec1000.web import live
from sec1000.web.chart import MAX_POINTS, build_chart, nice_step
from sec1000.web.render import flow, status, toggle

WEB = Path(__file__).resolve().parents[1] / "sec1000_addon" / "sec1000" / "web"
NOW = 1_800_000_000.0


def history(seconds: int, every: float, limit: float | None = 5.0) -> list[HistoryPoint]:
    return [
        HistoryPoint(NOW - seconds + i * every, 1.0, 3.0, 2.0, limit)
        for i in range(int(seconds / every))
    ]


# -- buttons


def test_a_button_is_ready_before_its_operation_ever_ran() -> None:
    state = StateModel()
    assert state.feedback[OperationName.SET_DATETIME] == Feedback.OK  # 1 at start, as before
    assert status(state, OperationName.SET_DATETIME).kind == "ready"


def test_a_running_operation_is_waiting_then_ok_with_who_and_when() -> None:
    state = StateModel()
    state.set_feedback(OperationName.SET_DATETIME, 0, "waiting for the device")
    assert status(state, OperationName.SET_DATETIME).kind == "waiting"
    state.set_feedback(OperationName.SET_DATETIME, 1, "device clock set")
    state.command_done(CommandRecord(NOW, "home_assistant (Bob)", "set_datetime", 1, "set"))
    shown = status(state, OperationName.SET_DATETIME)
    assert (shown.kind, shown.word, shown.source, shown.at) == (
        "ok",
        "OK",
        "home_assistant (Bob)",
        NOW,
    )


@pytest.mark.parametrize(
    ("feedback", "kind", "word", "words"),
    [
        (129, "ok", "OK, corrected", ""),
        (8, "error", "No answer from the controller", "timeout: the device did not answer in time"),
        (32, "error", "The answer was garbled", "checksum error"),
        (64 | 8, "error", "The controller cannot be reached", "timeout"),
        (128, "error", "Refused: not a valid value", "invalid input"),
        (2, "error", "Not carried out", "general error"),
    ],
)
def test_feedback_is_decoded_in_words(feedback: int, kind: str, word: str, words: str) -> None:
    """The headline is words; the bit and its number stay in the detail line."""
    state = StateModel()
    state.set_feedback(OperationName.GET_EXPORT_LIMIT, feedback, "what the device said")
    shown = status(state, OperationName.GET_EXPORT_LIMIT)
    assert (shown.kind, shown.word) == (kind, word)
    assert words in shown.detail and "what the device said" in shown.detail
    if kind == "error":
        assert f"(feedback {feedback})" in shown.detail and "Error" not in shown.word


def test_the_toggle_follows_the_export_state_and_offers_the_opposite() -> None:
    state = StateModel(min_export_limit_kw=0.0)
    options = Options(min_export_limit=0.0, max_export_limit=8.0)
    assert toggle(state, options).command == "export_toggle"  # unknown: a press reads first
    state.settings_read(export_limit_kw=8.0)
    on = toggle(state, options)
    assert (on.kind, on.checked, on.command, on.label) == (
        "on",
        True,
        "export_disable",
        "Export ON",
    )
    state.settings_read(export_limit_kw=0.0)
    off = toggle(state, options)
    assert (off.kind, off.checked, off.command) == ("off", False, "export_enable")


def test_the_toggle_waits_while_either_switch_runs_and_shows_the_last_error() -> None:
    state = StateModel()
    options = Options()
    state.settings_read(export_limit_kw=10.0)
    state.set_feedback(OperationName.EXPORT_DISABLE, 0, "waiting for the device")
    assert toggle(state, options).kind == "waiting"
    state.set_feedback(OperationName.EXPORT_DISABLE, 64, "refused")
    state.command_done(CommandRecord(NOW, "automation", "export_disable", 64, "refused"))
    failed = toggle(state, options)
    assert failed.kind == "error" and failed.checked  # still on: the switch failed
    assert "socket error" in failed.status.detail


def test_the_power_flow_says_which_way_the_grid_goes() -> None:
    values = {"meters_power": -1.2, "inverters_power": 0.5, "load_power": 1.7}
    importing = flow(values)
    assert importing is not None
    assert (importing.direction, importing.grid) == ("importing", 1.2)
    exporting = flow({**values, "meters_power": 2.0})
    assert exporting is not None and exporting.direction == "exporting"
    assert flow(None) is None


# -- the chart


def test_an_empty_history_draws_nothing() -> None:
    assert build_chart([], [], NOW, 30).empty


def test_a_long_history_is_averaged_down_to_a_few_hundred_points() -> None:
    chart = build_chart(history(3600, 1.0), [], NOW, 1)
    assert chart.points <= MAX_POINTS
    assert chart.paths["meters"].count("L") <= MAX_POINTS
    assert chart.minutes == 60


def test_a_pause_in_telemetry_breaks_the_lines() -> None:
    points = history(600, 5.0)
    points = [p for p in points if not NOW - 400 < p.at < NOW - 200]  # 200 s without reads
    chart = build_chart(points, [], NOW, 5)
    assert chart.paths["load"].count("M") == 2


def test_the_export_limit_is_a_step_line() -> None:
    points = history(600, 10.0, limit=5.0)
    points[30:] = [HistoryPoint(p.at, p.meters, p.inverters, p.load, 2.5) for p in points[30:]]
    chart = build_chart(points, [], NOW, 10)
    assert chart.limit.startswith("M")
    assert re.search(r"H[\d.]+V[\d.]+", chart.limit)  # across, then straight down
    assert chart.limit.endswith("H1000")


def test_commands_are_marked_but_telemetry_polls_are_not() -> None:
    commands = [
        CommandRecord(NOW - 100, "panel (Anna)", "set_export_limit", 1, "ok"),
        CommandRecord(NOW - 50, "automation", "export_disable", 8, "timeout"),
        CommandRecord(NOW - 40, "poll", "get_telemetry_data", 1, "read"),
        CommandRecord(NOW - 7200, "panel", "set_datetime", 1, "long ago"),
    ]
    chart = build_chart(history(600, 5.0), commands, NOW, 5)
    assert [m.ok for m in chart.markers] == [True, False]
    assert "from automation" in chart.markers[1].title and "timeout" in chart.markers[1].title


def test_axis_ticks_are_round_and_cover_negative_power() -> None:
    points = [HistoryPoint(NOW - 300 + i, -2.3, 4.1, 6.4, 5.0) for i in range(300)]
    chart = build_chart(points, [], NOW, 1)
    values = [float(t.text) for t in chart.y_ticks]
    assert values[0] <= -2.3 and values[-1] >= 6.4
    assert chart.zero is not None
    assert all(0 <= t.percent <= 100 for t in chart.y_ticks + chart.x_ticks)
    assert nice_step(7.0) in (1, 2, 2.5)


# -- the live map


def test_feedback_of_one_operation_changes_only_its_own_elements() -> None:
    event = StateEvent(Topic.FEEDBACK, {"operation": "set_datetime", "feedback": 0})
    assert live.affected(event) == {"status-set_datetime"}
    toggle_event = StateEvent(Topic.FEEDBACK, {"operation": "export_enable", "feedback": 1})
    assert live.affected(toggle_event) == {"export-toggle"}
    poll = StateEvent(Topic.FEEDBACK, {"operation": "get_telemetry_data", "feedback": 1})
    assert live.affected(poll) == set()


def test_telemetry_changes_the_values_and_the_chart() -> None:
    ids = live.affected(StateEvent(Topic.TELEMETRY, {}))
    assert {"flow", "phases", "chart", "export-info", "link-status"} <= ids
    assert not any(fid.startswith("status-") for fid in ids)


# -- the vendored HTMX


def test_htmx_is_the_pinned_npm_release_with_its_license() -> None:
    vendor = WEB / "static" / "vendor" / "htmx"
    version = (vendor / "VERSION").read_text()
    assert version.startswith("htmx.org 4.0.1 (npm)")
    digest = hashlib.sha256((vendor / "htmx.min.js").read_bytes()).hexdigest()
    assert f"sha256 {digest} htmx.min.js" in version, "htmx.min.js differs from the npm release"
    assert "Zero-Clause BSD" in (vendor / "LICENSE").read_text()
    assert 'version="4.0.1"' in (vendor / "htmx.min.js").read_text()


def test_no_template_or_script_names_a_root_url_or_another_host() -> None:
    for path in [*WEB.glob("templates/*.html"), WEB / "static" / "panel.js"]:
        text = path.read_text()
        urls = re.findall(r'(?:href|src|action|hx-post|hx-get)="([^"{]*)"', text)
        urls += re.findall(r'new URL\("([^"]*)"', text)
        bad = [u for u in urls if u.startswith(("/", "http:", "https:", "//"))]
        assert bad == [], (path.name, bad)
