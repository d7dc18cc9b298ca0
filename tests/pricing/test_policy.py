"""The price policy on an injected clock: hysteresis, dwell, stale prices, overrides, the plan."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sec1000.options import Options
from sec1000.pricing.decide import PolicyMemory, PolicyState, PriceInput, decide, off_windows
from sec1000.pricing.reading import PriceReading, PriceSlot, ServiceForecast, zone_named
from sec1000.pricing.runner import Clock, PricePolicy, ServiceInput, default_zone

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC).timestamp()
ON = Options.from_mapping(
    {
        "price_policy": True,
        "price_entity": "sensor.price",
        "export_off_below": 0.0,
        "export_on_above": 0.02,
        "policy_min_dwell_minutes": 15,
    }
)


def now_only(price: float | None, at: float = T0) -> PriceInput:
    return PriceInput(PriceReading(price, (), "state", price), at)


def forecast(prices: list[float], start: float = T0, minutes: int = 15) -> PriceInput:
    """A forecast from `start`, with the first slot's price as the state reported at `start`."""
    slots = tuple(
        PriceSlot(
            dt.datetime.fromtimestamp(start + n * minutes * 60, UTC),
            dt.datetime.fromtimestamp(start + (n + 1) * minutes * 60, UTC),
            price,
        )
        for n, price in enumerate(prices)
    )
    return PriceInput(PriceReading(prices[0], slots, "nordpool_raw", prices[0]), start)


def test_disabled_without_the_option_or_a_sensor() -> None:
    assert decide(Options(), now_only(-1.0), PolicyMemory(), T0).state is PolicyState.DISABLED
    off = Options.from_mapping({"price_policy": False, "price_entity": "sensor.price"})
    assert decide(off, now_only(-1.0), PolicyMemory(), T0).export is None


def test_below_the_threshold_export_goes_off_at_once() -> None:
    decision = decide(ON, now_only(-0.01), PolicyMemory(export_on=True), T0)
    assert decision.state is PolicyState.EXPORT_OFF and decision.export is False
    assert "below 0" in decision.reason


def test_hysteresis_keeps_the_state_between_the_thresholds() -> None:
    keep_off = decide(ON, now_only(0.01), PolicyMemory(export_on=False, off_since=T0 - 3600), T0)
    assert keep_off.export is None and keep_off.state is PolicyState.EXPORT_OFF
    keep_on = decide(ON, now_only(0.01), PolicyMemory(export_on=True), T0)
    assert keep_on.export is None and keep_on.state is PolicyState.EXPORT_ON


def test_on_waits_for_the_dwell() -> None:
    memory = PolicyMemory(export_on=False, off_since=T0 - 5 * 60)
    waiting = decide(ON, now_only(0.05), memory, T0)
    assert waiting.export is None and waiting.next_state is PolicyState.EXPORT_ON
    assert waiting.next_change_at == pytest.approx(T0 + 10 * 60)
    assert decide(ON, now_only(0.05), memory, T0 + 10 * 60).export is True


@pytest.mark.parametrize(
    ("action", "export"), [("keep", None), ("export_off", False), ("export_on", True)]
)
def test_a_stale_price_applies_the_stale_action(action: str, export: bool | None) -> None:
    options = Options.from_mapping({"price_stale_action": action}, base=ON)
    old = now_only(-0.5, at=T0 - 91 * 60)  # 90 minutes is stale by default
    decision = decide(options, old, PolicyMemory(export_on=True), T0)
    assert decision.state is PolicyState.STALE and decision.export is export
    assert decision.reason.startswith("no current price for 90 min: ")
    waiting = decide(options, None, PolicyMemory(), T0)  # started, no price has come yet
    assert waiting.state is PolicyState.STALE and waiting.export is export
    assert waiting.reason.startswith("no price yet: ")


def test_a_forecast_is_fresh_while_it_covers_now_and_plans_the_next_change() -> None:
    price = forecast([0.05, 0.05, -0.02, -0.03, 0.04], start=T0)
    decision = decide(ON, price, PolicyMemory(export_on=True), T0 + 60)
    assert decision.state is PolicyState.EXPORT_ON
    assert decision.next_state is PolicyState.EXPORT_OFF
    assert decision.next_change_at == pytest.approx(T0 + 30 * 60)
    later = decide(ON, price, PolicyMemory(export_on=True), T0 + 31 * 60)
    assert later.export is False and later.price == -0.02
    windows = off_windows(ON, price.reading)
    assert [(a.timestamp() - T0, b.timestamp() - T0) for a, b in windows] == [(1800, 3600)]
    beyond = decide(ON, price, PolicyMemory(export_on=True), T0 + 5 * 15 * 60 + 1)
    assert beyond.state is PolicyState.STALE  # past the end of the forecast: no current price


