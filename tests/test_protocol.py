"""The pure protocol: exact bytes of every documented frame, and typed errors for bad ones."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.protocol import (
    ACK_OR_NAK,
    DATETIME_ACCEPTED,
    EXPORT_SETTINGS_DATA_LENGTH,
    TELEMETRY_DATA_LENGTH,
    ChecksumError,
    Command,
    ControlMode,
    Feedback,
    InvalidInputError,
    PhaseMeasurement,
    Sec1000Error,
    ShortAnswerError,
    Status,
    Switch,
    UnexpectedPacketError,
    build_response,
    decode_export_settings,
    decode_status,
    decode_telemetry,
    describe_feedback,
    encode_telemetry,
    mode_sequence,
    mode_switch_request,
    parse_response,
    read_export_settings_request,
    read_telemetry_request,
    set_datetime_request,
    write_export_limit_request,
)
from sec1000.protocol.frames import checksum


def test_read_telemetry_request_is_the_documented_bytes() -> None:
    assert read_telemetry_request() == bytes.fromhex("00 05 01 01 0B 00 0D")


def test_read_export_settings_request_is_the_documented_bytes() -> None:
    assert read_export_settings_request() == bytes.fromhex("00 05 01 01 43 00 45")


def test_value_mode_on_is_the_documented_bytes() -> None:
    assert mode_switch_request(Command.MODE_VALUE, Switch.ON) == bytes.fromhex(
        "00 06 01 01 40 01 00 43"
    )


def test_mode_switch_off_sends_02() -> None:
    assert mode_switch_request(Command.MODE_RCR, Switch.OFF) == bytes.fromhex(
        "00 06 01 01 28 02 00 2C"
    )


def test_write_export_limit_request_layout() -> None:
    frame = write_export_limit_request(10_000, 5_000, PhaseMeasurement.SUM_OF_PHASES)
    body = bytes.fromhex("01 01 42") + struct.pack(">iiB", 10_000, 5_000, 2)
    assert frame == struct.pack(">H", 14) + body + struct.pack(">H", sum(body))
    assert frame[:2] == b"\x00\x0e"  # N = 14


def test_set_datetime_request_layout() -> None:
    frame = set_datetime_request(dt.datetime(2026, 11, 25, 13, 4, 59))
    assert frame == bytes.fromhex("00 0C 01 01 05 1A 0B 00 19 0D 04 3B") + struct.pack(
        ">H", sum(bytes.fromhex("01 01 05 1A 0B 00 19 0D 04 3B"))
    )


@pytest.mark.parametrize(("capacity", "limit"), [(-1, 0), (0, -5), (2**31, 0), (1.5, 0), (True, 0)])
def test_write_export_limit_refuses_values_that_do_not_fit(capacity: object, limit: object) -> None:
    with pytest.raises(InvalidInputError):
        write_export_limit_request(capacity, limit, PhaseMeasurement.PER_PHASE)  # type: ignore[arg-type]


def test_checksum_wraps_at_16_bits() -> None:
    assert checksum(b"\xff" * 300) == (255 * 300) % 65536


def test_the_documents_plant_example_round_trips_through_the_codec_in_kilowatts() -> None:
    # The protocol document gives these decoded values of a real plant (L1 0.025, L2 -0.048,
    # L3 -0.028, meters -0.051, inverters 0.444, load 0.495 kW), not its bytes: this checks our
    # own encoder and decoder agree on units. Real captured frames: test_protocol_captured.py.
    raw = (2301, 2295, 2310, 11, 21, 12, 25, -48, -28, -51, 444)
    frame = parse_response(
        build_response(0x0B, encode_telemetry(raw)), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
    )
    values = decode_telemetry(frame).values()
    assert values["p1"] == 0.025 and values["p2"] == -0.048 and values["p3"] == -0.028
    assert values["meters_power"] == -0.051
    assert values["inverters_power"] == 0.444
    assert values["load_power"] == 0.495
    assert values["v1"] == 230.1 and values["i2"] == 0.21


def test_telemetry_response_is_49_bytes_after_the_length() -> None:
    response = build_response(0x0B, encode_telemetry(tuple(range(11))))
    assert response[:5] == b"\x04REVO"
    assert struct.unpack(">H", response[5:7])[0] == 49


def test_short_telemetry_answer_raises_short_answer() -> None:
    response = build_response(0x0B, b"\x00")  # N = 6
    assert response[5:7] == b"\x00\x06"
    with pytest.raises(ShortAnswerError) as caught:
        parse_response(response, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH)
    assert caught.value.feedback == Feedback.UNEXPECTED_PACKET


def test_corrupted_checksum_raises_checksum_error() -> None:
    response = bytearray(build_response(0x43, bytes(13)))
    response[-1] ^= 0x01
    with pytest.raises(ChecksumError) as caught:
        parse_response(bytes(response), Command.READ_EXPORT_SETTINGS, EXPORT_SETTINGS_DATA_LENGTH)
    assert caught.value.feedback == Feedback.CHECKSUM_ERROR


def test_wrong_command_echo_is_an_unexpected_packet() -> None:
    with pytest.raises(UnexpectedPacketError, match="echoes command 0x0b"):
        parse_response(build_response(0x0B, bytes(44)), Command.READ_EXPORT_SETTINGS)


def test_preamble_content_is_not_relied_on() -> None:
    response = build_response(0x42, b"\x06", preamble=b"XXXXX")
    assert parse_response(response, Command.WRITE_EXPORT_LIMIT, 1).data == b"\x06"


def test_export_settings_decode() -> None:
    data = struct.pack(">Biii", 3, 12_000, 40, 4_500)
    frame = parse_response(build_response(0x43, data), Command.READ_EXPORT_SETTINGS, 13)
    settings = decode_export_settings(frame)
    assert settings.mode is ControlMode.VALUE
    assert (settings.total_capacity_w, settings.ct_ratio, settings.export_limit_w) == (
        12_000,
        40,
        4_500,
    )


def test_unknown_mode_byte_is_an_unexpected_packet() -> None:
    frame = parse_response(
        build_response(0x43, struct.pack(">Biii", 9, 0, 0, 0)), Command.READ_EXPORT_SETTINGS, 13
    )
    with pytest.raises(UnexpectedPacketError, match="control mode"):
        decode_export_settings(frame)


@pytest.mark.parametrize(("byte", "status"), [(0x06, Status.ACK), (0x15, Status.NAK)])
def test_ack_and_nak_are_both_accepted(byte: int, status: Status) -> None:
    frame = parse_response(build_response(0x40, bytes((byte,))), Command.MODE_VALUE, 1)
    assert decode_status(frame, ACK_OR_NAK) is status


def test_other_status_is_an_unexpected_packet() -> None:
    frame = parse_response(build_response(0x40, b"\x03"), Command.MODE_VALUE, 1)
    with pytest.raises(UnexpectedPacketError, match="status 0x03"):
        decode_status(frame, ACK_OR_NAK)


def test_datetime_success_status_is_03() -> None:
    frame = parse_response(build_response(0x05, b"\x03"), Command.SET_DATETIME, 1)
    assert decode_status(frame, DATETIME_ACCEPTED) is Status.DATETIME_OK
    with pytest.raises(UnexpectedPacketError):
        decode_status(
            parse_response(build_response(0x05, b"\x06"), Command.SET_DATETIME, 1),
            DATETIME_ACCEPTED,
        )


def test_mode_sequence_turns_the_others_off_then_the_chosen_on() -> None:
    assert mode_sequence(ControlMode.DRED) == [
        (Command.MODE_VALUE, Switch.OFF),
        (Command.MODE_RCR, Switch.OFF),
        (Command.MODE_DRED, Switch.ON),
    ]
    assert [pos for _, pos in mode_sequence(ControlMode.DEACTIVATED)] == [Switch.OFF] * 3


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "waiting for the device"),
        (1, "OK"),
        (129, "OK; input corrected within limits"),
        (8, "timeout: the device did not answer in time"),
        (2 | 16, "general error; unexpected packet from the device"),
    ],
)
def test_feedback_in_words(value: int, words: str) -> None:
    assert describe_feedback(value) == words


EXPECTED_LENGTHS = {
    Command.READ_TELEMETRY: TELEMETRY_DATA_LENGTH,
    Command.READ_EXPORT_SETTINGS: EXPORT_SETTINGS_DATA_LENGTH,
    Command.WRITE_EXPORT_LIMIT: 1,
    Command.MODE_VALUE: 1,
    Command.SET_DATETIME: 1,
}


@given(raw=st.binary(max_size=80), command=st.sampled_from(list(EXPECTED_LENGTHS)))
def test_any_bytes_give_a_frame_or_a_typed_error(raw: bytes, command: Command) -> None:
    try:
        frame = parse_response(raw, command, EXPECTED_LENGTHS[command])
    except Sec1000Error as err:
        assert err.feedback in (Feedback.UNEXPECTED_PACKET, Feedback.CHECKSUM_ERROR)
    else:
        assert len(frame.data) == EXPECTED_LENGTHS[command]


@given(data=st.binary(min_size=0, max_size=60), command=st.sampled_from(list(EXPECTED_LENGTHS)))
def test_well_framed_answers_of_any_content_decode_or_raise_typed(
    data: bytes, command: Command
) -> None:
    """Valid framing with arbitrary data: every decoder returns a value or a typed error."""
    try:
        frame = parse_response(build_response(command, data), command, EXPECTED_LENGTHS[command])
        if command == Command.READ_TELEMETRY:
            assert len(decode_telemetry(frame).values()) == 12
        elif command == Command.READ_EXPORT_SETTINGS:
            assert isinstance(decode_export_settings(frame).mode, ControlMode)
        elif command == Command.SET_DATETIME:
            assert decode_status(frame, DATETIME_ACCEPTED) is Status.DATETIME_OK
        else:
            assert decode_status(frame, ACK_OR_NAK) in (Status.ACK, Status.NAK)
    except (UnexpectedPacketError, ChecksumError):
        pass


@given(raw=st.tuples(*[st.integers(-(2**31), 2**31 - 1)] * 11))
def test_telemetry_round_trips_and_load_is_inverters_minus_meters(raw: tuple[int, ...]) -> None:
    telemetry = decode_telemetry(
        parse_response(build_response(0x0B, encode_telemetry(raw)), Command.READ_TELEMETRY, 44)
    )
    assert telemetry.raw == raw
    values = telemetry.values()
    assert values["load_power"] == round((raw[10] - raw[9]) * 0.001, 3)
