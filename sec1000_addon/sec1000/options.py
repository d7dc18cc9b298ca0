"""The add-on options: one typed model, its bounds, validation and the local options file."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from sec1000.common.files import write_atomic
from sec1000.common.numbers import NumberError, parse_number
from sec1000.common.units import watts
from sec1000.protocol import ControlMode, PhaseMeasurement

CONTROL_MODES = tuple(mode.option for mode in ControlMode)
LOG_LEVELS = ("trace", "debug", "info", "notice", "warning", "error", "fatal")
# bashio's level names (the log_level option) as Python logging levels; s6 may also pass "critical".
PYTHON_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}
# The protocol document: do not poll faster than every 5 s.
SCAN_INTERVAL_WARNING_BELOW = 5
# The export guard: 0 turns the periodic check off; else 5 s to a day.
MIN_VERIFY_INTERVAL = 5
MAX_VERIFY_INTERVAL = 86400
DRIFT_ACTIONS = ("restore", "adopt", "notify")
PRICE_STALE_ACTIONS = ("keep", "export_off", "export_on")
# How the entities reach Home Assistant: MQTT discovery when a broker is found, else REST states.
ENTITY_MODES = ("auto", "mqtt", "rest")
MAX_TEXT_LENGTH = 255  # MQTT user names and passwords
REDACTED = "**********"
# A Home Assistant entity id, e.g. sensor.nordpool_kwh_no1_eur.
_ENTITY_ID = re.compile(r"[a-z_]+\.[a-z0-9_]+")
# RFC 1123 host names: labels of 1-63 letters, digits and hyphens, not starting or ending
# with a hyphen; at most 253 characters in all.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_HOST_LENGTH = 253
# An IPv6 zone (fe80::1%eth0): an interface name or index, 15 characters at most on Linux.
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
MAX_ENTITY_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option: its kind, bounds and default; the Supervisor schema is derived from it."""

    key: str
    kind: Literal[
        "str",
        "address",
        "entity",
        "text",
        "password",
        "port",
        "int",
        "float",
        "bool",
        "list",
        "controllers",
    ]
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def schema(self) -> Any:
        """This option's type in the Supervisor's `schema` notation.

        A `str` carries no bounds there: Supervisors before 2026.07 reject every value of a
        bounded `str` ("must have a partial ordering"). Its bound is checked here instead.
        """
        if self.kind == "controllers":
            # A list of dicts: the name and host are required, every other key optional.
            item = {"name": f"match({CONTROLLER_NAME_SCHEMA})", "host": "str", "port": "port?"}
            item |= {key: f"{SPECS_BY_KEY[key].schema}?" for key in CONTROLLER_OVERRIDES}
            return [item]
        if self.kind in ("int", "float"):
            low = "" if self.minimum is None else _bound(self.minimum)
            high = "" if self.maximum is None else _bound(self.maximum)
            return f"{self.kind}({low},{high})" if (low or high) else self.kind
        if self.kind == "list":
            return f"list({'|'.join(self.choices)})"
        if self.kind in ("entity", "address", "text"):
            return "str?"  # may be left empty
        if self.kind == "password":
            return "password?"
        return self.kind


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


