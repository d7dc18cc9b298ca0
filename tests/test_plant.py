"""Several controllers in one add-on: one runtime each, one options document, one audit file."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore
from sec1000.operations import Origin
from sec1000.options import InvalidOptions, Options, OptionsError, load_options_file
from sec1000.plant import Change, Plant, PlantEvent, UnknownController, controller_dir
from sec1000.protocol import Command, ControlMode
from sec1000.runtime import STOP_BUDGET, file_saver
from sec1000.simulator import SimulatorServer

from tests.helpers.device import TEST_GAP_MS, TEST_TIMEOUT_S, passes_within
from tests.helpers.processes import process_start_s
from tests.helpers.waiting import eventually

PANEL = Origin("panel")
WRITES = {
    Command.WRITE_EXPORT_LIMIT,
    Command.MODE_VALUE,
    Command.MODE_DRED,
    Command.MODE_RCR,
}


@pytest.fixture
async def barn() -> AsyncIterator[SimulatorServer]:
    """The second controller's simulator."""
    async with SimulatorServer() as server:
        yield server


def barn_item(barn: SimulatorServer, **keys: object) -> dict[str, object]:
    return {"name": "barn", "host": "127.0.0.1", "port": barn.port, **keys}


@pytest.fixture
def two(
    make_options: Callable[..., Options], barn: SimulatorServer, tmp_path: Path
) -> Callable[..., Plant]:
    """A plant of the `simulator` (first) and `barn`, saving to tmp_path/options.json."""

    def make(**barn_keys: object) -> Plant:
        options = make_options(controllers=[barn_item(barn, **barn_keys)])
        path = tmp_path / "options.json"
        path.write_text(json.dumps(options.to_dict()))
        return Plant(options, tmp_path / "data", save_options=file_saver(path))

    return make


def writes(server: SimulatorServer) -> int:
    return sum(1 for request in server.requests() if request[4] in WRITES)


async def test_each_controller_runs_with_its_own_keys_and_the_shared_ones(
    two: Callable[..., Plant], barn: SimulatorServer, tmp_path: Path
) -> None:
    plant = two(max_export_limit=4.0, request_gap_ms=50)
    assert plant.names == ["sec1000", "barn"]
    first, second = plant.first, plant.get("barn")
    assert plant.get(None) is first and plant.get("") is first
    assert (second.options.host, second.options.port) == ("127.0.0.1", barn.port)
    assert second.options.max_export_limit == 4.0 and first.options.max_export_limit == 8.0
    assert second.link.gap == 0.05 and first.link.gap == TEST_GAP_MS / 1000
    assert second.options.request_timeout == TEST_TIMEOUT_S  # unset: the top level's
    assert second.options.controllers == () and len(first.options.controllers) == 1
    assert (
        second.data_dir == tmp_path / "data" / "barn" == controller_dir(tmp_path / "data", "barn")
    )
    assert first.data_dir == tmp_path / "data"
    with pytest.raises(UnknownController, match="the controllers are sec1000, barn"):
        plant.get("garage")


async def test_a_command_reaches_only_its_own_controller(
    two: Callable[..., Plant], simulator: SimulatorServer, barn: SimulatorServer
) -> None:
    plant = two()
    result = await plant.get("barn").ops.export_disable(PANEL)
    assert result.ok, result.message
    assert writes(barn) >= 1 and writes(simulator) == 0
    assert plant.get("barn").state.export_limit_kw == 0.0
    assert plant.first.state.export_limit_kw is None  # never read: nothing went to it


