"""What the state keeps besides numbers: the guard's view, who set the limit, finished commands."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sec1000.commands import Refusal


class GuardState(StrEnum):
    """How the controller's export settings compare with what the user asked for."""

    IN_SYNC = "in_sync"
    DRIFT = "drift"
    RESTORING = "restoring"
    CONTESTED = "contested"
    UNVERIFIED = "unverified"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class GuardStatus:
    """The export guard as the sensor, the panel and the notifications show it."""

    state: GuardState = GuardState.UNKNOWN
    wanted_limit_kw: float | None = None
    device_limit_kw: float | None = None
    wanted_mode: str | None = None
    device_mode: str | None = None
    last_verified_at: float | None = None
    last_drift_at: float | None = None
    drifts_24h: int = 0
    message: str = ""
    save_error: str = ""  # why wanted.json could not be written (a full disk); empty: saved

    def attributes(self) -> dict[str, Any]:
        """Everything but the state and the message, JSON-ready."""
        data = asdict(self)
        del data["state"], data["message"]
        return data


@dataclass(frozen=True, slots=True)
class SetBy:
    """Who wrote the limit the controller holds, as the audit trail names them, and when."""

    origin: str  # panel:<user>, home_assistant:<user>, policy, guard, startup, cli, mqtt …
    command: str  # set_export_limit, export_disable, ceiling, restore …
    at: float


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One finished command, for the command log and the chart markers."""

    at: float
    source: str
    command: str
    feedback: int
    message: str
    request_id: str | None = None
    refusal: Refusal | None = None  # a refused input: the rule it broke

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)
