"""The power the panel draws: the last hour of reads, and the last day as minute averages."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

HISTORY_SECONDS = 3600
DAY_SECONDS = 86400  # the History page's day of power and limit, as minute averages
DAY_STEP = 60


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One chart sample (kW); `limit` is the export limit known at that time."""

    at: float
    meters: float
    inverters: float
    load: float
    limit: float | None


def mean_point(points: Sequence[HistoryPoint]) -> HistoryPoint:
    """The average of samples (time and each power); the limit is the last one's."""
    n = len(points)
    return HistoryPoint(
        sum(p.at for p in points) / n,
        sum(p.meters for p in points) / n,
        sum(p.inverters for p in points) / n,
        sum(p.load for p in points) / n,
        points[-1].limit,
    )


class DaySeries:
    """The last day of samples as one average per wall-clock minute: at most 1440 points,
    whatever the refresh interval (the current minute is averaged so far)."""

    def __init__(self) -> None:
        self.minutes: deque[HistoryPoint] = deque()
        self._open: list[HistoryPoint] = []

    def add(self, point: HistoryPoint) -> None:
        """One sample; a sample of a new minute closes the one before."""
        if self._open and point.at // DAY_STEP != self._open[0].at // DAY_STEP:
            self.minutes.append(mean_point(self._open))
            self._open = []
        self._open.append(point)
        while self.minutes and self.minutes[0].at < point.at - DAY_SECONDS:
            self.minutes.popleft()

    def points(self) -> list[HistoryPoint]:
        """Every minute kept, oldest first, with the current one so far."""
        return [*self.minutes, *([mean_point(self._open)] if self._open else [])]

    def __len__(self) -> int:
        return len(self.minutes) + (1 if self._open else 0)
