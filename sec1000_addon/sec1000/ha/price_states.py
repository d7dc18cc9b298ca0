"""The price entity's states (pure): which entities make up the price, the price they give,
the sensors Setup offers, and Home Assistant's clock against the add-on's.

Octopus Energy keeps its rates on two event entities: the current-rate sensor and the day-rates
events are read as one price.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OCTOPUS_RATE = "_current_rate"
OCTOPUS_DAYS = ("_current_day_rates", "_next_day_rates")


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
        return None if own is None else (own.get("state"), attributes_of(own), _reported(own))
    rate = states.get(f"sensor.{stem}{OCTOPUS_RATE}")
    days = [states.get(f"event.{stem}{day}") for day in OCTOPUS_DAYS]
    rates = [
        item for day in days if day is not None for item in _list(attributes_of(day).get("rates"))
    ]
    if rate is None and not rates:
        return None
    attributes = {**(attributes_of(rate) if rate else {}), "rates": rates}
    if rate is None:  # an event's state is when it fired, not a price
        return None, attributes, None
    return rate.get("state"), attributes, _reported(rate)


def offered(state: Mapping[str, Any]) -> tuple[str, str] | None:
    """The entity id and name when Setup offers the entity as the price entity: a sensor priced
    per kWh, or an Octopus Energy day-rates event (its rates are the forecast)."""
    entity_id, attributes = state.get("entity_id"), attributes_of(state)
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


def attributes_of(state: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A state's attributes (none for anything but a mapping)."""
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
