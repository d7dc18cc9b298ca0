"""The History page: the audit trail as a table with filters, and its download."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sec1000.limiter.audit import KINDS, kind_of
from sec1000.runtime import Runtime
from sec1000.web.i18n import N_
from sec1000.web.keys import chosen
from sec1000.web.views import attachment, render_page

SHOWN = 500  # entries on the page; the download has every kept one
NUMBERS = ("since", "until", "max_kw", "limit_kw")  # an overshoot's times and figures
ROW_DEFAULTS = {
    "at": "",
    "origin": "",
    "command": "",
    "message": "",
    "requested": None,
    "after": None,
    "verified": False,
}
FILTERS = {
    "all": N_("Everything"),
    "write": N_("Writes"),
    "drift": N_("Drifts"),
    "failure": N_("Failures"),
    "overshoot": N_("Over the limit"),
    "ceiling": N_("Ceiling restores"),
}


def entries(runtime: Runtime, kind: str, count: int = SHOWN) -> list[dict[str, Any]]:
    """A controller's newest audit entries of a kind (a key of FILTERS), newest first."""
    tail = runtime.audit.tail(count if kind == "all" else count * 4)
    chosen = [entry for entry in tail if kind == "all" or kind_of(entry) == kind]
    return list(reversed(chosen))[:count]


def finite(value: object) -> float | None:
    """A number from a JSON value, or None (missing, text, true/false, infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One audit entry as the table shows it: its kind, and each number it uses, or None where
    the file has none (an older or hand-edited line)."""
    out = {**ROW_DEFAULTS, **entry, "kind": kind_of(entry)}
    out.update({key: finite(entry.get(key)) for key in NUMBERS})
    feedback = entry.get("feedback")
    out["feedback"] = feedback if type(feedback) is int else None  # a bitmap, never true/false
    return out


async def history_page(request: web.Request) -> web.Response:
    """GET history?kind=K: what was written to the controller, what drifted and when the export
    was over the limit, newest first."""
    kind = request.query.get("kind", "all")
    if kind not in FILTERS:
        kind = "all"
    runtime = chosen(request)
    rows = [row(entry) for entry in entries(runtime, kind)]
    return render_page(
        request,
        "history.html",
        "history",
        rows=rows,
        kind=kind,
        filters=FILTERS,
        audit_error=runtime.audit.error,
    )


async def history_download(request: web.Request) -> web.Response:
    """GET audit.jsonl: every kept audit entry, one JSON object per line, oldest first."""
    entries = await chosen(request).audit.everything()
    body = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    return attachment(body, "application/x-ndjson", "audit", "jsonl")


__all__ = ["KINDS", "history_download", "history_page"]
