"""Request and response frames: length prefix, `01 01 CMD`, data, 16-bit checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from sec1000.protocol.errors import ChecksumError, ShortAnswerError, UnexpectedPacketError

# Response: 5 preamble bytes (observed "\x04REVO", content not relied on), then 2 length bytes.
PREAMBLE_LENGTH = 5
RESPONSE_HEADER_LENGTH = PREAMBLE_LENGTH + 2
# N counts `01 01 CMD`, the data and the 2 checksum bytes.
MIN_BODY_LENGTH = 5
# No known answer is longer than 49; anything far beyond is garbage, not a frame to wait for.
MAX_BODY_LENGTH = 512
FIXED_PREFIX = b"\x01\x01"


class Command(IntEnum):
    """Command codes (the third byte of every request and response body)."""

    SET_DATETIME = 0x05
    READ_TELEMETRY = 0x0B
    MODE_RCR = 0x28
    MODE_DRED = 0x33
    MODE_VALUE = 0x40
    WRITE_EXPORT_LIMIT = 0x42
    READ_EXPORT_SETTINGS = 0x43


@dataclass(frozen=True, slots=True)
class Frame:
    """A validated response: the echoed command and its data bytes."""

    command: int
    data: bytes


def checksum(covered: bytes) -> int:
    """Return the 16-bit sum (mod 65536) of the covered bytes."""
    return sum(covered) & 0xFFFF


def build_request(command: Command, data: bytes = b"") -> bytes:
    """Build a request frame: length, `01 01 CMD data`, checksum (all big-endian)."""
    body = FIXED_PREFIX + bytes((command,)) + data
    return struct.pack(">H", len(body) + 2) + body + struct.pack(">H", checksum(body))


def build_response(command: int, data: bytes, preamble: bytes = b"\x04REVO") -> bytes:
    """Build a response frame as the device sends it (used by the simulator and tests)."""
    body = FIXED_PREFIX + bytes((command,)) + data
    return preamble + struct.pack(">H", len(body) + 2) + body + struct.pack(">H", checksum(body))


def body_length(header: bytes) -> int:
    """Return N from a 7-byte response header, or raise if it cannot be a frame."""
    if len(header) != RESPONSE_HEADER_LENGTH:
        raise UnexpectedPacketError(f"response header is {len(header)} bytes, expected 7")
    (length,) = struct.unpack(">H", header[PREAMBLE_LENGTH:])
    if not MIN_BODY_LENGTH <= length <= MAX_BODY_LENGTH:
        raise UnexpectedPacketError(f"response announces {length} bytes, which no answer has")
    return length


def parse_response(raw: bytes, expected: Command, data_length: int | None = None) -> Frame:
    """Validate a whole response (header included) and return its frame.

    Raises ChecksumError, ShortAnswerError (fewer data bytes than `data_length`)
    or UnexpectedPacketError (anything else that is not the expected answer).
    """
    length = body_length(raw[:RESPONSE_HEADER_LENGTH])
    body = raw[RESPONSE_HEADER_LENGTH:]
    if len(body) != length:
        raise UnexpectedPacketError(f"response announces {length} bytes but carries {len(body)}")
    covered, (sent_sum,) = body[:-2], struct.unpack(">H", body[-2:])
    if checksum(covered) != sent_sum:
        raise ChecksumError(
            f"checksum {sent_sum:#06x} does not match the bytes ({checksum(covered):#06x})"
        )
    if covered[:2] != FIXED_PREFIX:
        raise UnexpectedPacketError(f"response starts {covered[:2].hex(' ')}, expected 01 01")
    if covered[2] != expected:
        raise UnexpectedPacketError(
            f"response echoes command {covered[2]:#04x}, expected {int(expected):#04x}"
        )
    data = bytes(covered[3:])
    if data_length is not None and len(data) != data_length:
        error = ShortAnswerError if len(data) < data_length else UnexpectedPacketError
        raise error(
            f"answer to {int(expected):#04x} has {len(data)} data bytes, expected {data_length}"
        )
    return Frame(command=covered[2], data=data)
