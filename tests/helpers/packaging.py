"""Shared by the packaging tests: the Home Assistant contract as design.md writes it out, the
add-on's files as parsed (config.yaml, DOCS.md's sections, the CHANGELOG's releases), and the
walks over parsed YAML that find what a file uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "sec1000_addon"
# The Home Assistant contract, copied from design.md's tables (sensors, then helpers). The
# package exposes the same list in sec1000.ha.entities; tests/packaging/test_docs.py holds
# the two together.
FEEDBACK_OPERATIONS = (
    "export_disable",
    "export_enable",
    "set_export_limit",
    "get_export_limit",
    "get_telemetry_data",
    "reset_export_watchdog",
    "set_datetime",
)
CONTRACT_SENSORS = {
    *(f"sensor.sec1000_{kind}{n}" for kind in ("v", "i", "p") for n in (1, 2, 3)),
    "sensor.sec1000_meters_power",
    "sensor.sec1000_inverters_power",
    "sensor.sec1000_load_power",
    "sensor.sec1000_export_limit",
    "sensor.sec1000_export_state",
    "sensor.sec1000_modul_started",
    *(f"sensor.sec1000_{operation}_feedback" for operation in FEEDBACK_OPERATIONS),
    # Added by design.md's "Contracts added for the next capabilities" (guard, energy).
    "sensor.sec1000_export_guard",
    *(f"sensor.sec1000_{kind}_energy" for kind in ("grid_export", "grid_import", "pv", "load")),
    "sensor.sec1000_time_at_limit_today",
    "sensor.sec1000_export_policy",
    # Added by design.md's "Contracts added for the meter check, …" (the meter check).
    "binary_sensor.sec1000_export_over_limit",
    "sensor.sec1000_export_over_limit_energy",
    "sensor.sec1000_export_over_limit_today",
}
CONTRACT_HELPERS = {
    "input_button.sec1000_export_enable",
    "input_button.sec1000_export_disable",
    "input_button.sec1000_get_export_limit",
    "input_button.sec1000_set_datetime",
    "input_button.sec1000_reset_export_watchdog",
    "input_number.sec1000_export_limit_setpoint",
    "input_boolean.sec1000_export",
}
# design.md: the awaitable scripts, `script.sec1000_<command>`.
CONTRACT_SCRIPTS = {
    f"script.sec1000_{command}"
    for command in (
        "export_enable",
        "export_disable",
        "export_toggle",
        "set_export_limit",
        "get_export_limit",
        "set_datetime",
        "reset_export_watchdog",
        "get_telemetry_data",
        "set_control_mode",
    )
}
CONTRACT_ENTITIES = CONTRACT_SENSORS | CONTRACT_HELPERS
CONTRACT_EVENTS = {"sec1000_command", "sec1000_command_result"}
ENTITY_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")
ENTITY_KEYS = {"entity", "entity_id", "entities", "triggers_update", "feedback"}


def walk(node: object) -> list[object]:
    """Every node of parsed YAML or JSON: each mapping itself, then what it holds; lists are
    walked through, not listed."""
    if isinstance(node, dict):
        return [node, *(item for value in node.values() for item in walk(value))]
    if isinstance(node, list):
        return [item for value in node for item in walk(value)]
    return [node]


def lovelace_entities(node: object) -> set[str]:
    """Entity ids a dashboard YAML uses: under entity keys, and in `states['...']` templates."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ENTITY_KEYS:
                for item in value if isinstance(value, list) else [value]:
                    entity_id = item.get("entity") if isinstance(item, dict) else item
                    if isinstance(entity_id, str) and ENTITY_ID.match(entity_id):
                        found.add(entity_id)
            found |= lovelace_entities(value)
    elif isinstance(node, list):
        for item in node:
            found |= lovelace_entities(item)
    elif isinstance(node, str):
        found |= set(re.findall(r"states\[['\"]([a-z_]+\.[a-z0-9_]+)['\"]\]", node))
    return found


def config() -> dict[str, Any]:
    """The add-on's config.yaml."""
    return yaml.safe_load((ADDON / "config.yaml").read_text())


def docs_text() -> str:
    """The add-on's DOCS.md."""
    return (ADDON / "DOCS.md").read_text(encoding="utf-8")


def docs_section(title: str) -> str:
    """The text of one `## title` section of DOCS.md."""
    match = re.search(rf"^## {re.escape(title)}\b.*?$(.*?)(?=^## |\Z)", docs_text(), re.M | re.S)
    assert match, f"DOCS.md has no '## {title}' section"
    return match.group(1)


def release_headings() -> list[str]:
    """The CHANGELOG's release versions, newest first ([Unreleased] aside)."""
    changelog = (ADDON / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d\d-\d\d$", changelog, re.M)
