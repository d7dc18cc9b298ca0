"""The options document as the plant keeps it: where each controller's files are, which
controllers an earlier run had, and how a change of one controller's keys is kept its own."""

from __future__ import annotations

import json
from pathlib import Path

from sec1000.options import (
    CONTROLLER_KEYS,
    CONTROLLER_NAME,
    CONTROLLER_OVERRIDES,
    FIRST_CONTROLLER,
    ControllerOptions,
    Options,
    OptionsError,
    parse_controller,
)

# The controllers Home Assistant may hold entities of: every one running, and every one
# removed whose entities are not yet known to be gone (removed while the add-on was stopped).
KNOWN_NAME = "controllers.json"


def controller_dir(data_dir: Path, name: str) -> Path:
    """Where a controller keeps its files: the first one today's folder, every other one
    `<data dir>/<name>/`."""
    return data_dir if name == FIRST_CONTROLLER else data_dir / name


def read_known(path: Path) -> list[str]:
    """The names of the controllers file; none when it is missing or unreadable."""
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(names, list):
        return []
    return [
        name
        for name in names
        if isinstance(name, str) and name != FIRST_CONTROLLER and CONTROLLER_NAME.fullmatch(name)
    ]


def keep_inherited(before: Options, after: Options) -> Options:
    """The first controller's own keys changed (`before` → `after`): each other controller
    that took one of them from the top level keeps the value it ran with, as its own. So a
    change for the first controller changes no other one; shared keys still reach all."""
    changed = [key for key in CONTROLLER_OVERRIDES if getattr(before, key) != getattr(after, key)]
    if not changed or not after.controllers:
        return after
    items = []
    for item in after.controllers:
        values = item.to_dict()
        for key in changed:
            values.setdefault(key, getattr(before, key))
        items.append(values)
    return Options.from_mapping({"controllers": items}, base=after)


def controller_item(item: ControllerOptions, options: Options, top: Options) -> ControllerOptions:
    """A controller's item after its runtime changed `options`: a key it set stays set; a
    key that now differs from the top level becomes its own."""
    values = item.values
    for key in CONTROLLER_OVERRIDES:
        value = getattr(options, key)
        if key in values or value != getattr(top, key):
            values[key] = value
    ordered = tuple((key, values[key]) for key in CONTROLLER_KEYS if key in values)
    return ControllerOptions(item.name, ordered)


def item_errors(err: OptionsError, top: Options, item: dict[str, object]) -> dict[str, str]:
    """One item's errors by key (for a form), from the document's error."""
    try:
        parse_controller(item, top)
    except OptionsError as own:
        return own.errors
    return err.errors