OPTION_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec("host", "str", "192.168.1.200", 1, MAX_HOST_LENGTH),
    OptionSpec("port", "port", 1234, 1, 65535),
    OptionSpec("scan_interval", "int", 30, 1, 3600),
    OptionSpec("min_export_limit", "float", 0.0, 0, 100),
    OptionSpec("max_export_limit", "float", 10.0, 0, 100),
    OptionSpec("total_capacity", "float", 10.0, 0.01, 2000),
    OptionSpec("export_limit_control_mode", "list", "value", choices=CONTROL_MODES),
    OptionSpec("three_phase_sum", "bool", True),
    OptionSpec("request_gap_ms", "int", 1000, 0, 10000),
    OptionSpec("request_timeout", "int", 10, 1, 60),
    OptionSpec("offline_notification_minutes", "int", 10, 1, 1440),
    OptionSpec("log_level", "list", "info", choices=LOG_LEVELS),
    OptionSpec("verify_interval", "int", 300, 0, MAX_VERIFY_INTERVAL),
    OptionSpec("drift_action", "list", "restore", choices=DRIFT_ACTIONS),
    OptionSpec("overshoot_margin_kw", "float", 0.2, 0, 100),
    OptionSpec("overshoot_seconds", "int", 60, 10, 3600),
    OptionSpec("export_ceiling_kw", "float", 0.0, 0, 100),
    OptionSpec("price_policy", "bool", False),
    OptionSpec("price_entity", "entity", ""),
    OptionSpec("export_off_below", "float", 0.0),
    OptionSpec("export_on_above", "float", 0.0),
    OptionSpec("policy_min_dwell_minutes", "int", 15, 0, 1440),
    OptionSpec("price_stale_minutes", "int", 90, 1, 10080),
    OptionSpec("price_stale_action", "list", "keep", choices=PRICE_STALE_ACTIONS),
    OptionSpec("entities", "list", "auto", choices=ENTITY_MODES),
    OptionSpec("mqtt_host", "address", ""),
    OptionSpec("mqtt_port", "port", 1883, 1, 65535),
    OptionSpec("mqtt_username", "text", ""),
    OptionSpec("mqtt_password", "password", ""),
    OptionSpec("controllers", "controllers", []),
)
SPECS_BY_KEY = {spec.key: spec for spec in OPTION_SPECS}
# The first controller is named so in ids and events; no additional one may take the name.
FIRST_CONTROLLER = "sec1000"
# An additional controller's name: part of its entity ids (sec1000_<name>_...) and its folder.
# Home Assistant refuses an entity id with "__" in it: no '_' first, last or twice in a row.
CONTROLLER_NAME = re.compile(r"(?=.{1,20}\Z)[a-z0-9]+(?:_[a-z0-9]+)*")
# The same rule as the Supervisor's `match(...)`: it applies re.match (anchored at the start
# only), so the Configuration tab refuses what the add-on refuses, the first's name included.
CONTROLLER_NAME_SCHEMA = rf"^(?!{FIRST_CONTROLLER}\Z)(?=.{{1,20}}\Z)[a-z0-9]+(?:_[a-z0-9]+)*\Z"
# What an additional controller may set for itself; every other option is shared.
CONTROLLER_OVERRIDES = (
    "min_export_limit",
    "max_export_limit",
    "total_capacity",
    "export_limit_control_mode",
    "three_phase_sum",
    "request_gap_ms",
    "request_timeout",
    "price_policy",
)
CONTROLLER_KEYS = ("name", "host", "port", *CONTROLLER_OVERRIDES)


