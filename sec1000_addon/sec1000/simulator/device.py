"""The simulated controller's state and its answers to well-formed requests."""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sec1000.protocol import Command, ControlMode, PhaseMeasurement, Status, encode_telemetry
from sec1000.protocol.messages import MODE_SWITCHES


@dataclass
class SimulatedDevice:
    """What the controller remembers, and a plausible plant behind it."""

    total_capacity_w: int = 10_000
    export_limit_w: int = 5_000
    ct_ratio: int = 1
    phase: PhaseMeasurement = PhaseMeasurement.SUM_OF_PHASES
    switches: dict[Command, bool] = field(
        default_factory=lambda: {
            Command.MODE_VALUE: True,
            Command.MODE_DRED: False,
            Command.MODE_RCR: False,
        }
    )
    clock_offset: float = 0.0
    start_hour: float = 11.0  # the simulated day starts late morning, so a demo shows production
    seed: int | None = None
    clock: Callable[[], float] = time.time
    # seconds since start -> (pv W, load W): a known plant instead of the random one (benchmarks)
    profile: Callable[[float], tuple[float, float]] | None = None
    # An inverter the controller does not reach: its watts are exported above any limit.
    uncontrolled_w: int = 0
    # Regulation noise: while curtailed, export hovers this share around the limit (0.03: ±3 %).
    hover: float = 0.0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._started = self.clock()

    # -- state

    @property
    def mode(self) -> ControlMode:
        """The mode 0x43 reports: the first switch that is on, else deactivated."""
        for mode, switch in MODE_SWITCHES.items():
            if self.switches[switch]:
                return mode
        return ControlMode.DEACTIVATED

    @property
    def device_time(self) -> dt.datetime:
        """The device's clock."""
        return dt.datetime.fromtimestamp(self.clock() + self.clock_offset)

    # -- the plant

    def _pv_w(self) -> float:
        hour = (self.start_hour + (self.clock() - self._started) / 3600) % 24
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
        clouds = 0.85 + 0.15 * self._random.random()
        return self.total_capacity_w * 0.8 * sun * clouds

    def _load_w(self) -> float:
        spike = 2500 if self._random.random() < 0.05 else 0
        return 450 + 300 * self._random.random() + spike

    def telemetry(self, zero_inverters: bool = False) -> tuple[int, ...]:
        """Eleven wire integers: V (0.1 V), A (0.01 A), W per phase, meters W, inverters W."""
        if self.profile is not None:
            inverters, load = self.profile(self.clock() - self._started)
        else:
            load = self._load_w()
            inverters = self._pv_w()
        if self.mode is not ControlMode.DEACTIVATED and inverters > load + self.export_limit_w:
            # the limiter curtails the plant, to the limit give or take its regulation
            wobble = self.hover * (2 * self._random.random() - 1)
            inverters = load + self.export_limit_w * (1 + wobble)
        inverters += self.uncontrolled_w
        meters = round(inverters - load)  # positive = export
        inverters_w = round(inverters)
        shares = [0.3 + 0.1 * self._random.random(), 0.3 + 0.1 * self._random.random()]
        p1, p2 = (round(meters * share) for share in shares)
        p3 = meters - p1 - p2  # meters power is the sum of the phases
        volts = [2300 + self._random.randint(-25, 25) for _ in range(3)]
        amps = [round(abs(p) / (v / 10) * 100) for p, v in zip((p1, p2, p3), volts, strict=True)]
        reported_inverters = 0 if zero_inverters else inverters_w
        return (*volts, *amps, p1, p2, p3, meters, reported_inverters)

    # -- commands

    def acknowledge_only(self, command: int, data: bytes) -> bytes:
        """ACK a well-formed write without taking it (a controller that ignores writes)."""
        if command == Command.WRITE_EXPORT_LIMIT:
            struct.unpack(">iiB", data)
        elif data not in (b"\x01", b"\x02"):
            raise ValueError(f"bad switch byte {data.hex()}")
        return bytes((Status.ACK,))

    def answer(self, command: int, data: bytes, *, nak: bool = False) -> bytes:
        """The data of the answer to one well-formed request; raise ValueError if none exists."""
        status = Status.NAK if nak else Status.ACK
        if command == Command.READ_TELEMETRY:
            return encode_telemetry(self.telemetry())
        if command == Command.READ_EXPORT_SETTINGS:
            return struct.pack(
                ">Biii", self.mode, self.total_capacity_w, self.ct_ratio, self.export_limit_w
            )
        if command == Command.WRITE_EXPORT_LIMIT:
            capacity, limit, phase = struct.unpack(">iiB", data)
            if not nak:
                self.total_capacity_w, self.export_limit_w = capacity, limit
                self.phase = PhaseMeasurement(phase)
            return bytes((status,))
        if command in self.switches:
            if data not in (b"\x01", b"\x02"):
                raise ValueError(f"bad switch byte {data.hex()}")
            if not nak:
                self.switches[Command(command)] = data == b"\x01"
            return bytes((status,))
        if command == Command.SET_DATETIME:
            year, month, _, day, hour, minute, second = data
            sent = dt.datetime(2000 + year, month, day, hour, minute, second)
            if nak:
                return bytes((Status.NAK,))
            self.clock_offset = sent.timestamp() - self.clock()
            return bytes((Status.DATETIME_OK,))
        raise ValueError(f"unknown command {command:#04x}")
