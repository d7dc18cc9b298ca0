"""How the device link has been doing: counters per feedback bit, failures, recent raw frames."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sec1000.common.units import milliseconds
from sec1000.protocol import Feedback

FRAME_LOG_SIZE = 60


@dataclass
class LinkHealth:
    """Written by the link after every exchange; read by the state, the panel and the bridge."""

    last_success: float | None = None
    last_failure: float | None = None
    last_error: str | None = None
    # Why the last exchange failed: a socket error's cause (refused, lookup, …) or the failure's
    # bit (timeout, checksum_error, …); None after an answer.
    last_cause: str | None = None
    consecutive_failures: int = 0
    exchanges: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    last_latency_ms: float | None = None
    frames: deque[tuple[float, str, str]] = field(
        default_factory=lambda: deque(maxlen=FRAME_LOG_SIZE)
    )
    listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every counted exchange (the state model emits its event)."""
        self.listeners.append(listener)

    @property
    def failing(self) -> bool:
        """True while the last exchange with the controller failed."""
        return self.consecutive_failures > 0

    def frame(self, direction: str, raw: bytes) -> None:
        """Keep one raw frame ('tx' or 'rx')."""
        self.frames.append((time.time(), direction, raw.hex(" ")))

    def record(
        self,
        feedback: Feedback,
        latency_s: float,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        """Count one finished exchange: OK, or the error's bit, words and cause."""
        self.exchanges += 1
        name = feedback.name.lower() if feedback.name else str(int(feedback))
        self.counters[name] = self.counters.get(name, 0) + 1
        if error is None:
            self.last_success = time.time()
            self.consecutive_failures = 0
            self.last_latency_ms = milliseconds(latency_s)
            self.last_cause = None
        else:
            self.last_failure = time.time()
            self.last_error = error
            self.last_cause = str(cause) if cause is not None else name
            self.consecutive_failures += 1
        for listener in self.listeners:
            listener()

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