class OptionsError(ValueError):
    """The options are invalid; `errors` maps each bad key to a sentence a person understands."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{key}: {text}" for key, text in self.errors.items()))


@dataclass(frozen=True, slots=True)
class InvalidOptions:
    """Stored options that do not validate: why, and the user's values as stored (kept while
    the user fixes them one step at a time; the defaults stand in for the device meanwhile)."""

    error: OptionsError
    stored: Mapping[str, Any]


def _default(key: str) -> Any:
    return SPECS_BY_KEY[key].default


@dataclass(frozen=True, slots=True)
class Options:
    """Validated options. Powers are in kW, as the user types them."""

    host: str = _default("host")
    port: int = _default("port")
    scan_interval: int = _default("scan_interval")
    min_export_limit: float = _default("min_export_limit")
    max_export_limit: float = _default("max_export_limit")
    total_capacity: float = _default("total_capacity")
    export_limit_control_mode: str = _default("export_limit_control_mode")
    three_phase_sum: bool = _default("three_phase_sum")
    request_gap_ms: int = _default("request_gap_ms")
    request_timeout: int = _default("request_timeout")
    offline_notification_minutes: int = _default("offline_notification_minutes")
    log_level: str = _default("log_level")
    verify_interval: int = _default("verify_interval")
    drift_action: str = _default("drift_action")
    overshoot_margin_kw: float = _default("overshoot_margin_kw")
    overshoot_seconds: int = _default("overshoot_seconds")
    export_ceiling_kw: float = _default("export_ceiling_kw")
    price_policy: bool = _default("price_policy")
    price_entity: str = _default("price_entity")
    export_off_below: float = _default("export_off_below")
    export_on_above: float = _default("export_on_above")
    policy_min_dwell_minutes: int = _default("policy_min_dwell_minutes")
    price_stale_minutes: int = _default("price_stale_minutes")
    price_stale_action: str = _default("price_stale_action")
    entities: str = _default("entities")
    mqtt_host: str = _default("mqtt_host")
    mqtt_port: int = _default("mqtt_port")
    mqtt_username: str = _default("mqtt_username")
    mqtt_password: str = _default("mqtt_password")
    controllers: tuple[ControllerOptions, ...] = ()
    # Items of `controllers` stored but refused (read with `lenient_items`): kept as stored, so a
    # save never loses them, while every other controller runs. Not an option of its own.
    refused: tuple[RefusedController, ...] = field(default=(), compare=True)

    @classmethod
    def from_mapping(
        cls, data: object, *, base: Options | None = None, lenient_items: bool = False
    ) -> Options:
        """Validate a mapping (JSON, form, Supervisor); missing keys come from `base` or defaults.

        Raises OptionsError naming every bad key; unknown keys are errors too. With
        `lenient_items` (stored options, read at a start) a bad item of `controllers` is set
        aside in `refused` instead: one controller's mistake never stops the others.
        """
        if not isinstance(data, Mapping):
            raise OptionsError(
                {"options": f"expected an object of options, got {type(data).__name__}"}
            )
        start = base if base is not None else cls()
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            spec = SPECS_BY_KEY.get(str(key))
            if spec is None or key == "refused":
                errors[str(key)] = "is not a known option"
            elif spec.kind != "controllers":
                try:
                    values[spec.key] = _coerce(spec, raw)
                except ValueError as err:
                    errors[spec.key] = str(err)
        merged = {field.name: getattr(start, field.name) for field in fields(cls)} | values
        # Every rule at once: a key that could not be read keeps its value before, so a form
        # shows each of its errors after one save, not one per save.
        for key, text in _cross_check(merged).items():
            errors.setdefault(key, text)
        if errors:
            raise OptionsError(errors)
        options = cls(**merged)
        # The additional controllers are checked against the top level they inherit from.
        items = data.get("controllers", [item.to_dict() for item in options.controllers])
        if not lenient_items:
            return replace(options, controllers=parse_controllers(items, options))
        valid, refused = parse_controllers_leniently(items, options)
        return replace(options, controllers=valid, refused=refused)

    def to_dict(self) -> dict[str, Any]:
        """Options as the JSON object stored in the options file or sent to the Supervisor;
        refused items go back to their places, as stored."""
        out = asdict(replace(self, controllers=(), refused=()))
        del out["refused"]
        items: list[Any] = [item.to_dict() for item in self.controllers]
        for item in sorted(self.refused, key=lambda refused: refused.index):
            items.insert(min(item.index - 1, len(items)), item.raw)
        out["controllers"] = items
        return out

    @property
    def controller_names(self) -> list[str]:
        """Every controller's name, the first one first."""
        return [FIRST_CONTROLLER, *(item.name for item in self.controllers)]

    def of_controller(self, name: str) -> Options:
        """The options one controller runs with: the top level for the first; for an additional
        one the top level with its own keys, and no further controllers."""
        if name == FIRST_CONTROLLER:
            return self
        for item in self.controllers:
            if item.name == name:
                return replace(self, controllers=(), refused=(), **item.values)
        raise KeyError(name)

    def without_refused(self, name: str) -> Options:
        """These options without the refused item of that name (removed by the user)."""
        return replace(self, refused=tuple(item for item in self.refused if item.name != name))

    def public_dict(self) -> dict[str, Any]:
        """The options as shown and logged: the MQTT password is never among them."""
        return redacted(self.to_dict())

    def __repr__(self) -> str:
        return f"Options({self.public_dict()!r})"

    @property
    def control_mode(self) -> ControlMode:
        """The configured control mode."""
        return ControlMode.from_option(self.export_limit_control_mode)

    @property
    def ceiling_w(self) -> int | None:
        """The contracted export ceiling in watts, or None when there is none: a whole number
        of the controller's 10 W limit steps, rounded down (never above the contract)."""
        return ceiling_watts(self.export_ceiling_kw) if self.export_ceiling_kw else None

    @property
    def phase_measurement(self) -> PhaseMeasurement:
        """The phase byte of every 0x42 write."""
        return PhaseMeasurement.from_sum(self.three_phase_sum)

    def warnings(self) -> dict[str, str]:
        """Valid but risky settings, by key."""
        out = {}
        if self.scan_interval < SCAN_INTERVAL_WARNING_BELOW:
            out["scan_interval"] = (
                f"polling faster than every {SCAN_INTERVAL_WARNING_BELOW} s can make the "
                "controller stop answering until it is power-cycled"
            )
        ceiling_w = self.ceiling_w
        if ceiling_w is not None and ceiling_w != round(self.export_ceiling_kw * 1000):
            out["export_ceiling_kw"] = (
                f"{self.export_ceiling_kw:g} kW is not a whole number of the controller's 10 W "
                f"steps: the ceiling in force is {ceiling_w / 1000:.2f} kW (rounded down)"
            )
        if ceiling_w is not None and self.verify_interval == 0:
            out["verify_interval"] = (
                "0 does not turn the check off while an export ceiling is set: the controller's "
                f"limit and mode are still read every scan_interval ({self.scan_interval} s)"
            )
        elif 0 < self.verify_interval < MIN_VERIFY_INTERVAL:
            out["verify_interval"] = (
                f"the controller is checked every {MIN_VERIFY_INTERVAL} s at most often; "
                "0 turns the periodic check off"
            )
        return out


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """One additional controller: its name, and the keys it sets itself (host and port
    among them); the rest it takes from the top level."""

    name: str
    settings: tuple[tuple[str, Any], ...]

    @property
    def values(self) -> dict[str, Any]:
        """The keys it sets, by key."""
        return dict(self.settings)

    def to_dict(self) -> dict[str, Any]:
        """As stored: `name` first, then the keys it sets."""
        return {"name": self.name, **self.values}


