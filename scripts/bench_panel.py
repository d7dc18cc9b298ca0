"""Benchmark the ingress panel in Debian's Chromium, behind the tests' ingress proxy.

Prints, over several cold loads of the dashboard (empty cache each time):
- bytes transferred for the full load: every HTTP response (headers + body, as Chromium counts
  them) and every WebSocket frame until the page is idle; with a fresh core and with a full
  hour of chart history;
- time from the page's load event to the first live update applied to the page;
- for information, the push latency: a telemetry read in the core until its values are on screen.
Goals (issue 3): <= 150 KB per load and <= 1 s to the first live update.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sec1000.operations import Origin
from sec1000.options import Options
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer
from sec1000.state import CommandRecord, HistoryPoint
from tests.browser.ingress_proxy import PREFIX, create_proxy
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from tests.helpers.served_panel import demo_app

GOAL_BYTES = 150 * 1024
GOAL_FIRST_UPDATE_S = 1.0


async def site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    assert tcp._server is not None
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def fill_history(runtime: Runtime, interval: float = 5.0) -> None:
    """An hour of telemetry at the usual demo interval, and a command every ten minutes."""
    now = time.time()
    state = runtime.state
    state.history.clear()
    steps = int(3600 / interval)
    for i in range(steps):
        at = now - 3600 + i * interval
        solar = 4 + 2 * (i % 97) / 97
        load = 0.6 + (i % 13) / 10
        state.history.append(
            HistoryPoint(at, solar - load, solar, load, 5.0 if i < steps / 2 else 3.5)
        )
    for minutes in range(5, 60, 10):
        state.commands.append(
            CommandRecord(
                now - minutes * 60, "panel (Anna)", "set_export_limit", 1, "export limit set"
            )
        )


async def cold_load(browser: Browser, url: str) -> tuple[int, float, dict[str, int]]:
    """One load with an empty cache: (bytes, seconds from load to first live update, by kind)."""
    context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    sizes: dict[str, int] = {}
    kinds: dict[str, str] = {}

    def response(event: dict[str, Any]) -> None:
        kinds[event["requestId"]] = event.get("type", "Other")

    def finished(event: dict[str, Any]) -> None:
        kind = kinds.get(event["requestId"], "Other")
        sizes[kind] = sizes.get(kind, 0) + int(event["encodedDataLength"])

    def frame(event: dict[str, Any]) -> None:
        sizes["WebSocket frames"] = sizes.get("WebSocket frames", 0) + len(
            event["response"]["payloadData"].encode()
        )

    def handshake(event: dict[str, Any]) -> None:
        headers = event["response"].get("headersText") or "".join(
            f"{k}: {v}\r\n" for k, v in event["response"].get("headers", {}).items()
        )
        sizes["WebSocket handshake"] = sizes.get("WebSocket handshake", 0) + len(headers)

    cdp.on("Network.responseReceived", response)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.webSocketFrameReceived", frame)
    cdp.on("Network.webSocketHandshakeResponseReceived", handshake)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    await page.goto(url, wait_until="load")
    await page.wait_for_function("window.sec1000Live && window.sec1000Live.first !== null")
    await page.wait_for_timeout(300)  # let anything else arrive: it counts too
    first = await page.evaluate(
        "window.sec1000Live.first - performance.getEntriesByType('navigation')[0].loadEventEnd"
    )
    await context.close()
    return sum(sizes.values()), first / 1000, sizes


async def push_latency(browser: Browser, url: str, runtime: Runtime, runs: int) -> list[float]:
    """A telemetry read in the core until the page has applied its update (seconds)."""
    context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.sec1000Live && window.sec1000Live.mode === 'live'")
    out = []
    for _ in range(runs):
        count = await page.evaluate("window.sec1000Live.updates")
        await runtime.ops.get_telemetry_data(Origin("bench"))
        done = time.time()
        await page.wait_for_function(f"window.sec1000Live.updates > {count}")
        applied = await page.evaluate("performance.timeOrigin + window.sec1000Live.last")
        # The read's own device exchange is not counted: from its end to the screen.
        out.append(max(0.0, applied / 1000 - done))
        await asyncio.sleep(0.2)
    await context.close()
    return out


async def main(args: argparse.Namespace) -> int:
    simulator = await SimulatorServer().start()
    options = Options.from_mapping(
        {"host": "127.0.0.1", "port": simulator.port, "scan_interval": 5, "request_gap_ms": 50}
    )
    runtime = Runtime(options, Path(tempfile.mkdtemp(prefix="sec1000-bench-")))
    panel_runner, panel_url = await site(demo_app(runtime, simulator))
    proxy_runner, proxy_url = await site(create_proxy(panel_url))
    url = f"{proxy_url}{PREFIX}/"
    await runtime.start()
    await runtime.ops.get_telemetry_data()
    ok = True
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        for label, prepare in (("fresh core", None), ("one hour of history", fill_history)):
            if prepare is not None:
                prepare(runtime)
            loads = [await cold_load(browser, url) for _ in range(args.runs)]
            sizes = [size for size, _, _ in loads]
            firsts = [first for _, first, _ in loads]
            worst = max(sizes)
            print(f"dashboard, {label} ({args.runs} cold loads through the ingress proxy):")
            print(
                f"  bytes per load: median {statistics.median(sizes) / 1024:.1f} KB, max {worst / 1024:.1f} KB (goal <= {GOAL_BYTES // 1024} KB)"
            )
            for kind, size in sorted(loads[-1][2].items(), key=lambda item: -item[1]):
                print(f"    {kind:20} {size / 1024:7.1f} KB")
            print(
                f"  load event -> first live update: median {statistics.median(firsts) * 1000:.0f} ms, max {max(firsts) * 1000:.0f} ms (goal <= {GOAL_FIRST_UPDATE_S * 1000:.0f} ms)"
            )
            ok &= worst <= GOAL_BYTES and max(firsts) <= GOAL_FIRST_UPDATE_S
        latencies = await push_latency(browser, url, runtime, args.pushes)
        print(
            f"push latency, telemetry read done -> on screen ({args.pushes} reads): p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        await browser.close()
    await runtime.stop()
    await proxy_runner.cleanup()
    await panel_runner.cleanup()
    await simulator.stop()
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold loads per case (default 5)")
    parser.add_argument(
        "--pushes", type=int, default=20, help="telemetry pushes timed (default 20)"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
