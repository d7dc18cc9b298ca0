"""DOCS.md states the facts the package holds: every option with its place on the panel, its
default, bounds and choices; every entity, helper, event, command, script and feedback code;
the reset's numbers; valid YAML examples. It checks facts, never the sentences around them."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from sec1000.cli import build_parser
from sec1000.commands import COMMANDS
from sec1000.device.link import DEFAULT_MAX_QUEUED
from sec1000.ha.entities import ALL_SENSORS, COMMAND_EVENT, HELPERS, RESULT_EVENT
from sec1000.limiter.watchdog import DEFAULT_TIMINGS
from sec1000.options import OPTION_SPECS, Options
from sec1000.protocol import Feedback
from sec1000.protocol.errors import FEEDBACK_WORDS
from sec1000.runtime import Runtime

from tests.helpers.packaging import (
    CONTRACT_ENTITIES,
    CONTRACT_EVENTS,
    CONTRACT_HELPERS,
    CONTRACT_SCRIPTS,
    CONTRACT_SENSORS,
    config,
    docs_section,
    docs_text,
    walk,
)
from tests.helpers.supervisor_schema import negative_accepted, schema_accepts


def option_rows() -> dict[str, tuple[str, str, str]]:
    """DOCS.md's options table: key → (panel place, default, meaning)."""
    rows = re.findall(
        r"^\| `([a-z_]+)` \|([^|]+)\|([^|]*)\|([^|]+)\|$", docs_section("Options"), re.M
    )
    return {
        key: (panel.strip(), default.strip(), meaning.strip())
        for key, panel, default, meaning in rows
    }


def test_every_option_has_a_row_with_its_default() -> None:
    """A row `| `key` | panel place | default | meaning |` for every option, and no other."""
    rows = option_rows()
    assert set(rows) == {spec.key for spec in OPTION_SPECS}
    for spec in OPTION_SPECS:
        panel, default, meaning = rows[spec.key]
        assert panel.startswith("Setup"), (spec.key, "name the panel's counterpart")
        assert default.strip("`") == _docs_value(spec.default), (spec.key, default)
        assert meaning, spec.key


def test_docs_name_the_panels_own_labels() -> None:
    """The Panel column says where the panel's Setup page asks for the option."""
    setup = pytest.importorskip("sec1000.web.setup_steps", reason="the panel's setup steps")
    places = {
        field.key: f"Setup → {step.title} → {field.label}"
        for step in setup.STEPS
        for field in step.fields
    }
    assert set(places) == {spec.key for spec in OPTION_SPECS}
    rows = option_rows()
    for key, place in places.items():
        assert rows[key][0] == place, (key, place)


def _docs_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def numbers_in(text: str) -> set[float]:
    """Every number written in `text` (3600, 0.01; a range gives both ends)."""
    return {float(number) for number in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)}


BOUNDED_OR_CHOSEN = [
    spec
    for spec in OPTION_SPECS
    if (spec.kind in ("int", "float") and spec.minimum is not None) or spec.choices
]


@pytest.mark.parametrize("spec", BOUNDED_OR_CHOSEN, ids=lambda spec: spec.key)
def test_docs_give_each_options_bounds_and_choices(spec: Any) -> None:
    """A number's row names its lowest and highest value; a choice's row names every choice."""
    meaning = option_rows()[spec.key][2]
    if spec.choices:
        assert set(spec.choices) <= set(re.findall(r"`([a-z_]+)`", meaning)), spec.key
    if spec.minimum is not None:
        assert {spec.minimum, spec.maximum} <= numbers_in(meaning), (spec.key, meaning)


def test_docs_name_every_key_a_controller_item_takes() -> None:
    """The `controllers` row names each key of an item of the schema's list."""
    (item,) = config()["schema"]["controllers"]
    named = set(re.findall(r"`([a-z_]+)`", option_rows()["controllers"][2]))
    assert set(item) <= named, set(item) - named


DOCS_SECTIONS = (
    "Installation",
    "Versions and updates",
    "Options",
    "Panel",
    "Entities",
    "Helpers",
    "Events",
    "Feedback codes",
    "Safety",
    "Automation examples",
    "Migration from goodwe_sec1000",
    "Command line",
    "Troubleshooting",
)


