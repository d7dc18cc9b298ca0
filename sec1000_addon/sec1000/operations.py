"""The user-level operations: each holds the device for its packets and reports its feedback.

`run` takes a command by name (Home Assistant, the panel, the CLI): the registry in
`commands` checks its parameters; the method of the same name does the work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sec1000.commands import BY_NAME as SPECS
from sec1000.commands import (
    COMMANDS,
    OPTIONS_WRITE,
    CommandName,
    CommandSpec,
    Refusal,
    RefusedInput,
    Rule,
    spec_of,
    typed_text,
)
from sec1000.common.numbers import parse_number
from sec1000.common.units import kilowatts, watts
from sec1000.device.link import DeviceLink, Priority
from sec1000.device.sequences import LimitWrite, read_settings
from sec1000.device.telemetry import ZeroPowerFix, read_telemetry
from sec1000.limiter.wanted import Wanted
from sec1000.limiter.writes import CLI, POLL, Origin, WriteJob, Writer, in_words
from sec1000.options import CEILING_MODES, Options, ceiling_mode_refusal
from sec1000.protocol import (
    DATETIME_ACCEPTED,
    STATUS_DATA_LENGTH,
    Command,
    ControlMode,
    ExportSettings,
    Feedback,
    GeneralError,
    InvalidInputError,
    PhaseMeasurement,
    Sec1000Error,
    decode_status,
    describe_feedback,
    set_datetime_request,
)
from sec1000.state import CommandRecord, StateModel

_LOGGER = logging.getLogger(__name__)

MODE_OFF = "the mode Off (deactivated) would export without any limit, above"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended."""

    command: str
    feedback: int
    message: str
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        """True for 1 (OK) and 129 (OK with corrected input)."""
        return bool(self.feedback & Feedback.OK)


@dataclass(frozen=True, slots=True)
class Call:
    """One run of a command: what runs, for whom."""

    spec: CommandSpec
    origin: Origin
    request_id: str | None = None


class GuardPort(Protocol):
    """What the operations ask of the export guard."""

    def wanted_under(self, options: Options) -> Wanted:
        """The wanted state under these options."""

    def options_write(self, options: Options) -> LimitWrite | None:
        """The write that puts these options on the controller; None when it holds them."""

    def observe(self, settings: ExportSettings) -> None:
        """Compare a read-back with the wanted state."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the runtime hands the operations: the options, the watchdog's two entry points and
    the export guard."""

    options: Callable[[], Options]
    # Save changed option keys (the mode after set_control_mode); the runtime owns the options.
    update_options: Callable[[Mapping[str, Any]], Awaitable[None]]
    # Why limiter writes are refused right now (a watchdog restore pending), or None.
    refuse_writes: Callable[[], str | None]
    # The guarded reset export watchdog: returns its message or raises a Sec1000Error.
    reset_watchdog: Callable[[str], Awaitable[str]]
    guard: GuardPort
    writer: Writer  # every limiter write, built once it holds the device
    # Told of a writing command accepted before its first packet (command, source), and of one
    # that then failed: the price policy's override starts at once, and ends with a failure.
    accepted: Callable[[str, str], None] = lambda command, source: None
    failed: Callable[[str, str], None] = lambda command, source: None


Action = Callable[[], Awaitable[str]]