async def test_the_audit_is_one_file_and_each_entry_names_its_controller(
    two: Callable[..., Plant], tmp_path: Path
) -> None:
    plant = two()
    assert (await plant.get("barn").ops.export_disable(PANEL)).ok
    assert (await plant.first.ops.export_enable(PANEL)).ok
    await plant.first.audit.flush()
    lines = (tmp_path / "data" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["controller"] for line in lines] == ["barn", "sec1000"]
    assert not (tmp_path / "data" / "barn" / "audit.jsonl").exists()
    assert [e["command"] for e in plant.get("barn").audit.tail()] == ["export_disable"]
    assert [e["command"] for e in plant.first.audit.tail()] == ["export_enable"]
    assert [e["command"] for e in await plant.get("barn").audit.everything()] == ["export_disable"]
    # Each controller's day counts its own writes: one each.
    assert plant.get("barn").energy.snapshot()["today"]["writes"] == 1
    assert plant.first.energy.snapshot()["today"]["writes"] == 1


async def test_an_entry_of_before_several_controllers_belongs_to_the_first(
    two: Callable[..., Plant], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit.jsonl").write_text(json.dumps({"command": "export_disable"}) + "\n")
    plant = two()
    assert [e["command"] for e in plant.first.audit.tail()] == ["export_disable"]
    assert plant.get("barn").audit.tail() == []


async def test_a_controllers_own_change_is_saved_into_its_item(
    two: Callable[..., Plant], tmp_path: Path, barn: SimulatorServer
) -> None:
    plant = two()
    result = await plant.get("barn").ops.set_control_mode("rcr", None, PANEL)
    assert result.ok, result.message
    stored = await asyncio.to_thread(load_options_file, tmp_path / "options.json")
    assert stored.export_limit_control_mode == "value"  # the first controller's is unchanged
    assert stored.controllers[0].values == {
        "host": "127.0.0.1",
        "port": barn.port,
        "export_limit_control_mode": "rcr",
    }
    assert plant.get("barn").options.export_limit_control_mode == "rcr"
    assert plant.first.options.of_controller("barn").export_limit_control_mode == "rcr"


async def test_a_shared_change_reaches_every_controller_and_an_own_key_stays(
    two: Callable[..., Plant],
) -> None:
    plant = two(max_export_limit=4.0)
    top = plant.first.options
    await plant.first.apply_options(
        Options.from_mapping({"scan_interval": 7, "max_export_limit": 9.0}, base=top), PANEL
    )
    barn = plant.get("barn")
    assert barn.options.scan_interval == 7
    assert barn.options.max_export_limit == 4.0  # its own
    assert plant.first.options.max_export_limit == 9.0


async def test_a_controller_added_and_removed_while_running(
    make_options: Callable[..., Options], barn: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "options.json"
    plant = Plant(make_options(scan_interval=1), tmp_path / "data", save_options=file_saver(path))
    events: list[PlantEvent] = []
    plant.subscribe(events.append)
    await plant.start()
    try:
        await plant.save_controller(barn_item(barn, max_export_limit="3"), PANEL)
        assert [(e.change, e.runtime.name) for e in events] == [(Change.ADDED, "barn")]
        added = plant.get("barn")
        await eventually(
            lambda: added.state.telemetry is not None, passes_within(added, 1), "barn's first read"
        )
        assert added.options.max_export_limit == 3.0
        stored = await asyncio.to_thread(load_options_file, path)
        assert stored.controller_names == ["sec1000", "barn"]
        assert (await added.ops.export_disable(PANEL)).ok
        await plant.remove_controller("barn", PANEL)
        assert [e.change for e in events] == [Change.ADDED, Change.REMOVED]
        assert plant.names == ["sec1000"]
        await eventually(lambda: added.writer.stopping, STOP_BUDGET, "barn's runtime stopping")
        stored = await asyncio.to_thread(load_options_file, path)
        assert stored.controllers == ()
        assert (tmp_path / "data" / "barn" / "wanted.json").exists()  # its files are kept
    finally:
        await plant.stop(5)


async def test_an_invalid_controller_is_refused_by_field_and_nothing_is_saved(
    two: Callable[..., Plant], tmp_path: Path, simulator: SimulatorServer
) -> None:
    plant = two()
    before = (tmp_path / "options.json").read_text()
    cases = [
        ({"name": "Barn!", "host": "10.0.0.9"}, "name"),
        ({"name": "sec1000", "host": "10.0.0.9"}, "name"),
        ({"name": "garage", "host": ""}, "host"),
        ({"name": "garage", "host": "10.0.0.9", "max_export_limit": "lots"}, "max_export_limit"),
        ({"name": "garage", "host": "10.0.0.9", "max_export_limit": "50"}, "max_export_limit"),
        ({"name": "garage", "host": "127.0.0.1", "port": simulator.port}, "controllers"),
    ]
    for values, key in cases:
        with pytest.raises(OptionsError) as raised:
            await plant.save_controller(values, PANEL)
        assert key in raised.value.errors, (values, raised.value.errors)
    assert (tmp_path / "options.json").read_text() == before
    assert plant.names == ["sec1000", "barn"]
    with pytest.raises(UnknownController):
        await plant.remove_controller("sec1000", PANEL)


async def test_a_controller_cannot_move_while_its_restore_is_pending(
    two: Callable[..., Plant], tmp_path: Path
) -> None:
    plant = two()
    barn = plant.get("barn")
    record = RestoreRecord("value", 4_000, True, time.time())
    await asyncio.to_thread(barn.restore_store.save, record)  # as a crash would leave it
    assert barn.watchdog.pending
    with pytest.raises(OptionsError, match="restore is pending") as raised:
        await plant.save_controller({"name": "barn", "host": "10.0.0.9"}, PANEL)
    assert set(raised.value.errors) == {"host"}  # shown at the form's address field
    assert barn.options.host == "127.0.0.1"
    with pytest.raises(OptionsError, match="cannot be removed while its export limiter restore"):
        await plant.remove_controller("barn", PANEL)
    assert plant.names == ["sec1000", "barn"]


@pytest.mark.parametrize(
    ("controllers", "words"),
    [
        ("barn", "must be a list of controllers"),
        ([{"name": "barn"}], "host: must not be empty"),
        ([{"name": "a", "host": "10.0.0.2"}, {"name": "a", "host": "10.0.0.3"}], "is taken"),
        ([{"name": "a", "host": "10.0.0.2"}, {"name": "b", "host": "10.0.0.2"}], "already"),
        ([{"name": "x" * 21, "host": "10.0.0.2"}], "1 to 20"),
        ([{"name": "_a", "host": "10.0.0.2"}], "not first"),
        ([{"name": "a_", "host": "10.0.0.2"}], "not last"),
        ([{"name": "a__b", "host": "10.0.0.2"}], "two in a row"),
        ([{"name": "a", "host": "10.0.0.2", "scan_interval": 5}], "not a key of a controller"),
        ([{"name": "a", "host": "10.0.0.2", "min_export_limit": 20}], "above the maximum"),
        (["a"], "must be an object"),
    ],
)
def test_broken_controllers_in_the_options_file_are_named(
    tmp_path: Path, controllers: object, words: str
) -> None:
    """A save refuses them under `controllers`; the stored file sets them aside by item, and
    the valid ones run."""
    with pytest.raises(OptionsError, match=words) as raised:
        Options.from_mapping({"controllers": controllers})
    assert set(raised.value.errors) == {"controllers"}
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"controllers": controllers}))
    stored = load_options_file(path)
    assert stored.refused and words in stored.refused[-1].reason
    items = controllers if isinstance(controllers, list) else [controllers]
    assert len(stored.controllers) + len(stored.refused) == len(items)
    assert stored.to_dict()["controllers"] == items  # kept as stored


