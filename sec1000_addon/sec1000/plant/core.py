"""The plant: one runtime per controller, and the one options document they share.

The top-level options are the first controller's; `controllers` names the additional ones,
each with the keys it sets itself. The first runtime holds the whole document; every other
runtime holds its controller's options (`Options.of_controller`). A change made through any
runtime is saved into the document and handed to the runtimes whose options it changes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from sec1000.common.errors import AddonError
from sec1000.common.files import FileWriter, write_atomic
from sec1000.limiter.audit import AuditLog
from sec1000.limiter.watchdog import DEFAULT_TIMINGS, WatchdogTimings, same_address
from sec1000.operations import Origin
from sec1000.options import (
    CONTROLLER_NAME,
    FIRST_CONTROLLER,
    ControllerOptions,
    InvalidOptions,
    Options,
    OptionsError,
)
from sec1000.plant.devices import address_of, shared_devices
from sec1000.plant.document import (
    KNOWN_NAME,
    controller_dir,
    controller_item,
    item_errors,
    keep_inherited,
    read_known,
)
from sec1000.runtime import STARTUP, STOP_BUDGET, OptionsSaver, Runtime

_LOGGER = logging.getLogger(__name__)


class Change(StrEnum):
    """What happened to a controller of the plant."""

    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class PlantEvent:
    """A controller added to the plant or removed from it (its files are kept)."""

    change: Change
    runtime: Runtime


class UnknownController(AddonError, KeyError):
    """No controller of that name; the message lists the names there are."""

    def __init__(self, name: str, names: list[str]) -> None:
        super().__init__(name)
        self.text = f"no controller named {name!r}: the controllers are {', '.join(names)}"

    def __str__(self) -> str:
        return self.text


class Plant:
    """Every controller's runtime, the first one first; started, changed and stopped together."""

    def __init__(
        self,
        options: Options,
        data_dir: Path,
        *,
        invalid: InvalidOptions | None = None,
        save_options: OptionsSaver | None = None,
        watchdog_timings: WatchdogTimings = DEFAULT_TIMINGS,
        first: Runtime | None = None,
    ) -> None:
        """`first`: the first controller's runtime, built already (`Plant.of_one`); else
        built here from `options`."""
        self.data_dir = data_dir
        self._timings = watchdog_timings
        if first is None:
            first = Runtime(
                options,
                data_dir,
                invalid=invalid,
                save_options=save_options,
                watchdog_timings=watchdog_timings,
                audit=AuditLog(data_dir),
            )
        self.first = first
        self._audit = first.audit  # one file: every controller's view of it comes from this one
        self.first.options_listeners.append(self._options_used)
        self.first.own_change = keep_inherited
        # One document, one lock: every read-change-save of it, from any controller, holds it.
        self.options_lock = self.first.options_lock
        self.runtimes: dict[str, Runtime] = {FIRST_CONTROLLER: self.first}
        self._listeners: list[Callable[[PlantEvent], None]] = []
        self._saving: str | None = None  # the controller whose own change is being saved
        self._started = False
        self._stopping: set[asyncio.Task[None]] = set()
        self._writer = FileWriter(
            on_error=lambda err: _LOGGER.warning("cannot write %s: %s", KNOWN_NAME, err)
        )
        # Controllers of an earlier run that the options no longer name: their entities are
        # removed from Home Assistant (`cleared` once done). Broken options judge nothing.
        self.departed: dict[str, Runtime] = {}
        self._unjudged: list[str] = []
        for item in options.controllers:
            self._add(item.name)
        refused = self._judge_earlier(options, broken=invalid is not None)
        # Every controller that does not run now but left a restore pending: restored from its
        # record, which names the address it switched off.
        self._restorers = self._find_restorers([*self.departed, *self._unjudged, *refused])
        self._restoring: dict[str, asyncio.Task[bool]] = {}
        self.first.others_restoring = lambda: self.restoring
        self._remember()

    @classmethod
    def of_one(cls, runtime: Runtime) -> Plant:
        """The plant around a runtime built on its own (a tool, a test): the controllers its
        options name run beside it."""
        return cls(runtime.options, runtime.data_dir, first=runtime)

    def _judge_earlier(self, options: Options, *, broken: bool) -> list[str]:
        """Sort the controllers an earlier run had that do not run now into departed (removed
        from the options) and unjudged; returns the refused ones' names."""
        known = [
            name for name in read_known(self.data_dir / KNOWN_NAME) if name not in self.runtimes
        ]
        # A refused item is the user's to fix, not a removal: its entities stay.
        refused = [
            item.name
            for item in options.refused
            if CONTROLLER_NAME.fullmatch(item.name) and item.name not in self.runtimes
        ]
        for bad in options.refused:
            _LOGGER.error(
                "the options' %s is refused: %s; fix it in the Configuration tab. Every other "
                "controller runs as configured",
                bad.label,
                bad.reason,
            )
        # While the options are invalid, an earlier run's controllers are kept, not judged.
        if broken:
            self._unjudged = known
        else:
            self._unjudged = [name for name in known if name in refused]
            self.departed = {name: self._ghost(name) for name in known if name not in refused}
        return refused

    def _find_restorers(self, idle: list[str]) -> dict[str, Runtime]:
        """The controllers among `idle` (not running) whose restore record is pending."""
        restorers: dict[str, Runtime] = {}
        for name in dict.fromkeys(idle):
            ghost = self.departed.get(name) or self._ghost(name)
            record = ghost.restore_store.record
            if record is None:
                continue
            if record.target is None:
                _LOGGER.error(
                    "controller %s does not run (removed or refused in the options) while its "
                    "export limiter was switched off by a watchdog reset, and its restore record "
                    "is from before records named the address: add it again (its restore then "
                    "runs first) or check its limiter by hand",
                    name,
                )
                continue
            _LOGGER.warning(
                "controller %s does not run (removed or refused in the options), but a watchdog "
                "reset switched its export limiter off: restoring it at %s:%d from its record",
                name,
                *record.target,
            )
            restorers[name] = ghost
        return restorers

    @property
    def names(self) -> list[str]:
        """Every controller's name, the first one first."""
        return list(self.runtimes)

    def get(self, name: str | None = None) -> Runtime:
        """The runtime of the controller `name`; the first one's when None or empty.

        Raises UnknownController (a KeyError) naming the controllers there are."""
        if not name:
            return self.first
        try:
            return self.runtimes[name]
        except KeyError:
            raise UnknownController(name, self.names) from None

    def subscribe(self, listener: Callable[[PlantEvent], None]) -> None:
        """Be told of every controller added to or removed from the options."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Start every controller's runtime (each finishes its own pending restore first), and
        the restores of controllers that do not run."""
        self._started = True
        for name, ghost in self._restorers.items():
            self._restoring[name] = asyncio.get_running_loop().create_task(
                ghost.watchdog.resume_pending(), name=f"{name}-restore"
            )
        for runtime in self.runtimes.values():
            await runtime.start()

    @property
    def restoring(self) -> list[str]:
        """The controllers that do not run but whose restore is still pending."""
        return [name for name, ghost in self._restorers.items() if ghost.restore_store.pending]

    async def _start_added(self, runtime: Runtime) -> None:
        """A controller added while running; one whose restore ran here without it takes its
        pending restore over, as the record now stands."""
        if self._restorers.pop(runtime.name, None) is not None:
            task = self._restoring.pop(runtime.name, None)
            if task is not None:
                task.cancel()  # a write under way runs to its end
                await asyncio.wait([task], timeout=STOP_BUDGET)
            store = runtime.restore_store
            store.record = store.load()
        await runtime.start()

    async def stop(self, budget: float = STOP_BUDGET) -> None:
        """Stop every controller at the same time, each within `budget` seconds."""
        deadline = time.monotonic() + budget
        for task in self._restoring.values():
            task.cancel()  # a write under way runs to its end
        await asyncio.gather(
            *(runtime.stop(budget) for runtime in self.runtimes.values()), return_exceptions=True
        )
        if self._restoring:
            await asyncio.wait(
                self._restoring.values(), timeout=max(deadline - time.monotonic(), 0.1)
            )
        if self._stopping:
            await asyncio.wait(self._stopping, timeout=max(deadline - time.monotonic(), 0.1))
        await self._writer.flush()

    async def wait_ready(self) -> None:
        """Until every controller's pending restore is done."""
        await asyncio.gather(*(runtime.ready.wait() for runtime in self.runtimes.values()))

    def cleared(self, name: str) -> None:
        """A removed controller's entities are gone from Home Assistant: forget it."""
        if self.departed.pop(name, None) is not None:
            self._remember()

    def _known(self) -> str:
        names = [*self.runtimes, *self.departed, *self._unjudged]
        return json.dumps(list(dict.fromkeys(names))) + "\n"

    def _ghost(self, name: str) -> Runtime:
        """A removed controller's runtime, never started: its names and ids, for removing
        what it left in Home Assistant."""
        return Runtime(
            replace(self.first.options, controllers=()),
            controller_dir(self.data_dir, name),
            watchdog_timings=self._timings,
            audit=self._audit.for_controller(name),
        )

    def _add(self, name: str) -> Runtime:
        runtime = Runtime(
            self.first.options.of_controller(name),
            controller_dir(self.data_dir, name),
            save_options=functools.partial(self._save_controller, name),
            watchdog_timings=self._timings,
            audit=self._audit.for_controller(name),
        )
        runtime.options_lock = self.options_lock
        self.runtimes[name] = runtime
        if self.departed.pop(name, None) is not None:  # added again before its entities went
            self._remember()
        return runtime

    def _remember(self) -> None:
        known = self._known()
        self._writer.submit(lambda: write_atomic(self.data_dir / KNOWN_NAME, known))

    def _options_used(self, options: Options, origin: Origin) -> None:
        """The document changed: hand each additional controller its options; start the new
        ones, stop the removed ones (their files stay)."""
        wanted = [item.name for item in options.controllers]
        for name in [name for name in self.runtimes if name != FIRST_CONTROLLER]:
            if name not in wanted:
                self._remove(name)
        for name in wanted:
            mine = options.of_controller(name)
            runtime = self.runtimes.get(name)
            if runtime is None:
                runtime = self._add(name)
                if self._started:
                    asyncio.get_running_loop().create_task(self._start_added(runtime))
                self._tell(PlantEvent(Change.ADDED, runtime))
            elif name != self._saving and runtime.options != mine:
                runtime.use(mine, origin)

    def _remove(self, name: str) -> None:
        runtime = self.runtimes.pop(name)
        self.departed[name] = runtime  # until its entities are removed
        self._remember()
        _LOGGER.warning("controller %s removed from the options; its files are kept", name)
        task = asyncio.get_running_loop().create_task(runtime.stop(), name=f"{name}-stop")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        self._tell(PlantEvent(Change.REMOVED, runtime))

    def _tell(self, event: PlantEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("a listener failed on %s %s", event.change, event.runtime.name)

    async def _save_controller(self, name: str, options: Options) -> None:
        """An additional controller changed its own keys (a mode switched, a limit adopted):
        saved into its item of the document."""
        top = self.first.options
        items = [
            item if item.name != name else controller_item(item, options, top)
            for item in top.controllers
        ]
        await self.save_items(items, STARTUP, saving=name)

    async def save_items(
        self, items: list[ControllerOptions], origin: Origin, *, saving: str | None = None
    ) -> None:
        """Save the document with these additional controllers (added, changed or removed)
        and use it at once. Raises OptionsError for an invalid one (nothing is saved)."""
        top = self.first.options
        document = Options.from_mapping(
            {"controllers": [item.to_dict() for item in items]}, base=top
        )
        if document == top:
            return
        self._refuse_while_restoring(document)
        if saving is None:  # an own change keeps the address: no lookup
            shared = await shared_devices(document)
            if shared:
                raise OptionsError({"controllers": "; ".join(shared.values())})
        self._saving = saving
        try:
            await self.first.apply_options(document, origin)
        finally:
            self._saving = None

    def _refuse_while_restoring(self, document: Options) -> None:
        """A controller whose watchdog restore is pending keeps its address and its place: the
        restore must reach the controller it switched off first."""
        for name, runtime in self.runtimes.items():
            if name == FIRST_CONTROLLER or not runtime.watchdog.blocks:
                continue
            if name not in document.controller_names:
                key, what = "controllers", "cannot be removed"
            elif not same_address(runtime.link.target, address_of(document, name)):
                key, what = "host", "cannot move to another address"
            else:
                continue
            raise OptionsError(
                {
                    key: f"controller {name} {what} while its export limiter restore is "
                    "pending: it must first be switched back on; try again once it is confirmed"
                }
            )

    async def save_controller(self, values: dict[str, object], origin: Origin) -> None:
        """Add (a new name) or change (a name there is) one additional controller from a
        form's values: name, host, port and the keys it sets (an empty value takes the top
        level's). Raises OptionsError naming the bad keys."""
        if self.first.options_error is not None:
            raise OptionsError(
                {"options": f"the stored options are invalid: {self.first.options_error}"}
            )
        top = self.first.options
        item = {key: value for key, value in values.items() if value not in (None, "")}
        name = item.get("name")
        items = [c.to_dict() for c in top.controllers]
        index = next((i for i, c in enumerate(top.controllers) if c.name == name), None)
        if index is None:
            items.append(item)
        else:
            items[index] = item
        try:
            document = Options.from_mapping({"controllers": items}, base=top)
        except OptionsError as err:
            raise OptionsError(item_errors(err, top, item)) from None
        await self.save_items(list(document.controllers), origin)

    async def remove_controller(self, name: str, origin: Origin) -> None:
        """Remove one additional controller from the options: its runtime stops, its
        entities go, its files stay."""
        if name not in self.runtimes or name == FIRST_CONTROLLER:
            raise UnknownController(name, self.names[1:])
        top = self.first.options
        await self.save_items([c for c in top.controllers if c.name != name], origin)
