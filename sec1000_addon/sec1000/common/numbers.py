"""One strict parser for the numbers people type: in commands, forms, events and options."""

from __future__ import annotations

import math
import re

# Plain ASCII only: optional sign, digits, at most one '.' or ',' as the decimal mark.
# No '_' separators, no exponent, no Unicode digits, no 'inf' or 'nan'.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
_WHITESPACE = " \t\r\n"


class NumberError(ValueError):
    """Not a number this project accepts; the message says so in words."""


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
    if not _DECIMAL.fullmatch(text):
        raise NumberError(f"must be a number such as 2.5 (plain digits), got {_shown(raw)}")
    return float(text.replace(",", "."))


def parse_whole(raw: object) -> int:
    """A whole number (JSON integer, integral float, or digits); raises NumberError otherwise."""
    number = parse_number(raw)
    if not number.is_integer():
        raise NumberError(f"must be a whole number, got {_shown(raw)}")
    return int(number)


def _shown(raw: object) -> str:
    """The input for a message: short, printable, never the raw bytes of a hostile value."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "…'"
