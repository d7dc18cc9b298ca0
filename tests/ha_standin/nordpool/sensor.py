"""STAND-IN sensor: the price now per kWh, with core's unique id and unit."""

from __future__ import annotations

from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from . import load_prices


async def async_setup_entry(
    hass: HomeAssistant, entry: ConfigEntry, async_add_entities: AddEntitiesCallback
) -> None:
    """One price sensor, its state as the test wrote it."""
    prices = await hass.async_add_executor_job(load_prices, hass)
    async_add_entities([StandInPrice(prices["area"], prices["currency"], prices["state"])])


class StandInPrice(SensorEntity):
    """Core's current-price sensor: unique id "<area>-current_price", unit "<currency>/kWh"."""

    _attr_should_poll = False
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, area: str, currency: str, state: float) -> None:
        self._attr_name = f"Nord Pool {area} current price"
        self._attr_unique_id = f"{area}-current_price"
        self._attr_native_unit_of_measurement = f"{currency}/kWh"
        self._attr_native_value = state
