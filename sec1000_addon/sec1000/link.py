"""The single owner of the device: one request in flight, a gap between packets, a fair queue."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from sec1000.protocol import (
    Command,
    DeviceSocketError,
    DeviceTimeoutError,
    Feedback,
    Frame,
    GeneralError,
    Sec1000Error,
    UnexpectedPacketError,
    parse_response,
)
from sec1000.protocol.frames import RESPONSE_HEADER_LENGTH, body_length

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_GAP = 1.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_QUEUED = 8
FRAME_LOG_SIZE = 60


class Priority(IntEnum):
    """Who goes first when the link frees up: lower runs earlier."""

    RESTORE = 0
    USER = 1
    POLL = 2


class BusyError(GeneralError):
    """Too many commands are already waiting for the device."""


@dataclass
class LinkHealth:
    """How the device link has been doing."""

    last_success: float | None = None
    last_failure: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    exchanges: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    last_latency_ms: float | None = None
    frames: deque[tuple[float, str, str]] = field(
        default_factory=lambda: deque(maxlen=FRAME_LOG_SIZE)
    )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (frames are listed separately by `frame_log`)."""
        return {
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "exchanges": self.exchanges,
            "counters": dict(self.counters),
            "last_latency_ms": self.last_latency_ms,
        }

    def frame_log(self) -> list[dict[str, Any]]:
        """Recent raw frames, oldest first: time, direction ('tx'/'rx') and hex."""
        return [{"at": at, "direction": d, "hex": text} for at, d, text in self.frames]


class Session:
    """Exclusive use of the device for one job; every exchange keeps the gap."""

    def __init__(self, link: DeviceLink) -> None:
        self._link = link

    async def exchange(
        self,
        request: bytes,
        expect: Command,
        data_length: int | None = None,
        *,
        address: tuple[str, int] | None = None,
    ) -> Frame:
        """Send one request on a new connection and return the validated answer.

        `address` sends to another host and port (a connection test) while still holding the
        one link, so no other request is ever in flight.
        """
        return await self._link._exchange(request, expect, data_length, address)

    async def pause(self, seconds: float) -> None:
        """Hold the device for a while (e.g. the watchdog's 5 s window)."""
        await asyncio.sleep(seconds)


