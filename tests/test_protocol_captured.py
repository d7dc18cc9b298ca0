"""Frames from real controllers and field clients, through the project's own parser and builders.

Each `tests/fixtures/captured/*.hex` file holds one frame and names its source on its first line
(repository, commit, path). The values asserted here are the ones that source prints beside
the bytes, never values made by our own encoder. Answers a source shows without their 5-byte
preamble get back the preamble seen in the GTEC captures; the parser does not read it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sec1000.device.telemetry import ZeroPowerFix
from sec1000.protocol import (
    ACK_OR_NAK,
    DATETIME_ACCEPTED,
    STATUS_DATA_LENGTH,
    TELEMETRY_DATA_LENGTH,
    ChecksumError,
    Command,
    ControlMode,
    PhaseMeasurement,
    Status,
    Switch,
    Telemetry,
    UnexpectedPacketError,
    build_response,
    decode_status,
    decode_telemetry,
    encode_telemetry,
    mode_sequence,
    mode_switch_request,
    parse_response,
    read_export_settings_request,
    read_telemetry_request,
    write_export_limit_request,
)

CAPTURED = Path(__file__).parent / "fixtures" / "captured"
SOURCE_LINE = re.compile(r"# source: [\w.-]+/[\w.-]+@[0-9a-f]{40}:\S+.* — \S")
# "\x04REVO": the first 5 bytes of both GTEC captures (the protocol document's preamble).
OBSERVED_PREAMBLE = bytes.fromhex("04 52 45 56 4F")

# The wire integers GTEC's README prints beside each capture ("Fields:").
GTEC_FIELDS = {
    "telemetry_answer": (2410, 2404, 2409, 480, 390, 508, 295, -114, -532, -351, 3386),
    "telemetry_answer_inverters_zero": (
        2390,
        2377,
        2381,
        2160,
        2726,
        2429,
        -5102,
        -6350,
        -5788,
        -17241,
        0,
    ),
}

SWITCH_REQUESTS = {
    "value_mode_on_request": (Command.MODE_VALUE, Switch.ON),
    "value_mode_off_request": (Command.MODE_VALUE, Switch.OFF),
    "dred_mode_on_request": (Command.MODE_DRED, Switch.ON),
    "dred_mode_off_request": (Command.MODE_DRED, Switch.OFF),
    "rcr_mode_on_request": (Command.MODE_RCR, Switch.ON),
    "rcr_mode_off_request": (Command.MODE_RCR, Switch.OFF),
}

# The order the field integration sends the switches in (set_export_limit_control_mode).
FIELD_MODE_ORDER = {
    ControlMode.VALUE: ("dred_mode_off_request", "rcr_mode_off_request", "value_mode_on_request"),
    ControlMode.RCR: ("value_mode_off_request", "dred_mode_off_request", "rcr_mode_on_request"),
    ControlMode.DRED: ("value_mode_off_request", "rcr_mode_off_request", "dred_mode_on_request"),
    ControlMode.DEACTIVATED: (
        "value_mode_off_request",
        "dred_mode_off_request",
        "rcr_mode_off_request",
    ),
}

STATUS_ANSWERS = {
    "write_limit_ack": (Command.WRITE_EXPORT_LIMIT, ACK_OR_NAK, Status.ACK),
    "write_limit_nak": (Command.WRITE_EXPORT_LIMIT, ACK_OR_NAK, Status.NAK),
    "value_mode_ack": (Command.MODE_VALUE, ACK_OR_NAK, Status.ACK),
    "value_mode_nak": (Command.MODE_VALUE, ACK_OR_NAK, Status.NAK),
    "dred_mode_ack": (Command.MODE_DRED, ACK_OR_NAK, Status.ACK),
    "dred_mode_nak": (Command.MODE_DRED, ACK_OR_NAK, Status.NAK),
    "rcr_mode_ack": (Command.MODE_RCR, ACK_OR_NAK, Status.ACK),
    "rcr_mode_nak": (Command.MODE_RCR, ACK_OR_NAK, Status.NAK),
    "set_time_ok": (Command.SET_DATETIME, DATETIME_ACCEPTED, Status.DATETIME_OK),
}

OTHER_FIXTURES = {
    "telemetry_request",
    "export_settings_request",
    "reconstructed_write_limit_request",
    "set_time_nak_unverified",
}


def frame_bytes(name: str) -> bytes:
    """The frame in a fixture: its hex lines, comment lines (`#`) left out."""
    lines = (CAPTURED / f"{name}.hex").read_text(encoding="utf-8").splitlines()
    return bytes.fromhex(" ".join(line for line in lines if not line.startswith("#")))


def captured_telemetry(name: str) -> Telemetry:
    """A captured 0x0B answer through the real parser and decoder."""
    frame = parse_response(frame_bytes(name), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH)
    return decode_telemetry(frame)


def test_every_fixture_names_its_source_and_is_used() -> None:
    files = sorted(CAPTURED.glob("*.hex"))
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert SOURCE_LINE.match(first), f"{path.name}: first line must be '# source: ...'"
        assert frame_bytes(path.stem), f"{path.name} holds no bytes"
    used = {*GTEC_FIELDS, *SWITCH_REQUESTS, *STATUS_ANSWERS, *OTHER_FIXTURES}
    assert {path.stem for path in files} == used


@pytest.mark.parametrize("name", sorted(GTEC_FIELDS))
def test_captured_telemetry_decodes_to_the_fields_its_source_prints(name: str) -> None:
    assert captured_telemetry(name).raw == GTEC_FIELDS[name]


def test_captured_telemetry_in_volts_amps_and_kilowatts() -> None:
    values = captured_telemetry("telemetry_answer").values()
    assert [values[key] for key in ("v1", "v2", "v3")] == [241.0, 240.4, 240.9]
    assert [values[key] for key in ("i1", "i2", "i3")] == [4.8, 3.9, 5.08]
    assert [values[key] for key in ("p1", "p2", "p3")] == [0.295, -0.114, -0.532]
    assert values["meters_power"] == -0.351
    assert values["inverters_power"] == 3.386
    # Derived (protocol document): load = inverters - meters = 3386 W + 351 W.
    assert values["load_power"] == 3.737


def test_captured_zero_inverters_answer_in_units() -> None:
    values = captured_telemetry("telemetry_answer_inverters_zero").values()
    assert [values[key] for key in ("v1", "v2", "v3")] == [239.0, 237.7, 238.1]
    assert [values[key] for key in ("i1", "i2", "i3")] == [21.6, 27.26, 24.29]
    assert [values[key] for key in ("p1", "p2", "p3")] == [-5.102, -6.35, -5.788]
    assert (values["meters_power"], values["inverters_power"]) == (-17.241, 0.0)


@pytest.mark.parametrize("name", sorted(GTEC_FIELDS))
def test_our_encoder_makes_the_captured_answer_byte_for_byte(name: str) -> None:
    # The simulator answers through build_response: same preamble, N = 49, checksum.
    assert build_response(Command.READ_TELEMETRY, encode_telemetry(GTEC_FIELDS[name])) == (
        frame_bytes(name)
    )


def test_power_scale_agrees_with_volts_times_amps() -> None:
    """Under ~22-27 A per phase, |P| / (V x I) is near 1: power is 1 W on the wire, V 0.1, A 0.01.

    GTEC first labelled power 0.001 W and corrected it to 1 W (commit c0a3e4d3); with either
    other scale this ratio would be off by a factor of 1000.
    """
    values = captured_telemetry("telemetry_answer_inverters_zero").values()
    for phase in "123":
        watts = abs(values[f"p{phase}"]) * 1000
        ratio = watts / (values[f"v{phase}"] * values[f"i{phase}"])
        assert 0.97 <= ratio <= 1.01, (phase, ratio)


@pytest.mark.parametrize(
    ("name", "gap_w"), [("telemetry_answer", 0), ("telemetry_answer_inverters_zero", 1)]
)
def test_meters_power_is_the_sum_of_the_phases_to_1_w(name: str, gap_w: int) -> None:
    # The document calls meters power the sum of the phases; one capture differs by 1 W.
    raw = captured_telemetry(name).raw
    assert abs(sum(raw[6:9]) - raw[9]) == gap_w


def test_captured_zero_inverters_answer_reads_the_last_non_zero_value() -> None:
    now = [0.0]
    fix = ZeroPowerFix(clock=lambda: now[0])
    zero = captured_telemetry("telemetry_answer_inverters_zero")
    assert fix.apply(zero).inverters_w == 0  # nothing seen yet: the 0 stays (as GTEC's fix does)
    fix.apply(captured_telemetry("telemetry_answer"))
    now[0] = 30.0
    fixed = fix.apply(zero)
    assert fixed.inverters_w == 3386
    assert fixed.values()["load_power"] == round((3386 + 17241) / 1000, 3)


@pytest.mark.parametrize("name", sorted(GTEC_FIELDS))
def test_any_corrupted_byte_of_a_captured_answer_is_a_checksum_error(name: str) -> None:
    raw = frame_bytes(name)
    for index in range(7, len(raw)):  # `01 01 0B`, the 44 data bytes, the checksum
        corrupted = bytearray(raw)
        corrupted[index] ^= 0x01
        with pytest.raises(ChecksumError):
            parse_response(bytes(corrupted), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH)


def test_captured_answer_cut_short_is_an_unexpected_packet() -> None:
    with pytest.raises(UnexpectedPacketError, match="announces 49 bytes but carries 48"):
        parse_response(
            frame_bytes("telemetry_answer")[:-1], Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
        )


def test_read_requests_are_the_captured_bytes() -> None:
    assert read_telemetry_request() == frame_bytes("telemetry_request")
    assert read_export_settings_request() == frame_bytes("export_settings_request")


@pytest.mark.parametrize("name", sorted(SWITCH_REQUESTS))
def test_mode_switch_requests_are_the_field_integration_bytes(name: str) -> None:
    assert mode_switch_request(*SWITCH_REQUESTS[name]) == frame_bytes(name)


@pytest.mark.parametrize("mode", list(FIELD_MODE_ORDER), ids=lambda mode: mode.option)
def test_selecting_a_mode_sends_the_field_integration_packets_in_its_order(
    mode: ControlMode,
) -> None:
    sent = [mode_switch_request(switch, state) for switch, state in mode_sequence(mode)]
    assert sent == [frame_bytes(name) for name in FIELD_MODE_ORDER[mode]]


def test_write_export_limit_request_matches_the_reconstructed_frame() -> None:
    # Checksum 0x013F: above one byte, so only a 16-bit sum gives these bytes.
    frame = write_export_limit_request(10_000, 3_000, PhaseMeasurement.PER_PHASE)
    assert frame == frame_bytes("reconstructed_write_limit_request")


@pytest.mark.parametrize("name", sorted(STATUS_ANSWERS))
def test_field_client_status_answers_decode(name: str) -> None:
    command, accepted, status = STATUS_ANSWERS[name]
    frame = parse_response(OBSERVED_PREAMBLE + frame_bytes(name), command, STATUS_DATA_LENGTH)
    assert decode_status(frame, accepted) is status


@pytest.mark.parametrize("name", sorted(STATUS_ANSWERS))
def test_our_status_answers_are_the_bytes_the_field_client_expects(name: str) -> None:
    # The field client compares the answer (after the preamble) by equality; so does a simulator.
    command, _, status = STATUS_ANSWERS[name]
    assert build_response(command, bytes((status,))) == OBSERVED_PREAMBLE + frame_bytes(name)


def test_unverified_set_time_nak_is_refused_for_its_checksum() -> None:
    # The field integration marks this answer unverified; 01+01+05+15 = 0x001C, not 0x0000.
    raw = OBSERVED_PREAMBLE + frame_bytes("set_time_nak_unverified")
    with pytest.raises(ChecksumError, match=r"checksum 0x0000 does not match the bytes \(0x001c\)"):
        parse_response(raw, Command.SET_DATETIME, STATUS_DATA_LENGTH)
