"""One controller in Home Assistant, over the bridge's shared connection: its sensors posted as
states (REST mode), its helpers, its notifications, its price feed and its command results.

Controller `<name>` has `sec1000_<name>_…` for every id (the first one keeps `sec1000_…`): the
tables of `entities` give each controller's copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sec1000.common.tasks import TaskSet
from sec1000.ha import EntityMode, HomeAssistantApi
from sec1000.ha.entities import (
    ENERGY_SENSORS,
    EXPORT_GUARD,
    EXPORT_LIMIT,
    EXPORT_POLICY,
    EXPORT_STATE,
    FEEDBACK_SENSORS,
    MODULE_STARTED,
    OVER_LIMIT,
    OVER_LIMIT_ENERGY,
    OVER_LIMIT_TODAY,
    TELEMETRY_SENSORS,
    TIME_AT_LIMIT,
    Sensor,
    sensor_extra_attributes,
    sensor_value,
    sensors_of,
)
from sec1000.ha.helpers import Helpers
from sec1000.ha.notifications import Notifications
from sec1000.ha.prices_source import PriceFeed
from sec1000.headline import ENGLISH_WORDS, Words
from sec1000.operations import Origin
from sec1000.protocol import Feedback
from sec1000.runtime import Runtime
from sec1000.state import CommandDone, CommandRecord, FeedbackChanged, StateEvent, Topic

_LOGGER = logging.getLogger(__name__)

# The marks of what changed besides a sensor (a sensor's mark is its key).
HELPERS_MARK, NOTIFICATIONS_MARK, PRICE_ENTITY_MARK = "+helpers", "+notifications", "+price"


class Connection(Protocol):
    """What a controller needs of the bridge that holds the connection."""

    connected: bool

    @property
    def mode(self) -> EntityMode:
        """REST: the sides post their states and follow their helpers."""

    @property
    def posting(self) -> asyncio.Lock:
        """Held while states are posted (no state is posted while they are being removed)."""

    def origin(self, context: dict[str, Any]) -> Origin:
        """Who acted, from a Home Assistant context."""

    def result(self, data: dict[str, Any]) -> None:
        """Fire one `sec1000_command_result` (kept while Home Assistant is away)."""

    async def read_states(self) -> set[str]:
        """Every entity id Home Assistant has; the price entity's state goes to the policies."""