class Operations:
    """Every operation a user knows, run through the one device link."""

    def __init__(
        self,
        link: DeviceLink,
        state: StateModel,
        wiring: Wiring,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.link = link
        self.state = state
        self._wiring = wiring
        self._now = now
        self._zero_fix = ZeroPowerFix()
        self._queued_poll: asyncio.Future[str] | None = None

    @property
    def options(self) -> Options:
        """The options in use (owned by the runtime)."""
        return self._wiring.options()

    # -- dispatch by name (Home Assistant events, the panel, the CLI)

    async def run(
        self,
        command: object,
        data: Mapping[str, object] | None = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Run a command by name; an unknown command or bad data gives 128 and sends nothing."""
        spec = spec_of(command)
        if spec is None:
            known = ", ".join(SPECS)
            shown = repr(command) if len(repr(command)) <= 40 else repr(command)[:37] + "…"
            message = f"unknown command {shown}; known commands: {known}"
            _LOGGER.warning("%s from %s", message, origin)
            self._record(
                str(command)[:40], origin, int(Feedback.INVALID_INPUT), message, request_id
            )
            return CommandResult(
                str(command)[:40], int(Feedback.INVALID_INPUT), message, request_id
            )
        method: Callable[..., Awaitable[CommandResult]] = getattr(self, spec.name.value)
        return await method(*spec.arguments(data or {}), origin=origin, request_id=request_id)

    # -- the runner

    async def perform(
        self, call: Call, action: Action, *, corrected: bool = False
    ) -> CommandResult:
        """Run one command: feedback 0 while waiting, then the outcome, logged and recorded."""
        name = call.spec.feedback
        refusal = self._wiring.refuse_writes() if call.spec.writes else None
        if refusal:
            return self.finish(call, int(Feedback.GENERAL_ERROR), refusal)
        polling = call.origin == POLL
        if name is not None and not polling:  # a poll's feedback changes with its result only
            self.state.set_feedback(name, int(Feedback.WAITING), call.spec.waiting)
        told = call.spec.writes and not polling
        if told:
            self._wiring.accepted(call.spec.name.value, str(call.origin))
        refused: Refusal | None = None
        try:
            message = await action()
            feedback = int(Feedback.OK | (Feedback.INVALID_INPUT if corrected else 0))
        except Sec1000Error as err:
            feedback, message = int(err.feedback), str(err)
            refused = err.refusal if isinstance(err, RefusedInput) else None
        except Exception as err:
            _LOGGER.exception("%s failed unexpectedly", call.spec.name)
            feedback, message = int(Feedback.UNKNOWN_ERROR), f"unexpected error: {err}"
        except BaseException:
            if name is not None:
                self.state.set_feedback(name, int(Feedback.GENERAL_ERROR), "cancelled")
            if told:
                self._wiring.failed(call.spec.name.value, str(call.origin))
            raise
        if told and not feedback & Feedback.OK:
            self._wiring.failed(call.spec.name.value, str(call.origin))
        return self.finish(call, feedback, message, refused)

    def refuse(self, command: CommandName, message: str, origin: Origin) -> CommandResult:
        """A request that means nothing (an adapter's junk payload): 128 in words, nothing sent."""
        return self.invalid(Call(SPECS[command], origin), InvalidInputError(message))

    def invalid(self, call: Call, error: InvalidInputError) -> CommandResult:
        """Bad input: 128, nothing sent."""
        refusal = error.refusal if isinstance(error, RefusedInput) else None
        return self.finish(call, int(Feedback.INVALID_INPUT), str(error), refusal)

    def finish(
        self, call: Call, feedback: int, message: str, refusal: Refusal | None = None
    ) -> CommandResult:
        """Record a command's end: feedback sensor, command log, log line; return the result
        (a refused input's rule goes into the log's record, for words that name it)."""
        command = call.spec.name.value
        if not message:
            message = describe_feedback(feedback)
        if call.spec.feedback is not None:
            self.state.set_feedback(call.spec.feedback, feedback, message)
        if call.origin != POLL:
            log = _LOGGER.info if feedback & Feedback.OK else _LOGGER.warning
            log("%s from %s: %s (feedback %d)", command, call.origin, message, feedback)
            self._record(command, call.origin, feedback, message, call.request_id, refusal)
        return CommandResult(command, feedback, message, call.request_id)

    def _record(
        self,
        command: str,
        origin: Origin,
        feedback: int,
        message: str,
        request_id: str | None,
        refusal: Refusal | None = None,
    ) -> None:
        self.state.command_done(
            CommandRecord(time.time(), str(origin), command, feedback, message, request_id, refusal)
        )

    # -- the limiter writes: each built once it holds the device, read back (0x43), reported

    def _limit_write(
        self,
        limit_kw: float,
        mode: ControlMode | None = None,
        phase: PhaseMeasurement | None = None,
    ) -> LimitWrite:
        """A write of `limit_kw` with the configured capacity, and mode and phase unless given."""
        options = self.options
        return LimitWrite(
            watts(options.total_capacity),
            watts(limit_kw),
            options.control_mode if mode is None else mode,
            options.phase_measurement if phase is None else phase,
        )

    async def _write(
        self,
        call: Call,
        build: Callable[[], LimitWrite | None],
        *,
        feedback: int = int(Feedback.OK),
        unchanged: str = "the controller already holds it: nothing written",
    ) -> str:
        """Write what `build` gives once the device is held, read back, report to the guard; a
        write not taken is a GeneralError in words."""
        job = WriteJob(call.origin.tag, call.spec.name.value, feedback=feedback)
        written = await self._wiring.writer.write(job, lambda: self._under_ceiling(build()))
        if written is None:
            return unchanged
        if not written.verified:
            raise GeneralError(written.message)
        return written.message

    def _under_ceiling(self, write: LimitWrite | None) -> LimitWrite | None:
        """The write, or InvalidInputError when it breaks the export ceiling (above it, or the
        limiter off): the last check before anything is sent, whoever asked."""
        options = self.options
        ceiling_w = options.ceiling_w
        if write is None or ceiling_w is None:
            return write
        if write.mode.option not in CEILING_MODES:
            raise InvalidInputError(self._mode_refusal(write.mode))
        if write.export_limit_w > ceiling_w:
            limit = f"{kilowatts(write.export_limit_w):g} kW is above"
            raise InvalidInputError(self._ceiling_words(limit))
        return write

    def _mode_refusal(self, mode: ControlMode) -> str:
        if mode is ControlMode.DEACTIVATED:
            return self._ceiling_words(MODE_OFF)
        refusal = ceiling_mode_refusal(self.options.export_ceiling_kw, mode.option)
        return f"refused: {refusal}; nothing was sent"

    def _ceiling_words(self, what: str) -> str:
        return (
            f"refused: {what} the export ceiling of {self.options.export_ceiling_kw:g} kW "
            "(the grid contract); nothing was sent"
        )

    def _within_maximum(self, limit_kw: float, typed: object = None) -> float:
        """The limit, or RefusedInput when it is above the export ceiling or the maximum
        export limit (never clamped: a user who typed too much gets words, nothing is sent)."""
        shown = typed_text(f"{limit_kw:g}" if typed is None else typed)
        ceiling = self.options.export_ceiling_kw
        if ceiling and limit_kw > ceiling:
            raise RefusedInput(
                self._ceiling_words(f"{limit_kw:g} kW is above"),
                Refusal(Rule.ABOVE_CEILING, shown, limit_kw, ceiling),
            )
        maximum = self.options.max_export_limit
        if limit_kw > maximum:
            raise RefusedInput(
                f"refused: {limit_kw:g} kW is above the maximum export limit of {maximum:g} kW "
                "(the options); nothing was sent",
                Refusal(Rule.ABOVE_MAXIMUM, shown, limit_kw, maximum),
            )
        return limit_kw

    def _above_own_bound(self, err: RefusedInput, limit_kw: float, typed: object) -> RefusedInput:
        """The refusal of a limit above the device's range, its rule named against the options'
        own maximum or ceiling when that is lower (it always is: the options stay in 100 kW)."""
        try:
            self._within_maximum(limit_kw, typed)
        except RefusedInput as own:
            return RefusedInput(str(err), own.refusal)
        return err

    # -- operations (one per registry entry, named like it)

    async def export_enable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured maximum export limit."""
        call = Call(SPECS[CommandName.EXPORT_ENABLE], origin, request_id)
        return await self.perform(
            call,
            lambda: self._write(call, lambda: self._limit_write(self.options.max_export_limit)),
        )

    async def export_disable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured minimum export limit."""
        call = Call(SPECS[CommandName.EXPORT_DISABLE], origin, request_id)
        return await self.perform(
            call,
            lambda: self._write(call, lambda: self._limit_write(self.options.min_export_limit)),
        )

    async def export_toggle(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Enable export when it is off, disable it when it is on (reading the limit if unknown)."""
        if self.state.exporting is None:
            await self.get_export_limit(origin=origin, request_id=request_id)
        if self.state.exporting is False:
            return await self.export_enable(origin=origin, request_id=request_id)
        return await self.export_disable(origin=origin, request_id=request_id)

    async def set_export_limit(
        self, limit: object, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write any export limit from 0 kW up to the maximum export limit (10 W steps); a
        limit above the maximum is refused with 128, one rounded to 10 W steps gives 129."""
        call = Call(SPECS[CommandName.SET_EXPORT_LIMIT], origin, request_id)
        try:
            limit_kw = self._within_maximum(call.spec.parse({"limit": limit})["limit"], limit)
        except RefusedInput as err:
            if err.refusal.rule is Rule.ABOVE_MAXIMUM and err.refusal.value is not None:
                # Above the device's 100 kW: the user's own maximum (or ceiling) is the rule.
                err = self._above_own_bound(err, err.refusal.value, limit)
            return self.invalid(call, err)
        except InvalidInputError as err:
            return self.invalid(call, err)
        rounded = abs(parse_number(limit) - limit_kw) > 1e-9
        feedback = int(Feedback.OK | (Feedback.INVALID_INPUT if rounded else 0))

        async def action() -> str:
            text = await self._write(
                call,
                lambda: self._limit_write(self._within_maximum(limit_kw)),
                feedback=feedback,
            )
            if rounded:
                text += f" (rounded to {limit_kw:.2f} kW: the controller takes 10 W steps)"
            return text

        return await self.perform(call, action, corrected=rounded)

    async def get_export_limit(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Read the export limit, control mode and capacity back from the device."""
        call = Call(SPECS[CommandName.GET_EXPORT_LIMIT], origin, request_id)

        async def action() -> str:
            async with self.link.session() as session:
                settings = await read_settings(session)
            self.state.settings_learned(settings)
            self._wiring.guard.observe(settings)  # a difference is looked at by the guard
            return (
                f"export limit {kilowatts(settings.export_limit_w):.2f} kW, "
                f"mode {settings.mode.option}, "
                f"total capacity {kilowatts(settings.total_capacity_w):.2f} kW"
            )

        return await self.perform(call, action)

    async def set_control_mode(
        self,
        mode: object,
        three_phase_sum: object = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Select the control mode (and phase measurement) by rewriting the current limit."""
        call = Call(SPECS[CommandName.SET_CONTROL_MODE], origin, request_id)
        try:
            args = call.spec.parse({"mode": mode, "three_phase_sum": three_phase_sum})
        except InvalidInputError as err:
            return self.invalid(call, err)
        chosen: ControlMode = args["mode"]
        phase_sum: bool = args.get("three_phase_sum", self.options.three_phase_sum)
        if self.options.ceiling_w is not None and chosen.option not in CEILING_MODES:
            return self.invalid(call, InvalidInputError(self._mode_refusal(chosen)))

        def build() -> LimitWrite:
            limit_w = self._wiring.guard.wanted_under(self.options).export_limit_w
            return self._limit_write(
                kilowatts(limit_w), chosen, PhaseMeasurement.from_sum(phase_sum)
            )

        result = await self.perform(call, lambda: self._write(call, build))
        if result.ok:
            await self._wiring.update_options(
                {"export_limit_control_mode": chosen.option, "three_phase_sum": phase_sum}
            )
        return result

    async def apply_options(self, origin: Origin) -> CommandResult:
        """Write the options that reach the controller (limits, capacity, mode, phase) with the
        wanted limit, verified, built once the device is held; nothing when the controller holds
        them already. Reported as a control mode change when the mode or phase changed."""
        options = self.options
        wanted = self._wiring.guard.wanted_under(options)
        mode_changed = self.state.control_mode not in (None, options.control_mode)
        spec = SPECS[CommandName.SET_CONTROL_MODE] if mode_changed else OPTIONS_WRITE
        call = Call(spec, origin)
        unchanged = f"the controller already holds {in_words(wanted.export_limit_w, wanted.mode)}: nothing written"
        return await self.perform(
            call,
            lambda: self._write(
                call, lambda: self._wiring.guard.options_write(self.options), unchanged=unchanged
            ),
        )

    async def set_datetime(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Send the current local time."""
        call = Call(SPECS[CommandName.SET_DATETIME], origin, request_id)
        when = self._now()

        async def action() -> str:
            async with self.link.session() as session:
                frame = await session.exchange(
                    set_datetime_request(when), Command.SET_DATETIME, STATUS_DATA_LENGTH
                )
            decode_status(frame, DATETIME_ACCEPTED)
            return f"device clock set to {when:%Y-%m-%d %H:%M:%S}"

        return await self.perform(call, action)

    async def reset_export_watchdog(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Turn every mode off, wait 5 s, restore the mode, wait 1 s, write the limit again."""
        call = Call(SPECS[CommandName.RESET_EXPORT_WATCHDOG], origin, request_id)
        return await self.perform(call, lambda: self._wiring.reset_watchdog(origin.tag))

    async def get_telemetry_data(
        self, origin: Origin = POLL, request_id: str | None = None
    ) -> CommandResult:
        """Read telemetry (one retry after the gap on a short answer) with the zero-power fix.

        A poll waits behind every user command, and joins a poll already queued.
        """
        call = Call(SPECS[CommandName.GET_TELEMETRY_DATA], origin, request_id)
        action = self._shared_poll if origin == POLL else self._read_telemetry
        result = await self.perform(call, action)
        if not result.ok:
            self.state.telemetry_failed()
        return result

    async def _shared_poll(self) -> str:
        if self._queued_poll is None:
            task = asyncio.ensure_future(self._read_telemetry(Priority.POLL))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._queued_poll = task
        return await asyncio.shield(self._queued_poll)

    async def _read_telemetry(self, priority: Priority = Priority.USER) -> str:
        try:
            async with self.link.session(priority) as session:
                if priority is Priority.POLL:
                    self._queued_poll = None  # from now on a new poll queues behind this one
                telemetry = await read_telemetry(session)
        finally:
            if priority is Priority.POLL:
                self._queued_poll = None
        self.state.telemetry_read(self._zero_fix.apply(telemetry).values())
        return "telemetry read"

    async def test_connection(self, host: str, port: int) -> CommandResult:
        """Read telemetry once from another address (the setup form), through the one link."""
        try:
            async with self.link.session() as session:
                telemetry = await read_telemetry(session, (host, port), retry_short=False)
        except Sec1000Error as err:
            return CommandResult("test_connection", int(err.feedback), str(err))
        values = telemetry.values()
        message = (
            f"the controller at {host}:{port} answered: grid {values['meters_power']} kW, "
            f"inverters {values['inverters_power']} kW"
        )
        return CommandResult("test_connection", int(Feedback.OK), message)


def _check_registry() -> None:
    """Every registry entry has its operation (a missing one fails at import, not at a press:
    a programming error, never a device's feedback)."""
    for spec in COMMANDS:
        if not callable(getattr(Operations, spec.name.value, None)):
            raise TypeError(f"command {spec.name} has no operation on Operations")


_check_registry()
