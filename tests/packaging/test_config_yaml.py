"""config.yaml as the Supervisor and the community add-on linter read it: its keys, its security
rating, and its options and schema, which are the package's option table (sec1000.options)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from sec1000.limiter.watchdog import MAX_SHUTDOWN_GRACE
from sec1000.options import OPTION_SPECS, Options, OptionsError

from tests.ha_harness import NEWEST, OLDEST
from tests.helpers.packaging import ADDON, config, docs_text
from tests.helpers.supervisor_schema import schema_accepts

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
    docs = docs_text()
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


def test_stop_timeout_leaves_room_for_the_watchdog_restore() -> None:
    """The Supervisor kills the container `timeout` s after SIGTERM (default 10)."""
    assert config().get("timeout", 10) >= MAX_SHUTDOWN_GRACE + 5
