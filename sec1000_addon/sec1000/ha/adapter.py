"""The Home Assistant side as `serve` runs it: the WebSocket bridge, and the MQTT devices when
the entities go through a broker.

The `entities` option chooses: `rest` posts states and creates helpers; `mqtt` announces one
device per controller through the broker; `auto` is MQTT when a broker is found (the
`mqtt_host` option, else the Supervisor's MQTT service), else REST. A change of these options
switches in place; a controller added to or removed from the options comes or goes at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sec1000 import __version__
from sec1000.common.tasks import TaskSet, cancel_all
from sec1000.ha import RECONNECT_MAX, Endpoint, EntityMode, HomeAssistantError
from sec1000.ha.bridge import Bridge, ClientFactory
from sec1000.ha.client import (
    ClientTimings,
    ConnectedCallback,
    DisconnectedCallback,
    HomeAssistantClient,
)
from sec1000.ha.discovery import DeviceInfo, entity_ids
from sec1000.ha.entities import helpers_for, sensors_of
from sec1000.ha.mqtt import Broker, MqttDevice, remove_leftover
from sec1000.ha.scripts import install_scripts
from sec1000.ha.supervisor import SupervisorOptionsStore
from sec1000.headline import ENGLISH_WORDS, Words
from sec1000.options import Options
from sec1000.plant import Change, Plant, PlantEvent
from sec1000.runtime import Runtime
from sec1000.state import StateEvent, Topic

_LOGGER = logging.getLogger(__name__)

ENTITY_OPTIONS = ("entities", "mqtt_host", "mqtt_port", "mqtt_username", "mqtt_password")
BROKER_LOOKUP_INTERVAL = 60.0  # while MQTT is chosen and no broker is known
MQTT_NOTIFICATION_AFTER = 30.0  # seconds without the broker before Home Assistant is told


@dataclass(frozen=True)
class AdapterTimings:
    """The longest wait between reconnects to Home Assistant, and how often a missing MQTT
    broker is looked up again."""

    reconnect_max: float = RECONNECT_MAX
    broker_lookup_interval: float = BROKER_LOOKUP_INTERVAL


def _client_for(
    endpoint: Endpoint, session: aiohttp.ClientSession, reconnect_max: float
) -> ClientFactory[HomeAssistantClient]:
    """The bridge's client: Home Assistant at `endpoint`, calling back the bridge."""

    def make(
        on_connected: ConnectedCallback, on_disconnected: DisconnectedCallback
    ) -> HomeAssistantClient:
        return HomeAssistantClient(
            endpoint,
            session,
            on_connected=on_connected,
            on_disconnected=on_disconnected,
            timings=ClientTimings(backoff_max=reconnect_max),
        )

    return make


@dataclass(frozen=True)
class Shown:
    """How the add-on shows itself in Home Assistant: the panel's address (the device's link),
    and a language by Home Assistant's language code (the headline attribute is said in it)."""

    panel_url: str | None = None
    words: Callable[[str | None], Words] = lambda _language: ENGLISH_WORDS


