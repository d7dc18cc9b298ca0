"""Runs the price policy: takes prices as they come, decides, writes through the operations.

Evaluated when the price changes, at every telemetry poll (so a controller that did not answer
is tried again), at the next planned change (a slot boundary, the dwell's end, an override's
end), and when the options change.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sec1000.common.tasks import wait_set
from sec1000.options import Options
from sec1000.pricing.decide import (
    Decision,
    PolicyMemory,
    PolicyState,
    PriceInput,
    decide,
    decision_json,
    off_windows,
)
from sec1000.pricing.reading import (
    PriceReading,
    ServiceForecast,
    keep_forecast,
    read_price,
    with_forecast,
    zone_named,
)
from sec1000.state import UNLIMITED

_LOGGER = logging.getLogger(__name__)

# Commands that set the export by hand: while the policy is on, each is an override.
MANUAL_COMMANDS = frozenset(
    {"export_enable", "export_disable", "export_toggle", "set_export_limit"}
)
# Sources that are not a person: their writes are no override.
AUTOMATIC_SOURCES = frozenset({"policy", "guard", "startup", "poll"})
MAX_SLEEP = 300.0

Writer = Callable[[bool], Awaitable[bool]]  # export on (True) or off; True when verified


@dataclass(frozen=True, slots=True)
class ServiceInput:
    """A price service's forecast as last fetched: where from (`domain.service`), when, and the
    slots or in words why there are none."""

    source: str
    forecast: ServiceForecast
    fetched_at: float


# UTC from the zone database when there is one, read once at import: the panel and every policy
# then find it by its name in ZoneInfo's cache, never on the disk while the loop runs.
UTC_ZONE: dt.tzinfo = zone_named("UTC") or dt.UTC


def default_zone(environ: Mapping[str, str] = os.environ) -> tuple[dt.tzinfo, str]:
    """The container's zone (`TZ`), else UTC, with where it came from."""
    zone = zone_named(environ.get("TZ"))
    if zone is not None:
        return zone, "TZ"
    return UTC_ZONE, "UTC"


