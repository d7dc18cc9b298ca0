"""The telemetry table: every field's wire scale, published unit and Home Assistant metadata."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sec1000.protocol.frames import Frame


@dataclass(frozen=True, slots=True)
class TelemetryField:
    """One telemetry value: how it is decoded and how it is published."""

    key: str
    name: str
    unit: str
    device_class: str
    icon: str
    wire_scale: float  # raw int32 -> published unit
    decimals: int


def _power(key: str, name: str, icon: str) -> TelemetryField:
    # Power is 1 W on the wire and published in kW, as the field integration does.
    return TelemetryField(key, name, "kW", "power", icon, 0.001, 3)


# Order is the wire order of the 0x0B answer: 11 signed int32 big-endian.
WIRE_FIELDS: tuple[TelemetryField, ...] = (
    *(
        TelemetryField(f"v{n}", f"Voltage L{n}", "V", "voltage", "mdi:flash", 0.1, 1)
        for n in (1, 2, 3)
    ),
    *(
        TelemetryField(f"i{n}", f"Current L{n}", "A", "current", "mdi:current-ac", 0.01, 2)
        for n in (1, 2, 3)
    ),
    *(_power(f"p{n}", f"Power L{n}", "mdi:flash-triangle") for n in (1, 2, 3)),
    # Meters power: sum of the phases; positive = export to the grid, negative = import.
    _power("meters_power", "Meters Power", "mdi:transmission-tower"),
    _power("inverters_power", "Inverters Power", "mdi:solar-power"),
)
# Derived: load = inverters - meters.
LOAD_FIELD = _power("load_power", "Load Power", "mdi:home-lightning-bolt")
TELEMETRY_FIELDS: tuple[TelemetryField, ...] = (*WIRE_FIELDS, LOAD_FIELD)
TELEMETRY_DATA_LENGTH = 4 * len(WIRE_FIELDS)
_WIRE_FORMAT = ">" + "i" * len(WIRE_FIELDS)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry answer, raw wire integers kept; values are derived in published units."""

    raw: tuple[int, ...]

    @property
    def inverters_w(self) -> int:
        """Inverters power in W."""
        return self.raw[10]

    @property
    def meters_w(self) -> int:
        """Meters (grid) power in W; positive = export."""
        return self.raw[9]

    def with_inverters_w(self, watts: int) -> Telemetry:
        """Return a copy with the inverters power replaced (the zero-power fix)."""
        return Telemetry(raw=(*self.raw[:10], watts))

    def values(self) -> Mapping[str, float]:
        """Every field, load included, in its published unit (V, A, kW), rounded."""
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
