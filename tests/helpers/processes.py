"""Bounds for tests that start the add-on's own process: measured on this machine, not guessed.

A start is mostly Python importing aiohttp, Jinja2 and the package; on a busy machine that
alone can take many seconds. `process_start_s` times one cold import here, once per test
process, and allows ten of them (never less than 20 s). A stop gets what the Supervisor
gives an add-on after SIGTERM.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time

STOP_BUDGET_S = 30.0  # the Supervisor kills an add-on 30 s after SIGTERM
START_FLOOR_S = 20.0
IMPORTS_PER_START = 10  # a start: the imports, then the runtime, the panel, the simulator


@functools.cache
def process_start_s() -> float:
    """How long a start of `python -m sec1000` may take here, from a timed cold import."""
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import sec1000.serve, sec1000.cli, sec1000.simulator"],
        check=True,
    )
    return max(START_FLOOR_S, IMPORTS_PER_START * (time.monotonic() - began))