@pytest.mark.parametrize("name", ["a", "barn", "barn_2", "x" * 20, "0_garage_west"])
def test_a_controllers_name_makes_valid_entity_ids(name: str) -> None:
    options = Options.from_mapping({"controllers": [{"name": name, "host": "10.0.0.2"}]})
    assert options.controller_names == ["sec1000", name]


def test_the_options_file_keeps_the_controllers_as_written(tmp_path: Path) -> None:
    item = {"name": "barn", "host": "10.0.0.2", "port": 1235, "price_policy": False}
    options = Options.from_mapping({"controllers": [item]})
    assert options.to_dict()["controllers"] == [item]
    assert Options.from_mapping(options.to_dict()) == options
    assert options.of_controller("barn").port == 1235
    with pytest.raises(KeyError):
        options.of_controller("garage")


async def sec1000_cli(*args: str, options: Path, data_dir: Path) -> asyncio.subprocess.Process:
    """The command line as a user runs it, on an options file naming both controllers."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sec1000",
        *args,
        "--options",
        str(options),
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def both(tmp_path: Path, simulator: SimulatorServer, barn: SimulatorServer) -> Path:
    path = tmp_path / "options.json"
    options = {
        "host": "127.0.0.1",
        "port": simulator.port,
        "request_gap_ms": TEST_GAP_MS,
        # The default timeout: a command line is a fresh process, and on a busy machine its
        # first answers took over 2 s; these tests are about which controller acts, not time.
        "max_export_limit": 8.0,
        "controllers": [barn_item(barn)],
    }
    path.write_text(json.dumps(options))
    return path


async def test_the_command_line_acts_on_the_controller_it_names(
    tmp_path: Path, simulator: SimulatorServer, barn: SimulatorServer
) -> None:
    options = both(tmp_path, simulator, barn)
    data = tmp_path / "data"
    process = await sec1000_cli(
        "export", "off", "--controller", "barn", options=options, data_dir=data
    )
    _, err = await asyncio.wait_for(process.communicate(), process_start_s())
    assert process.returncode == 0, err.decode()
    assert barn.device.export_limit_w == 0 and writes(simulator) == 0
    audit = [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]
    assert [(e["controller"], e["command"]) for e in audit] == [("barn", "export_disable")]
    process = await sec1000_cli("get-limit", options=options, data_dir=data)  # the first
    out, err = await asyncio.wait_for(process.communicate(), process_start_s())
    assert process.returncode == 0 and "kW" in out.decode() and len(simulator.requests()) >= 1
    process = await sec1000_cli("read", "--controller", "garage", options=options, data_dir=data)
    _, err = await asyncio.wait_for(process.communicate(), process_start_s())
    assert process.returncode == 2
    assert "no controller named 'garage'" in err.decode() and "sec1000, barn" in err.decode()
    assert "Traceback" not in err.decode()


async def test_a_sigkill_in_one_controllers_window_restores_it_and_leaves_the_other(
    tmp_path: Path, simulator: SimulatorServer, barn: SimulatorServer
) -> None:
    """The reset of barn's watchdog is killed while barn's limiter is off: its restore record
    is barn's own, and the next start restores barn without writing to the first."""
    options = both(tmp_path, simulator, barn)
    data = tmp_path / "data"
    process = await sec1000_cli(
        "reset-watchdog", "--controller", "barn", options=options, data_dir=data
    )
    await eventually(lambda: barn.device.mode is ControlMode.DEACTIVATED, what="barn's limiter off")
    process.kill()  # SIGKILL: no cleanup at all
    await process.wait()
    assert (data / "barn" / RECORD_NAME).exists() and not (data / RECORD_NAME).exists()
    first_mode, first_limit = simulator.device.mode, simulator.device.export_limit_w
    plant = Plant(await asyncio.to_thread(load_options_file, options), data)
    await plant.start()
    try:
        await asyncio.wait_for(plant.wait_ready(), 15)
        assert barn.device.mode is ControlMode.VALUE
        assert not (data / "barn" / RECORD_NAME).exists()
        assert not plant.first.restore_store.pending
    finally:
        await plant.stop(5)
    assert (simulator.device.mode, simulator.device.export_limit_w) == (first_mode, first_limit)
    assert writes(simulator) == 0


