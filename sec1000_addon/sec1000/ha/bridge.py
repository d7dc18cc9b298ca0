"""Keeps Home Assistant in step with the add-on: the connection's set-up, the entity mode
(REST states and helpers, or the MQTT device), the states posted in REST mode, and the events
(`sec1000_command` to the registry, `sec1000_command_result` back). The helpers and the
notifications have modules of their own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from sec1000.commands import CommandName
from sec1000.common.tasks import TaskSet
from sec1000.ha import CommandFailedError, ConnectionClosedError
from sec1000.ha.client import ConnectedCallback, DisconnectedCallback
from sec1000.ha.discovery import entity_ids
from sec1000.ha.entities import (
    ALL_SENSORS,
    COMMAND_EVENT,
    ENERGY_SENSORS,
    EXPORT_GUARD,
    EXPORT_LIMIT,
    EXPORT_POLICY,
    EXPORT_STATE,
    FEEDBACK_SENSORS,
    HELPERS_BY_ENTITY,
    MODULE_STARTED,
    OVER_LIMIT,
    OVER_LIMIT_ENERGY,
    OVER_LIMIT_TODAY,
    RESULT_EVENT,
    SENSORS_BY_ENTITY,
    TELEMETRY_SENSORS,
    TIME_AT_LIMIT,
    Sensor,
    sensor_extra_attributes,
    sensor_value,
)
from sec1000.ha.helpers import Helpers
from sec1000.ha.notifications import MOVED_NOTIFICATION, Notifications, moved_notice
from sec1000.ha.price_states import offered
from sec1000.ha.prices_source import PriceFeed
from sec1000.operations import Origin
from sec1000.protocol import Feedback
from sec1000.runtime import Runtime
from sec1000.state import StateEvent, Topic

_LOGGER = logging.getLogger(__name__)

RESULTS_KEPT = 100  # results of commands that ended while Home Assistant was away
NOTIFICATION_CHECK_INTERVAL = 30.0
CONNECTED_ENTITY = "binary_sensor.sec1000_connected"  # only the MQTT device has it
MQTT_GONE_TIMEOUT = 15.0  # seconds to wait for Home Assistant to drop the MQTT entities


class HomeAssistantApi(Protocol):
    """What the bridge needs of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""

    async def subscribe(
        self, message: dict[str, Any], callback: Callable[[dict[str, Any]], None]
    ) -> Any:
        """Subscribe; `callback` gets each event payload."""

    async def set_state(self, entity_id: str, state: str, attributes: dict[str, Any]) -> Any:
        """POST /api/states/<entity_id>."""

    async def get_state(self, entity_id: str) -> Any:
        """GET /api/states/<entity_id> (None when unknown)."""

    async def delete_state(self, entity_id: str) -> bool:
        """DELETE /api/states/<entity_id> (False when unknown)."""


ClientT = TypeVar("ClientT", bound=HomeAssistantApi)
# Builds the client with the bridge's on_connected and on_disconnected.
ClientFactory = Callable[[ConnectedCallback, DisconnectedCallback], ClientT]


