"""A simulated price sensor for the demo: a negative midday block and a stretch that flaps
around 0, in the Nord Pool custom component's format (today and tomorrow, 15-minute slots)."""

from __future__ import annotations

import datetime as dt
from typing import Any

DEMO_PRICE_ENTITY = "sensor.sec1000_demo_price"
SLOT = dt.timedelta(minutes=15)


def demo_price_at(moment: dt.datetime) -> float:
    """The demo's price per kWh for a local time: cheap at night, negative at midday, flapping
    around 0 in the afternoon, dear in the evening."""
    hour = moment.hour + moment.minute / 60
    if 11 <= hour < 14:
        return -0.04
    if 15 <= hour < 17:
        return 0.01 if int(moment.minute / 15) % 2 else -0.01
    if 17 <= hour < 21:
        return 0.28
    return 0.12 if 7 <= hour < 11 or 14 <= hour < 15 else 0.08


def demo_price_state(now: dt.datetime) -> tuple[str, dict[str, Any]]:
    """The sensor's state and attributes now (`now` aware, local)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def day(start: dt.datetime) -> list[dict[str, Any]]:
        slots = []
        moment = start
        while moment.date() == start.date():
            slots.append(
                {
                    "start": moment.isoformat(),
                    "end": (moment + SLOT).isoformat(),
                    "value": demo_price_at(moment),
                }
            )
            moment += SLOT
        return slots

    attributes = {
        "unit_of_measurement": "EUR/kWh",
        "friendly_name": "Demo price",
        "raw_today": day(midnight),
        "raw_tomorrow": day(midnight + dt.timedelta(days=1)),
    }
    return f"{demo_price_at(now):.3f}", attributes
