"""The price entity's side of Home Assistant: its pure parts (which service to ask and how, when
to ask again, Octopus's pairing, Home Assistant's clock against ours) and the feed.

The registry entries and attributes below follow each integration's own code (the unique ids
of homeassistant/components/<integration>/sensor.py); the calls against a real Core are in
tests/ha/test_prices_ha.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sec1000.ha.price_services import (
    SERVICES,
    TOMORROW_RETRY,
    Registered,
    ServicePlan,
    next_refresh,
    plan_for,
)
from sec1000.ha.price_states import HaClock, compose, offered, timestamp, watched
from sec1000.ha.prices_source import PriceFeed
from sec1000.options import Options
from sec1000.pricing.decide import PolicyMemory, PolicyState, decide
from sec1000.pricing.reading import SERVICE_SHAPES, PriceSlot
from sec1000.pricing.runner import Clock, PricePolicy

OSLO = ZoneInfo("Europe/Oslo")
SPRING = dt.date(2026, 3, 29)
ENTRY = "01JQ3ZK5T0Y9E9W5C8V4R3M2N1"
ON = Options.from_mapping(
    {"price_policy": True, "price_entity": "sensor.price", "export_on_above": 0.02}
)


def plan(entry: Registered, attributes: dict[str, Any] | None = None) -> ServicePlan:
    found = plan_for(entry, attributes or {}, SPRING, OSLO)
    assert isinstance(found, ServicePlan), found
    return found


def test_core_nord_pool_asks_today_and_tomorrow_for_the_sensors_area_and_currency() -> None:
    # nordpool/entity.py: unique id f"{area}-{key}"; sensor.py: unit f"{currency}/kWh"
    entry = Registered("sensor.nord_pool_se3_current_price", "nordpool", ENTRY, "SE3-current_price")
    found = plan(entry, {"unit_of_measurement": "SEK/kWh"})
    assert found.service.name == "nordpool.get_prices_for_date"
    exact = {"config_entry": ENTRY, "areas": ["SE3"], "currency": "SEK"}
    assert found.calls == [
        ({**exact, "date": "2026-03-29"}, {"config_entry": ENTRY, "date": "2026-03-29"}),
        ({**exact, "date": "2026-03-30"}, {"config_entry": ENTRY, "date": "2026-03-30"}),
    ]
    assert found.pick is None and found.service.shape == "nordpool"


def test_tibber_asks_from_local_midnight_for_two_days_and_picks_the_home() -> None:
    # tibber/sensor.py: the price sensor's unique id is the home id; app_nickname an attribute
    entry = Registered("sensor.electricity_price_home", "tibber", ENTRY, "96a14971-525a-4420")
    found = plan(entry, {"app_nickname": "Home", "unit_of_measurement": "NOK/kWh"})
    assert found.service.name == "tibber.get_prices"
    # 2026-03-29 is 23 hours long in Oslo: the end carries the summer offset
    assert found.calls == [
        ({"start": "2026-03-29T00:00:00+01:00", "end": "2026-03-31T00:00:00+02:00"},)
    ]
    assert found.pick == "Home"
    no_entry = Registered("sensor.electricity_price_home", "tibber", None, "96a1")
    assert isinstance(plan_for(no_entry, {}, SPRING, OSLO), ServicePlan)


@pytest.mark.parametrize(
    ("platform", "unique_id", "service"),
    [
        # energyzero/sensor.py and easyenergy/sensor.py:
        # f"{entry_id}_{description.service_type}_{description.key}"
        ("energyzero", f"{ENTRY}_today_energy_current_hour_price", "energyzero.get_energy_prices"),
        (
            "easyenergy",
            f"{ENTRY}_today_energy_usage_current_hour_price",
            "easyenergy.get_energy_usage_prices",
        ),
        (
            "easyenergy",
            f"{ENTRY}_today_energy_return_current_hour_price",
            "easyenergy.get_energy_return_prices",
        ),
    ],
)
def test_energyzero_and_easyenergy_ask_today_and_tomorrow_with_vat(
    platform: str, unique_id: str, service: str
) -> None:
    found = plan(Registered("sensor.x", platform, ENTRY, unique_id))
    assert found.service.name == service and found.service.shape == "energyzero"
    assert found.calls == [
        (
            {
                "config_entry": ENTRY,
                "incl_vat": True,
                "start": "2026-03-29T00:00:00+01:00",
                "end": "2026-03-30T00:00:00+02:00",
            },
        )
    ]


@pytest.mark.parametrize(
    ("unique_id", "attributes", "channel"),
    [
        ("01FG0AZRMZ-current-general", {}, "general"),
        ("01FG0AZRMZ-current-feed_in", {}, "feed_in"),
        ("01FG0AZRMZ-forecasts-controlled_load", {}, "controlled_load"),
        ("renamed", {"channel_type": "feed_in"}, "feed_in"),
    ],
)
def test_amber_asks_for_its_channel_with_the_field_of_either_core(
    unique_id: str, attributes: dict[str, Any], channel: str
) -> None:
    # amberelectric/sensor.py: f"{site_id}-{description.key}-{channel_type}"
    found = plan(
        Registered("sensor.home_general_price", "amberelectric", ENTRY, unique_id), attributes
    )
    assert found.service.name == "amberelectric.get_forecasts"
    assert found.calls == [
        (
            {"config_entry_id": ENTRY, "channel_type": channel},
            {"site_id": ENTRY, "channel_type": channel},
        )
    ]
    assert found.service.every == dt.timedelta(minutes=5)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (Registered("sensor.x", "entsoe", ENTRY, "entsoe.avg_price"), "no price service"),
        (Registered("sensor.x", "template", None, "abc"), "no price service"),
        (Registered("sensor.x", "nordpool", None, "SE3-current_price"), "no config entry"),
    ],
)
def test_without_a_known_service_the_plan_says_why(entry: Registered, words: str) -> None:
    found = plan_for(entry, {}, SPRING, OSLO)
    assert isinstance(found, str) and words in found


def test_every_service_has_a_reader_for_its_answer() -> None:
    assert {service.shape for service in SERVICES} <= set(SERVICE_SHAPES)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {
                "entity_id": "sensor.p",
                "platform": "nordpool",
                "config_entry_id": "e",
                "unique_id": "u",
            },
            Registered("sensor.p", "nordpool", "e", "u"),
        ),
        (
            {"entity_id": "sensor.p", "platform": "x", "config_entry_id": None, "unique_id": None},
            Registered("sensor.p", "x", None, ""),
        ),
        ({"entity_id": "sensor.p"}, None),
        (["not", "a", "mapping"], None),
        (None, None),
    ],
)
def test_registry_entries(entry: object, expected: Registered | None) -> None:
    assert Registered.of(entry) == expected


# When to ask again


def slots_until(end: dt.datetime, hours: int = 24) -> list[PriceSlot]:
    start = end - dt.timedelta(hours=hours)
    return [PriceSlot(start, end, 0.1)]


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), OSLO)


NORDPOOL = SERVICES[0]
AMBER = next(service for service in SERVICES if service.platform == "amberelectric")
DAY = dt.date(2026, 6, 10)


def test_before_tomorrows_prices_are_due_the_next_ask_is_when_they_are() -> None:
    today = slots_until(local(DAY + dt.timedelta(days=1), 0))
    assert next_refresh(local(DAY, 10), today, NORDPOOL, OSLO) == local(DAY, 13)


def test_while_tomorrows_prices_are_due_ask_every_half_hour() -> None:
    today = slots_until(local(DAY + dt.timedelta(days=1), 0))
    now = local(DAY, 14, 10)
    assert next_refresh(now, today, NORDPOOL, OSLO) == now + TOMORROW_RETRY


def test_with_tomorrow_known_ask_again_in_six_hours() -> None:
    both = slots_until(local(DAY + dt.timedelta(days=2), 0), 48)
    now = local(DAY, 14, 10)
    assert next_refresh(now, both, NORDPOOL, OSLO) == now + dt.timedelta(hours=6)


def test_where_the_forecast_runs_out_ask_at_its_end() -> None:
    short = slots_until(local(DAY, 11), 2)
    assert next_refresh(local(DAY, 10), short, NORDPOOL, OSLO) == local(DAY, 11)


def test_an_answer_in_the_past_is_asked_again_soon() -> None:
    past = slots_until(local(DAY, 9), 2)
    now = local(DAY, 9, 30)
    assert next_refresh(now, past, AMBER, OSLO) == now + dt.timedelta(minutes=5)
    assert next_refresh(now, [], NORDPOOL, OSLO) == now + TOMORROW_RETRY


# Octopus Energy: the rate sensor and its day-rates events


STEM = "octopus_energy_electricity_19l1234567_1200012345678"


def octopus_rates(day: dt.date, value: float) -> list[dict[str, Any]]:
    """octopus_energy's day-rates event attributes: half-hour rates, value_inc_vat in £/kWh."""
    first = dt.datetime.combine(day, dt.time(), dt.UTC)
    step = dt.timedelta(minutes=30)
    return [
        {
            "start": (first + n * step).isoformat(),
            "end": (first + (n + 1) * step).isoformat(),
            "value_inc_vat": value,
            "is_capped": False,
        }
        for n in range(48)
    ]


