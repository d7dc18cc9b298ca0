"""What the export guard is handed (`GuardFiles`, `GuardHooks`) and what a read-back asks of
it (`Verdict`), and the options an adopted drift becomes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sec1000.common.units import kilowatts
from sec1000.limiter.audit import AuditLog
from sec1000.limiter.wanted import WantedStore
from sec1000.options import Options
from sec1000.protocol import ExportSettings


class Verdict(Enum):
    """What a read-back asks of the guard."""

    NOTHING = "nothing"
    RESTORE = "restore"
    ADOPT = "adopt"
    CEILING = "ceiling"  # above the contracted ceiling: put back at once, whatever drift_action


@dataclass(frozen=True, slots=True)
class GuardFiles:
    """Where the guard keeps the wanted state and the audit trail."""

    wanted: WantedStore
    audit: AuditLog


@dataclass(frozen=True, slots=True)
class GuardHooks:
    """What the guard asks of the runtime."""

    options: Callable[[], Options]
    update_options: Callable[[Mapping[str, Any]], Awaitable[None]]
    # True while a watchdog restore is pending: the controller is off on purpose then, and
    # the restore owns it; a read-back is no drift.
    restore_pending: Callable[[], bool]
    # Why nothing may be written now (the stored options are invalid), or None.
    blocked: Callable[[], str | None] = lambda: None


def adopted_options(options: Options, settings: ExportSettings) -> dict[str, Any]:
    """The option changes that make what the controller holds the wanted state: its mode and
    capacity, and limits no higher than that capacity."""
    capacity_kw = kilowatts(settings.total_capacity_w)
    changes: dict[str, Any] = {
        "export_limit_control_mode": settings.mode.option,
        "total_capacity": capacity_kw,
    }
    if options.max_export_limit > capacity_kw:
        changes["max_export_limit"] = capacity_kw
    if options.min_export_limit > capacity_kw:
        changes["min_export_limit"] = capacity_kw
    return changes