@dataclass(frozen=True, slots=True)
class RefusedController:
    """An item of `controllers` that does not validate, as stored, and why; `index` is its
    place in the list, from 1."""

    index: int
    raw: Any
    reason: str

    @property
    def name(self) -> str:
        """Its name as stored ("" when it has none)."""
        name = self.raw.get("name") if isinstance(self.raw, Mapping) else None
        return name if isinstance(name, str) else ""

    @property
    def label(self) -> str:
        """How a person finds it in the Configuration tab: its place, and its name."""
        return f"controller {self.index}" + (f" ({self.name})" if self.name else "")


def parse_controllers_leniently(
    raw: object, top: Options
) -> tuple[tuple[ControllerOptions, ...], tuple[RefusedController, ...]]:
    """The `controllers` option as stored: the valid items, and the refused ones with why (a
    taken name or address refuses the later item). Not a list at all refuses nothing that
    can run: every item is refused."""
    if not isinstance(raw, list | tuple):
        return (), (RefusedController(1, raw, "must be a list of controllers"),)
    valid: list[ControllerOptions] = []
    refused: list[RefusedController] = []
    for index, item in enumerate(raw, start=1):
        try:
            valid.append(parse_controllers([*(c.to_dict() for c in valid), item], top)[-1])
        except OptionsError as err:
            reason = err.errors.get("controllers", str(err))
            reason = reason.split(": ", 1)[1] if reason.startswith("controller ") else reason
            refused.append(RefusedController(index, item, reason))
    return tuple(valid), tuple(refused)


