"""The switch between REST states and the MQTT devices' entities, on the bridge, against a FAKE
Home Assistant that records the calls it gets: what is checked is their order, which a real Core
only shows as a race (the real-Core switch is in test_mqtt_ha.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sec1000.ha import CommandFailedError, EntityMode
from sec1000.ha.bridge import Bridge
from sec1000.ha.discovery import device_of, entity_ids
from sec1000.ha.entities import EXPORT_LIMIT
from sec1000.plant import Plant
from sec1000.runtime import Runtime


class RecordingHomeAssistant:
    """FAKE Home Assistant: an entity registry, the posted states, and every call in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.registry: dict[str, dict[str, Any]] = {}
        self.states: set[str] = set()
        self.posting = asyncio.Event()  # cleared: a state post waits for it
        self.posting.set()
        self.registry_lists = 0
        self.on_registry_list: Callable[[int], None] = lambda _count: None

    async def send_command(self, message: dict[str, Any]) -> Any:
        kind = message["type"]
        self.calls.append(kind)
        if kind == "get_states":
            return [{"entity_id": entity_id, "state": "1"} for entity_id in self.states]
        if kind == "config/entity_registry/list":
            self.registry_lists += 1
            self.on_registry_list(self.registry_lists)
            return list(self.registry.values())
        if kind == "config/entity_registry/get":
            if message["entity_id"] not in self.registry:
                raise CommandFailedError("not_found", "Entity not found")
            return self.registry[message["entity_id"]]
        if kind.endswith("/list"):
            return []
        return None  # a helper created, a service called

    async def subscribe(self, message: dict[str, Any], callback: Callable[..., None]) -> Any:
        return None

    async def set_state(self, entity_id: str, state: str, attributes: dict[str, Any]) -> Any:
        await self.posting.wait()
        self.calls.append(f"post {entity_id}")
        self.states.add(entity_id)

    async def get_state(self, entity_id: str) -> Any:
        return None

    async def delete_state(self, entity_id: str) -> bool:
        self.calls.append(f"delete {entity_id}")
        found = entity_id in self.states
        self.states.discard(entity_id)
        return found


def connected_bridge(
    runtime: Runtime,
) -> tuple[Bridge[RecordingHomeAssistant], RecordingHomeAssistant]:
    home_assistant = RecordingHomeAssistant()
    bridge = Bridge(Plant.of_one(runtime), lambda _on, _off: home_assistant)
    bridge.connected = True  # as after a set-up; the fake needs none
    return bridge, home_assistant


async def test_leaving_rest_waits_for_a_post_under_way_so_no_state_is_left_behind(
    runtime: Runtime,
) -> None:
    bridge, home_assistant = connected_bridge(runtime)
    side = bridge.first
    limit = next(sensor.entity_id for sensor in side.sensors if sensor.key == EXPORT_LIMIT.key)
    home_assistant.states.add(limit)  # posted since the connect
    home_assistant.posting.clear()
    post = asyncio.create_task(side.publish([EXPORT_LIMIT.key]))  # REST: under way
    await asyncio.sleep(0.05)
    switch = asyncio.create_task(bridge.set_mode(EntityMode.MQTT))
    await asyncio.sleep(0.05)
    assert not any(call.startswith("delete") for call in home_assistant.calls)
    home_assistant.posting.set()
    await post
    await switch

    assert home_assistant.calls.index(f"post {limit}") < home_assistant.calls.index(
        f"delete {limit}"
    )
    assert limit not in home_assistant.states
    assert bridge.switch.rest_cleared.is_set()
    await side.publish([EXPORT_LIMIT.key])  # MQTT now: nothing is posted
    assert limit not in home_assistant.states


async def test_back_to_rest_waits_until_the_mqtt_entities_have_left_the_registry(
    runtime: Runtime,
) -> None:
    bridge, home_assistant = connected_bridge(runtime)
    assert bridge.switch.choose(EntityMode.MQTT)
    mqtt_ids = entity_ids(runtime.options, runtime.name)
    assert device_of(runtime.name).connected.entity_id in mqtt_ids
    home_assistant.registry = {
        entity_id: {"entity_id": entity_id, "platform": "mqtt"} for entity_id in mqtt_ids
    }

    def gone_at_third(count: int) -> None:
        if count == 3:  # Home Assistant has removed the device meanwhile
            home_assistant.registry.clear()

    home_assistant.on_registry_list = gone_at_third
    await bridge.set_mode(EntityMode.REST)

    calls = home_assistant.calls
    last_list = len(calls) - calls[::-1].index("config/entity_registry/list") - 1
    assert home_assistant.registry_lists == 3
    assert not any(
        call.startswith("post") or call.endswith("/create") for call in calls[:last_list]
    )
    assert any(call.endswith("/create") for call in calls[last_list:])  # the helpers come back
    assert {s.entity_id for s in bridge.first.sensors} <= home_assistant.states


async def test_choosing_the_mode_in_effect_keeps_rest_cleared(runtime: Runtime) -> None:
    bridge, home_assistant = connected_bridge(runtime)
    await bridge.set_mode(EntityMode.MQTT)
    assert bridge.switch.rest_cleared.is_set()
    calls = len(home_assistant.calls)

    await bridge.set_mode(EntityMode.MQTT)
    assert bridge.switch.rest_cleared.is_set()
    assert len(home_assistant.calls) == calls  # nothing asked, nothing removed again

    bridge.connected = False
    await bridge.set_mode(EntityMode.REST)  # not connected: the next connect moves it
    assert bridge.mode is EntityMode.REST
    assert not bridge.switch.rest_cleared.is_set()
    assert len(home_assistant.calls) == calls