async def test_two_controllers_talk_at_the_same_time_each_with_its_own_gap(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn: SimulatorServer,
    tmp_path: Path,
) -> None:
    options = make_options(request_gap_ms=100, controllers=[barn_item(barn, request_gap_ms=300)])
    plant = Plant(options, tmp_path)
    results = await asyncio.gather(
        plant.first.ops.export_disable(PANEL), plant.get("barn").ops.export_disable(PANEL)
    )
    assert all(result.ok for result in results)
    spans = []
    for server, gap in ((simulator, 0.1), (barn, 0.3)):
        times = [e.request_at for e in server.exchanges if e.request_at is not None]
        spans.append((min(times), max(times)))
        assert len(times) >= 3 and min(server.request_gaps()) >= gap * 0.99, server.request_gaps()
    (first_start, first_end), (barn_start, barn_end) = spans
    assert first_start < barn_end and barn_start < first_end  # the two overlapped on the wire


async def test_a_silent_controller_fails_alone(
    two: Callable[..., Plant], simulator: SimulatorServer, barn: SimulatorServer
) -> None:
    """barn stops answering: its command fails with a timeout; the first's, sent meanwhile,
    is confirmed, and the first's link counts no failure."""
    plant = two()
    barn.set_fault("silence")
    stuck = asyncio.create_task(plant.get("barn").ops.export_disable(PANEL))
    await eventually(lambda: barn.exchange_count > 0, what="barn asked")
    first = await plant.first.ops.export_disable(PANEL)
    assert first.ok and not stuck.done()
    assert simulator.device.export_limit_w == 0
    assert plant.first.link.health.consecutive_failures == 0
    failed = await stuck
    assert not failed.ok and "no answer" in failed.message
    assert plant.get("barn").link.health.consecutive_failures > 0
    assert plant.first.link.health.consecutive_failures == 0


