"""The MQTT device: announces the entities, keeps their states, and takes their commands.

One connection to the broker (aiomqtt), kept up with retries. On every connect, and whenever
Home Assistant says `online` on `homeassistant/status`, the device is announced again and every
state is published again (retained, so Home Assistant also finds them after its own restart).
Commands go through the same command registry and guard as every other source, origin `mqtt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from sec1000.commands import CommandName
from sec1000.common.backoff import backoff_delays
from sec1000.common.tasks import TaskSet, cancel_all
from sec1000.ha import RECONNECT_MAX
from sec1000.ha.discovery import (
    CONTROL_MODE,
    EXPORT_SWITCH,
    HA_STATUS_TOPIC,
    OFFLINE,
    ON,
    ONLINE,
    POLICY_SWITCH,
    PRESS,
    SETPOINT,
    Component,
    DeviceInfo,
    availability_topic,
    by_command_topic,
    command_topics,
    discovery_topic,
    entity_ids,
    retained_topics,
    state_payloads,
)
from sec1000.headline import ENGLISH_WORDS, Words
from sec1000.operations import Origin
from sec1000.options import FIRST_CONTROLLER, Options, OptionsError
from sec1000.runtime import Runtime
from sec1000.state import StateEvent, Topic

_LOGGER = logging.getLogger(__name__)

MQTT = Origin("mqtt")
KEEPALIVE = 30
COMMAND_GRACE = 30.0  # seconds a stop waits for commands under way (a reset takes ~13 s)
# Events that change no payload: the link's health after each exchange, a command's record.
QUIET_TOPICS = frozenset({Topic.LINK, Topic.COMMAND})
SHOWN_PAYLOAD = 40  # characters of a bad payload quoted back in its feedback


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the broker is and how to sign in; `source` says who told (never the password)."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    source: str = "options"

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"Broker({user}{self.host}:{self.port} from {self.source})"

    __str__ = __repr__


def shown(payload: str) -> str:
    """A payload as quoted back: short, one line."""
    text = payload if len(payload) <= SHOWN_PAYLOAD else payload[: SHOWN_PAYLOAD - 1] + "…"
    return repr(text)


def client_for(broker: Broker, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    """A client for one connection (aiomqtt clients are not reused)."""
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username or None,
        password=broker.password or None,
        identifier=f"sec1000-{secrets.token_hex(4)}",
        will=will,
        keepalive=KEEPALIVE,
        timeout=10,
        tls_context=ssl.create_default_context() if broker.ssl else None,
    )


async def _clear(client: aiomqtt.Client, topics: tuple[str, ...]) -> None:
    """Empty retained messages: the discovery topic first, so Home Assistant drops the device."""
    for topic in topics:
        await client.publish(topic, b"", qos=1, retain=True)


async def remove_leftover(
    broker: Broker, options: Options, controller: str = FIRST_CONTROLLER, wait: float = 2.0
) -> bool:
    """Remove the device of `controller` an earlier run left on the broker (its retained
    discovery message); True when there was one. Raises aiomqtt.MqttError when the broker
    cannot be reached."""
    async with client_for(broker) as client:
        await client.subscribe(discovery_topic(controller), qos=1)
        found = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):  # a retained message comes at once, if any
                async for message in client.messages:
                    found = bool(message.payload)
                    break
        if found:
            await _clear(client, retained_topics(options, controller))
        return found


class MqttDevice:
    """One controller's entities as one MQTT device, kept in step with its state model, on a
    broker connection of its own (its last will says only this device is offline)."""

    def __init__(
        self,
        runtime: Runtime,
        broker: Broker,
        info: DeviceInfo,
        *,
        on_change: Callable[[], None] | None = None,
        retry_max: float = RECONNECT_MAX,
        words: Callable[[], Words] = lambda: ENGLISH_WORDS,
    ) -> None:
        self.runtime = runtime
        self._words = words  # the language the headline attribute is said in
        self.controller = runtime.name  # its ids: sec1000_… or sec1000_<name>_…
        self.broker = broker
        self.info = info
        self.connected = False
        self.connects = 0
        self.announcements = 0
        self.status = "not started"
        self.last_error: str | None = None
        self.failing_since: float | None = None  # first failed connect of the current outage
        self._on_change = on_change  # told when connected or status change
        self._retry_max = retry_max
        self._client: aiomqtt.Client | None = None
        self._published: dict[str, str] = {}
        self._announced: tuple[str, ...] | None = None  # the entity ids last announced
        self._dirty = asyncio.Event()
        self._tasks = TaskSet()  # announcing again: cancelled at stop
        self._commands = TaskSet()  # commands: let finish at stop
        self._stopping = False
        self._publish_lock = asyncio.Lock()  # one writer of retained messages at a time
        self.removal_failed = False
        self._runner: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- life cycle

    def start(self) -> None:
        """Connect (with retries) and follow the state model in the background."""
        self._unsubscribe = self.runtime.state.subscribe(self._on_state_event)
        self._runner = asyncio.create_task(self._run())

    async def stop(self, *, remove: bool = False) -> None:
        """Say offline (or remove the device from Home Assistant) and disconnect.

        Commands under way (a watchdog reset among them) are let finish, not cancelled.
        """
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        try:
            # Connected but not yet announced counts too: "online" may be out already.
            client = self._client
            try:
                async with asyncio.timeout(5), self._publish_lock:  # the last word is this one
                    if remove:
                        await self._remove(client if self.connected else None)
                    elif client is not None:
                        await client.publish(
                            availability_topic(self.controller), OFFLINE, qos=1, retain=True
                        )
            except (aiomqtt.MqttError, TimeoutError) as err:
                if remove:
                    self.removal_failed = True
                    _LOGGER.warning(
                        "MQTT: could not remove the device from %s: %s", self.broker, err
                    )
        finally:
            await self._tasks.cancel()
            await cancel_all({self._runner} if self._runner else set())
            await self._commands.finish(COMMAND_GRACE)
            self._set(False, "stopped")

    async def _remove(self, client: aiomqtt.Client | None) -> None:
        """An empty retained config removes the device; the retained states go too. Without a
        live connection, a connection of its own does it."""
        topics = retained_topics(self.runtime.options, self.controller)
        if client is None:
            async with client_for(self.broker) as own:
                await _clear(own, topics)
        else:
            await _clear(client, topics)
        self._published.clear()
        self._announced = None

    def _set(self, connected: bool, status: str) -> None:
        changed = (connected, status) != (self.connected, self.status)
        self.connected, self.status = connected, status
        if changed and self._on_change is not None:
            self._on_change()

    def diagnostics(self) -> dict[str, Any]:
        """For the panel and diagnostics (never the password)."""
        return {
            "broker": str(self.broker),
            "connected": self.connected,
            "status": self.status,
            "last_error": self.last_error,
            "connects": self.connects,
            "announcements": self.announcements,
        }

    # -- the connection

    def _client_for(self) -> aiomqtt.Client:
        will = aiomqtt.Will(availability_topic(self.controller), OFFLINE, qos=1, retain=True)
        return client_for(self.broker, will)

    async def _run(self) -> None:
        delays = backoff_delays(maximum=self._retry_max)
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    self.connects += 1
                    self.failing_since = None
                    self.last_error = None
                    delays = backoff_delays(maximum=self._retry_max)
                    await client.subscribe(HA_STATUS_TOPIC, qos=1)
                    await client.subscribe(command_topics(self.controller), qos=1)
                    await self._announce(client)
                    self._set(True, f"connected to {self.broker.host}:{self.broker.port}")
                    _LOGGER.info("MQTT: connected to %s", self.broker)
                    await self._serve(client)
            except aiomqtt.MqttError as err:
                self.last_error = str(err) or type(err).__name__
            except (OSError, UnicodeError, ValueError) as err:  # a host the lookup rejects
                self.last_error = f"cannot connect: {str(err)[:200] or type(err).__name__}"
            except Exception as err:  # never let the device die silently: log, reconnect
                _LOGGER.exception("MQTT: unexpected error")
                self.last_error = f"unexpected error: {err!r}"
            self._client = None
            if self.failing_since is None:
                self.failing_since = time.time()
            delay = next(delays)
            self._set(
                False, f"no broker at {self.broker.host}:{self.broker.port}: {self.last_error}"
            )
            _LOGGER.warning("MQTT: %s; retrying in %.0f s", self.status, delay)
            await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Take messages and publish states until either fails; then the connection is redone
        (a publish that timed out leaves states behind, so it ends the connection too)."""
        listener = asyncio.create_task(self._listen(client))
        publisher = asyncio.create_task(self._publisher(client))
        try:
            done, _ = await asyncio.wait({listener, publisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_all({listener, publisher})
        for task in done:
            task.result()  # raises what ended it
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._received(message)

    async def _announce(self, client: aiomqtt.Client) -> None:
        async with self._publish_lock:
            if not self._stopping:
                await self._announce_now(client)

    async def _announce_now(self, client: aiomqtt.Client) -> None:
        """The discovery message, then online, then every state (Home Assistant subscribes to
        the state topics as it creates the entities; retained states reach it then)."""
        message = self.info.message(self.runtime.options, self.controller)
        await client.publish(discovery_topic(self.controller), message, qos=1, retain=True)
        self._announced = entity_ids(self.runtime.options, self.controller)
        self.announcements += 1
        await client.publish(availability_topic(self.controller), ONLINE, qos=1, retain=True)
        self._published.clear()
        await self._publish_states(client)

    async def _publish_states(self, client: aiomqtt.Client) -> None:
        options = self.runtime.options
        if entity_ids(options, self.controller) != self._announced:  # a price sensor came/went
            await self._announce_now(client)
            return
        state = self.runtime.state
        payloads = state_payloads(state, options, self.controller, self._words())
        for topic, payload in payloads.items():
            if self._published.get(topic) != payload:
                await client.publish(topic, payload, qos=1, retain=True)
                self._published[topic] = payload

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._publish_lock:
                if self._stopping:
                    return
                await self._publish_states(client)

    def _on_state_event(self, event: StateEvent) -> None:
        if event.topic not in QUIET_TOPICS:
            self._dirty.set()

    # -- from Home Assistant

    def _received(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        raw = message.payload
        if isinstance(raw, bytes | bytearray):
            try:
                payload = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                payload = "\ufffd" * min(len(raw), SHOWN_PAYLOAD)  # shown as junk, never run
        else:
            payload = "" if raw is None else str(raw)
        if self._stopping:
            return
        if topic == HA_STATUS_TOPIC:
            if payload == ONLINE and self._client is not None:
                _LOGGER.info("MQTT: Home Assistant is back online; announcing again")
                self._tasks.spawn(self._announce_logged(self._client))
            return
        component = by_command_topic(self.runtime.options, self.controller).get(topic)
        if component is None:
            _LOGGER.debug("MQTT: ignoring %s", topic)
            return
        if message.retain:  # a retained command would run again at every connect
            _LOGGER.warning(
                "MQTT: ignoring a retained message on %s: commands must not be retained", topic
            )
            return
        self._commands.spawn(self._command_logged(component, payload))

    async def _announce_logged(self, client: aiomqtt.Client) -> None:
        try:
            await self._announce(client)
        except aiomqtt.MqttError as err:
            _LOGGER.warning("MQTT: announcing again failed: %s", err)

    async def _command_logged(self, component: Component, payload: str) -> None:
        try:
            await self._command(component, payload)
        except Exception:
            _LOGGER.exception("MQTT: the command of %s failed", component.entity_id)

    async def _command(self, component: Component, payload: str) -> None:
        ops = self.runtime.ops
        text = payload.strip()
        if component.command is not None:
            if payload != PRESS:  # exactly what Home Assistant sends: no spaces, no case
                self._invalid(
                    component.command,
                    f"{component.entity_id}: expected {PRESS}, got {shown(payload)}",
                )
                return
            await ops.run(component.command, {}, MQTT)
        elif component.key == SETPOINT.key:
            await ops.run(CommandName.SET_EXPORT_LIMIT, {"limit": text}, MQTT)
        elif component.key == EXPORT_SWITCH.key:
            if text == "on":
                await ops.export_enable(MQTT)
            elif text == "off":
                await ops.export_disable(MQTT)
            else:
                self._invalid(
                    CommandName.EXPORT_TOGGLE,
                    f"{component.entity_id}: expected on or off, got {shown(payload)}",
                )
        elif component.key == CONTROL_MODE.key:
            await ops.run(CommandName.SET_CONTROL_MODE, {"mode": text}, MQTT)
        elif component.key == POLICY_SWITCH.key:
            if text.upper() not in (ON, "OFF"):
                _LOGGER.warning(
                    "MQTT: %s: expected ON or OFF, got %s", component.entity_id, shown(payload)
                )
                return
            try:
                await self.runtime.update_options({"price_policy": text.upper() == ON})
            except OptionsError as err:
                _LOGGER.warning("MQTT: the price policy was not changed: %s", err)
                return
            _LOGGER.info("price policy turned %s by mqtt", text.lower())

    def _invalid(self, command: CommandName, message: str) -> None:
        """A payload that means nothing: feedback 128 in words, and nothing sent."""
        self.runtime.ops.refuse(command, message, MQTT)
