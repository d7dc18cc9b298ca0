"""The user-level operations: validation, device sequences, feedback, and the state they teach."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sec1000.link import DeviceLink, Priority, Session
from sec1000.options import Options
from sec1000.protocol import (
    ACK_OR_NAK,
    DATETIME_ACCEPTED,
    EXPORT_SETTINGS_DATA_LENGTH,
    STATUS_DATA_LENGTH,
    TELEMETRY_DATA_LENGTH,
    Command,
    ControlMode,
    ExportSettings,
    Feedback,
    GeneralError,
    InvalidInputError,
    PhaseMeasurement,
    Sec1000Error,
    ShortAnswerError,
    Status,
    Telemetry,
    decode_export_settings,
    decode_status,
    decode_telemetry,
    describe_feedback,
    mode_sequence,
    mode_switch_request,
    read_export_settings_request,
    read_telemetry_request,
    set_datetime_request,
    write_export_limit_request,
)
from sec1000.state import CommandRecord, OperationName, StateModel

if TYPE_CHECKING:
    from sec1000.watchdog import Watchdog

_LOGGER = logging.getLogger(__name__)

MAX_EXPORT_LIMIT_KW = 100.0
# The zero-power fix: the device refreshes inverters power only every ~30 s and reads 0 between.
ZERO_FIX_SAMPLES = 10
ZERO_FIX_MAX_AGE = 60.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked: 'panel', 'home_assistant', 'automation', 'cli', 'poll' or 'startup', and the user."""

    source: str
    user: str | None = None

    def __str__(self) -> str:
        return f"{self.source} ({self.user})" if self.user else self.source


POLL = Origin("poll")
CLI = Origin("cli")


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


def watts(kw: float) -> int:
    """kW (two decimals) to whole watts, in the device's 10 W steps."""
    return round(kw * 100) * 10


def validate_limit(value: object, capacity_kw: float) -> tuple[float, bool]:
    """Check an export limit in kW: 0-100, rounded to 0.01; clamped to the capacity.

    Returns (limit_kw, corrected). Raises InvalidInputError for anything else.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidInputError(f"export limit must be a number of kW, got {value!r}")
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            raise InvalidInputError(f"export limit must be a number of kW, got {value!r}") from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise InvalidInputError(f"export limit must be a number of kW, got {type(value).__name__}")
    if not math.isfinite(number):
        raise InvalidInputError(f"export limit must be a finite number, got {value!r}")
    if not 0 <= number <= MAX_EXPORT_LIMIT_KW:
        raise InvalidInputError(f"export limit must be between 0 and 100 kW, got {number:g}")
    limit = round(number, 2)
    if limit > capacity_kw:
        return round(capacity_kw, 2), True
    return limit, False


class ZeroPowerFix:
    """Replace an inverters power of 0 with the last non-zero value seen within 60 s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._recent: deque[tuple[float, int]] = deque(maxlen=ZERO_FIX_SAMPLES)

    def apply(self, telemetry: Telemetry) -> Telemetry:
        """Return the telemetry with a fresh 0 replaced; load follows from it."""
        now = self._clock()
        if telemetry.inverters_w != 0:
            self._recent.append((now, telemetry.inverters_w))
            return telemetry
        while self._recent and self._recent[0][0] < now - ZERO_FIX_MAX_AGE:
            self._recent.popleft()
        if not self._recent:
            return telemetry
        return telemetry.with_inverters_w(self._recent[-1][1])


Job = Callable[[Session], Awaitable[str]]


