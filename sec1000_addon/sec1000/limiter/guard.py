"""The export guard: the wanted state kept, every write audited, drift noticed and handled.

The wanted state is what the controller last confirmed by read-back that somebody asked for:
a write that failed or was not taken never becomes it. The guard reads the controller (0x43)
after a start, every `verify_interval` seconds, and at once after a write that failed part way,
and compares. After its own or a user's write failed it puts the wanted state back, retried with
backoff until the controller confirms it. A difference nobody here wrote is a drift: restored,
adopted or only reported (`drift_action`); the same drift three times in an hour means something
else writes to the controller, and the guard stops fighting it (`contested`).

The first read-back after a start is compared with wanted.json: a difference is a drift (a
change made while the add-on was stopped), unless the controller holds the write wanted.json
recorded as in flight (a kill between the write and the save). With an export ceiling the
controller is read at least every `scan_interval`, and a limit or mode beyond the ceiling is put
back at once, whatever `drift_action` says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import replace

from sec1000.commands import MAX_EXPORT_LIMIT_KW
from sec1000.common.backoff import backoff_delays
from sec1000.common.tasks import wait_set
from sec1000.common.units import kilowatts, watts
from sec1000.device.link import DeviceLink, Priority, Session
from sec1000.device.sequences import LimitWrite, read_settings
from sec1000.limiter.audit import ADOPT, DRIFT
from sec1000.limiter.drifts import Drifts
from sec1000.limiter.guard_ports import GuardFiles, GuardHooks, Verdict, adopted_options
from sec1000.limiter.wanted import Wanted, WantedFile, basis_of
from sec1000.limiter.writes import (
    GUARD_ORIGIN,
    Origin,
    WriteJob,
    WriteReport,
    in_words,
    write_in_words,
    write_reported,
)
from sec1000.options import CEILING_MODES, MIN_VERIFY_INTERVAL, Options
from sec1000.protocol import ExportSettings, Feedback, PhaseMeasurement, Sec1000Error
from sec1000.state import GuardState, GuardStatus, StateModel

_LOGGER = logging.getLogger(__name__)

# Guard states a drift stays in until something changes: it is reported once.
STANDING = frozenset({GuardState.DRIFT, GuardState.CONTESTED})
STARTUP_ORIGIN = Origin("startup")
# A limit the controller can hold: 0-100 kW. Anything else read back is never made the wanted one.
MAX_PLAUSIBLE_LIMIT_W = watts(MAX_EXPORT_LIMIT_KW)


class ExportGuard:
    """Owns the wanted state; every limiter write is reported to it."""

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
        self._hooks = hooks
        self._options = hooks.options
        self.wanted: Wanted | None = files.wanted.load()
        self._file = WantedFile(files.wanted, self._save_told)
        self.changed_by = STARTUP_ORIGIN  # who changed the options last: their write's origin
        self._options_written = False  # how the last options write asked for ended
        self._started = False  # set by the first read-back or confirmed write of this run
        self._repair: LimitWrite | None = None  # a write that failed: may be half on the controller
        self._wake = asyncio.Event()
        self._drifts = Drifts()
        self._publish()

    # -- what the operations and the runtime ask

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
        """True when options that reach the controller changed since the wanted state was set."""
        return self.wanted is None or dict(self.wanted.basis) != basis_of(options)

    def options_changed(self, origin: Origin) -> None:
        """The options changed (by `origin`): the guard writes them if they reach the controller."""
        if self.options_pending(self._options()):
            self.changed_by = origin
            self.wake()

    def holds_options(self, options: Options) -> bool:
        """True when the controller, as last read, holds these options with the wanted limit."""
        known = self.state.known_settings()
        return known is not None and self.wanted_under(options).held_by(known)

    def options_write(self, options: Options) -> LimitWrite | None:
        """The write that puts these options on the controller, built while holding the device;
        None when the controller already holds it (the options then become the wanted basis)."""
        target = self.wanted_under(options)
        known = self.state.known_settings()
        if known is not None and target.held_by(known):
            self._set_wanted(target)
            self._status(GuardState.IN_SYNC, known, verified=True)
            return None
        return target.write()

    async def intend(self, write: LimitWrite) -> None:
        """Before a write that may become the wanted state is sent: wanted.json records it as
        in flight, durably. A kill before its outcome is saved is then told apart at the next
        start from a change another tool made while the add-on was stopped."""
        if self.wanted is not None:  # else no wanted.json: a start keeps the controller's
            await self._file.intend(self.wanted, write)

    def wrote(self, report: WriteReport) -> None:
        """A limiter write ended: audit it; a confirmed write asked by somebody becomes the
        wanted state; a write not confirmed leaves it, and the controller is checked at once."""
        recorded = self._file.reported()
        before = self.wanted
        self._wrote(report)
        if recorded and before is not None and self.wanted is before:  # not saved since
            self._file.save(before)

    def _wrote(self, report: WriteReport) -> None:
        self.files.audit.wrote(report)
        if report.verified and report.after is not None:
            if report.sets_wanted:
                self._set_wanted(Wanted.of(report.requested, self._options()))
                self._drifts.forgive()
                self._started = True
            held = self.wanted is not None and self.wanted.held_by(report.after)
            self._status(
                GuardState.IN_SYNC if held else GuardState.DRIFT, report.after, verified=held
            )
            if held:
                self._repair = None
            return
        self._status(GuardState.UNVERIFIED, report.after, message=report.message)
        self._repair = report.requested  # the controller may hold half of it: look at once
        self.wake()

    def observe(self, settings: ExportSettings) -> None:
        """A read-back outside the guard (get_export_limit): in sync, or looked at by the guard."""
        if self.wanted is not None and self._started and self.wanted.held_by(settings):
            self._status(GuardState.IN_SYNC, settings, verified=True)
        elif not self._hooks.restore_pending():
            self.wake()

    def wake(self) -> None:
        """Look at the controller now."""
        self._wake.set()

    # -- the guard's loop

    async def options_writes(self) -> AsyncGenerator[Origin, None]:
        """Keep the controller on the wanted state until closed: the controller is checked every
        `verify_interval` seconds and when woken; what failed is tried again with backoff until
        it is confirmed. When options that changed must be written, this yields the origin that
        changed them: the runtime submits the write (`Operations.apply_options`) and tells how it
        ended (`options_written`) before asking for the next."""
        delays: Iterator[float] | None = None
        while True:
            self._wake.clear()
            try:
                settled = await self._step()
            except Exception:
                _LOGGER.exception("export guard: a check failed unexpectedly; carrying on")
                settled = False
            if settled is None:  # options to write: the runtime writes them
                self._options_written = False
                yield self.changed_by
                settled = self._options_written
            delays = None if settled else (delays or backoff_delays())
            wait = next(delays) if delays is not None else self._interval()
            await wait_set(self._wake, wait)

    def _interval(self) -> float | None:
        """Seconds to the next check: `verify_interval`, and with a ceiling at least one check
        every `scan_interval` (another tool's limit above it lasts at most that long)."""
        options = self._options()
        interval = (
            max(options.verify_interval, MIN_VERIFY_INTERVAL) if options.verify_interval else None
        )
        if options.ceiling_w is None:
            return interval
        return options.scan_interval if interval is None else min(interval, options.scan_interval)

    def options_written(self, ok: bool) -> None:
        """How the options write that `options_writes` asked for ended."""
        self._options_written = ok

    async def _step(self) -> bool | None:
        """One look at the controller: True when settled, False to try again soon, None when
        options that changed must be written."""
        if self._hooks.blocked() is not None or self._hooks.restore_pending():
            return True  # nothing may be written, or the watchdog owns the controller
        if not (self._started and self.options_pending(self._options())):
            settled = await self.check()
            if not (self._started and self.options_pending(self._options())):
                return settled
        return None

    async def check(self) -> bool:
        """Read the controller back (0x43) and act on a difference in the same hold of the
        device; never raises. True when nothing is left to do (in sync, or a drift left alone
        by `drift_action`), False when it must be tried again soon."""
        if self._hooks.restore_pending():
            return True
        priority = Priority.USER if self._repair is not None else Priority.POLL
        try:
            async with self.link.session(priority) as session:
                settings = await read_settings(session)
                self.state.settings_learned(settings)
                verdict = self._judge(settings)
                if verdict is Verdict.RESTORE:
                    return await self._restore(session)
                if verdict is Verdict.CEILING:
                    return await self._restore_ceiling(session)
        except Sec1000Error as err:
            self._unreadable(err)
            return self._started and self._repair is None
        if verdict is Verdict.ADOPT:
            await self._adopt(settings)
        return True

    async def final_check(self, within: float) -> None:
        """At a stop: read back once and put back a drift, within `within` seconds."""
        if within <= 0 or self._hooks.blocked() is not None:
            return
        try:
            await asyncio.wait_for(self.check(), within)
        except TimeoutError:
            _LOGGER.warning("export guard: the last check at the stop did not finish in time")

    # -- judging a read-back

    def _judge(self, settings: ExportSettings) -> Verdict:
        if not self._started:
            self._start_from(settings)
        if self._above_ceiling(settings):
            return Verdict.CEILING
        wanted = self.wanted
        if wanted is None or self.options_pending(self._options()):
            return Verdict.NOTHING  # the new options are written next, in their own write
        if wanted.held_by(settings):
            self._drifts.forgive()
            self._repair = None
            self._status(GuardState.IN_SYNC, settings, verified=True)
            return Verdict.NOTHING
        if self._half_written(settings, wanted):  # no drift: put the wanted state back
            self._status(
                GuardState.RESTORING,
                settings,
                message=f"{self._holds(settings, wanted)} after a write that failed",
            )
            return Verdict.RESTORE
        return self._drift(settings, wanted)

    def _half_written(self, settings: ExportSettings, wanted: Wanted) -> bool:
        """True when a write of ours that failed can explain what the controller holds: its
        limit, or the wanted one, with any mode (a write stops between its mode switches)."""
        failed = self._repair
        return failed is not None and settings.export_limit_w in (
            failed.export_limit_w,
            wanted.export_limit_w,
        )

    def _start_from(self, settings: ExportSettings) -> None:
        """The first read-back of this run: the controller's limit is the wanted limit."""
        self._started = True
        limit_w = settings.export_limit_w
        options = self._options()
        if not 0 <= limit_w <= min(MAX_PLAUSIBLE_LIMIT_W, watts(options.max_export_limit)):
            _LOGGER.warning(
                "export guard: at the start the controller holds %d W, above the maximum export "
                "limit: not a limit of this add-on's, so it is no wanted limit",
                limit_w,
            )
            return
        stored = self.wanted
        if stored is None:  # the first start: a controller holding the options keeps its limit
            base = Wanted(limit_w, options.export_limit_control_mode, 0, True).under(options)
            self._set_wanted(base if base.held_by(settings) else replace(base, basis={}))
            return
        in_flight, self._file.left_in_flight = self._file.left_in_flight, None
        if stored.held_by(settings) or in_flight is None or not in_flight.held_by(settings):
            return  # any difference is a drift, judged next
        message = (
            f"at the start the controller holds {write_in_words(in_flight)}, the write in "
            "flight when the add-on stopped (recorded before it was sent): kept over the saved "
            f"{in_words(stored.export_limit_w, stored.mode)}"
        )
        _LOGGER.warning("export guard: %s", message)
        self._set_wanted(
            replace(
                stored,
                export_limit_w=in_flight.export_limit_w,
                mode=in_flight.mode.option,
                total_capacity_w=in_flight.total_capacity_w,
                three_phase_sum=in_flight.phase is PhaseMeasurement.SUM_OF_PHASES,
            )
        )
        self._audit("adopt", in_flight, settings, int(Feedback.OK), message)

    def _drift(self, settings: ExportSettings, wanted: Wanted) -> Verdict:
        self._repair = None  # somebody else's doing: the drift rules apply
        now = time.time()
        if self._drifts.is_standing(settings, self.state.guard.state in STANDING):
            return Verdict.NOTHING  # the same drift, still there (notify, contested): told once
        same = self._drifts.note(settings, now)
        action = self._options().drift_action
        message = self._holds(settings, wanted)
        self._audit(DRIFT, wanted.write(), settings, 0, f"{message}; {action}")
        if self._drifts.contest(settings, same, restoring=action == "restore"):
            message += (
                f"; it came back {same} times within an hour: something else writes to the "
                "controller (installer tool, SolarGo, a second integration). The add-on stops "
                "restoring until you set the limit again"
            )
            _LOGGER.warning("export guard: contested: %s", message)
            self._status(GuardState.CONTESTED, settings, message=message, drift_at=now)
            return Verdict.NOTHING
        _LOGGER.warning("export guard: drift: %s (%s)", message, action)
        if action == "notify":
            self._status(GuardState.DRIFT, settings, message=message, drift_at=now)
            return Verdict.NOTHING
        if action == "adopt":
            self._status(GuardState.DRIFT, settings, message=message, drift_at=now)
            return Verdict.ADOPT
        self._status(GuardState.RESTORING, settings, message=message, drift_at=now)
        return Verdict.RESTORE

    def _above_ceiling(self, settings: ExportSettings) -> bool:
        ceiling_w = self._options().ceiling_w
        return ceiling_w is not None and (
            settings.export_limit_w > ceiling_w or settings.mode.option not in CEILING_MODES
        )

    @staticmethod
    def _holds(settings: ExportSettings, wanted: Wanted) -> str:
        return (
            f"the controller holds {in_words(settings.export_limit_w, settings.mode)}, "
            f"not the wanted {in_words(wanted.export_limit_w, wanted.mode)}"
        )

    # -- acting

    async def _restore(self, session: Session) -> bool:
        """Write the wanted state in the session that read the drift; True when confirmed."""
        assert self.wanted is not None
        job = WriteJob(GUARD_ORIGIN, "restore", done="restored {write}", sets_wanted=False)
        try:
            written = await write_reported(
                session, self.state, self.wanted.write(), self.wrote, job
            )
        except Sec1000Error:
            return False  # reported as a failed write; tried again with backoff
        return written.verified

    async def _restore_ceiling(self, session: Session) -> bool:
        """The controller allows more than the contracted ceiling: the wanted state under the
        options (all within the ceiling) is written at once, audited as `ceiling`."""
        options = self._options()
        target = self.wanted_under(options)
        message = (
            f"the controller allows more than the export ceiling of {options.export_ceiling_kw:g} "
            f"kW: {in_words(target.export_limit_w, target.mode)} written back at once"
        )
        _LOGGER.warning("export guard: %s", message)
        self._status(GuardState.RESTORING, None, message=message, drift_at=time.time())
        job = WriteJob(GUARD_ORIGIN, "ceiling", done=f"{message}; {{write}} confirmed")
        try:
            await self.intend(target.write())
            written = await write_reported(session, self.state, target.write(), self.wrote, job)
        except Sec1000Error:
            return False
        return written.verified

    async def _adopt(self, settings: ExportSettings) -> None:
        assert self.wanted is not None
        try:
            await self._hooks.update_options(adopted_options(self._options(), settings))
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
            ADOPT,
            self.wanted.write(),
            settings,
            int(Feedback.OK),
            "the controller's settings are now the wanted state",
        )
        self._status(GuardState.IN_SYNC, settings, verified=True)

    def _unreadable(self, err: Sec1000Error) -> None:
        _LOGGER.info("export guard: cannot read the controller (%s)", err)
        if self.wanted is not None and self.state.guard.state is GuardState.IN_SYNC:
            self._status(GuardState.UNVERIFIED, None, message=f"cannot read the controller: {err}")

    # -- bookkeeping

    def _set_wanted(self, wanted: Wanted) -> None:
        """The new wanted state, at once in memory, saved to wanted.json in the background."""
        if wanted == self.wanted:
            return
        self.wanted = wanted
        self._file.save(wanted)

    @property
    def save_error(self) -> str | None:
        """Why wanted.json could not be written, if it could not."""
        return self._file.error

    def _save_told(self, error: str) -> None:
        self.state.set_guard(replace(self.state.guard, save_error=error))

    async def flush(self) -> None:
        """Wait until wanted.json holds the wanted state (tests, the stop)."""
        await self._file.flush()

    def _audit(
        self, command: str, write: LimitWrite, held: ExportSettings, feedback: int, message: str
    ) -> None:
        """The guard's own entry (a drift, an adopt): what the controller `held`, verified
        when that is `write`."""
        report = WriteReport(GUARD_ORIGIN, command, write, held, held, feedback, message, False)
        self.files.audit.wrote(report)

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
                drifts_24h=self._drifts.last_day(now),
                message=message,
                save_error=self.save_error or "",
            )
        )

    def _publish(self) -> None:
        if self.wanted is not None:
            self._status(GuardState.UNKNOWN, None)
