"""The hardening issue: what a hostile user, network or controller did, and the limiter kept."""

from __future__ import annotations

import asyncio
import math
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec1000.commands import CommandName
from sec1000.common.numbers import NumberError, parse_number
from sec1000.device.link import DeviceLink, LinkSettings
from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore, WatchdogTimings
from sec1000.operations import CommandResult, Origin
from sec1000.options import Options, OptionsError
from sec1000.protocol import (
    TELEMETRY_DATA_LENGTH,
    Command,
    ControlMode,
    DeviceSocketError,
    Feedback,
    read_telemetry_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import StateModel

from tests.conftest import eventually, hold, reset_in_its_window, short_watchdog

PANEL = Origin("panel", "test")
# Hosts the old check let through but the address lookup rejects (UnicodeError, ValueError).
LOOKUP_BREAKERS = ("192.168.1..200", "a" * 64 + ".lan", "host\x00name")


@pytest.fixture
def watchdog_timings() -> WatchdogTimings:
    return short_watchdog(restore_budget=1.5)


# -- 1. hosts the lookup rejects


@pytest.mark.parametrize("host", LOOKUP_BREAKERS)
def test_hosts_the_lookup_rejects_fail_validation(host: str) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({"host": host})
    assert "host name" in caught.value.errors["host"]


@pytest.mark.parametrize("host", ["192.168.1.200", "fd00::1", "sec1000.lan", "SEC-1000"])
def test_good_hosts_pass_validation(host: str) -> None:
    assert Options.from_mapping({"host": host}).host == host


@pytest.mark.parametrize("host", LOOKUP_BREAKERS)
async def test_an_address_the_lookup_rejects_is_a_socket_error_counted_in_health(
    host: str,
) -> None:
    link = DeviceLink(LinkSettings(host, 1234, 0, 1))

    async def read(session: object) -> None:
        await link_session_read(session)

    with pytest.raises(DeviceSocketError) as caught:
        await hold(link, read)
    assert caught.value.feedback == Feedback.SOCKET_ERROR
    assert link.health.consecutive_failures == 1
    assert link.health.counters == {"socket_error": 1}


async def link_session_read(session: object) -> None:
    await session.exchange(  # type: ignore[attr-defined]
        read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
    )


async def test_the_restore_goes_to_the_controller_it_switched_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    record = await asyncio.to_thread(RestoreStore(runtime.data_dir).load)
    assert record is not None and record.target == ("127.0.0.1", simulator.port)
    # The options change underneath (as if saved while the limiter is off): the restore does not
    # follow them; it goes back to the controller that was switched off.
    runtime._use(Options.from_mapping({"port": 1}, base=runtime.options))
    result = await task
    assert result.feedback == Feedback.OK, result.message
    assert simulator.device.mode is ControlMode.VALUE


async def test_connection_changes_are_refused_while_a_restore_is_pending(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    with pytest.raises(OptionsError) as caught:
        await runtime.apply_options(Options.from_mapping({"port": 1}, base=runtime.options))
    assert "restore" in caught.value.errors["port"]
    assert runtime.options.port == simulator.port
    await runtime.apply_options(Options.from_mapping({"scan_interval": 60}, base=runtime.options))
    assert (await task).feedback == Feedback.OK
    await runtime.apply_options(Options.from_mapping({"port": 1}, base=runtime.options))
    assert runtime.options.port == 1


# -- 2. background tasks survive anything


async def test_the_poll_loop_survives_any_exception(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = runtime.ops.get_telemetry_data

    async def flaky(*args: object, **kwargs: object) -> CommandResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug nobody expected")
        return await original()

    monkeypatch.setattr(runtime.ops, "get_telemetry_data", flaky)
    monkeypatch.setattr("sec1000.runtime.LOOP_ERROR_PAUSE", 0.01)
    runtime.options = Options.from_mapping({"scan_interval": 1}, base=runtime.options)
    await runtime.start()
    runtime._wake.set()
    await eventually(lambda: runtime.state.telemetry is not None, what="a read after the bug")
    await runtime.stop()
    assert calls >= 2


async def test_a_guard_check_that_fails_is_no_failed_telemetry_read(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the telemetry step counts as a read: three guard bugs must not make the values
    unavailable; three failed telemetry steps do."""
    monkeypatch.setattr("sec1000.runtime.LOOP_ERROR_PAUSE", 0)
    await runtime.ops.get_telemetry_data()

    async def bug() -> None:
        raise RuntimeError("a bug nobody expected")

    for _ in range(3):
        await runtime._guarded(bug(), "checking the export settings")
    assert runtime.state.telemetry_available and runtime.state.telemetry_failures == 0
    for _ in range(3):
        await runtime._guarded(bug(), "reading telemetry", telemetry=True)
    assert not runtime.state.telemetry_available


async def test_a_reset_is_refused_after_lookup_failures(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.link.configure(LinkSettings("a" * 64 + ".lan", 1234, 0, 1))
    poll = await runtime.ops.get_telemetry_data()
    assert poll.feedback == Feedback.SOCKET_ERROR
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.GENERAL_ERROR
    assert "last exchange with the device failed" in result.message
    assert simulator.requests() == []


# -- 3. an absurd limit never wedges the restore


async def test_an_absurd_limit_read_back_restores_the_options_maximum(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    simulator.device.export_limit_w = 2**31 - 1
    result = await runtime.ops.reset_export_watchdog(PANEL)
    assert result.feedback == Feedback.OK, result.message
    assert simulator.device.export_limit_w == 8_000  # max 8 kW, capacity 10 kW
    assert simulator.device.mode is ControlMode.VALUE


async def test_a_recorded_absurd_limit_is_restored_as_the_maximum_at_start(
    simulator: SimulatorServer, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(RestoreStore(data).save, RestoreRecord("value", 2**31 - 1, True, 0.0))
    runtime = Runtime(make_options(max_export_limit=9.5, total_capacity=10.5), data)
    assert await runtime.watchdog.resume_pending()
    assert simulator.device.export_limit_w == 9_500  # the options' maximum
    assert not (data / RECORD_NAME).exists()


async def test_a_record_that_can_never_be_written_is_retired_with_a_message(
    runtime: Runtime, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sec1000.protocol import InvalidInputError

    def impossible(record: RestoreRecord) -> object:
        raise InvalidInputError("export limit must be a whole number of watts")

    record = RestoreRecord("value", 3_000, True, 0.0)
    await asyncio.to_thread(RestoreStore(runtime.data_dir).save, record)
    await asyncio.to_thread(runtime.restore_store.load)  # as a start would find it
    monkeypatch.setattr(runtime.watchdog, "_restore_write", impossible)
    assert await runtime.watchdog.resume_pending()
    assert not runtime.state.restore_pending
    assert runtime.state.restore_retired and "retired" in runtime.state.restore_retired
    assert not (runtime.data_dir / RECORD_NAME).exists()


# -- 4. export commands wait for the restore, and the newest is what it writes


async def test_writes_asked_for_in_the_window_wait_and_the_newest_is_the_restore(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    task = await reset_in_its_window(runtime, simulator)
    older = asyncio.create_task(runtime.ops.export_disable(PANEL))
    newest = asyncio.create_task(runtime.ops.set_export_limit(3, Origin("policy")))
    await asyncio.sleep(0.05)
    assert not older.done() and not newest.done()  # they wait for the restore, not refused
    assert (await task).ok
    result = await newest
    assert result.ok and "3.00 kW" in result.message
    replaced = await older
    assert replaced.feedback == Feedback.GENERAL_ERROR and "replaced it" in replaced.message
    assert simulator.device.export_limit_w == 3_000
    assert simulator.device.mode is ControlMode.VALUE
    limit_writes = [r for r in simulator.requests() if r[4] == Command.WRITE_EXPORT_LIMIT]
    assert len(limit_writes) == 1  # the restore wrote the new limit: no second write after it
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 3_000


# -- 8. numbers


@pytest.mark.parametrize(
    "text",
    ["1_0", "2_5", "\u0663", "\uff15", "\U0001d7d3", "1e3", "0x10", "inf", "nan", "1.2.3", "", " "],
)
def test_only_plain_ascii_numbers_are_numbers(text: str) -> None:
    with pytest.raises(NumberError):
        parse_number(text)


@pytest.mark.parametrize(
    ("text", "value"), [(" 2,5 ", 2.5), ("-3", -3.0), ("+.5", 0.5), ("10.", 10.0)]
)
def test_plain_numbers_parse(text: str, value: float) -> None:
    assert parse_number(text) == value


@given(st.text(max_size=12))
def test_any_text_is_a_plain_number_or_a_clear_error(text: str) -> None:
    plain = text.strip(" \t\r\n")
    allowed = set(string.digits + "+-.,")
    try:
        value = parse_number(text)
    except NumberError as err:
        assert "must be a number" in str(err)
    else:
        assert set(plain) <= allowed and math.isfinite(value)


@pytest.mark.parametrize("text", ["1_0", "2_5", "\u0663", "\uff15", "\U0001d7d3"])
async def test_odd_digits_in_a_command_send_nothing(
    runtime: Runtime, simulator: SimulatorServer, text: str
) -> None:
    result = await runtime.ops.set_export_limit(text, PANEL)
    assert result.feedback == Feedback.INVALID_INPUT
    assert simulator.requests() == []


@pytest.mark.parametrize(
    ("key", "text"), [("port", "1e3"), ("max_export_limit", "\uff15"), ("scan_interval", "3_0")]
)
def test_odd_numbers_in_options_are_field_errors(key: str, text: str) -> None:
    with pytest.raises(OptionsError) as caught:
        Options.from_mapping({key: text})
    assert "must be a number" in caught.value.errors[key]


# -- 12-15. the old integration's details


def test_feedback_sensors_start_at_1() -> None:
    state = StateModel()
    assert set(state.feedback.values()) == {int(Feedback.OK)}


async def test_polls_change_their_feedback_only_when_the_result_changes(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    seen: list[int] = []
    runtime.state.subscribe(
        lambda e: (
            seen.append(e.data["feedback"])
            if e.topic == "feedback" and e.data["operation"] == "get_telemetry_data"
            else None
        )
    )
    for _ in range(3):
        await runtime.ops.get_telemetry_data()
    assert seen == [1]  # its words are set once; the value never leaves 1, never passes 0
    simulator.set_fault("silence")
    runtime.link.configure(LinkSettings("127.0.0.1", simulator.port, 0, 0.2))
    await runtime.ops.get_telemetry_data()
    await runtime.ops.get_telemetry_data()
    assert seen == [1, int(Feedback.TIMEOUT)]


@pytest.mark.parametrize(
    ("limit", "export"), [(5.0, "off"), (5.009, "off"), (5.01, "on"), (4.0, "off"), (8.0, "on")]
)
def test_export_state_is_off_below_the_minimum_plus_10_watts(limit: float, export: str) -> None:
    state = StateModel(min_export_limit_kw=5.0)
    state.settings_read(export_limit_kw=limit)
    assert state.export_state == export


def test_the_datetime_feedback_keeps_its_old_name() -> None:
    from sec1000.ha.entities import FEEDBACK_SENSORS

    sensor = FEEDBACK_SENSORS[CommandName.SET_DATETIME]
    assert sensor.name == "SEC1000 Set Date and Time - Feedback"
    assert sensor.entity_id == "sensor.sec1000_set_datetime_feedback"


async def test_a_reset_asked_for_during_a_stop_turns_nothing_off(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    release = asyncio.Event()

    async def busy(session: object) -> None:
        await release.wait()

    holder = asyncio.create_task(hold(runtime.link, busy))  # the reset has to wait its turn
    await asyncio.sleep(0)
    runtime.state.settings_read(export_limit_kw=5.0)
    reset = asyncio.create_task(runtime.ops.reset_export_watchdog(PANEL))
    await asyncio.sleep(0.05)
    await runtime.watchdog.shutdown(grace=1)  # SIGTERM while the reset is queued
    release.set()
    await holder
    result = await reset
    assert result.feedback == Feedback.GENERAL_ERROR and "stopping" in result.message
    assert simulator.requests() == [] and simulator.device.mode is ControlMode.VALUE
    refused = await runtime.ops.reset_export_watchdog(PANEL)
    assert "stopping" in refused.message


# -- found in review


async def test_a_stop_in_the_window_of_a_second_reset_still_restores(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    assert (await (await reset_in_its_window(runtime, simulator))).ok
    second = await reset_in_its_window(runtime, simulator)
    await runtime.watchdog.shutdown(grace=5)
    assert simulator.device.mode is ControlMode.VALUE  # back on before shutdown() returned
    await second


async def test_the_guard_does_not_take_a_pending_restore_for_a_drift(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime._use(Options.from_mapping({"drift_action": "adopt"}, base=runtime.options))
    assert (await runtime.ops.set_export_limit("3", PANEL)).ok
    task = await reset_in_its_window(runtime, simulator)
    await runtime.guard.check()  # reads mode deactivated: the watchdog's doing, no drift
    assert runtime.options.export_limit_control_mode == "value"
    assert (await task).ok
    assert simulator.device.mode is ControlMode.VALUE


async def test_a_restore_is_never_refused_as_busy(runtime: Runtime) -> None:
    from sec1000.device.link import BusyError, Priority

    link = runtime.link
    link.max_queued = 1
    release = asyncio.Event()

    async def busy(session: object) -> None:
        await release.wait()

    running = [asyncio.create_task(hold(link, busy)) for _ in range(2)]  # 1 holds, 1 queued
    await asyncio.sleep(0.01)
    with pytest.raises(BusyError):
        await hold(link, busy)  # a user command: the queue is full
    restore = asyncio.create_task(hold(link, busy, Priority.RESTORE))
    await asyncio.sleep(0.01)
    assert link.queued == 2  # the restore waits its (first) turn
    release.set()
    await asyncio.gather(*running, restore)
