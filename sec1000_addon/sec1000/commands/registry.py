"""The command registry: every user command declared once, with its parameters and words.

The CLI subcommands, the panel's buttons and its `/command` endpoint, the Home Assistant
helpers and the `sec1000_command` event all derive from this table. Each entry is
parsed into its typed request (`commands.requests`), which `Operations.carry_out` carries out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sec1000.common.numbers import NumberError, NumberKind, parse_number
from sec1000.protocol import ControlMode, InvalidInputError

MAX_EXPORT_LIMIT_KW = 100.0


class Rule(StrEnum):
    """The rule a refused number broke: the panel says it in words (and names the bound)."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    EXPONENT = "exponent"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"
    ABOVE_CEILING = "above_ceiling"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an input was refused: the rule, what was typed (as typed, short) and the bound."""

    rule: Rule
    typed: str
    value: float | None = None  # the number read, when it was one
    bound: float | None = None  # the minimum, maximum or ceiling it broke


class RefusedInput(InvalidInputError):
    """An input refused by a rule a user can be told (feedback 128, nothing sent)."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


_NUMBER_RULES = {
    NumberKind.EMPTY: Rule.EMPTY,
    NumberKind.EXPONENT: Rule.EXPONENT,
}


def typed_text(value: object) -> str:
    """What a user typed, for words: stripped, at most 20 characters."""
    text = value.strip() if isinstance(value, str) else str(value)
    return text if len(text) <= 20 else text[:19] + "…"


class CommandName(StrEnum):
    """Every command a user can run (the event's `command`, the panel's and the CLI's)."""

    EXPORT_ENABLE = "export_enable"
    EXPORT_DISABLE = "export_disable"
    EXPORT_TOGGLE = "export_toggle"
    SET_EXPORT_LIMIT = "set_export_limit"
    GET_EXPORT_LIMIT = "get_export_limit"
    SET_DATETIME = "set_datetime"
    RESET_EXPORT_WATCHDOG = "reset_export_watchdog"
    GET_TELEMETRY_DATA = "get_telemetry_data"
    SET_CONTROL_MODE = "set_control_mode"
    APPLY_OPTIONS = "apply_options"  # internal: the options written to the controller


# The commands with a feedback (a sensor in Home Assistant, a status on the panel).
FEEDBACK_COMMANDS = (
    CommandName.EXPORT_DISABLE,
    CommandName.EXPORT_ENABLE,
    CommandName.SET_EXPORT_LIMIT,
    CommandName.GET_EXPORT_LIMIT,
    CommandName.GET_TELEMETRY_DATA,
    CommandName.RESET_EXPORT_WATCHDOG,
    CommandName.SET_DATETIME,
    CommandName.SET_CONTROL_MODE,
)


def read_limit_kw(value: object) -> float:
    """An export limit in kW as given: 0-100, not rounded; RefusedInput in words."""
    try:
        number = parse_number(value)
    except NumberError as err:
        rule = _NUMBER_RULES.get(err.kind, Rule.NOT_A_NUMBER)
        raise RefusedInput(f"export limit {err}", Refusal(rule, typed_text(value))) from None
    if not 0 <= number <= MAX_EXPORT_LIMIT_KW:
        rule, bound = (Rule.BELOW_MINIMUM, 0.0) if number < 0 else (Rule.ABOVE_MAXIMUM, 100.0)
        raise RefusedInput(
            f"export limit must be between 0 and 100 kW, got {number:g}",
            Refusal(rule, typed_text(value), number, bound),
        )
    return number


def parse_control_mode(value: object) -> ControlMode:
    """One of deactivated, value, dred, rcr."""
    if not isinstance(value, str):
        raise InvalidInputError(
            "control mode must be one of " + ", ".join(m.option for m in ControlMode)
        )
    return ControlMode.from_option(value.strip())


def parse_flag(value: object) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"must be true or false, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a command: its key in event data and forms, and how it is checked."""

    name: str
    parse: Callable[[object], Any]
    help: str
    required: bool = True
    aliases: tuple[str, ...] = ()  # other keys accepted for it (older event data)
    choices: tuple[str, ...] = ()  # the values a menu offers, when there is a fixed set
    label: str = ""  # the panel's field label
    unit: str = ""  # shown beside the label
    bounds: tuple[float, float, float] | None = None  # a number field's min, max and step


@dataclass(frozen=True, slots=True)
class Confirm:
    """What a command risks, asked before it runs: the dialog's title, its words, its button."""

    title: str
    risk: str
    action: str


@dataclass(frozen=True, slots=True)
class CliFlag:
    """A command-line switch that gives a parameter a value, e.g. --per-phase."""

    flag: str
    param: str
    value: object
    help: str


