"""The wanted export state: what the user last asked the controller to hold, kept in wanted.json.

It survives restarts (atomic writes in the data dir). `basis` remembers the options it was
derived from, so options changed while the add-on was stopped (the Configuration tab restarts
it) are noticed at start-up and written to the controller.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sec1000.common.files import FileWriter, remove_durably, write_atomic
from sec1000.common.units import watts
from sec1000.device.sequences import LimitWrite
from sec1000.options import Options
from sec1000.protocol import ControlMode, ExportSettings, PhaseMeasurement

_LOGGER = logging.getLogger(__name__)

WANTED_NAME = "wanted.json"
# What a controller can hold: a limit of 0-100 kW, a capacity within the option's 2000 kW.
MAX_LIMIT_W = 100_000
MAX_CAPACITY_W = 2_000_000
# The options that reach the controller: a change of any of them is written to it.
CONTROLLER_KEYS = (
    "min_export_limit",
    "max_export_limit",
    "total_capacity",
    "export_limit_control_mode",
    "three_phase_sum",
)


def basis_of(options: Options) -> dict[str, Any]:
    """The options' part that reaches the controller."""
    return {key: getattr(options, key) for key in CONTROLLER_KEYS}


@dataclass(frozen=True, slots=True)
class Wanted:
    """Limit, mode, capacity and phase measurement the controller should hold."""

    export_limit_w: int
    mode: str
    total_capacity_w: int
    three_phase_sum: bool
    basis: Mapping[str, Any] = field(default_factory=dict)

    @property
    def control_mode(self) -> ControlMode:
        """The mode as the protocol's enum."""
        return ControlMode.from_option(self.mode)

    def write(self) -> LimitWrite:
        """The 0x42 write and mode switches that put this state on the controller."""
        return LimitWrite(
            self.total_capacity_w,
            self.export_limit_w,
            self.control_mode,
            PhaseMeasurement.from_sum(self.three_phase_sum),
        )

    def held_by(self, settings: ExportSettings) -> bool:
        """True when the controller's 0x43 settings are this state."""
        return self.write().held_by(settings)

    @classmethod
    def of(cls, write: LimitWrite, options: Options) -> Wanted:
        """The state a write asks for, with the options it was made under."""
        return cls(
            write.export_limit_w,
            write.mode.option,
            write.total_capacity_w,
            write.phase is PhaseMeasurement.SUM_OF_PHASES,
            basis_of(options),
        )

    def under(self, options: Options) -> Wanted:
        """This state under new options: new capacity, mode and phase; a limit set as "export
        off" or "export on" follows the new minimum or maximum; never above the maximum."""
        old = self.basis
        limit_w = self.export_limit_w
        if old and limit_w == watts(float(old.get("min_export_limit", -1))):
            limit_w = watts(options.min_export_limit)
        elif old and limit_w == watts(float(old.get("max_export_limit", -1))):
            limit_w = watts(options.max_export_limit)
        capacity_w = watts(options.total_capacity)
        return replace(
            self,
            export_limit_w=min(limit_w, capacity_w, watts(options.max_export_limit)),
            mode=options.export_limit_control_mode,
            total_capacity_w=capacity_w,
            three_phase_sum=options.three_phase_sum,
            basis=basis_of(options),
        )


