"""The drifts the guard saw: each told once while it stands, and the same one three times in an
hour taken for something else writing to the controller (contested)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sec1000.protocol import ExportSettings

CONTEST_COUNT = 3
CONTEST_WINDOW = 3600.0
DAY = 86400.0
Signature = tuple[int, int, int]  # limit W, mode, capacity W


def signature_of(settings: ExportSettings) -> Signature:
    """What tells one drift from another."""
    return (settings.export_limit_w, int(settings.mode), settings.total_capacity_w)


@dataclass
class Drifts:
    """The guard's memory of drifts."""

    seen: deque[tuple[float, Signature]] = field(default_factory=lambda: deque(maxlen=64))
    contested: Signature | None = None  # a drift the guard no longer fights
    reported: Signature | None = None  # the drift last audited

    def is_standing(self, settings: ExportSettings, standing: bool) -> bool:
        """True for the same drift as the one told, still there (it is not told again)."""
        return standing and signature_of(settings) == self.reported

    def note(self, settings: ExportSettings, now: float) -> int:
        """Remember a drift; how many times it was seen within the hour."""
        signature = signature_of(settings)
        self.reported = signature
        self.seen.append((now, signature))
        return sum(1 for at, sig in self.seen if sig == signature and at > now - CONTEST_WINDOW)

    def contest(self, settings: ExportSettings, same: int, restoring: bool) -> bool:
        """True when this drift is (or now becomes) contested: it came back too often."""
        signature = signature_of(settings)
        if (restoring and same >= CONTEST_COUNT) or self.contested == signature:
            self.contested = signature
            return True
        return False

    def forgive(self) -> None:
        """The user set the limit again, or the controller is in sync: fight again."""
        self.contested = None

    def last_day(self, now: float) -> int:
        """Drifts seen in the last 24 hours."""
        return sum(1 for at, _ in self.seen if at > now - DAY)
