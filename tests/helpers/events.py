"""State events as the model emits them, for tests of what an event changes."""

from __future__ import annotations

from sec1000.commands import CommandName
from sec1000.state import (
    CommandDone,
    CommandRecord,
    EnergyCounted,
    FeedbackChanged,
    GuardChanged,
    GuardStatus,
    LinkChanged,
    OptionsApplied,
    OvershootChanged,
    PolicyDecided,
    RestoreChanged,
    SettingsChanged,
    StateEvent,
    TelemetryChanged,
    Topic,
)

SAMPLES: dict[Topic, StateEvent] = {
    Topic.TELEMETRY: TelemetryChanged({"meters_power": 1.0}, 1.0, available=True),
    Topic.SETTINGS: SettingsChanged(3.0, "value", 10.0, 1, "on", module_started=True),
    Topic.FEEDBACK: FeedbackChanged(CommandName.SET_DATETIME, 1, ""),
    Topic.LINK: LinkChanged({"consecutive_failures": 0}),
    Topic.RESTORE: RestoreChanged(True, None, running=True, retired=None, off_until=1.0),
    Topic.COMMAND: CommandDone(CommandRecord(1.0, "panel", "set_export_limit", 1, "ok")),
    Topic.OPTIONS: OptionsApplied({"scan_interval": 10}),
    Topic.GUARD: GuardChanged(GuardStatus()),
    Topic.ENERGY: EnergyCounted({}),
    Topic.POLICY: PolicyDecided({"state": "disabled"}),
    Topic.OVERSHOOT: OvershootChanged({"on": True, "periods": []}),
}


def sample_event(topic: Topic) -> StateEvent:
    """One event of `topic`, with plausible values."""
    return SAMPLES[topic]
