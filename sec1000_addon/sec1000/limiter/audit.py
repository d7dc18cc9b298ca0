"""The audit trail: one JSON line per write and per drift seen, in `<data dir>/audit.jsonl`,
written off the event loop in order, the newest kept in memory.

The file is rotated at 1 MB and three files are kept (`audit.jsonl`, `.1`, `.2`). A file that
cannot be written never stops the add-on: the failure is logged once and shown in diagnostics.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from sec1000.common.files import FileWriter
from sec1000.common.units import kilowatts
from sec1000.device.sequences import LimitWrite
from sec1000.limiter.writes import WriteReport
from sec1000.protocol import ExportSettings, Feedback, PhaseMeasurement
from sec1000.state import CommandRecord, SetBy

_LOGGER = logging.getLogger(__name__)

AUDIT_NAME = "audit.jsonl"
MAX_BYTES = 1_000_000
KEEP_FILES = 3
RECENT = 2000  # entries kept in memory: the History page and the diagnostics read these


class AuditKind(StrEnum):
    """What an audit entry is (the History page filters by it)."""

    WRITE = "write"  # a write verified by read-back
    DRIFT = "drift"  # the controller held another limit or mode than the wanted one
    FAILURE = "failure"  # a write not verified
    OVERSHOOT = "overshoot"  # export over the limit, seen by the meter check
    CEILING = "ceiling"  # a restore forced by the export ceiling


KINDS = tuple(AuditKind)
# The `command` of entries that are not a command's: the guard's drift and adoption, the meter
# check's overshoot.
DRIFT, ADOPT, OVERSHOOT = "drift", "adopt", "overshoot"
NOT_WRITES = frozenset({ADOPT})  # audited as verified, but nothing went to the controller


def now_iso() -> str:
    """The local time with its offset, to the second (ISO 8601)."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


# Entries written before there were several controllers belong to the first one.
FIRST_CONTROLLER = "sec1000"