class Bridge(Generic[ClientT]):
    """Keeps Home Assistant in step with the state model, both ways."""

    def __init__(
        self,
        runtime: Runtime,
        make_client: ClientFactory[ClientT],
        *,
        mqtt_problem: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.runtime = runtime
        client = make_client(self.on_connected, self.on_disconnected)
        self.client: ClientT = client
        self.ws = client
        self.rest = client
        self.connected = False
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._users: dict[str, str] = {}
        self._tasks = TaskSet()
        self._unsubscribe: Callable[[], None] | None = None
        self.price_sensors: dict[str, str] = {}  # offered as the price entity: id -> name
        self._price_entity = runtime.options.price_entity
        self.prices = PriceFeed(runtime.policy, client, lambda: self.runtime.options.price_entity)
        # "rest": sensors posted as states, helpers for the controls. "mqtt": the MQTT device
        # holds the entities; this bridge keeps the events, the price sensor and notifications.
        self.mode = "rest"
        self.notifications = Notifications(runtime, client, mqtt_problem=mqtt_problem)
        self.rest_cleared = asyncio.Event()  # set once the REST states and helpers are gone
        self._rest_lock = asyncio.Lock()  # no state is posted while they are being removed
        self._mode_lock = asyncio.Lock()
        self.helpers = Helpers(
            runtime,
            client,
            active=lambda: self.connected and self.mode == "rest",
            origin=self._origin,
        )
        self._results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)  # not fired yet
        self._results_lock = asyncio.Lock()  # fired one at a time, in order

    # -- life cycle

    def start(self) -> None:
        """Subscribe to the state model and start the publishing and command tasks."""
        self._unsubscribe = self.runtime.state.subscribe(self._on_state_event)
        for coro in (
            self._publisher(),
            self._consumer(),
            self._notification_timer(),
            self.prices.run(),
        ):
            self._tasks.spawn(coro)

    async def stop(self) -> None:
        """Stop every task."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._tasks.cancel()

    async def on_connected(self) -> None:
        """After every (re)connect: entities of the mode, subscriptions, states, notifications."""
        async with self._mode_lock:  # a switch of mode waits for this, and this for a switch
            try:
                await self._set_up()
            except BaseException:
                self.connected = False  # the client calls on_disconnected only after a set-up
                raise

    async def _set_up(self) -> None:
        self.helpers.forget_synced()
        self.notifications.forget_shown()
        await self._load_users()
        existing = await self._read_states()
        await self.prices.on_connected()  # the zone, then the price service's forecast
        if self.mode == "rest":
            await self._wait_mqtt_gone()
            await self.helpers.ensure(existing)
        else:
            await self._leave_rest(existing)
        await self.ws.subscribe(
            {"type": "subscribe_events", "event_type": "state_changed"}, self._on_state_changed
        )
        await self.ws.subscribe(
            {"type": "subscribe_events", "event_type": COMMAND_EVENT}, self._on_command
        )
        self.connected = True
        if self.mode == "rest":
            await self._publish([sensor.entity_id for sensor in ALL_SENSORS])
            await self.helpers.sync()
        await self._update_notifications(resync=True)
        self._tasks.spawn(self._fire_results())  # those of commands that ended meanwhile

    async def set_mode(self, mode: str) -> None:
        """Switch between REST states and the MQTT device in a running Home Assistant.

        To MQTT: the posted states and the helpers go first, so that the MQTT entities get
        their ids without `_2`. To REST: once the MQTT entities are gone, the helpers come back
        and every state is posted again. Not connected, the next connect does it.
        """
        async with self._mode_lock:
            if mode == self.mode:
                return
            self.mode = mode
            self.rest_cleared.clear()
            if not self.connected:
                return
            existing = await self._read_states()
            if mode == "mqtt":
                await self._leave_rest(existing)
                return
            await self._wait_mqtt_gone()
            self.helpers.forget_synced()
            await self.helpers.ensure(existing)
            await self._publish([sensor.entity_id for sensor in ALL_SENSORS])
            await self.helpers.sync()

    async def _leave_rest(self, existing: set[str]) -> None:
        """Remove the posted states and the helpers; tell the user the new ids once."""
        async with self._rest_lock:
            removed = await self._remove_rest(existing)
        self.rest_cleared.set()
        if removed:
            title, message = moved_notice(entity_ids(self.runtime.options))
            await self.notifications.notify(MOVED_NOTIFICATION, title, message)

    async def _remove_rest(self, existing: set[str]) -> list[str]:
        registered = await self._registered()
        removed: list[str] = []
        for sensor in ALL_SENSORS:
            posted = sensor.entity_id in existing and sensor.entity_id not in registered
            if posted and await self.rest.delete_state(sensor.entity_id):
                removed.append(sensor.entity_id)
        removed += await self.helpers.remove()
        return removed

    async def _registered(self) -> dict[str, dict[str, Any]]:
        """The entity registry's entries of this add-on's entity ids, by entity id."""
        entries = await self.ws.send_command({"type": "config/entity_registry/list"})
        ours = {sensor.entity_id for sensor in ALL_SENSORS} | set(entity_ids(self.runtime.options))
        return {
            str(entry["entity_id"]): entry
            for entry in entries
            if isinstance(entry, dict) and entry.get("entity_id") in ours
        }

    async def _wait_mqtt_gone(self) -> None:
        """Wait until Home Assistant has dropped the MQTT device's entities (a switch back to
        REST): a state posted before would vanish with them. Without the device's
        connectivity sensor in the registry there is no device: one small question, not the
        whole registry, on every connect of a REST user."""
        try:
            await self.ws.send_command(
                {"type": "config/entity_registry/get", "entity_id": CONNECTED_ENTITY}
            )
        except CommandFailedError:  # not_found
            return
        deadline = time.monotonic() + MQTT_GONE_TIMEOUT
        while True:
            left = [
                entity_id
                for entity_id, entry in (await self._registered()).items()
                if entry.get("platform") == "mqtt"
            ]
            if not left:
                return
            if time.monotonic() > deadline:
                _LOGGER.warning(
                    "the MQTT device's entities are still in Home Assistant (%s…); remove the "
                    "SEC1000 device in Settings → Devices, or let the add-on reach the broker",
                    ", ".join(left[:3]),
                )
                return
            await asyncio.sleep(0.5)

    def on_disconnected(self) -> None:
        """The connection dropped; everything is re-sent on the next connect."""
        self.connected = False
        self.prices.on_disconnected()

    # -- what Home Assistant has

    async def _read_states(self) -> set[str]:
        """Every entity id Home Assistant has (states and helper lists). The states also give
        the price sensor's current state and the sensors priced per kWh (the Setup page offers
        them)."""
        states = await self.ws.send_command({"type": "get_states"})
        existing = {state["entity_id"] for state in states if isinstance(state, dict)}
        for state in states:
            if isinstance(state, dict):
                self._note_state(state)
        return existing | await self.helpers.read_lists()

    # -- from Home Assistant

    def _on_state_changed(self, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            return
        if data.get("entity_id") in HELPERS_BY_ENTITY:
            self._incoming.put_nowait(data)
        elif isinstance(new := data.get("new_state"), dict):
            self._note_state(new, event.get("time_fired"))

    def _note_state(self, state: dict[str, Any], fired: object = None) -> None:
        """Feed the price entity's states to the policy (`fired`: the event's time, which
        also sets Home Assistant's clock against ours); remember the entities Setup offers."""
        self.prices.state_seen(state, fired)
        if (found := offered(state)) is not None:
            self.price_sensors[found[0]] = found[1]

    def _on_command(self, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event, dict) else None
        context = event.get("context") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            data = {}
        request_id = data.get("request_id")
        origin = self._origin(context if isinstance(context, dict) else {})
        self._tasks.spawn(
            self.runtime.ops.run(
                data.get("command"),
                data,
                origin,
                None if request_id is None else str(request_id)[:200],
            )
        )

    async def _consumer(self) -> None:
        while True:
            data = await self._incoming.get()
            await self.helpers.settled.wait()  # our own call's context id must be known first
            try:
                await self._handle_helper_change(data)
            except Exception:
                _LOGGER.exception("could not handle a change of %s", data.get("entity_id"))

    async def _handle_helper_change(self, data: dict[str, Any]) -> None:
        if self.mode != "rest":
            return  # being removed: the MQTT device takes the commands
        await self.helpers.changed(data)

    def _origin(self, context: dict[str, Any]) -> Origin:
        user_id = context.get("user_id")
        if user_id:
            return Origin("home_assistant", self._users.get(str(user_id), str(user_id)))
        return Origin("automation")

    async def _load_users(self) -> None:
        try:
            users = await self.ws.send_command({"type": "config/auth/list"})
        except Exception as err:
            _LOGGER.debug("cannot list users (%s); commands are logged with user ids", err)
            return
        self._users = {
            str(user["id"]): str(user.get("name") or user["id"])
            for user in users
            if isinstance(user, dict) and "id" in user
        }

    # -- to Home Assistant

    def _on_state_event(self, event: StateEvent) -> None:
        if event.topic is Topic.TELEMETRY:  # a good read also starts the module
            self._mark(*(s.entity_id for s in TELEMETRY_SENSORS.values()), MODULE_STARTED.entity_id)
        elif event.topic is Topic.SETTINGS:
            self._mark(
                EXPORT_LIMIT.entity_id, EXPORT_STATE.entity_id, MODULE_STARTED.entity_id, "helpers"
            )
        elif event.topic is Topic.FEEDBACK:
            sensor = FEEDBACK_SENSORS.get(CommandName(event.data["operation"]))
            if sensor is not None:  # set_control_mode has no sensor in the contract
                self._mark(sensor.entity_id)
        elif event.topic is Topic.COMMAND:
            self._tasks.spawn(self._fire_result(dict(event.data)))
        elif event.topic is Topic.ENERGY:
            energy = (sensor.entity_id for sensor in ENERGY_SENSORS.values())
            meter = (OVER_LIMIT_ENERGY.entity_id, OVER_LIMIT_TODAY.entity_id)
            self._mark(*energy, *meter, TIME_AT_LIMIT.entity_id, "notifications")
        elif event.topic is Topic.OVERSHOOT:
            self._mark(OVER_LIMIT.entity_id, "notifications")
        elif event.topic is Topic.POLICY:
            self._mark(EXPORT_POLICY.entity_id)
        elif event.topic is Topic.OPTIONS:
            self._mark("notifications", "helpers")
            if self.runtime.options.price_entity != self._price_entity:
                self._price_entity = self.runtime.options.price_entity
                self.prices.entity_changed()
                self._mark("price_entity")
        elif event.topic is Topic.GUARD:
            self._mark(EXPORT_GUARD.entity_id, "notifications")
        elif event.topic in (Topic.RESTORE, Topic.LINK):
            self._mark("notifications")

    def notifications_changed(self) -> None:
        """Something the notifications show changed outside the state model (the broker)."""
        self._mark("notifications")

    def _mark(self, *keys: str) -> None:
        self._dirty.update(keys)
        self._dirty_event.set()

    async def _publisher(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            keys, self._dirty = self._dirty, set()
            if not self.connected:
                continue  # everything is re-published on connect
            try:
                if self.mode == "rest":
                    await self._publish([key for key in keys if "." in key])
                if "price_entity" in keys:  # a new price sensor: its helper and its state
                    existing = await self._read_states()
                    if self.mode == "rest":
                        await self.helpers.ensure(existing)
                if "helpers" in keys:
                    await self.helpers.sync()
                if "notifications" in keys:
                    await self._update_notifications()
            except Exception as err:
                _LOGGER.warning("publishing to Home Assistant failed: %s", err)

    async def _publish(self, entity_ids: list[str]) -> None:
        async with self._rest_lock:
            if self.mode == "rest":
                await self._post(entity_ids)

    async def _post(self, entity_ids: list[str]) -> None:
        sensors = [
            SENSORS_BY_ENTITY[entity_id]
            for entity_id in entity_ids
            if entity_id in SENSORS_BY_ENTITY
        ]
        await asyncio.gather(
            *(
                self.rest.set_state(sensor.entity_id, self._value(sensor), self._attributes(sensor))
                for sensor in sensors
            )
        )

    def _attributes(self, sensor: Sensor) -> dict[str, Any]:
        return {**sensor.attributes(), **sensor_extra_attributes(self.runtime.state, sensor)}

    def _value(self, sensor: Sensor) -> str:
        return sensor_value(self.runtime.state, sensor)

    async def _fire_result(self, record: dict[str, Any]) -> None:
        self._results.append(result_data(record))
        await self._fire_results()

    async def _fire_results(self) -> None:
        """Fire the kept results in order; one that ends while Home Assistant is away (a
        restart) stays until the next connect, so a waiting caller still gets its answer."""
        async with self._results_lock:
            while self.connected and self._results:
                data = self._results[0]
                try:
                    await self.ws.send_command(
                        {"type": "fire_event", "event_type": RESULT_EVENT, "event_data": data}
                    )
                except ConnectionClosedError:
                    return  # kept: fired after the next connect
                except Exception as err:
                    _LOGGER.warning("could not fire %s: %s", RESULT_EVENT, err)
                self._results.popleft()

    # -- persistent notifications

    async def _update_notifications(self, resync: bool = False) -> None:
        if self.connected:
            await self.notifications.update(resync)

    async def _notification_timer(self) -> None:
        """The offline notification depends on time passing, not only on events; so does the
        freshness of a price that does not change (read again here)."""
        while True:
            await asyncio.sleep(NOTIFICATION_CHECK_INTERVAL)
            self._mark("notifications")
            for entity_id in self.prices.watched() if self.connected else ():
                try:
                    state = await self.rest.get_state(entity_id)
                except Exception as err:
                    _LOGGER.debug("cannot read the price entity %s: %s", entity_id, err)
                else:
                    if isinstance(state, dict):
                        self._note_state(state)


def result_data(record: dict[str, Any]) -> dict[str, Any]:
    """The `sec1000_command_result` event's data for one command record."""
    feedback = int(record["feedback"])
    return {
        "command": record["command"],
        "request_id": record.get("request_id"),
        "feedback": feedback,
        "ok": bool(feedback & Feedback.OK),
        "message": record["message"],
    }