def test_docs_have_every_section_in_order() -> None:
    docs = docs_text()
    headings = re.findall(r"^## (.+)$", docs, re.M)
    assert [h for h in headings if h in DOCS_SECTIONS] == list(DOCS_SECTIONS)
    assert "https://github.com/" in docs_section("Installation")


def test_docs_list_every_entity_helper_and_event() -> None:
    """Every sensor and helper the package publishes, and both events with their fields."""
    entities = docs_section("Entities")
    for sensor in ALL_SENSORS:
        # v1…v3, i1…i3 and p1…p3 are written as ranges.
        shown = re.sub(r"([vip])[123]$", r"\g<1>1", sensor.entity_id)
        assert f"`{shown}`" in entities, sensor.entity_id
    helpers = docs_section("Helpers")
    listed = set(re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \|", helpers, re.M))
    assert listed == {helper.entity_id for helper in HELPERS}
    events = docs_section("Events")
    assert {f"`{event}`" for event in (COMMAND_EVENT, RESULT_EVENT)} <= set(
        re.findall(r"`[a-z0-9_]+`", events)
    )
    for field in ("command", "request_id", "feedback", "ok", "message"):
        assert f"| `{field}` |" in events, field


def test_the_package_publishes_exactly_the_contract() -> None:
    assert {sensor.entity_id for sensor in ALL_SENSORS} == CONTRACT_SENSORS
    assert {helper.entity_id for helper in HELPERS} == CONTRACT_HELPERS
    assert {COMMAND_EVENT, RESULT_EVENT} == CONTRACT_EVENTS


def known_commands() -> set[str]:
    """The commands `sec1000_command` accepts, as the operations layer names them itself."""

    async def ask() -> str:
        with tempfile.TemporaryDirectory() as data:
            return (await Runtime(Options(), Path(data)).ops.run("?")).message

    message = asyncio.run(ask())
    return set(message.split("known commands: ")[1].split(", "))


def test_docs_name_exactly_the_commands_the_event_accepts() -> None:
    events = docs_section("Events")
    listed = events.split("- `command`:")[1].split("\n- ")[0]
    assert set(re.findall(r"`([a-z_]+)`", listed)) == known_commands()


def test_docs_feedback_codes_are_the_protocols() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", docs_section("Feedback codes"), re.M))
    expected = {0, 129} | {int(bit) for bit in Feedback if bit}
    assert {int(code) for code in rows} == expected
    for bit, words in FEEDBACK_WORDS.items():
        # The package's words for the bit (e.g. "socket error", "timeout") start the meaning.
        name = " ".join(words.split(":")[0].lower().split()[:2])
        assert rows[str(int(bit))].lower().startswith(name), (bit, name)


def docs_yaml_blocks() -> list[Any]:
    docs = docs_text()
    return [
        yaml.safe_load(block) for block in re.findall(r"^```yaml\n(.*?)^```", docs, re.M | re.S)
    ]


def test_docs_options_examples_are_valid_options() -> None:
    """A YAML example of options (the Configuration tab's) is accepted by the add-on."""
    examples = [block for block in docs_yaml_blocks() if set(block) <= set(config()["schema"])]
    assert examples, "DOCS.md shows the controllers option in YAML"
    for example in examples:
        options = Options.from_mapping(example)
        assert schema_accepts(config()["schema"]["controllers"], example["controllers"])
        assert options.controller_names[1:] == [item["name"] for item in example["controllers"]]


def test_docs_automation_examples_are_valid_and_use_the_contract() -> None:
    """Every YAML example parses and uses only contract entities, events and commands."""
    blocks = [block for block in docs_yaml_blocks() if not set(block) <= set(config()["schema"])]
    assert len(blocks) >= 4
    commands = known_commands()
    for block in blocks:
        assert isinstance(block, dict) and block.get("alias"), block
        assert "triggers" in block or "sequence" in block, block.get("alias")
        nodes = walk(block)
        texts = [node for node in nodes if isinstance(node, str)]
        for entity_id in {m for text in texts for m in re.findall(r"\b[a-z_]+\.sec1000_\w+", text)}:
            assert entity_id in CONTRACT_ENTITIES | CONTRACT_SCRIPTS, (block["alias"], entity_id)
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if "event" in node:
                assert node["event"] in CONTRACT_EVENTS, node
                assert node["event_data"]["command"] in commands, node
            if node.get("trigger") == "event":
                assert node["event_type"] in CONTRACT_EVENTS, node
            if node.get("action") == "input_button.press":
                assert node["target"]["entity_id"] in CONTRACT_HELPERS, node
            assert "platform" not in node and "service" not in node, (
                "current syntax: trigger/action"
            )


def test_docs_have_the_three_automation_examples_the_seed_users_need() -> None:
    blocks = docs_yaml_blocks()
    triggers = [t for block in blocks for t in block.get("triggers", [])]
    assert any("price" in str(t.get("entity_id")) and "below" in t for t in triggers)
    assert any(t.get("trigger") == "time" and t.get("at") == "03:00:00" for t in triggers)
    assert any(
        t.get("trigger") == "numeric_state" and t.get("entity_id") == "sensor.sec1000_load_power"
        for t in triggers
    )
    pressed = {
        node["target"]["entity_id"]
        for block in blocks
        for node in walk(block)
        if isinstance(node, dict) and node.get("action") == "input_button.press"
    }
    assert {
        "input_button.sec1000_export_disable",
        "input_button.sec1000_set_datetime",
        "input_button.sec1000_reset_export_watchdog",
    } <= pressed


def test_docs_migration_maps_every_old_service() -> None:
    migration = docs_section("Migration from goodwe_sec1000")
    assert "custom_components/goodwe_sec1000" in migration
    old = set(re.findall(r"^\| `goodwe_sec1000\.([a-z_]+)`", migration, re.M))
    assert old == {spec.name.value for spec in COMMANDS if spec.panel}
    assert "`sec1000_export_enable`" not in migration  # no service of that name ever existed


def test_docs_safety_gives_the_resets_numbers_as_the_package_has_them() -> None:
    """The reset's off window and settle, where its restore record is kept (so a crash or a
    power loss cannot leave the limiter off), the feedback of a command it refuses or replaces,
    how many commands may wait, and the option that raises the offline notification."""
    safety = docs_section("Safety")
    seconds = {float(n) for n in re.findall(r"(\d+(?:\.\d+)?) (?:s|seconds)\b", safety)}
    assert {DEFAULT_TIMINGS.off_window, DEFAULT_TIMINGS.settle} <= seconds, seconds
    assert "`/data`" in safety
    assert f"feedback {int(Feedback.GENERAL_ERROR)}" in safety
    assert DEFAULT_MAX_QUEUED in numbers_in(safety)
    assert "`offline_notification_minutes`" in safety


def test_options_that_take_a_negative_number_are_the_ones_docs_name() -> None:
    """Supervisors before 2026.03.3 refuse negative option numbers: DOCS names exactly the
    options a user may set negative, beside that version; every bound is 0 or more."""
    schema = config()["schema"]
    negative = {
        key for key, kind in schema.items() if isinstance(kind, str) and negative_accepted(kind)
    }
    assert negative, "the price thresholds take negative prices"
    item = schema["controllers"][0]
    assert not [key for key, kind in item.items() if negative_accepted(kind)]
    bullet = next(
        block
        for block in docs_section("Versions and updates").split("\n- ")
        if "2026.03.3" in block
    )
    assert set(re.findall(r"`([a-z_]+)`", bullet)) == negative
    bounds = re.findall(r"(?:int|float)\(([^,]*),", json.dumps(schema))
    assert bounds and all(float(low) >= 0 for low in bounds), bounds


def test_the_docs_name_exactly_the_scripts_the_addon_installs() -> None:
    """Every `script.sec1000_…` in DOCS.md is a real script, and every script is in DOCS.md."""
    from sec1000.ha.scripts import SCRIPT_COMMANDS, script_object_id

    docs = docs_text()
    named = set(re.findall(r"script\.(sec1000_[a-z_]+)", docs))
    real = {script_object_id(spec) for spec in SCRIPT_COMMANDS}
    assert named == real
    assert {f"script.{object_id}" for object_id in real} == CONTRACT_SCRIPTS


def test_the_command_line_section_shows_every_subcommand() -> None:
    """Each command of `sec1000` (its parser's subcommands) has an example line."""
    (subcommands,) = (
        action.choices
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    shown = set(re.findall(r"^sec1000 ([a-z-]+)", docs_section("Command line"), re.M))
    assert shown == set(subcommands)
