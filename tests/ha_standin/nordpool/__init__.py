"""STAND-IN for Home Assistant's core Nord Pool integration, for the SEC1000 add-on's tests.

It registers `nordpool.get_prices_for_date` with core's fields and answers as core does
(homeassistant/components/nordpool/services.py): {area: [{start, end, price}]}, the times as
UTC ISO text, the price per MWh, one list per asked area. The prices come from
`standin_prices.json` in the config directory: {"area", "currency", "state", "entries": [{start,
end, price}]} or {"fail": "<message>"}. Each call fires `sec1000_standin_call` with its fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

DOMAIN = "nordpool"
PRICES_FILE = "standin_prices.json"
SCHEMA = vol.Schema(
    {
        vol.Required("config_entry"): cv.string,
        vol.Required("date"): cv.date,
        vol.Optional("areas"): vol.All(cv.ensure_list, [str]),
        vol.Optional("currency"): cv.string,
    }
)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


def load_prices(hass: HomeAssistant) -> dict[str, Any]:
    """The prices the test wrote."""
    return json.loads(Path(hass.config.path(PRICES_FILE)).read_text())


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Register the service, as core does in async_setup."""

    async def get_prices_for_date(call: ServiceCall) -> ServiceResponse:
        hass.bus.async_fire(
            "sec1000_standin_call",
            {key: str(value) if key == "date" else value for key, value in call.data.items()},
        )
        entry = hass.config_entries.async_get_entry(call.data["config_entry"])
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError("entry_not_found")
        prices = await hass.async_add_executor_job(load_prices, hass)
        if prices.get("fail"):
            raise ServiceValidationError(prices["fail"])
        asked = call.data["date"]
        entries = [
            item
            for item in prices["entries"]
            if dt_util.as_local(dt_util.parse_datetime(item["start"])).date() == asked
        ]
        return {area.upper(): entries for area in call.data.get("areas") or [prices["area"]]}

    hass.services.async_register(
        DOMAIN,
        "get_prices_for_date",
        get_prices_for_date,
        schema=SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """The sensor platform."""
    await hass.config_entries.async_forward_entry_setups(entry, ["sensor"])
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Unload the sensor platform."""
    return await hass.config_entries.async_unload_platforms(entry, ["sensor"])
