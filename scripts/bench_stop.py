"""Prints the seconds from SIGTERM to exit of `sec1000 serve --demo`, its exit code and whether a watchdog restore finished, per scenario of live panel clients and run."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from demo_process import free_port, start_demo, wait_ready

KINDS = ("none", "reading", "idle", "nonreading")
DEFAULT_SCENARIOS = (
    "none:0",
    "reading:1",
    "idle:3",
    "nonreading:3",
    "reading:1+reset",
    "idle:3+reset",
    "nonreading:3+reset",
)
GOAL_S = 5.0  # exit after SIGTERM, no watchdog reset running
GOAL_RESET_S = 10.0  # exit after SIGTERM during a reset (the limiter restored first)
TINY_RCVBUF = 1024  # the kernel rounds it up to its minimum (a few KB)
RESTORE_RECORD = "watchdog_restore.json"
ws_tasks: set[asyncio.Task[None]] = set()  # the reading clients' loops, kept referenced


@dataclass(frozen=True)
class Scenario:
    """N clients of one kind, and whether a watchdog reset is under way at SIGTERM."""

    kind: str
    count: int
    reset: bool

    @classmethod
    def parse(cls, text: str) -> Scenario:
        body, _, extra = text.partition("+")
        kind, _, count = body.partition(":")
        if kind not in KINDS or extra not in ("", "reset"):
            raise argparse.ArgumentTypeError(f"bad scenario {text!r} (e.g. idle:3+reset)")
        try:
            number = int(count or ("0" if kind == "none" else "1"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad client count in {text!r}") from None
        if not 0 <= number <= 50:
            raise argparse.ArgumentTypeError("between 0 and 50 clients")
        return cls(kind, 0 if kind == "none" else number, extra == "reset")

    def __str__(self) -> str:
        name = f"{self.count} {self.kind}" if self.count else "no clients"
        return name + (" + reset" if self.reset else "")


@dataclass
class Outcome:
    """One run: seconds to exit (None when it had to be killed), exit code, restore, traffic."""

    seconds: float | None
    code: int | None
    restored: bool | None
    received: int = 0
    send_queue: int = 0
    notes: list[str] = field(default_factory=list)


def server_send_queues(port: int) -> dict[int, int]:
    """Per client port: the bytes the kernel still holds to send on the panel's connections."""
    queues: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, state, tx_rx = parts[1], parts[2], parts[3], parts[4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                queues[int(remote.split(":")[1], 16)] = int(tx_rx.split(":")[0], 16)
    return queues


async def raw_client(port: int, tiny: bool) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads (nor sends, when idle).

    `tiny` (non-reading): a minimal receive buffer, on the diagnostics page, where the bench's
    simulator churn adds about 3 KB per push; it sends unsolicited pongs (`keep_alive`) so the
    server's heartbeat does not drop it before its send buffers are full.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if tiny:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_RCVBUF)
    sock.setblocking(False)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?page={'diagnostics' if tiny else 'dashboard'}&since=0 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        async with asyncio.timeout(5):
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await loop.sock_recv(sock, 256)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                head += chunk
    except BaseException:
        sock.close()
        raise
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(f"no WebSocket: {head.splitlines()[0]!r}")
    return sock


async def keep_alive(socks: list[socket.socket], until: float) -> None:
    """Unsolicited masked PONG frames every 5 s: data the server's heartbeat counts as alive."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < until:
        for sock in socks:
            with contextlib.suppress(OSError):
                await loop.sock_sendall(sock, b"\x8a\x80" + os.urandom(4))
        await asyncio.sleep(min(5.0, max(0.0, until - time.monotonic())))


async def reading_client(
    session: aiohttp.ClientSession, url: str, counter: list[int]
) -> aiohttp.ClientWebSocketResponse:
    """A normal client: reads every push and answers pings and the close."""
    ws = await session.ws_connect(f"{url}/ws?page=dashboard&since=0")

    async def read() -> None:
        async for _ in ws:
            counter[0] += 1

    task = asyncio.create_task(read())
    ws_tasks.add(task)
    task.add_done_callback(ws_tasks.discard)
    return ws


async def churn(session: aiohttp.ClientSession, url: str, until: float) -> None:
    """Mark the diagnostics page's simulator fragment changed, 20 times a second (no fault set)."""
    while time.monotonic() < until:
        async with session.post(f"{url}/simulator", data={"action": "clear"}) as response:
            await response.read()
        await asyncio.sleep(0.05)


async def fill(
    session: aiohttp.ClientSession, url: str, port: int, socks: list[socket.socket], limit: float
) -> float:
    """Churn until the kernel queue of every non-reader stops growing, then 3 s more (so the
    server's own 64 KB transport buffer fills too); returns the seconds it took."""
    started = time.monotonic()
    peers = {sock.getsockname()[1] for sock in socks}
    best: dict[int, int] = {}
    grew = started
    while time.monotonic() - started < limit and time.monotonic() - grew < 3.0:
        await churn(session, url, time.monotonic() + 1.0)
        queues = server_send_queues(port)
        for peer in peers:
            if queues.get(peer, 0) > best.get(peer, 0) * 1.01 + 1024:
                best[peer] = queues.get(peer, 0)
                grew = time.monotonic()
    await churn(session, url, time.monotonic() + 3.0)
    return time.monotonic() - started


async def start_reset(session: aiohttp.ClientSession, url: str, deadline: float) -> None:
    """POST the confirmed reset and wait until the limiter is off (the reset is running)."""
    form = {"command": "reset_export_watchdog", "confirm": "yes"}
    async with session.post(f"{url}/command", data=form) as response:
        response.raise_for_status()
    while time.monotonic() < deadline:
        async with session.get(f"{url}/api/state") as response:
            state = await response.json()
        if state.get("watchdog_running") and state.get("restore_pending"):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the watchdog reset did not start")


async def run_once(args: argparse.Namespace, scenario: Scenario) -> Outcome:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc, data = await start_demo(
        args.python,
        args.pythonpath,
        port,
        "sec1000-bench-stop-",
        {"scan_interval": args.scan_interval, "request_gap_ms": args.gap_ms},
    )
    raw: list[socket.socket] = []
    readers: list[aiohttp.ClientWebSocketResponse] = []
    counter = [0]
    pong: asyncio.Task[None] | None = None
    outcome = Outcome(None, None, None)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, url, time.monotonic() + 20)
            for _ in range(scenario.count):
                if scenario.kind == "reading":
                    readers.append(await reading_client(session, url, counter))
                else:
                    raw.append(await raw_client(port, tiny=scenario.kind == "nonreading"))
            if scenario.kind == "nonreading" and args.fill_limit > 0:
                # Pongs go on through the stop: a live client that does not read.
                until = time.monotonic() + args.fill_limit + args.kill_after + 30
                pong = asyncio.create_task(keep_alive(raw, until))
                took = await fill(session, url, port, raw, args.fill_limit)
                outcome.notes.append(f"buffers filled in {took:.0f} s")
            else:
                await asyncio.sleep(args.settle)
            if scenario.reset:
                await start_reset(session, url, time.monotonic() + 20)
                await asyncio.sleep(args.reset_wait)
            outcome.send_queue = sum(server_send_queues(port).values())
            outcome.received = counter[0]
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                outcome.code = await asyncio.wait_for(proc.wait(), args.kill_after)
                outcome.seconds = time.monotonic() - stopped
            except TimeoutError:
                outcome.notes.append(f"still running after {args.kill_after:g} s: killed")
                proc.kill()
                outcome.code = await proc.wait()
            if scenario.reset:
                outcome.restored = not (data / RESTORE_RECORD).exists()
            for ws in readers:
                await ws.close()
    finally:
        if pong is not None:
            pong.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pong
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for sock in raw:
            sock.close()
        if args.keep:
            outcome.notes.append(f"data dir {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    return outcome


def describe(outcome: Outcome) -> str:
    seconds = f"{outcome.seconds:6.2f} s" if outcome.seconds is not None else "  KILLED"
    text = f"{seconds}  exit code {outcome.code}"
    if outcome.restored is not None:
        text += f"  restored {'yes' if outcome.restored else 'NO'}"
    text += f"  (pushes read {outcome.received}, server send queue {outcome.send_queue} B)"
    return text + "".join(f"; {note}" for note in outcome.notes)


async def main(args: argparse.Namespace) -> int:
    print(
        f"gap {args.gap_ms} ms, scan interval {args.scan_interval} s, {args.runs} runs, "
        f"{args.settle:g} s of traffic before SIGTERM, killed after {args.kill_after:g} s"
        + (f", PYTHONPATH={args.pythonpath}" if args.pythonpath else ""),
        flush=True,
    )
    all_ok = True
    for scenario in args.scenario or [Scenario.parse(text) for text in DEFAULT_SCENARIOS]:
        goal = GOAL_RESET_S if scenario.reset else GOAL_S
        times: list[float] = []
        ok = True
        for run in range(1, args.runs + 1):
            outcome = await run_once(args, scenario)
            print(f"{scenario!s:<22} run {run}: {describe(outcome)}", flush=True)
            if outcome.seconds is not None:
                times.append(outcome.seconds)
            ok &= (
                outcome.seconds is not None
                and outcome.seconds <= goal
                and outcome.code == 0
                and outcome.restored is not False
            )
        summary = (
            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"
            if times
            else "never exited"
        )
        killed = args.runs - len(times)
        summary += f", {killed} killed" if killed else ""
        print(f"{scenario!s:<22} => {summary}; goal <= {goal:g} s: {'PASS' if ok else 'FAIL'}")
        all_ok &= ok
    return 0 if all_ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument(
        "--gap-ms", type=int, default=1000, help="request_gap_ms of the demo (default 1000)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        type=Scenario.parse,
        help="KIND:N[+reset], KIND one of reading, idle, nonreading, none; repeatable "
        f"(default: {', '.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=8.0,
        help="seconds of live traffic before SIGTERM (non-readers: see --fill-limit) (default 8)",
    )
    parser.add_argument(
        "--scan-interval", type=int, default=1, help="demo telemetry interval in s (default 1)"
    )
    parser.add_argument(
        "--kill-after",
        type=float,
        default=45.0,
        help="SIGKILL a process still running this long after SIGTERM (default 45)",
    )
    parser.add_argument(
        "--pythonpath", help="PYTHONPATH for the server, e.g. /tmp/fixed/sec1000_addon"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for the server (default: this one)"
    )
    parser.add_argument(
        "--fill-limit",
        type=float,
        default=90.0,
        help="non-readers: at most this long filling the server's send buffers (kernel "
        "autotunes to ~4 MB on loopback: ~45 s); 0 = just --settle (default 90)",
    )
    parser.add_argument(
        "--reset-wait",
        type=float,
        default=0.5,
        help="seconds between the reset's restore record and SIGTERM: 0.5 hits the three "
        "switch-off packets, 4 the 5 s off window (default 0.5)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's data dir and log")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be between 1 and 20")
    if not (
        0 <= args.settle <= 120 and 1 <= args.kill_after <= 300 and 0 <= args.fill_limit <= 300
    ):
        parser.error("--settle must be 0-120 s, --kill-after 1-300 s, --fill-limit 0-300 s")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
