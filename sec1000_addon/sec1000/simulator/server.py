"""The simulator's TCP server: one request per connection, faults on demand, a record of traffic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from sec1000.protocol import Command, build_response, encode_telemetry
from sec1000.protocol.frames import FIXED_PREFIX, checksum
from sec1000.simulator.device import SimulatedDevice

_LOGGER = logging.getLogger(__name__)

# The traffic record keeps the newest exchanges only: the demo runs for days (about 5 per
# command and 1 per poll); tests look at a few dozen.
EXCHANGE_LOG_SIZE = 1000


class Fault(StrEnum):
    """Every misbehaviour seen on real controllers."""

    SHORT_ANSWER = "short_answer"  # N = 6 instead of the full answer to a read
    ZERO_INVERTERS = "zero_inverters"  # inverters power reads 0 while producing
    BAD_CHECKSUM = "bad_checksum"
    WRONG_ECHO = "wrong_echo"
    NAK = "nak"  # status 0x15 instead of 0x06
    SILENCE = "silence"  # reads the request, never answers
    RESET = "reset"  # resets the connection instead of answering
    SLOW = "slow"  # answers after `slow_delay` seconds
    SPLIT = "split"  # the answer arrives in several TCP segments
    OVERLOAD = "overload"  # requests closer than `overload_gap` get garbage, then silence until power-cycled
    IGNORE_WRITES = "ignore_writes"  # ACK to 0x42 and the mode switches, without taking them
    DRIFT = "drift"  # the export limit changes on its own every `drift_after` seconds
    OVERSHOOT = "overshoot"  # an inverter the controller does not reach exports `overshoot_w`


FAULTS = tuple(fault.value for fault in Fault)
READ_COMMANDS = (Command.READ_TELEMETRY, Command.READ_EXPORT_SETTINGS)
WRITE_COMMANDS = (
    Command.WRITE_EXPORT_LIMIT,
    Command.MODE_VALUE,
    Command.MODE_DRED,
    Command.MODE_RCR,
)


@dataclass(slots=True)
class Exchange:
    """One connection as the simulator saw it."""

    accepted: float
    request: bytes = b""
    request_at: float | None = None
    answered_at: float | None = None
    answer: bytes = b""


@dataclass
class SimulatorServer:
    """Serves a SimulatedDevice on a TCP port."""

    device: SimulatedDevice = field(default_factory=SimulatedDevice)
    host: str = "127.0.0.1"
    port: int = 0
    slow_delay: float = 3.0
    overload_gap: float = 0.2
    drift_after: float = 2.0
    drift_limit_w: int = 12_350
    overshoot_w: int = 2_000
    faults: dict[Fault, int | None] = field(default_factory=dict)  # remaining count, None = always
    exchanges: deque[Exchange] = field(default_factory=lambda: deque(maxlen=EXCHANGE_LOG_SIZE))
    exchange_count: int = 0  # every exchange since start, beyond the record's size
    active: int = 0
    max_active: int = 0
    overloaded: bool = False

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._last_answer_at: float | None = None
        self._last_request_at: float | None = None
        self._next_drift_at: float | None = None
        self._spared: dict[Fault, int] = {}  # requests a fault lets pass before it hits

    # -- control

    def set_fault(
        self, fault: Fault | str, on: bool = True, count: int | None = None, after: int = 0
    ) -> None:
        """Switch a fault on (for `count` requests, or always; the first `after` requests it
        would hit are spared) or off."""
        fault = Fault(fault)
        if on:
            self.faults[fault] = count
            self._spared[fault] = after
            if fault is Fault.DRIFT:
                self._next_drift_at = time.monotonic() + self.drift_after
        else:
            self.faults.pop(fault, None)
        if fault is Fault.OVERSHOOT:
            self.device.uncontrolled_w = self.overshoot_w if on else 0

    def drift(self, limit_w: int | None = None) -> None:
        """Change the export limit behind the add-on's back, as another tool would."""
        self.device.export_limit_w = self.drift_limit_w if limit_w is None else limit_w

    def clear_faults(self) -> None:
        """Every fault off."""
        self.faults.clear()
        self.device.uncontrolled_w = 0

    def power_cycle(self) -> None:
        """What unplugging the controller does: it answers again after an overload."""
        self.overloaded = False

    def request_gaps(self) -> list[float]:
        """Seconds between each answer and the next request, as the device saw them."""
        gaps = []
        previous: Exchange | None = None
        for exchange in self.exchanges:
            if previous is not None and previous.answered_at and exchange.request_at:
                gaps.append(exchange.request_at - previous.answered_at)
            if exchange.answered_at:
                previous = exchange
        return gaps

    def requests(self) -> list[bytes]:
        """Every request received, in order."""
        return [exchange.request for exchange in self.exchanges if exchange.request]

    # -- serving

    async def start(self) -> SimulatorServer:
        """Listen; `port` 0 picks a free one, read back from `self.port`."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        _LOGGER.info("simulated SEC1000 listening on %s:%d", self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            close_clients = getattr(self._server, "close_clients", None)  # Python 3.13+
            if close_clients is not None:
                close_clients()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _take(self, fault: Fault) -> bool:
        if fault not in self.faults:
            return False
        if self._spared.get(fault, 0) > 0:
            self._spared[fault] -= 1
            return False
        remaining = self.faults[fault]
        if remaining is not None:
            if remaining <= 1:
                del self.faults[fault]
            else:
                self.faults[fault] = remaining - 1
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        exchange = Exchange(accepted=time.monotonic())
        self.exchanges.append(exchange)
        self.exchange_count += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self._serve(reader, writer, exchange)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exchange: Exchange
    ) -> None:
        (length,) = struct.unpack(">H", await reader.readexactly(2))
        body = await reader.readexactly(length)
        now = time.monotonic()
        exchange.request = struct.pack(">H", length) + body
        exchange.request_at = now
        previous, self._last_request_at = self._last_request_at, now
        if self.overloaded or self._take(Fault.SILENCE):
            await reader.read()  # the device keeps the connection open and says nothing
            return
        if (
            Fault.OVERLOAD in self.faults
            and previous is not None
            and now - previous < self.overload_gap
        ):
            self.overloaded = True  # garbage now, then silence until power-cycled
            await self._send(writer, exchange, b"\x04REVO\x00\x07\x01\x01\xee\x00\x00\x00\xf0")
            return
        covered = body[:-2]
        if (
            len(body) < 5
            or covered[:2] != FIXED_PREFIX
            or checksum(covered) != struct.unpack(">H", body[-2:])[0]
        ):
            _LOGGER.warning("simulator: malformed request %s", exchange.request.hex(" "))
            return
        if self._take(Fault.RESET):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        command, data = covered[2], covered[3:]
        try:
            answer_data = self._answer(command, data)
        except (ValueError, struct.error) as err:
            _LOGGER.warning("simulator: no answer to %s: %s", exchange.request.hex(" "), err)
            return
        echo = (command ^ 0xFF) if self._take(Fault.WRONG_ECHO) else command
        response = build_response(echo, answer_data)
        if self._take(Fault.BAD_CHECKSUM):
            response = response[:-1] + bytes(((response[-1] + 1) & 0xFF,))
        if self._take(Fault.SLOW):
            await asyncio.sleep(self.slow_delay)
        if self._take(Fault.SPLIT):
            for start in range(0, len(response), 5):
                writer.write(response[start : start + 5])
                await writer.drain()
                await asyncio.sleep(0.02)
            exchange.answer, exchange.answered_at = response, time.monotonic()
            self._last_answer_at = exchange.answered_at
            return
        await self._send(writer, exchange, response)

    def _answer(self, command: int, data: bytes) -> bytes:
        self._drift_when_due()
        if command in READ_COMMANDS and self._take(Fault.SHORT_ANSWER):
            return b"\x00"  # N = 6: one data byte
        nak = command not in READ_COMMANDS and self._take(Fault.NAK)
        if (
            command not in READ_COMMANDS
            and command in WRITE_COMMANDS
            and self._take(Fault.IGNORE_WRITES)
        ):
            return self.device.acknowledge_only(command, data)
        if command == Command.READ_TELEMETRY and Fault.ZERO_INVERTERS in self.faults:
            self._take(Fault.ZERO_INVERTERS)
            return encode_telemetry(self.device.telemetry(zero_inverters=True))
        return self.device.answer(command, data, nak=nak)

    def _drift_when_due(self) -> None:
        if Fault.DRIFT not in self.faults or self._next_drift_at is None:
            return
        if time.monotonic() >= self._next_drift_at:
            self._take(Fault.DRIFT)
            self.drift()
            self._next_drift_at = time.monotonic() + self.drift_after

    async def _send(
        self, writer: asyncio.StreamWriter, exchange: Exchange, response: bytes
    ) -> None:
        writer.write(response)
        await writer.drain()
        exchange.answer, exchange.answered_at = response, time.monotonic()
        self._last_answer_at = exchange.answered_at
