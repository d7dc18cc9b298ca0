"""The MQTT device as data: its discovery message, its topics and the payload of every state.

Home Assistant's device-based discovery takes one retained message at
`homeassistant/device/<id>/config` holding the device (`dev`), the origin (`o`) and every
component (`cmps`, each with its platform `p` and `unique_id`). An empty retained message at
the same topic removes the device and its entities.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sec1000.commands import COMMANDS, MAX_EXPORT_LIMIT_KW, CommandName
from sec1000.ha.entities import (
    ALL_SENSORS,
    BUTTON_ICONS,
    EXPORT_LIMIT,
    TELEMETRY_KEY_BY_ENTITY,
    UNAVAILABLE,
    Sensor,
    sensor_extra_attributes,
    sensor_value,
)
from sec1000.options import CONTROL_MODES, Options
from sec1000.state import StateModel

NODE = "sec1000"  # one controller per add-on: the device id, the topic root, the id prefix
DISCOVERY_TOPIC = f"homeassistant/device/{NODE}/config"
HA_STATUS_TOPIC = "homeassistant/status"  # Home Assistant's birth ("online") and will
AVAILABILITY_TOPIC = f"{NODE}/status"  # the add-on: "online", and "offline" as its last will
CONNECTED_TOPIC = f"{NODE}/connected"  # the controller: "ON" while it answers, else "OFF"
COMMAND_TOPICS = f"{NODE}/+/set"
ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
PRESS = "PRESS"
NONE = "None"  # Home Assistant's MQTT entities read this payload as "unknown"
ORIGIN = {"name": "SEC1000 add-on", "url": "https://github.com/sec1000-addon/sec1000-addon"}


def state_topic(object_id: str) -> str:
    """sec1000/<object id>/state, retained."""
    return f"{NODE}/{object_id}/state"


def attributes_topic(object_id: str) -> str:
    """sec1000/<object id>/attributes: a JSON object, retained."""
    return f"{NODE}/{object_id}/attributes"


def command_topic(object_id: str) -> str:
    """sec1000/<object id>/set: what Home Assistant publishes on a press or a change."""
    return f"{NODE}/{object_id}/set"


@dataclass(frozen=True, slots=True)
class Component:
    """One entity of the device: its platform, its id, and its discovery options."""

    platform: str
    object_id: str  # sec1000_v1: the entity id is <platform>.<object_id>
    name: str  # shown after the device's name: "SEC1000" + "Voltage L1"
    options: Mapping[str, Any] = field(default_factory=dict)
    follows_controller: bool = False  # unavailable while the controller is silent
    command: CommandName | None = None  # a button's command

    @property
    def entity_id(self) -> str:
        """sensor.sec1000_v1, button.sec1000_export_enable, ..."""
        return f"{self.platform}.{self.object_id}"

    @property
    def unique_id(self) -> str:
        """Stable across restarts and controller addresses: sec1000_sensor_v1."""
        return f"{NODE}_{self.platform}_{self.object_id.removeprefix(NODE + '_')}"

    def config(self) -> dict[str, Any]:
        """Its entry in `cmps`."""
        availability: list[dict[str, str]] = [{"topic": AVAILABILITY_TOPIC}]
        if self.follows_controller:
            availability.append(
                {"topic": CONNECTED_TOPIC, "payload_available": ON, "payload_not_available": OFF}
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
    options: dict[str, Any] = {"state_topic": state_topic(sensor.object_id)}
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
        options["json_attributes_topic"] = attributes_topic(sensor.object_id)
    if sensor.platform == "binary_sensor":
        options |= {"payload_on": "on", "payload_off": "off"}
    if sensor.entity_id.endswith("_feedback"):
        options["entity_category"] = "diagnostic"
    return Component(
        sensor.platform,
        sensor.object_id,
        sensor.name.removeprefix("SEC1000 "),
        options,
        follows_controller=sensor.entity_id in TELEMETRY_KEY_BY_ENTITY or sensor is EXPORT_LIMIT,
    )


def _button(command: CommandName, label: str) -> Component:
    object_id = f"{NODE}_{command.value}"
    options: dict[str, Any] = {
        "command_topic": command_topic(object_id),
        "payload_press": PRESS,
        "icon": BUTTON_ICONS.get(command, "mdi:gesture-tap-button"),
    }
    if command is CommandName.RESET_EXPORT_WATCHDOG:
        options["entity_category"] = "config"  # not on default dashboards: it risks full export
    return Component("button", object_id, label, options, command=command)


SENSORS = tuple(_sensor(sensor) for sensor in ALL_SENSORS)
BUTTONS = tuple(_button(spec.name, spec.label) for spec in COMMANDS if spec.button)


def _control(
    platform: str, name: str, label: str, options: dict[str, Any], *, follows: bool = True
) -> Component:
    """A control with its own state topic (what the controller holds) and command topic."""
    object_id = f"{NODE}_{name}"
    topics = {"state_topic": state_topic(object_id), "command_topic": command_topic(object_id)}
    return Component(platform, object_id, label, {**topics, **options}, follows_controller=follows)


SETPOINT = _control(
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
EXPORT_SWITCH = _control(
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
CONTROL_MODE = _control(
    "select", "control_mode", "Control Mode", {"options": list(CONTROL_MODES), "icon": "mdi:tune"}
)
# Only once a price sensor is set, as the REST helper; it follows the options, not the controller.
POLICY_SWITCH = _control(
    "switch", "price_policy", "Price Policy", {"icon": "mdi:cash-clock"}, follows=False
)
CONNECTED = Component(
    "binary_sensor",
    f"{NODE}_connected",
    "Connected",
    {
        "state_topic": CONNECTED_TOPIC,
        "payload_on": ON,
        "payload_off": OFF,
        "device_class": "connectivity",
        "entity_category": "diagnostic",
    },
)
CONTROLS = (*BUTTONS, SETPOINT, EXPORT_SWITCH, CONTROL_MODE)


def components(options: Options) -> tuple[Component, ...]:
    """Every entity of the device under these options."""
    policy = (POLICY_SWITCH,) if options.price_entity else ()
    return (*SENSORS, *CONTROLS, *policy, CONNECTED)


def entity_ids(options: Options) -> tuple[str, ...]:
    """The device's entity ids under these options (a change means announcing again)."""
    return tuple(component.entity_id for component in components(options))


