"""The single owner of the device: one request in flight, a gap between packets, a fair queue.

An operation holds the device with `async with link.session(priority) as s:` and calls
`await s.exchange(...)` for each packet; nobody else talks to the controller meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import IntEnum

from sec1000.device.health import LinkHealth
from sec1000.protocol import (
    Command,
    DeviceSocketError,
    DeviceTimeoutError,
    Feedback,
    Frame,
    GeneralError,
    Sec1000Error,
    SocketCause,
    UnexpectedPacketError,
    parse_response,
)
from sec1000.protocol.frames import RESPONSE_HEADER_LENGTH, body_length

_LOGGER = logging.getLogger(__name__)

DEFAULT_GAP = 1.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_QUEUED = 8


# The errno values that say the host (or its network) cannot be reached at all.
_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN})


def socket_cause(err: OSError) -> SocketCause:
    """Why a connection failed, from the operating system's error."""
    if isinstance(err, ConnectionRefusedError) or err.errno == errno.ECONNREFUSED:
        return SocketCause.REFUSED
    if isinstance(err, socket.gaierror):
        return SocketCause.LOOKUP
    if err.errno in _UNREACHABLE:
        return SocketCause.UNREACHABLE
    return SocketCause.OTHER


class Priority(IntEnum):
    """Who goes first when the link frees up: lower runs earlier."""

    RESTORE = 0
    USER = 1
    POLL = 2


class BusyError(GeneralError):
    """Too many commands are already waiting for the device."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Where the controller is and how gently to talk to it."""

    host: str
    port: int
    gap: float = DEFAULT_GAP
    timeout: float = DEFAULT_TIMEOUT


class Session:
    """Exclusive use of the device for one job; every exchange keeps the gap."""

    def __init__(self, link: DeviceLink, target: tuple[str, int]) -> None:
        self._link = link
        self.target = target

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
        return await self._link._exchange(request, expect, data_length, address or self.target)

    async def pause(self, seconds: float) -> None:
        """Hold the device for a while (e.g. the watchdog's settle time)."""
        await asyncio.sleep(seconds)


class DeviceLink:
    """One connection at a time to one SEC1000, with a priority queue in front."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        health: LinkHealth | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.settings = settings
        self.max_queued = max_queued
        self.health = health if health is not None else LinkHealth()
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._last_end: float | None = None

    @property
    def target(self) -> tuple[str, int]:
        """The configured controller's (host, port)."""
        return self.settings.host, self.settings.port

    @property
    def gap(self) -> float:
        """Seconds kept between the end of one exchange and the start of the next."""
        return self.settings.gap

    def configure(self, settings: LinkSettings) -> None:
        """Apply new settings; they take effect from the next session."""
        self.settings = settings

    @property
    def queued(self) -> int:
        """Jobs waiting for the device (not counting the one running)."""
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def session(
        self, priority: Priority = Priority.USER, target: tuple[str, int] | None = None
    ) -> AsyncIterator[Session]:
        """Hold the device until the block ends.

        `target` pins the controller's address for the whole session (a restore talks to the
        controller it switched off, whatever the options say meanwhile). Raises BusyError at
        once when `max_queued` user sessions are already waiting.
        """
        await self._acquire(priority)
        try:
            yield Session(self, target or self.target)
        finally:
            self._release()

    async def _acquire(self, priority: Priority) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        users_waiting = sum(1 for prio, _, _ in self._waiters if prio == Priority.USER)
        if (
            priority == Priority.USER and users_waiting >= self.max_queued
        ):  # a restore always queues
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
        remaining = self._last_end + self.settings.gap - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _exchange(
        self, request: bytes, expect: Command, data_length: int | None, address: tuple[str, int]
    ) -> Frame:
        await self._wait_gap()
        started = time.monotonic()
        self._log_frame("tx", request)
        # Health describes the configured controller; a test of another address does not count.
        counted = address == self.target
        try:
            raw = await self._send(request, *address)
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
        """One connection: connect, write the request, read one answer, close.

        Every failure becomes a device error with its bit: a host name the address lookup
        rejects (UnicodeError, ValueError) is a socket error like an unreachable host.
        """
        header = b""
        writer: asyncio.StreamWriter | None = None
        timeout = self.settings.timeout
        try:
            async with asyncio.timeout(timeout):
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
        except Sec1000Error:
            raise
        except TimeoutError:
            raise DeviceTimeoutError(f"no answer from {host}:{port} within {timeout:g} s") from None
        except asyncio.IncompleteReadError as err:
            if not header and not err.partial:
                raise DeviceSocketError(
                    "the device closed the connection without answering", SocketCause.CLOSED
                ) from None
            raise UnexpectedPacketError(
                f"answer cut short after {len(header) + len(err.partial)} bytes"
            ) from None
        except OSError as err:
            reason = err.strerror or err.__class__.__name__
            raise DeviceSocketError(
                f"cannot talk to {host!r}:{port}: {reason}", socket_cause(err)
            ) from None
        except (UnicodeError, ValueError, TypeError) as err:
            raise DeviceSocketError(
                f"cannot talk to {host!r}:{port}: {err}", SocketCause.LOOKUP
            ) from None
        except Exception as err:
            _LOGGER.debug("unexpected exchange failure", exc_info=True)
            raise Sec1000Error(f"exchange with {host!r}:{port} failed: {err!r}") from None
        finally:
            self._last_end = time.monotonic()

    def _log_frame(self, direction: str, raw: bytes) -> None:
        _LOGGER.debug("%s %s", direction, raw.hex(" "))
        self.health.frame(direction, raw)

    def _record(self, started: float, error: Sec1000Error | None) -> None:
        feedback = Feedback.OK if error is None else error.feedback
        cause = error.cause if isinstance(error, DeviceSocketError) else None
        self.health.record(
            feedback, time.monotonic() - started, None if error is None else str(error), cause
        )
        if error is not None:
            _LOGGER.warning("device exchange failed: %s", error)
