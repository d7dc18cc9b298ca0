"""`sec1000 serve`: the add-on process: core runtime, ingress panel, Home Assistant bridge."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from sec1000.ha.bridge import HomeAssistantAdapter
from sec1000.ha.supervisor import (
    SupervisorOptionsStore,
    endpoint_from_env,
    supervisor_token,
    supervisor_url,
)
from sec1000.options import Options, OptionsError, load_options_file, save_options_file
from sec1000.runtime import Runtime, default_data_dir, file_saver
from sec1000.simulator import SimulatorServer

_LOGGER = logging.getLogger(__name__)

SUPERVISOR_OPTIONS = Path("/data/options.json")


def load_startup_options(path: Path) -> tuple[Options, OptionsError | None]:
    """Read the options; broken ones are reported, never overwritten, and the defaults stand in."""
    try:
        return load_options_file(path), None
    except OptionsError as err:
        _LOGGER.error(
            "invalid options in %s: %s; the device is not contacted until they are fixed", path, err
        )
        return Options(), err


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; a watchdog reset under way is restored before exiting."""
    simulator: SimulatorServer | None = None
    data_dir = args.data_dir or default_data_dir()
    options_path = args.options or SUPERVISOR_OPTIONS
    if args.demo:
        simulator = await SimulatorServer(port=0).start()
        if args.data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="sec1000-demo-"))
        options_path = args.options or data_dir / "options.json"
        base = (
            load_options_file(options_path) if options_path.exists() else Options(scan_interval=5)
        )
        save_options_file(
            options_path,
            Options.from_mapping({"host": "127.0.0.1", "port": simulator.port}, base=base),
        )
    options, error = load_startup_options(options_path)

    session = aiohttp.ClientSession()
    token = supervisor_token(os.environ)
    save = file_saver(options_path)
    if token:
        save = SupervisorOptionsStore(session, supervisor_url(os.environ), token).save
    runtime = Runtime(options, data_dir, options_error=error, save_options=save)
    home_assistant = None
    if endpoint := endpoint_from_env(os.environ):
        home_assistant = HomeAssistantAdapter(runtime, endpoint, session)
    else:
        _LOGGER.warning(
            "no Home Assistant configured (SUPERVISOR_TOKEN, or HA_URL and HA_TOKEN): panel only"
        )
    from sec1000.web import create_app

    app = create_app(
        runtime,
        supervised=bool(token),
        ha_status=home_assistant.client.diagnostics if home_assistant is not None else None,
    )
    if simulator is not None:
        from sec1000.simulator.panel import register_demo

        register_demo(app, simulator)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    _LOGGER.warning(
        "panel on http://%s:%d/", "127.0.0.1" if args.host == "0.0.0.0" else args.host, args.port
    )
    if args.demo:
        print(
            f"SEC1000 demo: panel on http://127.0.0.1:{args.port}/ (simulated controller on port {simulator.port if simulator else '?'})",
            flush=True,
        )
    await runtime.start()
    if home_assistant is not None:
        home_assistant.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    _LOGGER.info("stopping")
    await runtime.stop()
    if home_assistant is not None:
        await home_assistant.stop()
    await runner.cleanup()
    await session.close()
    if simulator is not None:
        await simulator.stop()
    return 0
