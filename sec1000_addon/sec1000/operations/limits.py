"""The rules every limiter write meets: the maximum export limit, the export ceiling, and the
write itself as the options of the moment make it."""

from __future__ import annotations

from collections.abc import Callable

from sec1000.commands import Refusal, RefusedInput, Rule, typed_text
from sec1000.common.units import kilowatts, watts
from sec1000.device.sequences import LimitWrite
from sec1000.options import CEILING_MODES, Options, ceiling_mode_refusal
from sec1000.protocol import ControlMode, InvalidInputError, PhaseMeasurement

MODE_OFF = "the mode Off (deactivated) would export without any limit, above"


class LimitRules:
    """The options' limits, as each write is checked against them and built from them."""

    def __init__(self, options: Callable[[], Options]) -> None:
        self._options = options

    def limit_write(
        self,
        limit_kw: float,
        mode: ControlMode | None = None,
        phase: PhaseMeasurement | None = None,
    ) -> LimitWrite:
        """A write of `limit_kw` with the configured capacity, and mode and phase unless given."""
        options = self._options()
        return LimitWrite(
            watts(options.total_capacity),
            watts(limit_kw),
            options.control_mode if mode is None else mode,
            options.phase_measurement if phase is None else phase,
        )

    def under_ceiling(self, write: LimitWrite | None) -> LimitWrite | None:
        """The write, or InvalidInputError when it breaks the export ceiling (above it, or the
        limiter off): the last check before anything is sent, whoever asked."""
        ceiling_w = self._options().ceiling_w
        if write is None or ceiling_w is None:
            return write
        if write.mode.option not in CEILING_MODES:
            raise InvalidInputError(self.mode_refusal(write.mode))
        if write.export_limit_w > ceiling_w:
            limit = f"{kilowatts(write.export_limit_w):g} kW is above"
            raise InvalidInputError(self.ceiling_words(limit))
        return write

    def mode_refusal(self, mode: ControlMode) -> str:
        """Why a mode is refused while a ceiling is set, in words."""
        if mode is ControlMode.DEACTIVATED:
            return self.ceiling_words(MODE_OFF)
        refusal = ceiling_mode_refusal(self._options().export_ceiling_kw, mode.option)
        return f"refused: {refusal}; nothing was sent"

    def ceiling_words(self, what: str) -> str:
        """ "refused: <what> the export ceiling of X kW …"."""
        return (
            f"refused: {what} the export ceiling of {self._options().export_ceiling_kw:g} kW "
            "(the grid contract); nothing was sent"
        )

    def within_maximum(self, limit_kw: float, typed: object = None) -> float:
        """The limit, or RefusedInput when it is above the export ceiling or the maximum
        export limit (never clamped: a user who typed too much gets words, nothing is sent)."""
        options = self._options()
        shown = typed_text(f"{limit_kw:g}" if typed is None else typed)
        ceiling = options.export_ceiling_kw
        if ceiling and limit_kw > ceiling:
            raise RefusedInput(
                self.ceiling_words(f"{limit_kw:g} kW is above"),
                Refusal(Rule.ABOVE_CEILING, shown, limit_kw, ceiling),
            )
        maximum = options.max_export_limit
        if limit_kw > maximum:
            raise RefusedInput(
                f"refused: {limit_kw:g} kW is above the maximum export limit of {maximum:g} kW "
                "(the options); nothing was sent",
                Refusal(Rule.ABOVE_MAXIMUM, shown, limit_kw, maximum),
            )
        return limit_kw

    def own_bound(self, err: RefusedInput, typed: object) -> RefusedInput:
        """A limit refused as above the device's 100 kW, its rule named against the options'
        own maximum or ceiling instead (always lower: the options stay within 100 kW)."""
        if err.refusal.rule is not Rule.ABOVE_MAXIMUM or err.refusal.value is None:
            return err
        try:
            self.within_maximum(err.refusal.value, typed)
        except RefusedInput as own:
            return RefusedInput(str(err), own.refusal)
        return err
