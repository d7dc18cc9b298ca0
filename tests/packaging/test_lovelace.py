"""The dashboard files in lovelace/: they use only the contract's entities, their buttons press
its helpers, and their colours follow the feedback (the templates' JavaScript run in Node.js)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from sec1000.limiter.watchdog import DEFAULT_TIMINGS

from tests.helpers.packaging import (
    ADDON,
    CONTRACT_ENTITIES,
    CONTRACT_HELPERS,
    CONTRACT_SENSORS,
    lovelace_entities,
)


def lovelace_files() -> dict[str, Any]:
    files = sorted((ADDON / "lovelace").glob("*.yaml"))
    assert len(files) >= 2, "button-card templates and an example view"
    return {path.name: yaml.safe_load(path.read_text()) for path in files}


def test_lovelace_references_only_contract_entities() -> None:
    referenced = set().union(*map(lovelace_entities, lovelace_files().values()))
    assert referenced - CONTRACT_ENTITIES == set()
    # Every helper is used, and so is every feedback sensor of a button.
    assert referenced >= CONTRACT_HELPERS
    assert CONTRACT_SENSORS - referenced == set()


def test_lovelace_tap_actions_press_contract_helpers() -> None:
    templates = lovelace_files()["button_card_templates.yaml"]
    for name in ("get_export_limit", "set_datetime", "reset_export_watchdog"):
        action = templates[f"sec1000_{name}"]["tap_action"]
        assert action["action"] == "call-service" and action["service"] == "input_button.press"
        assert action["service_data"]["entity_id"] == f"input_button.sec1000_{name}"
        assert templates[f"sec1000_{name}"]["variables"]["feedback"] == (
            f"sensor.sec1000_{name}_feedback"
        )
        assert f"sensor.sec1000_{name}_feedback" in templates[f"sec1000_{name}"]["triggers_update"]
    confirmation = templates["sec1000_reset_export_watchdog"]["tap_action"]["confirmation"]["text"]
    # The confirmation names how long export goes unlimited: the reset's off window.
    assert f"{DEFAULT_TIMINGS.off_window:g} seconds" in confirmation
    setpoint = templates["sec1000_set_export_limit"]
    assert setpoint["entity"] == "input_number.sec1000_export_limit_setpoint"
    assert templates["sec1000_export"]["entity"] == "input_boolean.sec1000_export"
    assert templates["sec1000_export"]["tap_action"]["action"] == "toggle"


def test_example_view_uses_only_the_shipped_templates() -> None:
    files = lovelace_files()
    templates = files["button_card_templates.yaml"]
    used = set(
        re.findall(r"template: (\S+)", (ADDON / "lovelace" / "example_view.yaml").read_text())
    )
    used |= {
        value["template"]
        for value in templates.values()
        if isinstance(value, dict) and "template" in value
    }
    assert used and used <= set(templates)
    assert {
        "sec1000_set_export_limit",
        "sec1000_get_export_limit",
        "sec1000_set_datetime",
        "sec1000_reset_export_watchdog",
        "sec1000_export",
    } <= used


# Feedback value(s) -> (icon colour, blinking, label) of a command button.
BUTTON_CASES = [
    (["0"], "warning", True, "waiting"),
    (["1"], "success", False, "OK"),
    (["129"], "success", False, "corrected"),
    (["8"], "error", False, "timeout (8)"),
    (["192"], "error", False, "socket error, invalid input (192)"),
    (["unavailable"], "disabled-text", False, "no result yet"),
    ([None], "disabled-text", False, "no result yet"),
    # Export ON/OFF: the feedback updated last counts.
    (["1", "64"], "error", False, "socket error"),
    (["0", "1"], "success", False, "OK"),
]


NODE_SCRIPT = r"""
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const run = (code, states, variables) =>
  new Function('states', 'entity', 'variables', 'hass', 'user', code)(states, undefined, variables, {}, {});
const out = input.cases.map(({ states, variables }) => input.templates.map((code) => run(code, states, variables)));
process.stdout.write(JSON.stringify(out));
"""


def test_button_colours_follow_the_feedback() -> None:
    """Run the templates' JavaScript: waiting amber and blinking, OK green, errors red."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: scripts/dev test installs it")
    base = lovelace_files()["button_card_templates.yaml"]["sec1000_command"]
    icon = {key: value for item in base["styles"]["icon"] for key, value in item.items()}
    codes = [
        re.fullmatch(r"\s*\[\[\[(.*)\]\]\]\s*", text, re.S).group(1)  # type: ignore[union-attr]
        for text in (icon["color"], icon["animation"], base["label"])
    ]
    cases = []
    for values, *_ in BUTTON_CASES:
        ids = [f"sensor.fb{i}" for i in range(len(values))]
        states = {
            entity_id: {"state": value, "last_updated": f"2026-01-01T00:00:0{i}+00:00"}
            for i, (entity_id, value) in enumerate(zip(ids, values, strict=True))
            if value is not None
        }
        cases.append({"states": states, "variables": {"feedback": ids if len(ids) > 1 else ids[0]}})
    result = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=json.dumps({"templates": codes, "cases": cases}),
        capture_output=True,
        text=True,
        check=True,
    )
    for (values, colour, blinks, label), (got_colour, animation, got_label) in zip(
        BUTTON_CASES, json.loads(result.stdout), strict=True
    ):
        assert got_colour.startswith(f"var(--{colour}-color"), (values, got_colour)
        assert ("blink" in animation) is blinks, (values, animation)
        assert label in got_label, (values, got_label)