class ControllerBridge:
    """Keeps Home Assistant in step with one controller's state model, both ways."""

    def __init__(
        self,
        runtime: Runtime,
        client: HomeAssistantApi,
        connection: Connection,
        *,
        mqtt_problem: Callable[[], str | None] = lambda: None,
        words: Callable[[], Words] = lambda: ENGLISH_WORDS,
    ) -> None:
        self.runtime = runtime
        self._words = words  # the language the headline attribute is said in
        self.name = runtime.name
        self.sensors = sensors_of(self.name)
        self._by_key = {sensor.key: sensor for sensor in self.sensors}
        self._client = client
        self._connection = connection
        self.helpers = Helpers(
            runtime,
            client,
            active=lambda: connection.connected and connection.mode is EntityMode.REST,
            origin=connection.origin,
        )
        self.notifications = Notifications(runtime, client, mqtt_problem=mqtt_problem)
        self.prices = PriceFeed(runtime.policy, client, lambda: runtime.options.price_entity)
        self._price_entity = runtime.options.price_entity
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._tasks = TaskSet()
        self._unsubscribe: Callable[[], None] | None = None
        self._headline = ""  # the export state's headline as last marked for posting

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """Its sensors' entity ids."""
        return tuple(sensor.entity_id for sensor in self.sensors)

    # -- life cycle

    def start(self) -> None:
        """Follow the state model; publish, and fetch the price forecast, in the background."""
        self._unsubscribe = self.runtime.state.subscribe(self._on_state_event)
        self._tasks.spawn(self._publisher())
        self._tasks.spawn(self.prices.run())

    async def stop(self) -> None:
        """Stop following the state model and every task."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._tasks.cancel()

    def forget(self) -> None:
        """A new connection: every helper is set and every notification shown again."""
        self.helpers.forget_synced()
        self.notifications.forget_shown()

    # -- to Home Assistant

    async def publish_all(self) -> None:
        """Post every sensor's state and set the helpers (REST mode)."""
        await self.publish([sensor.key for sensor in self.sensors])
        await self.helpers.sync()

    async def publish(self, keys: list[str]) -> None:
        """Post these sensors' states (REST mode only)."""
        async with self._connection.posting:
            if self._connection.mode is EntityMode.REST:
                await self._post(keys)

    async def _post(self, keys: list[str]) -> None:
        sensors = [self._by_key[key] for key in keys if key in self._by_key]
        await asyncio.gather(
            *(
                self._client.set_state(
                    sensor.entity_id, self.value(sensor), self._attributes(sensor)
                )
                for sensor in sensors
            )
        )

    def _attributes(self, sensor: Sensor) -> dict[str, Any]:
        extra = sensor_extra_attributes(
            self.runtime.state, sensor, self.runtime.options, self._words()
        )
        return {**sensor.attributes(), **extra}

    def value(self, sensor: Sensor) -> str:
        """A sensor's state now."""
        return sensor_value(self.runtime.state, sensor)

    async def remove_rest(self, existing: set[str], registered: set[str]) -> list[str]:
        """Delete its posted states and its helpers; the entity ids removed (`registered`: ids
        the entity registry holds, which are not posted states)."""
        removed: list[str] = []
        for sensor in self.sensors:
            posted = sensor.entity_id in existing and sensor.entity_id not in registered
            if posted and await self._client.delete_state(sensor.entity_id):
                removed.append(sensor.entity_id)
        removed += await self.helpers.remove()
        return removed

    async def update_notifications(self, resync: bool = False) -> None:
        """Show and dismiss its notifications (connected only)."""
        if self._connection.connected:
            await self.notifications.update(resync)

    def mark(self, *keys: str) -> None:
        """Something changed: sensor keys, or the helpers, notifications, price entity marks."""
        self._dirty.update(keys)
        self._dirty_event.set()

    def _on_state_event(self, event: StateEvent) -> None:
        if event.topic is Topic.TELEMETRY:  # a good read also starts the module
            self.mark(*(s.key for s in TELEMETRY_SENSORS.values()), MODULE_STARTED.key)
        elif event.topic is Topic.SETTINGS:
            self.mark(EXPORT_LIMIT.key, EXPORT_STATE.key, MODULE_STARTED.key, HELPERS_MARK)
        elif isinstance(event, FeedbackChanged):
            sensor = FEEDBACK_SENSORS.get(event.operation)
            if sensor is not None:  # set_control_mode has no sensor in the contract
                self.mark(sensor.key)
        elif isinstance(event, CommandDone):
            self._connection.result(result_data(event.record, self.name))
        elif event.topic is Topic.ENERGY:
            energy = (sensor.key for sensor in ENERGY_SENSORS.values())
            meter = (OVER_LIMIT_ENERGY.key, OVER_LIMIT_TODAY.key)
            self.mark(*energy, *meter, TIME_AT_LIMIT.key, NOTIFICATIONS_MARK)
        elif event.topic is Topic.OVERSHOOT:
            self.mark(OVER_LIMIT.key, NOTIFICATIONS_MARK)
        elif event.topic is Topic.POLICY:
            self.mark(EXPORT_POLICY.key)
        elif event.topic is Topic.OPTIONS:
            self.mark(NOTIFICATIONS_MARK, HELPERS_MARK)
            if self.runtime.options.price_entity != self._price_entity:
                self._price_entity = self.runtime.options.price_entity
                self.prices.entity_changed()
                self.mark(PRICE_ENTITY_MARK)
        elif event.topic is Topic.GUARD:
            self.mark(EXPORT_GUARD.key, NOTIFICATIONS_MARK)
        elif event.topic in (Topic.RESTORE, Topic.LINK):
            self.mark(NOTIFICATIONS_MARK)
        if event.topic not in (Topic.LINK, Topic.COMMAND, Topic.FEEDBACK):
            said = self._attributes(EXPORT_STATE).get("headline", "")
            if said != self._headline:  # who set the limit, until when, a silent controller…
                self._headline = said
                self.mark(EXPORT_STATE.key)

    async def _publisher(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            keys, self._dirty = self._dirty, set()
            if not self._connection.connected:
                continue  # everything is re-published on connect
            try:
                await self._publish_marked(keys)
            except Exception as err:
                _LOGGER.warning("publishing %s to Home Assistant failed: %s", self.name, err)

    async def _publish_marked(self, keys: set[str]) -> None:
        if self._connection.mode is EntityMode.REST:
            await self.publish(sorted(key for key in keys if key in self._by_key))
        if PRICE_ENTITY_MARK in keys:  # a new price sensor: its helper and its state
            existing = await self._connection.read_states()
            if self._connection.mode is EntityMode.REST:
                await self.helpers.ensure(existing)
        if HELPERS_MARK in keys:
            await self.helpers.sync()
        if NOTIFICATIONS_MARK in keys:
            await self.update_notifications()


def result_data(record: CommandRecord, controller: str) -> dict[str, Any]:
    """The `sec1000_command_result` event's data for one command record of `controller`."""
    return {
        "command": record.command,
        "request_id": record.request_id,
        "feedback": record.feedback,
        "ok": bool(record.feedback & Feedback.OK),
        "message": record.message,
        "controller": controller,
    }
