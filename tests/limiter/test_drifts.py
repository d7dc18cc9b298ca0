"""The guard's memory of drifts: told once while one stands, contested the third time in an hour."""

from __future__ import annotations

from sec1000.limiter.drifts import CONTEST_WINDOW, Drifts
from sec1000.protocol import ControlMode, ExportSettings


def at(limit_w: int) -> ExportSettings:
    return ExportSettings(ControlMode.VALUE, 10_000, 1, limit_w)


def test_the_same_drift_three_times_within_an_hour_is_contested_until_forgiven() -> None:
    drifts = Drifts()
    counts = [drifts.note(at(9_990), 100.0 + n) for n in range(3)]
    assert counts == [1, 2, 3]
    assert not drifts.contest(at(9_990), 2, restoring=True)
    assert drifts.contest(at(9_990), 3, restoring=True)
    assert drifts.contest(at(9_990), 1, restoring=False)  # stays contested, whatever the count
    assert not drifts.contest(at(8_000), 1, restoring=True)  # another drift is news
    drifts.forgive()
    assert not drifts.contest(at(9_990), 1, restoring=True)


def test_drifts_older_than_the_window_do_not_count() -> None:
    drifts = Drifts()
    drifts.note(at(9_990), 0.0)
    drifts.note(at(9_990), 1.0)
    assert drifts.note(at(9_990), CONTEST_WINDOW + 2) == 1
    assert drifts.last_day(CONTEST_WINDOW + 2) == 3
    assert drifts.last_day(86_400 + 10) == 1


def test_a_standing_drift_is_told_once() -> None:
    drifts = Drifts()
    assert not drifts.is_standing(at(9_990), standing=True)
    drifts.note(at(9_990), 0.0)
    assert drifts.is_standing(at(9_990), standing=True)
    assert not drifts.is_standing(at(9_990), standing=False)  # restored since: news again
    assert not drifts.is_standing(at(8_000), standing=True)
