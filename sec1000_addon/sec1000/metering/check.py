"""The meter check of one controller: every good read counted, export over the limit shown
while it lasts and audited once when it ends, the guard woken by a read above the limit, and
the compliance report from the book and the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sec1000.common.units import kilowatts
from sec1000.limiter.audit import DRIFT, OVERSHOOT, AuditKind, AuditLog, is_write, kind_of
from sec1000.metering.compliance import compliance_csv
from sec1000.metering.energy import EnergyMeter, Sample
from sec1000.metering.overshoot import Overshoot, Step, threshold_kw
from sec1000.options import Options
from sec1000.protocol import ControlMode
from sec1000.state import StateEvent, StateModel, TelemetryChanged

_LOGGER = logging.getLogger(__name__)


def overshoot_entry(overshoot: Overshoot) -> dict[str, object]:
    """An overshoot's one line in the audit trail, written when it ended."""
    lasted = ((overshoot.until or overshoot.since) - overshoot.since) / 60
    message = (
        f"export up to {overshoot.max_kw:.2f} kW with a limit of {overshoot.limit_kw:.2f} kW "
        f"for {lasted:.1f} min: {overshoot.energy_over_kwh:.3f} kWh above the limit and margin"
    )
    if overshoot.at_stop:
        message += "; still under way when the add-on stopped (counted up to its last read)"
    return {
        "origin": "meter",
        "command": OVERSHOOT,
        **overshoot.as_dict(),
        "verified": False,
        "message": message,
    }


class MeterCheck:
    """Counts each good read into the energy meter and judges it against the limit."""

    def __init__(
        self,
        energy: EnergyMeter,
        state: StateModel,
        audit: AuditLog,
        options: Callable[[], Options],
        wake_guard: Callable[[], None],
    ) -> None:
        self.energy = energy
        self.state = state
        self.audit = audit
        self._options = options
        self._wake_guard = wake_guard

    def on_event(self, event: StateEvent) -> None:
        """Every good telemetry read moves the energy counters and is judged."""
        if not isinstance(event, TelemetryChanged) or not event.available:
            return
        assert event.values is not None and event.at is not None  # a good read has both
        state = self.state
        limiter_on = state.control_mode not in (None, ControlMode.DEACTIVATED)
        # The meter check counts reads while a limit holds by value, outside a reset's window.
        by_value = state.control_mode is ControlMode.VALUE and not state.watchdog_running
        sample = Sample.of(event.at, event.values, state.export_limit_kw, limiter_on, by_value)
        step = self.energy.add(sample)
        state.energy_counted(self.energy.snapshot())
        self.report(step)
        if self.over_limit(sample.meters):
            self._wake_guard()  # another tool may have raised the limit: read it now

    def over_limit(self, export_kw: float) -> bool:
        """True when one read exports above the limit last read (or the ceiling) plus the meter
        check's margin, while a limit by value is wanted."""
        options, state = self._options(), self.state
        ceiling_w = options.ceiling_w
        limits = [kilowatts(ceiling_w)] if ceiling_w is not None else []
        if state.control_mode is ControlMode.VALUE and state.export_limit_kw is not None:
            limits.append(state.export_limit_kw)
        if not limits or state.watchdog_running:
            return False
        return export_kw > threshold_kw(min(limits), options.overshoot_margin_kw)

    def report(self, step: Step) -> None:
        """The meter check's news: shown while it lasts, audited once when it ends (or when the
        add-on stops during it)."""
        if step.ended is not None:
            ended = step.ended
            self.state.overshoot_seen(ended.as_dict(), ended=True)
            entry = overshoot_entry(ended)
            self.audit.append(entry)
            _LOGGER.warning("export over the limit ended: %s", entry["message"])
        elif (active := self.energy.detector.active) is not None:
            if step.started is not None:
                _LOGGER.warning(
                    "export over the limit: %.2f kW with a %.2f kW limit",
                    active.max_kw,
                    active.limit_kw,
                )
            self.state.overshoot_seen(active.as_dict())

    def stop(self) -> None:
        """The add-on stops: an overshoot under way is audited up to its last read."""
        self.report(Step(ended=self.energy.detector.close()))

    def audited(self, entry: Mapping[str, Any]) -> None:
        """Every audit entry: the day's limiter writes and drifts, for the compliance report."""
        if entry.get("command") == DRIFT:
            self.energy.count("drifts")
        elif "requested" in entry and is_write(entry):
            self.energy.count("writes")

    async def compliance_csv(self, days: int) -> str:
        """The compliance report: the energy book's days with each overshoot the audit trail
        keeps (and the one under way) and the limit in force during it."""
        entries = await self.audit.everything()
        overshoots = [entry for entry in entries if kind_of(entry) is AuditKind.OVERSHOOT]
        if (active := self.energy.detector.active) is not None:
            overshoots.append(active.as_dict())
        return compliance_csv(self.energy, days, overshoots)
