"""The running add-on core: it owns the options and wires state, link, operations and watchdog.

This is the only place that builds the core's objects and hands each its dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from sec1000.common.files import remove_stale_temporaries
from sec1000.common.tasks import wait_set
from sec1000.common.units import seconds
from sec1000.device.health import LinkHealth
from sec1000.device.link import DeviceLink, LinkSettings
from sec1000.limiter.audit import AuditLog
from sec1000.limiter.guard import ExportGuard
from sec1000.limiter.guard_ports import GuardFiles, GuardHooks
from sec1000.limiter.wanted import WantedStore
from sec1000.limiter.watchdog import DEFAULT_TIMINGS, RestoreStore, Watchdog, WatchdogTimings
from sec1000.limiter.writes import Writer
from sec1000.metering.check import MeterCheck
from sec1000.metering.energy import EnergyMeter
from sec1000.operations import Operations, Origin, Wiring
from sec1000.options import (
    PYTHON_LOG_LEVELS,
    InvalidOptions,
    Options,
    OptionsError,
    save_options_file,
)
from sec1000.pricing.runner import PricePolicy
from sec1000.state import RestoreChanged, StateEvent, StateModel, Topic

_LOGGER = logging.getLogger(__name__)

STARTUP = Origin("startup")
POLICY = Origin("policy")
OptionsSaver = Callable[[Options], Awaitable[None]]
DEFAULT_PANEL_PORT = 8099
# After an unexpected failure the poll loop waits this long before it carries on.
LOOP_ERROR_PAUSE = 1.0
# A stop takes at most this long: the Supervisor kills the add-on 30 s after SIGTERM.
STOP_BUDGET = 20.0


class Applied(StrEnum):
    """What saving options does to the controller."""

    NOTHING = "nothing"  # nothing that reaches the controller changed
    HELD = "held"  # the controller already holds them: nothing is written
    AFTER_RESTORE = "after_restore"  # written right after a pending watchdog restore
    MODE = "mode"  # the controller is switched to the new mode
    WRITING = "writing"  # the new settings are being written


def default_data_dir() -> Path:
    """`SEC1000_DATA_DIR`, else /data in the add-on, else the user's state directory."""
    if env := os.environ.get("SEC1000_DATA_DIR"):
        return Path(env)
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data")
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "sec1000"


def file_saver(path: Path) -> OptionsSaver:
    """Save options to a local options file (outside the Supervisor)."""

    async def save(options: Options) -> None:
        await asyncio.to_thread(save_options_file, path, options)

    return save


def link_settings(options: Options) -> LinkSettings:
    """The link's part of the options."""
    return LinkSettings(
        options.host, options.port, seconds(options.request_gap_ms), options.request_timeout
    )


