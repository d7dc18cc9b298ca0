"""The user-level operations: each request carried out by one function, holding the device for
its packets and reporting its feedback.

A command by name (Home Assistant, the panel, the CLI) is parsed once into its typed request
(`commands.requests`) by `run`; `carry_out` hands each kind of request to its one function.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, assert_never

from sec1000.commands import BY_NAME as SPECS
from sec1000.commands import (
    OPTIONS_WRITE,
    CommandName,
    CommandSpec,
    ExportDisable,
    ExportEnable,
    ExportToggle,
    GetExportLimit,
    GetTelemetryData,
    Refusal,
    RefusedInput,
    Request,
    ResetExportWatchdog,
    SetControlMode,
    SetDatetime,
    SetExportLimit,
    parse_request,
    spec_of,
)
from sec1000.common.units import kilowatts
from sec1000.device.link import DeviceLink, Priority
from sec1000.device.sequences import LimitWrite, read_settings
from sec1000.device.telemetry import ZeroPowerFix, read_telemetry
from sec1000.limiter.writes import CLI, POLL, Origin, WriteJob, in_words
from sec1000.operations.limits import LimitRules
from sec1000.operations.ports import Call, CommandResult, Wiring
from sec1000.options import CEILING_MODES, Options
from sec1000.protocol import (
    DATETIME_ACCEPTED,
    STATUS_DATA_LENGTH,
    Command,
    ControlMode,
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

Work = Coroutine[Any, Any, str]  # what a command does once accepted; its message
Build = Callable[[], LimitWrite | None]  # a limiter write, built once the device is held


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
        self.rules = LimitRules(wiring.options)
        self._zero_fix = ZeroPowerFix()
        self._queued_poll: asyncio.Future[str] | None = None

    @property
    def options(self) -> Options:
        """The options in use (owned by the runtime)."""
        return self._wiring.options()

    # -- a command by name (Home Assistant events, the panel, the CLI)

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
        return await self.submit(spec, data, origin, request_id)

    async def submit(
        self,
        spec: CommandSpec,
        data: Mapping[str, object] | None = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Parse a registry entry's data into its request once, and carry it out; bad data
        gives 128 and sends nothing."""
        try:
            request = parse_request(spec, data or {})
        except InvalidInputError as err:
            return self.invalid(Call(spec, origin, request_id), self._own_bound(err, data))
        return await self.carry_out(request, origin, request_id)

    def _own_bound(
        self, err: InvalidInputError, data: Mapping[str, object] | None
    ) -> InvalidInputError:
        """A limit above the device's range is refused against the options' own bound."""
        if isinstance(err, RefusedInput):
            return self.rules.own_bound(err, (data or {}).get("limit"))
        return err

    async def carry_out(
        self, request: Request, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Carry out a parsed request by its one function."""
        call = Call(SPECS[request.name], origin, request_id)
        match request:
            case ExportEnable():
                return await self.perform(call, self._write(call, self._maximum))
            case ExportDisable():
                return await self.perform(call, self._write(call, self._minimum))
            case ExportToggle():
                return await self._toggle(origin, request_id)
            case SetExportLimit():
                return await self._set_limit(call, request)
            case GetExportLimit():
                return await self.perform(call, self._read_settings())
            case SetDatetime():
                return await self.perform(call, self._set_clock(self._now()))
            case ResetExportWatchdog():
                return await self.perform(call, self._wiring.reset_watchdog(origin.tag))
            case GetTelemetryData():
                return await self._telemetry(call)
            case SetControlMode():
                return await self._set_mode(call, request)
            case _:
                assert_never(request)

    # -- each command under its usual name (the runtime, the policy, the tests)

    async def export_enable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured maximum export limit."""
        return await self.carry_out(ExportEnable(), origin, request_id)

    async def export_disable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured minimum export limit."""
        return await self.carry_out(ExportDisable(), origin, request_id)

    async def export_toggle(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Enable export when it is off, disable it when it is on (reading the limit if unknown)."""
        return await self.carry_out(ExportToggle(), origin, request_id)

    async def set_export_limit(
        self, limit: object, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write any export limit from 0 kW up to the maximum export limit (10 W steps); a
        limit above the maximum is refused with 128, one rounded to 10 W steps gives 129."""
        return await self.run(CommandName.SET_EXPORT_LIMIT, {"limit": limit}, origin, request_id)

    async def get_export_limit(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Read the export limit, control mode and capacity back from the device."""
        return await self.carry_out(GetExportLimit(), origin, request_id)

    async def set_control_mode(
        self,
        mode: object,
        three_phase_sum: object = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Select the control mode (and phase measurement) by rewriting the current limit."""
        data = {"mode": mode, "three_phase_sum": three_phase_sum}
        return await self.run(CommandName.SET_CONTROL_MODE, data, origin, request_id)

    async def set_datetime(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Send the current local time."""
        return await self.carry_out(SetDatetime(), origin, request_id)

    async def reset_export_watchdog(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Turn every mode off, wait 5 s, restore the mode, wait 1 s, write the limit again."""
        return await self.carry_out(ResetExportWatchdog(), origin, request_id)

    async def get_telemetry_data(
        self, origin: Origin = POLL, request_id: str | None = None
    ) -> CommandResult:
        """Read telemetry (one retry after the gap on a short answer) with the zero-power fix.

        A poll waits behind every user command, and joins a poll already queued.
        """
        return await self.carry_out(GetTelemetryData(), origin, request_id)

    # -- the runner

    async def perform(self, call: Call, work: Work, *, corrected: bool = False) -> CommandResult:
        """Run one command's work: feedback 0 while waiting, then the outcome, logged and
        recorded. Work refused before it starts is closed, never run."""
        name = call.spec.feedback
        refusal = self._wiring.refuse_writes() if call.spec.writes else None
        if refusal:
            work.close()
            return self.finish(call, int(Feedback.GENERAL_ERROR), refusal)
        polling = call.origin == POLL
        if name is not None and not polling:  # a poll's feedback changes with its result only
            self.state.set_feedback(name, int(Feedback.WAITING), call.spec.waiting)
        told = call.spec.writes and not polling
        if told:
            self._wiring.accepted(call.spec.name.value, str(call.origin))
        refused: Refusal | None = None
        try:
            message = await work
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

    async def _write(
        self,
        call: Call,
        build: Build,
        *,
        feedback: int = int(Feedback.OK),
        unchanged: str = "the controller already holds it: nothing written",
    ) -> str:
        """Write what `build` gives once the device is held (checked against the ceiling
        last), read back, report to the guard; a write not taken is a GeneralError in words."""
        job = WriteJob(call.origin.tag, call.spec.name.value, feedback=feedback)
        written = await self._wiring.writer.write(job, functools.partial(self._checked, build))
        if written is None:
            return unchanged
        if not written.verified:
            raise GeneralError(written.message)
        return written.message

    def _checked(self, build: Build) -> LimitWrite | None:
        return self.rules.under_ceiling(build())

    def _maximum(self) -> LimitWrite:
        return self.rules.limit_write(self.options.max_export_limit)

    def _minimum(self) -> LimitWrite:
        return self.rules.limit_write(self.options.min_export_limit)

    def _chosen(self, limit_kw: float) -> LimitWrite:
        """A chosen limit, checked again against the options of the moment it is written."""
        return self.rules.limit_write(self.rules.within_maximum(limit_kw))

    def _in_mode(self, mode: ControlMode, phase_sum: bool) -> LimitWrite:
        limit_w = self._wiring.guard.wanted_under(self.options).export_limit_w
        return self.rules.limit_write(
            kilowatts(limit_w), mode, PhaseMeasurement.from_sum(phase_sum)
        )

    def _with_options(self) -> LimitWrite | None:
        return self._wiring.guard.options_write(self.options)

    # -- one function per request

    async def _toggle(self, origin: Origin, request_id: str | None) -> CommandResult:
        if self.state.exporting is None:
            await self.get_export_limit(origin=origin, request_id=request_id)
        if self.state.exporting is False:
            return await self.export_enable(origin=origin, request_id=request_id)
        return await self.export_disable(origin=origin, request_id=request_id)

    async def _set_limit(self, call: Call, request: SetExportLimit) -> CommandResult:
        try:
            limit_kw = self.rules.within_maximum(request.limit_kw, request.typed)
        except RefusedInput as err:
            return self.invalid(call, err)
        feedback = int(Feedback.OK | (Feedback.INVALID_INPUT if request.rounded else 0))
        return await self.perform(
            call,
            self._limit_written(call, limit_kw, feedback, request.rounded),
            corrected=request.rounded,
        )

    async def _limit_written(
        self, call: Call, limit_kw: float, feedback: int, rounded: bool
    ) -> str:
        text = await self._write(call, functools.partial(self._chosen, limit_kw), feedback=feedback)
        if rounded:
            text += f" (rounded to {limit_kw:.2f} kW: the controller takes 10 W steps)"
        return text

    async def _read_settings(self) -> str:
        async with self.link.session() as session:
            settings = await read_settings(session)
        self.state.settings_learned(settings)
        self._wiring.guard.observe(settings)  # a difference is looked at by the guard
        return (
            f"export limit {kilowatts(settings.export_limit_w):.2f} kW, "
            f"mode {settings.mode.option}, "
            f"total capacity {kilowatts(settings.total_capacity_w):.2f} kW"
        )

    async def _set_mode(self, call: Call, request: SetControlMode) -> CommandResult:
        chosen = request.mode
        phase_sum = (
            self.options.three_phase_sum
            if request.three_phase_sum is None
            else request.three_phase_sum
        )
        if self.options.ceiling_w is not None and chosen.option not in CEILING_MODES:
            return self.invalid(call, InvalidInputError(self.rules.mode_refusal(chosen)))
        build = functools.partial(self._in_mode, chosen, phase_sum)
        result = await self.perform(call, self._write(call, build))
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
        unchanged = (
            f"the controller already holds {in_words(wanted.export_limit_w, wanted.mode)}: "
            "nothing written"
        )
        return await self.perform(call, self._write(call, self._with_options, unchanged=unchanged))

    async def _set_clock(self, when: dt.datetime) -> str:
        async with self.link.session() as session:
            frame = await session.exchange(
                set_datetime_request(when), Command.SET_DATETIME, STATUS_DATA_LENGTH
            )
        decode_status(frame, DATETIME_ACCEPTED)
        return f"device clock set to {when:%Y-%m-%d %H:%M:%S}"

    async def _telemetry(self, call: Call) -> CommandResult:
        work = self._shared_poll() if call.origin == POLL else self._read_telemetry()
        result = await self.perform(call, work)
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
