"""The price entity in Home Assistant: its states to the policy, its forecast from a service.

Core's Nord Pool, Tibber, EnergyZero, easyEnergy and Amber integrations give the price now as
the state and the forecast only through a service with a response. The integration behind the
price entity is found in the entity registry (its platform, config entry and unique id); its
service is called over the WebSocket (`call_service` with `return_response`) at connect, where
the forecast runs out, while tomorrow's prices are due, and (Amber) at every interval. A
sensor whose attributes hold a forecast needs no service. Octopus Energy keeps its rates on
two event entities: the current-rate sensor and the day-rates events are read as one.

Everything here but `PriceFeed` is pure: the service table, the requests, the refresh times,
the Octopus pairing and Home Assistant's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sec1000.common.backoff import backoff_delays
from sec1000.ha import CommandFailedError, HomeAssistantError
from sec1000.pricing.reading import (
    PriceSlot,
    ServiceForecast,
    merge_forecasts,
    read_service,
    zone_named,
)
from sec1000.pricing.runner import PricePolicy, ServiceInput

_LOGGER = logging.getLogger(__name__)

Request = dict[str, Any]
RETRY_FIRST = 600.0  # a failed service is asked again after 10 min, doubling up to 6 h
RETRY_MAX = 6 * 3600.0
TOMORROW_RETRY = dt.timedelta(minutes=30)  # while tomorrow's prices are due but not there
LONGEST_WAIT = dt.timedelta(hours=6)
OWN_FORECAST_CHECK = 900.0  # a sensor with its own forecast: look again now and then
STATE_WAIT = 5.0  # before the entity's first state: its attributes may hold the forecast
AMBER_CHANNELS = ("general", "controlled_load", "feed_in")
OCTOPUS_RATE = "_current_rate"
OCTOPUS_DAYS = ("_current_day_rates", "_next_day_rates")


class Commands(Protocol):
    """What the feed needs of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""


@dataclass(frozen=True, slots=True)
class Registered:
    """What the entity registry says of the price entity."""

    entity_id: str
    platform: str
    config_entry_id: str | None
    unique_id: str

    @classmethod
    def of(cls, entry: object) -> Registered | None:
        """From a `config/entity_registry/get` result; None for anything else."""
        if not isinstance(entry, Mapping) or not isinstance(entry.get("platform"), str):
            return None
        config_entry = entry.get("config_entry_id")
        return cls(
            str(entry.get("entity_id") or ""),
            str(entry["platform"]),
            config_entry if isinstance(config_entry, str) and config_entry else None,
            str(entry.get("unique_id") or ""),
        )


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request is built from: the entry, the entity's attributes, today and the zone."""

    entry: Registered
    attributes: Mapping[str, Any]
    today: dt.date
    tz: dt.tzinfo

    def midnight(self, days: int) -> str:
        """Local midnight `days` after today, as ISO text with its offset."""
        day = self.today + dt.timedelta(days=days)
        return dt.datetime.combine(day, dt.time(), self.tz).isoformat()


# One call is a tuple of alternatives: the first that Home Assistant accepts is used.
Calls = list[tuple[Request, ...]]


@dataclass(frozen=True, slots=True)
class PriceService:
    """One integration's price service: how to ask, how to read the answer, when to ask again."""

    platform: str
    domain: str
    service: str
    shape: str  # how prices.read_service reads the answer
    calls: Callable[[Ask], Calls]
    pick: Callable[[Ask], str | None] = lambda ask: None
    due: dt.time | None = dt.time(13)  # local time from which tomorrow's prices are due
    every: dt.timedelta | None = None  # ask again this often (a forecast that changes)
    applies: Callable[[Registered], bool] = lambda entry: True
    needs_entry: bool = True

    @property
    def name(self) -> str:
        """domain.service"""
        return f"{self.domain}.{self.service}"


def _nordpool_area(ask: Ask) -> str | None:
    """Core Nord Pool's unique id is "<area>-<key>" (SE3-current_price)."""
    area, _, key = ask.entry.unique_id.partition("-")
    return area if area and key else None


def _nordpool_calls(ask: Ask) -> Calls:
    """Today and tomorrow, for the sensor's area in the sensor's currency (its unit is
    "<currency>/kWh"); without them if Home Assistant refuses them."""
    unit = ask.attributes.get("unit_of_measurement")
    currency = unit.split("/", 1)[0] if isinstance(unit, str) and "/" in unit else None
    area = _nordpool_area(ask)
    calls: Calls = []
    for days in (0, 1):
        plain = {
            "config_entry": ask.entry.config_entry_id,
            "date": (ask.today + dt.timedelta(days=days)).isoformat(),
        }
        exact = {**plain, **({"areas": [area]} if area else {})}
        exact |= {"currency": currency} if currency else {}
        calls.append((exact, plain) if exact != plain else (plain,))
    return calls