async def test_the_plant_remembers_its_controllers_until_their_entities_are_gone(
    two: Callable[..., Plant], make_options: Callable[..., Options], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    plant = two()
    await plant.stop(1)
    assert json.loads((data / "controllers.json").read_text()) == ["sec1000", "barn"]
    again = Plant(make_options(), data)  # barn removed while the add-on was stopped
    assert list(again.departed) == ["barn"] and again.names == ["sec1000"]
    assert again.departed["barn"].data_dir == data / "barn"
    again.cleared("barn")
    await again.stop(1)
    assert json.loads((data / "controllers.json").read_text()) == ["sec1000"]
    assert Plant(make_options(), data).departed == {}


@pytest.mark.parametrize("stored", ["{broken", '{"barn": 1}', '["sec1000", "Bad!", 7, "__"]'])
def test_a_broken_controllers_file_departs_nobody(
    make_options: Callable[..., Options], tmp_path: Path, stored: str
) -> None:
    (tmp_path / "controllers.json").write_text(stored)
    plant = Plant(make_options(), tmp_path)
    assert plant.departed == {}
    assert json.loads((tmp_path / "controllers.json").read_text()) == ["sec1000"]


def test_broken_options_depart_nobody(make_options: Callable[..., Options], tmp_path: Path) -> None:
    """While the options are invalid the defaults stand in: they name no controller, and that
    says nothing about which ones the user removed."""
    (tmp_path / "controllers.json").write_text('["sec1000", "barn"]')
    invalid = InvalidOptions(OptionsError({"port": "must be at most 65535"}), {})
    plant = Plant(Options(), tmp_path, invalid=invalid)
    assert plant.departed == {}
    assert json.loads((tmp_path / "controllers.json").read_text()) == ["sec1000", "barn"]


def test_a_controller_removed_in_its_reset_window_is_said_so(
    make_options: Callable[..., Options], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Removed in the Configuration tab while a reset had its limiter off (the add-on killed),
    with a record from before records named the address: nothing can reach it any more, and
    the log says what to do. (A record with its address is restored: test_each_controller_its_own.)"""
    (tmp_path / "controllers.json").write_text('["sec1000", "barn"]')
    (tmp_path / "barn").mkdir()
    RestoreStore(tmp_path / "barn").save(RestoreRecord("value", 4_000, True, time.time()))
    plant = Plant(make_options(), tmp_path)
    assert plant.departed["barn"].restore_store.pending
    assert "restore record is from before records named the address" in caplog.text
    assert "barn" not in plant.restoring
