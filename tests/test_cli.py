"""The command line as a user runs it: real processes, a real simulator socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sec1000.simulator import SimulatorServer

from tests.helpers.processes import STOP_BUDGET_S, process_start_s
from tests.helpers.waiting import eventually

KEYS = [
    "v1",
    "v2",
    "v3",
    "i1",
    "i2",
    "i3",
    "p1",
    "p2",
    "p3",
    "meters_power",
    "inverters_power",
    "load_power",
]


async def sec1000(*args: str, data_dir: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SEC1000_OPTIONS": str(data_dir / "absent.json")},
    )
    out, err = await asyncio.wait_for(process.communicate(), process_start_s())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def device(simulator: SimulatorServer, timeout_s: int = 1) -> list[str]:
    """The CLI's link to the simulator; a command that must succeed gets a timeout a busy
    machine can keep (the simulator answers from the test's own, loaded, process)."""
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(simulator.port),
        "--gap-ms",
        "20",
        "--timeout",
        str(timeout_s),
    ]


async def test_read_json_prints_the_sensor_keys(simulator: SimulatorServer, tmp_path: Path) -> None:
    code, out, err = await sec1000("read", *device(simulator, 5), "--json", data_dir=tmp_path)
    assert code == 0, err
    values = json.loads(out)
    assert list(values) == KEYS
    assert values["load_power"] == pytest.approx(
        values["inverters_power"] - values["meters_power"], abs=0.002
    )


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("silence", "no answer"),
        ("reset", "socket error"),
        ("bad_checksum", "checksum"),
        ("wrong_echo", "unexpected packet"),
    ],
)
async def test_failure_is_one_line_and_no_traceback(
    simulator: SimulatorServer, tmp_path: Path, fault: str, words: str
) -> None:
    simulator.set_fault(fault)
    # Only silence is waited out; the others answer (wrongly) at once, if the loaded test
    # process lets the simulator run: they get a timeout a busy machine can keep.
    timeout_s = 1 if fault == "silence" else 5
    code, out, err = await sec1000(
        "read", *device(simulator, timeout_s), "--json", data_dir=tmp_path
    )
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert words in err and "Traceback" not in err


async def test_refused_connection_is_named(tmp_path: Path) -> None:
    code, _, err = await sec1000(
        "get-limit", "--host", "127.0.0.1", "--port", "1", data_dir=tmp_path
    )
    assert code != 0 and "socket error" in err and len(err.strip().splitlines()) == 1


async def test_set_limit_then_get_limit(simulator: SimulatorServer, tmp_path: Path) -> None:
    code, out, err = await sec1000(
        "set-limit", "3.3", *device(simulator, 5), "--json", data_dir=tmp_path
    )
    assert code == 0, err
    assert json.loads(out)["feedback"] == 1
    code, out, _ = await sec1000("get-limit", *device(simulator, 5), data_dir=tmp_path)
    assert "3.30 kW" in out


async def test_invalid_limit_sends_nothing(simulator: SimulatorServer, tmp_path: Path) -> None:
    code, _, err = await sec1000("set-limit", "nan", *device(simulator), data_dir=tmp_path)
    assert code != 0 and "feedback 128" in err
    assert simulator.requests() == []


async def test_export_off_and_mode(simulator: SimulatorServer, tmp_path: Path) -> None:
    assert (await sec1000("export", "off", *device(simulator, 5), data_dir=tmp_path))[0] == 0
    assert simulator.device.export_limit_w == 0
    assert (await sec1000("mode", "rcr", "--per-phase", *device(simulator, 5), data_dir=tmp_path))[
        0
    ] == 0
    assert simulator.device.mode.option == "rcr"
    assert (await sec1000("set-time", *device(simulator, 5), data_dir=tmp_path))[0] == 0


async def test_broken_options_file_is_one_clear_line(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    options = tmp_path / "options.json"
    options.write_text("{broken")
    code, _, err = await sec1000("read", "--options", str(options), data_dir=tmp_path)
    assert code == 2
    assert "invalid options" in err and "not valid JSON" in err and "Traceback" not in err
    assert options.read_text() == "{broken"


async def test_simulate_serves_until_terminated(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "simulate",
        "--port",
        str(port),
        "--fault",
        "nak",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), process_start_s())
    assert f"127.0.0.1:{port}" in line.decode() and "nak" in line.decode()
    code, out, err = await sec1000(
        "export",
        "on",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--gap-ms",
        "20",
        data_dir=tmp_path,
    )
    # The simulated controller answers NAK and takes nothing: the read-back tells.
    assert code == 1, out
    assert "the controller holds 5.00 kW" in err and "Traceback" not in err
    process.terminate()
    assert await asyncio.wait_for(process.wait(), STOP_BUDGET_S) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_signal_ends_a_command_stuck_on_a_silent_device(
    simulator: SimulatorServer, tmp_path: Path, signum: int
) -> None:
    simulator.set_fault("silence")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        str(simulator.port),
        "--timeout",
        "20",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SEC1000_OPTIONS": str(tmp_path / "absent.json")},
    )
    await eventually(lambda: bool(simulator.requests()), 10, "the request at the simulator")
    started = time.monotonic()
    process.send_signal(signum)
    _, err = await asyncio.wait_for(process.communicate(), process_start_s())
    assert time.monotonic() - started < 5  # not the 20 s timeout
    assert process.returncode != 0
    assert err.decode().strip().splitlines() == ["sec1000: error: interrupted"]
