"""The REST mode's helpers while a press's command runs, against the simulator over TCP.

Home Assistant is a FAKE here that records the service calls it would get: what is checked is
the order of the add-on's own calls, which a real Core only shows as a race (the real-Core
test of the export switch is in test_ha_bridge.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from sec1000.ha.entities import EXPORT_SWITCH, SETPOINT
from sec1000.ha.helpers import Helpers
from sec1000.operations import Origin
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually


class RecordingHomeAssistant:
    """FAKE Home Assistant: answers every service call with a context of the add-on's own."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def send_command(self, message: dict[str, Any]) -> Any:
        data = message["service_data"]
        self.calls.append((message["domain"], message["service"], data["entity_id"]))
        return {"context": {"id": f"own-{len(self.calls)}"}}

    def to(self, entity_id: str) -> list[str]:
        return [service for _, service, target in self.calls if target == entity_id]


def pressed(entity_id: str, old: str, new: str) -> dict[str, Any]:
    """A user's `state_changed` data."""
    return {
        "entity_id": entity_id,
        "old_state": {"state": old, "context": {"id": "before"}},
        "new_state": {"state": new, "context": {"id": "user", "user_id": "anna"}},
    }


async def in_step(runtime: Runtime) -> tuple[Helpers, RecordingHomeAssistant]:
    """The helpers after a first read and sync: the export switch on; no call recorded yet."""
    home_assistant = RecordingHomeAssistant()
    helpers = Helpers(
        runtime, home_assistant, active=lambda: True, origin=lambda _c: Origin("home_assistant")
    )
    await runtime.ops.get_export_limit(Origin("test"))
    await helpers.sync()
    assert home_assistant.to(EXPORT_SWITCH.entity_id) == ["turn_on"]
    home_assistant.calls.clear()
    return helpers, home_assistant


async def test_a_pressed_switch_is_not_flipped_back_while_its_command_runs(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    helpers, home_assistant = await in_step(runtime)
    simulator.exchanges.clear()

    press = asyncio.create_task(helpers.changed(pressed(EXPORT_SWITCH.entity_id, "on", "off")))
    await eventually(lambda: bool(simulator.requests()), what="the command at the controller")
    assert runtime.state.exporting  # not confirmed yet: the controller still exports
    await helpers.sync()  # the publisher, woken by a read in the middle of the command
    await press

    assert simulator.device.export_limit_w == 0
    assert home_assistant.to(EXPORT_SWITCH.entity_id) == ["turn_off"]
    assert home_assistant.to(SETPOINT.entity_id) == ["set_value"]  # 0 kW, once


async def test_a_failed_press_puts_the_switch_back(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    helpers, home_assistant = await in_step(runtime)
    simulator.set_fault("reset")
    await helpers.changed(pressed(EXPORT_SWITCH.entity_id, "on", "off"))
    assert runtime.state.feedback["export_disable"] != 1
    assert home_assistant.to(EXPORT_SWITCH.entity_id) == ["turn_on"]
