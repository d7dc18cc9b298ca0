"""The price services of Core's price integrations (pure): which service answers for a price
entity, the calls to make, and when to ask again.

Core's Nord Pool, Tibber, EnergyZero, easyEnergy and Amber integrations give the price now as
the state and the forecast only through a service with a response. The integration behind the
price entity is found in the entity registry (its platform, config entry and unique id); the
table below says how to ask its service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sec1000.pricing.reading import PriceSlot

Request = dict[str, Any]
TOMORROW_RETRY = dt.timedelta(minutes=30)  # while tomorrow's prices are due but not there
LONGEST_WAIT = dt.timedelta(hours=6)
AMBER_CHANNELS = ("general", "controlled_load", "feed_in")


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
