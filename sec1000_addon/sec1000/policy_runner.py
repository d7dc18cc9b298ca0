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
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sec1000.options import Options
from sec1000.policy import (
    Decision,
    PolicyMemory,
    PolicyState,
    PriceInput,
    decide,
)
from sec1000.prices import read_price

_LOGGER = logging.getLogger(__name__)

# Commands that set the export by hand: while the policy is on, each is an override.
MANUAL_COMMANDS = frozenset(
    {"export_enable", "export_disable", "export_toggle", "set_export_limit"}
)
# Sources that are not a person: their writes are no override.
AUTOMATIC_SOURCES = frozenset({"policy", "guard", "startup", "poll"})
MAX_SLEEP = 300.0

Writer = Callable[[bool], Awaitable[bool]]  # export on (True) or off; True when verified


class PricePolicy:
    """The price policy's memory, its plan, and its writes."""

    def __init__(
        self,
        options: Callable[[], Options],
        write: Writer,
        export_state: Callable[[], str | None],
        publish: Callable[[Decision], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._options = options
        self._write = write
        self._export_state = export_state
        self._publish = publish
        self._clock = clock
        self.tz: dt.tzinfo | None = None
        self.price: PriceInput | None = None
        self.memory = PolicyMemory()
        self.decision = Decision(PolicyState.DISABLED, "the price policy is off", None)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- inputs

    def price_changed(
        self, state: object, attributes: object, received_at: float | None = None
    ) -> None:
        """A new state of the price entity (from Home Assistant, or the demo's source)."""
        now = self._clock() if received_at is None else received_at
        tz = self.tz or dt.datetime.now().astimezone().tzinfo or dt.UTC
        reading = read_price(state, attributes, dt.datetime.fromtimestamp(now, tz), tz)
        self.price = PriceInput(reading, now)
        self._wake.set()

    def command_seen(self, command: str, source: str) -> None:
        """A finished command: a manual export command while the policy is on overrides it."""
        options = self._options()
        if not (options.price_policy and options.price_entity) or command not in MANUAL_COMMANDS:
            return
        if source.split(" ", 1)[0] in AUTOMATIC_SOURCES:
            return
        now = self._clock()
        until = self._next_boundary(now) or now + options.policy_min_dwell_minutes * 60
        self.memory.override_until = until
        _LOGGER.info("price policy: %s by %s overrides it until %s", command, source, until)
        self._wake.set()

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
        """Decide now; write when the wanted export differs from what was written."""
        async with self._lock:
            now = self._clock()
            memory = self.memory
            if memory.override_until is not None and now >= memory.override_until:
                memory.override_until = None
                memory.export_on = None  # what the user set by hand is what the controller holds
            if memory.export_on is None and (known := self._export_state()) is not None:
                memory.export_on = known == "on"
            decision = decide(self._options(), self.price, memory, now)
            if decision.state is PolicyState.DISABLED:
                memory.export_on = None  # learn it anew from the controller when turned on
            if decision.export is not None and decision.export != memory.export_on:
                if await self._write(decision.export):
                    memory.export_on = decision.export
                    memory.off_since = None if decision.export else now
                else:
                    reason = f"{decision.reason}; the write did not go through: tried again at the next poll"
                    decision = replace(decision, reason=reason)
            self._remember(decision, now)
            return decision

    def _remember(self, decision: Decision, now: float) -> None:
        memory = self.memory
        if decision.state != memory.last_state:
            memory.state_since = now
            memory.last_state = decision.state
        decision = replace(decision, since=memory.state_since)
        last = memory.decisions[-1] if memory.decisions else None
        if last is None or (last.reason, last.state) != (decision.reason, decision.state):
            memory.decisions.append(decision)
        self.decision = decision
        self._publish(decision)

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
                    at
                    for at in (
                        decision.next_change_at,
                        self._next_boundary(now),
                        self.memory.override_until,
                    )
                    if at is not None and at > now
                ]
                sleep = min([MAX_SLEEP, *(at - now for at in planned)])
            except Exception:
                _LOGGER.exception("price policy: evaluating failed; carrying on")
                sleep = MAX_SLEEP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(sleep, 0.05))