def _tibber_calls(ask: Ask) -> Calls:
    return [({"start": ask.midnight(0), "end": ask.midnight(2)},)]


def _tibber_home(ask: Ask) -> str | None:
    """The service answers per home name, which is the app nickname when there is one."""
    nickname = ask.attributes.get("app_nickname")
    return nickname if isinstance(nickname, str) and nickname else None


def _energy_calls(ask: Ask) -> Calls:
    """Today and tomorrow with VAT, as the integration's own sensors read them."""
    entry = ask.entry.config_entry_id
    return [
        (
            {
                "config_entry": entry,
                "incl_vat": True,
                "start": ask.midnight(0),
                "end": ask.midnight(1),
            },
        )
    ]


def _amber_channel(ask: Ask) -> str:
    """Amber's unique id is "<site>-<kind>-<channel>"; the attributes also carry it."""
    channel = ask.entry.unique_id.rsplit("-", 1)[-1]
    if channel not in AMBER_CHANNELS:
        channel = str(ask.attributes.get("channel_type") or "general")
    return channel


def _amber_calls(ask: Ask) -> Calls:
    """`config_entry_id` in today's Core; `site_id` (the entry id too) when it began."""
    entry, channel = ask.entry.config_entry_id, _amber_channel(ask)
    return [
        (
            {"config_entry_id": entry, "channel_type": channel},
            {"site_id": entry, "channel_type": channel},
        )
    ]


def _easyenergy_return(entry: Registered) -> bool:
    """easyEnergy's feed-in sensors: unique id "<entry>_today_energy_return_<key>"."""
    return "_energy_return_" in entry.unique_id


SERVICES: tuple[PriceService, ...] = (
    PriceService("nordpool", "nordpool", "get_prices_for_date", "nordpool", _nordpool_calls),
    PriceService(
        "tibber", "tibber", "get_prices", "tibber", _tibber_calls, _tibber_home, needs_entry=False
    ),
    PriceService(
        "energyzero",
        "energyzero",
        "get_energy_prices",
        "energyzero",
        _energy_calls,
        due=dt.time(15),
    ),
    PriceService(
        "easyenergy",
        "easyenergy",
        "get_energy_return_prices",
        "energyzero",
        _energy_calls,
        due=dt.time(15),
        applies=_easyenergy_return,
    ),
    PriceService(
        "easyenergy",
        "easyenergy",
        "get_energy_usage_prices",
        "energyzero",
        _energy_calls,
        due=dt.time(15),
    ),
    PriceService(
        "amberelectric",
        "amberelectric",
        "get_forecasts",
        "amber",
        _amber_calls,
        due=None,
        every=dt.timedelta(minutes=5),
    ),
)


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """The service to ask for one price entity, with its calls and the name to pick."""

    service: PriceService
    calls: Calls
    pick: str | None


def plan_for(
    entry: Registered, attributes: Mapping[str, Any], today: dt.date, tz: dt.tzinfo
) -> ServicePlan | str:
    """The service plan for a registry entry, or in words why there is none."""
    for service in SERVICES:
        if service.platform != entry.platform or not service.applies(entry):
            continue
        if service.needs_entry and entry.config_entry_id is None:
            return f"{entry.entity_id} belongs to no config entry, which {service.name} needs"
        ask = Ask(entry, attributes, today, tz)
        return ServicePlan(service, service.calls(ask), service.pick(ask))
    return f"the integration {entry.platform!r} has no price service this add-on knows"


def next_refresh(
    now: dt.datetime, slots: Sequence[PriceSlot], service: PriceService, tz: dt.tzinfo
) -> dt.datetime:
    """When to ask the service again after a good answer: where the forecast runs out, while
    tomorrow's prices are due, at the service's own interval, and at least every 6 hours."""
    times = [now + LONGEST_WAIT]
    last = max((slot.end for slot in slots), default=None)
    times.append(last if last is not None and last > now else now + TOMORROW_RETRY)
    if service.every is not None:
        times.append(now + service.every)
    if service.due is not None:
        local = now.astimezone(tz)
        end_of_tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=2), dt.time(), tz)
        if last is None or last < end_of_tomorrow:
            due = dt.datetime.combine(local.date(), service.due, tz)
            times.append(due if now < due else now + TOMORROW_RETRY)
    return min(at for at in times if at > now)


