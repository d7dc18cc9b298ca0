"""The rules between options: what no single option's bounds can say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sec1000.common.units import watts
from sec1000.options.kinds import ceiling_watts
from sec1000.protocol import ControlMode

# With a ceiling only the mode "value" keeps the export under a limit the add-on checks:
# deactivated limits nothing, DRED and RCR follow an outside signal the meter check cannot judge.
CEILING_MODES = (ControlMode.VALUE.option,)


def cross_check(values: Mapping[str, Any]) -> dict[str, str]:
    """Every rule the values break, by the key to fix."""
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
