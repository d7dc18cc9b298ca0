"""The telemetry table: every field of the 0x0B answer, its wire scale and its unit."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sec1000.protocol.frames import Frame


@dataclass(frozen=True, slots=True)
class TelemetryField:
    """One telemetry value: its key, its name, its unit and the scale of its wire integer."""

    key: str
    name: str
    unit: str
    wire_scale: float  # raw int32 * wire_scale = the value in `unit`

    @property
    def decimals(self) -> int:
        """Decimals the wire resolution carries (0.1 V → 1, 0.01 A → 2, 1 W in kW → 3)."""
        return max(0, round(-math.log10(self.wire_scale)))


def _power(key: str, name: str) -> TelemetryField:
    # Power is 1 W on the wire and given in kW, as the field integration does.
    return TelemetryField(key, name, "kW", 0.001)


# Order is the wire order of the 0x0B answer: 11 signed int32 big-endian.
WIRE_FIELDS: tuple[TelemetryField, ...] = (
    *(TelemetryField(f"v{n}", f"Voltage L{n}", "V", 0.1) for n in (1, 2, 3)),
    *(TelemetryField(f"i{n}", f"Current L{n}", "A", 0.01) for n in (1, 2, 3)),
    *(_power(f"p{n}", f"Power L{n}") for n in (1, 2, 3)),
    # Meters power: sum of the phases; positive = export to the grid, negative = import.
    _power("meters_power", "Meters Power"),
    _power("inverters_power", "Inverters Power"),
)
# Derived: load = inverters - meters.
LOAD_FIELD = _power("load_power", "Load Power")
TELEMETRY_FIELDS: tuple[TelemetryField, ...] = (*WIRE_FIELDS, LOAD_FIELD)
TELEMETRY_DATA_LENGTH = 4 * len(WIRE_FIELDS)
_WIRE_FORMAT = ">" + "i" * len(WIRE_FIELDS)
_POSITION = {field.key: index for index, field in enumerate(WIRE_FIELDS)}
_METERS = _POSITION["meters_power"]
_INVERTERS = _POSITION["inverters_power"]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry answer, raw wire integers kept; values are derived in their units."""

    raw: tuple[int, ...]

    @property
    def inverters_w(self) -> int:
        """Inverters power in W."""
        return self.raw[_INVERTERS]

    @property
    def meters_w(self) -> int:
        """Meters (grid) power in W; positive = export."""
        return self.raw[_METERS]

    def with_inverters_w(self, watts: int) -> Telemetry:
        """Return a copy with the inverters power replaced (the zero-power fix)."""
        raw = list(self.raw)
        raw[_INVERTERS] = watts
        return Telemetry(raw=tuple(raw))

    def values(self) -> Mapping[str, float]:
        """Every field, load included, in its unit (V, A, kW), rounded to its wire resolution."""
        out = {
            field.key: round(raw * field.wire_scale, field.decimals)
            for field, raw in zip(WIRE_FIELDS, self.raw, strict=True)
        }
        load_w = self.inverters_w - self.meters_w
        out[LOAD_FIELD.key] = round(load_w * LOAD_FIELD.wire_scale, LOAD_FIELD.decimals)
        return MappingProxyType(out)


def decode_telemetry(frame: Frame) -> Telemetry:
    """Decode the data of a validated 0x0B answer (44 bytes)."""
    return Telemetry(raw=struct.unpack(_WIRE_FORMAT, frame.data))


def encode_telemetry(raw: tuple[int, ...]) -> bytes:
    """Encode 11 wire integers as the device sends them (simulator, tests)."""
    return struct.pack(_WIRE_FORMAT, *raw)
