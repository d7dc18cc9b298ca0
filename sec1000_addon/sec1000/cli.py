"""Command line: one-shot operations, the simulator, and `serve` (the add-on itself)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.handlers
import os
import queue
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sec1000 import __version__
from sec1000.commands import COMMANDS, CommandName, CommandSpec
from sec1000.limiter.audit import AuditLog
from sec1000.operations import CLI, CommandResult
from sec1000.options import (
    FIRST_CONTROLLER,
    PYTHON_LOG_LEVELS,
    Options,
    OptionsError,
    load_options_file,
)
from sec1000.plant import controller_dir
from sec1000.protocol import describe_feedback
from sec1000.runtime import DEFAULT_PANEL_PORT, Runtime, default_data_dir
from sec1000.simulator import FAULTS, SimulatorServer

_LOGGER = logging.getLogger(__name__)

# A one-shot command that left a restore pending keeps trying this long before giving up the process.
CLI_RESTORE_DEADLINE = 60.0


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="controller address (default: from the options file)")
    parser.add_argument("--port", type=int, help="controller TCP port (default 1234)")
    parser.add_argument(
        "--options", type=Path, help="options file (JSON) with limits, capacity and mode"
    )
    parser.add_argument("--data-dir", type=Path, help="where the watchdog restore record is kept")
    parser.add_argument("--gap-ms", type=int, help="minimum gap between packets (default 1000)")
    parser.add_argument("--timeout", type=int, help="seconds to wait for an answer (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--controller",
        metavar="NAME",
        help="the controller to act on, by its name in the options' controllers (default: "
        "the first, the top-level options)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="sec1000", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sec1000 {__version__}")
    parser.add_argument(
        "--log-level",
        choices=sorted(PYTHON_LOG_LEVELS),
        help="how much to log (default: error; warning for serve and simulate)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    _command_parsers(commands)

    simulate = commands.add_parser("simulate", help="run the simulated controller")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=1234)
    simulate.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=FAULTS,
        metavar="NAME",
        help="switch a fault on at start: " + ", ".join(FAULTS),
    )

    serve = commands.add_parser("serve", help="run the add-on: device, panel, Home Assistant")
    serve.add_argument("--options", type=Path, help="options file (default /data/options.json)")
    serve.add_argument(
        "--host",
        default=None,
        help="panel listen address (default 0.0.0.0 under the Supervisor, else 127.0.0.1; any "
        "other address needs HA_URL and HA_TOKEN: users sign in with Home Assistant)",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PANEL_PORT, help="panel port (default 8099)"
    )
    serve.add_argument(
        "--demo", action="store_true", help="start a simulated controller on loopback"
    )
    serve.add_argument("--data-dir", type=Path, help="persistent data directory")
    serve.add_argument(
        "--demo-controllers",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="with --demo: this many simulated controllers, 1 to 8 (default: "
        "SEC1000_DEMO_CONTROLLERS, else 1)",
    )
    return parser


def _command_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """One subcommand per registry entry with a CLI form (`export on|off` shares one)."""
    forms: dict[str, list[CommandSpec]] = {}
    for spec in COMMANDS:
        if spec.cli is not None:
            forms.setdefault(spec.cli.name, []).append(spec)
    for name, specs in forms.items():
        first = specs[0]
        assert first.cli is not None
        if first.cli.choice is not None:
            text = "; ".join(f"{s.cli.choice}: {s.help}" for s in specs if s.cli is not None)
            parser = commands.add_parser(name, help=text)
            parser.add_argument("choice", choices=[s.cli.choice for s in specs if s.cli])
        else:
            parser = commands.add_parser(name, help=first.help)
        for param in first.params:
            if param.required:
                parser.add_argument(param.name, choices=param.choices or None, help=param.help)
        for flag in first.cli.flags:
            parser.add_argument(flag.flag, action="store_true", help=flag.help)
        parser.set_defaults(specs={s.cli.choice: s for s in specs if s.cli is not None})
        _device_arguments(parser)


def chosen_command(args: argparse.Namespace) -> tuple[CommandSpec, dict[str, object]]:
    """The registry entry a parsed command line names, and its raw parameters."""
    spec: CommandSpec = args.specs[getattr(args, "choice", None)]
    data: dict[str, object] = {
        p.name: getattr(args, p.name) for p in spec.params if hasattr(args, p.name)
    }
    assert spec.cli is not None
    for flag in spec.cli.flags:
        if getattr(args, flag.flag.lstrip("-").replace("-", "_")):
            data[flag.param] = flag.value
    return spec, data


def load_device_options(args: argparse.Namespace) -> Options:
    """Options for a one-shot command: the chosen controller's, from the file (if any), with
    command-line overrides. Raises OptionsError for a controller the file does not name."""
    path = args.options or Path(os.environ.get("SEC1000_OPTIONS", "/data/options.json"))
    document = load_options_file(path) if (args.options or path.exists()) else Options()
    name = args.controller or FIRST_CONTROLLER
    try:
        options = document.of_controller(name)
    except KeyError:
        raise OptionsError(
            {
                "controller": f"no controller named {name!r} in {path}: the controllers are "
                + ", ".join(document.controller_names)
            }
        ) from None
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.gap_ms is not None:
        overrides["request_gap_ms"] = args.gap_ms
    if args.timeout is not None:
        overrides["request_timeout"] = args.timeout
    return Options.from_mapping(overrides, base=options) if overrides else options


async def _one_shot(args: argparse.Namespace) -> int:
    options = load_device_options(args)
    name = args.controller or FIRST_CONTROLLER
    data_dir = args.data_dir or default_data_dir()
    runtime = Runtime(
        options,
        controller_dir(data_dir, name),
        audit=AuditLog(data_dir).for_controller(name),
    )
    deadline = time.monotonic() + CLI_RESTORE_DEADLINE
    if not await runtime.watchdog.resume_pending(deadline):
        _fail(
            "a watchdog restore is still pending: the export limiter is not confirmed back on; "
            "run the command again or check the controller"
        )
        return 3
    spec, data = chosen_command(args)
    task = asyncio.create_task(runtime.ops.run(spec.name, data, CLI))
    stopping: list[asyncio.Task[None]] = []  # referenced, so the restore cannot be collected

    def on_stop_signal() -> None:
        if not stopping:
            stopping.append(asyncio.create_task(_interrupt(runtime, task)))

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop_signal)
    try:
        result = await task
    except asyncio.CancelledError:
        _fail("interrupted")
        return 130
    if not result.ok:
        _fail(
            f"{result.message} (feedback {result.feedback}: {describe_feedback(result.feedback)})"
        )
        return 1
    if args.json:
        payload: dict[str, Any]
        if spec.name is CommandName.GET_TELEMETRY_DATA:
            payload = dict(runtime.state.telemetry or {})
        else:
            payload = {
                "command": result.command,
                "feedback": result.feedback,
                "ok": result.ok,
                "message": result.message,
                **runtime.state.settings(),
            }
        print(json.dumps(payload))
    elif spec.name is CommandName.GET_TELEMETRY_DATA:
        for key, value in (runtime.state.telemetry or {}).items():
            print(f"{key:16} {value}")
    else:
        print(result.message)
    return 0


async def _interrupt(runtime: Runtime, command: asyncio.Task[CommandResult]) -> None:
    """A stop signal: restore the limiter if a reset is in its window, then end the command."""
    await runtime.watchdog.shutdown()
    if not command.done():
        command.cancel()  # a restore not yet confirmed stays recorded for the next start


async def _simulate(args: argparse.Namespace) -> int:
    server = SimulatorServer(host=args.host, port=args.port)
    for fault in args.fault:
        server.set_fault(fault)
    await server.start()
    print(
        f"simulated SEC1000 on {server.host}:{server.port}; faults: {', '.join(args.fault) or 'none'}"
    )
    print("type: fault NAME on|off, clear, power-cycle, status, quit")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty():
        loop.add_reader(
            sys.stdin.fileno(), lambda: _simulator_command(server, sys.stdin.readline(), stop)
        )
    await stop.wait()
    await server.stop()
    return 0


def _simulator_command(server: SimulatorServer, line: str, stop: asyncio.Event) -> None:
    words = line.split()
    if not line or words[:1] == ["quit"]:
        stop.set()
    elif (
        words[:1] == ["fault"]
        and len(words) == 3
        and words[1] in FAULTS
        and words[2] in ("on", "off")
    ):
        server.set_fault(words[1], words[2] == "on")
    elif words == ["clear"]:
        server.clear_faults()
    elif words == ["power-cycle"]:
        server.power_cycle()
    elif words != ["status"]:
        print("unknown: " + line.strip())
    print(
        f"faults: {', '.join(sorted(server.faults)) or 'none'}; overloaded: {server.overloaded}; "
        f"exchanges: {server.exchange_count}"
    )


def _fail(message: str) -> None:
    print(f"sec1000: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; failures give a non-zero status and one line on stderr."""
    args = build_parser().parse_args(argv)
    level = args.log_level or ("warning" if args.command in ("serve", "simulate") else "error")
    listener = log_through_a_queue(PYTHON_LOG_LEVELS[level])
    try:
        return _run(args)
    finally:
        listener.stop()


def log_through_a_queue(level: int) -> logging.handlers.QueueListener:
    """Log lines are written to stderr by a thread of their own: the event loop never waits
    for the terminal, the Supervisor's log or a full pipe."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(lines)]
    root.setLevel(level)
    listener = logging.handlers.QueueListener(lines, handler, respect_handler_level=True)
    listener.start()
    return listener


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "simulate":
            return asyncio.run(_simulate(args))
        if args.command == "serve":
            from sec1000.serve import serve

            return asyncio.run(serve(args))
        return asyncio.run(_one_shot(args))
    except OptionsError as err:
        _fail(f"invalid options: {err}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        _LOGGER.debug("command failed", exc_info=True)
        _fail(f"{err.__class__.__name__}: {err}")
        return 1
