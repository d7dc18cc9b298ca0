"""Start a real Home Assistant Core for the tests (a pytest plugin; no mocks of Home Assistant).

Two Cores, each in a virtualenv of its own cached under `.cache/ha-<version>` (the folder:
SEC1000_HA_CACHE), installed with uv once; a file lock keeps parallel runs from installing twice,
a marker file records a finished install:

- 2025.4.4, the oldest the add-on supports (`homeassistant:` in config.yaml), on pyenv's Python
  3.13.0 (else `python3.13` on PATH);
- 2026.2.3, the newest that installs here, on Python 3.13.5, which pyenv builds from Debian's
  source package (scripts/python_from_debian.sh; python.org is out of reach here).

Every fixture below is parametrized by Core (`ha_core`), so each real-Core test runs on both;
`pytest --ha-core 2025.4.4` picks one. Without a Core the tests fail, never skip. Under
pytest-xdist (`-n 3 --dist loadgroup`, as scripts/dev test runs) every test of one Core runs in
one worker, so each session fixture below is made once per Core.

Fixtures (register with `pytest_plugins = ["tests.ha_harness"]` in the root conftest):

- `ha_core` (session) -> Core: the version under test, and the Python it runs on.
- `ha_install` (session) -> Path of that Core's `hass`.
- `ha_template` (session) -> HomeAssistantTemplate: a config dir onboarded once per session
  (owner user, long-lived token); instances start from copies of it, so they need no onboarding.
- `home_assistant` (session) -> HomeAssistant: one running instance shared by the session.
  A test that stops it must start it again (`finally: ha.ensure_running()`).
- `fresh_home_assistant` (function) -> HomeAssistant: a running instance of the test's own, for
  tests that stop, restart or crash it; killed after the test.
- `home_assistant_factory` (function) -> Callable[[], HomeAssistant]: more own instances (not
  started: call `start()` / `await async_start()`); all killed after the test.

A HomeAssistant is stopped and started on the same port and config dir: `stop()`, `start()`,
`restart()`, `kill()` (SIGKILL, a crash), each also as `async_*` (run in a thread). Its token is a
long-lived access token, so it works across restarts. Every process is killed at the end (fixture
teardown, session end, and atexit); on failure the tail of the Home Assistant log is shown.

Core's log is a check of its own: a line at WARNING or above that names the add-on (`sec1000`)
fails the test that was running (`@pytest.mark.ha_log_allows(regex)` lets a test expect one).

Build the cached environments ahead (scripts/dev test does): `python tests/ha_harness.py --install`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a script (`--install`): the repository is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.ports import kept_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON_FROM_DEBIAN = ROOT / "scripts" / "python_from_debian.sh"


@dataclass(frozen=True)
class Core:
    """One Home Assistant Core the tests run on: its version, its frontend, its Python."""

    version: str
    frontend: str
    python: str  # the pyenv version it runs on
    python_from_debian: bool = False  # pyenv builds it from Debian's source when missing

    @property
    def packages(self) -> tuple[str, ...]:
        """What its venv holds. Core's MQTT integration needs paho-mqtt in Core's own
        environment; --skip-pip won't add it."""
        return (
            f"homeassistant=={self.version}",
            f"home-assistant-frontend=={self.frontend}",
            "paho-mqtt==2.1.0",
        )


CORES = (
    Core("2025.4.4", "20250411.0", "3.13.0"),
    Core("2026.2.3", "20260128.6", "3.13.5", python_from_debian=True),
)
OLDEST, NEWEST = CORES[0], CORES[-1]
INSTALL_TIMEOUT = 1800.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
OWNER = {"name": "Test Owner", "username": "owner", "password": "sec1000-tests", "language": "en"}
TOKEN_LIFESPAN_DAYS = 3650
HA_MARKER = "homeassistant"

# The integrations the add-on needs; `homeassistant` and `persistent_notification` are core and
# always set up, `frontend` and the input_* helpers are in Home Assistant's default set anyway.
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
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
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


# ---------------------------------------------------------------- the cached environment


def cache_dir() -> Path:
    """Where the Home Assistant virtualenvs live (SEC1000_HA_CACHE, default .cache)."""
    return Path(os.environ.get("SEC1000_HA_CACHE") or ROOT / ".cache").absolute()