class Operations:
    """Every operation a user knows, run through the one device link."""

    def __init__(
        self,
        link: DeviceLink,
        state: StateModel,
        options: Options,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.link = link
        self.state = state
        self.options = options
        self.watchdog: Watchdog | None = None
        self.on_options_changed: Callable[[Options], Awaitable[None]] | None = None
        self._now = now
        self._zero_fix = ZeroPowerFix()

    def configure(self, options: Options) -> None:
        """Use new options from the next operation on."""
        self.options = options
        self.state.set_min_export_limit(options.min_export_limit)
        self.link.configure(
            host=options.host,
            port=options.port,
            gap=options.request_gap_ms / 1000,
            timeout=options.request_timeout,
        )

    # -- the runner

    async def perform(
        self,
        name: OperationName,
        origin: Origin,
        job: Job | None,
        *,
        validation_error: InvalidInputError | None = None,
        corrected: bool = False,
        priority: Priority = Priority.USER,
        request_id: str | None = None,
        command: str | None = None,
        guarded: bool = True,
    ) -> CommandResult:
        """Run one operation: feedback 0 while waiting, then the outcome, logged and recorded.

        Priority.POLL queues it as the telemetry poll (behind users, shared with a queued poll).
        """
        if validation_error is not None:
            return self.finish(
                name,
                origin,
                int(Feedback.INVALID_INPUT),
                str(validation_error),
                request_id,
                command,
            )
        if guarded and self.watchdog is not None and self.watchdog.blocks_writes:
            message = (
                "refused: the export limiter restore is still pending; retry once it is confirmed"
            )
            return self.finish(
                name, origin, int(Feedback.GENERAL_ERROR), message, request_id, command
            )
        assert job is not None
        self.state.set_feedback(name, int(Feedback.WAITING), "waiting for the device")
        try:
            if priority is Priority.POLL:
                message = await self.link.poll(job)
            else:
                message = await self.link.run(job, priority)
            feedback = int(Feedback.OK | (Feedback.INVALID_INPUT if corrected else 0))
        except Sec1000Error as err:
            feedback, message = int(err.feedback), str(err)
        except Exception as err:
            _LOGGER.exception("%s failed unexpectedly", name)
            feedback, message = int(Feedback.UNKNOWN_ERROR), f"unexpected error: {err}"
        except BaseException:
            self.state.set_feedback(name, int(Feedback.GENERAL_ERROR), "cancelled")
            raise
        return self.finish(name, origin, feedback, message, request_id, command)

    def finish(
        self,
        name: OperationName,
        origin: Origin,
        feedback: int,
        message: str,
        request_id: str | None,
        command: str | None,
    ) -> CommandResult:
        """Record an operation's end: feedback sensor, command log, log line; return the result."""
        command = command or name.value
        if not message:
            message = describe_feedback(feedback)
        self.state.set_feedback(name, feedback, message)
        if origin is not POLL:
            log = _LOGGER.info if feedback & Feedback.OK else _LOGGER.warning
            log("%s from %s: %s (feedback %d)", command, origin, message, feedback)
            self.state.command_done(
                CommandRecord(time.time(), str(origin), command, feedback, message, request_id)
            )
        return CommandResult(command, feedback, message, request_id)

    # -- device sequences shared by several operations

    @staticmethod
    async def acknowledge(session: Session, request: bytes, command: Command) -> Status:
        """Send a request answered by ACK or NAK (both accepted as done, as the field integration does)."""
        frame = await session.exchange(request, command, STATUS_DATA_LENGTH)
        return decode_status(frame, ACK_OR_NAK)

    async def read_settings(self, session: Session) -> ExportSettings:
        """Read 0x43 and teach the state."""
        frame = await session.exchange(
            read_export_settings_request(),
            Command.READ_EXPORT_SETTINGS,
            EXPORT_SETTINGS_DATA_LENGTH,
        )
        settings = decode_export_settings(frame)
        self.state.settings_read(
            export_limit_kw=settings.export_limit_w / 1000,
            control_mode=settings.mode,
            total_capacity_kw=settings.total_capacity_w / 1000,
            ct_ratio=settings.ct_ratio,
        )
        return settings

    async def switch_mode(self, session: Session, mode: ControlMode) -> int:
        """Select a mode: the two other switches off, then the chosen one on. Returns NAK count."""
        naks = 0
        for switch, position in mode_sequence(mode):
            status = await self.acknowledge(session, mode_switch_request(switch, position), switch)
            naks += status is Status.NAK
        return naks

    async def write_limit(
        self,
        session: Session,
        limit_w: int,
        mode: ControlMode | None = None,
        phase: PhaseMeasurement | None = None,
    ) -> str:
        """0x42 then the three mode switches (four packets, as the field integration sends)."""
        mode = self.options.control_mode if mode is None else mode
        phase = self.options.phase_measurement if phase is None else phase
        capacity_w = watts(self.options.total_capacity)
        status = await self.acknowledge(
            session,
            write_export_limit_request(capacity_w, limit_w, phase),
            Command.WRITE_EXPORT_LIMIT,
        )
        naks = int(status is Status.NAK) + await self.switch_mode(session, mode)
        self.state.settings_read(export_limit_kw=limit_w / 1000, control_mode=mode)
        text = f"export limit set to {limit_w / 1000:.2f} kW (mode {mode.option})"
        if naks:
            text += f"; the device answered NAK to {naks} of 4 packets, accepted as done"
        return text

    # -- operations

    async def export_enable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured maximum export limit."""
        limit_w = watts(self.options.max_export_limit)
        return await self.perform(
            OperationName.EXPORT_ENABLE,
            origin,
            lambda s: self.write_limit(s, limit_w),
            request_id=request_id,
        )

    async def export_disable(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write the configured minimum export limit."""
        limit_w = watts(self.options.min_export_limit)
        return await self.perform(
            OperationName.EXPORT_DISABLE,
            origin,
            lambda s: self.write_limit(s, limit_w),
            request_id=request_id,
        )

    async def export_toggle(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Enable export when it is off, disable it when it is on (reading the limit if unknown)."""
        if self.state.export_state is None:
            await self.get_export_limit(origin, request_id)
        if self.state.export_state == "off":
            return await self.export_enable(origin, request_id)
        return await self.export_disable(origin, request_id)

    async def set_export_limit(
        self, value: object, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Write any export limit from 0 to 100 kW (10 W steps), clamped to the total capacity."""
        try:
            limit_kw, corrected = validate_limit(value, self.options.total_capacity)
        except InvalidInputError as err:
            return await self.perform(
                OperationName.SET_EXPORT_LIMIT,
                origin,
                None,
                validation_error=err,
                request_id=request_id,
            )

        async def job(session: Session) -> str:
            text = await self.write_limit(session, watts(limit_kw))
            if corrected:
                text += f" (clamped to the total capacity of {self.options.total_capacity:g} kW)"
            return text

        return await self.perform(
            OperationName.SET_EXPORT_LIMIT, origin, job, corrected=corrected, request_id=request_id
        )

    async def get_export_limit(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Read the export limit, control mode and capacity back from the device."""

        async def job(session: Session) -> str:
            settings = await self.read_settings(session)
            return (
                f"export limit {settings.export_limit_w / 1000:.2f} kW, mode {settings.mode.option}, "
                f"total capacity {settings.total_capacity_w / 1000:.2f} kW"
            )

        return await self.perform(
            OperationName.GET_EXPORT_LIMIT, origin, job, request_id=request_id, guarded=False
        )

    async def set_control_mode(
        self,
        mode: object,
        three_phase_sum: object = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Select the control mode (and phase measurement) by rewriting the current limit."""
        name = OperationName.SET_CONTROL_MODE
        try:
            chosen = ControlMode.from_option(str(mode)) if isinstance(mode, str) else None
            if chosen is None:
                raise InvalidInputError(
                    f"control mode must be one of deactivated, value, dred, rcr; got {mode!r}"
                )
            if three_phase_sum is None:
                phase_sum = self.options.three_phase_sum
            elif isinstance(three_phase_sum, bool):
                phase_sum = three_phase_sum
            else:
                raise InvalidInputError(
                    f"three_phase_sum must be true or false, got {three_phase_sum!r}"
                )
        except InvalidInputError as err:
            return await self.perform(
                name, origin, None, validation_error=err, request_id=request_id
            )
        phase = PhaseMeasurement.SUM_OF_PHASES if phase_sum else PhaseMeasurement.PER_PHASE

        async def job(session: Session) -> str:
            limit_kw = self.state.export_limit_kw
            if limit_kw is None:
                limit_kw = (await self.read_settings(session)).export_limit_w / 1000
            return await self.write_limit(session, watts(limit_kw), chosen, phase)

        result = await self.perform(name, origin, job, request_id=request_id)
        if result.ok:
            self.options = replace(
                self.options, export_limit_control_mode=chosen.option, three_phase_sum=phase_sum
            )
            if self.on_options_changed is not None:
                await self.on_options_changed(self.options)
        return result

    async def set_datetime(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Send the current local time."""
        when = self._now()

        async def job(session: Session) -> str:
            frame = await session.exchange(
                set_datetime_request(when), Command.SET_DATETIME, STATUS_DATA_LENGTH
            )
            decode_status(frame, DATETIME_ACCEPTED)
            return f"device clock set to {when:%Y-%m-%d %H:%M:%S}"

        return await self.perform(
            OperationName.SET_DATETIME, origin, job, request_id=request_id, guarded=False
        )

    async def read_telemetry(
        self, origin: Origin = POLL, request_id: str | None = None
    ) -> CommandResult:
        """Read telemetry (one retry after the gap on a short answer) with the zero-power fix."""

        async def job(session: Session) -> str:
            request = read_telemetry_request()
            try:
                frame = await session.exchange(
                    request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
                )
            except ShortAnswerError:
                _LOGGER.debug("short telemetry answer; retrying once after the gap")
                frame = await session.exchange(
                    request, Command.READ_TELEMETRY, TELEMETRY_DATA_LENGTH
                )
            telemetry = self._zero_fix.apply(decode_telemetry(frame))
            self.state.telemetry_read(telemetry.values())
            return "telemetry read"

        name = OperationName.GET_TELEMETRY_DATA
        priority = Priority.POLL if origin is POLL else Priority.USER
        result = await self.perform(
            name, origin, job, priority=priority, request_id=request_id, guarded=False
        )
        if not result.ok:
            self.state.telemetry_failed()
        return result

    async def test_connection(self, host: str, port: int) -> CommandResult:
        """Read telemetry once from another address (the setup form), through the one link."""

        async def job(session: Session) -> str:
            frame = await session.exchange(
                read_telemetry_request(),
                Command.READ_TELEMETRY,
                TELEMETRY_DATA_LENGTH,
                address=(host, port),
            )
            values = decode_telemetry(frame).values()
            return (
                f"the controller at {host}:{port} answered: grid {values['meters_power']} kW, "
                f"inverters {values['inverters_power']} kW"
            )

        try:
            message = await self.link.run(job, Priority.USER)
        except Sec1000Error as err:
            return CommandResult("test_connection", int(err.feedback), str(err))
        return CommandResult("test_connection", int(Feedback.OK), message)

    async def reset_export_watchdog(
        self, origin: Origin = CLI, request_id: str | None = None
    ) -> CommandResult:
        """Turn every mode off, wait 5 s, restore the mode, wait 1 s, write the limit again."""
        if self.watchdog is None:
            raise GeneralError("the watchdog guard is not set up")
        return await self.watchdog.reset(origin, request_id)

    # -- dispatch by name (Home Assistant events, the panel, the CLI)

    async def run(
        self,
        command: object,
        limit: object = None,
        origin: Origin = CLI,
        request_id: str | None = None,
    ) -> CommandResult:
        """Run a command by name; an unknown command or bad data gives 128 and sends nothing."""
        simple: dict[str, Callable[[Origin, str | None], Awaitable[CommandResult]]] = {
            "export_enable": self.export_enable,
            "export_disable": self.export_disable,
            "export_toggle": self.export_toggle,
            "get_export_limit": self.get_export_limit,
            "set_datetime": self.set_datetime,
            "reset_export_watchdog": self.reset_export_watchdog,
            "get_telemetry_data": self.read_telemetry,
        }
        if isinstance(command, str) and command in simple:
            return await simple[command](origin, request_id)
        if command == "set_export_limit":
            return await self.set_export_limit(limit, origin, request_id)
        if command == "set_control_mode":
            return await self.set_control_mode(limit, None, origin, request_id)
        known = ", ".join([*simple, "set_export_limit", "set_control_mode"])
        message = f"unknown command {command!r}; known commands: {known}"
        _LOGGER.warning("%s from %s", message, origin)
        result = CommandResult(str(command), int(Feedback.INVALID_INPUT), message, request_id)
        self.state.command_done(
            CommandRecord(
                time.time(), str(origin), str(command), result.feedback, message, request_id
            )
        )
        return result
