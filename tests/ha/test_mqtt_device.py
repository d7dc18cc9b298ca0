"""The MQTT device against a real broker (mosquitto on loopback) and the simulator.

Home Assistant's side is played by a plain MQTT client here; tests/ha/test_mqtt_ha.py runs the
real Core.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from sec1000.ha.adapter import AdapterTimings, HomeAssistantAdapter
from sec1000.ha.discovery import (
    AVAILABILITY_TOPIC,
    CONNECTED_TOPIC,
    DISCOVERY_TOPIC,
    HA_STATUS_TOPIC,
    NODE,
    DeviceInfo,
    command_topic,
    components,
    state_topic,
)
from sec1000.ha.mqtt import Broker, MqttDevice, remove_leftover
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.protocol import ControlMode, PhaseMeasurement, write_export_limit_request
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually
from tests.helpers.watchdog import short_watchdog
from tests.mqtt_broker import Mosquitto

# The contract (design.md): MQTT replaces the helpers by these, every sensor id stays.
CONTROL_IDS = {
    "button.sec1000_export_enable",
    "button.sec1000_export_disable",
    "button.sec1000_get_export_limit",
    "button.sec1000_set_datetime",
    "button.sec1000_reset_export_watchdog",
    "number.sec1000_export_limit_setpoint",
    "switch.sec1000_export",
    "select.sec1000_control_mode",
    "binary_sensor.sec1000_connected",
}


class Watcher:
    """Home Assistant's place on the broker: every message of the device, kept by topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.last: dict[str, bytes] = {}
        self.counts: dict[str, int] = {}

    async def run(self) -> None:
        async for message in self.client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.last[topic] = payload
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def text(self, topic: str) -> str | None:
        payload = self.last.get(topic)
        return None if payload is None else payload.decode()

    async def wait(
        self, topic: str, expected: str | Callable[[str], bool], within: float = 10
    ) -> None:
        def ok() -> bool:
            value = self.text(topic)
            if value is None:
                return False
            return expected(value) if callable(expected) else value == expected

        await eventually(ok, within, f"{topic} = {expected}")

    async def publish(self, topic: str, payload: str | bytes) -> None:
        await self.client.publish(topic, payload, qos=1)


@asynccontextmanager
async def watching(host: str, port: int, name: str = "ha-test") -> AsyncIterator[Watcher]:
    """A client on the broker that keeps every message of the device and of discovery."""
    async with aiomqtt.Client(host, port, identifier=name) as client:
        await client.subscribe(f"{NODE}/#", qos=1)
        await client.subscribe("homeassistant/#", qos=1)
        watcher = Watcher(client)
        task = asyncio.create_task(watcher.run())
        try:
            yield watcher
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def device(
    runtime: Runtime, broker: Mosquitto | Broker, retry_max: float = 0.5
) -> AsyncIterator[MqttDevice]:
    """A running device on `broker`, stopped (offline) afterwards."""
    mqtt = MqttDevice(
        runtime, Broker(broker.host, broker.port), DeviceInfo("9.9.9"), retry_max=retry_max
    )
    mqtt.start()
    try:
        yield mqtt
    finally:
        await mqtt.stop()


@pytest.fixture
async def announced(
    runtime: Runtime, mosquitto: Mosquitto
) -> AsyncIterator[tuple[MqttDevice, Watcher]]:
    """A device connected and announced, with a watcher on the broker."""
    await runtime.ops.get_telemetry_data()
    await runtime.ops.get_export_limit()
    async with (
        watching(mosquitto.host, mosquitto.port) as watcher,
        device(runtime, mosquitto) as mqtt,
    ):
        await watcher.wait(AVAILABILITY_TOPIC, "online")
        await watcher.wait(DISCOVERY_TOPIC, lambda text: '"cmps"' in text)
        yield mqtt, watcher


# -- the discovery message, as data


