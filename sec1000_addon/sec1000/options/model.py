"""The add-on's options: each declared once, on its field of `Options` (kind, bounds, default,
Setup step); the option table (`OPTION_SPECS`), the Supervisor schema and the defaults are
derived from the declarations. Also the additional controllers' items and their rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from sec1000.common.errors import AddonError
from sec1000.options.kinds import (
    MAX_HOST_LENGTH,
    READERS,
    Kind,
    bound,
    canonical_host,
    ceiling_watts,
)
from sec1000.options.rules import cross_check
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
REDACTED = "**********"
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


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option as declared: its key, kind, default, bounds or choices, and the Setup step
    that asks for it (None: only the Configuration tab)."""

    key: str
    kind: Kind
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    step: str | None = None

    def read(self, raw: object) -> Any:
        """A raw value (JSON or form text) as this option's value; ValueError in words."""
        return READERS[self.kind](self, raw)

    @property
    def schema(self) -> Any:
        """This option's type in the Supervisor's `schema` notation.

        A `str` carries no bounds there: Supervisors before 2026.07 reject every value of a
        bounded `str` ("must have a partial ordering"). Its bound is checked here instead.
        """
        if self.kind is Kind.CONTROLLERS:
            # A list of dicts: the name and host are required, every other key optional.
            item = {"name": f"match({CONTROLLER_NAME_SCHEMA})", "host": "str", "port": "port?"}
            item |= {key: f"{SPECS_BY_KEY[key].schema}?" for key in CONTROLLER_OVERRIDES}
            return [item]
        if self.kind in (Kind.INT, Kind.FLOAT):
            low = "" if self.minimum is None else bound(self.minimum)
            high = "" if self.maximum is None else bound(self.maximum)
            return f"{self.kind}({low},{high})" if (low or high) else str(self.kind)
        if self.kind is Kind.LIST:
            return f"list({'|'.join(self.choices)})"
        if self.kind in (Kind.ENTITY, Kind.ADDRESS, Kind.TEXT):
            return "str?"  # may be left empty
        if self.kind is Kind.PASSWORD:
            return "password?"
        return str(self.kind)


def option(
    kind: Kind,
    default: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    choices: tuple[str, ...] = (),
    step: str | None = None,
) -> Any:
    """Declare an option on its `Options` field (the key is the field's name)."""
    spec = OptionSpec("", kind, default, minimum, maximum, choices, step)
    return field(default=default, metadata={"option": spec})


class OptionsError(AddonError, ValueError):
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


@dataclass(frozen=True, slots=True)
class Options:
    """Validated options, each declared here once. Powers are in kW, as the user types them."""

    # fmt: off
    host: str = option(Kind.STR, "192.168.1.200", 1, MAX_HOST_LENGTH, step="connection")
    port: int = option(Kind.PORT, 1234, 1, 65535, step="connection")
    scan_interval: int = option(Kind.INT, 30, 1, 3600, step="connection")
    min_export_limit: float = option(Kind.FLOAT, 0.0, 0, 100, step="limits")
    max_export_limit: float = option(Kind.FLOAT, 10.0, 0, 100, step="limits")
    total_capacity: float = option(Kind.FLOAT, 10.0, 0.01, 2000, step="limits")
    export_limit_control_mode: str = option(Kind.LIST, "value", choices=CONTROL_MODES, step="mode")
    three_phase_sum: bool = option(Kind.BOOL, True, step="mode")
    request_gap_ms: int = option(Kind.INT, 1000, 0, 10000, step="advanced")
    request_timeout: int = option(Kind.INT, 10, 1, 60, step="advanced")
    offline_notification_minutes: int = option(Kind.INT, 10, 1, 1440, step="advanced")
    log_level: str = option(Kind.LIST, "info", choices=LOG_LEVELS, step="advanced")
    verify_interval: int = option(Kind.INT, 300, 0, MAX_VERIFY_INTERVAL, step="advanced")
    drift_action: str = option(Kind.LIST, "restore", choices=DRIFT_ACTIONS, step="advanced")
    overshoot_margin_kw: float = option(Kind.FLOAT, 0.2, 0, 100, step="limits")
    overshoot_seconds: int = option(Kind.INT, 60, 10, 3600, step="limits")
    export_ceiling_kw: float = option(Kind.FLOAT, 0.0, 0, 100, step="limits")
    price_policy: bool = option(Kind.BOOL, False, step="policy")
    price_entity: str = option(Kind.ENTITY, "", step="policy")
    export_off_below: float = option(Kind.FLOAT, 0.0, step="policy")
    export_on_above: float = option(Kind.FLOAT, 0.0, step="policy")
    policy_min_dwell_minutes: int = option(Kind.INT, 15, 0, 1440, step="policy")
    price_stale_minutes: int = option(Kind.INT, 90, 1, 10080, step="policy")
    price_stale_action: str = option(Kind.LIST, "keep", choices=PRICE_STALE_ACTIONS, step="policy")
    entities: str = option(Kind.LIST, "auto", choices=ENTITY_MODES, step="home_assistant")
    mqtt_host: str = option(Kind.ADDRESS, "", step="home_assistant")
    mqtt_port: int = option(Kind.PORT, 1883, 1, 65535, step="home_assistant")
    mqtt_username: str = option(Kind.TEXT, "", step="home_assistant")
    mqtt_password: str = option(Kind.PASSWORD, "", step="home_assistant")
    controllers: tuple[ControllerOptions, ...] = option(Kind.CONTROLLERS, (), step="controllers")
    # fmt: on
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
            if spec is None:
                errors[str(key)] = "is not a known option"
            elif spec.kind is not Kind.CONTROLLERS:
                try:
                    values[spec.key] = spec.read(raw)
                except ValueError as err:
                    errors[spec.key] = str(err)
        merged = {field.name: getattr(start, field.name) for field in fields(cls)} | values
        # Every rule at once: a key that could not be read keeps its value before, so a form
        # shows each of its errors after one save, not one per save.
        for key, text in cross_check(merged).items():
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
            values[key] = SPECS_BY_KEY[key].read(value)
        except ValueError as err:
            errors.setdefault(key, str(err))
    if not errors:
        merged = {field.name: getattr(top, field.name) for field in fields(Options)} | values
        errors.update(cross_check(merged))
    if errors:
        raise OptionsError(errors)
    ordered = tuple((key, values[key]) for key in CONTROLLER_KEYS if key in values)
    return ControllerOptions(str(name), ordered)


# The option table, derived from the declarations on `Options`, in their order.
OPTION_SPECS: tuple[OptionSpec, ...] = tuple(
    replace(f.metadata["option"], key=f.name, default=f.default if f.default != () else [])
    for f in fields(Options)
    if "option" in f.metadata
)
SPECS_BY_KEY = {spec.key: spec for spec in OPTION_SPECS}


def redacted(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of raw or validated options with the password masked (set or not is kept)."""
    out = dict(options)
    for spec in OPTION_SPECS:
        if spec.kind is Kind.PASSWORD and out.get(spec.key):
            out[spec.key] = REDACTED
    return out


def option_keys() -> list[str]:
    """Every option key, in schema order."""
    return [field.name for field in fields(Options) if field.name != "refused"]
