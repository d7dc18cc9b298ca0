"""Who asked, and the report of every limiter write: verified by read-back, then audited.

The operations, the guard's restore and the watchdog's restore all write through
`write_reported()`, so every limiter write reaches the audit trail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sec1000.common.units import kilowatts
from sec1000.device.link import Session
from sec1000.device.sequences import LimitWrite, Verified, write_verified
from sec1000.protocol import ControlMode, ExportSettings, Feedback, Sec1000Error
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


async def write_reported(
    session: Session,
    state: StateModel,
    write: LimitWrite,
    report: Callable[[WriteReport], None],
    *,
    origin: str,
    command: str,
    done: str,
    feedback: int = int(Feedback.OK),
    sets_wanted: bool = True,
) -> WriteReport:
    """Write, read back (0x43), learn the settings, and report the write, one that raised
    included: every limiter write reaches the audit trail. `done` words a write taken; the
    report (with `after`, `verified`, `message`) is returned, and an exception raised again."""
    before = state.known_settings()
    try:
        verified = await write_verified(session, write)
    except Sec1000Error as err:
        report(
            WriteReport(
                origin, command, write, before, None, int(err.feedback), str(err), sets_wanted
            )
        )
        raise
    state.settings_learned(verified.after)
    if verified.held:
        message = done
        if verified.naks:
            message += f"; the device answered NAK to {verified.naks} packets, and took the write"
    else:
        feedback = int(Feedback.GENERAL_ERROR)
        message = f"{mismatch(verified)} (written {verified.attempts} times)"
    written = WriteReport(
        origin, command, write, before, verified.after, feedback, message, sets_wanted
    )
    report(written)
    return written
