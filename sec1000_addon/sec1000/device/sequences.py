"""Packet sequences the operations, the guard and the watchdog share, each run inside one link
session: reads, mode switches, and the limiter write verified by read-back."""

from __future__ import annotations

from dataclasses import dataclass

from sec1000.device.link import Session
from sec1000.protocol import (
    ACK_OR_NAK,
    EXPORT_SETTINGS_DATA_LENGTH,
    STATUS_DATA_LENGTH,
    Command,
    ControlMode,
    ExportSettings,
    PhaseMeasurement,
    Status,
    Switch,
    decode_export_settings,
    decode_status,
    mode_sequence,
    mode_switch_request,
    read_export_settings_request,
    write_export_limit_request,
)


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
