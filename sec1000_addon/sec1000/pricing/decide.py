"""The price policy: export off when the grid pays badly, back on after a dwell, on a visible plan.

Off is never delayed: a price below `export_off_below` switches export off at once. On waits
for a price at or above `export_on_above` (hysteresis) and for export to have been off for
`policy_min_dwell_minutes`. The sensor's state is the current price while it is fresh: reported
within the slot that covers now, or, outside the forecast, less than `price_stale_minutes` ago;
otherwise the forecast's slot gives the price. Without either the price is stale and
`price_stale_action` applies. A manual export command while the policy is on is an override
that holds until the next price slot boundary (or the dwell, without a forecast).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from sec1000.options import Options
from sec1000.pricing.reading import PriceReading

DECISIONS_KEPT = 10


class PolicyState(StrEnum):
    """What the policy wants now (the sensor's state)."""

    EXPORT_ON = "export_on"
    EXPORT_OFF = "export_off"
    OVERRIDE = "override"
    STALE = "stale"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Decision:
    """One evaluation: what the policy wants, why, and when that may change."""

    state: PolicyState
    reason: str
    export: bool | None  # True: export on, False: off, None: leave the controller alone
    price: float | None = None
    since: float | None = None
    next_change_at: float | None = None
    next_state: PolicyState | None = None
    override_until: float | None = None
    forecast_source: str | None = None  # "attributes:<format>", "service:<domain.service>", "none"
    forecast_note: str | None = None  # in words, e.g. why there is only the current price

    def attributes(self, options: Options, tz: dt.tzinfo | None = None) -> dict[str, Any]:
        """The sensor's attributes (times in `tz`, else the system's zone)."""
        return {
            "reason": self.reason,
            "price": self.price,
            "export_off_below": options.export_off_below,
            "export_on_above": options.export_on_above,
            "since": _iso(self.since, tz),
            "next_change_at": _iso(self.next_change_at, tz),
            "next_state": self.next_state.value if self.next_state else None,
            "override_until": _iso(self.override_until, tz),
            "forecast_source": self.forecast_source,
            "forecast_note": self.forecast_note,
        }


def _iso(at: float | None, tz: dt.tzinfo | None = None) -> str | None:
    if at is None:
        return None
    return dt.datetime.fromtimestamp(at, tz).astimezone(tz).isoformat(timespec="seconds")


@dataclass
class PolicyMemory:
    """What the policy remembers between evaluations."""

    export_on: bool | None = None  # what it last wrote (None: nothing yet)
    off_since: float | None = None  # when export went off (for the dwell)
    state_since: float | None = None
    last_state: PolicyState | None = None
    override_until: float | None = None  # wall clock: the slot boundary it holds until
    override_deadline: float | None = None  # monotonic: the same moment, immune to clock jumps
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=DECISIONS_KEPT))


@dataclass(frozen=True, slots=True)
class PriceInput:
    """The price as last received: the reading and when it arrived."""

    reading: PriceReading
    received_at: float


def decide(
    options: Options,
    price: PriceInput | None,
    memory: PolicyMemory,
    now: float,
    tz: dt.tzinfo | None = None,
) -> Decision:
    """What export should be now, with the reason in words and the next planned change
    (local times in the reason in `tz`, else the system's zone)."""
    if not options.price_policy or not options.price_entity:
        return Decision(PolicyState.DISABLED, "the price policy is off", None)
    current, fresh = price_now(options, price, now)
    if memory.override_until is not None and now < memory.override_until:
        return Decision(
            PolicyState.OVERRIDE,
            "a manual export command holds until the override ends",
            None,
            current,
            override_until=memory.override_until,
            next_change_at=memory.override_until,
        )
    moment = Moment(options, price, memory, now, tz)
    if current is None or not fresh:
        return _stale_decision(moment, current)
    return _price_decision(moment, current)


@dataclass(frozen=True, slots=True)
class Moment:
    """What one decision looks at: the options, the price, the memory, the time and the zone."""

    options: Options
    price: PriceInput | None
    memory: PolicyMemory
    now: float
    tz: dt.tzinfo | None


def price_now(options: Options, price: PriceInput | None, now: float) -> tuple[float | None, bool]:
    """The price now and whether it is current (not stale).

    The state is the current price when it was reported within the slot that covers now, or,
    outside the forecast, when it is younger than `price_stale_minutes` and was not reported
    within a slot that has ended since. Otherwise the slot that covers now gives the price.
    """
    if price is None:
        return None, False
    reading = price.reading
    slot = reading.slot_at(dt.datetime.fromtimestamp(now, dt.UTC))
    state = reading.state
    if state is not None:
        reported_in = reading.slot_at(dt.datetime.fromtimestamp(price.received_at, dt.UTC))
        if slot is not None and reported_in == slot:
            return state, True
        if slot is None and reported_in is None:
            return state, now - price.received_at <= options.price_stale_minutes * 60
    if slot is not None:
        return slot.price, True
    return (state if state is not None else reading.current), False


