"""Typed requests and answers for every known command."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from sec1000.protocol.errors import InvalidInputError, UnexpectedPacketError
from sec1000.protocol.frames import Command, Frame, build_request

INT32_MAX = 2**31 - 1


class ControlMode(IntEnum):
    """Export limit control mode, as the 0x43 answer reports it."""

    DEACTIVATED = 0
    DRED = 1
    RCR = 2
    VALUE = 3

    @property
    def option(self) -> str:
        """The option value naming this mode (`export_limit_control_mode`)."""
        return self.name.lower()

    @classmethod
    def from_option(cls, value: str) -> ControlMode:
        """Parse an option value such as 'value' or 'dred'."""
        try:
            return cls[value.upper()]
        except (KeyError, AttributeError):
            raise InvalidInputError(
                f"unknown control mode {value!r}; use one of "
                + ", ".join(mode.option for mode in cls)
            ) from None


class PhaseMeasurement(IntEnum):
    """Last byte of the 0x42 write."""

    PER_PHASE = 1
    SUM_OF_PHASES = 2

    @classmethod
    def from_sum(cls, three_phase_sum: bool) -> PhaseMeasurement:
        """The byte for the `three_phase_sum` option: sum of the phases, or each phase."""
        return cls.SUM_OF_PHASES if three_phase_sum else cls.PER_PHASE


class Status(IntEnum):
    """Status bytes seen in one-byte answers."""

    DATETIME_OK = 0x03
    ACK = 0x06
    NAK = 0x15


class Switch(StrEnum):
    """A mode switch's state byte: 0x01 on, 0x02 off."""

    ON = "on"
    OFF = "off"


MODE_SWITCHES: dict[ControlMode, Command] = {
    ControlMode.VALUE: Command.MODE_VALUE,
    ControlMode.DRED: Command.MODE_DRED,
    ControlMode.RCR: Command.MODE_RCR,
}
EXPORT_SETTINGS_DATA_LENGTH = 13
STATUS_DATA_LENGTH = 1


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """The 0x43 answer."""

    mode: ControlMode
    total_capacity_w: int
    ct_ratio: int
    export_limit_w: int


def read_telemetry_request() -> bytes:
    """`00 05 01 01 0B 00 0D`."""
    return build_request(Command.READ_TELEMETRY)


def read_export_settings_request() -> bytes:
    """`00 05 01 01 43 00 45`."""
    return build_request(Command.READ_EXPORT_SETTINGS)


def _watts(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT32_MAX:
        raise InvalidInputError(f"{what} must be a whole number of watts from 0, got {value!r}")
    return value


def write_export_limit_request(
    total_capacity_w: int, export_limit_w: int, phase: PhaseMeasurement
) -> bytes:
    """0x42: total capacity (int32 W), export limit (int32 W), phase measurement byte."""
    data = struct.pack(
        ">iiB",
        _watts(total_capacity_w, "total capacity"),
        _watts(export_limit_w, "export limit"),
        PhaseMeasurement(phase),
    )
    return build_request(Command.WRITE_EXPORT_LIMIT, data)


def mode_switch_request(switch: Command, state: Switch) -> bytes:
    """0x40/0x33/0x28 with one byte: 0x01 on, 0x02 off."""
    if switch not in MODE_SWITCHES.values():
        raise InvalidInputError(f"{switch!r} is not a mode switch")
    return build_request(switch, b"\x01" if state is Switch.ON else b"\x02")


def mode_sequence(mode: ControlMode) -> list[tuple[Command, Switch]]:
    """Switches that select a mode: the two others off, then the chosen one on.

    DEACTIVATED turns all three off, which lets the full PV power go to the grid.
    """
    chosen = MODE_SWITCHES.get(mode)
    sequence = [(cmd, Switch.OFF) for cmd in MODE_SWITCHES.values() if cmd != chosen]
    if chosen is not None:
        sequence.append((chosen, Switch.ON))
    return sequence


def set_datetime_request(when: dt.datetime) -> bytes:
    """0x05: year - 2000, month, 0x00, day, hour, minute, second (one byte each)."""
    if not 2000 <= when.year <= 2255:
        raise InvalidInputError(f"year {when.year} cannot be sent (2000-2255)")
    data = bytes((when.year - 2000, when.month, 0, when.day, when.hour, when.minute, when.second))
    return build_request(Command.SET_DATETIME, data)


def decode_export_settings(frame: Frame) -> ExportSettings:
    """Decode a validated 0x43 answer (13 data bytes)."""
    mode_byte, capacity, ct_ratio, limit = struct.unpack(">Biii", frame.data)
    try:
        mode = ControlMode(mode_byte)
    except ValueError:
        raise UnexpectedPacketError(f"unknown control mode byte {mode_byte:#04x}") from None
    return ExportSettings(mode, capacity, ct_ratio, limit)


def decode_status(frame: Frame, accepted: frozenset[Status]) -> Status:
    """Decode a one-byte status answer; any status not accepted is an unexpected packet."""
    byte = frame.data[0]
    if byte not in accepted:
        raise UnexpectedPacketError(f"device answered status {byte:#04x}")
    return Status(byte)


ACK_OR_NAK = frozenset({Status.ACK, Status.NAK})
DATETIME_ACCEPTED = frozenset({Status.DATETIME_OK})