class Runtime:
    """Wires the core layers together and reads telemetry on a timer."""

    def __init__(
        self,
        options: Options,
        data_dir: Path,
        *,
        invalid: InvalidOptions | None = None,
        save_options: OptionsSaver | None = None,
        watchdog_timings: WatchdogTimings = DEFAULT_TIMINGS,
        audit: AuditLog | None = None,
    ) -> None:
        """`audit`: the plant's audit trail as this controller writes it (its name comes
        from it); without it the first controller's, in `data_dir`."""
        self.options = options
        for key, text in options.warnings().items():
            _LOGGER.warning("option %s: %s", key, text)
        self.options_error = invalid.error if invalid is not None else None
        # While the stored options are invalid: the user's values as stored, so that fixing one
        # step keeps the others (the defaults stand in for the device meanwhile).
        self.stored = dict(invalid.stored) if invalid is not None else {}
        self.data_dir = data_dir
        self.save_options = save_options
        remove_stale_temporaries(data_dir)  # left by a kill in the middle of a save
        # The restore record first: whether a restore is pending is known before anything else.
        self.restore_store = RestoreStore(data_dir)
        self.restore_store.load()
        health = LinkHealth()
        self.state = StateModel(options.min_export_limit, health=health)
        health.subscribe(self.state.link_changed)
        self.link = DeviceLink(link_settings(options), health=health)
        self.energy = EnergyMeter(
            data_dir,
            lambda: self.options.scan_interval,
            overshoot=lambda: (self.options.overshoot_margin_kw, self.options.overshoot_seconds),
        )
        shared = audit if audit is not None else AuditLog(data_dir)
        self.name = shared.controller
        self.audit = shared.for_controller(self.name, self._audited)
        self.state.set_by = self.audit.last_confirmed_write()
        self.guard, self.writer, self.watchdog = self._limiter(watchdog_timings)
        self.meter_check = MeterCheck(
            self.energy, self.state, self.audit, self._current, wake_guard=self.guard.wake
        )
        self.policy = PricePolicy(
            self._current,
            self._policy_write,
            lambda: self.state.export_state,
            self.state.policy_decided,
        )
        self.ops = self._operations()
        self.state.energy_counted(self.energy.snapshot())
        for listener in (self.meter_check.on_event, self._wake_on_the_controller):
            self.state.subscribe(listener)
        self._init_loop()

    def _init_loop(self) -> None:
        """The options lock, the hooks the plant sets, and the poll loop's own state."""
        # Held around every read-change-save of the options (the panel's forms hold it too), so
        # two changes at the same moment never lose one another. Several controllers share one
        # document, and so one lock: the plant hands every runtime the first one's.
        self.options_lock = asyncio.Lock()
        # The first controller's options are also the top level the others inherit from: the
        # plant makes a change of them its own only (`Plant.keep_inherited`).
        self.own_change: Callable[[Options, Options], Options] = lambda before, after: after
        # The controllers that do not run but whose restore is pending (told by the first).
        self.others_restoring: Callable[[], list[str]] = list
        self.ready = asyncio.Event()  # set once a pending restore is finished
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._guard_task: asyncio.Task[None] | None = None
        self._restore_task: asyncio.Task[None] | None = None
        self._last_loop_error: str | None = None
        # Told of every change of the options in use (the plant keeps the others in step).
        self.options_listeners: list[Callable[[Options, Origin], None]] = []
        self.ticks = 0  # passes of the telemetry timer (diagnostics, tests)

    def _operations(self) -> Operations:
        return Operations(
            self.link,
            self.state,
            Wiring(
                options=self._current,
                update_options=self.update_options,
                refuse_writes=self._refuse_writes,
                reset_watchdog=self.watchdog.reset,
                guard=self.guard,
                writer=self.writer,
                accepted=self.policy.command_seen,
                failed=self.policy.command_failed,
            ),
        )

    def _limiter(self, timings: WatchdogTimings) -> tuple[ExportGuard, Writer, Watchdog]:
        """The export guard, the writer that reports to it, and the watchdog that writes
        through it."""
        guard = ExportGuard(
            self.link,
            self.state,
            GuardFiles(WantedStore(self.data_dir), self.audit),
            GuardHooks(
                self._current,
                self.update_options,
                lambda: self.watchdog.blocks,
                lambda: None if self.options_error is None else str(self.options_error),
            ),
        )
        writer = Writer(self.link, self.state, guard.wrote, guard.intend)
        return guard, writer, Watchdog(writer, self.restore_store, self._current, timings)

    def _current(self) -> Options:
        return self.options

    def _refuse_writes(self) -> str | None:
        if self.options_error is not None:
            return (
                f"refused: the add-on's options are invalid ({self.options_error}); fix them first"
            )
        return self.watchdog.refuse_writes()

    async def _policy_write(self, export_on: bool) -> bool:
        write = self.ops.export_enable if export_on else self.ops.export_disable
        return (await write(POLICY)).ok

    def _wake_on_the_controller(self, event: StateEvent) -> None:
        """What the controller holds changed: the policy compares it with its decision; a
        restore confirmed lets the guard write what waited for it."""
        if event.topic is Topic.SETTINGS:
            self.policy.wake()
        elif isinstance(event, RestoreChanged) and not event.pending:
            self.guard.wake()
            self.policy.wake()

    def _audited(self, entry: Mapping[str, Any]) -> None:
        self.meter_check.audited(entry)

    async def start(self) -> None:
        """Finish a pending restore first, then read settings once and telemetry on a timer."""
        self._task = asyncio.create_task(self._main(), name=f"{self.name}-runtime")

    async def _main(self) -> None:
        if (elsewhere := self.watchdog.elsewhere) is not None:
            # The record names the address the controller was at: restored there, retried with
            # backoff, while this controller at its new address runs.
            _LOGGER.warning(
                "controller %s: the watchdog restore left by an earlier run is for %s:%d, not "
                "%s:%d where the options put it now; it is restored there in the background",
                self.name,
                *elsewhere,
                *self.link.target,
            )
            self._restore_task = asyncio.create_task(
                self._guarded(self.watchdog.resume_pending(), "resuming the watchdog restore"),
                name=f"{self.name}-restore-elsewhere",
            )
        else:
            await self._guarded(self.watchdog.resume_pending(), "resuming the watchdog restore")
        self.ready.set()
        self._guard_task = asyncio.create_task(self._keep_guarded(), name=f"{self.name}-guard")
        self.policy.start()
        while True:
            if self.options_error is None:
                await self._guarded(
                    self.ops.get_telemetry_data(), "reading telemetry", telemetry=True
                )
                await self.energy.save_if_due()
                self.policy.wake()  # the policy compares the controller with its decision
            self.ticks += 1
            self._wake.clear()
            await wait_set(self._wake, self.options.scan_interval)

    async def _keep_guarded(self) -> None:
        """The export guard's loop: each options write it finds due is submitted here, as one
        command under the origin that changed the options, and its outcome told back."""
        async with contextlib.aclosing(self.guard.options_writes()) as due:
            async for origin in due:
                self.guard.options_written((await self.ops.apply_options(origin)).ok)

    async def _guarded(self, step: Awaitable[Any], what: str, *, telemetry: bool = False) -> None:
        """Run one step of the loop; nothing but stop ends the loop: log, carry on (a failed
        telemetry step counts as a failed read)."""
        try:
            await step
        except Exception as err:
            if repr(err) != self._last_loop_error:  # the same failure is logged once
                _LOGGER.exception("%s failed unexpectedly; carrying on", what)
            self._last_loop_error = repr(err)
            if telemetry:
                self.state.telemetry_failed()
            await asyncio.sleep(LOOP_ERROR_PAUSE)
        else:
            self._last_loop_error = None

    async def apply_options(self, options: Options, origin: Origin = STARTUP) -> Applied:
        """Save valid options (Supervisor or file) and use them at once, without a restart; the
        guard writes what reaches the controller, once, as `origin`'s command. Returns what
        happens to the controller.

        Raises OptionsError for a new controller address while a watchdog restore is pending:
        the restore must reach the controller it switched off first.
        """
        if self.watchdog.blocks:
            moved = {
                key: "not while the export limiter restore is pending: the add-on must first "
                "switch the limiter of the current controller back on; try again once it is "
                "confirmed"
                for key in ("host", "port")
                if getattr(options, key) != getattr(self.options, key)
            }
            if moved:
                raise OptionsError(moved)
        before = self.options
        if self.options_error is None:
            options = self.own_change(before, options)
        if self.save_options is not None:
            await self.save_options(options)
        self._use(options, origin)
        return self.applied(before)

    def applied(self, before: Options) -> Applied:
        """What the options now in use do to the controller, after `before`."""
        options, guard = self.options, self.guard
        if not guard.options_pending(options):
            return Applied.NOTHING
        if guard.holds_options(options):
            return Applied.HELD
        if self.watchdog.blocks:
            return Applied.AFTER_RESTORE
        if options.export_limit_control_mode != before.export_limit_control_mode:
            return Applied.MODE
        return Applied.WRITING

    async def update_options(self, changes: Mapping[str, Any], origin: Origin = STARTUP) -> None:
        """Change some keys (the device already holds them): saved if possible, used at once.

        Refused (OptionsError) while the stored options are invalid: saving would replace them.
        """
        if self.options_error is not None:
            raise OptionsError({"options": f"the stored options are invalid: {self.options_error}"})
        async with self.options_lock:
            await self._update_locked(changes, origin)

    async def _update_locked(self, changes: Mapping[str, Any], origin: Origin) -> None:
        options = self.own_change(
            self.options, Options.from_mapping(dict(changes), base=self.options)
        )
        try:
            await self.apply_options(options, origin)
        except Exception as err:  # the device already has the mode; saving is second
            _LOGGER.error("the new control mode is active but could not be saved: %s", err)
            self._use(options, origin)

    def use(self, options: Options, origin: Origin) -> None:
        """Use options saved elsewhere (the plant's document) at once."""
        self._use(options, origin)

    def _use(self, options: Options, origin: Origin = STARTUP) -> None:
        if options.price_entity != self.options.price_entity:
            self.policy.forget_price()  # the old sensor's prices are not the new one's
        if options.log_level != self.options.log_level:
            logging.getLogger().setLevel(PYTHON_LOG_LEVELS[options.log_level])
        before = self.options.warnings()
        for key, text in options.warnings().items():
            if before.get(key) != text:  # a warning is logged once, when it starts
                _LOGGER.warning("option %s: %s", key, text)
        self.options = options
        self.options_error = None
        self.stored = {}
        self.link.configure(link_settings(options))
        self.state.set_min_export_limit(options.min_export_limit)
        self.state.options_changed(options.public_dict())
        self._wake.set()
        self.guard.options_changed(origin)
        self.policy.wake()
        for listener in self.options_listeners:
            listener(options, origin)

    async def stop(self, budget: float = STOP_BUDGET) -> None:
        """On SIGTERM: nothing new is written; a watchdog reset under way is restored and every
        limiter write under way completes; then the controller is read back once and a drift put
        back, all within `budget` seconds."""
        deadline = time.monotonic() + budget
        self.writer.stopping = True
        try:
            await self.watchdog.shutdown(min(self.watchdog.shutdown_grace(), budget))
        finally:
            tasks = [
                task
                for task in (self._task, self._guard_task, self._restore_task)
                if task is not None
            ]
            self._task = self._guard_task = self._restore_task = None
            await self._finish(tasks, deadline)
            await self.policy.stop()
            await self.guard.final_check(deadline - time.monotonic())
            self.meter_check.stop()
            await asyncio.to_thread(self.energy.save)
            await self.guard.flush()  # wanted.json and the audit trail, written to the end
            await self.audit.flush()

    @staticmethod
    async def _finish(tasks: list[asyncio.Task[None]], deadline: float) -> None:
        """Cancel the loops; a write they hold runs to its end, within the deadline."""
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0))
