"""The local options file: read leniently, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sec1000.common.files import write_atomic
from sec1000.options.model import SPECS_BY_KEY, Options, OptionsError


def stored_options(path: Path) -> dict[str, Any]:
    """The known keys of an options file as stored, valid or not (to show and keep them while
    the user fixes the bad ones); empty when the file is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in SPECS_BY_KEY} if isinstance(data, dict) else {}


def load_options_file(path: Path) -> Options:
    """Read and validate an options file; a missing file gives the defaults.

    Raises OptionsError for a file that is not JSON or holds invalid options.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Options()
    except OSError as err:
        raise OptionsError({"options": f"cannot read {path}: {err.strerror}"}) from None
    except UnicodeDecodeError as err:
        raise OptionsError(
            {"options": f"{path} is not UTF-8 text (byte {err.start}): fix or remove it"}
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise OptionsError(
            {
                "options": f"{path} is not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}"
            }
        ) from None
    except (ValueError, RecursionError) as err:  # nested too deep, numbers too long
        raise OptionsError({"options": f"{path} cannot be read as options: {err}"[:300]}) from None
    return Options.from_mapping(data, lenient_items=True)


def save_options_file(path: Path, options: Options) -> None:
    """Write the options file atomically, so a crash never leaves half a file."""
    write_atomic(path, json.dumps(options.to_dict(), indent=2) + "\n")
