"""One strict parser for the numbers people type: in commands, forms, events and options."""

from __future__ import annotations

import math
import re
from enum import StrEnum

from sec1000.common.errors import AddonError

# Plain ASCII only: optional sign, digits, at most one '.' or ',' as the decimal mark.
# No '_' separators, no exponent, no Unicode digits, no 'inf' or 'nan'.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
_WHITESPACE = " \t\r\n"
# A number in scientific notation (1e3, 2.5E-1): refused, but told apart in words.
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)[eE][+-]?[0-9]+")


class NumberKind(StrEnum):
    """Why a text is not a number: the rule it breaks, for words that name it."""

    EMPTY = "empty"
    EXPONENT = "exponent"
    NOT_A_NUMBER = "not_a_number"
    NOT_WHOLE = "not_whole"


class NumberError(AddonError, ValueError):
    """Not a number this project accepts; the message says so in words, `kind` says why."""

    def __init__(self, message: str, kind: NumberKind = NumberKind.NOT_A_NUMBER) -> None:
        super().__init__(message)
        self.kind = kind


def parse_number(raw: object) -> float:
    """A finite number from a JSON number or plain ASCII decimal text (e.g. " 2,5 ").

    Raises NumberError for booleans, None, other types and any other text.
    """
    if isinstance(raw, bool) or raw is None:
        raise NumberError(f"must be a number, got {raw!r}")
    if isinstance(raw, int):
        return float(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise NumberError(f"must be a finite number, got {raw!r}")
        return raw
    if not isinstance(raw, str):
        raise NumberError(f"must be a number, got {type(raw).__name__}")
    text = raw.strip(_WHITESPACE)
    if not text:
        raise NumberError(
            f"must be a number such as 2.5 (plain digits), got {_shown(raw)}", NumberKind.EMPTY
        )
    if _EXPONENT.fullmatch(text):
        raise NumberError(
            f"must be a number in plain digits such as 2.5, without an exponent, got {_shown(raw)}",
            NumberKind.EXPONENT,
        )
    if not _DECIMAL.fullmatch(text):
        raise NumberError(f"must be a number such as 2.5 (plain digits), got {_shown(raw)}")
    return float(text.replace(",", "."))


def parse_whole(raw: object) -> int:
    """A whole number (JSON integer, integral float, or digits); raises NumberError otherwise."""
    number = parse_number(raw)
    if not number.is_integer():
        raise NumberError(f"must be a whole number, got {_shown(raw)}", NumberKind.NOT_WHOLE)
    return int(number)


def _shown(raw: object) -> str:
    """The input for a message: short, printable, never the raw bytes of a hostile value."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "…'"