def venv_dir(core: Core) -> Path:
    """The virtualenv of one Core: <cache>/ha-<version>."""
    return cache_dir() / f"ha-{core.version}"


def marker_path(venv: Path) -> Path:
    """The file that says the install into `venv` finished."""
    return venv / "sec1000-installed.json"


def find_python(core: Core) -> str:
    """The Python `core` runs on: pyenv's, built from Debian's source when the Core needs that;
    for 3.13.0 also `python3.13` on PATH. HarnessError when there is none."""
    if core.python_from_debian:
        return _python_from_debian(core.python)
    try:
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        root = ""
    if root:
        candidate = Path(root) / "versions" / core.python / "bin" / "python3.13"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("python3.13")
    if found:
        return found
    raise HarnessError(
        f"Python {core.python} is needed to run Home Assistant {core.version} and was found "
        f"neither in pyenv ($(pyenv root)/versions/{core.python}/bin/python3.13) nor as "
        "python3.13 on PATH"
    )


def _python_from_debian(version: str) -> str:
    log = cache_dir() / f"python-{version}-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run(
            [str(PYTHON_FROM_DEBIAN), version],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise HarnessError(f"could not build Python {version} from Debian's source:\n{tail}")
    return result.stdout.strip().splitlines()[-1]


def _run_logged(command: list[str], log: Path, timeout: float) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        try:
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise HarnessError(f"{command[0]} took longer than {timeout:g} s; see {log}") from err
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise HarnessError(f"{' '.join(command[:4])} … failed ({result.returncode}):\n{tail}")


