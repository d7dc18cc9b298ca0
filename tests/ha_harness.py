"""Starts a real Home Assistant Core for the tests: cached Python 3.13 venv, onboarding, a token.

Run `python tests/ha_harness.py --install` to build the cached environment (scripts/dev test does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HA_PACKAGES = ("homeassistant==2025.4.4", "home-assistant-frontend==20250411.0")
VENV = Path(os.environ.get("SEC1000_HA_VENV", ROOT / ".cache" / "ha-venv"))
MARKER = VENV / ("installed-" + "-".join(p.replace("==", "_") for p in HA_PACKAGES))
START_TIMEOUT = 180.0

CONFIGURATION = """\
homeassistant:
  name: SEC1000 test
  latitude: 52.0
  longitude: 5.0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
frontend:
api:
websocket_api:
input_number:
input_button:
input_boolean:
logger:
  default: warning
"""


class HarnessError(RuntimeError):
    """Home Assistant could not be set up; the tests fail, they do not skip."""


def find_python313() -> str:
    """Python 3.13 from pyenv, else python3.13 on PATH."""
    try:
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        root = ""
    candidate = Path(root) / "versions" / "3.13.0" / "bin" / "python3.13"
    if root and candidate.exists():
        return str(candidate)
    found = shutil.which("python3.13")
    if found:
        return found
    raise HarnessError(
        "Python 3.13 is needed to run Home Assistant 2025.4 and was not found (pyenv or PATH)"
    )


def install() -> Path:
    """Create (once, under a file lock) the cached venv with Home Assistant; return its `hass`."""
    hass = VENV / "bin" / "hass"
    if MARKER.exists():
        return hass
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "ha-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MARKER.exists():
            return hass
        started = time.monotonic()
        if not (VENV / "bin" / "python").exists():
            subprocess.run([find_python313(), "-m", "venv", str(VENV)], check=True)
        python = str(VENV / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "uv"], check=True)
        subprocess.run(
            [str(VENV / "bin" / "uv"), "pip", "install", "--python", python, *HA_PACKAGES],
            check=True,
        )
        MARKER.write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    return hass


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(url: str, data: dict[str, str] | None = None, *, form: bool = False) -> dict:  # type: ignore[type-arg]
    body = None
    headers = {}
    if data is not None:
        if form:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@dataclass
class HomeAssistant:
    """One Home Assistant Core process on a loopback port, stoppable and restartable."""

    hass: Path
    config_dir: Path
    port: int = field(default_factory=free_port)
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Where Home Assistant's output goes."""
        return self.config_dir / "hass-output.log"

    def start(self) -> None:
        """Start and wait until the HTTP API answers."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        output = open(self.log, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [str(self.hass), "-c", str(self.config_dir), "--skip-pip", "--log-no-color"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"Home Assistant exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                urllib.request.urlopen(f"{self.url}/api/", timeout=2)
            except urllib.error.HTTPError:
                return  # 401: the API is up
            except OSError:
                time.sleep(0.3)
                continue
            return
        raise HarnessError(
            f"Home Assistant did not answer within {START_TIMEOUT:g} s:\n{self.tail()}"
        )

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and its children."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and configuration."""
        self.stop()
        self.start()

    def onboard(self) -> None:
        """Create the owner through onboarding and keep an access token."""
        client_id = f"{self.url}/"
        code = _request(
            f"{self.url}/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Test Owner",
                "username": "owner",
                "password": "sec1000-tests",
                "language": "en",
            },
        )["auth_code"]
        tokens = _request(
            f"{self.url}/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": client_id},
            form=True,
        )
        self.token = tokens["access_token"]
        self.token = self._long_lived_token()

    def _long_lived_token(self) -> str:
        """A token that outlives restarts (access tokens expire after 30 minutes)."""
        import asyncio

        import aiohttp

        async def fetch() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"{self.url}/api/websocket") as ws,
            ):
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": self.token})
                await ws.receive_json()
                await ws.send_json(
                    {
                        "id": 1,
                        "type": "auth/long_lived_access_token",
                        "client_name": "sec1000 tests",
                        "lifespan": 30,
                    }
                )
                answer = await ws.receive_json()
                return str(answer["result"])

        return asyncio.run(fetch())

    def tail(self, lines: int = 40) -> str:
        """The end of Home Assistant's output."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"


@pytest.fixture(scope="session")
def home_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    """A real, onboarded Home Assistant Core for the whole session."""
    try:
        instance = HomeAssistant(install(), tmp_path_factory.mktemp("home-assistant"))
        started = time.monotonic()
        instance.start()
        instance.onboard()
        print(f"\nHome Assistant started and onboarded in {time.monotonic() - started:.1f} s")
    except (HarnessError, OSError, subprocess.CalledProcessError, KeyError) as err:
        pytest.fail(f"could not start Home Assistant: {err}", pytrace=False)
    try:
        yield instance
    finally:
        instance.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        print(
            f"Home Assistant environment: {install().parent.parent} ({MARKER.read_text().strip()})"
        )
    else:
        print(__doc__)