def _stale_decision(moment: Moment, current: float | None) -> Decision:
    options = moment.options
    action = options.price_stale_action
    words = (
        "no price yet"
        if moment.price is None
        else f"no current price for {options.price_stale_minutes} min"
    )
    if action == "export_off":
        return Decision(
            PolicyState.STALE, f"{words}: export off (price_stale_action)", False, current
        )
    if action == "export_on":
        reason = f"{words}: export on (price_stale_action)"
        return _switch_on(moment, current, PolicyState.STALE, reason)
    return Decision(PolicyState.STALE, f"{words}: the controller is left as it is", None, current)


def _price_decision(moment: Moment, current: float) -> Decision:
    options, price, memory, now = moment.options, moment.price, moment.memory, moment.now
    plan = _plan(options, price, now, current)
    if current < options.export_off_below:
        reason = f"price {current:g} is below {options.export_off_below:g}: export off"
        return replace(Decision(PolicyState.EXPORT_OFF, reason, False, current), **plan)
    if current >= options.export_on_above:
        reason = f"price {current:g} is at or above {options.export_on_above:g}: export on"
        if memory.export_on is False and (back := _low_again(moment)):
            reason += f", but back below {options.export_off_below:g} at {back}, within the dwell"
            stay = Decision(PolicyState.EXPORT_OFF, f"{reason}: export stays off", None, current)
            return replace(stay, **plan)
        return replace(_switch_on(moment, current, PolicyState.EXPORT_ON, reason), **plan)
    keep = memory.export_on is not False
    state = PolicyState.EXPORT_ON if keep else PolicyState.EXPORT_OFF
    reason = (
        f"price {current:g} is between {options.export_off_below:g} and "
        f"{options.export_on_above:g}: export stays {'on' if keep else 'off'}"
    )
    return replace(Decision(state, reason, None, current), **plan)


def _low_again(moment: Moment) -> str | None:
    """The local time ("HH:MM") of a forecast slot below the off price within the dwell, if any:
    switching on for so short a time would only cost two writes."""
    options, price, now = moment.options, moment.price, moment.now
    if price is None:
        return None
    horizon = now + options.policy_min_dwell_minutes * 60
    for slot in price.reading.slots:
        start = slot.start.timestamp()
        if now < start <= horizon and slot.price < options.export_off_below:
            return slot.start.astimezone(moment.tz).strftime("%H:%M")
    return None


def _switch_on(moment: Moment, current: float | None, state: PolicyState, reason: str) -> Decision:
    """Export on, unless it has not been off for the dwell yet."""
    options, memory, now = moment.options, moment.memory, moment.now
    dwell = options.policy_min_dwell_minutes * 60
    if (
        memory.export_on is False
        and memory.off_since is not None
        and now - memory.off_since < dwell
    ):
        until = memory.off_since + dwell
        return Decision(
            PolicyState.EXPORT_OFF,
            f"{reason}, after {options.policy_min_dwell_minutes} min off (the dwell)",
            None,
            current,
            next_change_at=until,
            next_state=PolicyState.EXPORT_ON,
        )
    return Decision(state, reason, True, current)


def _plan(options: Options, price: PriceInput | None, now: float, current: float) -> dict[str, Any]:
    """The next slot boundary where the wanted state changes, from the forecast."""
    if price is None or not price.reading.slots:
        return {}
    off_now = current < options.export_off_below
    for slot in price.reading.slots:
        start = slot.start.timestamp()
        if start <= now:
            continue
        if not off_now and slot.price < options.export_off_below:
            return {"next_change_at": start, "next_state": PolicyState.EXPORT_OFF}
        if off_now and slot.price >= options.export_on_above:
            return {"next_change_at": start, "next_state": PolicyState.EXPORT_ON}
    return {}


def off_windows(
    options: Options, reading: PriceReading | None
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The planned export-off windows of a forecast (merged slots below the threshold)."""
    if reading is None:
        return []
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    for slot in reading.slots:
        if slot.price >= options.export_off_below:
            continue
        if windows and windows[-1][1] >= slot.start:
            windows[-1] = (windows[-1][0], max(windows[-1][1], slot.end))
        else:
            windows.append((slot.start, slot.end))
    return windows


def decision_json(decision: Decision) -> Mapping[str, Any]:
    """A decision for diagnostics and the panel."""
    data = asdict(decision)
    data["state"] = decision.state.value
    data["next_state"] = decision.next_state.value if decision.next_state else None
    return data
