"""Retry delays that double from a first value up to a ceiling."""

from __future__ import annotations

from collections.abc import Iterator

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0


def backoff_delays(first: float = BACKOFF_FIRST, maximum: float = BACKOFF_MAX) -> Iterator[float]:
    """1, 2, 4 … seconds, capped at `maximum`, for ever."""
    delay = first
    while True:
        yield min(delay, maximum)
        delay = min(delay * 2, maximum)
