"""Prints the RSS of `sec1000 serve --demo` before and after a storm of panel commands (POST /command in concurrent bursts), once the process is idle again."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from demo_process import free_port, start_demo, wait_ready

COMMANDS = ("get_export_limit", "set_export_limit")


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def wait_idle(session: aiohttp.ClientSession, url: str, deadline: float) -> bool:
    """Until nothing waits for the device three checks in a row (0.5 s apart)."""
    quiet = 0
    while time.monotonic() < deadline:
        async with session.get(f"{url}/diagnostics.json") as response:
            data = await response.json()
        quiet = quiet + 1 if not data["link"]["queued"] else 0
        if quiet >= 3:
            return True
        await asyncio.sleep(0.5)
    return False


async def post(session: aiohttp.ClientSession, url: str, form: dict[str, str]) -> str:
    """One command: 'started', 'busy' (the queue was full) or 'HTTP <status>'."""
    async with session.post(f"{url}/command", data=form) as response:
        text = await response.text()
    if response.status != 200:
        return f"HTTP {response.status}"
    return "busy" if "busy" in text.lower() else "started"


async def storm(
    session: aiohttp.ClientSession, url: str, total: int, burst: int, pause: float
) -> Counter[str]:
    """`total` commands, `burst` at a time, alternating reads and limit writes."""
    answers: Counter[str] = Counter()
    limits = itertools.cycle(("3.5", "4.25", "5", "6.75"))
    names = itertools.cycle(COMMANDS)
    sent = 0
    while sent < total:
        forms = []
        for _ in range(min(burst, total - sent)):
            name = next(names)
            form = {"command": name}
            if name == "set_export_limit":
                form["limit"] = next(limits)
            forms.append(form)
        sent += len(forms)
        for answer in await asyncio.gather(*(post(session, url, form) for form in forms)):
            answers[answer] += 1
        await asyncio.sleep(pause)
    return answers


async def main(args: argparse.Namespace) -> int:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc, data = await start_demo(
        args.python,
        args.pythonpath,
        port,
        "sec1000-bench-memory-",
        {"request_gap_ms": args.gap_ms, "scan_interval": args.scan_interval},
    )
    code = 1
    # Each command on its own connection (--new-connections) closes it after the answer; else
    # up to --connections are kept open and reused (0: as many as a burst needs).
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=args.new_connections)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, url, time.monotonic() + 20)
            await asyncio.sleep(args.settle)
            before = rss_kb(proc.pid)
            print(
                f"gap {args.gap_ms} ms; {args.commands} commands in bursts of {args.burst}, "
                f"{args.connections or 'unlimited'} connections"
                + (", a new one per command" if args.new_connections else "")
                + (f"; PYTHONPATH={args.pythonpath}" if args.pythonpath else ""),
                flush=True,
            )
            print(f"RSS before: {before / 1024:6.1f} MB", flush=True)
            started = time.monotonic()
            for storm_number in range(1, args.storms + 1):
                answers = await storm(session, url, args.commands, args.burst, args.pause)
                idle = await wait_idle(session, url, time.monotonic() + 120)
                await asyncio.sleep(args.settle)
                after = rss_kb(proc.pid)
                print(
                    f"RSS after storm {storm_number}: {after / 1024:6.1f} MB "
                    f"({(after - before) / 1024:+.1f} MB; {time.monotonic() - started:.1f} s; "
                    + ", ".join(f"{n} {answer}" for answer, n in sorted(answers.items()))
                    + ("" if idle else "; NOT idle after 120 s")
                    + ")",
                    flush=True,
                )
            code = 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if args.keep:
            print(f"data dir kept: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    return code


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=1000, help="commands per storm (1000)")
    parser.add_argument("--burst", type=int, default=25, help="concurrent commands (25)")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between bursts (0.02)")
    parser.add_argument("--storms", type=int, default=1, help="storms in a row (1)")
    parser.add_argument("--gap-ms", type=int, default=0, help="request_gap_ms of the demo (0)")
    parser.add_argument(
        "--scan-interval", type=int, default=5, help="demo telemetry interval in s (5)"
    )
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds idle before each measure (3)"
    )
    parser.add_argument(
        "--pythonpath", help="PYTHONPATH for the server, e.g. /tmp/fixed/sec1000_addon"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for the server (default: this one)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=100,
        help="most connections open at once; 0 = one per concurrent command (100)",
    )
    parser.add_argument(
        "--new-connections", action="store_true", help="a new connection for every command"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dir and log")
    args = parser.parse_args()
    if not (1 <= args.commands <= 100_000 and 1 <= args.burst <= 1000 and 1 <= args.storms <= 20):
        parser.error("--commands 1-100000, --burst 1-1000, --storms 1-20")
    if not (0 <= args.pause <= 10 and 0 <= args.settle <= 60 and 0 <= args.gap_ms <= 10000):
        parser.error("--pause 0-10 s, --settle 0-60 s, --gap-ms 0-10000")
    if not 0 <= args.connections <= 1000:
        parser.error("--connections 0-1000")
    return args


def raise_file_limit(wanted: int = 4096) -> None:
    """A burst of 1000 connections needs as many descriptors here and in the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    arguments = parse_args()
    raise_file_limit()
    sys.exit(asyncio.run(main(arguments)))
