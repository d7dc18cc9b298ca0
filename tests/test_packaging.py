"""Local checks of the add-on package (no Docker engine here): config, docs, service, artwork."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import sec1000
import yaml
from PIL import Image, ImageChops, ImageStat
from sec1000.cli import build_parser
from sec1000.commands import COMMANDS
from sec1000.ha.entities import ALL_SENSORS, COMMAND_EVENT, HELPERS, RESULT_EVENT
from sec1000.limiter.watchdog import MAX_SHUTDOWN_GRACE
from sec1000.options import LOG_LEVELS, OPTION_SPECS, Options, OptionsError
from sec1000.protocol import Feedback
from sec1000.protocol.errors import FEEDBACK_WORDS
from sec1000.runtime import Runtime

from tests.ha_harness import NEWEST, OLDEST
from tests.helpers.packaging import (
    ADDON,
    CONTRACT_ENTITIES,
    CONTRACT_EVENTS,
    CONTRACT_HELPERS,
    CONTRACT_SCRIPTS,
    CONTRACT_SENSORS,
    ROOT,
    lovelace_entities,
    walk,
)

SERVICE = ADDON / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d" / "sec1000"
# The community add-on linter (frenck/action-addon-linter, config.schema.json): the keys it
# knows (any other key fails it), and the defaults it fails a key for being set to.
LINTER_DEFAULTS: dict[str, object] = {
    "advanced": False,
    "apparmor": True,
    "audio": False,
    "auth_api": False,
    "auto_uart": False,
    "backup": "hot",
    "boot": "auto",
    "devicetree": False,
    "docker_api": False,
    "full_access": False,
    "gpio": False,
    "hassio_api": False,
    "hassio_role": "default",
    "homeassistant": False,
    "homeassistant_api": False,
    "host_dbus": False,
    "host_ipc": False,
    "host_network": False,
    "host_pid": False,
    "host_uts": False,
    "ingress": False,
    "ingress_port": 8099,
    "ingress_stream": False,
    "init": True,
    "journald": False,
    "kernel_modules": False,
    "legacy": False,
    "options": {},
    "panel_admin": True,
    "panel_icon": "mdi:puzzle",
    "realtime": False,
    "schema": {},
    "stage": "stable",
    "startup": "application",
    "stdin": False,
    "timeout": 10,
    "tmpfs": False,
    "uart": False,
    "udev": False,
    "ulimits": {},
    "usb": False,
    "video": False,
}
LINTER_KEYS = set(LINTER_DEFAULTS) | {
    "arch", "backup_exclude", "backup_pre", "backup_post", "breaking_versions", "codenotary",
    "description", "devices", "discovery", "environment", "image", "ingress_entry", "machine",
    "map", "name", "panel_title", "ports", "ports_description", "privileged", "services",
    "slug", "url", "version", "watchdog", "webui",
}  # fmt: skip


def config() -> dict[str, Any]:
    return yaml.safe_load((ADDON / "config.yaml").read_text())


def schema_accepts(schema: Any, value: object) -> bool:
    """Does a Supervisor schema type accept this value?"""
    if isinstance(schema, list):  # a list of dicts: keys without `?` are required
        (item,) = schema
        return isinstance(value, list) and all(dict_accepts(item, each) for each in value)
    optional = schema.endswith("?")
    schema = schema.rstrip("?")
    if value is None:
        return optional
    if schema == "bool":
        return isinstance(value, bool)
    if schema == "port":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
    if schema == "password":
        return isinstance(value, str)
    if match := re.fullmatch(r"(int|float|str)\(([^,]*),([^)]*)\)", schema) or re.fullmatch(
        r"(int|float|str)", schema
    ):
        kind = match.group(1)
        low = match.group(2) if match.lastindex and match.lastindex >= 2 else ""
        high = match.group(3) if match.lastindex and match.lastindex >= 3 else ""
        if kind == "str":
            return (
                isinstance(value, str)
                and (not low or len(value) >= int(low))
                and (not high or len(value) <= int(high))
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind == "int" and not isinstance(value, int))
        ):
            return False
        return (not low or value >= float(low)) and (not high or value <= float(high))
    if match := re.fullmatch(r"list\((.*)\)", schema):
        return value in match.group(1).split("|")
    if match := re.fullmatch(r"match\((.*)\)", schema):  # the Supervisor: re.match on str(value)
        return re.match(match.group(1), str(value)) is not None
    raise AssertionError(f"unknown schema type {schema}")


def dict_accepts(schema: dict[str, str], value: object) -> bool:
    """A dict of a list-of-dicts schema: no unknown keys, every required one present."""
    if not isinstance(value, dict) or not set(value) <= set(schema):
        return False
    required = {key for key, kind in schema.items() if not kind.endswith("?")}
    return required <= set(value) and all(schema_accepts(schema[k], v) for k, v in value.items())


def test_required_keys_and_ingress() -> None:
    cfg = config()
    for key in ("name", "version", "slug", "description", "url", "arch"):
        assert cfg.get(key), key
    assert cfg["arch"] == ["aarch64", "amd64"]
    assert cfg["init"] is False and cfg["ingress"] is True and cfg["homeassistant_api"] is True
    assert cfg["panel_icon"] == "mdi:transmission-tower-export" and cfg["panel_title"]


def test_the_oldest_supported_core_is_the_oldest_the_tests_run_on() -> None:
    """`homeassistant` (the Supervisor installs the add-on on that Core or newer) is the release
    of the oldest tested Core; DOCS names both tested Cores."""
    declared = config()["homeassistant"]
    year, month, _ = OLDEST.version.split(".")
    assert declared == f"{year}.{month}.0"
    docs = (ADDON / "DOCS.md").read_text()
    assert OLDEST.version in docs and NEWEST.version in docs


def test_no_key_is_set_to_its_default() -> None:
    cfg = config()
    offending = {
        key: cfg[key]
        for key, default in LINTER_DEFAULTS.items()
        if key in cfg and cfg[key] == default
    }
    assert offending == {}


def test_config_uses_only_keys_the_linter_knows() -> None:
    cfg = config()
    assert set(cfg) - LINTER_KEYS == set()
    assert "watchdog" not in cfg, "obsolete: the linter fails it"
    assert "webui" not in cfg, "ingress add-ons have no webui"


def test_security_rating_is_8() -> None:
    cfg = config()
    rating = 5 + (2 if cfg.get("ingress") else 0) + (1 if (ADDON / "apparmor.txt").exists() else 0)
    rating -= 1 if cfg.get("apparmor") is False else 0
    rating -= {"manager": 1, "admin": 2}.get(cfg.get("hassio_role", "default"), 0)
    rating -= (1 if cfg.get("host_network") else 0) + (2 if cfg.get("host_pid") else 0)
    rating -= 1 if cfg.get("privileged") else 0
    if cfg.get("full_access") or cfg.get("docker_api"):
        rating = 1
    assert min(rating, 8) == 8


def test_every_option_has_a_default_its_schema_accepts() -> None:
    cfg = config()
    assert set(cfg["options"]) == set(cfg["schema"])
    for key, schema in cfg["schema"].items():
        assert schema_accepts(schema, cfg["options"][key]), (key, schema, cfg["options"][key])


def test_schema_equals_the_applications_option_model() -> None:
    cfg = config()
    assert cfg["schema"] == {spec.key: spec.schema for spec in OPTION_SPECS}
    assert cfg["options"] == {spec.key: spec.default for spec in OPTION_SPECS}
    assert Options.from_mapping(cfg["options"]) == Options()


def test_no_string_option_is_bounded_in_the_schema() -> None:
    """Supervisors before 2026.07 refuse every value of a bounded `str` or `password` ("must
    have a partial ordering": they compare the text with the bounds). The bound is ours to check."""
    for key, schema in config()["schema"].items():
        kinds = schema[0].values() if isinstance(schema, list) else [schema]
        for kind in kinds:
            assert not re.fullmatch(r"(str|password)\(.*\)", kind.removesuffix("?")), (key, kind)


@pytest.mark.parametrize(
    ("items", "accepted"),
    [
        ([], True),
        ([{"name": "barn", "host": "10.0.0.2"}], True),
        ([{"name": "barn", "host": "10.0.0.2", "port": 1235, "max_export_limit": 5.0}], True),
        ([{"name": "barn", "host": "10.0.0.2", "export_limit_control_mode": "rcr"}], True),
        ([{"name": "barn"}], False),  # no host
        ([{"host": "10.0.0.2"}], False),  # no name
        ([{"name": "barn", "host": "10.0.0.2", "scan_interval": 5}], False),  # shared key
        ([{"name": "barn", "host": "10.0.0.2", "max_export_limit": 101.0}], False),
        ([{"name": "barn", "host": "10.0.0.2", "export_limit_control_mode": "turbo"}], False),
        ([{"name": "barn", "host": "10.0.0.2", "port": 0}], False),
        ({"name": "barn", "host": "10.0.0.2"}, False),  # not a list
        ([{"name": "Garage", "host": "10.0.0.2"}], False),  # capitals
        ([{"name": "sec1000", "host": "10.0.0.2"}], False),  # the first controller's name
        ([{"name": "barn__2", "host": "10.0.0.2"}], False),  # '__': no Home Assistant id
        ([{"name": "_barn", "host": "10.0.0.2"}], False),
        ([{"name": "a" * 21, "host": "10.0.0.2"}], False),
        ([{"name": "barn\n", "host": "10.0.0.2"}], False),
        ([{"name": "sec1000_2", "host": "10.0.0.2"}], True),
        ([{"name": "a" * 20, "host": "10.0.0.2"}], True),
    ],
)
def test_the_controllers_schema_and_the_application_agree(items: object, accepted: bool) -> None:
    """The Supervisor's list-of-dicts schema and the add-on's own check take and refuse the
    same items (the name's and the host's form are the add-on's to check)."""
    assert schema_accepts(config()["schema"]["controllers"], items) is accepted
    assert _app_accepts("controllers", items) is accepted


def test_the_host_bound_is_kept_by_the_application() -> None:
    assert _app_accepts("host", "a" * 63 + "." + "b" * 63)
    for bad in ("", "a" * 64, "192.168.1..200", "host\x00name", "x" * 254, "-bad-.lan"):
        assert not _app_accepts("host", bad), bad


@pytest.mark.parametrize("spec", OPTION_SPECS, ids=lambda spec: spec.key)
def test_schema_bounds_equal_the_applications_validation(spec: Any) -> None:
    """Just inside the bounds both accept; just outside both refuse."""
    schema = {s.key: s.schema for s in OPTION_SPECS}[spec.key]
    if spec.kind in ("int", "float", "port") and spec.minimum is not None:
        step = 1 if spec.kind in ("int", "port") else 0.01
        low = spec.minimum
        high = spec.maximum
        for raw, inside in ((low, True), (high, True), (low - step, False), (high + step, False)):
            value = int(raw) if spec.kind in ("int", "port") else raw
            assert schema_accepts(schema, value) is inside, (spec.key, value)
            assert _app_accepts(spec.key, value) is inside, (spec.key, value)
    elif spec.kind == "list":
        for choice in spec.choices:
            assert schema_accepts(schema, choice) and _app_accepts(spec.key, choice)
        assert not schema_accepts(schema, "nope") and not _app_accepts(spec.key, "nope")


def _app_accepts(key: str, value: object) -> bool:
    # Cross-field checks aside: give the other limits room so only this key is judged.
    base = Options(min_export_limit=0, max_export_limit=100, total_capacity=2000)
    try:
        Options.from_mapping({key: value}, base=base)
    except OptionsError as err:
        return key not in err.errors
    return True


@pytest.mark.parametrize("lang", ["en", "de", "sk"])
def test_every_option_is_translated(lang: str) -> None:
    path = ADDON / "translations" / f"{lang}.yaml"
    translations = yaml.safe_load(path.read_text(encoding="utf-8"))["configuration"]
    assert set(translations) == set(config()["schema"]), "one translation per option, no stale ones"
    for key, text in translations.items():
        assert set(text) == {"name", "description"}, key
        assert text["name"].strip() and len(text["description"].strip()) > 20, key


def test_the_shipped_translations_are_exactly_english_german_and_slovak() -> None:
    assert sorted(p.name for p in (ADDON / "translations").iterdir()) == [
        "de.yaml",
        "en.yaml",
        "sk.yaml",
    ]


def test_every_option_has_a_row_in_the_docs_options_table() -> None:
    """A row `| `key` | panel place | default | meaning |` under DOCS.md's Options heading."""
    options = docs_section("Options")
    for spec in OPTION_SPECS:
        row = re.search(rf"^\| `{spec.key}` \|([^|]+)\|([^|]+)\|([^|]+)\|$", options, re.M)
        assert row, spec.key
        panel, default, meaning = (cell.strip() for cell in row.groups())
        assert panel.startswith("Setup"), (spec.key, "name the panel's counterpart")
        assert default.strip("`") == _docs_value(spec.default), (spec.key, default)
        assert meaning, spec.key


def test_docs_name_the_panels_own_labels() -> None:
    """The Panel column says where the panel's Setup page asks for the option."""
    setup = pytest.importorskip("sec1000.web.setup_steps", reason="the panel's setup steps")
    options = docs_section("Options")
    places = {
        field.key: f"Setup → {step.title} → {field.label}"
        for step in setup.STEPS
        for field in step.fields
    }
    assert set(places) == {spec.key for spec in OPTION_SPECS}
    for key, place in places.items():
        assert f"| `{key}` | {place} |" in options, (key, place)


def _docs_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def docs_section(title: str) -> str:
    """The text of one `## title` section of DOCS.md."""
    docs = (ADDON / "DOCS.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\b.*?$(.*?)(?=^## |\Z)", docs, re.M | re.S)
    assert match, f"DOCS.md has no '## {title}' section"
    return match.group(1)


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
    docs = (ADDON / "DOCS.md").read_text()
    headings = re.findall(r"^## (.+)$", docs, re.M)
    assert [h for h in headings if h in DOCS_SECTIONS] == list(DOCS_SECTIONS)
    assert "https://github.com/" in docs_section("Installation")


def test_docs_list_every_entity_helper_and_event() -> None:
    entities = docs_section("Entities")
    for entity_id in CONTRACT_SENSORS:
        # v1…v3, i1…i3 and p1…p3 are written as ranges.
        shown = re.sub(r"([vip])[123]$", r"\g<1>1", entity_id)
        assert f"`{shown}`" in entities, entity_id
    helpers = docs_section("Helpers")
    assert set(re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \|", helpers, re.M)) == CONTRACT_HELPERS
    events = docs_section("Events")
    assert {f"`{event}`" for event in CONTRACT_EVENTS} <= set(re.findall(r"`[a-z0-9_]+`", events))
    for field in ("command", "request_id", "feedback", "ok", "message"):
        assert f"| `{field}` |" in events, field


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
    docs = (ADDON / "DOCS.md").read_text()
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


def test_docs_safety_notes() -> None:
    safety = docs_section("Safety").lower()
    for words in ("responsible", "5 seconds", "full power", "persistent notification", "crash"):
        assert words in safety, words


def test_changelog_has_unreleased_and_this_version() -> None:
    changelog = (ADDON / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert versions[:2] == ["Unreleased", config()["version"]], versions
    assert re.search(
        rf"^## \[{re.escape(config()['version'])}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M
    )
    assert "### Added" in changelog


def release_headings() -> list[str]:
    """The CHANGELOG's release versions, newest first ([Unreleased] aside)."""
    changelog = (ADDON / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d\d-\d\d$", changelog, re.M)


def test_the_version_is_one_value() -> None:
    """What the Supervisor compares to offer an update (config.yaml), the CHANGELOG's newest
    release, the package's version and the image's default label are one value."""
    version = config()["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    project = tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert release_headings()[0] == version
    assert project["version"] == version
    assert sec1000.__version__ == version
    assert re.findall(r"^ARG BUILD_VERSION=(\S+)$", dockerfile, re.M) == [version]


def test_docs_say_what_each_release_brings() -> None:
    """Versions and updates has a `### X.Y.Z` part for every release of the CHANGELOG."""
    described = re.findall(r"^### (\d+\.\d+\.\d+)$", docs_section("Versions and updates"), re.M)
    assert set(release_headings()) <= set(described)


def negative_accepted(schema: Any) -> bool:
    return schema_accepts(schema, -0.05) or schema_accepts(schema, -1)


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


# Deprecated by the Supervisor in 2026: map types renamed for apps, 32-bit architectures.
LEGACY_MAPS = {"addon_config", "all_addon_configs", "addons", "config"}
DEPRECATED_ARCHES = {"armhf", "armv7", "i386"}


def test_config_uses_nothing_the_2026_supervisor_deprecates() -> None:
    cfg = config()
    maps = {str(entry).split(":")[0] for entry in cfg.get("map", [])}
    assert maps & LEGACY_MAPS == set()
    assert set(cfg["arch"]) & DEPRECATED_ARCHES == set()
    assert "advanced" not in cfg, "ignored since Supervisor 2026.07"
    # No published image yet: the Supervisor builds the Dockerfile on the user's machine.
    assert "image" not in cfg


# Device registry fields and commands deprecated from Core 2026.8 (a device belongs to one
# config entry; removal in 2027.8): the add-on reads none of them.
DEPRECATED_DEVICE_REGISTRY = (
    "primary_config_entry",
    '"config_entries"',
    "via_device",
    "remove_config_entry",
    "config/device_registry/update",
)


def test_no_deprecated_device_registry_field_is_used() -> None:
    package = ADDON / "sec1000"
    used = {
        (path.relative_to(package).as_posix(), word)
        for path in package.rglob("*.py")
        for word in DEPRECATED_DEVICE_REGISTRY
        if word in path.read_text(encoding="utf-8")
    }
    assert used == set()


def test_the_store_text_calls_it_an_app_and_says_add_on_once() -> None:
    """The UI's words of 2026 (apps, App store), the old one said once for older versions.
    The panel's own labels (its locale keys) quoted in DOCS are left out of the count."""
    old_word = re.compile(r"\badd-ons?\b", re.I)
    panel = json.loads((ADDON / "sec1000" / "web" / "locale" / "de.json").read_text())
    docs = (ADDON / "DOCS.md").read_text()
    for label in filter(old_word.search, panel):
        docs = docs.replace(label, "")
    assert len(re.findall(r"^.*\badd-ons?\b.*$", docs, re.M | re.I)) == 1, old_word.findall(docs)
    assert "Settings → Apps → App store" in docs_section("Installation")
    store = (ADDON / "README.md").read_text()
    assert len(old_word.findall(store)) == 1 and "Settings → Apps → App store" in store
    assert not old_word.search(config()["description"])
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert not old_word.search(repository["name"])
    for lang in ("en", "de"):
        text = (ADDON / "translations" / f"{lang}.yaml").read_text(encoding="utf-8")
        assert not old_word.search(text), lang


def test_the_package_publishes_exactly_the_contract() -> None:
    assert {sensor.entity_id for sensor in ALL_SENSORS} == CONTRACT_SENSORS
    assert {helper.entity_id for helper in HELPERS} == CONTRACT_HELPERS
    assert {COMMAND_EVENT, RESULT_EVENT} == CONTRACT_EVENTS


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
    assert "5 seconds" in confirmation and "full power" in confirmation
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


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def _steps(flow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in flow["jobs"].values() for step in job.get("steps", [])]


def test_lint_workflow_runs_every_linter() -> None:
    steps = _steps(workflow("lint.yaml"))
    uses = " ".join(step.get("uses", "") for step in steps)
    runs = " ".join(step.get("run", "") for step in steps)
    for action in (
        "frenck/action-addon-linter@",
        "hadolint/hadolint-action@",
        "frenck/action-yamllint@",
    ):
        assert action in uses, action
    assert "ruff" in uses + runs and "shellcheck --shell=bash" in runs
    linter = next(s for s in steps if "action-addon-linter" in s.get("uses", ""))
    assert linter["with"]["path"].strip("./") == ADDON.name


def test_test_workflow_runs_ci_run() -> None:
    runs = [step.get("run", "") for step in _steps(workflow("test.yaml"))]
    assert any(re.fullmatch(r"(bash )?\.ci/run", run.strip()) for run in runs), runs


def test_build_workflow_builds_every_arch_with_the_builder_actions() -> None:
    flow = workflow("build.yaml")
    assert json.loads(flow["env"]["ARCHITECTURES"]) == sorted(config()["arch"])
    steps = _steps(flow)
    build = next(
        s for s in steps if "home-assistant/builder/actions/build-image@" in s.get("uses", "")
    )
    required = {"arch", "image", "image-tags", "version", "container-registry-password"}
    assert required <= set(build["with"]), required - set(build["with"])
    assert build["with"]["context"] == ADDON.name
    assert any("publish-multi-arch-manifest@" in s.get("uses", "") for s in steps)
    assert any("prepare-multi-arch-matrix@" in s.get("uses", "") for s in steps)
    # The version the images are tagged with is read from config.yaml.
    version_step = next(s for s in steps if s.get("id") == "version")
    script = re.search(r"version=\$\((.*)\)$", version_step["run"], re.M).group(1)  # type: ignore[union-attr]
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == config()["version"]


def test_build_workflow_builds_pull_requests_and_publishes_releases() -> None:
    flow = workflow("build.yaml")
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and triggers["release"]["types"] == ["published"]
    jobs = flow["jobs"]
    build = next(
        s
        for s in jobs["build"]["steps"]
        if "home-assistant/builder/actions/build-image@" in s.get("uses", "")
    )
    assert build["with"]["push"] == "${{ github.event_name == 'release' }}"
    assert jobs["manifest"]["if"] == "github.event_name == 'release'"
    tag_check = next(s for s in jobs["init"]["steps"] if "tag_name" in str(s.get("env")))
    assert tag_check["if"] == "github.event_name == 'release'"
    assert tag_check["env"]["TAG"] == "${{ github.event.release.tag_name }}"
    assert tag_check["run"] == 'test "${TAG}" = "v${VERSION}"'
    # The base image the build verifies is the one the Dockerfile builds from.
    base = re.search(r"^ARG BUILD_FROM=(\S+)$", (ADDON / "Dockerfile").read_text(), re.M)
    assert base and build["with"]["cosign-base-verify"] == base.group(1)


def test_dependabot_keeps_the_actions_and_the_pinned_dependencies_current() -> None:
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert dependabot["version"] == 2
    watched = {(u["package-ecosystem"], u["directory"]) for u in dependabot["updates"]}
    manifests = {
        "github-actions": ".github/workflows",
        "pip": "pyproject.toml",
        "npm": "package.json",
    }
    assert {ecosystem for ecosystem, _ in watched} == set(manifests)
    for ecosystem, directory in watched:
        assert (ROOT / directory.strip("/") / manifests[ecosystem]).exists(), (ecosystem, directory)
    assert ("pip", f"/{ADDON.name}") in watched
    for update in dependabot["updates"]:
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}


def test_yamllint_passes() -> None:
    linter = pytest.importorskip("yamllint.cli", reason="yamllint is not installed")
    with pytest.raises(SystemExit) as exit_info:
        linter.run(["--strict", "-c", str(ROOT / ".yamllint"), str(ROOT)])
    assert exit_info.value.code == 0


def test_every_yaml_file_parses() -> None:
    files = [
        p
        for p in ROOT.rglob("*.y*ml")
        if not {".venv", ".cache", "node_modules", ".git"} & set(p.parts)
    ]
    assert len(files) >= 8
    for path in files:
        yaml.safe_load(path.read_text())


def test_dockerfile_names_a_default_build_from() -> None:
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert re.search(
        r"^ARG BUILD_FROM=ghcr\.io/home-assistant/base-python:3\.13-alpine3\.24$", dockerfile, re.M
    )
    assert re.search(r"^FROM \$\{BUILD_FROM\}$", dockerfile, re.M)
    # Supervisor 2026.04+ reads no build.yaml (and logs one as deprecated): this default rules.
    assert not (ADDON / "build.yaml").exists(), "build.yaml is deprecated"
    for label in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{label}=" in dockerfile, label
    assert re.search(
        r"^\s*org\.opencontainers\.image\.version=\"\$\{BUILD_VERSION\}\"", dockerfile, re.M
    )


def test_dockerfile_copies_what_pip_needs_to_build_the_package() -> None:
    """pip builds from pyproject.toml, which also names the readme: both must be in the image."""
    dockerfile = (ADDON / "Dockerfile").read_text()
    project = tomllib.loads((ADDON / "pyproject.toml").read_text())["project"]
    copied = {
        word
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for word in line.split()[1:-1]
    }
    assert {"pyproject.toml", project["readme"], "sec1000", "rootfs"} <= copied
    assert (ADDON / project["readme"]).is_file()
    assert re.search(r"^RUN pip install --no-cache-dir /usr/src/sec1000\b", dockerfile, re.M)
    assert config()["version"] == project["version"], "config.yaml and pyproject.toml versions"


def test_service_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/dev test installs it with apt-get"
    scripts = [SERVICE / "run", SERVICE / "finish"]
    result = subprocess.run(
        [shellcheck, "--shell=bash", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_repository_scripts_pass_shellcheck() -> None:
    """What the lint workflow checks, checked here too: scripts/dev, .ci/run, scripts/*.sh."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/dev test installs it with apt-get"
    scripts = [ROOT / "scripts" / "dev", ROOT / ".ci" / "run", *(ROOT / "scripts").glob("*.sh")]
    assert ROOT / "scripts" / "python_from_debian.sh" in scripts
    result = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_service_is_an_enabled_longrun_after_base() -> None:
    assert (SERVICE / "type").read_text().strip() == "longrun"
    assert (SERVICE.parent / "user" / "contents.d" / "sec1000").is_file()
    assert (SERVICE / "dependencies.d" / "base").is_file()
    for name in ("run", "finish"):
        assert (SERVICE / name).stat().st_mode & 0o111, f"{name} is not executable"


def test_run_execs_serve_with_the_options_and_the_log_level() -> None:
    """`exec`: sec1000 itself gets SIGTERM from s6 and restores the limiter before exiting."""
    run = (SERVICE / "run").read_text()
    assert run.startswith("#!/command/with-contenv bashio\n")
    commands = [line for line in _logical_lines(run) if not line.startswith("#")]
    assert commands[-1].startswith("exec sec1000 "), "the last command must exec sec1000"
    last = commands[-1].split()
    assert last[:4] == ["exec", "sec1000", "--log-level", '"${log_level}"']
    assert last[4] == "serve" and "/data/options.json" in last[last.index("--options") + 1]
    assert "bashio::config 'log_level'" in run


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_run_hands_sec1000_arguments_its_parser_accepts(level: str, tmp_path: Path) -> None:
    """Run the run script with bashio stubbed: the command line it execs must parse, and every
    option log level must become a level Python's logging knows."""
    argv_file = tmp_path / "argv"
    stub = tmp_path / "bin" / "sec1000"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\n')
    stub.chmod(0o755)
    prelude = (
        'bashio::config() { [ "$1" = log_level ] && printf \'%s\\n\' "$LEVEL"; }\n'
        "bashio::log.info() { :; }\nbashio::log.warning() { :; }\n"
    )
    subprocess.run(
        ["bash", "-c", prelude + f'source "{SERVICE / "run"}"'],
        env={"PATH": f"{stub.parent}:/usr/bin:/bin", "LEVEL": level},
        check=True,
        timeout=30,
    )
    argv = argv_file.read_text().splitlines()
    args = build_parser().parse_args(argv)
    assert args.command == "serve"
    assert args.options == Path("/data/options.json") and args.data_dir == Path("/data")
    assert args.port == 8099 and not args.demo
    assert isinstance(logging.getLevelName(args.log_level.upper()), int), args.log_level


def test_finish_never_stops_the_app_or_halts_the_container() -> None:
    """After a crash s6 must start sec1000 again, so it can finish an interrupted restore."""
    finish = (SERVICE / "finish").read_text()
    code = "\n".join(line for line in _logical_lines(finish) if not line.startswith("#"))
    for word in ("halt", "kill", "s6-svc", "s6-svscanctl", "exitcode"):
        assert word not in code, word


def test_stop_timeout_leaves_room_for_the_watchdog_restore() -> None:
    """The Supervisor kills the container `timeout` s after SIGTERM (default 10)."""
    assert config().get("timeout", 10) >= MAX_SHUTDOWN_GRACE + 5


def _logical_lines(script: str) -> list[str]:
    """The script's lines with backslash continuations joined, blank lines dropped."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def test_artwork_sizes() -> None:
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG"
        width, height = logo.size
    assert 225 <= width <= 275 and 90 <= height <= 110, "about 250x100"


def test_artwork_is_what_the_script_draws() -> None:
    """The committed PNGs come from scripts/draw_artwork.py (font rendering may differ a little)."""
    spec = importlib.util.spec_from_file_location(
        "draw_artwork", ROOT / "scripts" / "draw_artwork.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, drawn in (("icon", module.icon()), ("logo", module.logo())):
        with Image.open(ADDON / f"{name}.png") as committed:
            assert committed.size == drawn.size, name
            difference = ImageChops.difference(committed.convert("RGBA"), drawn.convert("RGBA"))
            mean = sum(ImageStat.Stat(difference).mean) / 4
            assert mean < 2.0, (name, mean)
            alpha = committed.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 128 else 0)
            covered = ImageStat.Stat(alpha).mean[0] / 255
            assert covered > 0.3, (name, "mostly empty")


def test_repository_metadata_and_one_url_everywhere() -> None:
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert repository["name"] and repository["maintainer"]
    url = repository["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert config()["url"] == url
    assert f"`{url}`" in docs_section("Installation")
    assert f'org.opencontainers.image.source="{url}"' in (ADDON / "Dockerfile").read_text()


# Paths the add-on touches at run time, with what it must be allowed to do there. Scripts need
# `r` besides `x` (their interpreter reads them); binaries need only `x`.
APPARMOR_NEEDS = {
    "/init": "rx",
    "/command/with-contenv": "rx",
    "/package/admin/s6-overlay-3.2.1.0/command/with-contenv": "rx",
    "/package/admin/s6-2.13.2.0/command/s6-supervise": "mrx",
    "/run/s6-rc:s6-rc-init:aBcD/servicedirs/sec1000/run": "rx",
    "/run/service/sec1000/finish": "rx",
    "/run/s6/basedir/bin/halt": "x",
    "/run/s6/container_environment/SUPERVISOR_TOKEN": "rw",
    "/etc/s6-overlay/s6-rc.d/sec1000/run": "r",
    "/usr/bin/bashio": "rx",
    "/usr/lib/bashio/bashio.sh": "r",
    "/bin/bash": "x",
    "/usr/bin/curl": "x",
    "/usr/bin/jq": "x",
    "/usr/local/bin/python3.13": "x",
    "/usr/local/bin/sec1000": "rx",
    "/usr/local/lib/python3.13/asyncio/base_events.py": "r",
    "/usr/local/lib/python3.13/site-packages/sec1000/web/templates/base.html": "r",
    "/usr/local/lib/python3.13/site-packages/aiohttp/_http_parser.cpython-313-aarch64-linux-musl.so": "mr",
    "/usr/local/lib/libpython3.13.so.1.0": "mr",
    "/lib/ld-musl-x86_64.so.1": "mr",
    "/usr/lib/libssl.so.3": "mr",
    "/etc/resolv.conf": "r",
    "/etc/hosts": "r",
    "/etc/ssl/certs/ca-certificates.crt": "r",
    "/etc/mime.types": "r",
    "/usr/share/zoneinfo/Europe/Berlin": "r",
    "/proc/self/status": "r",
    "/data/": "r",
    "/data/options.json": "rw",
    "/data/.options.x1y2": "rw",
    "/data/watchdog_restore.json": "rwk",
    "/tmp/.bashio/addons.self.options.config.cache": "rw",
    "/dev/tty": "rw",
}
# Paths it must not write, nor run, nor (for "rwx") read at all.
APPARMOR_FORBIDS = {
    "/etc/passwd": "wx",
    "/etc/s6-overlay/s6-rc.d/sec1000/run": "w",
    "/init": "w",
    "/bin/bash": "w",
    "/usr/local/bin/sec1000": "w",
    "/usr/local/lib/python3.13/site-packages/sec1000/options.py": "wx",
    "/package/admin/s6-2.13.2.0/command/s6-supervise": "w",
    "/data/options.json": "x",
    "/tmp/payload": "x",
    "/config/configuration.yaml": "rwx",
    "/homeassistant/secrets.yaml": "rwx",
    "/ssl/privkey.pem": "rwx",
    "/share/file": "rwx",
    "/media/file": "rwx",
    "/backup/slug.tar": "rwx",
    "/root/.ssh/id_ed25519": "rwx",
    "/sys/kernel/debug/x": "rwx",
    "/dev/mem": "rwx",
    "/dev/sda": "rwx",
}
APPARMOR_VARIABLES = {"@{PROC}": "/proc", "@{pid}": "[0-9]+", "@{pids}": "[0-9]+"}


def apparmor_file_rules(profile: str) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, permissions) of every file rule in the profile; `x` stands for any exec mode."""
    rules = []
    for line in profile.splitlines():
        match = re.fullmatch(r"\s*(?:owner\s+)?((?:/|@\{)\S*)\s+([a-zA-Z]+),\s*", line)
        if match:
            glob, perms = match.groups()
            rules.append((re.compile(_apparmor_glob(glob)), re.sub(r"[iupcIUPC]x", "x", perms)))
    return rules


def _apparmor_glob(glob: str) -> str:
    for name, value in APPARMOR_VARIABLES.items():
        glob = glob.replace(name, "\0" + value + "\0")
    out, in_group, parts = [], 0, glob.split("\0")
    for index, part in enumerate(parts):
        if index % 2:  # a variable's value is a regex already
            out.append(part)
            continue
        i = 0
        while i < len(part):
            char = part[i]
            if part.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append(
                {"*": "[^/]*", "?": "[^/]", "{": "(?:", "}": ")"}.get(char)
                or ("|" if char == "," and in_group else re.escape(char))
            )
            in_group += {"{": 1, "}": -1}.get(char, 0)
            i += 1
    return "".join(out)


def apparmor_allows(rules: list[tuple[re.Pattern[str], str]], path: str) -> set[str]:
    """Every permission the profile's file rules give on a path."""
    return {perm for pattern, perms in rules if pattern.fullmatch(path) for perm in perms}


def test_apparmor_glob_matching_is_faithful() -> None:
    """The checker's own reading of AppArmor globs: `*` stops at `/`, `**` does not."""
    rules = apparmor_file_rules(
        "  /a/*/b rw,\n  /c/** r,\n  /d/{x,y*}/e ix,\n  @{PROC}/@{pid}/stat r,\n"
    )
    assert apparmor_allows(rules, "/a/1/b") == {"r", "w"}
    assert apparmor_allows(rules, "/a/1/2/b") == set()
    assert apparmor_allows(rules, "/c/1/2/3") == {"r"}
    assert apparmor_allows(rules, "/d/yes/e") == {"x"}
    assert apparmor_allows(rules, "/d/z/e") == set()
    assert apparmor_allows(rules, "/proc/42/stat") == {"r"}


def test_apparmor_profile_allows_what_the_addon_needs() -> None:
    rules = apparmor_file_rules((ADDON / "apparmor.txt").read_text())
    missing = {
        path: "".join(sorted(set(needed) - apparmor_allows(rules, path)))
        for path, needed in APPARMOR_NEEDS.items()
        if set(needed) - apparmor_allows(rules, path)
    }
    assert missing == {}


def test_apparmor_profile_is_tight() -> None:
    profile = (ADDON / "apparmor.txt").read_text()
    # The Supervisor reads the one profile name from the one line starting with "profile ".
    assert len(re.findall(r"^profile \S+ ", profile, re.M)) == 1
    rules = apparmor_file_rules(profile)
    too_much = {
        path: "".join(sorted(set(forbidden) & apparmor_allows(rules, path)))
        for path, forbidden in APPARMOR_FORBIDS.items()
        if set(forbidden) & apparmor_allows(rules, path)
    }
    assert too_much == {}
    body = [line.split("#")[0].strip() for line in profile.splitlines()]
    body = [line for line in body if line]
    assert "file," not in body, "no blanket file access"
    assert not [line for line in body if line.startswith(("capability", "mount", "ptrace"))]
    assert not re.search(r"\b[uU]x\b|\bp[xX]\b", profile), "no unconfined or foreign-profile exec"
    networks = {line for line in body if line.startswith("network")}
    assert networks <= {
        "network inet stream,",
        "network inet6 stream,",
        "network inet dgram,",
        "network inet6 dgram,",
        "network unix stream,",
        "network unix dgram,",
    }
    assert "network inet stream," in networks
    writable = {pattern.pattern for pattern, perms in rules if {"w", "a"} & set(perms)}
    assert all(re.match(r"/(data|tmp|run|dev/(tty|null))\b", p) for p in writable), writable


def test_apparmor_profile_compiles() -> None:
    parser = shutil.which("apparmor_parser") or (
        "/usr/sbin/apparmor_parser" if Path("/usr/sbin/apparmor_parser").exists() else None
    )
    if parser is None:
        pytest.fail("apparmor_parser is not installed: scripts/dev test installs Debian's apparmor")
    result = subprocess.run(
        [
            parser,
            "--skip-kernel-load",
            "--skip-cache",
            "--quiet",
            "-o",
            os.devnull,
            str(ADDON / "apparmor.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_docs_name_exactly_the_scripts_the_addon_installs() -> None:
    """Every `script.sec1000_…` in DOCS.md is a real script, and every script is in DOCS.md."""
    from sec1000.ha.scripts import SCRIPT_COMMANDS, script_object_id

    docs = (ADDON / "DOCS.md").read_text(encoding="utf-8")
    named = set(re.findall(r"script\.(sec1000_[a-z_]+)", docs))
    real = {script_object_id(spec) for spec in SCRIPT_COMMANDS}
    assert named == real
    assert {f"script.{object_id}" for object_id in real} == CONTRACT_SCRIPTS