class HomeAssistantAdapter:
    """The client, the bridge and the MQTT devices (one per controller) together."""

    def __init__(
        self,
        plant: Plant,
        endpoint: Endpoint | None,
        session: aiohttp.ClientSession,
        *,
        supervisor: SupervisorOptionsStore | None = None,
        shown: Shown = Shown(),
        timings: AdapterTimings = AdapterTimings(),
    ) -> None:
        self.plant = plant
        self.runtime = runtime = plant.first
        self._words_for = shown.words
        self.bridge = (
            Bridge(
                plant,
                _client_for(endpoint, session, timings.reconnect_max),
                mqtt_problem=self.mqtt_problem,
                words=self.words,
            )
            if endpoint is not None
            else None
        )
        self.client = self.bridge.client if self.bridge is not None else None
        self.supervisor = supervisor
        self.panel_url = shown.panel_url
        self.devices: dict[str, MqttDevice] = {}  # by controller, the first one first
        self.entity_mode = EntityMode.REST  # in effect now
        self.broker: Broker | None = None
        self._broker_lookup_interval = timings.broker_lookup_interval
        self._entity_options = self._watched(runtime.options)
        self._lock = asyncio.Lock()
        self._chosen = False  # a choice made with Home Assistant asked (not only at start)
        self._starting: asyncio.Task[None] | None = None  # waiting to announce the device
        self._leftover: Broker | None = None  # a broker that may still hold our device
        self._tasks = TaskSet()
        self._info: DeviceInfo | None = None  # what every device page shows
        self._stopped = False
        self._unsubscribe: Callable[[], None] | None = None
        plant.subscribe(self._on_plant_event)

    def words(self) -> Words:
        """Home Assistant's language as far as it is known (its config, read at each connect)."""
        client = self.client
        return self._words_for(getattr(client, "language", None))

    @property
    def mqtt(self) -> MqttDevice | None:
        """The first controller's MQTT device, when there is one."""
        return self.devices.get(self.runtime.name)

    # -- life cycle

    def start(self) -> None:
        """Choose the entity mode, then connect (with retries) in the background."""
        self._tasks.spawn(self._start())

    async def stop(self) -> None:
        """Disconnect and stop every task (the MQTT devices say offline)."""
        self._stopped = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._tasks.cancel()
        await self._stop_devices()
        if self.client is not None:
            await self.client.stop()
        if self.bridge is not None:
            await self.bridge.stop()

    async def _start(self) -> None:
        async with self._lock:
            mode, broker = await self._choose_safely()
            self.entity_mode, self.broker = mode, broker
            if self.bridge is not None and self.client is not None:
                await self.bridge.set_mode(mode)  # not connected yet: the connect sets it up
                self.bridge.start()
                self.client.start()
            if mode is EntityMode.MQTT:
                self._begin_mqtt(broker)
            elif broker is not None:
                self._leftover = broker  # an earlier run's device, if any, goes (entities: rest)
                self._tasks.spawn(self._remove_leftover())
        self._unsubscribe = self.runtime.state.subscribe(self._on_state_event)
        self._tasks.spawn(self._keep_choosing())

    # -- choosing and switching

    @staticmethod
    def _watched(options: Options) -> tuple[Any, ...]:
        return tuple(getattr(options, key) for key in ENTITY_OPTIONS)

    async def _choose_safely(self) -> tuple[EntityMode, Broker | None]:
        try:
            return await self._choose()
        except Exception:  # never keep Home Assistant from starting: REST until next time
            _LOGGER.exception("choosing the entity mode failed; using REST for now")
            return EntityMode.REST, None

    async def _choose(self) -> tuple[EntityMode, Broker | None]:
        """The mode and the broker (the option's `auto`, `mqtt` or `rest` resolved). `auto` takes MQTT only when Home Assistant has
        its MQTT integration loaded (a broker nobody reads would hide every entity); while
        Home Assistant cannot say, the mode in effect stays."""
        options = self.runtime.options
        broker = await self._find_broker(options)
        if options.entities == EntityMode.MQTT:
            return EntityMode.MQTT, broker
        if options.entities == EntityMode.REST or broker is None:
            return EntityMode.REST, broker
        loaded = await self._home_assistant_has_mqtt()
        if loaded is None:
            return (self.entity_mode if self._chosen else EntityMode.MQTT), broker
        return (EntityMode.MQTT if loaded else EntityMode.REST), broker

    async def _home_assistant_has_mqtt(self) -> bool | None:
        """Whether Home Assistant runs its MQTT integration (GET /api/config), None if unknown."""
        if self.client is None:
            return True  # no Home Assistant to ask, nor REST states to fall back on
        try:
            config = await self.client.api.request("GET", "config")
        except HomeAssistantError as err:
            _LOGGER.debug("cannot ask Home Assistant for its integrations: %s", err)
            return None
        components = config.get("components") if isinstance(config, dict) else None
        if not isinstance(components, list):
            return None
        return "mqtt" in components

    async def _find_broker(self, options: Options) -> Broker | None:
        """The `mqtt_host` option when set, else the Supervisor's MQTT service, else None."""
        if options.mqtt_host:
            return Broker(
                options.mqtt_host,
                options.mqtt_port,
                options.mqtt_username or None,
                options.mqtt_password or None,
                source="options",
            )
        if self.supervisor is None:
            return None
        try:
            service = await self.supervisor.mqtt_service()
        except HomeAssistantError as err:
            _LOGGER.warning("cannot ask the Supervisor for an MQTT broker: %s", err)
            return None
        if service is None:
            return None
        try:
            port = int(service.get("port") or 1883)
        except (TypeError, ValueError):
            port = 1883
        return Broker(
            str(service["host"]),
            port,
            str(service.get("username") or "") or None,
            str(service.get("password") or "") or None,
            ssl=bool(service.get("ssl")),
            source="the Supervisor",
        )

    async def apply(self) -> None:
        """Choose again and switch in place: REST ⇄ MQTT, or to another broker (the
        Supervisor's credentials can change too)."""
        async with self._lock:
            mode, broker = await self._choose_safely()
            self._chosen = True
            running = bool(self.devices) or (
                self._starting is not None and not self._starting.done()
            )
            if (mode, broker) == (self.entity_mode, self.broker) and (
                mode is EntityMode.REST or running
            ):
                return
            if self._starting is not None:
                await cancel_all({self._starting})
                self._starting = None
            previous = self.devices.get(self.runtime.name)
            self.entity_mode, self.broker = mode, broker
            await self._stop_devices(remove=True)
            if previous is not None and previous.removal_failed:
                self._leftover = previous.broker
            if self.bridge is not None:
                try:
                    await self.bridge.set_mode(mode)
                except Exception as err:  # the next connect of the bridge finishes it
                    _LOGGER.warning("switching Home Assistant to %s entities: %s", mode, err)
            if mode is EntityMode.MQTT:
                self._begin_mqtt(broker)

    def _begin_mqtt(self, broker: Broker | None) -> None:
        if broker is None:
            _LOGGER.warning("entities set to MQTT, but no MQTT broker found: looking again")
            self._mark_notifications()
            return
        self._starting = self._tasks.spawn(self._start_mqtt(broker))

    async def _start_mqtt(self, broker: Broker) -> None:
        """Announce once the REST states and helpers are gone: an entity id still held by a
        posted state would get `_2`. Without Home Assistant's connection, that waits."""
        if self.bridge is not None:
            await self.bridge.switch.rest_cleared.wait()
        self._info = await self._device_info()
        for runtime in list(self.plant.runtimes.values()):
            self._start_device(runtime, broker, self._info)
        await self._remove_departed(broker)

    async def _remove_departed(self, broker: Broker) -> None:
        """The MQTT devices of controllers removed while the add-on was stopped."""
        for name in list(self.plant.departed):
            try:
                if await remove_leftover(broker, self.runtime.options, name):
                    _LOGGER.info("removed the MQTT device of controller %s, removed", name)
            except Exception as err:
                _LOGGER.warning("could not remove the MQTT device of %s: %s", name, err)
                continue
            if self.bridge is None:  # else the bridge clears its states and helpers first
                self.plant.cleared(name)

    def _start_device(self, runtime: Runtime, broker: Broker, info: DeviceInfo) -> None:
        if runtime.name in self.devices:
            return
        device = MqttDevice(
            runtime, broker, info, on_change=self._mark_notifications, words=self.words
        )
        self.devices[runtime.name] = device
        device.start()

    async def _stop_devices(self, *, remove: bool = False) -> None:
        """Stop every MQTT device (`remove`: remove them from Home Assistant)."""
        devices, self.devices = list(self.devices.values()), {}
        for device in devices:
            await device.stop(remove=remove)

    # -- controllers added and removed

    def _on_plant_event(self, event: PlantEvent) -> None:
        if not self._stopped:
            self._tasks.spawn(self._controller_changed(event))

    async def _controller_changed(self, event: PlantEvent) -> None:
        """A controller added: its entities appear (REST states and helpers, or its MQTT
        device). Removed: they go from Home Assistant; its files stay."""
        runtime = event.runtime
        try:
            async with self._lock:
                if event.change is Change.ADDED:
                    if self.bridge is not None:
                        await self.bridge.add(runtime)
                    starting = self._starting is not None and not self._starting.done()
                    if (
                        self.entity_mode is EntityMode.MQTT
                        and self.broker is not None
                        and not starting
                    ):
                        self._start_device(runtime, self.broker, await self._known_info())
                    return
                device = self.devices.pop(runtime.name, None)
                if device is not None:
                    await device.stop(remove=True)
                if self.bridge is not None:
                    await self.bridge.remove(runtime.name)
                else:
                    self.plant.cleared(runtime.name)
        except Exception:
            _LOGGER.exception("Home Assistant: controller %s %s failed", runtime.name, event.change)

    async def _known_info(self) -> DeviceInfo:
        if self._info is None:
            self._info = await self._device_info()
        return self._info

    async def _remove_leftover(self) -> None:
        """Remove the device an earlier run (or a failed removal) left on the broker."""
        broker = self._leftover
        if broker is None:
            return
        try:
            for name in [*self.plant.runtimes, *self.plant.departed]:
                if await remove_leftover(broker, self.runtime.options, name):
                    _LOGGER.info("removed the MQTT device of %s left on %s", name, broker)
        except Exception as err:
            _LOGGER.warning("could not check %s for a device left there: %s", broker, err)
            return
        if self._leftover == broker:
            self._leftover = None

    async def _device_info(self) -> DeviceInfo:
        url = self.panel_url
        if url is None and self.supervisor is not None:
            try:
                slug = (await self.supervisor.addon_info()).get("slug")
            except HomeAssistantError as err:
                _LOGGER.debug("no add-on slug for the device page: %s", err)
            else:
                # Core 2026.2+ opens apps at homeassistant://app/<slug> (core PR 161264), as its
                # own integrations now link; kept: Core 2025.4, the oldest supported, knows only
                # this path. Not yet checked on a Core that has both (issue #32's report).
                url = f"homeassistant://hassio/ingress/{slug}" if slug else None
        return DeviceInfo(__version__, url)

    def _on_state_event(self, event: StateEvent) -> None:
        if event.topic is not Topic.OPTIONS:
            return
        watched = self._watched(self.runtime.options)
        if watched != self._entity_options:
            self._entity_options = watched
            self._tasks.spawn(self._apply_logged())

    async def _apply_logged(self) -> None:
        try:
            await self.apply()
        except Exception:
            _LOGGER.exception("switching the entity mode failed")

    async def _keep_choosing(self) -> None:
        """Now and then: a broker that came (or went, or changed its password), Home
        Assistant's MQTT integration set up later, a device left on a broker."""
        while True:
            await asyncio.sleep(self._broker_lookup_interval)
            if self._leftover is not None and self.entity_mode is EntityMode.REST:
                await self._remove_leftover()
            if self.runtime.options.entities != EntityMode.REST:
                await self._apply_logged()

    # -- status

    def _mark_notifications(self) -> None:
        if self.bridge is not None:
            self.bridge.notifications_changed()

    def mqtt_problem(self) -> str | None:
        """Why the MQTT device is not in Home Assistant, when it should be (a notification)."""
        if self.entity_mode is not EntityMode.MQTT:
            return None
        if self.broker is None:
            return (
                "The entities are set to MQTT, but no broker was found: install and start the "
                "Mosquitto broker add-on, or set the MQTT broker on the panel's Setup page. The "
                "add-on looks again every minute; meanwhile the SEC1000 entities are missing."
            )
        device = self.mqtt
        if device is None or device.connected or device.failing_since is None:
            return None
        if time.time() - device.failing_since < MQTT_NOTIFICATION_AFTER:
            return None
        return (
            f"The add-on cannot reach the MQTT broker {device.broker.host}:{device.broker.port} "
            f"({device.last_error}). It keeps retrying; the SEC1000 entities are unavailable "
            "meanwhile."
        )

    def diagnostics(self) -> dict[str, Any]:
        """The Home Assistant connection, the entity mode and the broker, for the panel."""
        out: dict[str, Any] = (
            self.client.diagnostics()
            if self.client is not None
            else {"connected": False, "status": "not configured"}
        )
        out["entities"] = {
            "option": self.runtime.options.entities,
            "mode": self.entity_mode,
            "broker": str(self.broker) if self.broker else None,
            "mqtt": self.mqtt.diagnostics() if self.mqtt is not None else None,
            "devices": {name: device.diagnostics() for name, device in self.devices.items()},
            "problem": self.mqtt_problem(),
        }
        return out

    def entity_ids(self, controller: str | None = None) -> list[str]:
        """The entity ids the add-on gives Home Assistant in the mode in effect: one
        controller's, or (None) every controller's, the first one's first."""
        names = list(self.plant.runtimes) if controller is None else [controller]
        options = self.runtime.options
        out: list[str] = []
        for name in names:
            if self.entity_mode is EntityMode.MQTT:
                out += entity_ids(options, name)
            else:
                out += [s.entity_id for s in sensors_of(name)]
                out += [h.entity_id for h in helpers_for(options.price_entity, name)]
        return out

    async def install_scripts(self) -> list[dict[str, str]]:
        """Create or update the awaitable scripts (a click on the panel); ConnectionError when
        Home Assistant cannot be reached."""
        if self.client is None:
            raise ConnectionError("no Home Assistant is configured")
        if not self.client.connected:
            raise ConnectionError(f"Home Assistant is not connected ({self.client.status})")
        outcomes = await install_scripts(self.client.api)
        return [
            {"entity_id": o.entity_id, "action": o.action, "detail": o.detail} for o in outcomes
        ]

    @property
    def price_sensors(self) -> dict[str, str]:
        """The sensors priced per kWh that Home Assistant has (the Setup page offers them)."""
        return self.bridge.price_sensors if self.bridge is not None else {}