def _venv_python_works(python: Path) -> bool:
    try:
        subprocess.run([str(python), "-c", "pass"], check=True, timeout=60, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def install(core: Core) -> Path:
    """Create the cached venv of `core` once (under a file lock); return its `hass`.

    Idempotent and cheap when the marker file is there.
    """
    venv = venv_dir(core)
    hass = venv / "bin" / "hass"
    marker = marker_path(venv)
    if _installed(marker, core) and hass.exists():
        return hass
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run installs; we wait, then reuse it
        if _installed(marker, core) and hass.exists():
            return hass
        log = venv.parent / f"{venv.name}-install.log"
        log.write_text("")
        started = time.monotonic()
        python = venv / "bin" / "python"
        if venv.exists() and not _venv_python_works(python):
            shutil.rmtree(venv)  # a venv whose interpreter went away (pyenv reinstalled)
        if not python.exists():
            _run_logged([find_python(core), "-m", "venv", str(venv)], log, 300)
        _run_logged(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"],
            log,
            600,
        )
        _run_logged(
            [str(venv / "bin" / "uv"), "pip", "install", "--python", str(python), *core.packages],
            log,
            INSTALL_TIMEOUT,
        )
        if not hass.exists():
            raise HarnessError(f"the install finished but {hass} is missing; see {log}")
        seconds = time.monotonic() - started
        marker.write_text(json.dumps({"packages": core.packages, "seconds": round(seconds, 1)}))
        print(f"\nHome Assistant {core.version} installed into {venv} in {seconds:.0f} s")
    return hass


def _installed(marker: Path, core: Core) -> bool:
    """The marker records a finished install of exactly the Core's packages."""
    try:
        return tuple(json.loads(marker.read_text())["packages"]) == core.packages
    except (OSError, ValueError, KeyError, TypeError):
        return False


def install_seconds(core: Core) -> float | None:
    """How long the cached install took, from its marker file."""
    try:
        return float(json.loads(marker_path(venv_dir(core)).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------- HTTP helpers (stdlib only)


def _request(
    url: str,
    data: dict[str, Any] | None = None,
    *,
    form: bool = False,
    token: str | None = None,
    timeout: float = 30,
) -> Any:
    body = None
    headers: dict[str, str] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if data is not None:
        if form:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _run_coroutine_in_thread(factory: Callable[[], Any]) -> Any:
    """asyncio.run in a thread of its own: works whether or not the caller's loop is running."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target, name="ha-harness-websocket")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# ---------------------------------------------------------------- one Home Assistant process

_PROCESSES: set[subprocess.Popen[bytes]] = set()
_INSTANCES: weakref.WeakSet[HomeAssistant] = weakref.WeakSet()
# A log record: "2025-04-30 12:00:00.123 WARNING (MainThread) [logger] message", then any
# continuation lines (a traceback) up to the next record.
_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ([A-Z]+) ", re.M)
_PROBLEM_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
ADDON_NAME = re.compile(r"sec1000", re.I)


def log_records(text: str) -> list[str]:
    """Split Core's log output into records (a record's continuation lines stay with it)."""
    starts = [match.start() for match in _RECORD_START.finditer(text)]
    ends = [*starts[1:], len(text)]
    return [text[start:end].rstrip("\n") for start, end in zip(starts, ends, strict=False)]


def _is_addon_problem(record: str) -> bool:
    match = _RECORD_START.match(record)
    return bool(match and match.group(1) in _PROBLEM_LEVELS and ADDON_NAME.search(record))


# Runs in the child, then becomes `hass` (same pid): the kernel SIGKILLs it when the thread that
# started it ends (PR_SET_PDEATHSIG survives exec).
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("the test process went away before Home Assistant started")
os.execv(sys.argv[2], sys.argv[2:])
"""


class _Spawner:
    """Starts every `hass` from one thread that lives as long as this process, each told to die
    with that thread: even a pytest killed with SIGKILL, or ended by os._exit (pytest-timeout's
    thread method), leaves no Home Assistant behind."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[list[str], dict[str, Any], Future[Any]]] = queue.Queue()
        threading.Thread(target=self._serve, name="ha-harness-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            command, kwargs, result = self._requests.get()
            try:
                result.set_result(subprocess.Popen(command, **kwargs))
            except BaseException as err:
                result.set_exception(err)

    def popen(self, python: Path, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Popen(command) from the spawner thread, through the die-with-parent wrapper."""
        wrapped = [str(python), "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]
        result: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((wrapped, kwargs, result))
        return result.result()


_SPAWNER = _Spawner()


def _hass_environment() -> dict[str, str]:
    """The environment for `hass`: bytecode caching on, so only the first start compiles (a
    start without cached bytecode takes about 4 s longer)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_PROCESSES):
        if process.poll() is None:
            _kill_group(process, signal.SIGKILL)
            process.wait()
        _PROCESSES.discard(process)


@dataclass(eq=False)
class HomeAssistant:
    """One Home Assistant Core process on a loopback port; stop, start and restart keep the port,
    the config dir and the token."""

    core: Core
    hass: Path
    config_dir: Path
    port: int = field(default_factory=kept_port)  # outside the ephemeral range: see ports.py
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)
    stop_seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _INSTANCES.add(self)

    @property
    def version(self) -> str:
        """The Core version, as Core reports it (get_config, auth_ok)."""
        return self.core.version

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST API base, http://127.0.0.1:<port>/api"""
        return f"{self.url}/api"

    @property
    def websocket_url(self) -> str:
        """ws://127.0.0.1:<port>/api/websocket"""
        return f"ws://127.0.0.1:{self.port}/api/websocket"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for REST calls."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def log(self) -> Path:
        """Where Home Assistant's output goes."""
        return self.config_dir / "hass-output.log"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start and wait until Home Assistant reports RUNNING (or, before onboarding, until the
        onboarding API answers); HarnessError with the log's tail when it does not."""
        if self.running:
            return
        started = time.monotonic()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        with self.log.open("ab") as output:
            output.write(f"\n===== start {self.starts + 1} on port {self.port}\n".encode())
            output.flush()
            self.process = _SPAWNER.popen(
                self.hass.parent / "python",
                [str(self.hass), "-c", str(self.config_dir), "--skip-pip", "--log-no-color"],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_hass_environment(),
                start_new_session=True,  # its own process group: stop() gets every child too
            )
        _PROCESSES.add(self.process)
        self.starts += 1
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds.append(time.monotonic() - started)

    def _wait_ready(self, deadline: float) -> None:
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise HarnessError(
                    f"Home Assistant exited with status {self.process.returncode}:\n{self.tail()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"Home Assistant did not come up in time:\n{self.tail()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            if self.token:
                return bool(
                    _request(f"{self.api_url}/core/state", token=self.token, timeout=5).get("state")
                    == "RUNNING"
                )
            _request(f"{self.api_url}/onboarding", timeout=5)
        except urllib.error.HTTPError as err:
            if err.code == 401 and self.token:
                raise HarnessError("Home Assistant refused the harness token") from err
            return False
        except (OSError, ValueError):
            return False
        return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully (SIGTERM; SIGKILL after `timeout`) with every child process."""
        process, self.process = self.process, None
        if process is None:
            return
        started = time.monotonic()
        if process.poll() is None:
            _kill_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait()
            self.stop_seconds.append(time.monotonic() - started)
        _kill_group(process, signal.SIGKILL)  # stray children of the group, if any
        _PROCESSES.discard(process)

    def kill(self) -> None:
        """Crash it: SIGKILL, no shutdown (unsaved storage is lost, as in a power cut)."""
        process, self.process = self.process, None
        if process is None:
            return
        _kill_group(process, signal.SIGKILL)
        process.wait()
        _PROCESSES.discard(process)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop and start again on the same port and configuration."""
        self.stop()
        self.start(timeout)

    def ensure_running(self) -> None:
        """Start it unless it runs (for tests that stop the shared instance)."""
        if not self.running:
            self.start()

    async def async_start(self) -> None:
        """start() in a thread, so the event loop keeps running."""
        await asyncio.to_thread(self.start)

    async def async_stop(self) -> None:
        """stop() in a thread."""
        await asyncio.to_thread(self.stop)

    async def async_restart(self) -> None:
        """restart() in a thread."""
        await asyncio.to_thread(self.restart)

    async def async_kill(self) -> None:
        """kill() in a thread."""
        await asyncio.to_thread(self.kill)

    def onboard(self) -> str:
        """Create the owner through onboarding; keep (and return) a long-lived access token.

        POST /api/onboarding/users gives an auth_code; POST /auth/token exchanges it for an
        access token, which lives 30 minutes; the long-lived one (made with it over the
        WebSocket API) outlives sessions and restarts.
        """
        client_id = f"{self.url}/"
        code = _request(f"{self.api_url}/onboarding/users", {"client_id": client_id, **OWNER})[
            "auth_code"
        ]
        tokens = _request(
            f"{self.url}/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": client_id},
            form=True,
        )
        self.token = self.long_lived_token(tokens["access_token"])
        return self.token

    def long_lived_token(self, access_token: str) -> str:
        """Create a long-lived access token with the WebSocket command."""
        import aiohttp

        async def fetch() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(self.websocket_url) as ws,
            ):
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": access_token})
                answer = await ws.receive_json()
                if answer.get("type") != "auth_ok":
                    raise HarnessError(f"onboarding token refused: {answer}")
                await ws.send_json(
                    {
                        "id": 1,
                        "type": "auth/long_lived_access_token",
                        "client_name": f"sec1000 tests {time.time():.0f}",
                        "lifespan": TOKEN_LIFESPAN_DAYS,
                    }
                )
                answer = await ws.receive_json()
                if not answer.get("success"):
                    raise HarnessError(f"no long-lived token: {answer}")
                return str(answer["result"])

        return str(_run_coroutine_in_thread(fetch))

    def log_size(self) -> int:
        """The log's length in bytes now (where a test's own lines will start)."""
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def addon_problems(self, since: int = 0) -> list[str]:
        """The log records from byte `since` at WARNING or above that name the add-on."""
        try:
            with self.log.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except OSError:
            return []
        return [record for record in log_records(text) if _is_addon_problem(record)]

    def tail(self, lines: int = 60) -> str:
        """The end of Home Assistant's output."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return f"--- {self.log} (last {lines} lines)\n" + "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class HomeAssistantTemplate:
    """An onboarded config dir (owner user and token in .storage) to copy for new instances."""

    core: Core
    hass: Path
    config_dir: Path
    token: str
    seconds: float

    def instance(self, config_dir: Path) -> HomeAssistant:
        """A new, not yet started, instance on a copy of the template and a port of its own."""
        shutil.copytree(
            self.config_dir,
            config_dir,
            ignore=shutil.ignore_patterns("*.log", "*.log.*", "hass-output.log"),
            dirs_exist_ok=True,
        )
        return HomeAssistant(self.core, self.hass, config_dir, token=self.token)


def make_template(core: Core, hass: Path, config_dir: Path) -> HomeAssistantTemplate:
    """Start Home Assistant on a new config dir, onboard it, stop it cleanly (storage flushed)."""
    started = time.monotonic()
    instance = HomeAssistant(core, hass, config_dir)
    try:
        instance.start()
        instance.onboard()
        instance._wait_ready(time.monotonic() + START_TIMEOUT)  # all of the startup done
    finally:
        instance.stop()
    if not (config_dir / ".storage" / "auth").exists():
        raise HarnessError(f"onboarding left no .storage/auth:\n{instance.tail()}")
    return HomeAssistantTemplate(core, hass, config_dir, instance.token, time.monotonic() - started)


# ---------------------------------------------------------------- pytest plugin

_INSTALL_ERRORS: dict[str, str] = {}


def _fail(what: str, err: BaseException) -> None:
    pytest.fail(f"{what}: {err}", pytrace=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    """--ha-core VERSION: run the real-Core tests on that Core only (repeatable)."""
    parser.addoption(
        "--ha-core",
        action="append",
        choices=[core.version for core in CORES],
        help="run the Home Assistant tests on this Core only (default: every Core)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """The marker that lets a test expect a Core log line about the add-on."""
    config.addinivalue_line(
        "markers", "ha_log_allows(pattern): Core log lines about the add-on this test expects"
    )


def selected_cores(config: pytest.Config) -> tuple[Core, ...]:
    """The Cores of --ha-core, else every Core."""
    chosen = config.getoption("ha_core", None) or [core.version for core in CORES]
    return tuple(core for core in CORES if core.version in chosen)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that needs a Core (through any fixture) runs once per selected Core."""
    if "ha_core" in metafunc.fixturenames:
        cores = selected_cores(metafunc.config)
        metafunc.parametrize(
            "ha_core", cores, ids=[core.version for core in cores], indirect=True, scope="session"
        )


def core_group(nodeid: str) -> str | None:
    """The Core a test runs on, from its id (`…[2025.4.4]`, `…[2025.4.4-other]`), or None."""
    params = nodeid[nodeid.find("[") :] if nodeid.endswith("]") else ""
    for core in CORES:
        if re.search(rf"[\[-]{re.escape(core.version)}[\]-]", params):
            return f"ha-{core.version}"
    return None


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, unknown without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist with `--dist loadgroup`, every test of one Core goes to one worker:
    that worker onboards the Core once and shares its instance, while the others run the other
    Core's tests and the rest, a test at a time. (xdist's own `xdist_group` marker cannot do it
    on pytest 9.2, which no longer takes the group xdist writes into the test's id.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerPerCore(LoadScopeScheduling):
        """Work units: all of a Core's tests, or one other test; the biggest go first."""

        def _split_scope(self, nodeid: str) -> str:
            return core_group(nodeid) or nodeid

    return OneWorkerPerCore(config, log)


def _cores_of(items: list[pytest.Item]) -> list[Core]:
    wanted = {
        getattr(item, "callspec", None) and item.callspec.params.get("ha_core") for item in items
    }
    return [core for core in CORES if core in wanted]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Install ahead of the first test every Core the selected tests need, so the one-time
    install is outside the per-test timeout."""
    if session.config.option.collectonly:
        return
    for core in _cores_of(session.items):
        try:
            install(core)
        except (HarnessError, OSError) as err:
            _INSTALL_ERRORS[core.version] = str(err)  # reported by the fixture, in each test


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No Home Assistant outlives the session."""
    _kill_leftovers()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail the test when any Core wrote a WARNING (or worse) about the add-on meanwhile."""
    marks = {instance: instance.log_size() for instance in list(_INSTANCES)}
    result = yield
    allowed = [
        re.compile(pattern) for mark in item.iter_markers("ha_log_allows") for pattern in mark.args
    ]
    problems = [
        record
        for instance in list(_INSTANCES)
        for record in instance.addon_problems(marks.get(instance, 0))
        if not any(pattern.search(record) for pattern in allowed)
    ]
    if problems:
        pytest.fail(
            "Home Assistant logged about the add-on:\n" + "\n".join(problems), pytrace=False
        )
    return result


@pytest.fixture(scope="session")
def ha_core(request: pytest.FixtureRequest) -> Core:
    """The Core under test (the parameter pytest_generate_tests gives)."""
    core: Core = request.param
    return core


@pytest.fixture(scope="session")
def ha_install(ha_core: Core) -> Path:
    """The `hass` of that Core's cached environment (installed on first use)."""
    if ha_core.version in _INSTALL_ERRORS:
        pytest.fail(
            f"could not install Home Assistant {ha_core.version}: "
            f"{_INSTALL_ERRORS[ha_core.version]}",
            pytrace=False,
        )
    try:
        return install(ha_core)
    except (HarnessError, OSError) as err:
        _fail(f"could not install Home Assistant {ha_core.version}", err)
        raise


@pytest.fixture(scope="session")
def ha_template(
    ha_core: Core, ha_install: Path, tmp_path_factory: pytest.TempPathFactory
) -> HomeAssistantTemplate:
    """An onboarded config dir, made once per session and Core."""
    try:
        template = make_template(
            ha_core, ha_install, tmp_path_factory.mktemp(f"ha-template-{ha_core.version}")
        )
    except (HarnessError, OSError, KeyError) as err:
        _fail(f"could not start and onboard Home Assistant {ha_core.version}", err)
        raise
    print(
        f"\nHome Assistant {ha_core.version} onboarded template ready in {template.seconds:.1f} s"
    )
    return template


@pytest.fixture(scope="session")
def home_assistant(
    ha_template: HomeAssistantTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAssistant]:
    """A real, onboarded Home Assistant Core shared by the whole session."""
    instance = ha_template.instance(tmp_path_factory.mktemp("home-assistant"))
    try:
        instance.start()
    except (HarnessError, OSError) as err:
        _fail("could not start Home Assistant", err)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def home_assistant_factory(
    ha_template: HomeAssistantTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], HomeAssistant]]:
    """Make instances of the test's own (not started); all are killed after the test."""
    made: list[HomeAssistant] = []

    def make() -> HomeAssistant:
        instance = ha_template.instance(tmp_path_factory.mktemp("home-assistant-own"))
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop(timeout=10)


@pytest.fixture
async def fresh_home_assistant(
    home_assistant_factory: Callable[[], HomeAssistant],
) -> HomeAssistant:
    """A running Home Assistant of the test's own (to stop, restart or crash)."""
    instance = await asyncio.to_thread(home_assistant_factory)  # copies the template
    try:
        await instance.async_start()
    except (HarnessError, OSError) as err:
        _fail("could not start Home Assistant", err)
    return instance


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Show the tail of every Home Assistant log of a failed test."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            if isinstance(value, HomeAssistant):
                report.sections.append((f"Home Assistant log ({name})", value.tail()))
    return report


def _cores_from(argv: list[str]) -> tuple[Core, ...]:
    chosen = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--ha-core"]
    return tuple(core for core in CORES if not chosen or core.version in chosen)


def _main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--install"]:
        for core in _cores_from(args):
            started = time.monotonic()
            hass = install(core)
            print(
                f"Home Assistant {core.version} on Python {core.python}: {hass.parent.parent} "
                f"(install took {install_seconds(core) or 0:.0f} s; "
                f"check {time.monotonic() - started:.1f} s)"
            )
    elif args[:1] == ["--timings"]:
        for core in _cores_from(args):
            _print_timings(core)
    else:
        print(__doc__)


def _print_timings(core: Core) -> None:
    with tempfile.TemporaryDirectory(prefix="sec1000-ha-timing-") as tmp:
        template = make_template(core, install(core), Path(tmp) / "template")
        print(f"{core.version} template (start + onboard + stop): {template.seconds:.1f} s")
        instance = template.instance(Path(tmp) / "instance")
        try:
            instance.start()
            instance.restart()
            print(f"{core.version} start from the template: {instance.start_seconds[0]:.1f} s")
            print(f"{core.version} stop: {instance.stop_seconds[0]:.1f} s")
            print(f"{core.version} start after a restart: {instance.start_seconds[1]:.1f} s")
        finally:
            instance.stop()


if __name__ == "__main__":
    _main()