def state(entity_id: str, value: str, attributes: dict[str, Any], at: str) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "state": value,
        "attributes": attributes,
        "last_updated": at,
        "last_reported": at,
    }


def test_octopus_pairs_the_rate_sensor_with_both_day_rates_events() -> None:
    event = f"event.{STEM}_current_day_rates"
    sensor = f"sensor.{STEM}_current_rate"
    assert watched(event) == (event, sensor, f"event.{STEM}_next_day_rates")
    assert watched(sensor) == (sensor, event, f"event.{STEM}_next_day_rates")
    assert watched("sensor.nord_pool") == ("sensor.nord_pool",)
    assert watched("") == ()
    states = {
        event: state(event, "2026-06-10T00:00:00+00:00", {"rates": octopus_rates(DAY, 0.2)}, "x"),
        f"event.{STEM}_next_day_rates": state(
            "e",
            "2026-06-10T16:00:00+00:00",
            {"rates": octopus_rates(DAY + dt.timedelta(days=1), -0.01)},
            "x",
        ),
    }
    only_events = compose(event, states)
    assert only_events is not None
    assert (
        only_events[0] is None and len(only_events[1]["rates"]) == 96
    )  # an event's state is no price
    states[sensor] = state(
        sensor, "0.2", {"unit_of_measurement": "GBP/kWh"}, "2026-06-10T10:00:00+00:00"
    )
    value, attributes, reported = compose(event, states) or (None, {}, None)
    assert (value, reported, len(attributes["rates"])) == ("0.2", "2026-06-10T10:00:00+00:00", 96)
    assert attributes["unit_of_measurement"] == "GBP/kWh"
    assert compose(sensor, {}) is None


