"""The History page: the audit trail as a table with filters, and its download."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sec1000.limiter.audit import KINDS, kind_of
from sec1000.web.i18n import N_
from sec1000.web.keys import RUNTIME
from sec1000.web.views import attachment, render_page

SHOWN = 500  # entries on the page; the download has every kept one
FILTERS = {
    "all": N_("Everything"),
    "write": N_("Writes"),
    "drift": N_("Drifts"),
    "failure": N_("Failures"),
}


def entries(app: web.Application, kind: str, count: int = SHOWN) -> list[dict[str, Any]]:
    """The newest audit entries of a kind ('all', 'write', 'drift', 'failure'), newest first."""
    tail = app[RUNTIME].audit.tail(count if kind == "all" else count * 4)
    chosen = [entry for entry in tail if kind == "all" or kind_of(entry) == kind]
    return list(reversed(chosen))[:count]


async def history_page(request: web.Request) -> web.Response:
    """GET history?kind=K: what was written to the controller and what drifted, newest first."""
    kind = request.query.get("kind", "all")
    if kind not in FILTERS:
        kind = "all"
    rows = [{**entry, "kind": kind_of(entry)} for entry in entries(request.app, kind)]
    return render_page(
        request,
        "history.html",
        "history",
        rows=rows,
        kind=kind,
        filters=FILTERS,
        audit_error=request.app[RUNTIME].audit.error,
    )


async def history_download(request: web.Request) -> web.Response:
    """GET audit.jsonl: every kept audit entry, one JSON object per line, oldest first."""
    entries = await request.app[RUNTIME].audit.everything()
    body = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    return attachment(body, "application/x-ndjson", "audit", "jsonl")


__all__ = ["KINDS", "history_download", "history_page"]