# -- Octopus Energy: the current-rate sensor and the day-rates events are one price


def _octopus_stem(entity_id: str) -> str | None:
    """The common part of sensor.<stem>_current_rate and event.<stem>_current_day_rates."""
    if entity_id.startswith("event.") and entity_id.endswith(OCTOPUS_DAYS[0]):
        return entity_id.removeprefix("event.").removesuffix(OCTOPUS_DAYS[0])
    if entity_id.startswith("sensor.octopus_energy_") and entity_id.endswith(OCTOPUS_RATE):
        return entity_id.removeprefix("sensor.").removesuffix(OCTOPUS_RATE)
    return None


def watched(price_entity: str) -> tuple[str, ...]:
    """The entities whose states make up the price: the price entity, and for Octopus Energy
    the current-rate sensor with both day-rates events."""
    stem = _octopus_stem(price_entity)
    if stem is None:
        return (price_entity,) if price_entity else ()
    pair = (f"sensor.{stem}{OCTOPUS_RATE}", *(f"event.{stem}{day}" for day in OCTOPUS_DAYS))
    return (price_entity, *(entity_id for entity_id in pair if entity_id != price_entity))


def compose(
    price_entity: str, states: Mapping[str, Mapping[str, Any]]
) -> tuple[object, Mapping[str, Any], object] | None:
    """The state, the attributes and the reported time of the price (None before any state);
    for Octopus Energy the rate sensor's state with the rates of both day-rates events."""
    stem = _octopus_stem(price_entity)
    if stem is None:
        own = states.get(price_entity)
        return None if own is None else (own.get("state"), _attributes(own), _reported(own))
    rate = states.get(f"sensor.{stem}{OCTOPUS_RATE}")
    days = [states.get(f"event.{stem}{day}") for day in OCTOPUS_DAYS]
    rates = [
        item for day in days if day is not None for item in _list(_attributes(day).get("rates"))
    ]
    if rate is None and not rates:
        return None
    attributes = {**(_attributes(rate) if rate else {}), "rates": rates}
    if rate is None:  # an event's state is when it fired, not a price
        return None, attributes, None
    return rate.get("state"), attributes, _reported(rate)


def offered(state: Mapping[str, Any]) -> tuple[str, str] | None:
    """The entity id and name when Setup offers the entity as the price entity: a sensor priced
    per kWh, or an Octopus Energy day-rates event (its rates are the forecast)."""
    entity_id, attributes = state.get("entity_id"), _attributes(state)
    if not isinstance(entity_id, str):
        return None
    unit = attributes.get("unit_of_measurement")
    priced = entity_id.startswith("sensor.") and isinstance(unit, str) and "/kWh" in unit
    rates = (
        entity_id.startswith("event.")
        and entity_id.endswith(OCTOPUS_DAYS[0])
        and isinstance(attributes.get("rates"), list)
    )
    return (
        (entity_id, str(attributes.get("friendly_name") or entity_id)) if priced or rates else None
    )


def _attributes(state: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = state.get("attributes") if state is not None else None
    return found if isinstance(found, Mapping) else {}


def _list(raw: object) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _reported(state: Mapping[str, Any]) -> object:
    return state.get("last_reported") or state.get("last_updated")


def timestamp(text: object) -> float | None:
    """An ISO 8601 time from Home Assistant as a Unix time, or None."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.utcoffset() is not None else None


@dataclass
class HaClock:
    """Home Assistant's clock against the add-on's, from the last event's `time_fired`: a time
    Home Assistant reports is moved onto the add-on's clock, so a Home Assistant clock that is
    behind or ahead never makes a fresh price look old (or new)."""

    offset: float | None = None  # add-on time minus Home Assistant time

    def saw(self, fired: object, now: float) -> bool:
        """An event fired at `fired` (Home Assistant's clock) arrived at `now` (ours); True
        when this is the first offset known."""
        at = timestamp(fired)
        if at is None:
            return False
        first = self.offset is None
        self.offset = now - at
        return first

    def local(self, reported: object, now: float) -> float:
        """A time of Home Assistant's on the add-on's clock, never later than `now`."""
        at = timestamp(reported)
        if at is None:
            return now
        return min(now, at + (self.offset or 0.0))


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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

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
        attributes = _attributes(self._states.get(entity))
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
            message = {
                "type": "call_service",
                "domain": service.domain,
                "service": service.service,
                "service_data": data,
                "return_response": True,
            }
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