def test_setup_offers_sensors_per_kwh_and_octopus_day_rates_events() -> None:
    event = f"event.{STEM}_current_day_rates"
    assert offered(state(event, "t", {"rates": [], "friendly_name": "Rates"}, "x")) == (
        event,
        "Rates",
    )
    assert offered(state("sensor.p", "1", {"unit_of_measurement": "EUR/kWh"}, "x")) == (
        "sensor.p",
        "sensor.p",
    )
    assert offered(state("sensor.p", "1", {"unit_of_measurement": "EUR/MWh"}, "x")) is None
    assert offered(state(f"event.{STEM}_next_day_rates", "t", {"rates": []}, "x")) is None
    assert offered(state("event.doorbell", "t", {}, "x")) is None
    assert offered({"entity_id": 3}) is None


# Home Assistant's clock


T0 = dt.datetime(2026, 6, 10, 10, tzinfo=dt.UTC).timestamp()


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def test_a_home_assistant_clock_far_behind_gives_fresh_prices() -> None:
    """Issue 24 item 9: the reported time was taken as it came, so every price was stale."""
    clock = HaClock()
    behind = T0 - 3 * 3600  # Home Assistant's clock is three hours behind ours
    assert clock.saw(iso(behind), T0) is True  # an event fired "three hours ago" arrives now
    assert clock.saw(iso(behind + 5), T0 + 5) is False
    received = clock.local(iso(behind + 5), T0 + 5)  # the price reported with that event
    assert received == pytest.approx(T0 + 5)
    policy = PricePolicy(
        lambda: ON, _never_written, lambda: "on", lambda d: None, clock=Clock(lambda: T0 + 60)
    )
    policy.price_changed("0.10", {}, received)
    assert policy.price is not None
    decision = decide(ON, policy.price, PolicyMemory(export_on=True), T0 + 60)
    assert decision.state is PolicyState.EXPORT_ON
    as_reported = replace(policy.price, received_at=timestamp(iso(behind + 5)) or 0.0)
    before = decide(ON, as_reported, PolicyMemory(export_on=True), T0 + 60)
    assert before.state is PolicyState.STALE  # what the reported time alone gave


