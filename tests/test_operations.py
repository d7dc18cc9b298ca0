"""Every operation against every simulator fault, over real sockets, with exact feedback bits."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Awaitable, Callable

import pytest
from sec1000.commands import BY_NAME, CommandName, Rule, SetExportLimit, parse_request
from sec1000.device.telemetry import ZeroPowerFix
from sec1000.operations import CommandResult, Operations, Origin
from sec1000.protocol import (
    Command,
    ControlMode,
    Feedback,
    InvalidInputError,
    PhaseMeasurement,
    Switch,
    Telemetry,
    mode_switch_request,
    read_export_settings_request,
    write_export_limit_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import FeedbackChanged

from tests.helpers.device import retune

PANEL = Origin("panel", "test")
OK, TIMEOUT, UNEXPECTED, CHECKSUM, SOCKET = 1, 8, 16, 32, 64

OPERATIONS: dict[str, tuple[CommandName, Callable[[Operations], Awaitable[CommandResult]]]] = {
    "export_enable": (CommandName.EXPORT_ENABLE, lambda ops: ops.export_enable(PANEL)),
    "export_disable": (CommandName.EXPORT_DISABLE, lambda ops: ops.export_disable(PANEL)),
    "set_export_limit": (
        CommandName.SET_EXPORT_LIMIT,
        lambda ops: ops.set_export_limit(4.25, PANEL),
    ),
    "get_export_limit": (CommandName.GET_EXPORT_LIMIT, lambda ops: ops.get_export_limit(PANEL)),
    "set_datetime": (CommandName.SET_DATETIME, lambda ops: ops.set_datetime(PANEL)),
    "read_telemetry": (CommandName.GET_TELEMETRY_DATA, lambda ops: ops.get_telemetry_data(PANEL)),
    "set_control_mode": (
        CommandName.SET_CONTROL_MODE,
        lambda ops: ops.set_control_mode("dred", True, PANEL),
    ),
}
READS = {"get_export_limit", "read_telemetry"}
WRITES = {"export_enable", "export_disable", "set_export_limit", "set_control_mode"}
GENERAL = 2

# fault -> expected feedback for each operation (None: the same for every operation)
EXPECTED: dict[str, dict[str, int]] = {
    # Every limiter write ends with a 0x43 read-back: a short answer to it is not a confirmation.
    "short_answer": {op: UNEXPECTED if op in READS | WRITES else OK for op in OPERATIONS},
    "zero_inverters": dict.fromkeys(OPERATIONS, OK),
    "bad_checksum": dict.fromkeys(OPERATIONS, CHECKSUM),
    "wrong_echo": dict.fromkeys(OPERATIONS, UNEXPECTED),
    # The simulator takes nothing it answers NAK to: the read-back shows it (written twice).
    "nak": {
        op: UNEXPECTED if op == "set_datetime" else GENERAL if op in WRITES else OK
        for op in OPERATIONS
    },
    "silence": dict.fromkeys(OPERATIONS, TIMEOUT),
    "reset": dict.fromkeys(OPERATIONS, SOCKET),
    "slow": dict.fromkeys(OPERATIONS, TIMEOUT),
    "split": dict.fromkeys(OPERATIONS, OK),
}
CASES = [(fault, op) for fault in EXPECTED for op in OPERATIONS]


@pytest.mark.parametrize(("fault", "operation"), CASES, ids=[f"{f}-{o}" for f, o in CASES])
async def test_fault_gives_exact_feedback_and_nothing_stays_waiting(
    runtime: Runtime, simulator: SimulatorServer, fault: str, operation: str
) -> None:
    runtime.state.settings_read(export_limit_kw=5.0)  # set_control_mode rewrites the known limit
    simulator.set_fault(fault)
    name, call = OPERATIONS[operation]
    result = await call(runtime.ops)
    assert result.feedback == EXPECTED[fault][operation], result.message
    assert runtime.state.feedback[name] == result.feedback  # never stuck at 0 (waiting)
    assert result.message
    assert runtime.state.commands[-1].feedback == result.feedback


async def test_slow_answer_within_the_timeout_is_ok(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    retune(runtime.link, timeout=3)
    simulator.set_fault("slow", count=1)
    result = await runtime.ops.get_export_limit(PANEL)
    assert result.feedback == OK


async def test_overload_answers_garbage_then_silence_until_power_cycled(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("overload")
    retune(runtime.link, gap=0.02)  # closer than the simulator's 0.2 s overload threshold
    first = await runtime.ops.export_enable(PANEL)
    assert first.feedback == UNEXPECTED  # garbage answer to the second packet
    second = await runtime.ops.get_export_limit(PANEL)
    assert second.feedback == TIMEOUT  # silent until power-cycled
    simulator.power_cycle()
    retune(runtime.link, gap=0.3)
    await asyncio.sleep(0.3)
    third = await runtime.ops.export_enable(PANEL)
    assert third.feedback == OK, third.message


async def test_export_enable_sends_the_limit_then_the_mode_switches(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    result = await runtime.ops.export_enable(PANEL)
    assert result.feedback == OK
    assert simulator.requests() == [
        write_export_limit_request(10_000, 8_000, PhaseMeasurement.SUM_OF_PHASES),
        mode_switch_request(Command.MODE_DRED, Switch.OFF),
        mode_switch_request(Command.MODE_RCR, Switch.OFF),
        mode_switch_request(Command.MODE_VALUE, Switch.ON),
        read_export_settings_request(),
    ]
    assert simulator.device.export_limit_w == 8_000
    assert runtime.state.export_state == "on"
    assert "confirmed by read-back" in result.message


async def test_export_disable_writes_the_minimum_and_state_turns_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await runtime.ops.export_disable(PANEL)
    assert simulator.device.export_limit_w == 0
    assert runtime.state.export_state == "off"


async def test_export_toggle_reads_then_flips(runtime: Runtime, simulator: SimulatorServer) -> None:
    simulator.device.export_limit_w = 0
    result = await runtime.ops.export_toggle(PANEL)
    assert result.command == "export_enable" and result.feedback == OK
    assert simulator.device.export_limit_w == 8_000
    result = await runtime.ops.export_toggle(PANEL)
    assert result.command == "export_disable"
    assert simulator.device.export_limit_w == 0


@pytest.mark.parametrize(
    "value", ["abc", math.nan, math.inf, -math.inf, -0.5, 100.01, 1e9, None, True, [], {}]
)
async def test_invalid_limit_sends_nothing_and_gives_128(
    runtime: Runtime, simulator: SimulatorServer, value: object
) -> None:
    result = await runtime.ops.set_export_limit(value, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT
    assert runtime.state.feedback[CommandName.SET_EXPORT_LIMIT] == 128
    assert simulator.requests() == []


@pytest.mark.parametrize("value", [55, "8.01", "35", 100])
async def test_a_limit_above_the_maximum_is_refused_in_words_and_sends_nothing(
    runtime: Runtime, simulator: SimulatorServer, value: object
) -> None:
    """Never clamped: a user who typed 35 for 3,5 must not get full export (max 8 kW here)."""
    result = await runtime.ops.set_export_limit(value, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT and not result.ok
    assert "above the maximum export limit of 8 kW" in result.message
    assert simulator.requests() == []


@pytest.mark.parametrize(
    ("value", "rule", "bound"),
    [
        ("abc", Rule.NOT_A_NUMBER, None),
        (" ", Rule.EMPTY, None),
        ("1e3", Rule.EXPONENT, None),
        ("-1", Rule.BELOW_MINIMUM, 0.0),
        ("12", Rule.ABOVE_MAXIMUM, 8.0),
        ("150", Rule.ABOVE_MAXIMUM, 8.0),  # the user's maximum, not the device's 100 kW
    ],
)
async def test_a_refused_limit_records_the_rule_it_broke(
    runtime: Runtime, simulator: SimulatorServer, value: str, rule: Rule, bound: float | None
) -> None:
    result = await runtime.ops.set_export_limit(value, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT
    refusal = runtime.state.commands[-1].refusal
    assert refusal is not None
    assert (refusal.rule, refusal.typed, refusal.bound) == (rule, value.strip(), bound)
    assert simulator.requests() == []


async def test_the_maximum_itself_and_a_decimal_comma_are_taken(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await runtime.ops.set_export_limit("8", PANEL)).feedback == OK
    assert simulator.device.export_limit_w == 8_000
    assert (await runtime.ops.set_export_limit("3,5", PANEL)).feedback == OK
    assert simulator.device.export_limit_w == 3_500


async def test_a_limit_rounded_to_10_watt_steps_gives_129_and_says_so(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    result = await runtime.ops.set_export_limit("3.456", PANEL)
    assert result.feedback == 129 and result.ok
    assert "rounded to 3.46 kW" in result.message
    assert simulator.device.export_limit_w == 3_460


def limit_of(value: object) -> SetExportLimit:
    return parse_request(BY_NAME["set_export_limit"], {"limit": value})  # type: ignore[return-value]


def test_limit_parameter_bounds_and_steps() -> None:
    assert limit_of(0).limit_kw == 0.0
    assert limit_of(100).limit_kw == 100.0
    assert limit_of("7,5") == SetExportLimit(7.5, "7,5", rounded=False)
    assert limit_of("3.456") == SetExportLimit(3.46, "3.456", rounded=True)
    with pytest.raises(InvalidInputError):
        limit_of(100.001)


async def test_get_export_limit_teaches_the_state(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.export_limit_w = 1_230
    simulator.device.total_capacity_w = 9_990
    result = await runtime.ops.get_export_limit(PANEL)
    assert result.feedback == OK
    assert runtime.state.export_limit_kw == 1.23
    assert runtime.state.total_capacity_kw == 9.99
    assert runtime.state.control_mode is ControlMode.VALUE
    assert simulator.requests() == [read_export_settings_request()]


async def test_set_control_mode_selects_dred_and_per_phase(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    result = await runtime.ops.set_control_mode("dred", False, PANEL)
    assert result.feedback == OK, result.message
    assert simulator.device.mode is ControlMode.DRED
    assert simulator.device.phase is PhaseMeasurement.PER_PHASE
    assert runtime.ops.options.export_limit_control_mode == "dred"


async def test_set_control_mode_deactivated_turns_every_switch_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await runtime.ops.set_control_mode("deactivated", None, PANEL)
    assert simulator.device.mode is ControlMode.DEACTIVATED
    assert not any(simulator.device.switches.values())


@pytest.mark.parametrize(("mode", "phase_sum"), [("turbo", None), (3, None), ("value", "yes")])
async def test_set_control_mode_rejects_bad_input(
    runtime: Runtime, simulator: SimulatorServer, mode: object, phase_sum: object
) -> None:
    result = await runtime.ops.set_control_mode(mode, phase_sum, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT
    assert simulator.requests() == []


async def test_set_datetime_sets_the_simulated_clock(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.clock_offset = -86_400
    result = await runtime.ops.set_datetime(PANEL)
    assert result.feedback == OK
    assert abs(simulator.device.clock_offset) < 2


async def test_zero_inverters_power_is_replaced_by_the_last_real_value(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await runtime.ops.get_telemetry_data(PANEL)
    real = runtime.state.telemetry
    assert real is not None and real["inverters_power"] > 0
    simulator.set_fault("zero_inverters")
    await runtime.ops.get_telemetry_data(PANEL)
    fixed = runtime.state.telemetry
    assert fixed is not None
    assert fixed["inverters_power"] == real["inverters_power"]
    assert fixed["load_power"] == round(fixed["inverters_power"] - fixed["meters_power"], 3)


def test_zero_fix_forgets_values_older_than_60_s() -> None:
    now = [0.0]
    fix = ZeroPowerFix(clock=lambda: now[0])
    producing = Telemetry(raw=(0,) * 10 + (1500,))
    zero = Telemetry(raw=(0,) * 10 + (0,))
    fix.apply(producing)
    now[0] = 30
    assert fix.apply(zero).inverters_w == 1500
    now[0] = 61
    assert fix.apply(zero).inverters_w == 0


async def test_telemetry_becomes_unavailable_after_three_failures(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    await runtime.ops.get_telemetry_data()
    assert runtime.state.telemetry_available
    simulator.set_fault("reset")
    for _ in range(2):
        await runtime.ops.get_telemetry_data()
    assert runtime.state.telemetry_available
    await runtime.ops.get_telemetry_data()
    assert not runtime.state.telemetry_available
    simulator.clear_faults()
    await runtime.ops.get_telemetry_data()
    assert runtime.state.telemetry_available


async def test_poll_results_are_not_logged_as_commands(runtime: Runtime) -> None:
    await runtime.ops.get_telemetry_data()
    assert list(runtime.state.commands) == []
    assert runtime.state.feedback[CommandName.GET_TELEMETRY_DATA] == OK


@pytest.mark.parametrize(
    ("command", "limit", "feedback"),
    [
        ("export_enable", None, OK),
        ("set_export_limit", "2.5", OK),
        ("set_export_limit", "x", 128),
        ("launch_rockets", None, 128),
        (None, None, 128),
        (42, None, 128),
        ("set_control_mode", "rcr", OK),
    ],
)
async def test_run_by_name(runtime: Runtime, command: object, limit: object, feedback: int) -> None:
    result = await runtime.ops.run(command, {"limit": limit}, PANEL, request_id="r1")
    assert result.feedback == feedback
    assert result.request_id == "r1"
    assert runtime.state.commands[-1].request_id == "r1"


async def test_a_nak_the_controller_acted_on_is_ok_and_said(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.export_limit_w = 8_000  # it already holds what a NAK'd write asks
    simulator.set_fault("nak")
    result = await runtime.ops.export_enable(PANEL)
    assert result.feedback == OK, result.message
    assert "NAK to 4 packets" in result.message


async def test_a_nak_the_controller_did_not_act_on_is_an_error_in_words(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.set_fault("nak")
    result = await runtime.ops.export_enable(PANEL)
    assert result.feedback == GENERAL
    assert "the controller holds 5.00 kW in mode value, not 8.00 kW in mode value" in result.message
    assert "written 2 times" in result.message


async def test_state_events_show_waiting_then_result(runtime: Runtime) -> None:
    seen: list[int] = []
    runtime.state.subscribe(
        lambda event: (
            seen.append(event.feedback)
            if isinstance(event, FeedbackChanged) and event.operation == "get_export_limit"
            else None
        )
    )
    await runtime.ops.get_export_limit(PANEL)
    assert seen == [0, 1]


def test_short_answer_fault_is_n_6() -> None:
    from sec1000.protocol import build_response

    assert struct.unpack(">H", build_response(0x0B, b"\x00")[5:7])[0] == 6


@pytest.mark.parametrize("text", ["1_0", "2_5", "\u0663", "\uff15", "\U0001d7d3"])
async def test_odd_digits_in_a_command_send_nothing(
    runtime: Runtime, simulator: SimulatorServer, text: str
) -> None:
    result = await runtime.ops.set_export_limit(text, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT
    assert simulator.requests() == []
