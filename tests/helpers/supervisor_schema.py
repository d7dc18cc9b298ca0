"""The Supervisor's reading of an add-on's option schema (`int(1,3600)`, `list(a|b)`, `port`,
`match(…)`, `str?`, a list of dicts), to check config.yaml's defaults and bounds with."""

from __future__ import annotations

import re
from typing import Any


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


def negative_accepted(schema: Any) -> bool:
    """Does the schema take a negative number?"""
    return schema_accepts(schema, -0.05) or schema_accepts(schema, -1)
