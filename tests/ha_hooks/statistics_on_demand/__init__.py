"""TEST HOOK for the SEC1000 add-on's tests: the recorder's 5-minute statistics, compiled now.

Home Assistant compiles the 5-minute period that just ended at every UTC minute divisible by 5,
at second 10 (recorder/core.py, `_async_five_minute_tasks`), and offers no service or WebSocket
command to compile sooner. `statistics_on_demand.compile` queues the recorder's own task for it,
`StatisticsTask(start, fire_events)` (the same in Core 2025.4.4 and 2026.2.3), for the period
that begins at `start`, and answers once the recorder's thread has run it and committed: a task
of ours queued after it (the queue runs in order, one task at a time) resolves the call.
Nothing is computed here: the rows are the recorder's and the sensor platform's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from homeassistant.components.recorder import Recorder, get_instance
from homeassistant.components.recorder.tasks import RecorderTask, StatisticsTask
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

DOMAIN = "statistics_on_demand"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)
SCHEMA = vol.Schema({vol.Required("start"): cv.datetime})


@dataclass(slots=True)
class CompiledTask(RecorderTask):
    """Resolves `done` in the event loop once every task queued before it has run."""

    done: asyncio.Future[None]

    def run(self, instance: Recorder) -> None:
        instance.hass.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Register `statistics_on_demand.compile` (field `start`: the period's start, UTC)."""

    async def compile_period(call: ServiceCall) -> None:
        instance = get_instance(hass)
        done: asyncio.Future[None] = hass.loop.create_future()
        instance.queue_task(StatisticsTask(dt_util.as_utc(call.data["start"]), True))
        instance.queue_task(CompiledTask(done))
        await done

    hass.services.async_register(DOMAIN, "compile", compile_period, schema=SCHEMA)
    return True
