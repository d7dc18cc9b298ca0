"""What the panel shows: feedback in words, the toggle, the power flow, the chart, the live map."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from sec1000.commands import CommandName, Refusal, Rule
from sec1000.options import Options
from sec1000.protocol import Feedback
from sec1000.state import CommandRecord, FeedbackChanged, HistoryPoint, StateModel, Topic
from sec1000.web import fragments
from sec1000.web.chart import MAX_POINTS, build_chart, nice_step
from sec1000.web.i18n import translator
from sec1000.web.render import ENERGY_CHART_HEIGHT, energy_week, environment, flow
from sec1000.web.status import age, applied, status, toggle
from sec1000.web.words import labelled, refusal_words

from tests.helpers.events import sample_event

WEB = Path(__file__).resolve().parents[2] / "sec1000_addon" / "sec1000" / "web"
NOW = 1_800_000_000.0


def history(seconds: int, every: float, limit: float | None = 5.0) -> list[HistoryPoint]:
    return [
        HistoryPoint(NOW - seconds + i * every, 1.0, 3.0, 2.0, limit)
        for i in range(int(seconds / every))
    ]


# -- buttons


def test_a_button_is_ready_before_its_operation_ever_ran() -> None:
    state = StateModel()
    assert state.feedback[CommandName.SET_DATETIME] == Feedback.OK  # 1 at start, as before
    assert status(state, CommandName.SET_DATETIME).kind == "ready"


def test_a_running_operation_is_waiting_then_ok_with_who_and_when() -> None:
    state = StateModel()
    state.set_feedback(CommandName.SET_DATETIME, 0, "waiting for the device")
    assert status(state, CommandName.SET_DATETIME).kind == "waiting"
    state.set_feedback(CommandName.SET_DATETIME, 1, "device clock set")
    state.command_done(CommandRecord(NOW, "home_assistant (Bob)", "set_datetime", 1, "set"))
    shown = status(state, CommandName.SET_DATETIME)
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
    state.set_feedback(CommandName.GET_EXPORT_LIMIT, feedback, "what the device said")
    shown = status(state, CommandName.GET_EXPORT_LIMIT)
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
    state.set_feedback(CommandName.EXPORT_DISABLE, 0, "waiting for the device")
    assert toggle(state, options).kind == "waiting"
    state.set_feedback(CommandName.EXPORT_DISABLE, 64, "refused")
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
    assert [nice_step(span) for span in (7.0, 4.0, 9.0, 18.0, 0.7, 0.0)] == [
        2,
        1,
        2.5,
        5,
        0.2,
        1.0,
    ]


# -- the live map


def test_feedback_of_one_operation_changes_only_its_own_elements() -> None:
    event = FeedbackChanged(CommandName.SET_DATETIME, 0, "")
    assert fragments.affected(event) == {"status-set_datetime"}
    toggle_event = FeedbackChanged(CommandName.EXPORT_ENABLE, 1, "")
    assert fragments.affected(toggle_event) == {"export-toggle"}
    poll = FeedbackChanged(CommandName.GET_TELEMETRY_DATA, 1, "")
    assert fragments.affected(poll) == set()


def test_telemetry_changes_the_values_and_the_chart() -> None:
    ids = fragments.affected(sample_event(Topic.TELEMETRY))
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


# -- words, ages, groups and axes (issue 20)


def test_commands_close_together_share_one_mark_whose_title_lists_each() -> None:
    commands = [
        CommandRecord(NOW - 50 * 60, "panel (Anna)", "set_export_limit", 1, "ok"),
        CommandRecord(NOW - 5 * 60, "panel (Anna)", "set_export_limit", 1, "ok"),
        CommandRecord(NOW - 5 * 60 + 20, "automation", "export_disable", 8, "timeout"),
        CommandRecord(NOW - 5 * 60 + 40, "panel (Anna)", "get_export_limit", 1, "ok"),
    ]
    chart = build_chart(history(3600, 5.0), commands, NOW, 5)
    assert [(m.count, m.ok) for m in chart.markers] == [(1, True), (3, False)]
    lines = chart.markers[1].title.split("\n")
    assert len(lines) == 3 and "Export off from automation" in lines[1]
    assert "No answer from the controller" in lines[1]


def test_the_energy_chart_has_a_round_kwh_axis_in_the_pages_language() -> None:
    week = [
        {"date": "2026-11-30", "pv": 7.3, "grid_export": 2.0, "grid_import": 1.25},
        {"date": "2026-12-01", "pv": 0.0, "grid_export": 0.0, "grid_import": 0.5},
    ]
    chart = energy_week(week, translator("de"))
    labels = [label for _, label in chart.ticks]
    assert labels[0] == "0" and float(labels[-1].replace(",", ".")) >= 7.3
    assert len(labels) >= 3 and all(
        b[0] < a[0] for a, b in zip(chart.ticks, chart.ticks[1:], strict=False)
    )
    assert [day.label for day in chart.days] == ["Mo 30", "Di 01"]
    tallest = max(bar.height for day in chart.days for bar in day.bars)
    assert tallest <= ENERGY_CHART_HEIGHT
    empty = energy_week([{"date": "2026-12-01"}])  # a day of zeros still has an axis
    assert len(empty.ticks) >= 2 and empty.ticks[0][1] == "0"


def test_a_result_shows_its_age_and_is_stale_once_a_good_read_came_after_it() -> None:
    state = StateModel()
    state.set_feedback(CommandName.GET_EXPORT_LIMIT, 8, "no answer in 10 s")
    state.command_done(CommandRecord(NOW - 150, "panel", "get_export_limit", 8, "no answer"))
    shown = status(state, CommandName.GET_EXPORT_LIMIT, now=NOW)
    assert (shown.age, shown.stale) == ("2 min ago", False)
    state.telemetry_at = NOW - 10  # a good read after the failure
    assert status(state, CommandName.GET_EXPORT_LIMIT, now=NOW).stale
    noon = dt.datetime.combine(dt.date(2026, 6, 1), dt.time(12)).timestamp()
    assert age(noon - 7200, noon) == "2 h ago"  # earlier today: its age
    just_after_midnight = noon - 11.5 * 3600
    assert age(just_after_midnight - 3600, just_after_midnight) == dt.datetime.fromtimestamp(
        just_after_midnight - 3600
    ).strftime("%Y-%m-%d %H:%M")  # yesterday: its date
    assert age(NOW - 3 * 86400, NOW) == dt.datetime.fromtimestamp(NOW - 3 * 86400).strftime(
        "%Y-%m-%d %H:%M"
    )
    assert age(NOW - 5, NOW, translator("sk")) == "práve teraz"  # never "pred 0 s"
    assert age(NOW - 5, NOW, translator("de")) == "gerade eben"
    ages = [age(NOW - n, NOW, translator("sk")) for n in (61, 150, 300)]
    assert ages == ["pred 1 minútou", "pred 2 minútami", "pred 5 minútami"]  # Slovak's 3 forms
    assert age(NOW - 12, NOW, translator("de")) == "vor 12 Sekunden"


def test_option_keys_become_labels_and_an_empty_field_is_said_so() -> None:
    en = translator("en")
    message = "must be at least export_off_below (0.05): export comes back on at or above it"
    assert labelled(message, en).startswith("must be at least Export off below (0.05)")
    assert labelled("must be a number such as 2.5 (plain digits), got ''", en).endswith(
        "(plain digits); the field is empty"
    )
    assert labelled("a host name of letters", en) == "a host name of letters"  # plain words stay
    assert labelled("must be at least export_off_below (0,05)", translator("de")).startswith(
        "must be at least Einspeisung aus unter"
    )


def test_a_setup_write_is_waiting_then_done_or_failed() -> None:
    state = StateModel()
    assert applied(state, None) is None  # no save started a write
    waiting = applied(state, NOW - 1, now=NOW)
    assert waiting is not None and waiting.kind == "waiting"
    state.command_done(CommandRecord(NOW - 5, "panel (Anna)", "set_export_limit", 1, "earlier"))
    assert applied(state, NOW - 1, now=NOW).kind == "waiting"  # older than the save
    state.command_done(CommandRecord(NOW, "panel (Anna)", "set_control_mode", 8, "no answer"))
    failed = applied(state, NOW - 1, now=NOW)
    assert failed is not None and failed.kind == "error"
    assert (
        failed.word == "Failed: No answer from the controller" and "(feedback 8)" in failed.detail
    )
    state.command_done(CommandRecord(NOW + 1, "panel (Anna)", "set_control_mode", 1, "ok"))
    assert applied(state, NOW + 0.5, now=NOW + 1).word == "Done"


def test_the_toggle_says_until_when_the_price_policy_is_paused() -> None:
    state = StateModel()
    state.settings_read(export_limit_kw=8.0)
    options = Options(min_export_limit=0.0, max_export_limit=8.0)
    assert toggle(state, options).paused_until is None
    state.policy_decided(
        {"state": "override", "attributes": {"override_until": "2026-12-02T14:15:00+01:00"}}
    )
    assert toggle(state, options).paused_until == "14:15"


@pytest.mark.parametrize(
    ("lang", "refusal", "words"),
    [
        (
            "en",
            Refusal(Rule.ABOVE_MAXIMUM, "12,5", 12.5, 10.0),
            "12.5 kW is above the maximum of 10 kW",
        ),
        (
            "de",
            Refusal(Rule.ABOVE_MAXIMUM, "12,5", 12.5, 10.0),
            "12,5 kW liegt über dem Maximum von 10 kW",
        ),
        ("sk", Refusal(Rule.BELOW_MINIMUM, "-1", -1.0, 0.0), "-1 kW je pod minimom 0 kW"),
        ("de", Refusal(Rule.NOT_A_NUMBER, "abc"), "„abc“ ist keine Zahl"),
    ],
)
def test_a_refusal_is_said_by_its_rule_in_the_pages_language(
    lang: str, refusal: Refusal, words: str
) -> None:
    assert refusal_words(refusal, translator(lang))[0] == words


def test_a_refusal_without_a_known_rule_keeps_the_general_headline() -> None:
    state = StateModel()
    message = "export limit must be a number, got None"
    state.set_feedback(CommandName.SET_EXPORT_LIMIT, int(Feedback.INVALID_INPUT), message)
    state.command_done(CommandRecord(NOW - 5, "home_assistant", "set_export_limit", 128, message))
    shown = status(state, CommandName.SET_EXPORT_LIMIT, now=NOW)
    assert (shown.word, shown.invalid, shown.stale) == ("Refused: not a valid value", True, False)


def test_an_audit_time_is_shown_in_the_pages_order_and_an_unreadable_one_as_written() -> None:
    when = environment().from_string("{{ at|when }}")
    assert when.render(at="2026-12-07T09:05:03+01:00", tr=translator("de")) == "07.12.2026 09:05:03"
    assert when.render(at="2026-12-07T09:05:03+01:00") == "2026-12-07 09:05:03"
    assert when.render(at="not a time", tr=translator("de")) == "not a time"  # kept, not lost
    assert (
        when.render(at="2026-12-07Tgarbage-and-more") == "2026-12-07 garbage-"
    )  # its first 19 characters
