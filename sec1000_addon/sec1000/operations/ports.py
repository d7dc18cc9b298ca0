"""What the operations are handed (`Wiring`, `GuardPort`) and what a command gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sec1000.commands import CommandSpec
from sec1000.device.sequences import LimitWrite
from sec1000.limiter.wanted import Wanted
from sec1000.limiter.writes import Origin, Writer
from sec1000.options import Options
from sec1000.protocol import ExportSettings, Feedback


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
    reset_watchdog: Callable[[str], Coroutine[Any, Any, str]]
    guard: GuardPort
    writer: Writer  # every limiter write, built once it holds the device
    # Told of a writing command accepted before its first packet (command, source), and of one
    # that then failed: the price policy's override starts at once, and ends with a failure.
    accepted: Callable[[str, str], None] = lambda command, source: None
    failed: Callable[[str, str], None] = lambda command, source: None
