"""`sec1000 serve --demo` as a process for the benchmarks: a free port, start it, wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_demo(
    python: str, pythonpath: str | None, port: int, prefix: str, options: dict[str, Any]
) -> tuple[asyncio.subprocess.Process, Path]:
    """Start the demo on loopback with these options; its log goes to <data dir>/serve.log."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    (data / "options.json").write_text(json.dumps(options))
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log = (data / "serve.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "sec1000",
        "serve",
        "--demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()  # the process has its own copy
    return proc, data


async def wait_ready(session: aiohttp.ClientSession, url: str, deadline: float) -> None:
    """Until the panel answers and the first telemetry and settings are known."""
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(f"{url}/api/state") as response:
                if response.status == 200:
                    state = await response.json()
                    if state.get("telemetry") and state.get("export_limit") is not None:
                        return
        await asyncio.sleep(0.2)
    raise TimeoutError("the demo did not come up")