class Writes:
    """Records what the policy asked the controller for, and what a controller taking the
    writes then holds (the writes themselves are tested against the simulator and a real Home
    Assistant elsewhere)."""

    def __init__(self, result: bool = True) -> None:
        self.calls: list[bool] = []
        self.result = result
        self.holds = "on"  # the controller's export state

    async def __call__(self, export_on: bool) -> bool:
        self.calls.append(export_on)
        if self.result:
            self.holds = "on" if export_on else "off"
        return self.result


def runner(writes: Writes, clock: list[float], options: Options = ON) -> PricePolicy:
    published: list[Any] = []
    policy = PricePolicy(
        lambda: options,
        writes,
        lambda: writes.holds,
        published.append,
        clock=Clock(lambda: clock[0]),
    )
    policy.tz = UTC
    return policy


async def test_a_flapping_price_costs_few_writes() -> None:
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    for n in range(24):  # every 5 minutes across zero for two hours
        clock[0] = T0 + n * 300
        policy.price_changed(-0.01 if n % 2 == 0 else 0.03, {}, clock[0])
        await policy.evaluate()
    # off at once; on only after 15 min off, then off again at the next negative price
    assert writes.calls[0] is False
    naive = 24  # "off below 0, on otherwise, on every change" writes at every flap
    assert len(writes.calls) <= naive // 2
    assert all(a != b for a, b in zip(writes.calls, writes.calls[1:], strict=False))


async def test_a_manual_command_overrides_until_the_next_slot_boundary() -> None:
    writes, clock = Writes(), [T0 + 60]
    policy = runner(writes, clock)
    policy.price = forecast([-0.05, -0.05, 0.08])
    await policy.evaluate()
    assert writes.calls == [False]
    policy.command_seen("export_enable", "panel (Anna)")
    decision = await policy.evaluate()
    assert decision.state is PolicyState.OVERRIDE and writes.calls == [False]
    assert decision.override_until == pytest.approx(T0 + 15 * 60)
    policy.command_seen("export_disable", "policy")  # its own writes are no override
    clock[0] = T0 + 15 * 60 + 1
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_OFF


async def test_without_a_forecast_the_override_holds_for_the_dwell() -> None:
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    policy.price_changed(-0.2, {}, T0)
    policy.command_seen("set_export_limit", "home_assistant (Bob)")
    assert policy.memory.override_until == pytest.approx(T0 + 15 * 60)


async def test_a_write_that_failed_is_tried_again_after_the_scan_interval() -> None:
    writes, clock = Writes(result=False), [T0]
    policy = runner(writes, clock)
    policy.price_changed(-0.2, {}, T0)
    first = await policy.evaluate()
    assert "tried again" in first.reason
    writes.result = True
    await policy.evaluate()  # woken at once (its own read-back): no storm of writes
    assert writes.calls == [False]
    clock[0] = T0 + ON.scan_interval
    await policy.evaluate()
    assert writes.calls == [False, False] and writes.holds == "off"
    await policy.evaluate()
    assert writes.calls == [False, False]


async def test_a_write_somebody_else_undid_is_made_again() -> None:
    """The policy compares the controller with its decision, not with its memory: another tool
    raising the limit at a negative price (drift_action adopt or notify) is switched off."""
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    policy.price_changed(-0.2, {}, T0)
    await policy.evaluate()
    writes.holds = "on"  # an installer tool, while the guard only notifies
    clock[0] += 60
    await policy.evaluate()
    assert writes.calls == [False, False] and writes.holds == "off"


async def test_a_deactivated_mode_is_an_override_in_words_and_nothing_is_written() -> None:
    writes, clock = Writes(), [T0]
    writes.holds = "unlimited"
    policy = runner(writes, clock)
    policy.price_changed(-0.2, {}, T0)
    decision = await policy.evaluate()
    assert decision.state is PolicyState.OVERRIDE and decision.export is None
    assert "deactivated" in decision.reason and "without any limit" in decision.reason
    assert writes.calls == []


async def test_garbage_prices_do_not_crash_the_policy() -> None:
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    for state, attributes in (("unknown", None), ("x", {"raw_today": "junk"}), (None, [1, 2])):
        policy.price_changed(state, attributes, T0)
        decision = await policy.evaluate()
        assert decision.state is PolicyState.STALE
    assert writes.calls == []


def test_with_a_forecast_export_stays_off_when_the_price_dips_again_within_the_dwell() -> None:
    price = forecast([-0.01, 0.03, -0.01, 0.03, 0.03, 0.03])
    memory = PolicyMemory(export_on=False, off_since=T0 - 3600)  # the dwell itself has passed
    stay = decide(ON, price, memory, T0 + 15 * 60 + 1)
    assert stay.export is None and stay.state is PolicyState.EXPORT_OFF
    assert "within the dwell" in stay.reason
    go = decide(ON, price, memory, T0 + 45 * 60 + 1)  # no dip ahead within 15 minutes
    assert go.export is True


