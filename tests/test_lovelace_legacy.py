"""The old goodwe_sec1000 integration's four button-card templates, shipped under their old names.

Old dashboards say `template: pv_..._button_style_1`; these files must define exactly that key,
use only the add-on's entities, never call the old integration's services, and their JavaScript
must show the right state for each feedback code (run in Node, as button-card would).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.helpers.packaging import CONTRACT_ENTITIES, ROOT, lovelace_entities, walk

LOVELACE = ROOT / "sec1000_addon" / "lovelace"
DOCS = ROOT / "sec1000_addon" / "DOCS.md"
# The shared design document sits next to a developer's checkout (not in CI); its contract
# sections are copied into the fixtures, and the copy is held to it wherever it is there.
DESIGN = ROOT.parent / "shared" / "design.md"
DESIGN_COPY = ROOT / "tests" / "fixtures" / "design_contract.md"
CONTRACT_SECTIONS = (
    "Home Assistant contract",
    "Contracts added for the next capabilities",
    "Contracts added for the meter check, several controllers and the panel",
)

# File name -> the template key old dashboards reference.
LEGACY = {
    f"ui-template-pv_{name}_button_style_1.yaml": f"pv_{name}_button_style_1"
    for name in ("set_export_limit", "get_export_limit", "set_datetime", "reset_export_watchdog")
}
EXPORT_FILE = "ui-template-pv_set_export_limit_button_style_1.yaml"
# The three "ready / waiting / error" buttons: file -> (feedback sensor, helper pressed).
COMMAND_BUTTONS = {
    f"ui-template-pv_{name}_button_style_1.yaml": (
        f"sensor.sec1000_{name}_feedback",
        f"input_button.sec1000_{name}",
    )
    for name in ("get_export_limit", "set_datetime", "reset_export_watchdog")
}

# The Home Assistant contract, as written out in tests/helpers/packaging.py (held to the docs below).
SEC1000_ID = re.compile(r"\b[a-z_]+\.sec1000_[a-z0-9_]+\b")
TEMPLATE = re.compile(r"\s*\[\[\[(.*)\]\]\]\s*", re.S)


def load(file: str) -> dict[str, Any]:
    return yaml.safe_load((LOVELACE / file).read_text())


def template(file: str) -> dict[str, Any]:
    return load(file)[LEGACY[file]]


def contract_ids(text: str) -> set[str]:
    """Entity ids named in the first cell of the markdown table rows, ranges and lists expanded:
    `sensor.sec1000_v1 … v3`, `sensor.sec1000_export_disable_feedback (and export_enable, …)`."""
    ids: set[str] = set()
    for line in text.splitlines():
        cell = line.split("|")[1] if line.startswith("|") else ""
        first = SEC1000_ID.search(cell)
        if not first:
            continue
        entity_id = first.group()
        ids.add(entity_id)
        if (end := re.search(r"…\s*`?(?:[a-z_]+\.sec1000_)?[a-z]*?(\d+)`?", cell)) and (
            start := re.search(r"\d+$", entity_id)
        ):
            stem = entity_id[: start.start()]
            ids |= {f"{stem}{n}" for n in range(int(start.group()), int(end.group(1)) + 1)}
        if others := re.search(r"\(and ([^)]*)\)", cell):
            operation = entity_id.removeprefix("sensor.sec1000_").removesuffix("_feedback")
            ids |= {entity_id.replace(operation, o.strip()) for o in others.group(1).split(",")}
    return ids


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_contract_set_is_the_docs() -> None:
    docs = DOCS.read_text()
    assert contract_ids(section(docs, "Entities") + section(docs, "Helpers")) == CONTRACT_ENTITIES


METER_SECTION = "Contracts added for the meter check, several controllers and the panel"


def test_the_contract_set_is_the_design_docs() -> None:
    design = DESIGN_COPY.read_text()
    if DESIGN.is_file():  # a developer's checkout: the copy must still be the shared text
        shared = DESIGN.read_text()
        assert [section(design, t) for t in CONTRACT_SECTIONS] == [
            section(shared, t) for t in CONTRACT_SECTIONS
        ]
    # from "Contracts added for the next capabilities"
    added = {
        "sensor.sec1000_export_guard",
        *(f"sensor.sec1000_{kind}_energy" for kind in ("grid_export", "grid_import", "pv", "load")),
        "sensor.sec1000_time_at_limit_today",
        "sensor.sec1000_export_policy",
    }
    assert all(
        entity_id in section(design, "Contracts added for the next capabilities")
        for entity_id in added
    )
    # from "Contracts added for the meter check, several controllers and the panel"
    meter = {
        "binary_sensor.sec1000_export_over_limit",
        "sensor.sec1000_export_over_limit_energy",
        "sensor.sec1000_export_over_limit_today",
    }
    assert all(entity_id in section(design, METER_SECTION) for entity_id in meter)
    contract = contract_ids(section(design, "Home Assistant contract"))
    assert contract | added | meter == CONTRACT_ENTITIES


def test_the_four_files_are_shipped() -> None:
    assert {path.name for path in LOVELACE.glob("ui-template-*.yaml")} == set(LEGACY)


@pytest.mark.parametrize("file", LEGACY)
def test_file_defines_exactly_its_old_template(file: str) -> None:
    data = load(file)
    assert isinstance(data, dict) and list(data) == [LEGACY[file]]
    body = data[LEGACY[file]]
    assert isinstance(body, dict) and body.get("show_label") is True and "label" in body


@pytest.mark.parametrize("file", LEGACY)
def test_file_starts_with_a_comment_that_explains_it(file: str) -> None:
    text = (LOVELACE / file).read_text()
    header = text.split(f"\n{LEGACY[file]}:", 1)[0]
    assert all(line.startswith("#") or not line for line in header.splitlines())
    flat = " ".join(line.lstrip("# ") for line in header.splitlines())
    for words in (
        "custom:button-card",
        "replaces",
        file,
        "Raw configuration editor",
        "button_card_templates:",
        f"template: {LEGACY[file]}",
        "waiting",
        "error",
    ):
        assert words in flat, words
    states = ("on", "off") if file == EXPORT_FILE else ("ready",)
    for state in states:
        assert re.search(rf"^#\s+{state}\s+\S", header, re.M), state


@pytest.mark.parametrize("file", LEGACY)
def test_file_references_only_contractlovelace_entities(file: str) -> None:
    text = (LOVELACE / file).read_text()
    named = set(SEC1000_ID.findall(text)) | lovelace_entities(load(file))
    assert named - CONTRACT_ENTITIES == set()
    if file == EXPORT_FILE:
        needed = {
            "sensor.sec1000_export_state",
            "sensor.sec1000_export_enable_feedback",
            "sensor.sec1000_export_disable_feedback",
            "input_button.sec1000_export_enable",
            "input_button.sec1000_export_disable",
        }
    else:
        needed = set(COMMAND_BUTTONS[file])
    assert needed <= named
    # The card redraws when a sensor its templates read changes.
    body = template(file)
    code = " ".join(scripts(body).values())
    read = {entity_id for entity_id in SEC1000_ID.findall(code) if entity_id.startswith("sensor.")}
    assert set(body["triggers_update"]) == read | {body["entity"]}


@pytest.mark.parametrize("file", LEGACY)
def test_file_calls_no_old_service_and_presses_a_helper(file: str) -> None:
    assert "goodwe_sec1000." not in (LOVELACE / file).read_text()
    body = template(file)
    services = [
        node.get("service") or node.get("perform_action")
        for node in walk(body)
        if isinstance(node, dict) and {"service", "perform_action"} & set(node)
    ]
    assert services == ["input_button.press"]
    action = body["tap_action"]
    assert action["action"] == "call-service"
    if file in COMMAND_BUTTONS:
        assert action["service_data"]["entity_id"] == COMMAND_BUTTONS[file][1]
        assert body["entity"] == COMMAND_BUTTONS[file][0]
    if file == "ui-template-pv_reset_export_watchdog_button_style_1.yaml":
        text = action["confirmation"]["text"]
        assert "5 seconds" in text and "full power" in text
    else:
        assert "confirmation" not in action


def scripts(node: object, path: str = "") -> dict[str, str]:
    """Every `[[[ ... ]]]` template, by its path (`styles.icon.color`), list indexes left out."""
    found: dict[str, str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            found |= scripts(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for item in node:
            found |= scripts(item, path)
    elif isinstance(node, str) and (match := TEMPLATE.fullmatch(node)):
        found[path] = match.group(1)
    return found


NODE_SCRIPT = r"""
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = input.cases.map(({ states, entity }) => {
  const result = {};
  for (const [path, code] of Object.entries(input.scripts)) {
    result[path] = new Function('states', 'entity', 'variables', 'hass', 'user', 'helpers', code)(
      states, states[entity], {}, { states }, {}, {});
  }
  return result;
});
process.stdout.write(JSON.stringify(out));
"""
COLOURS = {
    "ready": "success",
    "on": "success",
    "off": "state-inactive",
    "waiting": "warning",
    "error": "error",
}


def run_scripts(body: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: scripts/dev test installs it")
    result = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=json.dumps(
            {
                "scripts": scripts(body),
                "cases": [{**case, "entity": body["entity"]} for case in cases],
            }
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _state(value: str, second: int = 0) -> dict[str, str]:
    stamp = f"2026-01-01T00:00:0{second}+00:00"
    return {"state": value, "last_changed": stamp, "last_updated": stamp}


def check_look(got: dict[str, Any], word: str, detail: str, case: object) -> None:
    assert got["label"].startswith(word), (case, got["label"])
    assert detail in got["label"], (case, got["label"])
    assert got["styles.icon.color"].startswith(f"var(--{COLOURS[word]}-color"), (case, got)
    assert ("blink" in got["styles.icon.animation"]) is (word == "waiting"), (case, got)


# Feedback state (None: no such entity) -> state word, words the label must hold.
COMMAND_CASES = [
    ("0", "waiting", ""),
    ("1", "ready", ""),
    ("129", "ready", "corrected"),
    ("8", "error", "timeout (8)"),
    ("192", "error", "socket error, invalid input (192)"),
    ("2", "error", "general error (2)"),
    ("unavailable", "error", "no feedback"),
    (None, "error", "no feedback"),
]


@pytest.mark.parametrize("file", COMMAND_BUTTONS)
def test_command_button_shows_ready_waiting_or_error(file: str) -> None:
    body = template(file)
    feedback = COMMAND_BUTTONS[file][0]
    assert set(scripts(body)) == {"label", "styles.icon.color", "styles.icon.animation"}
    cases = [
        {"states": {} if value is None else {feedback: _state(value)}}
        for value, *_ in COMMAND_CASES
    ]
    for (value, word, detail), got in zip(COMMAND_CASES, run_scripts(body, cases), strict=True):
        check_look(got, word, detail, value)


ENABLE, DISABLE, SET_LIMIT = (
    f"sensor.sec1000_{name}_feedback"
    for name in ("export_enable", "export_disable", "set_export_limit")
)
# (export state, {feedback sensor: (state, second it changed)} over all three at "1"),
#   -> state word, words the label must hold. The feedback that changed last counts.
EXPORT_CASES: list[tuple[str | None, dict[str, tuple[str, int] | None], str, str]] = [
    ("on", {}, "on", ""),
    ("off", {}, "off", ""),
    ("on", {ENABLE: ("0", 5)}, "waiting", ""),
    ("off", {DISABLE: ("0", 5)}, "waiting", ""),
    ("on", {SET_LIMIT: ("0", 5)}, "waiting", ""),
    ("off", {DISABLE: ("129", 5)}, "off", ""),
    ("on", {SET_LIMIT: ("129", 5)}, "on", ""),
    ("off", {ENABLE: ("8", 5)}, "error", "timeout (8)"),
    ("on", {DISABLE: ("8", 5)}, "error", "timeout (8)"),
    ("on", {SET_LIMIT: ("128", 5)}, "error", "invalid input (128)"),
    ("off", {ENABLE: ("64", 5)}, "error", "socket error (64)"),
    ("on", {ENABLE: ("8", 3), DISABLE: ("1", 4)}, "on", ""),
    ("off", {ENABLE: ("1", 6), DISABLE: ("8", 4)}, "off", ""),
    ("off", {ENABLE: None, DISABLE: None, SET_LIMIT: None}, "error", "no feedback"),
    ("unavailable", {}, "off", ""),
    (None, {}, "off", ""),
]


def test_export_button_shows_on_off_waiting_or_error_and_presses_the_opposite() -> None:
    body = template(EXPORT_FILE)
    assert set(scripts(body)) == {
        "icon",
        "label",
        "tap_action.service_data.entity_id",
        "styles.icon.color",
        "styles.icon.animation",
    }
    cases = []
    for export, changes, *_ in EXPORT_CASES:
        states: dict[str, Any] = {
            feedback: _state("1", 1) for feedback in (ENABLE, DISABLE, SET_LIMIT)
        }
        for feedback, change in changes.items():
            if change is None:
                del states[feedback]
            else:
                states[feedback] = _state(*change)
        if export is not None:
            states["sensor.sec1000_export_state"] = _state(export)
        cases.append({"states": states})
    for (export, changes, word, detail), got in zip(
        EXPORT_CASES, run_scripts(body, cases), strict=True
    ):
        case = (export, changes)
        check_look(got, word, detail, case)
        exporting = export == "on"
        assert got["icon"] == (
            "mdi:transmission-tower-export" if exporting else "mdi:transmission-tower-off"
        ), case
        assert got["tap_action.service_data.entity_id"] == (
            "input_button.sec1000_export_disable"
            if exporting
            else "input_button.sec1000_export_enable"
        ), case
