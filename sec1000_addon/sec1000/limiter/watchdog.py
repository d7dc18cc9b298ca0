"""The guarded "reset export watchdog": the limiter is never left off by the add-on."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sec1000.commands import MAX_EXPORT_LIMIT_KW
from sec1000.common.backoff import BACKOFF_FIRST, BACKOFF_MAX, backoff_delays
from sec1000.common.files import remove_durably, write_atomic
from sec1000.common.tasks import wait_set
from sec1000.common.units import kilowatts, watts
from sec1000.device.link import Priority, Session
from sec1000.device.sequences import (
    LimitWrite,
    acknowledge,
    read_settings,
    switch_all_off,
)
from sec1000.limiter.writes import (
    GUARD_ORIGIN,
    Ticket,
    WriteJob,
    Writer,
    WriteReport,
    in_words,
    write_reported,
)
from sec1000.options import CEILING_MODES, Options, canonical_host
from sec1000.protocol import (
    ControlMode,
    GeneralError,
    InvalidInputError,
    PhaseMeasurement,
    Sec1000Error,
    Switch,
    mode_switch_request,
)
from sec1000.protocol.messages import MODE_SWITCHES

_LOGGER = logging.getLogger(__name__)

RECORD_NAME = "watchdog_restore.json"
# The protocol document: all modes off, wait 5 s, restore the mode, wait 1 s, write the limit again.
OFF_WINDOW = 5.0
SETTLE = 1.0
# How long a reset waits for its restore to be confirmed before answering; retries go on after.
RESTORE_BUDGET = 30.0
# A stop waits at most this long for the restore; config.yaml gives the Supervisor 30 s.
MAX_SHUTDOWN_GRACE = 25.0
# A limit the controller can hold: 0-100 kW. Anything else read back is not a limit to restore.
MAX_PLAUSIBLE_LIMIT_W = watts(MAX_EXPORT_LIMIT_KW)
# A record that fails validation this many times in a row can never be written: it is retired.
INVALID_ATTEMPTS_BEFORE_RETIRING = 3


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    """What must be put back, and where: written before the limiter goes off, removed once confirmed.

    `host` and `port` name the controller that was switched off: the restore goes there even if
    the options change meanwhile. Empty for records written before they were kept.
    """

    mode: str
    export_limit_w: int
    three_phase_sum: bool
    started_at: float
    host: str = ""
    port: int = 0
    total_capacity_w: int = 0  # what the controller held; 0 in records from before it was kept

    @property
    def target(self) -> tuple[str, int] | None:
        """The controller's address, when the record has one."""
        return (self.host, self.port) if self.host and self.port else None


@dataclass(frozen=True, slots=True)
class WatchdogTimings:
    """The reset's windows: the protocol document's 5 s off and 1 s settle, the first retry
    after 1 s, and 30 s for a reset to wait for its restore before answering."""

    off_window: float = OFF_WINDOW
    settle: float = SETTLE
    backoff_first: float = BACKOFF_FIRST
    restore_budget: float = RESTORE_BUDGET


DEFAULT_TIMINGS = WatchdogTimings()


DAMAGED = RestoreRecord(mode="", export_limit_w=-1, three_phase_sum=True, started_at=0.0)