@dataclass(frozen=True, slots=True)
class CliForm:
    """How a command appears on the command line: `sec1000 <name> [<choice>]`."""

    name: str
    choice: str | None = None  # `export on` / `export off` share one subcommand
    flags: tuple[CliFlag, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: what it needs, what it may do, and the words people see."""

    name: CommandName
    label: str
    help: str
    feedback: CommandName | None  # its feedback sensor (None: it reports through another)
    params: tuple[Param, ...] = ()
    writes: bool = False  # writes the limiter: refused while a watchdog restore is pending
    cli: CliForm | None = None
    button: bool = False  # a press-only command: a Home Assistant button helper
    panel: bool = False  # accepted by the panel's /command endpoint
    dashboard: bool = False  # one of the dashboard's styled buttons
    confirm: Confirm | None = None  # what the user must confirm first (the panel asks)
    waiting: str = "waiting for the device"

    def parse(self, data: Mapping[str, object]) -> dict[str, Any]:
        """Checked values of the parameters found in `data`; raises InvalidInputError."""
        values: dict[str, Any] = {}
        for param in self.params:
            key = next((k for k in (param.name, *param.aliases) if data.get(k) is not None), None)
            if key is None:
                if param.required:
                    raise InvalidInputError(f"{self.name} needs {param.name}: {param.help}")
                continue
            values[param.name] = param.parse(data[key])
        return values

    def arguments(self, data: Mapping[str, object]) -> list[object]:
        """The raw values of `data` in parameter order (None where absent)."""
        return [
            next((data[k] for k in (p.name, *p.aliases) if data.get(k) is not None), None)
            for p in self.params
        ]


LIMIT = Param(
    "limit",
    read_limit_kw,  # as given: `SetExportLimit.of` rounds it to 10 W steps, and says so
    "the export limit in kW (0-100, 0.01 steps)",
    label="Export limit",
    unit="kW, 0 to 100, two decimals",
    bounds=(0, MAX_EXPORT_LIMIT_KW, 0.01),
)
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        CommandName.EXPORT_ENABLE,
        "Export on",
        "Write the maximum export limit from the options.",
        CommandName.EXPORT_ENABLE,
        writes=True,
        cli=CliForm("export", "on"),
        button=True,
        panel=True,
    ),
    CommandSpec(
        CommandName.EXPORT_DISABLE,
        "Export off",
        "Write the minimum export limit from the options.",
        CommandName.EXPORT_DISABLE,
        writes=True,
        cli=CliForm("export", "off"),
        button=True,
        panel=True,
    ),
    CommandSpec(
        CommandName.EXPORT_TOGGLE,
        "Export on/off",
        "Export on when it is off, off when it is on (reading the limit first if unknown).",
        None,
        writes=True,
        panel=True,
    ),
    CommandSpec(
        CommandName.SET_EXPORT_LIMIT,
        "Set export limit",
        "Write any export limit from 0 kW up to the maximum export limit in the options.",
        CommandName.SET_EXPORT_LIMIT,
        params=(LIMIT,),
        writes=True,
        cli=CliForm("set-limit"),
        panel=True,
        dashboard=True,
    ),
    CommandSpec(
        CommandName.GET_EXPORT_LIMIT,
        "Get export limit",
        "Read the export limit, control mode and capacity back from the controller.",
        CommandName.GET_EXPORT_LIMIT,
        cli=CliForm("get-limit"),
        button=True,
        panel=True,
        dashboard=True,
    ),
    CommandSpec(
        CommandName.SET_DATETIME,
        "Set date and time",
        "Set the controller's clock to this computer's local time.",
        CommandName.SET_DATETIME,
        cli=CliForm("set-time"),
        button=True,
        panel=True,
        dashboard=True,
    ),
    CommandSpec(
        CommandName.RESET_EXPORT_WATCHDOG,
        "Reset export watchdog",
        "Turn the limiter off for 5 s and restore it, which restarts the limiting loop.",
        CommandName.RESET_EXPORT_WATCHDOG,
        writes=True,
        cli=CliForm("reset-watchdog"),
        button=True,
        panel=True,
        dashboard=True,
        confirm=Confirm(
            "Reset the export watchdog?",
            "Every control mode is switched off for about 5 seconds: during that time the plant "
            "may export its full power to the grid. Then the configured mode is restored, "
            "confirmed by reading it back, and the export limit is written again.",
            "Reset: full export for ~5 s",
        ),
        waiting="turning the limiter off for 5 s",
    ),
    CommandSpec(
        CommandName.GET_TELEMETRY_DATA,
        "Read telemetry",
        "Read the live values once.",
        CommandName.GET_TELEMETRY_DATA,
        cli=CliForm("read"),
    ),
    CommandSpec(
        CommandName.SET_CONTROL_MODE,
        "Set control mode",
        "Select the export limit control mode (and phase measurement) by rewriting the limit.",
        CommandName.SET_CONTROL_MODE,
        params=(
            Param(
                "mode",
                parse_control_mode,
                "deactivated, value, dred or rcr",
                aliases=("limit",),  # the event carried the mode in `limit` before
                choices=tuple(mode.option for mode in ControlMode),
            ),
            Param(
                "three_phase_sum",
                parse_flag,
                "true: limit the sum of the phases; false: each phase",
                required=False,
            ),
        ),
        writes=True,
        cli=CliForm(
            "mode",
            flags=(
                CliFlag(
                    "--per-phase",
                    "three_phase_sum",
                    False,
                    "measure each phase instead of the sum",
                ),
            ),
        ),
    ),
)
BY_NAME: Mapping[str, CommandSpec] = {spec.name.value: spec for spec in COMMANDS}
# Not a command anybody runs by name: the options that reach the controller, written after a
# change (in the panel, the Configuration tab, Home Assistant) under the true origin.
OPTIONS_WRITE = CommandSpec(
    CommandName.APPLY_OPTIONS,
    "Write the settings",
    "Write the limits, capacity, mode and phase measurement from the options.",
    None,
    writes=True,
)


def spec_of(name: object) -> CommandSpec | None:
    """The command called `name`, or None."""
    return BY_NAME.get(name) if isinstance(name, str) else None
