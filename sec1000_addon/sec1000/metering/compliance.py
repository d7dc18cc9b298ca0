"""The compliance report: the evidence for a grid operator, one row per local day, from the
energy book's figures and the overshoots the audit trail keeps."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from typing import Any

from sec1000.metering.energy import (
    LIMIT_IN_FORCE,
    MAX_EXPORT,
    MEASURED_MIN,
    OVER_LIMIT,
    OVER_LIMIT_MIN,
    EnergyMeter,
)

# The columns of 0.2.0 first, in their order (a spreadsheet reading them keeps working); the
# day's coverage and each overshoot after them.
COMPLIANCE_COLUMNS = (
    "date",
    "max_export_kw",
    "limit_in_force_kw",  # the day's highest limit held by value; each overshoot's is below
    "minutes_over_limit",
    "kwh_over_limit",
    "limiter_writes",
    "drifts",
    "data",
    "measured_min",
    "overshoots",
)


def compliance_csv(
    meter: EnergyMeter, days: int = 90, overshoots: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The evidence for a grid operator: one row per local day of the last `days`, from the
    first day with anything counted: whether it was measured (and for how many minutes),
    the highest export and limit, minutes and kWh over the limit, writes, drifts, and each
    overshoot with the limit in force at the time (`overshoots`: the audit's entries)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COMPLIANCE_COLUMNS)
    by_day: dict[str, list[str]] = {}
    for entry in overshoots:
        since = entry.get("since")
        if isinstance(since, (int, float)):
            by_day.setdefault(meter.date_of(since).isoformat(), []).append(_said(entry, meter.tz))
    kept = meter.last_days(days)
    first = next((n for n, (day, _) in enumerate(kept) if day.isoformat() in meter.book.days), None)
    for day, f in kept[len(kept) - 1 if first is None else first :]:
        stored = meter.book.days.get(day.isoformat(), {})
        counts = [int(f.get("writes", 0)), int(f.get("drifts", 0))]
        said = "; ".join(by_day.get(day.isoformat(), []))
        if MAX_EXPORT not in stored:
            writer.writerow([day, "", "", "", "", *counts, "no data", "", said])
            continue
        measured = stored.get(MEASURED_MIN)
        limit = stored.get(LIMIT_IN_FORCE)
        writer.writerow(
            [
                day,
                f"{stored[MAX_EXPORT]:.3f}",
                "" if not limit else f"{limit:.2f}",
                f"{f[OVER_LIMIT_MIN]:.1f}",
                f"{f[OVER_LIMIT]:.3f}",
                *counts,
                "measured",
                "" if measured is None else f"{measured:.0f}",
                said,
            ]
        )
    return out.getvalue()


def _said(overshoot: Mapping[str, Any], tz: dt.tzinfo | None) -> str:
    """One overshoot in the report: "10:02-10:05 up to 4.20 kW, limit 3.00 kW"."""
    until = overshoot.get("until")

    def clock(at: float) -> str:
        return dt.datetime.fromtimestamp(at, tz).strftime("%H:%M")

    end = clock(float(until)) if isinstance(until, (int, float)) else "(under way)"
    return (
        f"{clock(float(overshoot['since']))}-{end} up to {float(overshoot.get('max_kw') or 0):.2f} kW, "
        f"limit {float(overshoot.get('limit_kw') or 0):.2f} kW"
    )
