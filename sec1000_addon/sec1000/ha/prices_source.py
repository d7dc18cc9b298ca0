"""The price entity in Home Assistant: its states to the policy, its forecast from a service.

`PriceFeed` feeds the price entity's states (`price_states`) to the policy and calls the price
service of the entity's integration (`price_services`) over the WebSocket (`call_service` with
`return_response`) at connect, where the forecast runs out, while tomorrow's prices are due, and
(Amber) at every interval. A sensor whose attributes hold a forecast needs no service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from sec1000.common.backoff import backoff_delays
from sec1000.common.tasks import wait_set
from sec1000.ha import CommandFailedError, HomeAssistantError, service_call
from sec1000.ha.price_services import (
    PriceService,
    Registered,
    Request,
    ServicePlan,
    next_refresh,
    plan_for,
)
from sec1000.ha.price_states import HaClock, attributes_of, compose, watched
from sec1000.pricing.reading import ServiceForecast, merge_forecasts, read_service, zone_named
from sec1000.pricing.runner import PricePolicy, ServiceInput

_LOGGER = logging.getLogger(__name__)

RETRY_FIRST = 600.0  # a failed service is asked again after 10 min, doubling up to 6 h
RETRY_MAX = 6 * 3600.0
OWN_FORECAST_CHECK = 900.0  # a sensor with its own forecast: look again now and then
STATE_WAIT = 5.0  # before the entity's first state: its attributes may hold the forecast


class Commands(Protocol):
    """What the feed needs of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""


