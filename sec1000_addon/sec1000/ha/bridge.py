"""Keeps Home Assistant in step with the add-on over one connection: its set-up, the controllers
added and removed, and the events (`sec1000_command` to the controller it names,
`sec1000_command_result` back). Each controller's states, helpers and notifications are a
`ControllerBridge` (`controller.py`); the entity mode and the switch between REST states and
helpers and the MQTT devices' entities are its `ModeSwitch` (`switching.py`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sec1000.common.tasks import TaskSet
from sec1000.ha import ConnectionClosedError, EntityMode, HomeAssistantApi
from sec1000.ha.client import ConnectedCallback, DisconnectedCallback
from sec1000.ha.controller import NOTIFICATIONS_MARK, ControllerBridge
from sec1000.ha.entities import COMMAND_EVENT, RESULT_EVENT
from sec1000.ha.helpers import Helpers, listed_helpers
from sec1000.ha.notifications import Notifications
from sec1000.ha.price_states import offered
from sec1000.ha.switching import ModeSwitch
from sec1000.headline import ENGLISH_WORDS, Words
from sec1000.operations import Origin
from sec1000.plant import Plant, UnknownController
from sec1000.protocol import Feedback
from sec1000.runtime import Runtime

_LOGGER = logging.getLogger(__name__)

RESULTS_KEPT = 100  # results of commands that ended while Home Assistant was away
NOTIFICATION_CHECK_INTERVAL = 30.0
SHOWN_NAME = 40  # characters of an unknown controller's name quoted back


ClientT = TypeVar("ClientT", bound=HomeAssistantApi)
# Builds the client with the bridge's on_connected and on_disconnected.
ClientFactory = Callable[[ConnectedCallback, DisconnectedCallback], ClientT]


class Bridge(Generic[ClientT]):
    """Keeps Home Assistant in step with every controller, both ways, on one connection."""

    def __init__(
        self,
        plant: Plant,
        make_client: ClientFactory[ClientT],
        *,
        mqtt_problem: Callable[[], str | None] = lambda: None,
        words: Callable[[], Words] = lambda: ENGLISH_WORDS,
    ) -> None:
        self.plant = plant
        self._words = words
        self.runtime = plant.first
        self.client: ClientT = make_client(self.on_connected, self.on_disconnected)
        self.connected = False
        self._mqtt_problem = mqtt_problem
        self.sides: dict[str, ControllerBridge] = {}
        # In MQTT mode the devices hold the entities; the bridge keeps the events, the price
        # sensor and the notifications.
        self.switch = ModeSwitch(self.client, self.sides, plant.first.name)
        self._removed: list[ControllerBridge] = []  # removed while Home Assistant was away
        for runtime in plant.runtimes.values():
            self._side(runtime)
        for runtime in plant.departed.values():  # removed while the add-on was stopped
            self._removed.append(self._new_side(runtime))
        self._incoming: asyncio.Queue[tuple[ControllerBridge, dict[str, Any]]] = asyncio.Queue()
        self._users: dict[str, str] = {}
        self._tasks = TaskSet()
        self._started = False
        self.price_sensors: dict[str, str] = {}  # offered as the price entity: id -> name
        self._results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)  # not fired yet
        self._results_lock = asyncio.Lock()  # fired one at a time, in order

    def _side(self, runtime: Runtime) -> ControllerBridge:
        side = self._new_side(runtime)
        self.sides[runtime.name] = side
        return side

    def _new_side(self, runtime: Runtime) -> ControllerBridge:
        first = runtime is self.plant.first
        return ControllerBridge(
            runtime,
            self.client,
            self,
            mqtt_problem=self._mqtt_problem if first else lambda: None,
            words=self._words,
        )

    @property
    def first(self) -> ControllerBridge:
        """The first controller's side."""
        return self.sides[self.plant.first.name]

    @property
    def mode(self) -> EntityMode:
        """The entity mode (its switch's)."""
        return self.switch.mode

    @property
    def posting(self) -> asyncio.Lock:
        """Held while states are posted, and while the REST entities are removed."""
        return self.switch.posting

    @property
    def helpers(self) -> Helpers:
        """The first controller's helpers."""
        return self.first.helpers

    @property
    def notifications(self) -> Notifications:
        """The first controller's notifications (the add-on's own ones among them)."""
        return self.first.notifications

    # -- life cycle

    def start(self) -> None:
        """Follow every controller; start the command and notification tasks."""
        self._started = True
        for side in self.sides.values():
            side.start()
        self._tasks.spawn(self._consumer())
        self._tasks.spawn(self._notification_timer())

    async def stop(self) -> None:
        """Stop every task."""
        await self._tasks.cancel()
        for side in self.sides.values():
            await side.stop()

    async def add(self, runtime: Runtime) -> None:
        """A controller added to the options: its entities (REST mode), helpers and
        notifications appear now."""
        async with self.switch.lock:
            if runtime.name in self.sides:
                return
            side = self._side(runtime)
            if self._started:
                side.start()
            if not self.connected:
                return  # the next connect sets it up
            existing = await self._read_states()
            await side.prices.on_connected()
            if self.mode is EntityMode.REST:
                await side.helpers.ensure(existing)
                await side.publish_all()
            await side.update_notifications(resync=True)

    async def remove(self, name: str) -> None:
        """A controller removed from the options: its posted states, its helpers and its
        notifications go from Home Assistant (its files stay)."""
        async with self.switch.lock:
            side = self.sides.pop(name, None)
            if side is None:
                return
            await side.stop()
            self._removed.append(side)
            if self.connected:
                await self._clear_removed(await self._read_states())

    async def _clear_removed(self, existing: set[str]) -> None:
        """Remove what the removed controllers left in Home Assistant."""
        while self._removed:
            side = self._removed[0]
            removed = await self.switch.remove_rest(side, existing)
            await side.notifications.dismiss_all()
            self._removed.pop(0)
            if side.name not in self.sides:  # not added again meanwhile
                self.plant.cleared(side.name)
            _LOGGER.info("controller %s removed from Home Assistant: %s", side.name, removed)

    async def on_connected(self) -> None:
        """After every (re)connect: entities of the mode, subscriptions, states, notifications."""
        async with self.switch.lock:  # a switch of mode waits for this, and this for a switch
            try:
                await self._set_up()
            except BaseException:
                self.connected = False  # the client calls on_disconnected only after a set-up
                raise

    async def _set_up(self) -> None:
        for side in self.sides.values():
            side.forget()
        await self._load_users()
        existing = await self._read_states()
        await self._clear_removed(existing)
        for side in self.sides.values():
            await side.prices.on_connected()  # the zone, then the price service's forecast
        await self.switch.enter(existing)
        await self.client.subscribe(
            {"type": "subscribe_events", "event_type": "state_changed"}, self._on_state_changed
        )
        await self.client.subscribe(
            {"type": "subscribe_events", "event_type": COMMAND_EVENT}, self._on_command
        )
        self.connected = True
        for side in self.sides.values():
            if self.mode is EntityMode.REST:
                await side.publish_all()
            await side.update_notifications(resync=True)
        self._tasks.spawn(self._fire_results())  # those of commands that ended meanwhile

    async def set_mode(self, mode: EntityMode) -> None:
        """Switch between REST states and the MQTT devices in a running Home Assistant.

        To MQTT: the posted states and the helpers go first, so that the MQTT entities get
        their ids without `_2`. To REST: once the MQTT entities are gone, the helpers come back
        and every state is posted again. Not connected, the next connect does it.
        """
        async with self.switch.lock:
            if not self.switch.choose(mode) or not self.connected:
                return
            await self.switch.enter(await self._read_states())
            if mode is EntityMode.REST:
                for side in self.sides.values():
                    await side.publish_all()

    def on_disconnected(self) -> None:
        """The connection dropped; everything is re-sent on the next connect."""
        self.connected = False
        for side in self.sides.values():
            side.prices.on_disconnected()

    # -- what Home Assistant has

    async def _read_states(self) -> set[str]:
        """Every entity id Home Assistant has (states and helper lists). The states also give
        the price sensor's current state and the sensors priced per kWh (the Setup page offers
        them)."""
        states = await self.client.send_command({"type": "get_states"})
        existing = {state["entity_id"] for state in states if isinstance(state, dict)}
        for state in states:
            if isinstance(state, dict):
                self._note_state(state)
        listed = await listed_helpers(self.client)
        for side in self.sides.values():
            side.helpers.listed = listed
        return existing | listed

    async def read_states(self) -> set[str]:
        """Every entity id Home Assistant has (a controller's new price entity)."""
        return await self._read_states()

    # -- from Home Assistant

    def _owner(self, entity_id: object) -> ControllerBridge | None:
        """The controller whose helper this is."""
        for side in self.sides.values():
            if entity_id in side.helpers.by_entity:
                return side
        return None

    def _on_state_changed(self, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            return
        if (side := self._owner(data.get("entity_id"))) is not None:
            self._incoming.put_nowait((side, data))
        elif isinstance(new := data.get("new_state"), dict):
            self._note_state(new, event.get("time_fired"))

    def _note_state(self, state: dict[str, Any], fired: object = None) -> None:
        """Feed the price entity's states to every controller's policy (`fired`: the event's
        time, which also sets Home Assistant's clock against ours); remember the entities Setup
        offers."""
        for side in self.sides.values():
            side.prices.state_seen(state, fired)
        if (found := offered(state)) is not None:
            self.price_sensors[found[0]] = found[1]

    def _on_command(self, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event, dict) else None
        context = event.get("context") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            data = {}
        raw_id = data.get("request_id")
        request_id = None if raw_id is None else str(raw_id)[:200]
        origin = self.origin(context if isinstance(context, dict) else {})
        controller = data.get("controller")
        try:
            runtime = self.plant.get(None if controller is None else str(controller))
        except UnknownController as err:
            self._unknown_controller(data, str(controller)[:SHOWN_NAME], request_id, str(err))
            return
        self._tasks.spawn(runtime.ops.run(data.get("command"), data, origin, request_id))

    def _unknown_controller(
        self, data: dict[str, Any], controller: str, request_id: str | None, message: str
    ) -> None:
        """A command for a controller there is not: 128 in words, sent nowhere."""
        _LOGGER.warning("%s from Home Assistant: %s", data.get("command"), message)
        self.result(
            {
                "command": str(data.get("command"))[:40],
                "request_id": request_id,
                "feedback": int(Feedback.INVALID_INPUT),
                "ok": False,
                "message": message,
                "controller": controller,
            }
        )

    async def _consumer(self) -> None:
        while True:
            side, data = await self._incoming.get()
            await side.helpers.settled.wait()  # our own call's context id must be known first
            try:
                if self.mode is EntityMode.REST and side.name in self.sides:  # else: being removed
                    await side.helpers.changed(data)
            except Exception:
                _LOGGER.exception("could not handle a change of %s", data.get("entity_id"))

    def origin(self, context: dict[str, Any]) -> Origin:
        """Who acted: the user of the context, else an automation."""
        user_id = context.get("user_id")
        if user_id:
            return Origin("home_assistant", self._users.get(str(user_id), str(user_id)))
        return Origin("automation")

    async def _load_users(self) -> None:
        try:
            users = await self.client.send_command({"type": "config/auth/list"})
        except Exception as err:
            _LOGGER.debug("cannot list users (%s); commands are logged with user ids", err)
            return
        self._users = {
            str(user["id"]): str(user.get("name") or user["id"])
            for user in users
            if isinstance(user, dict) and "id" in user
        }

    # -- to Home Assistant

    def notifications_changed(self) -> None:
        """Something the notifications show changed outside the state model (the broker)."""
        self.first.mark(NOTIFICATIONS_MARK)

    def result(self, data: dict[str, Any]) -> None:
        """Fire one `sec1000_command_result` now, or after the next connect."""
        self._results.append(data)
        self._tasks.spawn(self._fire_results())

    async def _fire_results(self) -> None:
        """Fire the kept results in order; one that ends while Home Assistant is away (a
        restart) stays until the next connect, so a waiting caller still gets its answer."""
        async with self._results_lock:
            while self.connected and self._results:
                data = self._results[0]
                try:
                    await self.client.send_command(
                        {"type": "fire_event", "event_type": RESULT_EVENT, "event_data": data}
                    )
                except ConnectionClosedError:
                    return  # kept: fired after the next connect
                except Exception as err:
                    _LOGGER.warning("could not fire %s: %s", RESULT_EVENT, err)
                self._results.popleft()

    # -- persistent notifications

    async def _notification_timer(self) -> None:
        """The offline notification depends on time passing, not only on events; so does the
        freshness of a price that does not change (read again here)."""
        while True:
            await asyncio.sleep(NOTIFICATION_CHECK_INTERVAL)
            for side in list(self.sides.values()):
                side.mark(NOTIFICATIONS_MARK)
            if not self.connected:
                continue
            watched = {entity for side in self.sides.values() for entity in side.prices.watched()}
            for entity_id in sorted(watched):
                try:
                    state = await self.client.get_state(entity_id)
                except Exception as err:
                    _LOGGER.debug("cannot read the price entity %s: %s", entity_id, err)
                else:
                    if isinstance(state, dict):
                        self._note_state(state)
