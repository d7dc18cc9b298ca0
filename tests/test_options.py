"""Garbage configuration gives clear errors and loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.options import (
    OPTION_SPECS,
    Options,
    OptionsError,
    load_options_file,
    option_keys,
    save_options_file,
)

from tests.helpers.device import LOOKUP_BREAKERS


def test_defaults_are_valid_and_match_the_specs() -> None:
    defaults = Options()
    assert Options.from_mapping(defaults.to_dict()) == defaults
    assert [spec.key for spec in OPTION_SPECS] == option_keys()
    for spec in OPTION_SPECS:
        assert defaults.to_dict()[spec.key] == spec.default


def test_contract_keys_exist() -> None:
    for key in (
        "host",
        "port",
        "scan_interval",
        "min_export_limit",
        "max_export_limit",
        "total_capacity",
        "export_limit_control_mode",
        "three_phase_sum",
    ):
        assert key in option_keys()
    assert Options().port == 1234 and Options().scan_interval == 30
    assert Options().export_limit_control_mode == "value" and Options().three_phase_sum is True


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"port": 0}, "port", "at least 1"),
        ({"port": "http"}, "port", "must be a number"),
        ({"port": 12.5}, "port", "whole number"),
        ({"scan_interval": -5}, "scan_interval", "at least 1"),
        ({"min_export_limit": "NaN"}, "min_export_limit", "must be a number"),
        ({"max_export_limit": float("inf")}, "max_export_limit", "finite"),
        ({"total_capacity": 0}, "total_capacity", "at least 0.01"),
        ({"export_limit_control_mode": "turbo"}, "export_limit_control_mode", "one of deactivated"),
        ({"three_phase_sum": "maybe"}, "three_phase_sum", "true or false"),
        ({"host": ""}, "host", "must not be empty"),
        ({"host": "a b"}, "host", "without spaces"),
        ({"host": 42}, "host", "must not be empty"),
        ({"colour": "red"}, "colour", "not a known option"),
        ({"min_export_limit": 6, "max_export_limit": 5}, "min_export_limit", "above the maximum"),
        (
            {"max_export_limit": 20, "total_capacity": 10},
            "max_export_limit",
            "above the total capacity",
        ),
        ({"port": True}, "port", "must be a number"),
    ],
)
def test_bad_values_are_named_in_words(data: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping(data)
    assert key in caught.value.errors
    assert words in caught.value.errors[key]


def test_every_bad_key_is_reported_at_once() -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({"port": -1, "scan_interval": "soon", "three_phase_sum": 3})
    assert set(caught.value.errors) == {"port", "scan_interval", "three_phase_sum"}


def test_not_an_object_is_refused() -> None:
    with pytest.raises(OptionsError, match="expected an object"):
        Options.from_mapping(["host"])


def test_form_strings_are_accepted() -> None:
    options = Options.from_mapping(
        {"port": "1234", "min_export_limit": "0,5", "three_phase_sum": "off", "scan_interval": "10"}
    )
    assert (options.port, options.min_export_limit, options.three_phase_sum) == (1234, 0.5, False)


def test_short_scan_interval_is_allowed_with_a_warning() -> None:
    assert "scan_interval" in Options.from_mapping({"scan_interval": 2}).warnings()
    assert Options().warnings() == {}


def test_broken_json_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_text('{"host": "x",\n  "port": }')
    with pytest.raises(OptionsError, match="not valid JSON \\(line 2"):
        load_options_file(path)
    assert path.read_text() == '{"host": "x",\n  "port": }'  # nothing lost


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_options_file(tmp_path / "absent.json") == Options()


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "options.json"
    options = Options.from_mapping({"host": "10.0.0.9", "max_export_limit": 7.5})
    save_options_file(path, options)
    assert load_options_file(path) == options
    assert [p.name for p in path.parent.iterdir()] == ["options.json"]
    assert json.loads(path.read_text())["host"] == "10.0.0.9"


@given(
    st.dictionaries(
        st.sampled_from([*option_keys(), "junk"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    )
)
def test_any_mapping_gives_options_or_a_clear_error(data: dict[str, object]) -> None:
    try:
        options = Options.from_mapping(data)
    except OptionsError as err:
        assert err.errors and all(isinstance(text, str) and text for text in err.errors.values())
    else:
        assert options.min_export_limit <= options.max_export_limit <= options.total_capacity


# -- hosts the address lookup rejects, and odd digits


@pytest.mark.parametrize("host", LOOKUP_BREAKERS)
def test_hosts_the_lookup_rejects_fail_validation(host: str) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({"host": host})
    assert "host name" in caught.value.errors["host"]


@pytest.mark.parametrize("host", ["192.168.1.200", "fd00::1", "sec1000.lan", "SEC-1000"])
def test_good_hosts_pass_validation(host: str) -> None:
    assert Options.from_mapping({"host": host}).host == host


@pytest.mark.parametrize(
    ("key", "text"), [("port", "1e3"), ("max_export_limit", "\uff15"), ("scan_interval", "3_0")]
)
def test_odd_numbers_in_options_are_field_errors(key: str, text: str) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({key: text})
    assert "must be a number" in caught.value.errors[key]
