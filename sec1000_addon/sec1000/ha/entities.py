"""The Home Assistant contract as data: sensors, helpers, events (ids kept from goodwe_sec1000)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sec1000.commands import COMMANDS, FEEDBACK_COMMANDS, MAX_EXPORT_LIMIT_KW, CommandName
from sec1000.protocol import TELEMETRY_FIELDS
from sec1000.state import StateModel

COMMAND_EVENT = "sec1000_command"
RESULT_EVENT = "sec1000_command_result"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor published through the REST states API."""

    entity_id: str
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    precision: int | None = None  # decimals shown (MQTT's suggested_display_precision)
    extra_attributes: bool = False  # carries attributes of its own (the guard's, …)

    @property
    def platform(self) -> str:
        """sensor, or binary_sensor."""
        return self.entity_id.split(".", 1)[0]

    @property
    def object_id(self) -> str:
        """sec1000_v1 of sensor.sec1000_v1."""
        return self.entity_id.split(".", 1)[1]

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
        f"sensor.sec1000_{field.key}",
        f"SEC1000 {field.name}",
        field.unit,
        DEVICE_CLASSES.get(field.unit),
        "measurement",
        TELEMETRY_ICONS.get(field.key, "mdi:gauge"),
        field.decimals,
    )
    for field in TELEMETRY_FIELDS
}
EXPORT_LIMIT = Sensor(
    "sensor.sec1000_export_limit",
    "SEC1000 Export Limit",
    "kW",
    "power",
    "measurement",
    "mdi:transmission-tower-export",
    2,
)
EXPORT_STATE = Sensor("sensor.sec1000_export_state", "SEC1000 Export State", icon="mdi:export")
MODULE_STARTED = Sensor("sensor.sec1000_modul_started", "SEC1000 Modul started", icon="mdi:power")
ENERGY_SENSORS: dict[str, Sensor] = {
    key: Sensor(
        f"sensor.sec1000_{key}_energy",
        f"SEC1000 {name} Energy",
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
    "sensor.sec1000_time_at_limit_today",
    "SEC1000 Time at Limit Today",
    "min",
    "duration",
    "total_increasing",
    "mdi:timer-sand",
    1,
)
EXPORT_POLICY = Sensor(
    "sensor.sec1000_export_policy",
    "SEC1000 Export Policy",
    icon="mdi:cash-clock",
    extra_attributes=True,
)
EXPORT_GUARD = Sensor(
    "sensor.sec1000_export_guard",
    "SEC1000 Export Guard",
    icon="mdi:shield-check-outline",
    extra_attributes=True,
)
# The meter check: export above the limit + margin for longer than overshoot_seconds.
OVER_LIMIT = Sensor(
    "binary_sensor.sec1000_export_over_limit",
    "SEC1000 Export Over Limit",
    device_class="problem",
    icon="mdi:transmission-tower-export",
    extra_attributes=True,
)
OVER_LIMIT_ENERGY = Sensor(
    "sensor.sec1000_export_over_limit_energy",
    "SEC1000 Export Over Limit Energy",
    "kWh",
    "energy",
    "total_increasing",
    "mdi:alert-octagon-outline",
    3,
)
OVER_LIMIT_TODAY = Sensor(
    "sensor.sec1000_export_over_limit_today",
    "SEC1000 Export Over Limit Today",
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
        f"sensor.sec1000_{op.value}_feedback",
        f"SEC1000 {FEEDBACK_NAMES.get(op, op.value.replace('_', ' ').title())} - Feedback",
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

SENSORS_BY_ENTITY = {sensor.entity_id: sensor for sensor in ALL_SENSORS}
TELEMETRY_KEY_BY_ENTITY = {sensor.entity_id: key for key, sensor in TELEMETRY_SENSORS.items()}
ENERGY_KEY_BY_ENTITY = {sensor.entity_id: key for key, sensor in ENERGY_SENSORS.items()}
FEEDBACK_OPERATION_BY_ENTITY = {sensor.entity_id: op for op, sensor in FEEDBACK_SENSORS.items()}


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper the add-on creates when missing and watches."""

    domain: str
    object_id: str
    name: str
    command: str | None  # what a press or change runs; None when the value carries the meaning
    create: dict[str, Any]

    @property
    def entity_id(self) -> str:
        """input_button.sec1000_export_enable, ..."""
        return f"{self.domain}.{self.object_id}"


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
        f"sec1000_{command.value}",
        f"SEC1000 {command.value.replace('_', ' ').title()}",
        command.value,
        {"icon": BUTTON_ICONS.get(command, "mdi:gesture-tap-button")},
    )


HELPERS: tuple[Helper, ...] = (
    *(_button(spec.name) for spec in COMMANDS if spec.button),
    Helper(
        "input_number",
        "sec1000_export_limit_setpoint",
        "SEC1000 Export Limit Setpoint",
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
        "sec1000_export",
        "SEC1000 Export",
        None,
        {"icon": "mdi:transmission-tower-export"},
    ),
)
# Created only when a price sensor is set: the price policy on or off; follows the option.
POLICY_SWITCH = Helper(
    "input_boolean",
    "sec1000_price_policy",
    "SEC1000 Price Policy",
    None,
    {"icon": "mdi:cash-clock"},
)
ALL_HELPERS = (*HELPERS, POLICY_SWITCH)
HELPERS_BY_ENTITY = {helper.entity_id: helper for helper in ALL_HELPERS}


def helpers_for(price_entity: str) -> tuple[Helper, ...]:
    """The helpers in REST mode: the contract's, and the price policy switch once a price
    sensor is set."""
    return ALL_HELPERS if price_entity else HELPERS


SETPOINT = HELPERS_BY_ENTITY["input_number.sec1000_export_limit_setpoint"]
EXPORT_SWITCH = HELPERS_BY_ENTITY["input_boolean.sec1000_export"]


def sensor_value(state: StateModel, sensor: Sensor) -> str:
    """A sensor's state as Home Assistant gets it ("unavailable" when the controller is silent)."""
    if key := TELEMETRY_KEY_BY_ENTITY.get(sensor.entity_id):
        if not state.telemetry_available or state.telemetry is None:
            return UNAVAILABLE
        return str(state.telemetry[key])
    if sensor is EXPORT_LIMIT:
        return (
            UNAVAILABLE if state.export_limit_kw is None else str(round(state.export_limit_kw, 2))
        )
    if sensor is EXPORT_STATE:
        return state.export_state or "unknown"
    if sensor is MODULE_STARTED:
        return "on" if state.module_started else "off"
    if sensor is EXPORT_GUARD:
        return state.guard.state.value
    if sensor is EXPORT_POLICY:
        return str(state.policy.get("state", "disabled"))
    if key := ENERGY_KEY_BY_ENTITY.get(sensor.entity_id):
        return f"{state.energy.get('totals', {}).get(key, 0.0):.3f}"
    if sensor is TIME_AT_LIMIT:
        return f"{state.energy.get('time_at_limit_today', 0.0):.1f}"
    if sensor is OVER_LIMIT:
        return "on" if state.overshoot.get("on") else "off"
    if sensor is OVER_LIMIT_ENERGY:
        return f"{state.energy.get('totals', {}).get('over_limit', 0.0):.3f}"
    if sensor is OVER_LIMIT_TODAY:
        return f"{state.energy.get('today', {}).get('over_limit_min', 0.0):.1f}"
    if operation := FEEDBACK_OPERATION_BY_ENTITY.get(sensor.entity_id):
        return str(state.feedback[operation])
    raise KeyError(sensor.entity_id)


def sensor_extra_attributes(state: StateModel, sensor: Sensor) -> dict[str, Any]:
    """The attributes a sensor carries beyond its description (the guard's and the policy's)."""
    if sensor is EXPORT_GUARD:
        return dict(state.guard.attributes())
    if sensor is EXPORT_POLICY:
        return dict(state.policy.get("attributes", {}))
    if sensor is OVER_LIMIT:
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
