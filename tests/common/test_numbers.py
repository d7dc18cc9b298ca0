"""Numbers as a user types them: plain ASCII digits with a point or a comma, nothing else."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.common.numbers import NumberError, NumberKind, parse_number


@pytest.mark.parametrize(
    "text",
    ["1_0", "2_5", "\u0663", "\uff15", "\U0001d7d3", "1e3", "0x10", "inf", "nan", "1.2.3", "", " "],
)
def test_only_plain_ascii_numbers_are_numbers(text: str) -> None:
    with pytest.raises(NumberError):
        parse_number(text)


@pytest.mark.parametrize(
    ("text", "value"), [(" 2,5 ", 2.5), ("-3", -3.0), ("+.5", 0.5), ("10.", 10.0)]
)
def test_plain_numbers_parse(text: str, value: float) -> None:
    assert parse_number(text) == value


@given(st.text(max_size=12))
def test_any_text_is_a_plain_number_or_a_clear_error(text: str) -> None:
    plain = text.strip(" \t\r\n")
    allowed = set(string.digits + "+-.,")
    try:
        value = parse_number(text)
    except NumberError as err:
        assert "must be a number" in str(err)
    else:
        assert set(plain) <= allowed and math.isfinite(value)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", NumberKind.EMPTY),
        ("  ", NumberKind.EMPTY),
        ("1e3", NumberKind.EXPONENT),
        ("2,5E-1", NumberKind.EXPONENT),
        ("abc", NumberKind.NOT_A_NUMBER),
    ],
)
def test_a_refused_number_says_which_rule_it_broke(text: str, kind: NumberKind) -> None:
    with pytest.raises(NumberError) as caught:
        parse_number(text)
    assert caught.value.kind is kind