class AuditLog:
    """Appends entries (written off the event loop, in order), rotates, and keeps the newest in
    memory for the History page and the diagnostics.

    Every controller writes to the one file, each entry with its `controller`; each
    controller's view (`for_controller`) shows its own entries.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP_FILES,
        listener: Callable[[Mapping[str, Any]], None] | None = None,
    ):
        self.path = directory / AUDIT_NAME
        self.max_bytes = max_bytes
        self.keep = keep
        self.controller = FIRST_CONTROLLER
        self._listener = listener  # told of every entry (the day's writes and drifts)
        self._shared = self  # the log that owns the file, the writer and the error
        self._error: str | None = None
        self._writer = FileWriter()
        self.every: deque[dict[str, Any]] = deque(self.read(RECENT), maxlen=RECENT)
        # The marks parsed from `every`, and the (length, newest entry) they were parsed at.
        self._writes: tuple[tuple[int, int | None], list[CommandRecord]] = ((-1, None), [])

    def for_controller(
        self, controller: str, listener: Callable[[Mapping[str, Any]], None] | None = None
    ) -> AuditLog:
        """The same file as seen and written by one controller."""
        view = copy.copy(self)
        view.controller = controller
        view._writes = ((-1, None), [])
        view._listener = listener
        return view

    @property
    def error(self) -> str | None:
        """Why the last append to the file failed, for diagnostics."""
        return self._shared._error

    @property
    def recent(self) -> list[dict[str, Any]]:
        """This controller's newest entries in memory, oldest first."""
        return [entry for entry in self._shared.every if self._mine(entry)]

    def _mine(self, entry: Mapping[str, Any]) -> bool:
        return entry.get("controller", FIRST_CONTROLLER) == self.controller

    def files(self) -> list[Path]:
        """Newest first: audit.jsonl, audit.jsonl.1, audit.jsonl.2."""
        return [self.path, *(self.path.with_name(f"{AUDIT_NAME}.{n}") for n in range(1, self.keep))]

    def append(self, entry: Mapping[str, Any]) -> None:
        """Add one entry (with `at` if missing): kept at once, written in the background; never
        raises (a file that cannot be written is logged once and shown in diagnostics)."""
        if self._listener is not None:
            self._listener(entry)
        stamped = {"at": now_iso(), **entry, "controller": self.controller}
        self._shared.every.append(stamped)
        line = json.dumps(stamped, default=str, ensure_ascii=False)
        self._writer.submit(lambda: self._shared.write_line(line))

    def write_line(self, line: str) -> None:
        """In the writer's thread: one line, rotating first when the file is full."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rotate_if_full(len(line) + 1)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as err:
            if self._error is None:
                _LOGGER.error("cannot write the audit trail %s: %s", self.path, err)
            self._error = f"{self.path}: {err.strerror or err}"
        else:
            self._error = None

    def _rotate_if_full(self, adding: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + adding <= self.max_bytes:
            return
        files = self.files()
        for older, newer in zip(reversed(files[1:]), reversed(files[:-1]), strict=True):
            if newer.exists():
                os.replace(newer, older)

    def tail(self, count: int = 200) -> list[dict[str, Any]]:
        """This controller's newest `count` entries (of the RECENT kept in memory), oldest
        first."""
        return self.recent[-count:] if count > 0 else []

    def last_confirmed_write(self) -> SetBy | None:
        """This controller's newest write confirmed by read-back (who set what it holds)."""
        for entry in reversed(self.recent):
            if entry.get("verified") is True and entry.get("origin") and entry.get("command"):
                at = entry_time(entry)
                if at is not None:
                    return SetBy(str(entry["origin"]), str(entry["command"]), at)
        return None

    def writes_since(self, since: float) -> list[CommandRecord]:
        """This controller's writes (verified, failed, ceiling restores) from `since` on, of
        those in memory, as command records: the day chart's marks. Drifts, overshoots and an
        adopted limit wrote nothing; a line whose time cannot be read is left out. Parsed once
        per new entry (the History page asks at every read)."""
        every = self._shared.every
        key = (len(every), id(every[-1]) if every else None)
        if self._writes[0] != key:
            self._writes = (key, [w for w in map(_as_write, self.recent) if w is not None])
        return [record for record in self._writes[1] if record.at >= since]

    async def everything(self) -> list[dict[str, Any]]:
        """Every entry of this controller the files keep, oldest first, read off the event
        loop."""
        await self._writer.flush()
        return [entry for entry in await asyncio.to_thread(self.read, None) if self._mine(entry)]

    def wrote(self, report: WriteReport) -> None:
        """One limiter write (verified or not, one that raised too) as its audit entry."""
        self.append(
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

    async def flush(self) -> None:
        """Wait until every entry appended so far is in the file."""
        await self._writer.flush()

    def read(self, count: int | None) -> list[dict[str, Any]]:
        """The newest `count` entries of the files (all when None), oldest first; unreadable
        lines and files are skipped. Blocking: at start, or in a thread."""
        newest: deque[dict[str, Any]] = deque(maxlen=count)
        for path in reversed(self.files()):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    newest.append(entry)
        return list(newest)


def settings_json(settings: ExportSettings | None) -> dict[str, Any] | None:
    """0x43 settings for the audit trail, in kW."""
    if settings is None:
        return None
    return {
        "export_limit_kw": kilowatts(settings.export_limit_w),
        "mode": settings.mode.option,
        "total_capacity_kw": kilowatts(settings.total_capacity_w),
    }


def write_json(write: LimitWrite) -> dict[str, Any]:
    """A requested write for the audit trail, in kW."""
    return {
        "export_limit_kw": kilowatts(write.export_limit_w),
        "mode": write.mode.option,
        "total_capacity_kw": kilowatts(write.total_capacity_w),
        "three_phase_sum": write.phase is PhaseMeasurement.SUM_OF_PHASES,
    }


def kind_of(entry: Mapping[str, Any]) -> AuditKind:
    """What an entry is."""
    command = entry.get("command")
    if command == DRIFT:
        return AuditKind.DRIFT
    if command == OVERSHOOT:
        return AuditKind.OVERSHOOT
    if not entry.get("verified"):
        return AuditKind.FAILURE
    return AuditKind.CEILING if command == "ceiling" else AuditKind.WRITE


WRITE_KINDS = frozenset({AuditKind.WRITE, AuditKind.CEILING, AuditKind.FAILURE})


def is_write(entry: Mapping[str, Any]) -> bool:
    """A limiter write, verified or not (an adopted limit is none: nothing was written)."""
    return kind_of(entry) in WRITE_KINDS and entry.get("command") not in NOT_WRITES


def entry_time(entry: Mapping[str, Any]) -> float | None:
    """An entry's time (epoch seconds), or None when it has none that can be read."""
    try:
        return dt.datetime.fromisoformat(str(entry.get("at"))).timestamp()
    except ValueError:
        return None


def _as_write(entry: Mapping[str, Any]) -> CommandRecord | None:
    """An audit entry as a chart mark, or None: not a write, or its time cannot be read."""
    if not is_write(entry):
        return None
    at = entry_time(entry)
    if at is None:
        return None
    feedback = entry.get("feedback")
    # Not verified is not OK, whatever the controller answered: the mark is red.
    failed = (feedback if type(feedback) is int else 0) & ~int(Feedback.OK)
    return CommandRecord(
        at,
        str(entry.get("origin") or ""),
        str(entry.get("command") or ""),
        int(Feedback.OK) if entry.get("verified") is True else failed,
        str(entry.get("message") or ""),
    )
