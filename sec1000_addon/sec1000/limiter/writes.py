"""Who asked, and the report of every limiter write: verified by read-back, then audited.

The operations, the guard's restore and the watchdog's restore all write through
`write_reported()`, so every limiter write reaches the audit trail the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sec1000.common.tasks import run_to_end
from sec1000.common.units import kilowatts
from sec1000.device.link import DeviceLink, Priority, Session
from sec1000.device.sequences import LimitWrite, Verified, write_verified
from sec1000.protocol import ControlMode, ExportSettings, Feedback, GeneralError, Sec1000Error
from sec1000.state import StateModel


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked: 'panel', 'home_assistant', 'automation', 'cli', 'poll' or 'startup', and the user."""

    source: str
    user: str | None = None

    def __str__(self) -> str:
        return f"{self.source} ({self.user})" if self.user else self.source

    @property
    def tag(self) -> str:
        """The audit trail's words: panel:<user>, home_assistant:<user or automation>, cli…"""
        if self.source == "automation":
            return "home_assistant:automation"
        return f"{self.source}:{self.user}" if self.user else self.source


POLL = Origin("poll")
CLI = Origin("cli")
GUARD_ORIGIN = "guard"  # the audit's origin of the guard's and the watchdog's own writes


def in_words(export_limit_w: int, mode: ControlMode | str) -> str:
    """A limit and a mode as people read them: "3.00 kW in mode value"."""
    option = mode.option if isinstance(mode, ControlMode) else mode
    return f"{kilowatts(export_limit_w):.2f} kW in mode {option}"


def write_in_words(write: LimitWrite) -> str:
    """A write as people read it: "3.00 kW in mode value"."""
    return in_words(write.export_limit_w, write.mode)


def mismatch(verified: Verified) -> str:
    """What the controller holds instead of the write, in words."""
    after, write = verified.after, verified.write
    text = (
        f"the controller holds {in_words(after.export_limit_w, after.mode)}, "
        f"not {write_in_words(write)}"
    )
    if after.total_capacity_w != write.total_capacity_w:
        text += (
            f" (capacity {kilowatts(after.total_capacity_w):.2f} kW, "
            f"not {kilowatts(write.total_capacity_w):.2f} kW)"
        )
    return text


@dataclass(frozen=True, slots=True)
class WriteReport:
    """One limiter write as the audit trail keeps it."""

    origin: str  # panel:<user>, home_assistant:<user>, guard, startup, cli …
    command: str
    requested: LimitWrite
    before: ExportSettings | None
    after: ExportSettings | None
    feedback: int
    message: str
    sets_wanted: bool = True  # False for the guard's and the watchdog's own restores

    @property
    def verified(self) -> bool:
        """True when the read-back shows what was written."""
        return self.after is not None and self.requested.held_by(self.after)


@dataclass(frozen=True, slots=True)
class WriteJob:
    """Who writes, as which command, and the words for a write the controller took."""

    origin: str  # the audit's origin tag
    command: str
    done: str = "export limit set to {write}, confirmed by read-back"  # {write}: the write in words
    feedback: int = int(Feedback.OK)  # the feedback of a write taken (129: input corrected)
    sets_wanted: bool = True  # False for the guard's and the watchdog's own restores


async def write_reported(
    session: Session,
    state: StateModel,
    write: LimitWrite,
    report: Callable[[WriteReport], None],
    job: WriteJob,
) -> WriteReport:
    """Write, read back (0x43), learn the settings, and report the write, one that raised
    included: every limiter write reaches the audit trail. A cancellation (a stop) waits until
    the sequence has ended: a write is never cut between its mode switches."""
    return await run_to_end(_write_reported(session, state, write, report, job))


