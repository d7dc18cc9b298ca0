"""Feedback bits and the typed errors that map onto them, one class per bit."""

from __future__ import annotations

from enum import IntFlag, StrEnum

from sec1000.common.errors import AddonError


class Feedback(IntFlag):
    """The feedback bitmap every operation reports; 0 means waiting for the device."""

    WAITING = 0
    OK = 1
    GENERAL_ERROR = 2
    UNKNOWN_ERROR = 4
    TIMEOUT = 8
    UNEXPECTED_PACKET = 16
    CHECKSUM_ERROR = 32
    SOCKET_ERROR = 64
    INVALID_INPUT = 128


FEEDBACK_WORDS: dict[Feedback, str] = {
    Feedback.OK: "OK",
    Feedback.GENERAL_ERROR: "general error",
    Feedback.UNKNOWN_ERROR: "unknown error",
    Feedback.TIMEOUT: "timeout: the device did not answer in time",
    Feedback.UNEXPECTED_PACKET: "unexpected packet from the device",
    Feedback.CHECKSUM_ERROR: "checksum error",
    Feedback.SOCKET_ERROR: "socket error: the device could not be reached",
    Feedback.INVALID_INPUT: "invalid input",
}


def describe_feedback(value: int) -> str:
    """Say a feedback bitmap in words, e.g. 129 -> 'OK; input corrected within limits'."""
    if value == 0:
        return "waiting for the device"
    if value == Feedback.OK | Feedback.INVALID_INPUT:
        return "OK; input corrected within limits"
    words = [text for bit, text in FEEDBACK_WORDS.items() if value & bit]
    unknown = value & ~sum(FEEDBACK_WORDS)
    if unknown:
        words.append(f"unknown bits {unknown}")
    return "; ".join(words)


class Sec1000Error(AddonError):
    """Base of every error of the device and its protocol (each carries its feedback)."""

    feedback: Feedback = Feedback.UNKNOWN_ERROR


class GeneralError(Sec1000Error):
    """The operation could not be carried out (refused, busy, data processing)."""

    feedback = Feedback.GENERAL_ERROR


class DeviceTimeoutError(Sec1000Error):
    """The device did not answer in time."""

    feedback = Feedback.TIMEOUT


class UnexpectedPacketError(Sec1000Error):
    """Wrong length, wrong command echo or unknown status in an answer."""

    feedback = Feedback.UNEXPECTED_PACKET


class ShortAnswerError(UnexpectedPacketError):
    """The device answered with fewer data bytes than the command returns (N = 6 for 0x0B)."""


class ChecksumError(Sec1000Error):
    """The checksum of an answer does not match its bytes."""

    feedback = Feedback.CHECKSUM_ERROR


class SocketCause(StrEnum):
    """Why a connection failed, for words a user can act on."""

    REFUSED = "refused"  # the host answered, but nothing listens at the port
    LOOKUP = "lookup"  # the host name cannot be looked up (or is no name)
    UNREACHABLE = "unreachable"  # no route to the host, or the network is down
    CLOSED = "closed"  # connected, then closed without an answer
    OTHER = "other"


class DeviceSocketError(Sec1000Error):
    """The connection was refused, reset or the host is unreachable."""

    feedback = Feedback.SOCKET_ERROR

    def __init__(self, message: str, cause: SocketCause = SocketCause.OTHER) -> None:
        super().__init__(message)
        self.cause = cause


class InvalidInputError(Sec1000Error):
    """An input parameter is out of range or not a number; nothing was sent."""

    feedback = Feedback.INVALID_INPUT
