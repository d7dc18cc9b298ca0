"""The running add-on core: options, state, link, operations, watchdog and the telemetry timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from sec1000.link import DeviceLink
from sec1000.operations import Operations, Origin
from sec1000.options import PYTHON_LOG_LEVELS, Options, OptionsError, save_options_file
from sec1000.state import StateModel
from sec1000.watchdog import RestoreStore, Watchdog

_LOGGER = logging.getLogger(__name__)

STARTUP = Origin("startup")
OptionsSaver = Callable[[Options], Awaitable[None]]


def file_saver(path: Path) -> OptionsSaver:
    """Save options to a local options file (outside the Supervisor)."""

    async def save(options: Options) -> None:
        await asyncio.to_thread(save_options_file, path, options)

    return save


class Runtime:
    """Wires the core layers together and reads telemetry on a timer."""

    def __init__(
        self,
        options: Options,
        data_dir: Path,
        *,
        options_error: OptionsError | None = None,
        save_options: OptionsSaver | None = None,
    ) -> None:
        self.options = options
        self.options_error = options_error
        self.data_dir = data_dir
        self.save_options = save_options
        self.state = StateModel(options.min_export_limit)
        self.link = DeviceLink(
            options.host,
            options.port,
            gap=options.request_gap_ms / 1000,
            timeout=options.request_timeout,
            on_change=self.state.link_changed,
        )
        self.state.link = self.link.health
        self.ops = Operations(self.link, self.state, options)
        self.ops.on_options_changed = self._mode_changed
        self.watchdog = Watchdog(self.ops, RestoreStore(data_dir))
        self.ready = asyncio.Event()  # set once a pending restore is finished
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Finish a pending restore first, then read settings once and telemetry on a timer."""
        self._task = asyncio.create_task(self._main(), name="sec1000-runtime")

    async def _main(self) -> None:
        await self.watchdog.resume_pending()
        self.ready.set()
        if self.options_error is None:
            await self.ops.get_export_limit(STARTUP)
        while True:
            if self.options_error is None:
                await self.ops.read_telemetry()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.scan_interval)

    async def apply_options(self, options: Options) -> None:
        """Save valid options (Supervisor or file) and use them at once, without a restart."""
        if self.save_options is not None:
            await self.save_options(options)
        self._use(options)

    def _use(self, options: Options) -> None:
        if options.log_level != self.options.log_level:
            logging.getLogger().setLevel(PYTHON_LOG_LEVELS[options.log_level])
        self.options = options
        self.options_error = None
        self.ops.configure(options)
        self.state.options_changed(options.to_dict())
        self._wake.set()

    async def _mode_changed(self, options: Options) -> None:
        try:
            await self.apply_options(options)
        except Exception as err:  # the device already has the mode; saving is second
            _LOGGER.error("the new control mode is active but could not be saved: %s", err)
            self._use(options)

    async def stop(self) -> None:
        """On SIGTERM: restore the limiter if a reset is under way, then stop the timer."""
        await self.watchdog.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
