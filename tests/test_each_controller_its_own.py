"""Several controllers, one options document: a change for one controller changes no other.

Judged on the wire: each controller is a simulator over real sockets, and what it holds is
what its frames set.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sec1000.ha.notifications import (
    CONFIG_NOTIFICATION,
    RESTORE_NOTIFICATION,
    desired_notifications,
)
from sec1000.limiter.watchdog import RECORD_NAME, RestoreRecord, RestoreStore
from sec1000.operations import Origin
from sec1000.options import InvalidOptions, Options, OptionsError, load_options_file
from sec1000.plant import Plant
from sec1000.protocol import Command, ControlMode, PhaseMeasurement
from sec1000.runtime import file_saver
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually

PANEL = Origin("panel")
HOME_ASSISTANT = Origin("home_assistant", "automation")


@pytest.fixture
async def barn() -> AsyncIterator[SimulatorServer]:
    """The second controller's simulator."""
    async with SimulatorServer() as server:
        yield server


def plant_of_two(
    make_options: Callable[..., Options],
    barn: SimulatorServer,
    tmp_path: Path,
    save: Callable[[Options], Awaitable[None]] | None = None,
    **top: object,
) -> Plant:
    """The `simulator` (first) and `barn`, which sets only its address."""
    options = make_options(
        controllers=[{"name": "barn", "host": "127.0.0.1", "port": barn.port}], **top
    )
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options.to_dict()))
    return Plant(options, tmp_path / "data", save_options=save or file_saver(path))


async def stored(tmp_path: Path) -> Options:
    return await asyncio.to_thread(load_options_file, tmp_path / "options.json")


async def test_a_mode_sent_without_a_controller_switches_the_first_one_only(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn: SimulatorServer,
    tmp_path: Path,
) -> None:
    plant = plant_of_two(make_options, barn, tmp_path)
    await plant.start()
    try:
        await plant.wait_ready()
        for mode in ("rcr", "deactivated"):
            # What sec1000_command, a script or the MQTT select send: no controller named.
            result = await plant.get(None).ops.set_control_mode(mode, None, HOME_ASSISTANT)
            assert result.ok, result.message
            assert simulator.device.mode is ControlMode.from_option(mode)
            assert barn.device.mode is ControlMode.VALUE, f"barn switched to {mode}"
            assert plant.get("barn").options.export_limit_control_mode == "value"
        document = await stored(tmp_path)
        assert document.export_limit_control_mode == "deactivated"
        assert document.of_controller("barn").export_limit_control_mode == "value"
        # Barn took the mode from the top level: it is now its own, as it ran with it.
        assert document.controllers[0].values["export_limit_control_mode"] == "value"
    finally:
        await plant.stop(5)


async def test_a_drift_adopted_on_the_first_controller_stays_there(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn: SimulatorServer,
    tmp_path: Path,
) -> None:
    plant = plant_of_two(
        make_options, barn, tmp_path, drift_action="adopt", verify_interval=5, scan_interval=1
    )
    await plant.start()
    try:
        await plant.wait_ready()
        first, second = plant.first, plant.get("barn")
        await eventually(lambda: first.guard.wanted is not None, 10, "the first read-back")
        await eventually(lambda: second.guard.wanted is not None, 10, "barn's first read-back")
        simulator.device.switches[Command.MODE_VALUE] = False  # another tool: the limiter off
        first.guard.wake()
        await eventually(
            lambda: first.options.export_limit_control_mode == "deactivated",
            10,
            "the first controller's mode adopted",
        )
        second.guard.wake()  # barn looks at its controller after the adoption
        checks = second.ticks
        await eventually(lambda: second.ticks > checks + 1, 10, "barn's next two reads")
        assert second.options.export_limit_control_mode == "value"
        assert barn.device.mode is ControlMode.VALUE
        assert (await stored(tmp_path)).of_controller("barn").export_limit_control_mode == "value"
    finally:
        await plant.stop(5)