def test_every_component_carries_both_id_keys_and_a_stable_unique_id() -> None:
    options = Options(price_entity="sensor.price")
    seen: set[str] = set()
    for component in components(options):
        config = component.config()
        platform, object_id = component.entity_id.split(".")
        assert config["default_entity_id"] == component.entity_id  # Core 2025.10 and later
        assert config["object_id"] == object_id  # Core before 2026.4
        assert config["p"] == platform
        assert config["unique_id"] not in seen
        seen.add(config["unique_id"])
    moved = Options(host="10.0.0.9", price_entity="sensor.price")
    assert [c.config()["unique_id"] for c in components(moved)] == [
        c.config()["unique_id"] for c in components(options)
    ]


def test_the_device_holds_every_contract_entity() -> None:
    from sec1000.ha.entities import ALL_SENSORS

    ids = {component.entity_id for component in components(Options())}
    assert ids >= CONTROL_IDS
    assert {sensor.entity_id for sensor in ALL_SENSORS} <= ids
    assert "switch.sec1000_price_policy" not in ids  # only with a price sensor, as the helper
    assert "switch.sec1000_price_policy" in {
        c.entity_id for c in components(Options(price_entity="sensor.price"))
    }


def test_device_payload_has_device_origin_and_components() -> None:
    payload = json.loads(
        DeviceInfo("1.2.3", "homeassistant://hassio/ingress/x_sec1000").message(Options())
    )
    assert payload["dev"]["manufacturer"] == "GoodWe"
    assert payload["dev"]["model"] == "SEC1000"
    assert payload["dev"]["sw_version"] == "1.2.3"
    assert payload["dev"]["configuration_url"] == "homeassistant://hassio/ingress/x_sec1000"
    assert payload["o"]["name"] and payload["o"]["sw_version"] == "1.2.3"
    cmps = payload["cmps"]
    v1 = next(c for c in cmps.values() if c["default_entity_id"] == "sensor.sec1000_v1")
    assert v1["unit_of_measurement"] == "V" and v1["suggested_display_precision"] == 1
    assert {
        "topic": CONNECTED_TOPIC,
        "payload_available": "ON",
        "payload_not_available": "OFF",
    } in v1["availability"]
    number = next(c for c in cmps.values() if c["p"] == "number")
    assert (number["min"], number["max"], number["step"], number["mode"]) == (0, 100.0, 0.01, "box")
    connected = next(c for c in cmps.values() if c["p"] == "binary_sensor")
    assert connected["device_class"] == "connectivity"
    assert connected["availability"] == [
        {
            "topic": AVAILABILITY_TOPIC,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]


def test_the_password_never_shows() -> None:
    broker = Broker("10.0.0.2", 1883, "addons", "s3cret-pass")
    assert "s3cret-pass" not in repr(broker) and "s3cret-pass" not in str(broker)
    options = Options(mqtt_password="s3cret-pass")
    assert "s3cret-pass" not in repr(options)
    assert "s3cret-pass" not in json.dumps(options.public_dict())


# -- on a real broker


async def test_announces_retained_config_online_and_states(
    announced: tuple[MqttDevice, Watcher], runtime: Runtime
) -> None:
    mqtt, watcher = announced
    telemetry = runtime.state.telemetry
    assert telemetry is not None
    await watcher.wait(state_topic("sec1000_v1"), str(telemetry["v1"]))
    await watcher.wait(CONNECTED_TOPIC, "ON")
    limit = runtime.state.export_limit_kw
    assert limit is not None
    await watcher.wait(state_topic("sec1000_export_limit_setpoint"), str(round(limit, 2)))
    await watcher.wait(state_topic("sec1000_export_limit"), str(round(limit, 2)))
    await watcher.wait(state_topic("sec1000_control_mode"), "value")
    # retained: a client connecting later gets them at once
    async with watching(mqtt.broker.host, mqtt.broker.port, "late") as late:
        await late.wait(DISCOVERY_TOPIC, lambda text: "sensor.sec1000_v1" in text)
        await late.wait(state_topic("sec1000_v1"), str(telemetry["v1"]))


async def test_button_press_sends_the_frames_and_the_feedback_comes_back(
    announced: tuple[MqttDevice, Watcher], runtime: Runtime, simulator: SimulatorServer
) -> None:
    _, watcher = announced
    simulator.exchanges.clear()
    before = len(runtime.state.commands)
    await watcher.publish(command_topic("sec1000_export_disable"), "PRESS")
    await eventually(lambda: len(runtime.state.commands) > before, 10, "the command's end")
    assert runtime.state.commands[-1].feedback == 1
    await watcher.wait(state_topic("sec1000_export_disable_feedback"), "1")
    assert simulator.requests()[0] == write_export_limit_request(
        10_000, 0, PhaseMeasurement.SUM_OF_PHASES
    )
    await watcher.wait(state_topic("sec1000_export"), "off")
    assert runtime.state.commands[-1].source == "mqtt"


async def test_number_switch_and_select_write_through_the_guard(
    announced: tuple[MqttDevice, Watcher], runtime: Runtime, simulator: SimulatorServer
) -> None:
    _, watcher = announced
    simulator.exchanges.clear()
    await watcher.publish(command_topic("sec1000_export_limit_setpoint"), "3.25")
    await watcher.wait(state_topic("sec1000_export_limit_setpoint"), "3.25")
    assert simulator.requests()[0] == write_export_limit_request(
        10_000, 3_250, PhaseMeasurement.SUM_OF_PHASES
    )
    assert runtime.guard.wanted is not None and runtime.guard.wanted.export_limit_w == 3_250
    simulator.exchanges.clear()
    await watcher.publish(command_topic("sec1000_export"), "on")
    await watcher.wait(state_topic("sec1000_export_limit_setpoint"), "8.0")
    assert simulator.requests()[0] == write_export_limit_request(
        10_000, 8_000, PhaseMeasurement.SUM_OF_PHASES
    )
    await watcher.publish(command_topic("sec1000_control_mode"), "rcr")
    await watcher.wait(state_topic("sec1000_control_mode"), "rcr", within=15)
    assert simulator.device.mode is ControlMode.RCR


@pytest.mark.parametrize(
    ("object_id", "payload", "feedback_topic", "words"),
    [
        ("sec1000_export_limit_setpoint", "abc", None, "export limit"),
        ("sec1000_export_limit_setpoint", "250", None, "between 0 and 100"),
        ("sec1000_control_mode", "turbo", None, "control mode"),
        ("sec1000_export_enable", "x" * 10_240, "sec1000_export_enable_feedback", "expected PRESS"),
        ("sec1000_export", b"\xff\xfe junk", None, "expected on or off"),
    ],
)
async def test_bad_payloads_give_feedback_128_and_send_nothing(
    announced: tuple[MqttDevice, Watcher],
    runtime: Runtime,
    simulator: SimulatorServer,
    object_id: str,
    payload: str | bytes,
    feedback_topic: str | None,
    words: str,
) -> None:
    _, watcher = announced
    await asyncio.sleep(0.1)
    simulator.exchanges.clear()
    before = len(runtime.state.commands)
    await watcher.publish(command_topic(object_id), payload)
    await eventually(lambda: len(runtime.state.commands) > before, 10, "the command's record")
    record = runtime.state.commands[-1]
    assert record.feedback == 128
    assert words in record.message
    assert len(record.message) < 200  # 10 kB of junk is not quoted back
    assert record.source == "mqtt"
    if feedback_topic is not None:
        await watcher.wait(state_topic(feedback_topic), "128")
    await asyncio.sleep(0.2)
    assert simulator.requests() == []


async def test_controller_silence_makes_the_values_unavailable(
    announced: tuple[MqttDevice, Watcher], runtime: Runtime, simulator: SimulatorServer
) -> None:
    _, watcher = announced
    await watcher.wait(CONNECTED_TOPIC, "ON")
    simulator.set_fault("reset")
    for _ in range(3):
        await runtime.ops.get_telemetry_data()
    await watcher.wait(CONNECTED_TOPIC, "OFF")
    simulator.clear_faults()
    await runtime.ops.get_telemetry_data()
    await watcher.wait(CONNECTED_TOPIC, "ON")


async def test_home_assistant_online_brings_a_new_announcement(
    announced: tuple[MqttDevice, Watcher],
) -> None:
    mqtt, watcher = announced
    before = mqtt.announcements
    await watcher.publish(HA_STATUS_TOPIC, "online")
    await eventually(lambda: mqtt.announcements > before, 10, "a new announcement")
    await watcher.publish(HA_STATUS_TOPIC, "offline")
    await asyncio.sleep(0.2)
    assert mqtt.announcements == before + 1


async def test_broker_restart_reconnects_and_announces_again(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    await runtime.ops.get_telemetry_data()
    async with device(runtime, mosquitto) as mqtt:
        await eventually(lambda: mqtt.connected, 10, "connected")
        await asyncio.to_thread(mosquitto.restart)  # retained messages are gone with it
        await eventually(lambda: mqtt.connects >= 2 and mqtt.connected, 20, "reconnected")
        async with watching(mosquitto.host, mosquitto.port) as watcher:
            await watcher.wait(DISCOVERY_TOPIC, lambda text: "sensor.sec1000_v1" in text)
            await watcher.wait(AVAILABILITY_TOPIC, "online")


async def test_stop_says_offline_and_the_last_will_covers_a_crash(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    async with watching(mosquitto.host, mosquitto.port) as watcher:
        async with device(runtime, mosquitto):
            await watcher.wait(AVAILABILITY_TOPIC, "online")
        await watcher.wait(AVAILABILITY_TOPIC, "offline")
        # A crash: the connection to the broker just drops (no DISCONNECT), here by cutting a
        # relay between the add-on and the broker; the broker then publishes the last will.
        async with (
            relay(mosquitto.host, mosquitto.port) as (port, cut),
            device(runtime, Broker(mosquitto.host, port), retry_max=60),  # no quick return
        ):
            await watcher.wait(AVAILABILITY_TOPIC, "online")
            await cut()
            await watcher.wait(AVAILABILITY_TOPIC, "offline")


@asynccontextmanager
async def relay(host: str, port: int) -> AsyncIterator[tuple[int, Callable[[], Any]]]:
    """A TCP relay to the broker on a port of its own, and a function that cuts it."""
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut() -> None:
        for writer in writers:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], cut
    finally:
        await cut()
        server.close()


async def test_removal_empties_the_retained_config_and_leftovers_are_found(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    async with watching(mosquitto.host, mosquitto.port) as watcher:
        async with device(runtime, mosquitto) as mqtt:
            await watcher.wait(DISCOVERY_TOPIC, lambda text: '"cmps"' in text)
        broker = mqtt.broker
        # the device stopped without removal: its config stays retained, as after a restart
        assert await remove_leftover(broker, runtime.options) is True
        await watcher.wait(DISCOVERY_TOPIC, "")
        assert await remove_leftover(broker, runtime.options) is False


async def test_the_price_policy_switch_follows_the_option(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    await runtime.update_options({"price_entity": "sensor.price"})
    async with watching(mosquitto.host, mosquitto.port) as watcher, device(runtime, mosquitto):
        await watcher.wait(state_topic("sec1000_price_policy"), "OFF")
        await watcher.publish(command_topic("sec1000_price_policy"), "ON")
        await eventually(lambda: runtime.options.price_policy, 10, "price policy on")
        await watcher.wait(state_topic("sec1000_price_policy"), "ON")
        await runtime.update_options({"price_entity": "", "price_policy": False})
        await watcher.wait(DISCOVERY_TOPIC, lambda text: "sec1000_price_policy" not in text)


async def test_a_retained_command_is_not_run(
    runtime: Runtime, simulator: SimulatorServer, mosquitto: Mosquitto
) -> None:
    """A retained press would run again at every connect: it is ignored, and says so."""
    async with watching(mosquitto.host, mosquitto.port) as watcher:
        topic = command_topic("sec1000_export_disable")
        await watcher.client.publish(topic, "PRESS", qos=1, retain=True)
        simulator.exchanges.clear()
        async with device(runtime, mosquitto) as mqtt:
            await eventually(lambda: mqtt.connected, 10, "connected")
            await watcher.publish(HA_STATUS_TOPIC, "online")  # a round trip through the device
            await eventually(lambda: mqtt.announcements > 1, 10, "the device took messages")
            assert list(runtime.state.commands) == []
            assert simulator.requests() == []
        await watcher.client.publish(topic, b"", qos=1, retain=True)


@pytest.mark.parametrize("watchdog_timings", [short_watchdog(off_window=0.5)])
async def test_stopping_lets_a_reset_under_way_finish(
    announced: tuple[MqttDevice, Watcher], runtime: Runtime, simulator: SimulatorServer
) -> None:
    """A switch of broker or entity mode stops the device; the limiter is never left off."""
    mqtt, watcher = announced
    await watcher.publish(command_topic("sec1000_reset_export_watchdog"), "PRESS")
    await eventually(
        lambda: simulator.device.mode is ControlMode.DEACTIVATED, 10, "the limiter off"
    )
    await mqtt.stop()
    assert simulator.device.mode is ControlMode.VALUE
    assert runtime.state.commands[-1].command == "reset_export_watchdog"
    assert runtime.state.commands[-1].feedback == 1
    assert not runtime.state.restore_pending


async def test_removal_without_a_live_connection_opens_one_of_its_own(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    """A switch to REST while the device is between two connections still removes it."""
    async with (
        watching(mosquitto.host, mosquitto.port) as watcher,
        relay(mosquitto.host, mosquitto.port) as (port, cut),
    ):
        mqtt = MqttDevice(runtime, Broker(mosquitto.host, port), DeviceInfo("9.9.9"))
        mqtt.start()
        await watcher.wait(DISCOVERY_TOPIC, lambda text: '"cmps"' in text)
        await eventually(lambda: mqtt.connected, 10, "announced")  # not cut mid-announce
        await cut()  # the device waits 1 s before it connects again
        await eventually(lambda: not mqtt.connected, 10, "disconnected")
        await mqtt.stop(remove=True)
        await watcher.wait(DISCOVERY_TOPIC, "")
        assert not mqtt.removal_failed


async def test_a_removal_the_broker_cannot_take_is_remembered(
    runtime: Runtime, mosquitto: Mosquitto
) -> None:
    async with device(runtime, mosquitto) as mqtt:
        await eventually(lambda: mqtt.connected, 10, "connected")
        await asyncio.to_thread(mosquitto.stop)
        await eventually(lambda: not mqtt.connected, 10, "disconnected")
        await mqtt.stop(remove=True)
        assert mqtt.removal_failed  # the adapter removes it from that broker later


async def test_the_adapter_moves_the_device_to_another_broker(
    runtime: Runtime, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Without Home Assistant's API (no endpoint): the broker from the options; a new port
    removes the device from the old broker and announces it on the new one."""
    (tmp_path / "other").mkdir()
    other = Mosquitto(tmp_path / "other")
    other.start()
    try:
        await runtime.update_options(
            {"entities": "mqtt", "mqtt_host": mosquitto.host, "mqtt_port": mosquitto.port}
        )
        async with (
            aiohttp.ClientSession() as session,
            watching(mosquitto.host, mosquitto.port) as first,
            watching(other.host, other.port) as second,
        ):
            adapter = HomeAssistantAdapter(Plant.of_one(runtime), None, session)
            adapter.start()
            try:
                await first.wait(DISCOVERY_TOPIC, lambda text: '"cmps"' in text)
                await runtime.update_options({"mqtt_port": other.port})
                await second.wait(DISCOVERY_TOPIC, lambda text: '"cmps"' in text)
                await first.wait(DISCOVERY_TOPIC, "")
                assert adapter.mqtt is not None and adapter.mqtt.broker.port == other.port
            finally:
                await adapter.stop()
    finally:
        other.stop()


async def test_choosing_that_fails_starts_with_rest_entities(
    runtime: Runtime, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    await runtime.update_options(
        {"entities": "mqtt", "mqtt_host": mosquitto.host, "mqtt_port": mosquitto.port}
    )

    async def broken(options: Options) -> Broker | None:
        raise RuntimeError("the Supervisor answered nonsense")

    async with aiohttp.ClientSession() as session:
        adapter = HomeAssistantAdapter(
            Plant.of_one(runtime),
            None,
            session,
            timings=AdapterTimings(broker_lookup_interval=3600),
        )
        adapter._find_broker = broken  # type: ignore[method-assign]
        adapter.start()
        try:
            await eventually(lambda: "choosing the entity mode failed" in caplog.text, 10, "log")
            assert adapter.entity_mode == "rest" and adapter.mqtt is None
        finally:
            await adapter.stop()
