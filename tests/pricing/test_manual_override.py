"""A manual command is never undone by the price policy during its override: the override
starts when the command is accepted, before its first packet, and ends if the command fails.

Over real sockets: the simulator is the controller, and what it holds is judged."""

from __future__ import annotations

import asyncio

from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import StateEvent, Topic

from tests.helpers.waiting import eventually

PANEL = Origin("panel", "Anna")
NEGATIVE = -0.05


async def policy_holding_export_off(runtime: Runtime) -> None:
    options = {
        "price_policy": True,
        "price_entity": "sensor.price",
        "export_off_below": 0.0,
        "export_on_above": 0.02,
        "scan_interval": 1,
    }
    runtime._use(Options.from_mapping(options, base=runtime.options))
    await runtime.start()
    await eventually(lambda: runtime.guard.wanted is not None, what="the guard's first read")
    runtime.policy.price_changed(NEGATIVE, {})
    await eventually(lambda: runtime.state.export_limit_kw == 0.0, what="export off at -0.05")


async def test_the_policys_recheck_between_the_write_and_the_commands_end_keeps_the_limit(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await policy_holding_export_off(runtime)
    rechecks: list[asyncio.Task[object]] = []
    override_at_write: list[float | None] = []

    def recheck_on_the_read_back(event: StateEvent) -> None:
        """The manual write's read-back: the policy looks at the controller at this moment,
        before the command has ended (what a busy machine did by chance)."""
        if event.topic is Topic.SETTINGS and runtime.state.export_limit_kw == 3.5 and not rechecks:
            override_at_write.append(runtime.policy.memory.override_until)
            rechecks.append(asyncio.ensure_future(runtime.policy.evaluate()))

    runtime.state.subscribe(recheck_on_the_read_back)
    result = await runtime.ops.set_export_limit("3,5", PANEL)
    assert result.ok, result.message
    assert rechecks, "the manual write was read back"
    await asyncio.wait_for(rechecks[0], 10)  # the re-check and any write it made are done
    await runtime.ops.get_export_limit(PANEL)
    assert simulator.device.export_limit_w == 3500
    assert override_at_write[0] is not None  # in place before the command ended
    await runtime.stop()


async def test_a_manual_command_that_fails_ends_its_override(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await policy_holding_export_off(runtime)
    simulator.set_fault("silence")
    result = await runtime.ops.set_export_limit("3,5", PANEL)
    assert not result.ok
    assert runtime.policy.memory.override_until is None  # the failure ended it
    simulator.clear_faults()
    runtime.policy.wake()
    await eventually(
        lambda: simulator.device.export_limit_w == 0 and runtime.state.export_limit_kw == 0.0,
        10,
        "export held off by the policy again",
    )
    await runtime.stop()