@pytest.mark.parametrize("held_first", ["setup", "barn"])
async def test_a_setup_save_and_a_controllers_own_change_at_once_lose_neither(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn: SimulatorServer,
    tmp_path: Path,
    held_first: str,
) -> None:
    """One change is held in the Supervisor's save while the other comes: one lock for the
    document makes the second wait and build on the first, so both are kept, in use, in the
    file and on the wire."""
    path = tmp_path / "options.json"
    saver = file_saver(path)
    gate = asyncio.Event()
    saves: list[Options] = []  # counted from when the race is set up

    async def slow_first_save(options: Options) -> None:
        if armed:
            saves.append(options)
            if len(saves) == 1:
                await gate.wait()  # the Supervisor is slow with the first save
        await saver(options)

    armed = False
    plant = plant_of_two(make_options, barn, tmp_path, save=slow_first_save)
    await plant.start()
    try:
        await plant.wait_ready()
        # Barn's own maximum first, so that the ceiling is valid for it.
        barn_own = {"name": "barn", "host": "127.0.0.1", "port": barn.port, "max_export_limit": 3.0}
        await plant.save_controller(barn_own, PANEL)

        async def setup_save() -> None:  # what the panel's Setup does, all under its lock
            async with plant.options_lock:
                ceiling = {"export_ceiling_kw": 3.0, "max_export_limit": 3.0}
                options = Options.from_mapping(ceiling, base=plant.first.options)
                await plant.first.apply_options(options, PANEL)

        def barn_phase() -> asyncio.Task[object]:
            return asyncio.create_task(
                plant.get("barn").ops.set_control_mode("value", False, PANEL)
            )

        armed = held_first == "setup"
        if held_first == "setup":
            saving = asyncio.create_task(setup_save())
            await eventually(lambda: len(saves) == 1, 5, "the Setup save in the Supervisor")
            phase = barn_phase()
            await eventually(
                lambda: barn.device.phase is PhaseMeasurement.PER_PHASE, 10, "barn's write"
            )
        else:
            armed = True
            phase = barn_phase()
            await eventually(lambda: len(saves) == 1, 10, "barn's change in the Supervisor")
            saving = asyncio.create_task(setup_save())
            await asyncio.sleep(0)
        gate.set()
        await asyncio.wait_for(saving, 10)
        result = await asyncio.wait_for(phase, 10)
        assert getattr(result, "ok", False), result
        document = await stored(tmp_path)
        assert document.export_ceiling_kw == 3.0
        assert document.of_controller("barn").three_phase_sum is False
        assert plant.first.options.export_ceiling_kw == 3.0
        assert plant.get("barn").options.three_phase_sum is False
        assert plant.get("barn").options.export_ceiling_kw == 3.0
        await eventually(
            lambda: simulator.device.export_limit_w <= 3000, 10, "the ceiling on the wire"
        )
        await eventually(
            lambda: barn.device.phase is PhaseMeasurement.PER_PHASE, 10, "barn's phase kept"
        )
    finally:
        await plant.stop(5)


# -- one controller's bad item never unguards another


def write_options(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(data))
    return path


async def test_a_bad_item_is_refused_alone_and_every_other_controller_keeps_its_guard(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    barn: SimulatorServer,
    tmp_path: Path,
) -> None:
    """`Garage` passed an older Supervisor schema; the add-on refuses that item only. The
    first controller's ceiling and barn's commands work, and a save keeps the bad item."""
    top = make_options(export_ceiling_kw=3.0, max_export_limit=3.0).to_dict()
    garage = {"name": "Garage", "host": "10.0.0.7"}
    top["controllers"] = [garage, {"name": "barn", "host": "127.0.0.1", "port": barn.port}]
    path = write_options(tmp_path, top)
    options = await asyncio.to_thread(load_options_file, path)
    assert [item.label for item in options.refused] == ["controller 1 (Garage)"]
    assert "must be 1 to 20 small letters" in options.refused[0].reason
    plant = Plant(options, tmp_path / "data", save_options=file_saver(path))
    assert plant.names == ["sec1000", "barn"]
    assert plant.first.options_error is None and plant.first._refuse_writes() is None
    simulator.device.export_limit_w = 8000  # another tool, above the 3 kW ceiling
    await plant.start()
    try:
        await eventually(
            lambda: simulator.device.export_limit_w <= 3000, 10, "the ceiling put back"
        )
        result = await plant.get("barn").ops.export_disable(PANEL)
        assert result.ok, result.message
        assert barn.device.export_limit_w == 0
        # A change saved now keeps Garage as the user stored it, in its place.
        assert (await plant.first.ops.set_control_mode("value", False, PANEL)).ok
        stored_items = json.loads(path.read_text())["controllers"]
        assert stored_items[0] == garage
        assert [item["name"] for item in stored_items] == ["Garage", "barn"]
    finally:
        await plant.stop(5)


async def test_the_notification_names_the_refused_item(
    make_options: Callable[..., Options], tmp_path: Path
) -> None:
    top = make_options().to_dict()
    top["controllers"] = [{"name": "garage", "host": "10.0.0.7", "max_export_limit": 50}]
    options = await asyncio.to_thread(load_options_file, write_options(tmp_path, top))
    plant = Plant(options, tmp_path / "data")
    title, message = desired_notifications(plant.first, started_at=0, now=0)[CONFIG_NOTIFICATION]
    assert "refused" in title
    assert "controller 1 (garage)" in message and "max_export_limit" in message


def pend_restore(data: Path, server: SimulatorServer, host: str = "127.0.0.1") -> None:
    """A watchdog reset killed in its window: the record written, the limiter off."""
    data.mkdir(parents=True, exist_ok=True)
    RestoreStore(data).save(
        RestoreRecord("value", 3000, True, time.time(), host=host, port=server.port)
    )
    for switch in (Command.MODE_VALUE, Command.MODE_DRED, Command.MODE_RCR):
        server.device.switches[switch] = False


