"""Background tasks kept alive until they end, logged when they fail, cancelled together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class TaskSet:
    """The tasks one owner started (asyncio keeps only weak references to running tasks)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Start `coro`; an exception it ends with is logged, never lost."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("%s failed", task.get_name(), exc_info=error)

    async def cancel(self) -> None:
        """Cancel every task and wait until they ended."""
        await cancel_all(self._tasks)

    async def finish(self, within: float) -> None:
        """Let the tasks finish, for at most `within` seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)


async def cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until they ended."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def wait_set(event: asyncio.Event, within: float | None) -> bool:
    """True when `event` is set within `within` seconds (None: no limit), else False.

    `asyncio.wait_for` on Python 3.11 returns normally when the cancellation and the event come
    together, swallowing the cancellation (a loop under it then never stops); `asyncio.timeout`
    always lets it through, and resumes as soon as the event is set."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` in a task of its own that a cancellation does not interrupt: the caller's
    cancellation waits for the task to end, then propagates (a stop never cuts a sequence of
    packets in half)."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        except BaseException:
            if cancelled:
                raise asyncio.CancelledError from None
            raise
        if cancelled:
            raise asyncio.CancelledError
        return result
