"""Atomic, durable file writes (a crash leaves the old file or the new one, never half of one),
and a writer that keeps them off the event loop, in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TEMPORARY_SUFFIX = ".sec1000-tmp"  # a temporary of write_atomic, left only by a kill


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, fsync it, rename it, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def remove_durably(path: Path) -> None:
    """Delete `path` (if there) and make the removal durable."""
    path.unlink(missing_ok=True)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or removal in `directory` durable (best effort: not every FS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(directory: Path) -> None:
    """Remove the temporary files a kill in the middle of `write_atomic` left in `directory`."""
    with contextlib.suppress(OSError):
        for leftover in directory.rglob(f".*{TEMPORARY_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()


# One thread for every file the add-on writes: a write waits for those asked before it, so the
# writes of each file keep their order, and the event loop never waits for a disk.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sec1000-files")


class FileWriter:
    """Writes a file off the event loop, in the order the writes were asked for. `submit()`
    returns at once; `flush()` waits for every write asked so far. A failure goes to
    `on_error`, called on the event loop."""

    def __init__(self, on_error: Callable[[OSError], None] | None = None) -> None:
        self._on_error = on_error

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` (a blocking write) after every write asked before it; without an event
        loop (a test, a one-shot command) it runs at once."""
        on_error = self._on_error
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                job()
            except OSError as err:
                if on_error is None:
                    raise
                on_error(err)
            return

        def run() -> None:
            try:
                job()
            except OSError as err:
                if on_error is None:
                    raise
                loop.call_soon_threadsafe(on_error, err)

        _WRITER.submit(run)

    @staticmethod
    async def flush() -> None:
        """Wait until every write asked so far (of any file) is done."""
        await asyncio.wrap_future(_WRITER.submit(lambda: None))