class DeviceLink:
    """One connection at a time to one SEC1000, with a priority queue in front."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        gap: float = DEFAULT_GAP,
        timeout: float = DEFAULT_TIMEOUT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.gap = gap
        self.timeout = timeout
        self.max_queued = max_queued
        self.health = LinkHealth()
        self._on_change = on_change
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._last_end: float | None = None
        self._queued_poll: asyncio.Future[Any] | None = None  # a poll waiting for its turn

    def configure(
        self,
        host: str | None = None,
        port: int | None = None,
        gap: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """Apply new settings; they take effect from the next exchange."""
        self.host = host if host is not None else self.host
        self.port = port if port is not None else self.port
        self.gap = gap if gap is not None else self.gap
        self.timeout = timeout if timeout is not None else self.timeout

    @property
    def queued(self) -> int:
        """Jobs waiting for the device (not counting the one running)."""
        return len(self._waiters)

    async def run(
        self, job: Callable[[Session], Awaitable[T]], priority: Priority = Priority.USER
    ) -> T:
        """Run `job` with exclusive use of the device.

        Raises BusyError at once when `max_queued` user jobs are already waiting.
        """
        await self._acquire(priority)
        try:
            return await job(Session(self))
        finally:
            self._release()

    async def poll(self, job: Callable[[Session], Awaitable[T]]) -> T:
        """Run a telemetry poll behind every user job; a poll already queued is shared."""
        if self._queued_poll is not None:
            return await asyncio.shield(self._queued_poll)
        shared: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued_poll = shared
        try:
            await self._acquire(Priority.POLL)
        except BaseException as err:
            self._queued_poll = None
            if not shared.done():
                shared.set_exception(
                    err if isinstance(err, Exception) else asyncio.CancelledError()
                )
                shared.exception()  # retrieved: joiners see it, nobody is warned
            raise
        self._queued_poll = None
        try:
            result = await job(Session(self))
        except BaseException as err:
            if not shared.done():
                shared.set_exception(
                    err if isinstance(err, Exception) else asyncio.CancelledError()
                )
                shared.exception()
            raise
        else:
            shared.set_result(result)
            return result
        finally:
            self._release()

    async def _acquire(self, priority: Priority) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        users_waiting = sum(1 for prio, _, _ in self._waiters if prio < Priority.POLL)
        if priority < Priority.POLL and users_waiting >= self.max_queued:
            raise BusyError(
                f"the device is busy: {users_waiting} commands are already waiting; try again later"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (int(priority), next(self._order), waiter)
        heapq.heappush(self._waiters, entry)
        try:
            await waiter
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            elif waiter.done() and not waiter.cancelled():
                self._release()  # ownership was handed over just as we were cancelled
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)  # hand the device over, still busy
                return
        self._busy = False

    async def _wait_gap(self) -> None:
        if self._last_end is None:
            return
        remaining = self._last_end + self.gap - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _exchange(
        self,
        request: bytes,
        expect: Command,
        data_length: int | None,
        address: tuple[str, int] | None = None,
    ) -> Frame:
        await self._wait_gap()
        started = time.monotonic()
        self._log_frame("tx", request)
        # Health describes the configured controller; a test of another address does not count.
        counted = address is None or address == (self.host, self.port)
        try:
            raw = await self._send(request, *(address or (self.host, self.port)))
            self._log_frame("rx", raw)
            frame = parse_response(raw, expect, data_length)
        except Sec1000Error as err:
            if counted:
                self._record(started, err)
            raise
        if counted:
            self._record(started, None)
        return frame

    async def _send(self, request: bytes, host: str, port: int) -> bytes:
        """One connection: connect, write the request, read one answer, close."""
        header = b""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                    writer.write(request)
                    await writer.drain()
                    header = await reader.readexactly(RESPONSE_HEADER_LENGTH)
                    body = await reader.readexactly(body_length(header))
                    return header + body
                finally:
                    if writer is not None:
                        writer.close()
                        with contextlib.suppress(OSError):
                            await writer.wait_closed()
        except TimeoutError:
            raise DeviceTimeoutError(
                f"no answer from {host}:{port} within {self.timeout:g} s"
            ) from None
        except asyncio.IncompleteReadError as err:
            if not header and not err.partial:
                raise DeviceSocketError(
                    "the device closed the connection without answering"
                ) from None
            raise UnexpectedPacketError(
                f"answer cut short after {len(header) + len(err.partial)} bytes"
            ) from None
        except OSError as err:
            reason = err.strerror or err.__class__.__name__
            raise DeviceSocketError(f"cannot talk to {host}:{port}: {reason}") from None
        finally:
            self._last_end = time.monotonic()

    def _log_frame(self, direction: str, raw: bytes) -> None:
        _LOGGER.debug("%s %s", direction, raw.hex(" "))
        self.health.frames.append((time.time(), direction, raw.hex(" ")))

    def _record(self, started: float, error: Sec1000Error | None) -> None:
        health = self.health
        health.exchanges += 1
        feedback = Feedback.OK if error is None else error.feedback
        name = feedback.name.lower() if feedback.name else str(int(feedback))
        health.counters[name] = health.counters.get(name, 0) + 1
        if error is None:
            health.last_success = time.time()
            health.consecutive_failures = 0
            health.last_latency_ms = round((time.monotonic() - started) * 1000, 2)
        else:
            health.last_failure = time.time()
            health.last_error = str(error)
            health.consecutive_failures += 1
            _LOGGER.warning("device exchange failed: %s", error)
        if self._on_change is not None:
            self._on_change()