class RestoreStore:
    """The durable "restore pending" record in the data directory, and the one place that says
    whether a restore is pending (the watchdog and the guard both read it)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RECORD_NAME
        self.record: RestoreRecord | None = None  # pending, kept in memory as on disk

    @property
    def pending(self) -> bool:
        """True while a restore is not confirmed (during a reset, or left by an earlier run)."""
        return self.record is not None

    def save(self, record: RestoreRecord) -> None:
        """Write the record and make it durable before returning; from now on it is pending."""
        write_atomic(self.path, json.dumps(asdict(record)))
        self.record = record

    def pend(self, record: RestoreRecord) -> None:
        """A record that is pending (read at start, or kept while it is retried)."""
        self.record = record

    def load(self) -> RestoreRecord | None:
        """The record on disk, or None; pending once read. A damaged record still means a restore
        is pending; any content is read without raising."""
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
            record = RestoreRecord(
                mode=ControlMode.from_option(str(data["mode"])).option,
                export_limit_w=int(data["export_limit_w"]),
                three_phase_sum=bool(data["three_phase_sum"]),
                started_at=float(data["started_at"]),
                host=str(data.get("host", "")),
                port=int(data.get("port", 0)),
                total_capacity_w=int(data.get("total_capacity_w", 0)),
            )
        except FileNotFoundError:
            return None
        except Exception as err:  # any damage: restore from the options, never crash before it
            _LOGGER.error(
                "restore record %s is damaged (%s); restoring from the options", self.path, err
            )
            record = DAMAGED
        self.record = record
        return record

    def clear(self) -> None:
        """Remove the record once the device confirmed the restore."""
        self.record = None
        remove_durably(self.path)


def same_address(one: tuple[str, int], other: tuple[str, int]) -> bool:
    """True when both name one address, however each host is spelled (without a lookup)."""
    return one[1] == other[1] and canonical_host(one[0]) == canonical_host(other[0])


class Watchdog:
    """Runs the reset and owns the restore: retried with backoff until the device confirms it."""

    def __init__(
        self,
        writer: Writer,
        store: RestoreStore,
        options: Callable[[], Options],
        timings: WatchdogTimings = DEFAULT_TIMINGS,
    ) -> None:
        self.link = writer.link
        self.state = writer.state
        self.store = store
        self._options = options
        self._writer = writer  # the waiting writes a reset's restore carries out in their place
        self._report = writer.report
        self._off_at: float | None = None
        self.last_window = 0.0  # seconds the active mode was off in the last reset
        self._running = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._restored = asyncio.Event()
        self._background: asyncio.Task[Sec1000Error | None] | None = None
        self.timings = timings

    @property
    def pending(self) -> bool:
        """True while a restore is not confirmed (during a reset, or left by an earlier run)."""
        return self.store.pending

    @property
    def blocks(self) -> bool:
        """True while a pending restore is this controller's own: its record names the address
        the controller is at now (or none, from before records kept it). A record of another
        address (the controller moved since) is restored there in the background and holds
        nothing up here: that device may be gone."""
        record = self.store.record
        return record is not None and (
            record.target is None or same_address(record.target, self.link.target)
        )

    @property
    def elsewhere(self) -> tuple[str, int] | None:
        """The address of a pending restore that is not this controller's own, or None."""
        record = self.store.record
        return None if record is None or self.blocks else record.target

    def refuse_writes(self) -> str | None:
        """Why limiter writes must wait now: a restore left pending (retried in the background).
        None when they may go: during a running reset they wait, and its restore writes the
        newest of them in its place."""
        if self._running or not self.blocks:
            return None
        return "refused: the export limiter restore is still pending; retry once it is confirmed"

    async def reset(self, origin: str = "cli") -> str:
        """Run the guarded reset sequence; its message, or a Sec1000Error with the reason."""
        refusal = self._refusal()
        if refusal:
            raise GeneralError(refusal)
        self._running = True
        self._wake.clear()
        try:
            try:
                # One session from the first switch off to the read-back: nothing else can
                # take the device while the limiter is off.
                async with self.link.session(Priority.USER) as session:
                    record = await self._turn_off(session)
                    await self._restore_once(session, record, origin)
            except Exception as err:
                left = self.store.record
                if left is None:  # nothing was turned off
                    raise
                _LOGGER.error("resetting the export watchdog failed (%s); restoring", err)
                error = await self.restore(left, time.monotonic() + self.timings.restore_budget)
                if error is not None:
                    self._background = asyncio.create_task(
                        self.restore(left), name="sec1000-restore"
                    )
                    raise type(error)(
                        f"the limiter restore is not confirmed ({error}); "
                        "it is retried in the background until the device confirms it"
                    ) from error
            else:
                await self._confirmed()
            return (
                "export watchdog reset: the limiter was off for "
                f"{self.last_window:.1f} s and is back on, confirmed by read-back"
            )
        finally:
            self._running = False
            self.state.set_restore(self.pending, self.state.restore_error, running=False)

    def _refusal(self) -> str | None:
        if self._stopping:
            return "the add-on is stopping: the limiter is not turned off now"
        if self._running:
            return "a reset export watchdog is already running"
        if self.store.pending:
            return "the export limiter restore from an earlier reset is still pending"
        health = self.link.health
        if health.failing:
            return (
                "refused: the last exchange with the device failed "
                f"({health.last_error}); the limiter is not turned off while the device is not answering"
            )
        return None

    def _fallback_limit_w(self) -> int:
        """The options' maximum, clamped to the capacity: what to restore when the limit is unknown."""
        options = self._options()
        return watts(min(options.max_export_limit, options.total_capacity))

    async def _turn_off(self, session: Session) -> RestoreRecord:
        limit_kw = self.state.export_limit_kw
        if limit_kw is None:
            settings = await read_settings(session)
            self.state.settings_learned(settings)
            limit_kw = kilowatts(settings.export_limit_w)
        limit_w = watts(limit_kw)
        if not 0 <= limit_w <= MAX_PLAUSIBLE_LIMIT_W:
            _LOGGER.warning(
                "the controller reports an impossible export limit (%d W); the restore writes "
                "the options' maximum instead",
                limit_w,
            )
            limit_w = self._fallback_limit_w()
        options = self._options()
        record = RestoreRecord(
            mode=options.control_mode.option,
            export_limit_w=limit_w,
            three_phase_sum=options.three_phase_sum,
            started_at=time.time(),
            host=session.target[0],
            port=session.target[1],
            total_capacity_w=watts(options.total_capacity),
        )
        if self._stopping:  # a stop came while this reset waited for the device
            raise GeneralError("the add-on is stopping: the limiter is not turned off now")
        await asyncio.to_thread(self.store.save, record)  # durable before a switch goes off
        if self._stopping:  # the stop came while the record was written: nothing is off yet
            await asyncio.to_thread(self.store.clear)
            raise GeneralError("the add-on is stopping: the limiter is not turned off now")
        self._restored.clear()  # a stop from now on waits for this reset's restore
        self.state.set_restore(True, None, running=True)
        # The inactive modes first and the active one last: the window opens with the last packet.
        active = MODE_SWITCHES.get(options.control_mode)
        inactive = tuple(switch for switch in MODE_SWITCHES.values() if switch != active)
        await switch_all_off(session, inactive)
        if active is not None:
            await switch_all_off(session, (active,))
        self._off_at = time.monotonic()
        _LOGGER.warning(
            "export limiter off: the plant exports without limit for %g s", self.timings.off_window
        )
        self.state.watchdog_window(time.time() + self.timings.off_window)
        try:
            await wait_set(self._wake, self.timings.off_window)
        finally:
            self.state.watchdog_window(None)
        return record

    def _restore_write(self, record: RestoreRecord) -> LimitWrite:
        options = self._options()
        mode = ControlMode.from_option(record.mode) if record.mode else options.control_mode
        limit_w = record.export_limit_w
        if not 0 <= limit_w <= MAX_PLAUSIBLE_LIMIT_W:
            limit_w = self._fallback_limit_w()
        capacity_w = record.total_capacity_w or watts(options.total_capacity)
        limit_w = min(limit_w, capacity_w)
        ceiling_w = options.ceiling_w
        if ceiling_w is not None and (limit_w > ceiling_w or mode.option not in CEILING_MODES):
            # A ceiling set since the record was written: today's contract wins over the record.
            _LOGGER.warning(
                "the restore record holds %s, beyond today's export ceiling of %g kW: the restore "
                "writes %s",
                in_words(limit_w, mode),
                options.export_ceiling_kw,
                in_words(min(limit_w, ceiling_w), options.control_mode),
            )
            limit_w, mode = min(limit_w, ceiling_w), options.control_mode
        return LimitWrite(
            capacity_w, limit_w, mode, PhaseMeasurement.from_sum(record.three_phase_sum)
        )

    async def _restore_once(
        self, session: Session, record: RestoreRecord, origin: str = GUARD_ORIGIN
    ) -> None:
        """The active mode on first (the window closes), settle, the limit again, read back.

        In a reset (`origin` is who asked for it) the newest write that waited for the device
        meanwhile is written in place of the old limit: its command, not the old state, is what
        the controller holds afterwards. The reset is one audit entry, with its outcome."""
        write = self._restore_write(record)
        active = MODE_SWITCHES.get(write.mode)
        if active is not None:
            await acknowledge(session, mode_switch_request(active, Switch.ON), active)
            if self._off_at is not None:
                self.last_window = time.monotonic() - self._off_at
        if not self._stopping:
            await session.pause(self.timings.settle)
        ticket = self._writer.take_waiting() if origin != GUARD_ORIGIN else None
        try:
            written = await self._write_restore(session, write, origin, ticket)
        except BaseException as err:
            if ticket is not None:
                ticket.failed(err)
            raise
        if not written.verified:
            raise GeneralError(f"read-back: {written.message}")

    async def _write_restore(
        self, session: Session, write: LimitWrite, origin: str, ticket: Ticket | None
    ) -> WriteReport:
        if origin == GUARD_ORIGIN:
            job = WriteJob(GUARD_ORIGIN, "restore", done="the limiter restored", sets_wanted=False)
            return await write_reported(session, self.state, write, self._report, job)
        newer = ticket.build() if ticket is not None else None
        job = WriteJob(
            origin,
            "reset_export_watchdog",
            done=f"the limiter was off for {self.last_window:.1f} s and is back on: {{write}}",
            sets_wanted=False,
        )
        if ticket is None or newer is None:
            if ticket is not None:
                ticket.carried_out(None)  # the controller already holds what it asked for
            return await write_reported(session, self.state, write, self._report, job)
        await self._writer.intended(newer, ticket.job)
        written = await write_reported(session, self.state, newer, self._report, ticket.job)
        ticket.carried_out(written)
        self._report(
            replace(
                written,
                origin=origin,
                command=job.command,
                message=f"the limiter was off for {self.last_window:.1f} s; restored with "
                f"{ticket.job.command} from {ticket.job.origin}: {written.message}",
                sets_wanted=False,
            )
        )
        return written

    async def restore(
        self, record: RestoreRecord, deadline: float | None = None
    ) -> Sec1000Error | None:
        """Restore until the device confirms; None when confirmed, else the last error at `deadline`."""
        self.store.pend(record)
        self._restored.clear()
        delays = backoff_delays(self.timings.backoff_first, BACKOFF_MAX)
        invalid = 0
        while True:
            delay = next(delays)
            try:
                async with self.link.session(Priority.RESTORE, target=record.target) as session:
                    await self._restore_once(session, record)
            except Sec1000Error as err:
                invalid = invalid + 1 if isinstance(err, InvalidInputError) else 0
                if invalid >= INVALID_ATTEMPTS_BEFORE_RETIRING:
                    await self._retire(record, err)
                    return None
                message = f"restoring the export limiter failed: {err}; retrying in {delay:g} s"
                _LOGGER.error("%s", message)
                self.state.set_restore(True, message)
                if deadline is not None and time.monotonic() + delay > deadline:
                    return err
            except Exception as err:  # never let the restore task die: log, count, retry
                _LOGGER.exception("restoring the export limiter failed unexpectedly")
                self.state.set_restore(True, f"restoring the export limiter failed: {err!r}")
                if deadline is not None and time.monotonic() + delay > deadline:
                    return Sec1000Error(f"unexpected error: {err!r}")
            else:
                await self._confirmed()
                return None
            await asyncio.sleep(delay)

    async def _confirmed(self) -> None:
        try:
            await asyncio.to_thread(self.store.clear)
        except OSError as err:  # the limiter is back: a record left behind only repeats it
            _LOGGER.error("cannot remove the restore record: %s", err)
        self.store.record = None
        self._restored.set()
        self.state.set_restore(False, None)
        _LOGGER.info("export limiter restored and confirmed by read-back")

    async def _retire(self, record: RestoreRecord, error: Sec1000Error) -> None:
        """A record that can never be written: stop retrying, and say so where users look."""
        message = (
            f"the restore record ({record}) can never be written ({error}); it is retired. "
            "Check the controller's export limit and mode yourself"
        )
        _LOGGER.error("%s", message)
        await asyncio.to_thread(self.store.clear)
        self._restored.set()
        self.state.set_restore(False, None, retired=message)

    async def resume_pending(self, deadline: float | None = None) -> bool:
        """At start-up: finish a restore left by a crash or kill (the store's record, read when
        the runtime was built). True when nothing is pending."""
        record = self.store.record
        if record is None:
            return True
        _LOGGER.warning(
            "a watchdog restore was left unfinished; restoring the export limiter first"
        )
        self.state.set_restore(True, "restoring the export limiter left off by an earlier run")
        return await self.restore(record, deadline) is None

    def shutdown_grace(self) -> float:
        """How long a stop waits for the restore: its packets at the configured gap, plus margin.

        A restore is 3 switches, 0x42 and 3 switches, and a read-back (8 packets). The add-on's
        config.yaml gives the Supervisor a 30 s stop timeout, so this stays below 25 s.
        """
        return min(MAX_SHUTDOWN_GRACE, 8 * self.link.gap + self.timings.settle + 4.0)

    async def shutdown(self, grace: float | None = None) -> None:
        """On SIGTERM: end the off window now and get the limiter back before exiting."""
        grace = self.shutdown_grace() if grace is None else grace
        self._stopping = True
        self._wake.set()
        record = self.store.record
        if record is None:
            return
        if self._background is not None:
            self._background.cancel()  # retry at once instead of waiting out the backoff
            self._background = asyncio.create_task(self.restore(record))
        _LOGGER.warning("stopping during a watchdog reset: restoring the export limiter first")
        await wait_set(self._restored, grace)
