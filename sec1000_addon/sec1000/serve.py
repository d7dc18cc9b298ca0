"""`sec1000 serve`: the add-on process: core runtime, ingress panel, Home Assistant bridge."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from sec1000.common.tasks import TaskSet
from sec1000.ha.adapter import HomeAssistantAdapter, Shown
from sec1000.ha.supervisor import (
    SupervisorOptionsStore,
    endpoint_from_env,
    supervisor_token,
    supervisor_url,
)
from sec1000.options import (
    InvalidOptions,
    Options,
    OptionsError,
    load_options_file,
    save_options_file,
    stored_options,
)
from sec1000.plant import Plant, refuse_shared_devices
from sec1000.runtime import Runtime, default_data_dir, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.simulator.prices import DEMO_PRICE_ENTITY, demo_price_state

_LOGGER = logging.getLogger(__name__)

SUPERVISOR_OPTIONS = Path("/data/options.json")
# aiohttp waits up to twice this long for open requests at shutdown (its default is 60 s);
# the live sockets are closed before, so only plain requests can still be open. The
# Supervisor kills the add-on 30 s after SIGTERM and the limiter restore comes first.
HTTP_SHUTDOWN_TIMEOUT = 1.0
# When the panel cannot listen, a pending restore still gets this long before the exit.
RESTORE_BEFORE_EXIT = 20.0


def load_startup_options(path: Path) -> tuple[Options, OptionsError | None]:
    """Read the options; broken ones are reported, never overwritten, and the defaults stand in."""
    try:
        return load_options_file(path), None
    except OptionsError as err:
        _LOGGER.error(
            "invalid options in %s: %s; the device is not contacted until they are fixed", path, err
        )
        return Options(), err


def listen_host(requested: str | None, supervised: bool) -> str:
    """Where the panel listens: as asked, else everywhere under the Supervisor (its ingress
    filter lets only the proxy in), else loopback only."""
    if requested:
        return requested
    return "0.0.0.0" if supervised else "127.0.0.1"


# The demo prints its address after the start-up log lines (the first read takes this long).
DEMO_SETTLE = 1.0


# The demo's additional simulated controllers are named so (SEC1000_DEMO_CONTROLLERS=2 or more).
DEMO_NAMES = ("barn", "garage", "workshop", "annex", "stable", "mill", "dairy")
MAX_DEMO_CONTROLLERS = 1 + len(DEMO_NAMES)


def demo_controllers(env: Mapping[str, str]) -> int:
    """How many simulated controllers the demo runs: SEC1000_DEMO_CONTROLLERS, 1 to 8."""
    raw = env.get("SEC1000_DEMO_CONTROLLERS", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DEMO_CONTROLLERS:
        raise OptionsError(
            {
                "SEC1000_DEMO_CONTROLLERS": f"must be a whole number from 1 to "
                f"{MAX_DEMO_CONTROLLERS}, not {raw!r}"
            }
        )
    return int(raw)


async def start_demo(
    args: argparse.Namespace, data_dir: Path
) -> tuple[list[SimulatorServer], Path, Path]:
    """Simulated controllers on loopback (one, or SEC1000_DEMO_CONTROLLERS), and an options
    file pointing at them."""
    count = args.demo_controllers or demo_controllers(os.environ)
    simulators = [await SimulatorServer(port=0).start() for _ in range(count)]
    if args.data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="sec1000-demo-"))
    options_path = args.options or data_dir / "options.json"
    base = load_options_file(options_path) if options_path.exists() else Options(scan_interval=5)
    demo: dict[str, object] = {"host": "127.0.0.1", "port": simulators[0].port}
    demo["controllers"] = [
        {"name": name, "host": "127.0.0.1", "port": simulator.port}
        for name, simulator in zip(DEMO_NAMES, simulators[1:], strict=False)
    ]
    if not base.price_entity:  # show the price policy at work on the simulated price
        demo |= {"price_entity": DEMO_PRICE_ENTITY, "price_policy": True, "export_on_above": 0.02}
    save_options_file(options_path, Options.from_mapping(demo, base=base))
    return simulators, data_dir, options_path


def build_app(
    plant: Plant,
    home_assistant: HomeAssistantAdapter | None,
    simulators: Sequence[SimulatorServer],
    *,
    supervised: bool,
    signin_url: str | None,
) -> web.Application:
    """The panel on every controller, with the demo's switches (the simulators in the order
    of the controllers), and the Home Assistant sign-in where it listens on the network
    (`signin_url`: the panel's address as browsers reach it)."""
    from sec1000.web import create_app

    runtime = plant.first
    app = create_app(
        plant,
        supervised=supervised,
        ha_status=home_assistant.diagnostics if home_assistant is not None else None,
    )
    if home_assistant is not None:
        from sec1000.web.keys import HOME_ASSISTANT, PRICE_SENSORS

        app[PRICE_SENSORS] = lambda: home_assistant.price_sensors
        app[HOME_ASSISTANT] = home_assistant
    if simulators:
        from sec1000.simulator.panel import register_demo

        for name, simulator in zip(plant.names, simulators, strict=False):
            register_demo(app, simulator, name)
    if signin_url is not None:
        from sec1000.web.auth import setup_auth
        from sec1000.web.signin import HomeAssistantSignIn

        signin = HomeAssistantSignIn(
            ha_url=os.environ["HA_URL"].strip(),
            public_url=signin_url,
            ha_external_url=os.environ.get("HA_EXTERNAL_URL") or None,
        )
        setup_auth(app, signin, data_dir=runtime.data_dir)
    return app


@dataclass
class Process:
    """What `serve` builds: the core, the Home Assistant side, the panel, and the demo's parts."""

    plant: Plant
    home_assistant: HomeAssistantAdapter
    app: web.Application
    session: aiohttp.ClientSession
    simulators: list[SimulatorServer]
    host: str
    tasks: TaskSet = field(default_factory=TaskSet)
    # The demo's own data folder (no --data-dir given): removed at exit, nothing left in /tmp.
    scratch: Path | None = None

    @property
    def runtime(self) -> Runtime:
        """The first controller's runtime."""
        return self.plant.first

    @property
    def simulator(self) -> SimulatorServer | None:
        """The demo's first simulated controller."""
        return self.simulators[0] if self.simulators else None


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; a watchdog reset under way is restored before exiting.

    The core starts first, so a restore left pending by an earlier run is done even when the
    panel cannot listen (its port taken)."""
    from sec1000.web.auth import needs_auth

    stop = stop_event()  # before anything: a SIGTERM during start-up is a clean stop too
    token = supervisor_token(os.environ)
    host = listen_host(args.host, bool(token))
    signin = needs_auth(host, bool(token))
    if signin and not os.environ.get("HA_URL", "").strip():
        _LOGGER.error(
            "the panel on %s would be open to the network: set HA_URL and HA_TOKEN (users then "
            "sign in with Home Assistant), or listen on 127.0.0.1 (--host)",
            host,
        )
        return 2
    signin_url = public_url(os.environ, host, args.port) if signin else None
    if signin and signin_url is None:
        _LOGGER.error(
            "the panel listens on every address (%s): set SEC1000_PUBLIC_URL to its address as "
            "browsers reach it (e.g. http://192.168.1.10:%d/), so the sign-in never follows a "
            "request's Host header",
            host,
            args.port,
        )
        return 2
    process = await build(args, host, token, signin_url)
    try:
        await process.plant.start()  # a pending restore first
        runner = await listen(process, args.port)
        if runner is None:
            await wait_for_restore(process.plant)
            return 1
        process.home_assistant.start()
        if process.simulator is not None:
            process.tasks.spawn(feed_demo_prices(process.plant), name="sec1000-demo-prices")
            await announce_demo(process, args.port)
        await stop.wait()
        _LOGGER.info("stopping")
        await shut_down(process, runner)
    finally:
        await release(process)
    return 0


def public_url(env: Mapping[str, str], host: str, port: int) -> str | None:
    """The panel's address as browsers reach it: SEC1000_PUBLIC_URL, else the address it
    listens on; None when it listens on every address and nothing says which one."""
    if configured := env.get("SEC1000_PUBLIC_URL", "").strip():
        return configured
    if host in ("", "0.0.0.0", "::"):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def build(
    args: argparse.Namespace, host: str, token: str | None, signin_url: str | None
) -> Process:
    """The simulator (demo), the options, the core, Home Assistant's side and the panel."""
    simulators: list[SimulatorServer] = []
    data_dir = args.data_dir or default_data_dir()
    options_path = args.options or SUPERVISOR_OPTIONS
    if args.demo:
        simulators, data_dir, options_path = await start_demo(args, data_dir)
    options, error = load_startup_options(options_path)
    options = await refuse_shared_devices(options)
    invalid = InvalidOptions(error, stored_options(options_path)) if error is not None else None
    session = aiohttp.ClientSession()
    save = file_saver(options_path)
    supervisor = None
    if token:
        supervisor = SupervisorOptionsStore(session, supervisor_url(os.environ), token)
        save = supervisor.save
    plant = Plant(options, data_dir, invalid=invalid, save_options=save)
    endpoint = endpoint_from_env(os.environ)
    if endpoint is None and not simulators:
        _LOGGER.warning(
            "no Home Assistant configured (SUPERVISOR_TOKEN, or HA_URL and HA_TOKEN): panel "
            "only, and the MQTT device when a broker is set"
        )
    from sec1000.web.i18n import choose, translator  # the headline attribute's language

    home_assistant = HomeAssistantAdapter(
        plant,
        endpoint,
        session,
        supervisor=supervisor,
        shown=Shown(
            panel_url=os.environ.get("SEC1000_PUBLIC_URL") or None,
            words=lambda language: translator(choose(None, language)),
        ),
    )
    app = build_app(
        plant, home_assistant, simulators, supervised=bool(token), signin_url=signin_url
    )
    scratch = data_dir if args.demo and args.data_dir is None else None
    return Process(plant, home_assistant, app, session, simulators, host, scratch=scratch)


async def listen(process: Process, port: int) -> web.AppRunner | None:
    """The panel on its port; None (logged) when it cannot listen there."""
    runner = web.AppRunner(process.app, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, process.host, port).start()
    except OSError as err:
        _LOGGER.error("the panel cannot listen on %s:%d: %s", process.host, port, err)
        await runner.cleanup()
        return None
    if process.simulator is None:
        _LOGGER.warning("panel on http://%s:%d/", shown_host(process.host), port)
    return runner


def shown_host(host: str) -> str:
    """The address a browser uses for `host` (the wildcard shown as loopback)."""
    return "127.0.0.1" if host == "0.0.0.0" else host


async def announce_demo(process: Process, port: int) -> None:
    """The demo's address, once and last: after the start-up lines."""
    assert process.simulator is not None
    await asyncio.sleep(DEMO_SETTLE)
    ports = ", ".join(str(simulator.port) for simulator in process.simulators)
    several = "s" if len(process.simulators) > 1 else ""
    print(
        f"SEC1000 demo: runs without Home Assistant, on simulated controller{several} "
        f"(port{several} {ports}) and a simulated price\n"
        f"SEC1000 demo: panel on http://{shown_host(process.host)}:{port}/",
        flush=True,
    )


async def wait_for_restore(plant: Plant) -> None:
    """Before giving up: let pending restores reach their controllers (bounded)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(plant.wait_ready(), RESTORE_BEFORE_EXIT)
    await _step(plant.stop(), "restoring and stopping the core")


async def shut_down(process: Process, runner: web.AppRunner) -> None:
    """The core (the limiter restored, writes finished) alongside the live sockets, then Home
    Assistant's side and the panel."""
    from sec1000.web.keys import HUB

    await process.tasks.cancel()
    # The live sockets close while the server still reads their answers, and alongside the
    # limiter restore: the panel follows the restore by polling, which stays up until the end.
    await asyncio.gather(
        _step(process.plant.stop(), "restoring and stopping the core"),
        _step(process.app[HUB].close_sockets(), "closing the live sockets"),
    )
    await _step(process.home_assistant.stop(), "stopping the Home Assistant bridge")
    await _step(runner.cleanup(), "stopping the panel")


async def release(process: Process) -> None:
    """What is left open on every path out: the HTTP session and the demo's simulator."""
    await process.tasks.cancel()
    await _step(process.session.close(), "closing the HTTP session")
    for simulator in process.simulators:
        await _step(simulator.stop(), "stopping the simulator")
    if process.scratch is not None:
        await _step(
            asyncio.to_thread(shutil.rmtree, process.scratch, True), "removing the demo's folder"
        )


async def feed_demo_prices(plant: Plant) -> None:
    """The demo's simulated price sensor, as Home Assistant would report it, every minute, to
    every controller's policy."""
    while True:
        state, attributes = demo_price_state(datetime.datetime.now().astimezone())
        for runtime in list(plant.runtimes.values()):
            if runtime.options.price_entity == DEMO_PRICE_ENTITY:
                runtime.policy.price_changed(state, attributes)
        await asyncio.sleep(60)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _step(step: Awaitable[object], what: str) -> None:
    """One step of the stop: a failure is logged and the next step still runs."""
    try:
        await step
    except Exception:
        _LOGGER.exception("%s failed", what)