def canonical_host(host: str) -> str:
    """One spelling per address, for telling two controllers at one device apart without a
    lookup: IPv4-mapped IPv6 and the short and hex IPv4 forms (0x7f.1) as dotted quads."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:  # inet_aton's forms, which the socket calls accept: 127.1, 0x7f.1, 2130706433
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host.lower().removesuffix(".")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_controllers(raw: object, top: Options) -> tuple[ControllerOptions, ...]:
    """The `controllers` option: a list of objects, each checked against the top level it
    inherits from. Raises OptionsError under the key `controllers`, naming the item."""
    if not isinstance(raw, list | tuple):
        raise OptionsError({"controllers": "must be a list of controllers"})
    out: list[ControllerOptions] = []
    addresses = {(canonical_host(top.host), top.port): "the first controller"}
    for index, item in enumerate(raw, start=1):
        try:
            controller = parse_controller(item, top)
        except OptionsError as err:
            raise OptionsError({"controllers": f"controller {index}: {err}"}) from None
        values = controller.values
        address = (canonical_host(values["host"]), values.get("port", top.port))
        if controller.name in (c.name for c in out):
            raise OptionsError(
                {"controllers": f"controller {index}: the name {controller.name} is taken"}
            )
        if address in addresses:
            raise OptionsError(
                {
                    "controllers": f"controller {index} ({controller.name}): "
                    f"{addresses[address]} is at {values['host']}:{address[1]} already; each "
                    "controller takes the one connection its device allows"
                }
            )
        addresses[address] = f"controller {controller.name}"
        out.append(controller)
    return tuple(out)


def parse_controller(raw: object, top: Options) -> ControllerOptions:
    """One additional controller's object; raises OptionsError naming every bad key."""
    if not isinstance(raw, Mapping):
        raise OptionsError({"controller": "must be an object with name and host"})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    name = raw.get("name")
    if not isinstance(name, str) or not CONTROLLER_NAME.fullmatch(name):
        errors["name"] = (
            "must be 1 to 20 small letters, digits or '_' (not first, not last, not two in a "
            "row: Home Assistant's entity ids refuse them)"
        )
    elif name == FIRST_CONTROLLER:
        errors["name"] = f"{FIRST_CONTROLLER} is the first controller's name"
    if raw.get("host") in (None, ""):
        errors["host"] = "must not be empty"
    for key, value in raw.items():
        if key == "name":
            continue
        if key not in CONTROLLER_KEYS:
            errors[str(key)] = (
                "is not a key of a controller (name, host, port, "
                + ", ".join(CONTROLLER_OVERRIDES)
                + ")"
            )
            continue
        if value is None:  # left unset: the top level's value
            continue
        try:
            values[key] = _coerce(SPECS_BY_KEY[key], value)
        except ValueError as err:
            errors.setdefault(key, str(err))
    if not errors:
        merged = {field.name: getattr(top, field.name) for field in fields(Options)} | values
        errors.update(_cross_check(merged))
    if errors:
        raise OptionsError(errors)
    ordered = tuple((key, values[key]) for key in CONTROLLER_KEYS if key in values)
    return ControllerOptions(str(name), ordered)


def _coerce(spec: OptionSpec, raw: object) -> Any:
    """Turn a raw value (JSON or form text) into the option's type, within its bounds."""
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in (
            "true",
            "on",
            "1",
            "yes",
            "false",
            "off",
            "0",
            "no",
        ):
            return raw.lower() in ("true", "on", "1", "yes")
        raise ValueError("must be true or false")
    if spec.kind == "list":
        if raw not in spec.choices:
            raise ValueError("must be one of " + ", ".join(spec.choices))
        return raw
    if spec.kind == "str":
        return validate_host(raw)
    if spec.kind == "address":
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return ""
        return validate_host(raw)
    if spec.kind in ("text", "password"):
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise ValueError("must be text")
        if len(raw) > MAX_TEXT_LENGTH:
            raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters")
        if not raw.isprintable():
            raise ValueError("must not hold line breaks or control characters")
        return raw
    if spec.kind == "entity":
        text = raw.strip() if isinstance(raw, str) else None
        if text is not None and len(text) > MAX_ENTITY_ID_LENGTH:
            raise ValueError(f"must be an entity id of at most {MAX_ENTITY_ID_LENGTH} characters")
        if text is None or (text and not _ENTITY_ID.fullmatch(text)):
            raise ValueError("must be an entity id such as sensor.electricity_price, or empty")
        return text
    try:
        number: float = parse_number(raw)
    except NumberError as err:
        raise ValueError(str(err)) from None
    if spec.kind in ("int", "port"):
        if not number.is_integer():
            raise ValueError("must be a whole number")
        number = int(number)
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"must be at least {_bound(spec.minimum)}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"must be at most {_bound(spec.maximum)}")
    return number