def test_a_clock_ahead_never_dates_a_price_in_the_future() -> None:
    clock = HaClock()
    assert clock.local(iso(T0 + 600), T0) == T0  # no offset known: never later than now
    clock.saw(iso(T0 + 3600), T0)
    assert clock.local(iso(T0 + 3600 - 120), T0) == pytest.approx(T0 - 120)
    assert clock.local(None, T0) == T0
    assert clock.local("garbage", T0) == T0
    assert clock.saw("garbage", T0) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-10T10:00:00+00:00", T0),
        ("2026-06-10T12:00:00.000+02:00", T0),
        ("2026-06-10T10:00:00", None),  # no offset: Home Assistant always sends one
        ("x" * 100, None),
        (None, None),
        (5, None),
    ],
)
def test_timestamps(text: object, expected: float | None) -> None:
    assert timestamp(text) == expected


async def _never_written(export_on: bool) -> bool:
    raise AssertionError("these tests decide; they write nothing")


class NoCommands:
    """Stands where the Home Assistant client goes: feeding states sends no command."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        raise AssertionError(f"no command expected, got {message}")


def test_the_first_offset_feeds_the_price_again_with_its_true_age() -> None:
    now = [T0]
    policy = PricePolicy(
        lambda: ON, _never_written, lambda: "on", lambda d: None, clock=Clock(lambda: now[0])
    )
    feed = PriceFeed(policy, NoCommands(), lambda: "sensor.price", clock=lambda: now[0])
    behind = T0 - 3 * 3600  # Home Assistant's clock is three hours behind
    feed.state_seen(state("sensor.price", "0.1", {}, iso(behind - 60)))  # read at connect
    assert policy.price is not None and policy.price.received_at == pytest.approx(behind - 60)
    feed.state_seen(state("sensor.other", "1", {}, iso(behind)), iso(behind))  # any event
    assert policy.price.received_at == pytest.approx(T0 - 60)
    now[0] = T0 + 30
    feed.state_seen(state("sensor.price", "-0,2", {}, iso(behind + 30)), iso(behind + 30))
    assert policy.price.received_at == pytest.approx(T0 + 30)
    assert policy.price.reading.state == -0.2


class ZoneAnswer:
    """Stands where the Home Assistant client goes: `get_config` answers a time zone."""

    def __init__(self, zone: str) -> None:
        self.zone = zone

    async def send_command(self, message: dict[str, Any]) -> Any:
        assert message == {"type": "get_config"}
        return {"time_zone": self.zone, "state": "RUNNING"}


async def test_home_assistants_zone_is_read_from_disk_off_the_event_loop() -> None:
    zone = "America/St_Johns"
    ZoneInfo.clear_cache(only_keys=[zone])  # loaded anew: its file is read, not the cache
    policy = PricePolicy(
        lambda: ON, _never_written, lambda: "on", lambda d: None, clock=Clock(lambda: T0)
    )
    feed = PriceFeed(policy, ZoneAnswer(zone), lambda: "sensor.price", clock=lambda: T0)
    await feed.on_connected()  # blocking_io_fails: a file read in the loop fails the test
    assert str(policy.tz) == zone and policy.tz_from == "home_assistant"