@pytest.mark.parametrize("why", ["removed", "refused", "options_invalid"])
async def test_a_controller_that_does_not_run_is_restored_from_its_record(
    make_options: Callable[..., Options],
    barn: SimulatorServer,
    tmp_path: Path,
    why: str,
) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(pend_restore, data / "barn", barn)
    (data / "controllers.json").write_text('["barn"]')
    top = make_options().to_dict()
    if why == "refused":
        top["controllers"] = [
            {"name": "barn", "host": "127.0.0.1", "port": barn.port, "max_export_limit": 50}
        ]
    options = await asyncio.to_thread(load_options_file, write_options(tmp_path, top))
    invalid = None
    if why == "options_invalid":
        invalid = InvalidOptions(OptionsError({"host": "must not be empty"}), {"host": ""})
    plant = Plant(options, data, invalid=invalid)
    assert "barn" not in plant.names
    _title, message = desired_notifications(plant.first, started_at=0, now=0)[RESTORE_NOTIFICATION]
    assert "controller barn" in message and "no longer run" in message
    await plant.start()
    try:
        await eventually(lambda: plant.restoring == [], 10, "barn's restore confirmed")
        assert RESTORE_NOTIFICATION not in desired_notifications(plant.first, started_at=0, now=0)
        assert barn.device.mode is ControlMode.VALUE
        assert barn.device.export_limit_w == 3000
        assert not (data / "barn" / RECORD_NAME).exists()
        if why == "removed":
            assert "barn" in plant.departed  # its entities still go
        else:
            assert "barn" not in plant.departed  # refused or unjudged: its entities stay
    finally:
        await plant.stop(5)


async def test_a_record_of_an_old_address_never_blocks_the_controller_at_its_new_one(
    make_options: Callable[..., Options],
    barn: SimulatorServer,
    tmp_path: Path,
) -> None:
    """Barn moved: its record names an address where nothing answers any more. The restore
    is retried there in the background; barn's writes at its new address go through."""
    gone = SimulatorServer()
    await gone.start()
    old_port = gone.port
    await gone.stop()  # nothing listens there now
    data = tmp_path / "data"
    record = RestoreRecord("value", 3000, True, time.time(), host="127.0.0.1", port=old_port)
    await asyncio.to_thread((data / "barn").mkdir, parents=True)
    await asyncio.to_thread(RestoreStore(data / "barn").save, record)
    plant = plant_of_two(make_options, barn, tmp_path)
    second = plant.get("barn")
    assert second.watchdog.elsewhere == ("127.0.0.1", old_port)
    await plant.start()
    try:
        await asyncio.wait_for(plant.wait_ready(), 10)
        result = await second.ops.export_disable(PANEL)
        assert result.ok, result.message
        assert barn.device.export_limit_w == 0
        await eventually(lambda: bool(second.state.restore_error), 10, "the retry reported")
        assert second.state.restore_pending  # still retried, and told
        assert second.watchdog.pending and not second.watchdog.blocks
    finally:
        await plant.stop(5)


# -- two controllers on one device


@pytest.mark.parametrize("spelling", ["localhost", "0x7f.1", "::ffff:127.0.0.1", "127.1.0.0"])
async def test_a_second_controller_on_the_same_device_is_refused_however_spelled(
    make_options: Callable[..., Options],
    simulator: SimulatorServer,
    tmp_path: Path,
    spelling: str,
) -> None:
    from sec1000.plant import refuse_shared_devices

    top = make_options().to_dict()
    item = {"name": "barn", "host": spelling, "port": simulator.port}
    same = spelling != "127.1.0.0"  # another loopback address: another device
    options = await asyncio.to_thread(load_options_file, write_options(tmp_path, top))
    plant = Plant(options, tmp_path / "data", save_options=file_saver(tmp_path / "options.json"))
    if same:
        with pytest.raises(
            OptionsError, match=r"(leads to the device )?the first controller is at"
        ):
            await plant.save_controller(item, PANEL)
        assert plant.names == ["sec1000"]
    else:
        await plant.save_controller(item, PANEL)
        assert plant.names == ["sec1000", "barn"]
    # Stored so by hand (the Configuration tab): refused at the start, the first one runs.
    top["controllers"] = [item]
    stored_options = await asyncio.to_thread(load_options_file, write_options(tmp_path, top))
    started = await refuse_shared_devices(stored_options)
    assert [c.name for c in started.controllers] == ([] if same else ["barn"])
    assert [c.label for c in started.refused] == (["controller 1 (barn)"] if same else [])
    assert started.to_dict()["controllers"] == [
        {**item, "port": simulator.port} if same else started.controllers[0].to_dict()
    ]


async def test_an_address_that_cannot_be_looked_up_holds_nothing_up(
    make_options: Callable[..., Options],
) -> None:
    """A lookup that fails (no such name, no DNS) leaves each address as written (the same
    spelling twice is refused by the options' own check): nothing is refused for it."""
    from sec1000.plant import shared_devices

    top = make_options(host="nowhere.invalid", port=1235).to_dict()
    items = [
        {"name": "barn", "host": "nowhere.invalid", "port": 1236},
        {"name": "garage", "host": "elsewhere.invalid", "port": 1235},
    ]
    assert await shared_devices(Options.from_mapping({**top, "controllers": items})) == {}