class PriceFeed:
    """Feeds the price entity's states to the policy and fetches its service's forecast."""

    def __init__(
        self,
        policy: PricePolicy,
        client: Commands,
        price_entity: Callable[[], str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._client = client
        self._entity = price_entity
        self._clock = clock
        self.ha_clock = HaClock()
        self._states: dict[str, Mapping[str, Any]] = {}
        self._entry: Registered | str | None = None  # the registry entry, or why there is none
        self._wake = asyncio.Event()
        self._retries: Iterator[float] = backoff_delays(RETRY_FIRST, RETRY_MAX)
        self.connected = False

    # -- states

    def watched(self) -> tuple[str, ...]:
        """The entities whose states make up the price."""
        return watched(self._entity())

    def state_seen(self, state: Mapping[str, Any], fired: object = None) -> None:
        """A state from Home Assistant (`fired`: its event's time_fired, None for a read)."""
        learned = self.ha_clock.saw(fired, self._clock())
        entity_id = state.get("entity_id")
        if isinstance(entity_id, str) and entity_id in self.watched():
            if entity_id == self._entity() and entity_id not in self._states:
                self._wake.set()  # its first state: the forecast can be looked for now
            self._states[entity_id] = state
            self._feed()
        elif learned and self._states:
            self._feed()  # the first offset: the price's age is known only now

    def _feed(self) -> None:
        composed = compose(self._entity(), self._states)
        if composed is not None:
            state, attributes, reported = composed
            received = self.ha_clock.local(reported, self._clock())
            self._policy.price_changed(state, attributes, received)

    # -- connection and entity changes

    async def on_connected(self) -> None:
        """After every (re)connect: Home Assistant's zone; the forecast is fetched anew."""
        self.connected = True
        self._entry = None
        try:
            config = await self._client.send_command({"type": "get_config"})
        except HomeAssistantError as err:
            _LOGGER.warning("cannot read Home Assistant's time zone: %s", err)
            config = None
        name = config.get("time_zone") if isinstance(config, Mapping) else None
        zone = await asyncio.to_thread(zone_named, name)  # tzdata is read from disk once
        if zone is not None:
            changed = str(zone) != str(self._policy.tz)
            self._policy.set_time_zone(zone, "home_assistant")
            if changed:
                _LOGGER.info("prices are read in Home Assistant's time zone %s", zone)
                self._feed()  # the local days of the lists read so far were another zone's
        else:
            _LOGGER.warning(
                "Home Assistant's time zone %r is unknown; prices are read in %s (%s)",
                name,
                self._policy.tz,
                self._policy.tz_from,
            )
        self._wake.set()

    def on_disconnected(self) -> None:
        """The connection dropped: no service calls until the next connect."""
        self.connected = False

    def entity_changed(self) -> None:
        """Another price entity: its states and service start from nothing."""
        self._states.clear()
        self._entry = None
        self._retries = backoff_delays(RETRY_FIRST, RETRY_MAX)
        self._wake.set()

    # -- the service

    async def run(self) -> None:
        """Fetch the forecast whenever it is due; never ends but by cancellation."""
        while True:
            self._wake.clear()
            try:
                delay = await self._refresh()
            except Exception:
                _LOGGER.exception("fetching the price forecast failed; carrying on")
                delay = RETRY_FIRST
            await wait_set(self._wake, delay)

    async def _refresh(self) -> float | None:
        """One round; the seconds until the next (None: until something changes)."""
        entity = self._entity()
        if not self.connected or not entity:
            return None
        if entity not in self._states:
            return STATE_WAIT
        if self._policy.own_forecast():
            self._policy.forecast_changed(None)
            return OWN_FORECAST_CHECK
        entry = await self._lookup(entity)
        now = self._clock()
        attributes = attributes_of(self._states.get(entity))
        plan = (
            plan_for(entry, attributes, self._today(now), self._policy.tz)
            if isinstance(entry, Registered)
            else entry
        )
        if isinstance(plan, str):
            self._policy.forecast_changed(ServiceInput("", ServiceForecast((), plan), now))
            return None
        forecast = await self._fetch(plan)
        if entity != self._entity():
            return 0.0  # the entity changed meanwhile: this answer is not its
        self._policy.forecast_changed(ServiceInput(plan.service.name, forecast, now))
        return self._after(plan.service, forecast, now)

    def _after(self, service: PriceService, forecast: ServiceForecast, now: float) -> float:
        if not forecast.slots:
            delay = next(self._retries)
            _LOGGER.warning(
                "%s gave no forecast (%s); the current price alone is used, asked again in "
                "%.0f min",
                service.name,
                forecast.problem,
                delay / 60,
            )
            return delay
        self._retries = backoff_delays(RETRY_FIRST, RETRY_MAX)
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        at = next_refresh(moment, forecast.slots, service, self._policy.tz)
        _LOGGER.info(
            "%s: %d price slots up to %s; asked again at %s",
            service.name,
            len(forecast.slots),
            forecast.slots[-1].end.isoformat(),
            at.isoformat(),
        )
        return max((at - moment).total_seconds(), 1.0)

    def _today(self, now: float) -> dt.date:
        return dt.datetime.fromtimestamp(now, self._policy.tz).date()

    async def _lookup(self, entity: str) -> Registered | str:
        """The registry entry of the price entity (asked once per connect and entity), or in
        words why there is none."""
        if isinstance(self._entry, Registered) and self._entry.entity_id == entity:
            return self._entry
        try:
            found = await self._client.send_command(
                {"type": "config/entity_registry/get", "entity_id": entity}
            )
        except CommandFailedError as err:
            return f"{entity} is not in the entity registry ({err.message})"
        self._entry = Registered.of(found) or f"{entity} has no usable registry entry"
        return self._entry

    async def _fetch(self, plan: ServicePlan) -> ServiceForecast:
        """Every call of the plan, merged."""
        answers = [await self._ask(plan, alternatives) for alternatives in plan.calls]
        return merge_forecasts(answers)

    async def _ask(self, plan: ServicePlan, alternatives: tuple[Request, ...]) -> ServiceForecast:
        """One call: the first alternative Home Assistant accepts, read."""
        service = plan.service
        problem = f"{service.name} was not called"
        for data in alternatives:
            message = service_call(service.domain, service.service, data, return_response=True)
            try:
                result = await self._client.send_command(message)
            except CommandFailedError as err:
                problem = f"{service.name} failed: {err.message}"
                if err.code == "invalid_format":
                    continue  # another Core version's fields: try the next alternative
                break
            except HomeAssistantError as err:
                return ServiceForecast((), f"{service.name} failed: {err}")
            response = result.get("response") if isinstance(result, Mapping) else None
            forecast = read_service(service.shape, response, self._policy.tz, plan.pick)
            if forecast.problem:
                return ServiceForecast((), f"{service.name}: {forecast.problem}")
            return forecast
        return ServiceForecast((), problem)
