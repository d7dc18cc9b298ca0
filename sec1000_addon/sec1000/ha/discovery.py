"""The MQTT device as data: its discovery message, its topics and the payload of every state.

Home Assistant's device-based discovery takes one retained message at
`homeassistant/device/<id>/config` holding the device (`dev`), the origin (`o`) and every
component (`cmps`, each with its platform `p` and `unique_id`). An empty retained message at
the same topic removes the device and its entities.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sec1000.commands import COMMANDS, MAX_EXPORT_LIMIT_KW, CommandName
from sec1000.ha.entities import (
    BUTTON_ICONS,
    UNAVAILABLE,
    Sensor,
    controller_id,
    follows_controller,
    id_prefix,
    name_prefix,
    sensor_extra_attributes,
    sensor_value,
    sensors_of,
)
from sec1000.headline import ENGLISH_WORDS, Words
from sec1000.options import CONTROL_MODES, FIRST_CONTROLLER, Options
from sec1000.state import StateModel

# The first controller's device id, topic root and id prefix; controller <name> has
# sec1000_<name> for all three (`id_prefix`).
NODE = FIRST_CONTROLLER
HA_STATUS_TOPIC = "homeassistant/status"  # Home Assistant's birth ("online") and will
ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
PRESS = "PRESS"
NONE = "None"  # Home Assistant's MQTT entities read this payload as "unknown"
ORIGIN = {"name": "SEC1000 add-on", "url": "https://github.com/sec1000-addon/sec1000-addon"}


def discovery_topic(controller: str = FIRST_CONTROLLER) -> str:
    """homeassistant/device/sec1000/config (…/sec1000_barn/config for controller barn)."""
    return f"homeassistant/device/{id_prefix(controller)}/config"


def availability_topic(controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/status: the add-on's "online", and "offline" as its last will."""
    return f"{id_prefix(controller)}/status"


