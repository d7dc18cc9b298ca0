"""The state model's events: one class per topic, each carrying its own typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, get_args

from sec1000.commands import CommandName
from sec1000.state.records import CommandRecord, GuardStatus


class Topic(StrEnum):
    """What a state event is about."""

    TELEMETRY = "telemetry"
    SETTINGS = "settings"
    FEEDBACK = "feedback"
    LINK = "link"
    RESTORE = "restore"
    COMMAND = "command"
    OPTIONS = "options"
    GUARD = "guard"
    ENERGY = "energy"
    POLICY = "policy"
    OVERSHOOT = "overshoot"


@dataclass(frozen=True, slots=True)
class TelemetryChanged:
    """A good read (`available`), or the values going unavailable after failed reads."""

    topic: ClassVar[Topic] = Topic.TELEMETRY
    values: Mapping[str, float] | None
    at: float | None
    available: bool


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The export settings as now known (a read-back, a confirmed write, a new minimum)."""

    topic: ClassVar[Topic] = Topic.SETTINGS
    export_limit: float | None
    control_mode: str | None
    total_capacity: float | None
    ct_ratio: int | None
    export_state: str | None
    module_started: bool


@dataclass(frozen=True, slots=True)
class FeedbackChanged:
    """An operation started (feedback 0) or ended with a feedback bitmap."""

    topic: ClassVar[Topic] = Topic.FEEDBACK
    operation: CommandName
    feedback: int
    message: str


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The link's health after an exchange (`LinkHealth.as_dict()`)."""

    topic: ClassVar[Topic] = Topic.LINK
    health: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RestoreChanged:
    """The watchdog's restore record or its off window changed."""

    topic: ClassVar[Topic] = Topic.RESTORE
    pending: bool
    error: str | None
    running: bool
    retired: str | None
    off_until: float | None


@dataclass(frozen=True, slots=True)
class CommandDone:
    """A command finished."""

    topic: ClassVar[Topic] = Topic.COMMAND
    record: CommandRecord


@dataclass(frozen=True, slots=True)
class OptionsApplied:
    """The runtime applied options (as the options file holds them)."""

    topic: ClassVar[Topic] = Topic.OPTIONS
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GuardChanged:
    """The export guard's view changed."""

    topic: ClassVar[Topic] = Topic.GUARD
    status: GuardStatus


@dataclass(frozen=True, slots=True)
class EnergyCounted:
    """The energy counters moved (`EnergyMeter.snapshot()`)."""

    topic: ClassVar[Topic] = Topic.ENERGY
    energy: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyDecided:
    """The price policy's state, attributes, last decisions and plan changed."""

    topic: ClassVar[Topic] = Topic.POLICY
    policy: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OvershootChanged:
    """The meter check: an overshoot under way or ended, and the day's periods."""

    topic: ClassVar[Topic] = Topic.OVERSHOOT
    overshoot: Mapping[str, Any]


StateEvent = (
    TelemetryChanged
    | SettingsChanged
    | FeedbackChanged
    | LinkChanged
    | RestoreChanged
    | CommandDone
    | OptionsApplied
    | GuardChanged
    | EnergyCounted
    | PolicyDecided
    | OvershootChanged
)
"""Any state event; `event.topic` says which."""

EVENT_TYPES: tuple[type[StateEvent], ...] = get_args(StateEvent)