async def test_an_unchanged_price_is_fresh_by_its_reported_time() -> None:
    writes, clock = Writes(), [T0 + 100 * 60]
    options = Options.from_mapping({"price_stale_action": "export_off"}, base=ON)
    policy = runner(writes, clock, options)
    policy.price_changed("0.10", {}, T0 + 99 * 60)  # changed long ago, reported a minute ago
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_ON and writes.calls == []


async def test_after_an_override_the_policy_writes_again_if_the_controller_differs() -> None:
    writes, clock = Writes(), [T0 + 60]
    state = ["on"]
    published: list[Any] = []
    policy = PricePolicy(
        lambda: ON, writes, lambda: state[0], published.append, clock=Clock(lambda: clock[0])
    )
    policy.tz = UTC
    policy.price = forecast([-0.05, -0.05, -0.05])
    await policy.evaluate()
    state[0] = "off"
    assert writes.calls == [False]
    policy.command_seen("export_enable", "panel (Anna)")  # the user turns export back on
    state[0] = "on"
    await policy.evaluate()
    clock[0] = T0 + 15 * 60 + 1  # the override ends; the price is still negative
    await policy.evaluate()
    assert writes.calls == [False, False]


async def test_turned_off_and_on_again_the_policy_learns_the_controller_anew() -> None:
    writes, clock = Writes(), [T0]
    state = ["on"]
    options = [ON]
    policy = PricePolicy(
        lambda: options[0], writes, lambda: state[0], lambda d: None, clock=Clock(lambda: clock[0])
    )
    policy.price_changed(-0.2, {}, T0)
    await policy.evaluate()
    state[0] = "off"
    options[0] = Options.from_mapping({"price_policy": False}, base=ON)
    await policy.evaluate()
    state[0] = "on"  # export enabled by hand while the policy was off
    options[0] = ON
    await policy.evaluate()
    assert writes.calls == [False, False]


def raw_from(start: float, prices: list[float], minutes: int = 15) -> dict[str, Any]:
    """A Nord Pool custom sensor's attributes: `raw_today` slots from `start`."""
    step = minutes * 60
    return {
        "unit_of_measurement": "EUR/kWh",
        "raw_today": [
            {
                "start": dt.datetime.fromtimestamp(start + n * step, UTC).isoformat(),
                "end": dt.datetime.fromtimestamp(start + (n + 1) * step, UTC).isoformat(),
                "value": price,
            }
            for n, price in enumerate(prices)
        ],
    }


# Issue 24, item 9: each of these failed before its fix.


async def test_a_fresh_negative_state_before_its_forecast_starts_switches_export_off() -> None:
    writes, clock = Writes(), [T0 + 60]
    policy = runner(writes, clock)
    policy.price_changed("-0.05", raw_from(T0 + 30 * 60, [0.10, 0.10]), T0)
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_OFF and writes.calls == [False]
    assert decision.price == -0.05


async def test_an_unavailable_state_keeps_the_remembered_forecast() -> None:
    writes, clock = Writes(), [T0 + 60]
    policy = runner(writes, clock)
    policy.price_changed("0.10", raw_from(T0, [0.10, -0.05, -0.05, 0.10]), T0)
    assert (await policy.evaluate()).state is PolicyState.EXPORT_ON
    clock[0] = T0 + 16 * 60  # the sensor goes unavailable, its attributes with it
    policy.price_changed("unavailable", {"friendly_name": "Nord Pool"}, clock[0])
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_OFF and decision.price == -0.05
    assert writes.calls == [False]
    assert policy.price is not None and len(policy.price.reading.slots) == 3  # still to come


@pytest.mark.parametrize("state", ["-0,05", "\u22120.05", " \u22120,05 "])
async def test_a_decimal_comma_and_a_minus_sign_are_prices(state: str) -> None:
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    policy.price_changed(state, {}, T0)
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_OFF and decision.price == -0.05
    assert writes.calls == [False]


async def test_a_wall_clock_set_back_does_not_stretch_an_override_past_its_slot() -> None:
    writes, clock, monotonic = Writes(), [T0 + 60], [1000.0]
    policy = PricePolicy(
        lambda: ON,
        writes,
        lambda: "on",
        lambda d: None,
        clock=Clock(lambda: clock[0], lambda: monotonic[0]),
    )
    policy.price = forecast([-0.05, -0.05, -0.05, -0.05])
    await policy.evaluate()
    policy.command_seen("export_enable", "panel (Anna)")  # until the slot ends at T0 + 15 min
    assert (await policy.evaluate()).state is PolicyState.OVERRIDE
    clock[0] -= 3600  # NTP sets the wall clock an hour back
    monotonic[0] += 10 * 60
    assert (await policy.evaluate()).state is PolicyState.OVERRIDE  # 4 minutes of it are left
    monotonic[0] += 4 * 60  # its slot's 14 minutes have passed, whatever the wall clock says
    clock[0] += 14 * 60
    decision = await policy.evaluate()
    assert decision.state is not PolicyState.OVERRIDE
    assert policy.memory.override_until is None