def connected_topic(controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/connected: the controller's "ON" while it answers, else "OFF"."""
    return f"{id_prefix(controller)}/connected"


def command_topics(controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/+/set: every command topic of one controller's device."""
    return f"{id_prefix(controller)}/+/set"


DISCOVERY_TOPIC = discovery_topic()
AVAILABILITY_TOPIC = availability_topic()
CONNECTED_TOPIC = connected_topic()
COMMAND_TOPICS = command_topics()


def state_topic(object_id: str, controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/<object id>/state, retained."""
    return f"{id_prefix(controller)}/{object_id}/state"


def attributes_topic(object_id: str, controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/<object id>/attributes: a JSON object, retained."""
    return f"{id_prefix(controller)}/{object_id}/attributes"


def command_topic(object_id: str, controller: str = FIRST_CONTROLLER) -> str:
    """sec1000/<object id>/set: what Home Assistant publishes on a press or a change."""
    return f"{id_prefix(controller)}/{object_id}/set"


@dataclass(frozen=True, slots=True)
class Component:
    """One entity of a controller's device: its platform, its id, and its discovery options."""

    platform: str
    key: str  # v1, export_enable: the entity id is <platform>.<controller's prefix>_<key>
    name: str  # shown after the device's name: "SEC1000" + "Voltage L1"
    options: Mapping[str, Any] = field(default_factory=dict)
    follows_controller: bool = False  # unavailable while the controller is silent
    command: CommandName | None = None  # a button's command
    controller: str = FIRST_CONTROLLER

    @property
    def object_id(self) -> str:
        """sec1000_v1, sec1000_barn_v1, …"""
        return controller_id(self.controller, self.key)

    @property
    def entity_id(self) -> str:
        """sensor.sec1000_v1, button.sec1000_export_enable, ..."""
        return f"{self.platform}.{self.object_id}"

    @property
    def unique_id(self) -> str:
        """Stable across restarts and controller addresses: sec1000_sensor_v1 (controller barn:
        sec1000_barn_sensor_v1)."""
        return f"{id_prefix(self.controller)}_{self.platform}_{self.key}"

    def config(self) -> dict[str, Any]:
        """Its entry in `cmps`."""
        # The payloads are Core's defaults, said outright: Core 2026.2 set up an entity once,
        # on a loaded machine, from a discovery config its schema had not filled in (KeyError
        # 'payload_available').
        availability: list[dict[str, str]] = [
            {
                "topic": availability_topic(self.controller),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            }
        ]
        if self.follows_controller:
            availability.append(
                {
                    "topic": connected_topic(self.controller),
                    "payload_available": ON,
                    "payload_not_available": OFF,
                }
            )
        return {
            "p": self.platform,
            "unique_id": self.unique_id,
            # object_id names the entity on Core before 2026.4, default_entity_id from 2025.10.
            "object_id": self.object_id,
            "default_entity_id": self.entity_id,
            "name": self.name,
            "availability": availability,
            "availability_mode": "all",
            **self.options,
        }


def _sensor(sensor: Sensor) -> Component:
    controller = sensor.controller
    options: dict[str, Any] = {"state_topic": state_topic(sensor.object_id, controller)}
    for key, value in (
        ("unit_of_measurement", sensor.unit),
        ("device_class", sensor.device_class),
        ("state_class", sensor.state_class),
        ("icon", sensor.icon),
        ("suggested_display_precision", sensor.precision),
    ):
        if value is not None:
            options[key] = value
    if sensor.extra_attributes:
        options["json_attributes_topic"] = attributes_topic(sensor.object_id, controller)
    if sensor.platform == "binary_sensor":
        options |= {"payload_on": "on", "payload_off": "off"}
    if sensor.key.endswith("_feedback"):
        options["entity_category"] = "diagnostic"
    return Component(
        sensor.platform,
        sensor.key,
        sensor.label,
        options,
        follows_controller=follows_controller(sensor),
        controller=controller,
    )


def _button(command: CommandName, label: str, controller: str) -> Component:
    object_id = controller_id(controller, command.value)
    options: dict[str, Any] = {
        "command_topic": command_topic(object_id, controller),
        "payload_press": PRESS,
        "icon": BUTTON_ICONS.get(command, "mdi:gesture-tap-button"),
    }
    if command is CommandName.RESET_EXPORT_WATCHDOG:
        options["entity_category"] = "config"  # not on default dashboards: it risks full export
    return Component(
        "button", command.value, label, options, command=command, controller=controller
    )


@dataclass(frozen=True, slots=True)
class Control:
    """A control with its own state topic (what the controller holds) and command topic."""

    platform: str
    key: str
    label: str
    options: Mapping[str, Any]
    follows: bool = True  # unavailable while the controller is silent

    def of(self, controller: str) -> Component:
        """This control of one controller's device."""
        object_id = controller_id(controller, self.key)
        topics = {
            "state_topic": state_topic(object_id, controller),
            "command_topic": command_topic(object_id, controller),
        }
        return Component(
            self.platform,
            self.key,
            self.label,
            {**topics, **self.options},
            follows_controller=self.follows,
            controller=controller,
        )


SETPOINT_CONTROL = Control(
    "number",
    "export_limit_setpoint",
    "Export Limit Setpoint",
    {
        "min": 0,
        "max": MAX_EXPORT_LIMIT_KW,
        "step": 0.01,
        "mode": "box",
        "unit_of_measurement": "kW",
        "device_class": "power",
        "icon": "mdi:tune-vertical",
    },
)
EXPORT_CONTROL = Control(
    "switch",
    "export",
    "Export",
    {
        "payload_on": "on",
        "payload_off": "off",
        "state_on": "on",
        "state_off": "off",
        "icon": "mdi:transmission-tower-export",
    },
)
MODE_CONTROL = Control(
    "select", "control_mode", "Control Mode", {"options": list(CONTROL_MODES), "icon": "mdi:tune"}
)
# Only once a price sensor is set, as the REST helper; it follows the options, not the controller.
POLICY_CONTROL = Control(
    "switch", "price_policy", "Price Policy", {"icon": "mdi:cash-clock"}, follows=False
)


def _connected(controller: str) -> Component:
    return Component(
        "binary_sensor",
        "connected",
        "Connected",
        {
            "state_topic": connected_topic(controller),
            "payload_on": ON,
            "payload_off": OFF,
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        },
        controller=controller,
    )


@dataclass(frozen=True, slots=True)
class Device:
    """Every component one controller's device can have."""

    sensors: tuple[Component, ...]
    buttons: tuple[Component, ...]
    setpoint: Component
    export_switch: Component
    control_mode: Component
    policy_switch: Component
    connected: Component

    @property
    def controls(self) -> tuple[Component, ...]:
        """The buttons, the number, the switch and the select."""
        return (*self.buttons, self.setpoint, self.export_switch, self.control_mode)


@functools.cache
def device_of(controller: str = FIRST_CONTROLLER) -> Device:
    """The components of one controller's device."""
    return Device(
        tuple(_sensor(sensor) for sensor in sensors_of(controller)),
        tuple(_button(spec.name, spec.label, controller) for spec in COMMANDS if spec.button),
        SETPOINT_CONTROL.of(controller),
        EXPORT_CONTROL.of(controller),
        MODE_CONTROL.of(controller),
        POLICY_CONTROL.of(controller),
        _connected(controller),
    )


FIRST = device_of()
SENSORS = FIRST.sensors
BUTTONS = FIRST.buttons
SETPOINT = FIRST.setpoint
EXPORT_SWITCH = FIRST.export_switch
CONTROL_MODE = FIRST.control_mode
POLICY_SWITCH = FIRST.policy_switch
CONNECTED = FIRST.connected
CONTROLS = FIRST.controls


def components(options: Options, controller: str = FIRST_CONTROLLER) -> tuple[Component, ...]:
    """Every entity of one controller's device under these options."""
    device = device_of(controller)
    policy = (device.policy_switch,) if options.price_entity else ()
    return (*device.sensors, *device.controls, *policy, device.connected)


def entity_ids(options: Options, controller: str = FIRST_CONTROLLER) -> tuple[str, ...]:
    """The device's entity ids under these options (a change means announcing again)."""
    return tuple(component.entity_id for component in components(options, controller))


def by_command_topic(options: Options, controller: str = FIRST_CONTROLLER) -> dict[str, Component]:
    """The components that take commands, by their command topic."""
    return {
        topic: component
        for component in components(options, controller)
        if (topic := component.options.get("command_topic"))
    }


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the device page shows."""

    sw_version: str
    configuration_url: str | None = None  # the panel (homeassistant://hassio/ingress/<slug>)

    def payload(self, options: Options, controller: str = FIRST_CONTROLLER) -> dict[str, Any]:
        """The discovery message: device, origin, components."""
        device: dict[str, Any] = {
            "identifiers": [id_prefix(controller)],
            "name": name_prefix(controller),
            "manufacturer": "GoodWe",
            "model": "SEC1000",
            "sw_version": self.sw_version,
        }
        if self.configuration_url:
            device["configuration_url"] = self.configuration_url
        return {
            "dev": device,
            "o": {**ORIGIN, "sw_version": self.sw_version},
            "cmps": {c.unique_id: c.config() for c in components(options, controller)},
        }

    def message(self, options: Options, controller: str = FIRST_CONTROLLER) -> str:
        """The discovery message as sent (stable key order, so a change is a real change)."""
        payload = self.payload(options, controller)
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def state_payloads(
    state: StateModel,
    options: Options,
    controller: str = FIRST_CONTROLLER,
    words: Words = ENGLISH_WORDS,
) -> dict[str, str]:
    """Every retained state topic of one controller's device and its payload now (a silent
    controller's values are kept: its availability says they are stale)."""
    out: dict[str, str] = {connected_topic(controller): ON if state.telemetry_available else OFF}
    for sensor in sensors_of(controller):
        value = sensor_value(state, sensor)
        if value != UNAVAILABLE:
            out[state_topic(sensor.object_id, controller)] = value
        extra = sensor_extra_attributes(state, sensor, options, words)
        if extra:
            topic = attributes_topic(sensor.object_id, controller)
            out[topic] = json.dumps(extra, sort_keys=True, default=str)
    device = device_of(controller)
    limit = state.export_limit_kw
    out[device.setpoint.options["state_topic"]] = NONE if limit is None else str(round(limit, 2))
    exporting = state.exporting
    out[device.export_switch.options["state_topic"]] = (
        NONE if exporting is None else ("on" if exporting else "off")
    )
    mode = state.control_mode
    out[device.control_mode.options["state_topic"]] = NONE if mode is None else mode.option
    if options.price_entity:
        out[device.policy_switch.options["state_topic"]] = ON if options.price_policy else OFF
    return out


def retained_topics(options: Options, controller: str = FIRST_CONTROLLER) -> tuple[str, ...]:
    """Every retained topic one controller's device may have left on the broker, discovery
    first."""
    topics = [
        discovery_topic(controller),
        availability_topic(controller),
        connected_topic(controller),
    ]
    for component in components(options, controller):
        for key in ("state_topic", "json_attributes_topic"):
            if (topic := component.options.get(key)) and topic not in topics:
                topics.append(topic)
    return tuple(topics)
