"""The state model's feedback and export state, as the old integration showed them."""

from __future__ import annotations

import pytest
from sec1000.device.link import LinkSettings
from sec1000.protocol import Feedback
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import StateModel


def test_feedback_sensors_start_at_1() -> None:
    state = StateModel()
    assert set(state.feedback.values()) == {int(Feedback.OK)}


async def test_polls_change_their_feedback_only_when_the_result_changes(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    seen: list[int] = []
    runtime.state.subscribe(
        lambda e: (
            seen.append(e.data["feedback"])
            if e.topic == "feedback" and e.data["operation"] == "get_telemetry_data"
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