@dataclass(frozen=True, slots=True)
class Clock:
    """The wall clock (prices and their slots) and the monotonic one (an override's length)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


WALL_CLOCKS = Clock()


class PricePolicy:
    """The price policy's memory, its plan, and its writes."""

    def __init__(
        self,
        options: Callable[[], Options],
        write: Writer,
        export_state: Callable[[], str | None],
        publish: Callable[[Mapping[str, Any]], None],
        *,
        clock: Clock = WALL_CLOCKS,
    ) -> None:
        self._options = options
        self._write = write
        self._export_state = export_state
        self._publish = publish
        self._clock = clock.wall
        self._monotonic = clock.monotonic
        self.tz, self.tz_from = default_zone()
        self._price: PriceInput | None = None  # the sensor's reading with the service's slots
        self._sensor: PriceInput | None = None
        self.service: ServiceInput | None = None
        self.memory = PolicyMemory()
        self.decision = Decision(PolicyState.DISABLED, "the price policy is off", None)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry_at: float | None = None  # a failed write is not made again before this
        self._override_by: tuple[str, str] | None = None  # the manual command that started it

    # -- inputs

    def set_time_zone(self, zone: dt.tzinfo, origin: str) -> None:
        """The zone local days and times are read in, and where it came from."""
        self.tz, self.tz_from = zone, origin

    def price_changed(
        self, state: object, attributes: object, received_at: float | None = None
    ) -> None:
        """A new state of the price entity (from Home Assistant, or the demo's source); a state
        without a forecast keeps the one the sensor gave before."""
        now = self._clock() if received_at is None else received_at
        when = dt.datetime.fromtimestamp(now, self.tz)
        reading = read_price(state, attributes, when, self.tz)
        before = self._sensor.reading if self._sensor is not None else None
        self._sensor = PriceInput(keep_forecast(before, reading, when), now)
        self._combine()

    def forecast_changed(self, service: ServiceInput | None) -> None:
        """A price service's forecast (None: the entity has no service, or it changed)."""
        self.service = service
        self._combine()

    @property
    def price(self) -> PriceInput | None:
        """The price the policy decides on: the sensor's reading with the service's slots."""
        return self._price

    @price.setter
    def price(self, price: PriceInput | None) -> None:
        """Set the price outright (None: another price entity, nothing of the old counts)."""
        self._price = self._sensor = price
        self.service = None

    def forget_price(self) -> None:
        """Another price entity: nothing of the old one's prices counts."""
        self.price = None

    def snapshot(self, decision: Decision) -> dict[str, Any]:
        """What the panel, Home Assistant and the diagnostics show: the state, the sensor's
        attributes, the last decisions, the price slots, the zone and the planned off windows."""
        options = self._options()
        reading = self.price.reading if self.price is not None else None
        return {
            "state": decision.state.value,
            "attributes": decision.attributes(options, self.tz),
            "decisions": [decision_json(d) for d in self.memory.decisions],
            "slots": [
                [slot.start.timestamp(), slot.end.timestamp(), slot.price, slot.estimate]
                for slot in (reading.slots if reading is not None else ())
            ],
            "time_zone": str(self.tz),
            "off_windows": [
                [start.timestamp(), end.timestamp()] for start, end in off_windows(options, reading)
            ],
        }

    def _combine(self) -> None:
        sensor, service = self._sensor, self.service
        slots = service.forecast.slots if service is not None else ()
        source = f"service:{service.source}" if service is not None else "state"
        if sensor is not None:
            now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            reading = with_forecast(sensor.reading, slots, source, now)
            self._price = PriceInput(reading, sensor.received_at)
        elif service is not None and slots:
            self._price = PriceInput(PriceReading(None, slots, source), service.fetched_at)
        else:
            self._price = None
        self._wake.set()

    def diagnostics(self) -> dict[str, Any]:
        """The zone, where the forecast comes from, and the price as last received."""
        source, note = self.forecast_words()
        price, service = self._price, self.service
        return {
            "time_zone": str(self.tz),
            "time_zone_from": self.tz_from,
            "forecast_source": source,
            "forecast_note": note,
            "slots": len(price.reading.slots) if price is not None else 0,
            "state_price": price.reading.state if price is not None else None,
            "received_at": price.received_at if price is not None else None,
            "service_fetched_at": service.fetched_at if service is not None else None,
        }

    def own_forecast(self) -> bool:
        """Whether the price sensor's attributes give a forecast (no service is needed)."""
        return self._sensor is not None and bool(self._sensor.reading.slots)

    def forecast_words(self) -> tuple[str, str]:
        """Where the forecast comes from ("attributes:<format>", "service:<domain.service>" or
        "none") and a sentence on it."""
        reading = self.price.reading if self.price is not None else None
        service = self.service
        if reading is not None and reading.slots:
            if reading.source.startswith("service:"):
                return reading.source, f"forecast from {reading.source.removeprefix('service:')}"
            return f"attributes:{reading.source}", "forecast from the price sensor's attributes"
        if service is not None and service.forecast.problem:
            why = service.forecast.problem
        else:
            why = "the price sensor's attributes hold no forecast"
        return "none", f"current price only: {why}"

    def command_seen(self, command: str, source: str) -> None:
        """A manual export command accepted, before its first packet: while the policy is on,
        it overrides it from now on. The policy's re-check that the command's own write wakes
        then finds the override in place and never undoes the command."""
        options = self._options()
        if not (options.price_policy and options.price_entity) or command not in MANUAL_COMMANDS:
            return
        if source.split(" ", 1)[0] in AUTOMATIC_SOURCES:
            return
        now = self._clock()
        until = self._next_boundary(now) or now + options.policy_min_dwell_minutes * 60
        self.memory.override_until = until
        # The same moment on the monotonic clock: a wall clock set back never stretches it.
        self.memory.override_deadline = self._monotonic() + max(until - now, 0.0)
        self._override_by = (command, source)
        _LOGGER.info("price policy: %s by %s overrides it until %s", command, source, until)
        self._wake.set()

    def command_failed(self, command: str, source: str) -> None:
        """The manual command that started the override failed: the override ends, and the
        policy decides again from what the controller holds."""
        if self._override_by == (command, source) and self.memory.override_until is not None:
            _LOGGER.info("price policy: %s by %s failed; its override ends", command, source)
            self._override_by = None
            self.resume()

    def resume(self) -> None:
        """End a manual override now: the policy learns the export anew and decides at once."""
        self.memory.override_until = None
        self.memory.export_on = None
        self._wake.set()

    def wake(self) -> None:
        """Decide again now (options changed, a poll ended: a failed write is tried again)."""
        self._wake.set()

    def _next_boundary(self, now: float) -> float | None:
        if self.price is None:
            return None
        boundary = self.price.reading.next_boundary(dt.datetime.fromtimestamp(now, dt.UTC))
        return boundary.timestamp() if boundary is not None else None

    # -- deciding and writing

    async def evaluate(self) -> Decision:
        """Decide now and compare the decision with what the controller holds, not with what
        the policy wrote last: a write that failed, was undone by somebody else or never came
        is made again (a failed one after `scan_interval` at the earliest)."""
        async with self._lock:
            now = self._clock()
            memory = self.memory
            if memory.override_until is not None and self._override_over(now):
                memory.override_until = memory.override_deadline = None
            known = self._export_state()
            holds = None if known is None else known != "off"
            if holds is not None:
                memory.export_on = holds
            decision = decide(self._options(), self.price, memory, now, self.tz)
            if known == UNLIMITED and decision.state is not PolicyState.DISABLED:
                decision = replace(
                    decision,
                    state=PolicyState.OVERRIDE,
                    export=None,
                    reason="overridden: the control mode is Off (deactivated), so the controller "
                    "exports without any limit whatever the price; set the mode back in Setup",
                )
            elif decision.export is not None and decision.export != holds:
                decision = await self._carry_out(decision, now)
            return self._remember(decision, now)

    async def _carry_out(self, decision: Decision, now: float) -> Decision:
        memory = self.memory
        if self._retry_at is not None and now < self._retry_at:
            at = dt.datetime.fromtimestamp(self._retry_at, self.tz).strftime("%H:%M:%S")
            return replace(
                decision,
                reason=f"{decision.reason}; the last write did not go through: tried again at {at}",
            )
        assert decision.export is not None
        if await self._write(decision.export):
            self._retry_at = None
            memory.export_on = decision.export
            memory.off_since = None if decision.export else now
            return decision
        self._retry_at = now + self._options().scan_interval
        return replace(
            decision, reason=f"{decision.reason}; the write did not go through: tried again soon"
        )

    def _override_over(self, now: float) -> bool:
        """Past its slot boundary on the wall clock, or its length on the monotonic clock."""
        memory = self.memory
        past_wall = memory.override_until is not None and now >= memory.override_until
        deadline = memory.override_deadline
        return past_wall or (deadline is not None and self._monotonic() >= deadline)

    def _remember(self, decision: Decision, now: float) -> Decision:
        memory = self.memory
        if decision.state != memory.last_state:
            memory.state_since = now
            memory.last_state = decision.state
        source, note = self.forecast_words()
        decision = replace(
            decision, since=memory.state_since, forecast_source=source, forecast_note=note
        )
        last = memory.decisions[-1] if memory.decisions else None
        if last is None or (last.reason, last.state) != (decision.reason, decision.state):
            memory.decisions.append(decision)
        self.decision = decision
        self._publish(self.snapshot(decision))
        return decision

    # -- the timer

    def start(self) -> None:
        """Evaluate on every wake and at the next planned change."""
        self._task = asyncio.create_task(self._run(), name="sec1000-price-policy")

    async def stop(self) -> None:
        """Stop the timer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before deciding: a wake during a write is not lost
            try:
                decision = await self.evaluate()
                now = self._clock()
                planned = [
                    at - now
                    for at in (
                        decision.next_change_at,
                        self._next_boundary(now),
                        self.memory.override_until,
                        self._retry_at,
                    )
                    if at is not None and at > now
                ]
                if (deadline := self.memory.override_deadline) is not None:
                    planned.append(deadline - self._monotonic())
                sleep = min([MAX_SLEEP, *planned])
            except Exception:
                _LOGGER.exception("price policy: evaluating failed; carrying on")
                sleep = MAX_SLEEP
            await wait_set(self._wake, max(sleep, 0.05))