class WantedStore:
    """wanted.json in the data dir, and the write in flight it records (`writing`): saved
    before a write that may change the wanted state is sent, cleared once that write is
    reported. A kill between the write and the save leaves it; a start finds it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / WANTED_NAME
        self.writing: LimitWrite | None = None  # as loaded

    def load(self) -> Wanted | None:
        """The stored state; None when there is none or it is damaged (then it is set anew)."""
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
            wanted = Wanted(
                export_limit_w=_watts_within(data["export_limit_w"], MAX_LIMIT_W),
                mode=ControlMode.from_option(str(data["mode"])).option,
                total_capacity_w=_watts_within(data["total_capacity_w"], MAX_CAPACITY_W),
                three_phase_sum=_flag(data["three_phase_sum"]),
                basis=dict(data.get("basis") or {}),
            )
            self.writing = _in_flight(data.get("writing"))
        except FileNotFoundError:
            return None
        except Exception as err:  # damaged: the controller's state is read and kept anew
            _LOGGER.error(
                "the wanted export state %s is damaged (%s); it is set anew from the controller",
                self.path,
                err,
            )
            return None
        return wanted

    def save(self, wanted: Wanted, writing: LimitWrite | None = None) -> None:
        """Write it durably (atomic), with the write in flight if there is one; raises OSError
        when it cannot (the state stays in memory)."""
        data = asdict(wanted)
        if writing is not None:
            data["writing"] = {
                "export_limit_w": writing.export_limit_w,
                "mode": writing.mode.option,
                "total_capacity_w": writing.total_capacity_w,
                "three_phase_sum": writing.phase is PhaseMeasurement.SUM_OF_PHASES,
            }
        write_atomic(self.path, json.dumps(data, default=dict))


class WantedFile:
    """wanted.json as the guard keeps it: each new wanted state saved off the event loop, in
    order; a write that may change it recorded as in flight, durably, before it is sent; a
    failure told in words (and the file removed if it can be, so that a restart keeps the
    controller's own settings rather than take an older wanted state for the truth)."""

    def __init__(self, store: WantedStore, told: Callable[[str], None]) -> None:
        self.store = store
        self.error: str | None = None  # why wanted.json could not be written, if it could not
        self.left_in_flight = store.writing  # the write in flight when the last run ended
        self._told = told  # a failure in words, on the event loop
        self._writing: LimitWrite | None = None  # this run's write in flight, as recorded
        self._writer = FileWriter(on_error=self._failed)

    def save(self, wanted: Wanted) -> None:
        """Save this wanted state in the background (with the write in flight, if any)."""
        writing = self._writing
        self._writer.submit(lambda: self._save(wanted, writing))

    async def intend(self, wanted: Wanted, write: LimitWrite) -> None:
        """Record `write` as in flight next to `wanted`, on disk before this returns."""
        self._writing = write
        self._writer.submit(lambda: self._save(wanted, write))
        try:
            await self._writer.flush()
        except BaseException:  # cancelled before anything was sent: nothing is in flight
            self._writing = None
            raise

    def reported(self) -> bool:
        """The write in flight ended (its report came): True when one was recorded, and the
        file is to be saved without it."""
        recorded, self._writing = self._writing is not None, None
        return recorded

    async def flush(self) -> None:
        """Wait until every save asked so far is done."""
        await self._writer.flush()

    def _save(self, wanted: Wanted, writing: LimitWrite | None) -> None:
        """In the writer's thread."""
        try:
            self.store.save(wanted, writing)
        except OSError:
            with contextlib.suppress(OSError):
                remove_durably(self.store.path)
            raise
        if self.error is not None:
            _LOGGER.info("export guard: the wanted export state is saved again")
            self.error = None  # shown again from the guard's next status

    def _failed(self, err: OSError) -> None:
        self.error = (
            f"cannot save the wanted export state to {self.store.path}: "
            f"{err.strerror or err}; after a restart the controller's own settings are kept"
        )
        _LOGGER.error("export guard: %s", self.error)
        self._told(self.error)


def _in_flight(raw: object) -> LimitWrite | None:
    """The write in flight as recorded; None when there is none, or it is damaged (a start
    then takes any difference for a drift)."""
    if not isinstance(raw, dict):
        return None
    try:
        return LimitWrite(
            _watts_within(raw["total_capacity_w"], MAX_CAPACITY_W),
            _watts_within(raw["export_limit_w"], MAX_LIMIT_W),
            ControlMode.from_option(str(raw["mode"])),
            PhaseMeasurement.from_sum(_flag(raw["three_phase_sum"])),
        )
    except (KeyError, ValueError):
        return None


def _watts_within(raw: object, maximum: int) -> int:
    """Whole watts from the file, 0 to `maximum`: anything else is damage, never clamped."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= maximum:
        raise ValueError(f"{raw!r} is not a power of 0 to {maximum} W")
    return raw


def _flag(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not true or false")
    return raw
