"""The Home Assistant contract as data: sensors, helpers, events (ids kept from goodwe_sec1000)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace
from typing import Any

from sec1000.commands import COMMANDS, FEEDBACK_COMMANDS, MAX_EXPORT_LIMIT_KW, CommandName
from sec1000.headline import ENGLISH_WORDS, Words, headline
from sec1000.options import FIRST_CONTROLLER, Options
from sec1000.protocol import TELEMETRY_FIELDS
from sec1000.state import StateModel

COMMAND_EVENT = "sec1000_command"
RESULT_EVENT = "sec1000_command_result"
UNAVAILABLE = "unavailable"
BRAND = "SEC1000"  # the first word of every name


def id_prefix(controller: str = FIRST_CONTROLLER) -> str:
    """What every id of a controller starts with: `sec1000` for the first (today's ids),
    `sec1000_<name>` for another (entities, helpers, unique ids, topics, notifications)."""
    return (
        FIRST_CONTROLLER if controller == FIRST_CONTROLLER else f"{FIRST_CONTROLLER}_{controller}"
    )


def name_prefix(controller: str = FIRST_CONTROLLER) -> str:
    """What every name of a controller starts with: "SEC1000", or "SEC1000 barn"."""
    return BRAND if controller == FIRST_CONTROLLER else f"{BRAND} {controller}"


def controller_id(controller: str, key: str) -> str:
    """sec1000_v1 of the first controller, sec1000_barn_v1 of controller barn."""
    return f"{id_prefix(controller)}_{key}"


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor of one controller (the first unless `controller` says otherwise)."""

    platform: str  # sensor, or binary_sensor
    key: str  # v1, export_limit, …: the id after the controller's prefix
    label: str  # Voltage L1: the name after the controller's
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    precision: int | None = None  # decimals shown (MQTT's suggested_display_precision)
    extra_attributes: bool = False  # carries attributes of its own (the guard's, …)
    controller: str = FIRST_CONTROLLER

    @property
    def object_id(self) -> str:
        """sec1000_v1 of sensor.sec1000_v1 (sec1000_barn_v1 for controller barn)."""
        return controller_id(self.controller, self.key)

    @property
    def entity_id(self) -> str:
        """sensor.sec1000_v1, sensor.sec1000_barn_v1, …"""
        return f"{self.platform}.{self.object_id}"

    @property
    def name(self) -> str:
        """SEC1000 Voltage L1, SEC1000 barn Voltage L1, …"""
        return f"{name_prefix(self.controller)} {self.label}"

    def of(self, controller: str) -> Sensor:
        """The same sensor of another controller."""
        return replace(self, controller=controller)

    def attributes(self) -> dict[str, Any]:
        """The attributes posted with every state."""
        attributes: dict[str, Any] = {"friendly_name": self.name}
        for key, value in (
            ("unit_of_measurement", self.unit),
            ("device_class", self.device_class),
            ("state_class", self.state_class),
            ("icon", self.icon),
        ):
            if value is not None:
                attributes[key] = value
        return attributes


# Home Assistant's words for the telemetry table: device class by unit, icon by field.
DEVICE_CLASSES = {"V": "voltage", "A": "current", "kW": "power"}
TELEMETRY_ICONS = {
    **{f"v{n}": "mdi:flash" for n in (1, 2, 3)},
    **{f"i{n}": "mdi:current-ac" for n in (1, 2, 3)},
    **{f"p{n}": "mdi:flash-triangle" for n in (1, 2, 3)},
    "meters_power": "mdi:transmission-tower",
    "inverters_power": "mdi:solar-power",
    "load_power": "mdi:home-lightning-bolt",
}
TELEMETRY_SENSORS: dict[str, Sensor] = {
    field.key: Sensor(
        "sensor",
        field.key,
        field.name,
        field.unit,
        DEVICE_CLASSES.get(field.unit),
        "measurement",
        TELEMETRY_ICONS.get(field.key, "mdi:gauge"),
        field.decimals,
    )
    for field in TELEMETRY_FIELDS
}
EXPORT_LIMIT = Sensor(
    "sensor",
    "export_limit",
    "Export Limit",
    "kW",
    "power",
    "measurement",
    "mdi:transmission-tower-export",
    2,
)
# Its `headline` attribute: what limits the export, who set it and until when (in words).
EXPORT_STATE = Sensor(
    "sensor", "export_state", "Export State", icon="mdi:export", extra_attributes=True
)
MODULE_STARTED = Sensor("sensor", "modul_started", "Modul started", icon="mdi:power")
ENERGY_SENSORS: dict[str, Sensor] = {
    key: Sensor(
        "sensor",
        f"{key}_energy",
        f"{name} Energy",
        "kWh",
        "energy",
        "total_increasing",
        icon,
        3,
    )
    for key, name, icon in (
        ("grid_export", "Grid Export", "mdi:transmission-tower-export"),
        ("grid_import", "Grid Import", "mdi:transmission-tower-import"),
        ("pv", "PV", "mdi:solar-power"),
        ("load", "Load", "mdi:home-lightning-bolt"),
    )
}
TIME_AT_LIMIT = Sensor(
    "sensor",
    "time_at_limit_today",
    "Time at Limit Today",
    "min",
    "duration",
    "total_increasing",
    "mdi:timer-sand",
    1,
)
EXPORT_POLICY = Sensor(
    "sensor",
    "export_policy",
    "Export Policy",
    icon="mdi:cash-clock",
    extra_attributes=True,
)
EXPORT_GUARD = Sensor(
    "sensor",
    "export_guard",
    "Export Guard",
    icon="mdi:shield-check-outline",
    extra_attributes=True,
)
# The meter check: export above the limit + margin for longer than overshoot_seconds.
OVER_LIMIT = Sensor(
    "binary_sensor",
    "export_over_limit",
    "Export Over Limit",
    device_class="problem",
    icon="mdi:transmission-tower-export",
    extra_attributes=True,
)
OVER_LIMIT_ENERGY = Sensor(
    "sensor",
    "export_over_limit_energy",
    "Export Over Limit Energy",
    "kWh",
    "energy",
    "total_increasing",
    "mdi:alert-octagon-outline",
    3,
)
OVER_LIMIT_TODAY = Sensor(
    "sensor",
    "export_over_limit_today",
    "Export Over Limit Today",
    "min",
    "duration",
    "total_increasing",
    "mdi:timer-alert-outline",
    1,
)
METER_CHECK = (OVER_LIMIT, OVER_LIMIT_ENERGY, OVER_LIMIT_TODAY)
# The feedback sensors of the old integration: every command's feedback but the mode's.
FEEDBACK_OPERATIONS = tuple(
    name for name in FEEDBACK_COMMANDS if name is not CommandName.SET_CONTROL_MODE
)
# The old integration's names, where they are not the operation's words.
FEEDBACK_NAMES = {CommandName.SET_DATETIME: "Set Date and Time"}
FEEDBACK_SENSORS: dict[CommandName, Sensor] = {
    op: Sensor(
        "sensor",
        f"{op.value}_feedback",
        f"{FEEDBACK_NAMES.get(op, op.value.replace('_', ' ').title())} - Feedback",
        icon="mdi:message-alert-outline",
    )
    for op in FEEDBACK_OPERATIONS
}
ALL_SENSORS: tuple[Sensor, ...] = (
    *TELEMETRY_SENSORS.values(),
    EXPORT_LIMIT,
    EXPORT_STATE,
    MODULE_STARTED,
    EXPORT_GUARD,
    EXPORT_POLICY,
    *ENERGY_SENSORS.values(),
    TIME_AT_LIMIT,
    *METER_CHECK,
    *FEEDBACK_SENSORS.values(),
)

TELEMETRY_KEY_BY_SENSOR = {sensor.key: key for key, sensor in TELEMETRY_SENSORS.items()}
ENERGY_KEY_BY_SENSOR = {sensor.key: key for key, sensor in ENERGY_SENSORS.items()}
FEEDBACK_OPERATION_BY_SENSOR = {sensor.key: op for op, sensor in FEEDBACK_SENSORS.items()}


@functools.cache
def sensors_of(controller: str) -> tuple[Sensor, ...]:
    """Every sensor of one controller (the first one's are ALL_SENSORS)."""
    return tuple(sensor.of(controller) for sensor in ALL_SENSORS)


def follows_controller(sensor: Sensor) -> bool:
    """A reading of the controller: unavailable (in MQTT) while it is silent."""
    return sensor.key in TELEMETRY_KEY_BY_SENSOR or sensor.key == EXPORT_LIMIT.key


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper the add-on creates when missing and watches (of the first controller unless
    `controller` says otherwise)."""

    domain: str
    key: str  # export_enable: the id after the controller's prefix
    label: str  # Export Enable: the name after the controller's
    command: str | None  # what a press or change runs; None when the value carries the meaning
    create: dict[str, Any]
    controller: str = FIRST_CONTROLLER

    @property
    def object_id(self) -> str:
        """sec1000_export_enable, sec1000_barn_export_enable, …"""
        return controller_id(self.controller, self.key)

    @property
    def entity_id(self) -> str:
        """input_button.sec1000_export_enable, ..."""
        return f"{self.domain}.{self.object_id}"

    @property
    def name(self) -> str:
        """Home Assistant derives the helper's id from it: "SEC1000 barn Export Enable" →
        sec1000_barn_export_enable."""
        return f"{name_prefix(self.controller)} {self.label}"

    def of(self, controller: str) -> Helper:
        """The same helper of another controller."""
        return replace(self, controller=controller)


BUTTON_ICONS = {
    CommandName.EXPORT_ENABLE: "mdi:transmission-tower-export",
    CommandName.EXPORT_DISABLE: "mdi:transmission-tower-off",
    CommandName.GET_EXPORT_LIMIT: "mdi:download",
    CommandName.SET_DATETIME: "mdi:clock-check-outline",
    CommandName.RESET_EXPORT_WATCHDOG: "mdi:restart-alert",
}


def _button(command: CommandName) -> Helper:
    # Home Assistant derives the helper's id from its name: "SEC1000 Set Datetime" → sec1000_set_datetime.
    return Helper(
        "input_button",
        command.value,
        command.value.replace("_", " ").title(),
        command.value,
        {"icon": BUTTON_ICONS.get(command, "mdi:gesture-tap-button")},
    )


HELPERS: tuple[Helper, ...] = (
    *(_button(spec.name) for spec in COMMANDS if spec.button),
    Helper(
        "input_number",
        "export_limit_setpoint",
        "Export Limit Setpoint",
        CommandName.SET_EXPORT_LIMIT.value,
        {
            "min": 0,
            "max": MAX_EXPORT_LIMIT_KW,
            "step": 0.01,
            "mode": "box",
            "unit_of_measurement": "kW",
            "icon": "mdi:tune-vertical",
        },
    ),
    Helper(
        "input_boolean",
        "export",
        "Export",
        None,
        {"icon": "mdi:transmission-tower-export"},
    ),
)
# Created only when a price sensor is set: the price policy on or off; follows the option.
POLICY_SWITCH = Helper(
    "input_boolean",
    "price_policy",
    "Price Policy",
    None,
    {"icon": "mdi:cash-clock"},
)
ALL_HELPERS = (*HELPERS, POLICY_SWITCH)
HELPERS_BY_ENTITY = {helper.entity_id: helper for helper in ALL_HELPERS}
HELPER_DOMAINS = tuple(sorted({helper.domain for helper in ALL_HELPERS}))


@functools.cache
def helpers_of(controller: str) -> tuple[Helper, ...]:
    """Every helper one controller may have (the policy switch last)."""
    return tuple(helper.of(controller) for helper in ALL_HELPERS)


def helpers_for(price_entity: str, controller: str = FIRST_CONTROLLER) -> tuple[Helper, ...]:
    """A controller's helpers in REST mode: the contract's, and the price policy switch once a
    price sensor is set."""
    every = helpers_of(controller)
    return every if price_entity else every[:-1]


SETPOINT = HELPERS_BY_ENTITY["input_number.sec1000_export_limit_setpoint"]
EXPORT_SWITCH = HELPERS_BY_ENTITY["input_boolean.sec1000_export"]


def sensor_value(state: StateModel, sensor: Sensor) -> str:
    """A sensor's state as Home Assistant gets it ("unavailable" when the controller is silent)."""
    if key := TELEMETRY_KEY_BY_SENSOR.get(sensor.key):
        if not state.telemetry_available or state.telemetry is None:
            return UNAVAILABLE
        return str(state.telemetry[key])
    if sensor.key == EXPORT_LIMIT.key:
        return (
            UNAVAILABLE if state.export_limit_kw is None else str(round(state.export_limit_kw, 2))
        )
    if sensor.key == EXPORT_STATE.key:
        return state.export_state or "unknown"
    if sensor.key == MODULE_STARTED.key:
        return "on" if state.module_started else "off"
    if sensor.key == EXPORT_GUARD.key:
        return state.guard.state.value
    if sensor.key == EXPORT_POLICY.key:
        return str(state.policy.get("state", "disabled"))
    if key := ENERGY_KEY_BY_SENSOR.get(sensor.key):
        return f"{state.energy.get('totals', {}).get(key, 0.0):.3f}"
    if sensor.key == TIME_AT_LIMIT.key:
        return f"{state.energy.get('time_at_limit_today', 0.0):.1f}"
    if sensor.key == OVER_LIMIT.key:
        return "on" if state.overshoot.get("on") else "off"
    if sensor.key == OVER_LIMIT_ENERGY.key:
        return f"{state.energy.get('totals', {}).get('over_limit', 0.0):.3f}"
    if sensor.key == OVER_LIMIT_TODAY.key:
        return f"{state.energy.get('today', {}).get('over_limit_min', 0.0):.1f}"
    if operation := FEEDBACK_OPERATION_BY_SENSOR.get(sensor.key):
        return str(state.feedback[operation])
    raise KeyError(sensor.entity_id)


def sensor_extra_attributes(
    state: StateModel, sensor: Sensor, options: Options, words: Words = ENGLISH_WORDS
) -> dict[str, Any]:
    """The attributes a sensor carries beyond its description (the headline, the guard's and
    the policy's), in the language of `words`."""
    if sensor.key == EXPORT_STATE.key:
        return {"headline": headline(state, options).words(words)}
    if sensor.key == EXPORT_GUARD.key:
        return dict(state.guard.attributes())
    if sensor.key == EXPORT_POLICY.key:
        return dict(state.policy.get("attributes", {}))
    if sensor.key == OVER_LIMIT.key:
        shown = state.overshoot if state.overshoot.get("on") else {}
        since = shown.get("since")
        return {
            "since": None if since is None else iso_time(since),
            "max_kw": shown.get("max_kw"),
            "limit_kw": shown.get("limit_kw"),
            "energy_over_kwh": shown.get("energy_over_kwh"),
        }
    return {}


def iso_time(at: float) -> str:
    """A time as Home Assistant shows attributes: ISO 8601 with the offset."""
    return dt.datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")
