"""The guarded "reset export watchdog": the limiter is never left off by the add-on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sec1000.link import Priority, Session
from sec1000.operations import CommandResult, Operations, Origin, watts
from sec1000.protocol import (
    ControlMode,
    Feedback,
    GeneralError,
    PhaseMeasurement,
    Sec1000Error,
    Switch,
    mode_switch_request,
)
from sec1000.protocol.messages import MODE_SWITCHES
from sec1000.state import OperationName

_LOGGER = logging.getLogger(__name__)

RECORD_NAME = "watchdog_restore.json"
# The protocol document: all modes off, wait 5 s, restore the mode, wait 1 s, write the limit again.
OFF_WINDOW = 5.0
SETTLE = 1.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
# How long a reset waits for its restore to be confirmed before answering; retries go on after.
RESTORE_BUDGET = 30.0
# A stop waits at most this long for the restore; config.yaml gives the Supervisor 30 s.
MAX_SHUTDOWN_GRACE = 25.0


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    """What must be put back: written before the limiter goes off, removed once confirmed."""

    mode: str
    export_limit_w: int
    three_phase_sum: bool
    started_at: float


class RestoreStore:
    """The durable "restore pending" record in the data directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RECORD_NAME

    def save(self, record: RestoreRecord) -> None:
        """Write the record and make it durable (file and directory fsync) before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".restore.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(record), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_directory(self.path.parent)

    def load(self) -> RestoreRecord | None:
        """The pending record, or None. A damaged record still means a restore is pending."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return RestoreRecord(
                mode=ControlMode.from_option(str(data["mode"])).option,
                export_limit_w=int(data["export_limit_w"]),
                three_phase_sum=bool(data["three_phase_sum"]),
                started_at=float(data["started_at"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, Sec1000Error) as err:
            _LOGGER.error(
                "restore record %s is damaged (%s); restoring from the options", self.path, err
            )
            return RestoreRecord(mode="", export_limit_w=-1, three_phase_sum=True, started_at=0.0)

    def clear(self) -> None:
        """Remove the record once the device confirmed the restore."""
        self.path.unlink(missing_ok=True)
        _fsync_directory(self.path.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Watchdog:
    """Runs the reset and owns the restore: retried with backoff until the device confirms it."""

    def __init__(self, operations: Operations, store: RestoreStore) -> None:
        self.ops = operations
        self.store = store
        operations.watchdog = self
        self._running = False
        self._pending: RestoreRecord | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._restored = asyncio.Event()
        self._background: asyncio.Task[Sec1000Error | None] | None = None
        self.off_window = OFF_WINDOW
        self.settle = SETTLE
        self.backoff_first = BACKOFF_FIRST
        self.restore_budget = RESTORE_BUDGET

    @property
    def blocks_writes(self) -> bool:
        """True while a restore is pending outside a running reset (other writes must wait)."""
        return self._pending is not None and not self._running

    @property
    def running(self) -> bool:
        """True while a reset is under way."""
        return self._running

    async def reset(self, origin: Origin, request_id: str | None = None) -> CommandResult:
        """Run the guarded reset sequence."""
        name = OperationName.RESET_EXPORT_WATCHDOG
        refusal = self._refusal()
        if refusal:
            return self.ops.finish(
                name, origin, int(Feedback.GENERAL_ERROR), refusal, request_id, None
            )
        self._running = True
        self._wake.clear()
        self.ops.state.set_feedback(name, int(Feedback.WAITING), "turning the limiter off for 5 s")
        try:
            try:
                record = await self.ops.link.run(self._turn_off, Priority.USER)
            except Sec1000Error as err:
                if self._pending is None:  # nothing was turned off
                    return self.ops.finish(
                        name, origin, int(err.feedback), str(err), request_id, None
                    )
                record = self._pending
                _LOGGER.error("turning the limiter off failed half-way (%s); restoring", err)
            error = await self.restore(record, time.monotonic() + self.restore_budget)
            if error is None:
                message = "export watchdog reset; the limiter is back on and confirmed"
                return self.ops.finish(name, origin, int(Feedback.OK), message, request_id, None)
            self._background = asyncio.create_task(self.restore(record), name="sec1000-restore")
            message = (
                f"the limiter restore is not confirmed ({error}); "
                "it is retried in the background until the device confirms it"
            )
            return self.ops.finish(name, origin, int(error.feedback), message, request_id, None)
        finally:
            self._running = False
            self.ops.state.set_restore(
                self._pending is not None, self.ops.state.restore_error, running=False
            )

    def _refusal(self) -> str | None:
        if self._running:
            return "a reset export watchdog is already running"
        if self._pending is not None:
            return "the export limiter restore from an earlier reset is still pending"
        health = self.ops.link.health
        if health.consecutive_failures:
            return (
                "refused: the last exchange with the device failed "
                f"({health.last_error}); the limiter is not turned off while the device is not answering"
            )
        return None

    async def _turn_off(self, session: Session) -> RestoreRecord:
        limit_kw = self.ops.state.export_limit_kw
        if limit_kw is None:
            limit_kw = (await self.ops.read_settings(session)).export_limit_w / 1000
        options = self.ops.options
        record = RestoreRecord(
            mode=options.control_mode.option,
            export_limit_w=watts(limit_kw),
            three_phase_sum=options.three_phase_sum,
            started_at=time.time(),
        )
        self.store.save(record)  # durable before the first switch goes off
        self._pending = record
        self.ops.state.set_restore(True, None, running=True)
        for switch in MODE_SWITCHES.values():
            await self.ops.acknowledge(session, mode_switch_request(switch, Switch.OFF), switch)
        _LOGGER.warning(
            "export limiter off: the plant exports without limit for %g s", self.off_window
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.off_window)
        return record

    async def _restore_once(self, session: Session, record: RestoreRecord) -> None:
        options = self.ops.options
        mode = ControlMode.from_option(record.mode) if record.mode else options.control_mode
        limit_w = (
            record.export_limit_w if record.export_limit_w >= 0 else watts(options.max_export_limit)
        )
        phase = (
            PhaseMeasurement.SUM_OF_PHASES if record.three_phase_sum else PhaseMeasurement.PER_PHASE
        )
        await self.ops.switch_mode(session, mode)
        if not self._stopping:
            await session.pause(self.settle)
        await self.ops.write_limit(session, limit_w, mode, phase)
        settings = await self.ops.read_settings(session)
        if settings.mode != mode or settings.export_limit_w != limit_w:
            raise GeneralError(
                f"read-back shows mode {settings.mode.option} and limit {settings.export_limit_w} W, "
                f"expected {mode.option} and {limit_w} W"
            )

    async def restore(
        self, record: RestoreRecord, deadline: float | None = None
    ) -> Sec1000Error | None:
        """Restore until the device confirms; None when confirmed, else the last error at `deadline`."""
        self._pending = record
        self._restored.clear()
        delay = self.backoff_first
        while True:
            try:
                await self.ops.link.run(lambda s: self._restore_once(s, record), Priority.RESTORE)
            except Sec1000Error as err:
                message = f"restoring the export limiter failed: {err}; retrying in {delay:g} s"
                _LOGGER.error("%s", message)
                self.ops.state.set_restore(True, message)
                if deadline is not None and time.monotonic() + delay > deadline:
                    return err
            else:
                self.store.clear()
                self._pending = None
                self._restored.set()
                self.ops.state.set_restore(False, None)
                _LOGGER.info("export limiter restored and confirmed by read-back")
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def resume_pending(self, deadline: float | None = None) -> bool:
        """At start-up: finish a restore left by a crash or kill. True when nothing is pending."""
        record = self.store.load()
        if record is None:
            return True
        _LOGGER.warning(
            "a watchdog restore was left unfinished; restoring the export limiter first"
        )
        self.ops.state.set_restore(True, "restoring the export limiter left off by an earlier run")
        return await self.restore(record, deadline) is None

    def shutdown_grace(self) -> float:
        """How long a stop waits for the restore: its packets at the configured gap, plus margin.

        A restore is 3 switches, 0x42 and 3 switches, and a read-back (8 packets). The add-on's
        config.yaml gives the Supervisor a 30 s stop timeout, so this stays below 25 s.
        """
        return min(MAX_SHUTDOWN_GRACE, 8 * self.ops.link.gap + self.settle + 4.0)

    async def shutdown(self, grace: float | None = None) -> None:
        """On SIGTERM: end the off window now and get the limiter back before exiting."""
        grace = self.shutdown_grace() if grace is None else grace
        self._stopping = True
        self._wake.set()
        if self._pending is None:
            return
        if self._background is not None:
            self._background.cancel()  # retry at once instead of waiting out the backoff
            self._background = asyncio.create_task(self.restore(self._pending))
        _LOGGER.warning("stopping during a watchdog reset: restoring the export limiter first")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._restored.wait(), grace)