# The price service's forecast beside the sensor's state


def service_slots(prices: list[float], start: float = T0, minutes: int = 15) -> ServiceForecast:
    return ServiceForecast(forecast(prices, start, minutes).reading.slots)


async def test_a_service_forecast_plans_for_a_sensor_with_only_its_state() -> None:
    writes, clock = Writes(), [T0 + 60]
    policy = runner(writes, clock)
    policy.price_changed("0.10", {"unit_of_measurement": "EUR/kWh"}, T0)
    service = ServiceInput("nordpool.get_prices_for_date", service_slots([0.1, -0.02]), T0)
    policy.forecast_changed(service)
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_ON
    assert decision.next_change_at == pytest.approx(T0 + 15 * 60)
    assert decision.forecast_source == "service:nordpool.get_prices_for_date"
    clock[0] = T0 + 15 * 60 + 1  # the slot boundary: the state is from the slot before
    assert (await policy.evaluate()).state is PolicyState.EXPORT_OFF
    assert writes.calls == [False]


async def test_a_failed_service_leaves_the_current_price_and_says_so() -> None:
    writes, clock = Writes(), [T0]
    policy = runner(writes, clock)
    policy.price_changed("0.10", {}, T0)
    problem = ServiceForecast((), "Service nordpool.get_prices_for_date not found")
    policy.forecast_changed(ServiceInput("nordpool.get_prices_for_date", problem, T0))
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_ON and decision.price == 0.10
    attributes = decision.attributes(ON, UTC)
    assert attributes["forecast_source"] == "none"
    assert "not found" in attributes["forecast_note"]
    assert attributes["since"] == dt.datetime.fromtimestamp(T0, UTC).isoformat()


async def test_the_sensors_own_forecast_comes_before_the_service() -> None:
    writes, clock = Writes(), [T0 + 60]
    policy = runner(writes, clock)
    policy.price_changed("0.10", raw_from(T0, [0.10, 0.10]), T0)
    policy.forecast_changed(ServiceInput("x.y", service_slots([-1.0, -1.0, -1.0, 0.5]), T0))
    decision = await policy.evaluate()
    assert decision.forecast_source == "attributes:nordpool_raw"
    assert policy.price is not None
    assert [slot.price for slot in policy.price.reading.slots] == [0.10, 0.10, -1.0, 0.5]
    assert decision.next_change_at == pytest.approx(T0 + 30 * 60)


def test_a_new_price_entity_forgets_the_service_forecast() -> None:
    policy = runner(Writes(), [T0])
    policy.forecast_changed(ServiceInput("x.y", service_slots([0.1]), T0))
    assert policy.price is not None
    policy.price = None
    assert (policy.price, policy.service) == (None, None)
    assert policy.forecast_words()[0] == "none"


@pytest.mark.parametrize(
    ("environ", "zone", "origin"),
    [
        ({"TZ": "Europe/Oslo"}, "Europe/Oslo", "TZ"),
        ({"TZ": "Mars/Olympus"}, "UTC", "UTC"),
        ({"TZ": "../../etc/passwd"}, "UTC", "UTC"),
        ({}, "UTC", "UTC"),
    ],
)
def test_the_zone_without_home_assistant(environ: dict[str, str], zone: str, origin: str) -> None:
    found, where = default_zone(environ)
    assert (str(found), where) == (zone, origin)


async def test_the_day_lists_are_read_in_the_zone_home_assistant_gives() -> None:
    """A 25-hour `today` list parses once the zone is Europe/Oslo, not a fixed offset."""
    oslo = zone_named("Europe/Oslo")
    assert oslo is not None
    now = dt.datetime(2026, 10, 25, 10, 30, tzinfo=oslo).timestamp()  # the 12th hour (02 twice)
    policy = runner(Writes(), [now])
    policy.set_time_zone(oslo, "home_assistant")
    policy.price_changed("0.1", {"today": [0.1] * 12 + [-0.2] * 13}, now)
    decision = await policy.evaluate()
    assert decision.state is PolicyState.EXPORT_ON
    assert decision.next_change_at == dt.datetime(2026, 10, 25, 11, tzinfo=oslo).timestamp()
    assert policy.price is not None and len(policy.price.reading.slots) == 25
    assert policy.diagnostics()["time_zone"] == "Europe/Oslo"
    assert policy.diagnostics()["time_zone_from"] == "home_assistant"
