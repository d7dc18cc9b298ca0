"""Watts on the wire, kilowatts for people."""

from __future__ import annotations


def watts(kw: float) -> int:
    """kW (two decimals) to whole watts, in the device's 10 W steps."""
    return round(kw * 100) * 10


def whole_watts(kw: float) -> int:
    """kW to the nearest watt (the device's read-backs are whole watts)."""
    return round(kw * 1000)


def kilowatts(w: int) -> float:
    """Whole watts from the device to kW."""
    return w / 1000


def seconds(ms: float) -> float:
    """Milliseconds (the gap option) to seconds."""
    return ms / 1000


def milliseconds(s: float) -> float:
    """Seconds to milliseconds, two decimals (latencies)."""
    return round(s * 1000, 2)