def by_command_topic(options: Options) -> dict[str, Component]:
    """The components that take commands, by their command topic."""
    return {
        topic: component
        for component in components(options)
        if (topic := component.options.get("command_topic"))
    }


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the device page shows."""

    sw_version: str
    configuration_url: str | None = None  # the panel (homeassistant://hassio/ingress/<slug>)

    def payload(self, options: Options) -> dict[str, Any]:
        """The discovery message: device, origin, components."""
        device: dict[str, Any] = {
            "identifiers": [NODE],
            "name": "SEC1000",
            "manufacturer": "GoodWe",
            "model": "SEC1000",
            "sw_version": self.sw_version,
        }
        if self.configuration_url:
            device["configuration_url"] = self.configuration_url
        return {
            "dev": device,
            "o": {**ORIGIN, "sw_version": self.sw_version},
            "cmps": {component.unique_id: component.config() for component in components(options)},
        }

    def message(self, options: Options) -> str:
        """The discovery message as sent (stable key order, so a change is a real change)."""
        return json.dumps(self.payload(options), sort_keys=True, separators=(",", ":"))


def state_payloads(state: StateModel, options: Options) -> dict[str, str]:
    """Every retained state topic and its payload now (a silent controller's values are kept:
    its availability says they are stale)."""
    out: dict[str, str] = {CONNECTED_TOPIC: ON if state.telemetry_available else OFF}
    for sensor in ALL_SENSORS:
        value = sensor_value(state, sensor)
        if value != UNAVAILABLE:
            out[state_topic(sensor.object_id)] = value
        extra = sensor_extra_attributes(state, sensor)
        if extra:
            out[attributes_topic(sensor.object_id)] = json.dumps(extra, sort_keys=True, default=str)
    limit = state.export_limit_kw
    out[state_topic(SETPOINT.object_id)] = NONE if limit is None else str(round(limit, 2))
    exporting = state.exporting
    out[state_topic(EXPORT_SWITCH.object_id)] = (
        NONE if exporting is None else ("on" if exporting else "off")
    )
    mode = state.control_mode
    out[state_topic(CONTROL_MODE.object_id)] = NONE if mode is None else mode.option
    if options.price_entity:
        out[state_topic(POLICY_SWITCH.object_id)] = ON if options.price_policy else OFF
    return out


def retained_topics(options: Options) -> tuple[str, ...]:
    """Every retained topic the device may have left on the broker, discovery first."""
    topics = [DISCOVERY_TOPIC, AVAILABILITY_TOPIC, CONNECTED_TOPIC]
    for component in components(options):
        for key in ("state_topic", "json_attributes_topic"):
            if (topic := component.options.get(key)) and topic not in topics:
                topics.append(topic)
    return tuple(topics)
