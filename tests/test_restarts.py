"""Core restarts (and broker restarts in MQTT mode) with the add-on running, on every Core.

Two Core restarts in a row, with REST states and helpers; two Core restarts then two broker
restarts with the MQTT device (the second of a kind finds what the first left behind: a `_2`
id, a lost helper value, a second subscription). Each time: every entity back within 10 s of
Home Assistant answering, no `_2` id, the helpers keep their values, and a command under way
across the restart ends with exactly one result event (one write at the controller when ok).
The figures come from tests/restarts.py, which scripts/bench_restarts.py prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import create_fake_supervisor
from tests.ha_harness import HomeAssistant
from tests.mqtt_broker import Mosquitto, set_up_mqtt
from tests.restarts import BACK_WITHIN, Cycle, restart_scenario

pytestmark = pytest.mark.homeassistant

RESTARTS = 2  # scripts/bench_restarts.py runs 5 of each and prints the figures


@pytest.fixture
def runtime(make_options: Callable[..., Options], tmp_path: Path) -> Runtime:
    """The core with a request timeout that outlasts the slow controller's 1.5 s answers."""
    return Runtime(make_options(request_timeout=3), tmp_path / "data")


def check(cycles: list[Cycle]) -> None:
    """Every cycle met every goal; the message lists them all."""
    table = "\n".join(
        f"{c.kind} {c.number}: gone {c.went_away}, back {c.back_s:.1f} s, duplicates "
        f"{c.duplicates}, helpers kept {c.helpers_kept}, results {c.results}, writes {c.writes}"
        for c in cycles
    )
    for cycle in cycles:
        assert cycle.went_away, table  # so being back is the restart's doing
        assert cycle.back_s <= BACK_WITHIN, table
        assert cycle.duplicates == [], table
        assert cycle.helpers_kept, table
        assert cycle.command_once, table
        assert cycle.results[0]["ok"], table  # the controller answered: it ran, once


@pytest.mark.timeout(900)
async def test_core_restarts_with_rest_entities(
    runtime: Runtime,
    simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    aiohttp_server: Any,
) -> None:
    ha = fresh_home_assistant
    supervisor = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    check(await restart_scenario(ha, runtime, simulator, supervisor, None, RESTARTS))


@pytest.mark.timeout(900)
async def test_core_and_broker_restarts_with_the_mqtt_device(
    runtime: Runtime,
    simulator: SimulatorServer,
    fresh_home_assistant: HomeAssistant,
    mosquitto: Mosquitto,
    aiohttp_server: Any,
) -> None:
    ha = fresh_home_assistant
    await set_up_mqtt(ha, mosquitto)
    supervisor = await aiohttp_server(create_fake_supervisor(ha.url, ha.token))
    cycles = await restart_scenario(ha, runtime, simulator, supervisor, mosquitto, RESTARTS)
    check(cycles)
    assert [c.kind for c in cycles] == ["core"] * RESTARTS + ["broker"] * RESTARTS
