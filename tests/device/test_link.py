"""The device link over real sockets: one request in flight, the gap, priority, the bounded queue."""

from __future__ import annotations

import asyncio
import time

import pytest
from sec1000.device.link import BusyError, DeviceLink, LinkSettings, Priority, Session
from sec1000.operations import Operations, Origin
from sec1000.protocol import (
    TELEMETRY_DATA_LENGTH,
    Command,
    DeviceSocketError,
    DeviceTimeoutError,
    Feedback,
    UnexpectedPacketError,
    read_telemetry_request,
)
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.device import LOOKUP_BREAKERS, Blocker, hold, retune

PANEL = Origin("panel", "test")
POLL = Origin("poll")


async def test_twenty_concurrent_commands_never_overlap_and_all_get_results(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    retune(runtime.link, gap=0.03)
    runtime.link.max_queued = 32
    ops = runtime.ops
    commands = [
        lambda: ops.get_export_limit(PANEL),
        lambda: ops.get_telemetry_data(PANEL),
        lambda: ops.set_export_limit(3.5, PANEL),
        lambda: ops.set_datetime(PANEL),
        lambda: ops.export_enable(PANEL),
    ] * 4
    results = await asyncio.gather(*(asyncio.create_task(command()) for command in commands))
    assert len(results) == 20
    assert all(result.feedback == Feedback.OK for result in results), [r.message for r in results]
    assert simulator.max_active == 1
    gaps = simulator.request_gaps()
    assert len(gaps) == len(simulator.exchanges) - 1
    assert min(gaps) >= 0.03


async def test_gap_is_kept_between_packets(link: DeviceLink, simulator: SimulatorServer) -> None:
    retune(link, gap=0.2)

    async def two_reads(session: Session) -> None:
        for _ in range(2):
            await session.exchange(
                read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
            )

    await hold(link, two_reads)
    await hold(link, two_reads)
    assert len(simulator.request_gaps()) == 3
    assert min(simulator.request_gaps()) >= 0.2


async def test_user_commands_go_ahead_of_a_queued_poll(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    link, ops = runtime.link, runtime.ops
    blocker = Blocker()

    first = asyncio.create_task(hold(link, blocker))
    await asyncio.sleep(0)
    poll = asyncio.create_task(ops.get_telemetry_data(POLL))
    await asyncio.sleep(0.01)
    user = asyncio.create_task(ops.get_export_limit(PANEL))
    await asyncio.sleep(0.01)
    assert link.queued == 2
    blocker.release()
    await asyncio.gather(first, poll, user)
    commands = [request[4] for request in simulator.requests()]
    assert commands == [Command.READ_EXPORT_SETTINGS, Command.READ_TELEMETRY]


async def test_at_most_one_poll_is_queued_and_joiners_share_its_result(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    link, ops = runtime.link, runtime.ops
    blocker = Blocker()

    first = asyncio.create_task(hold(link, blocker))
    await asyncio.sleep(0)
    polls = [asyncio.create_task(ops.get_telemetry_data(POLL)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert link.queued == 1
    blocker.release()
    await first
    results = await asyncio.gather(*polls)
    assert [result.feedback for result in results] == [Feedback.OK] * 5
    assert simulator.requests() == [read_telemetry_request()]


async def test_a_poll_behind_a_running_poll_is_queued_anew(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    ops = runtime.ops
    first = asyncio.create_task(ops.get_telemetry_data(POLL))
    await asyncio.sleep(0.001)  # the first poll holds the device now
    second = asyncio.create_task(ops.get_telemetry_data(POLL))
    await asyncio.gather(first, second)
    assert simulator.requests() == [read_telemetry_request()] * 2


async def test_full_queue_refuses_at_once_with_busy(link: DeviceLink) -> None:
    link.max_queued = 2
    blocker = Blocker()

    running = [asyncio.create_task(hold(link, blocker)) for _ in range(3)]  # 1 running + 2 queued
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(BusyError, match="busy") as caught:
        await hold(link, blocker)
    assert time.monotonic() - started < 0.5
    assert caught.value.feedback == Feedback.GENERAL_ERROR
    blocker.release()
    await asyncio.gather(*running)


async def test_busy_command_reports_feedback_2_and_sends_nothing(
    runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime.link.max_queued = 1
    blocker = Blocker()

    running = [asyncio.create_task(hold(runtime.link, blocker)) for _ in range(2)]
    await asyncio.sleep(0)
    result = await runtime.ops.export_enable(PANEL)
    assert result.feedback == Feedback.GENERAL_ERROR and "busy" in result.message
    assert simulator.requests() == []
    blocker.release()
    await asyncio.gather(*running)


async def test_cancelled_waiter_leaves_the_queue(link: DeviceLink) -> None:
    blocker = Blocker()

    first = asyncio.create_task(hold(link, blocker))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(hold(link, blocker))
    await asyncio.sleep(0)
    assert link.queued == 1
    waiting.cancel()
    await asyncio.sleep(0)
    assert link.queued == 0
    blocker.release()
    await first

    async def quick(session: Session) -> str:
        return "free"

    assert await hold(link, quick) == "free"


async def test_short_telemetry_answer_is_retried_once_after_the_gap(
    ops: Operations, simulator: SimulatorServer
) -> None:
    simulator.set_fault("short_answer", count=1)
    result = await ops.get_telemetry_data(PANEL)
    assert result.feedback == Feedback.OK
    assert simulator.requests() == [read_telemetry_request()] * 2


async def test_writes_are_never_retried(ops: Operations, simulator: SimulatorServer) -> None:
    simulator.set_fault("bad_checksum", count=1)
    result = await ops.export_enable(PANEL)
    assert result.feedback == Feedback.CHECKSUM_ERROR
    assert len(simulator.requests()) == 1


async def test_refused_connection_is_a_socket_error(
    link: DeviceLink, simulator: SimulatorServer
) -> None:
    await simulator.stop()

    async def read(session: Session) -> None:
        await session.exchange(
            read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
        )

    with pytest.raises(DeviceSocketError):
        await hold(link, read)
    assert link.health.consecutive_failures == 1
    assert link.health.counters == {"socket_error": 1}


async def test_silent_device_times_out_and_health_counts_it(
    link: DeviceLink, simulator: SimulatorServer
) -> None:
    simulator.set_fault("silence")
    retune(link, timeout=0.3)

    async def read(session: Session) -> None:
        await session.exchange(
            read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
        )

    with pytest.raises(DeviceTimeoutError):
        await hold(link, read)
    assert link.health.counters == {"timeout": 1}
    assert [entry["direction"] for entry in link.health.frame_log()] == ["tx"]


async def test_flapping_device_recovers_health(
    link: DeviceLink, simulator: SimulatorServer
) -> None:
    async def read(session: Session) -> None:
        await session.exchange(
            read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
        )

    simulator.set_fault("reset", count=2)
    for _ in range(2):
        with pytest.raises(DeviceSocketError):
            await hold(link, read)
    assert link.health.consecutive_failures == 2
    await hold(link, read)
    assert link.health.consecutive_failures == 0
    assert link.health.last_latency_ms is not None


async def test_restore_priority_runs_before_users(link: DeviceLink) -> None:
    order: list[str] = []
    blocker = Blocker()

    def job(name: str):  # type: ignore[no-untyped-def]
        async def run(session: Session) -> None:
            order.append(name)

        return run

    first = asyncio.create_task(hold(link, blocker))
    await asyncio.sleep(0)
    user = asyncio.create_task(hold(link, job("user")))
    restore = asyncio.create_task(hold(link, job("restore"), Priority.RESTORE))
    await asyncio.sleep(0)
    blocker.release()
    await asyncio.gather(first, user, restore)
    assert order == ["restore", "user"]


async def test_testing_another_address_does_not_touch_health(
    link: DeviceLink, simulator: SimulatorServer
) -> None:
    async def probe(session: Session) -> None:
        await session.exchange(
            read_telemetry_request(),
            Command.READ_TELEMETRY,
            TELEMETRY_DATA_LENGTH,
            address=("127.0.0.1", 1),
        )

    with pytest.raises(DeviceSocketError):
        await hold(link, probe)
    assert link.health.consecutive_failures == 0 and link.health.exchanges == 0
    assert simulator.requests() == []


async def _one_answer_server(answer: bytes) -> tuple[asyncio.Server, int]:
    """A raw TCP peer that reads a request, writes `answer` and closes: misbehaviours the
    simulator does not model."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (
            b"\x04REVO\x00\x31\x01\x01\x0b" + bytes(10),
            "cut short after 20 bytes",
        ),  # announces 49, sends 15
        (b"\x04REVO\xff\xff\x01\x01\x0b", "announces 65535 bytes"),
        (b"\x04RE", "cut short after 3 bytes"),
    ],
)
async def test_truncated_or_impossible_answers_are_unexpected_packets(
    answer: bytes, words: str
) -> None:
    server, port = await _one_answer_server(answer)
    link = DeviceLink(LinkSettings("127.0.0.1", port, 0, 2))

    async def read(session: Session) -> None:
        await session.exchange(
            read_telemetry_request(), Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
        )

    try:
        with pytest.raises(UnexpectedPacketError, match=words):
            await hold(link, read)
    finally:
        server.close()
        await server.wait_closed()
    assert link.health.counters == {"unexpected_packet": 1}


# -- an address the lookup rejects


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
