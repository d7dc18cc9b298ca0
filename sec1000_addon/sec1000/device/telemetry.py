"""Reading telemetry (0x0B), with the device's two known faults handled: a short answer is
asked again once after the gap, and an inverters power of 0 read between the device's 30 s
refreshes is replaced by the last non-zero value seen."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from sec1000.device.link import Session
from sec1000.protocol import (
    TELEMETRY_DATA_LENGTH,
    Command,
    ShortAnswerError,
    Telemetry,
    decode_telemetry,
    read_telemetry_request,
)

_LOGGER = logging.getLogger(__name__)

# The device refreshes inverters power only every ~30 s and reads 0 between; the field
# integration keeps ~10 values for up to 60 s.
ZERO_FIX_SAMPLES = 10
ZERO_FIX_MAX_AGE = 60.0


async def read_telemetry(
    session: Session, address: tuple[str, int] | None = None, *, retry_short: bool = True
) -> Telemetry:
    """One telemetry read (0x0B); a short answer (N = 6) is asked again once after the gap."""
    request = read_telemetry_request()
    try:
        frame = await session.exchange(
            request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH, address=address
        )
    except ShortAnswerError:
        if not retry_short:
            raise
        _LOGGER.debug("short telemetry answer; retrying once after the gap")
        frame = await session.exchange(
            request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH, address=address
        )
    return decode_telemetry(frame)


class ZeroPowerFix:
    """Replace an inverters power of 0 with the last non-zero value seen within 60 s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._recent: deque[tuple[float, int]] = deque(maxlen=ZERO_FIX_SAMPLES)

    def apply(self, telemetry: Telemetry) -> Telemetry:
        """Return the telemetry with a fresh 0 replaced; load follows from it."""
        now = self._clock()
        if telemetry.inverters_w != 0:
            self._recent.append((now, telemetry.inverters_w))
            return telemetry
        while self._recent and self._recent[0][0] < now - ZERO_FIX_MAX_AGE:
            self._recent.popleft()
        if not self._recent:
            return telemetry
        return telemetry.with_inverters_w(self._recent[-1][1])
