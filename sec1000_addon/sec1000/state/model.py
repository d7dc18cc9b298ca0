"""One in-memory model of what is known about the plant, emitting change events."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from sec1000.commands import FEEDBACK_COMMANDS, CommandName
from sec1000.common.units import kilowatts, whole_watts
from sec1000.device.health import LinkHealth
from sec1000.protocol import ControlMode, ExportSettings, Feedback
from sec1000.state.events import (
    CommandDone,
    EnergyCounted,
    FeedbackChanged,
    GuardChanged,
    LinkChanged,
    OptionsApplied,
    OvershootChanged,
    PolicyDecided,
    RestoreChanged,
    SettingsChanged,
    StateEvent,
    TelemetryChanged,
)
from sec1000.state.records import CommandRecord, GuardStatus, SetBy
from sec1000.state.series import HISTORY_SECONDS, DaySeries, HistoryPoint

_LOGGER = logging.getLogger(__name__)

HISTORY_DAY = 86400.0  # overshoot periods kept for the chart
LIMIT_LOG_SECONDS = 2 * 86400  # the export limit's changes, for the Prices card's time axis
LIMIT_LOG_SIZE = 2000
COMMAND_LOG_SIZE = 100
# Telemetry sensors become unavailable after this many failed reads in a row.
UNAVAILABLE_AFTER_FAILURES = 3
# Export is "off" while the limit is less than 10 W (one step) above the minimum, as the old
# integration had it: off at minimum + 0.009 kW, on at minimum + 0.01 kW.
EXPORT_OFF_MARGIN_W = 10
UNLIMITED = "unlimited"  # the export state while the control mode is deactivated

Listener = Callable[[StateEvent], None]


class StateModel:
    """What the add-on knows; adapters read it and subscribe to its events."""

    def __init__(
        self,
        min_export_limit_kw: float = 0.0,
        *,
        health: LinkHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._listeners: list[Listener] = []
        self.min_export_limit_kw = min_export_limit_kw
        self.telemetry: Mapping[str, float] | None = None
        self.telemetry_at: float | None = None
        self.telemetry_failures = 0
        self.export_limit_kw: float | None = None
        self.control_mode: ControlMode | None = None
        self.total_capacity_kw: float | None = None
        self.ct_ratio: int | None = None
        self.module_started = False
        # Every feedback starts at 1 (OK), as the old integration's FEEDBACK_INIT = 1 did.
        self.feedback: dict[CommandName, int] = dict.fromkeys(FEEDBACK_COMMANDS, int(Feedback.OK))
        self.messages: dict[CommandName, str] = {}
        self.link: LinkHealth = health if health is not None else LinkHealth()
        self.restore_pending = False
        self.restore_error: str | None = None
        self.watchdog_running = False
        # The watchdog reset's off window: the wall time the limiter goes back on (None: shut).
        self.watchdog_off_until: float | None = None
        self.restore_retired: str | None = None
        self.guard = GuardStatus()
        # The last confirmed limiter write (None: nothing written since the audit trail began).
        self.set_by: SetBy | None = None
        self.energy: Mapping[str, Any] = {}
        # The meter check: an overshoot under way (on, since, max_kw, limit_kw, energy_over_kwh)
        # and the periods of the last day (since, until or None), for the chart.
        self.overshoot: dict[str, Any] = {"on": False, "periods": []}
        self.policy: Mapping[str, Any] = {"state": "disabled", "attributes": {}, "decisions": []}
        self.history: deque[HistoryPoint] = deque()
        self.day = DaySeries()
        # (time, kW) at each change; bounded by age and by count (a command storm)
        self.limit_log: deque[tuple[float, float]] = deque(maxlen=LIMIT_LOG_SIZE)
        self.commands: deque[CommandRecord] = deque(maxlen=COMMAND_LOG_SIZE)

    # -- subscriptions

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: StateEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("state listener failed on %s", event.topic)

    # -- derived values

    @property
    def telemetry_available(self) -> bool:
        """False after several failed reads in a row, or before the first good one."""
        return self.telemetry is not None and self.telemetry_failures < UNAVAILABLE_AFTER_FAILURES

    @property
    def export_state(self) -> str | None:
        """'unlimited' while the control mode is deactivated (no limit holds, whatever its
        value); else 'off' while the limit is less than 0.01 kW above the minimum, else 'on'."""
        if self.control_mode is ControlMode.DEACTIVATED:
            return UNLIMITED
        if self.export_limit_kw is None:
            return None
        above_w = whole_watts(self.export_limit_kw) - whole_watts(self.min_export_limit_kw)
        return "off" if above_w < EXPORT_OFF_MARGIN_W else "on"

    @property
    def exporting(self) -> bool | None:
        """True while export is on or unlimited, False while it is off, None when unknown:
        what an on/off switch shows."""
        state = self.export_state
        return None if state is None else state != "off"

    def known_settings(self) -> ExportSettings | None:
        """The controller's export settings as last known, when limit, mode and capacity are."""
        if None in (self.export_limit_kw, self.control_mode, self.total_capacity_kw):
            return None
        assert self.export_limit_kw is not None and self.control_mode is not None
        assert self.total_capacity_kw is not None
        return ExportSettings(
            self.control_mode,
            whole_watts(self.total_capacity_kw),
            self.ct_ratio or 0,
            whole_watts(self.export_limit_kw),
        )

    def settings(self) -> dict[str, Any]:
        """Export settings as last known."""
        return {
            "export_limit": self.export_limit_kw,
            "control_mode": self.control_mode.option if self.control_mode is not None else None,
            "total_capacity": self.total_capacity_kw,
            "ct_ratio": self.ct_ratio,
            "export_state": self.export_state,
            "module_started": self.module_started,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready (diagnostics, the panel's first render)."""
        return {
            "telemetry": dict(self.telemetry) if self.telemetry is not None else None,
            "telemetry_at": self.telemetry_at,
            "telemetry_available": self.telemetry_available,
            **self.settings(),
            "feedback": {name.value: value for name, value in self.feedback.items()},
            "messages": {name.value: text for name, text in self.messages.items()},
            "link": self.link.as_dict(),
            "restore_pending": self.restore_pending,
            "restore_error": self.restore_error,
            "watchdog_running": self.watchdog_running,
            "guard": {"state": self.guard.state.value, **self.guard.attributes()},
        }

    # -- updates (called by the operations and the link)

    def set_min_export_limit(self, kw: float) -> None:
        """The configured minimum changed: the export state may flip."""
        self.min_export_limit_kw = kw
        self._emit(SettingsChanged(**self.settings()))

    def telemetry_read(self, values: Mapping[str, float]) -> None:
        """A good telemetry read."""
        now = self._clock()
        self.telemetry = dict(values)
        self.telemetry_at = now
        self.telemetry_failures = 0
        self.module_started = True
        point = HistoryPoint(
            now,
            values["meters_power"],
            values["inverters_power"],
            values["load_power"],
            self.export_limit_kw,
        )
        self.history.append(point)
        self.day.add(point)
        while self.history and self.history[0].at < now - HISTORY_SECONDS:
            self.history.popleft()
        self._emit(TelemetryChanged(self.telemetry, now, available=True))

    def telemetry_failed(self) -> None:
        """A failed telemetry read; after several the values are unavailable."""
        was_available = self.telemetry_available
        self.telemetry_failures += 1
        if was_available != self.telemetry_available:
            self._emit(TelemetryChanged(self.telemetry, self.telemetry_at, available=False))

    def settings_read(
        self,
        export_limit_kw: float | None = None,
        control_mode: ControlMode | None = None,
        total_capacity_kw: float | None = None,
        ct_ratio: int | None = None,
    ) -> None:
        """Export settings learned from the device (read back, or confirmed by a write)."""
        if export_limit_kw is not None:
            self._log_limit(export_limit_kw)
            self.export_limit_kw = export_limit_kw
        if control_mode is not None:
            self.control_mode = control_mode
        if total_capacity_kw is not None:
            self.total_capacity_kw = total_capacity_kw
        if ct_ratio is not None:
            self.ct_ratio = ct_ratio
        self.module_started = True
        self._emit(SettingsChanged(**self.settings()))

    def _log_limit(self, kw: float) -> None:
        now = self._clock()
        if not self.limit_log or self.limit_log[-1][1] != kw:
            self.limit_log.append((now, kw))
        while len(self.limit_log) > 1 and self.limit_log[1][0] < now - LIMIT_LOG_SECONDS:
            self.limit_log.popleft()

    def written_by(self, origin: str, command: str, at: float | None = None) -> None:
        """A limiter write was confirmed by read-back; its settings event follows."""
        self.set_by = SetBy(origin, command, self._clock() if at is None else at)

    def settings_learned(self, settings: ExportSettings) -> None:
        """A 0x43 read-back: everything the controller holds."""
        self.settings_read(
            export_limit_kw=kilowatts(settings.export_limit_w),
            control_mode=settings.mode,
            total_capacity_kw=kilowatts(settings.total_capacity_w),
            ct_ratio=settings.ct_ratio,
        )

    def set_feedback(self, name: CommandName, value: int, message: str = "") -> None:
        """An operation started (0) or ended with a feedback bitmap; an unchanged one emits nothing."""
        if self.feedback.get(name) == value and self.messages.get(name) == message:
            return
        self.feedback[name] = int(value)
        self.messages[name] = message
        self._emit(FeedbackChanged(name, int(value), message))

    def link_changed(self) -> None:
        """The link's health changed (called by the link after each exchange)."""
        self._emit(LinkChanged(self.link.as_dict()))

    def set_restore(
        self,
        pending: bool,
        error: str | None = None,
        *,
        running: bool | None = None,
        retired: str | None = None,
    ) -> None:
        """The watchdog's restore record changed (`retired`: given up as impossible, and why)."""
        self.restore_pending = pending
        self.restore_error = error
        if running is not None:
            self.watchdog_running = running
        if retired is not None or pending:
            self.restore_retired = retired
        self._emit(self._restore_event())

    def watchdog_window(self, until: float | None) -> None:
        """The watchdog reset's off window opened (the limiter is back on at `until`, wall time)
        or shut (None)."""
        self.watchdog_off_until = until
        self._emit(self._restore_event())

    def _restore_event(self) -> RestoreChanged:
        return RestoreChanged(
            pending=self.restore_pending,
            error=self.restore_error,
            running=self.watchdog_running,
            retired=self.restore_retired,
            off_until=self.watchdog_off_until,
        )

    def set_guard(self, status: GuardStatus) -> None:
        """The export guard's view changed."""
        if status == self.guard:
            return
        self.guard = status
        self._emit(GuardChanged(status))

    def overshoot_seen(self, event: Mapping[str, Any] | None, ended: bool = False) -> None:
        """The meter check: an overshoot under way (`event`), or one that `ended`."""
        now = self._clock()
        periods = [
            p for p in self.overshoot.get("periods", []) if (p[1] or now) > now - HISTORY_DAY
        ]
        if event is not None:
            since, until = event["since"], event.get("until")
            periods = [p for p in periods if p[0] != since] + [[since, until]]
        data = {**(event or {}), "on": event is not None and not ended, "periods": periods}
        if data == self.overshoot:
            return
        self.overshoot = data
        self._emit(OvershootChanged(data))

    def energy_counted(self, snapshot: Mapping[str, Any]) -> None:
        """The energy counters moved (after a good read)."""
        self.energy = dict(snapshot)
        self._emit(EnergyCounted(self.energy))

    def policy_decided(self, policy: Mapping[str, Any]) -> None:
        """The price policy decided (its state, attributes, last decisions and plan)."""
        if dict(policy) == self.policy:
            return
        self.policy = dict(policy)
        self._emit(PolicyDecided(self.policy))

    def command_done(self, record: CommandRecord) -> None:
        """A command finished; log it."""
        self.commands.append(record)
        self._emit(CommandDone(record))

    def options_changed(self, options: Mapping[str, Any]) -> None:
        """The options were applied."""
        self._emit(OptionsApplied(dict(options)))