def validate_host(raw: object) -> str:
    """An IPv4 or IPv6 address, or an RFC 1123 host name; raises ValueError in words."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must not be empty")
    text = raw.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        zone = getattr(address, "scope_id", None)
        if zone is not None and not _ZONE.fullmatch(zone):
            raise ValueError(
                "must be an IP address whose zone (after %) names a network interface: "
                "1 to 15 letters, digits, '_', '.' or '-'"
            )
        return str(address)
    name = text.removesuffix(".")
    if (
        len(name) <= MAX_HOST_LENGTH
        and name.isascii()
        and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))
        and not name.replace(".", "").isdigit()  # 192.168.1..200 is no name either
    ):
        return text
    raise ValueError(
        "must be an IP address (192.168.1.200, fd00::1) or a host name of letters, digits, "
        "hyphens and dots, without spaces"
    )


def ceiling_watts(ceiling_kw: float) -> int:
    """A ceiling in kW as the controller can hold it: whole 10 W steps, rounded down (the
    protocol's limit is whole watts, set in 10 W steps)."""
    return math.floor(round(ceiling_kw * 1000, 6) / 10) * 10


# With a ceiling only the mode "value" keeps the export under a limit the add-on checks:
# deactivated limits nothing, DRED and RCR follow an outside signal the meter check cannot judge.
CEILING_MODES = (ControlMode.VALUE.option,)


def _cross_check(values: Mapping[str, Any]) -> dict[str, str]:
    errors = {}
    if values["export_on_above"] < values["export_off_below"]:
        errors["export_on_above"] = (
            f"must be at least export_off_below ({values['export_off_below']:g}): export comes "
            "back on only at a price at or above the one that switched it off"
        )
    if values["price_policy"] and not values["price_entity"]:
        errors["price_entity"] = "the price policy needs a price sensor"

    if values["min_export_limit"] > values["max_export_limit"]:
        errors["min_export_limit"] = (
            f"the minimum export limit ({values['min_export_limit']} kW) is above the "
            f"maximum ({values['max_export_limit']} kW)"
        )
    ceiling = values["export_ceiling_kw"]
    if ceiling and values["max_export_limit"] > ceiling:
        errors["max_export_limit"] = (
            f"the maximum export limit ({values['max_export_limit']} kW) is above the export "
            f"ceiling of {ceiling:g} kW (the grid contract)"
        )
    elif ceiling and watts(values["max_export_limit"]) > ceiling_watts(ceiling):
        errors["max_export_limit"] = (
            f"the maximum export limit ({values['max_export_limit']:g} kW) is written in the "
            f"controller's 10 W steps as {watts(values['max_export_limit']) / 1000:.2f} kW, above "
            f"the export ceiling in force of {ceiling_watts(ceiling) / 1000:.2f} kW "
            f"({ceiling:g} kW rounded down to 10 W steps)"
        )
    mode = values["export_limit_control_mode"]
    if ceiling and mode not in CEILING_MODES:
        errors["export_limit_control_mode"] = ceiling_mode_refusal(ceiling, mode)
    if values["max_export_limit"] > values["total_capacity"]:
        errors["max_export_limit"] = (
            f"the maximum export limit ({values['max_export_limit']} kW) is above the total "
            f"capacity of the PV system ({values['total_capacity']} kW)"
        )
    return errors


def ceiling_mode_refusal(ceiling_kw: float, mode: str) -> str:
    """Why a mode other than "value" is refused while a ceiling is set, in words."""
    if mode == ControlMode.DEACTIVATED.option:
        return (
            f"the export ceiling of {ceiling_kw:g} kW needs the limiter: the mode cannot be "
            "deactivated while a ceiling is set"
        )
    return (
        f"the export ceiling of {ceiling_kw:g} kW needs the mode value: in mode {mode} the "
        "controller follows an outside signal that the add-on cannot hold under the ceiling"
    )


def redacted(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of raw or validated options with the password masked (set or not is kept)."""
    out = dict(options)
    for spec in OPTION_SPECS:
        if spec.kind == "password" and out.get(spec.key):
            out[spec.key] = REDACTED
    return out


def option_keys() -> list[str]:
    """Every option key, in schema order."""
    return [field.name for field in fields(Options) if field.name != "refused"]


def stored_options(path: Path) -> dict[str, Any]:
    """The known keys of an options file as stored, valid or not (to show and keep them while
    the user fixes the bad ones); empty when the file is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in SPECS_BY_KEY} if isinstance(data, dict) else {}


def load_options_file(path: Path) -> Options:
    """Read and validate an options file; a missing file gives the defaults.

    Raises OptionsError for a file that is not JSON or holds invalid options.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Options()
    except OSError as err:
        raise OptionsError({"options": f"cannot read {path}: {err.strerror}"}) from None
    except UnicodeDecodeError as err:
        raise OptionsError(
            {"options": f"{path} is not UTF-8 text (byte {err.start}): fix or remove it"}
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise OptionsError(
            {
                "options": f"{path} is not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}"
            }
        ) from None
    except (ValueError, RecursionError) as err:  # nested too deep, numbers too long
        raise OptionsError({"options": f"{path} cannot be read as options: {err}"[:300]}) from None
    return Options.from_mapping(data, lenient_items=True)


def save_options_file(path: Path, options: Options) -> None:
    """Write the options file atomically, so a crash never leaves half a file."""
    write_atomic(path, json.dumps(options.to_dict(), indent=2) + "\n")
