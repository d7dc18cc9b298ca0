"""Packet sequences the operations, the guard and the watchdog share, each run inside one link
session, and the verified limiter write they all report the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sec1000.common.units import kilowatts
from sec1000.link import Session
from sec1000.protocol import (
    ACK_OR_NAK,
    EXPORT_SETTINGS_DATA_LENGTH,
    STATUS_DATA_LENGTH,
    Command,
    ControlMode,
    ExportSettings,
    Feedback,
    PhaseMeasurement,
    Sec1000Error,
    Status,
    Switch,
    decode_export_settings,
    decode_status,
    mode_sequence,
    mode_switch_request,
    read_export_settings_request,
    write_export_limit_request,
)
from sec1000.state import StateModel


@dataclass(frozen=True, slots=True)
class LimitWrite:
    """What one 0x42 write and its mode switches put on the controller."""

    total_capacity_w: int
    export_limit_w: int
    mode: ControlMode
    phase: PhaseMeasurement

    def held_by(self, settings: ExportSettings) -> bool:
        """True when a 0x43 read-back shows this write (0x43 does not report the phase byte)."""
        return (
            settings.mode == self.mode
            and settings.export_limit_w == self.export_limit_w
            and settings.total_capacity_w == self.total_capacity_w
        )

    def describe(self) -> str:
        """The write in words: "3.00 kW in mode value"."""
        return f"{kilowatts(self.export_limit_w):.2f} kW in mode {self.mode.option}"


@dataclass(frozen=True, slots=True)
class Verified:
    """A write and what the controller held after it (read back with 0x43)."""

    write: LimitWrite
    after: ExportSettings
    attempts: int
    naks: int

    @property
    def held(self) -> bool:
        """True when the read-back shows what was written."""
        return self.write.held_by(self.after)

    def mismatch(self) -> str:
        """What the controller holds instead, in words."""
        after = self.after
        text = (
            f"the controller holds {kilowatts(after.export_limit_w):.2f} kW in mode "
            f"{after.mode.option}, not {self.write.describe()}"
        )
        if after.total_capacity_w != self.write.total_capacity_w:
            text += (
                f" (capacity {kilowatts(after.total_capacity_w):.2f} kW, "
                f"not {kilowatts(self.write.total_capacity_w):.2f} kW)"
            )
        return text


async def acknowledge(session: Session, request: bytes, command: Command) -> Status:
    """Send a request answered by ACK or NAK (both accepted as done, as the field integration does)."""
    frame = await session.exchange(request, command, STATUS_DATA_LENGTH)
    return decode_status(frame, ACK_OR_NAK)


async def read_settings(session: Session) -> ExportSettings:
    """0x43: the mode, capacity, CT ratio and export limit the controller holds."""
    frame = await session.exchange(
        read_export_settings_request(), Command.READ_EXPORT_SETTINGS, EXPORT_SETTINGS_DATA_LENGTH
    )
    return decode_export_settings(frame)


async def switch_mode(session: Session, mode: ControlMode) -> int:
    """Select a mode: the two other switches off, then the chosen one on. Returns the NAK count."""
    naks = 0
    for switch, position in mode_sequence(mode):
        status = await acknowledge(session, mode_switch_request(switch, position), switch)
        naks += status is Status.NAK
    return naks


async def switch_all_off(session: Session, switches: tuple[Command, ...]) -> None:
    """Turn the given mode switches off, in that order."""
    for switch in switches:
        await acknowledge(session, mode_switch_request(switch, Switch.OFF), switch)


async def write_limit(session: Session, write: LimitWrite) -> int:
    """0x42 then the three mode switches (four packets, as the field integration sends).

    Returns how many of the four packets the controller answered with NAK.
    """
    status = await acknowledge(
        session,
        write_export_limit_request(write.total_capacity_w, write.export_limit_w, write.phase),
        Command.WRITE_EXPORT_LIMIT,
    )
    return int(status is Status.NAK) + await switch_mode(session, write.mode)


async def write_verified(session: Session, write: LimitWrite, attempts: int = 2) -> Verified:
    """Write, then read back with 0x43; a write the controller did not take is tried once more.

    Never raises for a mismatch: the caller decides (feedback 2, notification, audit).
    """
    naks = tried = 0
    while True:
        tried += 1
        naks += await write_limit(session, write)
        after = await read_settings(session)
        if write.held_by(after) or tried >= attempts:
            return Verified(write, after, tried, naks)


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


GUARD_ORIGIN = "guard"  # the audit's origin of the guard's and the watchdog's own writes


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
        message = f"{verified.mismatch()} (written {verified.attempts} times)"
    written = WriteReport(
        origin, command, write, before, verified.after, feedback, message, sets_wanted
    )
    report(written)
    return written
