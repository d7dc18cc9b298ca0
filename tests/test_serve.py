"""`sec1000 serve` as a process: where it listens, and a stop that always ends cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from sec1000.serve import RESTORE_BEFORE_EXIT

from tests.helpers.ports import free_port
from tests.helpers.processes import STOP_BUDGET_S, process_start_s
from tests.helpers.waiting import eventually


def clean_env() -> dict[str, str]:
    """The environment without any Home Assistant or Supervisor: panel only."""
    hidden = ("SUPERVISOR_TOKEN", "HASSIO_TOKEN", "HA_URL", "HA_TOKEN")
    return {key: value for key, value in os.environ.items() if key not in hidden}


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def start_serve(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env or clean_env(),
    )


@pytest.mark.parametrize("host", ["192.168.1..200", "a" * 64 + ".lan"])
async def test_a_broken_host_in_the_options_still_serves_and_stops_with_0(
    tmp_path: Path, host: str
) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"host": host, "request_gap_ms": 1000}))
    port = free_port()
    process = await start_serve(
        "--options", str(options), "--port", str(port), "--data-dir", str(tmp_path)
    )
    await eventually(lambda: listening(port), within=process_start_s(), what="the panel listening")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), STOP_BUDGET_S)
    assert process.stderr is not None
    err = (await process.stderr.read()).decode()
    assert code == 0, err
    assert time.monotonic() - started < 5
    assert "Traceback" not in err
    assert "invalid options" in err and "host" in err
    assert json.loads(options.read_text())["host"] == host  # never overwritten


async def test_the_panel_listens_on_loopback_outside_the_supervisor(tmp_path: Path) -> None:
    port = free_port()
    process = await start_serve("--demo", "--port", str(port), "--data-dir", str(tmp_path))
    try:
        await eventually(
            lambda: listening(port), within=process_start_s(), what="the panel listening"
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
            assert probe.connect_ex(("127.0.0.2", port)) != 0  # loopback 127.0.0.1 only
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0


async def test_the_demo_prints_its_address_once_and_says_it_runs_without_home_assistant(
    tmp_path: Path,
) -> None:
    port = free_port()
    process = await start_serve("--demo", "--port", str(port), "--data-dir", str(tmp_path))
    assert process.stdout is not None and process.stderr is not None
    try:
        info = (await asyncio.wait_for(process.stdout.readline(), process_start_s())).decode()
        assert info.startswith("SEC1000 demo: runs without Home Assistant")  # info, no fault
        line = (await asyncio.wait_for(process.stdout.readline(), process_start_s())).decode()
        assert line == f"SEC1000 demo: panel on http://127.0.0.1:{port}/\n"  # last
        assert listening(port)  # printed once the panel answers
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0
    out = info + line + (await process.stdout.read()).decode()
    err = (await process.stderr.read()).decode()
    assert (out + err).count(f"http://127.0.0.1:{port}/") == 1
    assert "no Home Assistant configured" not in err and "WARNING" not in err


async def test_listening_on_the_network_without_home_assistant_is_refused(tmp_path: Path) -> None:
    process = await start_serve(
        "--demo", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path)
    )
    code = await asyncio.wait_for(process.wait(), process_start_s())
    assert process.stderr is not None
    err = (await process.stderr.read()).decode()
    assert code == 2
    assert "open to the network" in err and "HA_URL" in err


async def test_the_wanted_limit_survives_a_sigkill_and_is_restored_after_restart(
    tmp_path: Path,
) -> None:
    import aiohttp
    from sec1000.simulator import SimulatorServer

    async with SimulatorServer() as simulator:
        options = tmp_path / "options.json"
        options.write_text(
            json.dumps({"host": "127.0.0.1", "port": simulator.port, "request_gap_ms": 20})
        )
        args = ("--options", str(options), "--data-dir", str(tmp_path / "data"))
        port = free_port()
        first = await start_serve(*args, "--port", str(port))
        try:
            await eventually(
                lambda: listening(port), within=process_start_s(), what="the panel listening"
            )
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/command"
                posted = await http.post(url, data={"command": "set_export_limit", "limit": "3"})
                assert posted.status == 200
            await eventually(lambda: simulator.device.export_limit_w == 3_000, what="3 kW")
            wanted = tmp_path / "data" / "wanted.json"
            await eventually(
                lambda: (
                    wanted.exists() and json.loads(wanted.read_text())["export_limit_w"] == 3000
                ),
                what="3 kW kept in wanted.json",
            )
        finally:
            first.kill()  # SIGKILL: no cleanup at all
            await first.wait()
        simulator.drift(12_350)  # changed while the add-on was down
        second = await start_serve(*args, "--port", str(port))
        try:
            await eventually(
                lambda: simulator.device.export_limit_w == 3_000,
                within=process_start_s(),  # a start, then the restore's few exchanges
                what="restored",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), STOP_BUDGET_S) == 0
        audit = (tmp_path / "data" / "audit.jsonl").read_text()
        assert '"command": "drift"' in audit and '"origin": "guard"' in audit


async def test_sigterm_with_idle_live_clients_exits_cleanly_and_closes_them(
    tmp_path: Path,
) -> None:
    """Three panel tabs whose WebSockets never answer: the stop closes or drops them at once
    (it used to wait 10 s for each, then aiohttp's 60 s, past the Supervisor's 30 s)."""
    import aiohttp

    port = free_port()
    process = await start_serve("--demo", "--port", str(port), "--data-dir", str(tmp_path))
    await eventually(lambda: listening(port), within=process_start_s(), what="the panel listening")
    async with aiohttp.ClientSession() as http:
        sockets = [
            await http.ws_connect(
                f"http://127.0.0.1:{port}/ws?page=dashboard&since=0",
                autoclose=False,
                heartbeat=None,
            )
            for _ in range(3)
        ]
        process.send_signal(signal.SIGTERM)
        assert (
            await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0
        )  # not read: no close answered
        for ws in sockets:
            while (message := await ws.receive(timeout=5)).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                assert message.type is aiohttp.WSMsgType.TEXT  # pushes before the close
            await ws.close()


async def test_a_pending_restore_is_done_even_when_the_panel_cannot_listen(
    tmp_path: Path,
) -> None:
    """The core starts before the panel: a taken port (or broken options and energy files)
    never keeps the limiter off."""
    from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore
    from sec1000.protocol import ControlMode
    from sec1000.simulator import SimulatorServer

    async with SimulatorServer() as simulator:
        for switch in simulator.device.switches:  # left off by a kill in a reset's window
            simulator.device.switches[switch] = False
        data = tmp_path / "data"
        record = RestoreRecord("value", 3_000, True, time.time())
        await asyncio.to_thread(RestoreStore(data).save, record)
        (data / "energy.json").write_bytes(b"\xff\xfe not json")
        options = tmp_path / "options.json"
        options.write_text(
            json.dumps({"host": "127.0.0.1", "port": simulator.port, "request_gap_ms": 20})
        )
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            process = await start_serve(
                "--options", str(options), "--data-dir", str(data), "--port", str(port)
            )
            code = await asyncio.wait_for(process.wait(), process_start_s() + RESTORE_BEFORE_EXIT)
        assert process.stderr is not None
        err = (await process.stderr.read()).decode()
        assert code == 1, err
        assert "cannot listen" in err and "Traceback" not in err
        assert simulator.device.mode is ControlMode.VALUE
        assert simulator.device.export_limit_w == 3_000
        assert not (data / RECORD_NAME).exists()


@pytest.mark.parametrize(("raw", "count"), [("", 1), ("1", 1), ("2", 2), (" 3 ", 3), ("8", 8)])
def test_the_demo_runs_as_many_controllers_as_asked(raw: str, count: int) -> None:
    from sec1000.serve import demo_controllers

    assert demo_controllers({"SEC1000_DEMO_CONTROLLERS": raw}) == count


@pytest.mark.parametrize("raw", ["0", "9", "two", "-1", "1.5"])
def test_a_wrong_number_of_demo_controllers_is_said_so(raw: str) -> None:
    from sec1000.options import OptionsError
    from sec1000.serve import demo_controllers

    with pytest.raises(OptionsError, match="from 1 to 8"):
        demo_controllers({"SEC1000_DEMO_CONTROLLERS": raw})


async def test_the_demo_of_two_controllers_runs_both(tmp_path: Path) -> None:
    import aiohttp

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "serve",
        "--demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env={**clean_env(), "SEC1000_DEMO_CONTROLLERS": "2"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        info = (await asyncio.wait_for(process.stdout.readline(), process_start_s())).decode()
        assert "simulated controllers (ports " in info, info
        url = f"http://127.0.0.1:{port}/diagnostics.json"
        async with aiohttp.ClientSession() as http, http.get(url) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0
    stored = json.loads((tmp_path / "options.json").read_text())
    assert [item["name"] for item in stored["controllers"]] == ["barn"]
    assert (tmp_path / "barn").is_dir()  # the second controller's own folder
    err = (await process.stderr.read()).decode()
    assert "Traceback" not in err


async def test_the_demo_leaves_no_folder_behind(tmp_path: Path) -> None:
    """Without --data-dir the demo keeps its files in a folder of its own under TMPDIR, and
    removes it at exit."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = free_port()
    process = await start_serve(
        "--demo", "--port", str(port), env={**clean_env(), "TMPDIR": str(scratch)}
    )
    assert process.stdout is not None
    try:
        await asyncio.wait_for(process.stdout.readline(), process_start_s())
        await asyncio.wait_for(
            process.stdout.readline(), process_start_s()
        )  # the panel's address: running
        (folder,) = list(scratch.iterdir())
        assert folder.name.startswith("sec1000-demo-") and (folder / "options.json").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0
    assert list(scratch.iterdir()) == []
