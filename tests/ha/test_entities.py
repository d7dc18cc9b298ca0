"""The entities' names and ids, kept from the old integration."""

from __future__ import annotations

from sec1000.commands import CommandName
from sec1000.ha.entities import FEEDBACK_SENSORS


def test_the_datetime_feedback_keeps_its_old_name() -> None:
    sensor = FEEDBACK_SENSORS[CommandName.SET_DATETIME]
    assert sensor.name == "SEC1000 Set Date and Time - Feedback"
    assert sensor.entity_id == "sensor.sec1000_set_datetime_feedback"
