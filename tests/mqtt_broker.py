"""A real MQTT broker for the tests: Debian's mosquitto on a free loopback port (a pytest plugin).

Fixtures:
- `mosquitto` (function) -> Mosquitto: a broker of the test's own, stopped after it;
  `stop()`, `start()` and `restart()` keep its port, so clients can reconnect. It keeps no
  retained messages across a restart, as a broker without persistence.

`set_up_mqtt(ha, broker)` sets up a real Home Assistant's MQTT integration on such a broker.

`scripts/dev test` installs the `mosquitto` package; without it these tests fail, never skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from tests.helpers.ports import kept_port

if TYPE_CHECKING:
    from tests.ha_harness import HomeAssistant

START_TIMEOUT = 10.0


def mosquitto_binary() -> str:
    """The mosquitto program (Debian installs it in /usr/sbin)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            "mosquitto is not installed: run scripts/dev test (apt package mosquitto)"
        )
    return found


class Mosquitto:
    """One mosquitto process on 127.0.0.1:<port>, anonymous access, no persistence."""

    def __init__(self, directory: Path) -> None:
        self.host = "127.0.0.1"
        self.port = kept_port()  # kept across restarts: outside the ephemeral range
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            f"log_dest file {self.log}\nlog_type all\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it takes connections."""
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.tail()}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same port; retained messages are lost."""
        self.stop()
        self.start()

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def set_up_mqtt(ha: HomeAssistant, broker: Mosquitto) -> None:
    """Home Assistant's MQTT integration on `broker`, through the config-flow API, as a user
    adds it (the flow asks for the broker and port, then creates the entry)."""
    async with aiohttp.ClientSession(headers=ha.headers) as session:
        async with session.post(
            f"{ha.api_url}/config/config_entries/flow", json={"handler": "mqtt"}
        ) as response:
            flow = await response.json()
            if response.status != 200:
                raise RuntimeError(f"cannot start the MQTT config flow: {flow}")
        async with session.post(
            f"{ha.api_url}/config/config_entries/flow/{flow['flow_id']}",
            json={"broker": broker.host, "port": broker.port},
        ) as response:
            result = await response.json()
            if result.get("type") != "create_entry":
                raise RuntimeError(f"the MQTT config flow did not finish: {result}")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker of the test's own."""
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
