"""The export guard: the wanted state kept, every write audited, drift noticed and handled.

It reads the controller (0x43, at poll priority) at start-up and every `verify_interval`
seconds, compares it with the wanted state, and on a difference restores it, adopts the
controller's, or only reports it (`drift_action`). The same drift three times in an hour means
something else writes to the controller: the guard stops fighting and says so (`contested`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sec1000.commands import MAX_EXPORT_LIMIT_KW
from sec1000.common.tasks import TaskSet
from sec1000.common.units import kilowatts, watts
from sec1000.device.link import DeviceLink, Priority
from sec1000.device.sequences import LimitWrite, read_settings
from sec1000.limiter.audit import AuditLog
from sec1000.limiter.wanted import (
    Wanted,
    WantedStore,
    basis_of,
    settings_json,
    write_json,
)
from sec1000.limiter.writes import (
    GUARD_ORIGIN,
    WriteReport,
    in_words,
    write_in_words,
    write_reported,
)
from sec1000.options import Options
from sec1000.protocol import ExportSettings, Feedback, Sec1000Error
from sec1000.state import GuardState, GuardStatus, StateModel

_LOGGER = logging.getLogger(__name__)

CONTEST_COUNT = 3
# Guard states a drift stays in until something changes: it is reported once.
STANDING = frozenset({GuardState.DRIFT, GuardState.CONTESTED})
CONTEST_WINDOW = 3600.0
DAY = 86400.0


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


class ExportGuard:
    """Owns the wanted state; the operations report their writes to it."""

    def __init__(
        self,
        link: DeviceLink,
        state: StateModel,
        files: GuardFiles,
        hooks: GuardHooks,
    ) -> None:
        self.link = link
        self.state = state
        self.files = files
        self._options = hooks.options
        self._update_options = hooks.update_options
        self._restore_pending = hooks.restore_pending
        self.wanted: Wanted | None = files.wanted.load()
        self._drifts: deque[tuple[float, tuple[int, int, int]]] = deque(maxlen=64)
        self._contested: tuple[int, int, int] | None = None
        self._reported: tuple[int, int, int] | None = None  # the drift last audited
        self._tasks = TaskSet()
        self._publish()

    # -- what the operations ask

    def wanted_under(self, options: Options) -> Wanted:
        """The wanted state under these options (limits followed, capacity, mode, phase)."""
        if self.wanted is not None:
            return self.wanted.under(options)
        known = self.state.export_limit_kw
        limit_w = (
            watts(known)
            if known is not None and 0 <= known <= MAX_EXPORT_LIMIT_KW
            else watts(options.max_export_limit)
        )
        return Wanted(limit_w, options.export_limit_control_mode, 0, True).under(options)

    def options_pending(self, options: Options) -> bool:
        """True when options that reach the controller changed since the wanted state was set.

        At the first start (no wanted state yet) a controller that already holds the options
        (with its current limit) becomes the wanted state as it is: nothing is written.
        """
        if self.wanted is not None:
            return dict(self.wanted.basis) != basis_of(options)
        candidate = self.wanted_under(options)
        known = self.state.known_settings()
        if known is None or not candidate.held_by(known):
            return True
        self._set_wanted(candidate)
        self._status(GuardState.IN_SYNC, known, verified=True)
        return False

    def wrote(self, report: WriteReport) -> None:
        """A limiter write ended (verified or not): audit it, keep what was asked, show it."""
        self._audit_write(report)
        if report.sets_wanted:
            self._set_wanted(Wanted.of(report.requested, self._options()))
            self._contested = None
        if report.verified and self.wanted is not None and report.after is not None:
            held = self.wanted.held_by(report.after)  # a write of an older wanted state is no sync
            self._status(
                GuardState.IN_SYNC if held else GuardState.DRIFT, report.after, verified=held
            )
        else:
            self._status(GuardState.UNVERIFIED, report.after, message=report.message)

    def observe_soon(self, settings: ExportSettings) -> None:
        """A read-back outside the guard (get_export_limit): the same rule, in the background."""
        self._tasks.spawn(self.observed(settings), name="sec1000-guard-observe")

    # -- the guard's own reads and writes

    async def check(self) -> None:
        """Read the controller at poll priority and compare; never raises."""
        try:
            async with self.link.session(Priority.POLL) as session:
                settings = await read_settings(session)
        except Sec1000Error as err:
            _LOGGER.info("export guard: cannot read the controller (%s)", err)
            if self.wanted is not None and self.state.guard.state is GuardState.IN_SYNC:
                self._status(
                    GuardState.UNVERIFIED, None, message=f"cannot read the controller: {err}"
                )
            return
        self.state.settings_learned(settings)
        await self.observed(settings)

    async def observed(self, settings: ExportSettings) -> None:
        """Compare a read-back with the wanted state and act on a difference; never raises."""
        try:
            if self.wanted is None:  # nothing asked yet: the start-up sets it from the options
                return
            if self._restore_pending():
                return  # the watchdog switched the limiter off and is putting it back
            if self.wanted.held_by(settings):
                self._contested = None
                self._status(GuardState.IN_SYNC, settings, verified=True)
                return
            await self._drift(settings)
        except Exception:
            _LOGGER.exception("export guard: handling a read-back failed; carrying on")

    async def _drift(self, settings: ExportSettings) -> None:
        assert self.wanted is not None
        now = time.time()
        signature = (settings.export_limit_w, int(settings.mode), settings.total_capacity_w)
        if signature == self._reported and self.state.guard.state in STANDING:
            return  # the same drift, still there (notify, contested): told once, not every check
        self._reported = signature
        self._drifts.append((now, signature))
        action = self._options().drift_action
        same = sum(1 for at, sig in self._drifts if sig == signature and at > now - CONTEST_WINDOW)
        message = (
            f"the controller holds {in_words(settings.export_limit_w, settings.mode)}, "
            f"not the wanted {in_words(self.wanted.export_limit_w, self.wanted.mode)}"
        )
        contested = action == "restore" and same >= CONTEST_COUNT
        self._audit("drift", self.wanted.write(), settings, settings, 0, f"{message}; {action}")
        if contested or self._contested == signature:
            self._contested = signature
            message += (
                f"; it came back {same} times within an hour: something else writes to the "
                "controller (installer tool, SolarGo, a second integration). The add-on stops "
                "restoring until you set the limit again"
            )
            _LOGGER.warning("export guard: contested: %s", message)
            self._status(GuardState.CONTESTED, settings, message=message, drift_at=now)
            return
        _LOGGER.warning("export guard: drift: %s (%s)", message, action)
        if action == "notify":
            self._status(GuardState.DRIFT, settings, message=message, drift_at=now)
        elif action == "adopt":
            await self._adopt(settings, now)
        else:
            self._status(GuardState.RESTORING, settings, message=message, drift_at=now)
            await self._restore(self.wanted)

    async def _restore(self, wanted: Wanted) -> None:
        write = wanted.write()
        with contextlib.suppress(Sec1000Error):  # reported as a failed write; checked again later
            async with self.link.session(Priority.USER) as session:
                if self.wanted != wanted or self._restore_pending():
                    return  # a newer write (or the watchdog) took over while this waited
                await write_reported(
                    session,
                    self.state,
                    write,
                    self.wrote,
                    origin=GUARD_ORIGIN,
                    command="restore",
                    done=f"restored {write_in_words(write)}",
                    sets_wanted=False,
                )

    async def _adopt(self, settings: ExportSettings, now: float) -> None:
        assert self.wanted is not None
        options = self._options()
        capacity_kw = kilowatts(settings.total_capacity_w)
        changes: dict[str, Any] = {
            "export_limit_control_mode": settings.mode.option,
            "total_capacity": capacity_kw,
        }
        if options.max_export_limit > capacity_kw:
            changes["max_export_limit"] = capacity_kw
        if options.min_export_limit > capacity_kw:
            changes["min_export_limit"] = capacity_kw
        try:
            await self._update_options(changes)
        except Exception as err:
            _LOGGER.error(
                "export guard: cannot adopt the controller's settings into the options: %s", err
            )
        self._set_wanted(
            replace(
                self.wanted,
                export_limit_w=settings.export_limit_w,
                mode=settings.mode.option,
                total_capacity_w=settings.total_capacity_w,
                basis=basis_of(self._options()),
            )
        )
        self._audit(
            "adopt",
            self.wanted.write(),
            settings,
            settings,
            int(Feedback.OK),
            "the controller's settings are now the wanted state",
        )
        self._status(GuardState.IN_SYNC, settings, verified=True, drift_at=now)

    async def stop(self) -> None:
        """Cancel background observations."""
        await self._tasks.cancel()

    # -- bookkeeping

    def _set_wanted(self, wanted: Wanted) -> None:
        if wanted != self.wanted:
            self.wanted = wanted
            self.files.wanted.save(wanted)

    def _audit_write(self, report: WriteReport) -> None:
        self.files.audit.append(
            {
                "origin": report.origin,
                "command": report.command,
                "requested": write_json(report.requested),
                "before": settings_json(report.before),
                "after": settings_json(report.after),
                "verified": report.verified,
                "feedback": report.feedback,
                "message": report.message,
            }
        )

    def _audit(
        self,
        command: str,
        write: LimitWrite,
        before: ExportSettings | None,
        after: ExportSettings | None,
        feedback: int,
        message: str,
    ) -> None:
        """The guard's own entry (a drift, an adopt): verified when `after` holds `write`."""
        report = WriteReport(GUARD_ORIGIN, command, write, before, after, feedback, message, False)
        self._audit_write(report)

    def _status(
        self,
        kind: GuardState,
        device: ExportSettings | None,
        *,
        message: str = "",
        verified: bool = False,
        drift_at: float | None = None,
    ) -> None:
        old = self.state.guard
        now = time.time()
        wanted = self.wanted
        self.state.set_guard(
            GuardStatus(
                state=kind,
                wanted_limit_kw=kilowatts(wanted.export_limit_w) if wanted else None,
                device_limit_kw=kilowatts(device.export_limit_w) if device else old.device_limit_kw,
                wanted_mode=wanted.mode if wanted else None,
                device_mode=device.mode.option if device else old.device_mode,
                last_verified_at=now if verified else old.last_verified_at,
                last_drift_at=drift_at or old.last_drift_at,
                drifts_24h=sum(1 for at, _ in self._drifts if at > now - DAY),
                message=message,
            )
        )

    def _publish(self) -> None:
        if self.wanted is not None:
            self._status(GuardState.UNKNOWN, None)
