"""A first start that goes wrong: the controller's address in plain words with a way to Setup,
buttons that say they cannot act until the controller answers, and a quiet Prices card."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sec1000.device.health import LinkHealth
from sec1000.protocol import TELEMETRY_FIELDS, Feedback
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import UNAVAILABLE_AFTER_FAILURES, StateModel
from sec1000.web.status import blocked, unreachable

from tests.helpers.web import ClientFactory, panel

# Port 1 on loopback: nothing listens there (a privileged port no test opens).
CLOSED_PORT = 1
TELEMETRY_KEYS = [field.key for field in TELEMETRY_FIELDS]
BUTTONS = ("set_export_limit", "get_export_limit", "set_datetime", "reset_export_watchdog")


def element(body: str, element_id: str) -> str:
    """The opening tag of the element with that id."""
    found = re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', body, re.S)
    assert found is not None, element_id
    return found[0]


async def test_a_wrong_address_is_said_in_words_with_a_link_to_setup(
    aiohttp_client: ClientFactory, make_options: Any, tmp_path: Path
) -> None:
    runtime = Runtime(make_options(port=CLOSED_PORT), tmp_path / "data")
    await runtime.ops.get_telemetry_data()
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    banner = re.search(
        r'<p class="banner error" role="alert" id="unreachable-banner">.*?</p>', body, re.S
    )
    assert banner is not None
    words = "The controller at 127.0.0.1:1 cannot be reached: nothing is listening there."
    assert words in banner[0]
    assert 'href="setup#step-connection"' in banner[0]  # relative: it works under ingress
    assert "Check its address in Setup." in banner[0]
    assert "Connect call failed" in banner[0]  # the raw words stay, as a detail
    # Nowhere else on the page does the raw socket error stand in for words (a tooltip aside).
    assert re.sub(r'title="[^"]*"', "", body).count("Connect call failed") == 1
    assert "No telemetry yet: " + words in body


async def test_the_buttons_say_they_cannot_act_until_the_controller_answers(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("bad_checksum")
    await runtime.ops.get_telemetry_data()
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    gate = re.search(r'<p id="controls-gate"[^>]*>.*?</p>', body, re.S)
    assert gate is not None and 'data-blocked="true"' in gate[0]
    assert "it has not answered since the start" in gate[0]
    for name in BUTTONS:
        tag = element(body, f"btn-{name}")
        assert 'aria-disabled="true"' in tag and "controls-gate" in tag, name
    toggle = element(body, "btn-export-toggle")
    assert 'aria-disabled="true"' in toggle and "controls-gate" in toggle
    assert "does not answer as a SEC1000 does" in body
    simulator.clear_faults()
    await runtime.ops.get_telemetry_data()
    body = await (await client.get("/")).text()
    assert 'data-blocked="false"' in element(body, "controls-gate")
    for name in (*BUTTONS, "export-toggle"):
        assert "aria-disabled" not in element(body, f"btn-{name}"), name
    assert 'id="unreachable-banner"' not in body


def test_a_controller_that_stopped_answering_blocks_only_after_several_failed_reads() -> None:
    health = LinkHealth()
    state = StateModel(health=health)
    assert blocked(state, health) is None  # the first read is under way: nothing to say yet
    health.record(Feedback.OK, 0.01)
    state.telemetry_read(dict.fromkeys(TELEMETRY_KEYS, 0.0))
    health.record(Feedback.TIMEOUT, 1.0, "no answer")
    state.telemetry_failed()
    assert blocked(state, health) is None  # one failed read: a glitch, the buttons stay
    assert unreachable(health, ("10.0.0.5", 1234)) is None  # it answered once: no address problem
    for _ in range(UNAVAILABLE_AFTER_FAILURES):
        state.telemetry_failed()
    why = blocked(state, health)
    assert why is not None and why.startswith("The buttons wait for the controller")


def test_each_cause_of_a_first_failure_has_its_words() -> None:
    health = LinkHealth()
    health.record(Feedback.SOCKET_ERROR, 0.1, "cannot talk to 'sec.lan':1234: Name", "lookup")
    found = unreachable(health, ("sec.lan", 1234))
    assert found is not None
    assert found.words == "The controller's address sec.lan cannot be found on the network."
    health.record(Feedback.TIMEOUT, 1.0, "no answer from 10.0.0.5:1234 within 2 s")
    found = unreachable(health, ("10.0.0.5", 1234))
    assert found is not None and found.words == "Nothing answered at 10.0.0.5:1234 in time."
    assert found.detail == "no answer from 10.0.0.5:1234 within 2 s"


async def test_the_prices_card_says_nothing_of_a_forecast_without_a_price_sensor(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    attributes = {"forecast_source": "none", "forecast_note": "current price only: no forecast"}
    runtime.state.policy_decided({"state": "disabled", "attributes": attributes, "decisions": []})
    client = await panel(aiohttp_client, runtime)
    body = await (await client.get("/")).text()
    prices = re.search(r'<div id="prices".*?</div>', body, re.S)
    assert prices is not None
    assert "forecast" not in prices[0].lower()
    assert "choose a price sensor in Setup" in prices[0]
