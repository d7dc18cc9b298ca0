"""The state model: feedback and export state as the old integration showed them, the hour and the
day of telemetry."""

from __future__ import annotations

import itertools

import pytest
from sec1000.commands import CommandName
from sec1000.device.link import LinkSettings
from sec1000.protocol import Feedback
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import (
    EVENT_TYPES,
    DaySeries,
    FeedbackChanged,
    HistoryPoint,
    RestoreChanged,
    StateModel,
    TelemetryChanged,
    Topic,
)


def test_feedback_sensors_start_at_1() -> None:
    state = StateModel()
    assert set(state.feedback.values()) == {int(Feedback.OK)}


async def test_polls_change_their_feedback_only_when_the_result_changes(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    seen: list[int] = []
    runtime.state.subscribe(
        lambda e: (
            seen.append(e.feedback)
            if isinstance(e, FeedbackChanged) and e.operation == "get_telemetry_data"
            else None
        )
    )
    for _ in range(3):
        await runtime.ops.get_telemetry_data()
    assert seen == [1]  # its words are set once; the value never leaves 1, never passes 0
    simulator.set_fault("silence")
    runtime.link.configure(LinkSettings("127.0.0.1", simulator.port, 0, 0.2))
    await runtime.ops.get_telemetry_data()
    await runtime.ops.get_telemetry_data()
    assert seen == [1, int(Feedback.TIMEOUT)]


@pytest.mark.parametrize(
    ("limit", "export"), [(5.0, "off"), (5.009, "off"), (5.01, "on"), (4.0, "off"), (8.0, "on")]
)
def test_export_state_is_off_below_the_minimum_plus_10_watts(limit: float, export: str) -> None:
    state = StateModel(min_export_limit_kw=5.0)
    state.settings_read(export_limit_kw=limit)
    assert state.export_state == export


def test_the_day_keeps_one_average_per_minute_for_a_day_whatever_the_refresh() -> None:
    day = DaySeries()
    start = 1_800_000_000.0  # a whole minute
    for second in range(0, 2 * 86400, 5):  # two days at a 5 s refresh
        day.add(HistoryPoint(start + second, second % 60 / 10, 2.0, 3.0, 4.0))
    points = day.points()
    assert len(points) == len(day) <= 1441  # a day of whole minutes and the one under way
    assert points[0].at >= start + 86400 - 60  # the first day is gone
    assert all(b.at - a.at == 60 for a, b in itertools.pairwise(points))
    # 0, 0.5 … 5.5 kW over each minute: their mean, not the last sample
    assert {round(p.meters, 6) for p in points[:-1]} == {2.75}
    assert points[-1].at == start + 2 * 86400 - 60 + 27.5  # the current minute, so far


def test_the_days_current_minute_shows_before_it_closes() -> None:
    day = DaySeries()
    assert day.points() == [] and len(day) == 0
    day.add(HistoryPoint(120.0, 1.0, 0.0, 0.0, None))
    day.add(HistoryPoint(150.0, 3.0, 0.0, 0.0, 5.0))
    assert day.points() == [HistoryPoint(135.0, 2.0, 0.0, 0.0, 5.0)]  # the limit: the last known
    day.add(HistoryPoint(180.0, 7.0, 0.0, 0.0, 5.0))
    assert day.points() == [
        HistoryPoint(135.0, 2.0, 0.0, 0.0, 5.0),
        HistoryPoint(180.0, 7.0, 0.0, 0.0, 5.0),
    ]


async def test_every_telemetry_read_goes_into_the_hour_and_the_day() -> None:
    clock = [1_800_000_000.0]
    state = StateModel(clock=lambda: clock[0])
    for _ in range(3):
        state.telemetry_read({"meters_power": 1.0, "inverters_power": 2.0, "load_power": 1.0})
        clock[0] += 30
    assert len(state.history) == 3 and len(state.day) == 2  # two minutes
    assert state.day.points()[0].meters == 1.0


def test_each_topic_has_one_event_class_and_the_model_emits_only_those() -> None:
    assert sorted(t.topic for t in EVENT_TYPES) == sorted(Topic)  # one class per topic
    seen: list[object] = []
    state = StateModel()
    state.subscribe(seen.append)
    state.telemetry_read({"meters_power": 1.0, "inverters_power": 2.0, "load_power": 1.0})
    state.set_feedback(CommandName.SET_DATETIME, 0)
    state.set_restore(True)
    assert [type(e) for e in seen] == [TelemetryChanged, FeedbackChanged, RestoreChanged]
    assert isinstance(seen[0], TelemetryChanged) and seen[0].values == {
        "meters_power": 1.0,
        "inverters_power": 2.0,
        "load_power": 1.0,
    }
