"""Loopback ports for the tests' servers.

A server bound to port 0 gets a port from the kernel's ephemeral range (32768-60999 on Linux),
the same range every outgoing connection and every other port-0 bind draws from. That is right
for a server that starts once. A server that is stopped and started again on the same port (a
Core, the MQTT broker) must not be given one: while it is down, another test's server, bound to
port 0, may take the port, and the restarted server then fails to bind or its clients reach the
wrong server. Such servers get a `kept_port()` below that range instead, from a block of the
pytest-xdist worker's own, so no two workers hand out the same one.
"""

from __future__ import annotations

import itertools
import os
import socket

KEPT_BASE = 20000
"""Below the ephemeral range: no port-0 bind and no outgoing connection is given these."""
KEPT_BLOCK = 500
"""Ports per pytest-xdist worker (gw0 gets 20000-20499, gw1 20500-20999, …)."""


def free_port() -> int:
    """A free loopback port for a server that starts once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


_next_offset = itertools.count()


def kept_port() -> int:
    """A free loopback port, outside the ephemeral range, for a server that restarts on it."""
    start = KEPT_BASE + _worker_index() * KEPT_BLOCK
    for _ in range(KEPT_BLOCK):
        port = start + next(_next_offset) % KEPT_BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (another run on this machine, or a socket still closing)
            return port
    raise RuntimeError(f"no free loopback port in {start}-{start + KEPT_BLOCK - 1}")
