"""Each user command as a typed request: parsed and checked once, from the registry's
parameters, then carried out by `Operations.carry_out`, which has one function per kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from sec1000.commands.registry import (
    CommandName,
    CommandSpec,
    typed_text,
)
from sec1000.protocol import ControlMode, InvalidInputError


@dataclass(frozen=True, slots=True)
class ExportEnable:
    """Write the maximum export limit of the options."""

    name: ClassVar[CommandName] = CommandName.EXPORT_ENABLE


@dataclass(frozen=True, slots=True)
class ExportDisable:
    """Write the minimum export limit of the options."""

    name: ClassVar[CommandName] = CommandName.EXPORT_DISABLE


@dataclass(frozen=True, slots=True)
class ExportToggle:
    """Export on when it is off, off when it is on."""

    name: ClassVar[CommandName] = CommandName.EXPORT_TOGGLE


@dataclass(frozen=True, slots=True)
class SetExportLimit:
    """Write one export limit: 0-100 kW in the controller's 10 W steps (`rounded` when the
    number given had more decimals); `typed` is what was given, for words."""

    name: ClassVar[CommandName] = CommandName.SET_EXPORT_LIMIT
    limit_kw: float
    typed: str
    rounded: bool

    @classmethod
    def of(cls, number: float, typed: object) -> SetExportLimit:
        """The request for a limit read as `number` from what was `typed`."""
        limit_kw = round(number, 2)
        return cls(limit_kw, typed_text(typed), abs(number - limit_kw) > 1e-9)


@dataclass(frozen=True, slots=True)
class GetExportLimit:
    """Read the export settings back."""

    name: ClassVar[CommandName] = CommandName.GET_EXPORT_LIMIT


@dataclass(frozen=True, slots=True)
class SetDatetime:
    """Set the controller's clock to the local time."""

    name: ClassVar[CommandName] = CommandName.SET_DATETIME


@dataclass(frozen=True, slots=True)
class ResetExportWatchdog:
    """The limiter off for its window, then back on, confirmed."""

    name: ClassVar[CommandName] = CommandName.RESET_EXPORT_WATCHDOG


@dataclass(frozen=True, slots=True)
class GetTelemetryData:
    """Read the live values once."""

    name: ClassVar[CommandName] = CommandName.GET_TELEMETRY_DATA


@dataclass(frozen=True, slots=True)
class SetControlMode:
    """Select the control mode (and, when given, the phase measurement)."""

    name: ClassVar[CommandName] = CommandName.SET_CONTROL_MODE
    mode: ControlMode
    three_phase_sum: bool | None = None


Request = (
    ExportEnable
    | ExportDisable
    | ExportToggle
    | SetExportLimit
    | GetExportLimit
    | SetDatetime
    | ResetExportWatchdog
    | GetTelemetryData
    | SetControlMode
)
"""Any user command, parsed."""


def parse_request(spec: CommandSpec, data: Mapping[str, object]) -> Request:
    """A registry entry's request from event data, a form or the command line, every
    parameter checked; raises InvalidInputError (a RefusedInput names the rule broken)."""
    values = spec.parse(data)
    match spec.name:
        case CommandName.EXPORT_ENABLE:
            return ExportEnable()
        case CommandName.EXPORT_DISABLE:
            return ExportDisable()
        case CommandName.EXPORT_TOGGLE:
            return ExportToggle()
        case CommandName.SET_EXPORT_LIMIT:
            return SetExportLimit.of(values["limit"], spec.arguments(data)[0])
        case CommandName.GET_EXPORT_LIMIT:
            return GetExportLimit()
        case CommandName.SET_DATETIME:
            return SetDatetime()
        case CommandName.RESET_EXPORT_WATCHDOG:
            return ResetExportWatchdog()
        case CommandName.GET_TELEMETRY_DATA:
            return GetTelemetryData()
        case CommandName.SET_CONTROL_MODE:
            return SetControlMode(values["mode"], values.get("three_phase_sum"))
    raise InvalidInputError(f"{spec.name} is not a command anybody runs by name")