async def _write_reported(
    session: Session,
    state: StateModel,
    write: LimitWrite,
    report: Callable[[WriteReport], None],
    job: WriteJob,
) -> WriteReport:
    before = state.known_settings()
    try:
        verified = await write_verified(session, write)
    except Sec1000Error as err:
        failed = WriteReport(
            job.origin,
            job.command,
            write,
            before,
            None,
            int(err.feedback),
            str(err),
            job.sets_wanted,
        )
        report(failed)
        raise
    if verified.held:
        state.written_by(job.origin, job.command)
    state.settings_learned(verified.after)
    feedback = job.feedback
    if verified.held:
        message = job.done.format(write=write_in_words(write))
        if verified.naks:
            message += f"; the device answered NAK to {verified.naks} packets, and took the write"
    else:
        feedback = int(Feedback.GENERAL_ERROR)
        message = f"{mismatch(verified)} (written {verified.attempts} times)"
    written = WriteReport(
        job.origin, job.command, write, before, verified.after, feedback, message, job.sets_wanted
    )
    report(written)
    return written


class Superseded(GeneralError):
    """A waiting write that a newer one replaced before it was sent."""


@dataclass(eq=False, slots=True)
class Ticket:
    """A limiter write waiting for the device: built only once the device is held."""

    job: WriteJob
    build: Callable[[], LimitWrite | None]  # None: the controller holds it already
    outcome: asyncio.Future[WriteReport | None]

    def carried_out(self, report: WriteReport | None) -> None:
        """The sequence holding the device wrote it in its place."""
        if not self.outcome.done():
            self.outcome.set_result(report)

    def failed(self, error: BaseException) -> None:
        """The sequence that took it over could not write it."""
        if not self.outcome.done():
            self.outcome.set_exception(error)


class Writer:
    """The limiter writes that commands ask for, one at a time through the device link.

    Each write is built from the wanted state and the options only once it holds the device, so
    a write queued behind another never undoes it. A sequence already holding the device (the
    watchdog's restore) may take the newest waiting write and carry it out in its place.
    """

    def __init__(
        self,
        link: DeviceLink,
        state: StateModel,
        report: Callable[[WriteReport], None],
        intend: Callable[[LimitWrite], Awaitable[None]] | None = None,
    ) -> None:
        self.link = link
        self.state = state
        self.report = report
        # Records a write that may become the wanted state before it is sent (the guard).
        self.intend = intend
        self._waiting: list[Ticket] = []
        self.stopping = False  # set at a stop: nothing new is written

    async def write(
        self, job: WriteJob, build: Callable[[], LimitWrite | None]
    ) -> WriteReport | None:
        """Wait for the device, build the write, write and read back; None when nothing needed
        writing. Raises the device's error, GeneralError while stopping, Superseded."""
        self._refuse_while_stopping()
        ticket = Ticket(job, build, asyncio.get_running_loop().create_future())
        self._waiting.append(ticket)
        try:
            async with self.link.session(Priority.USER) as session:
                if ticket.outcome.done():  # written (or replaced) while it waited
                    return ticket.outcome.result()
                self._waiting.remove(ticket)
                self._refuse_while_stopping()
                write = build()
                if write is None:
                    return None
                await self.intended(write, job)
                return await write_reported(session, self.state, write, self.report, job)
        finally:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            if ticket.outcome.done() and not ticket.outcome.cancelled():
                ticket.outcome.exception()  # retrieved: never logged as lost

    async def intended(self, write: LimitWrite, job: WriteJob) -> None:
        """Record a write that may become the wanted state before it is sent."""
        if job.sets_wanted and self.intend is not None:
            await self.intend(write)

    def take_waiting(self) -> Ticket | None:
        """The newest write waiting for the device, for the caller (holding it) to carry out;
        older waiting writes are superseded by it."""
        if not self._waiting:
            return None
        newest = self._waiting.pop()
        for older in self._waiting:
            older.failed(
                Superseded(
                    f"not written: {newest.job.command} from {newest.job.origin} replaced it "
                    "while it waited for the controller"
                )
            )
        self._waiting.clear()
        return newest

    def _refuse_while_stopping(self) -> None:
        if self.stopping:
            raise GeneralError("refused: the add-on is stopping; nothing is written now")
