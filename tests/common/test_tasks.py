"""The task set the adapters and the guard keep their background work in."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sec1000.common.tasks import TaskSet


async def test_a_failing_task_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet()

    async def fail() -> None:
        raise ValueError("the broker said no")

    with caplog.at_level(logging.ERROR):
        task = tasks.spawn(fail(), name="announce")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert len(tasks) == 0
    assert "announce failed" in caplog.text and "the broker said no" in caplog.text


async def test_cancel_ends_them_all_and_finish_waits_only_so_long() -> None:
    tasks = TaskSet()
    done = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.set()

    forever = tasks.spawn(asyncio.sleep(3600))
    tasks.spawn(quick())
    await tasks.finish(within=0.2)
    assert done.is_set() and not forever.done()
    await tasks.cancel()
    assert forever.cancelled() and len(tasks) == 0
