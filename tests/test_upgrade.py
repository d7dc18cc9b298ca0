"""An upgrade keeps everything: the add-on starts on the /data folder an earlier release wrote.

Each folder in tests/fixtures/data/ is the disk a release left, written by that release's own
code over real sockets (scripts/make_data_fixture.py; the folder's fixture.json names the
release and its commit): options, wanted state, energy, audit trail, the controllers list, and
a watchdog reset killed in its window on both controllers (their restore records pending, the
simulators' limiters off). The test copies it, points it at fresh simulators, and starts the
current plant on it.

Rewritten in the copy, and nothing else: the controllers' ports in `options.json` (top level
and each `controllers` item) and in each restore record (`port`, and `host`, which stays
127.0.0.1), through one map from each recorded simulator's port to the test's simulator of
the same controller, so a record and the options still name the same controller.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sec1000.ha import discovery, entities
from sec1000.limiter.audit import AUDIT_NAME
from sec1000.limiter.wanted import WANTED_NAME, WantedStore
from sec1000.limiter.watchdog import RECORD_NAME
from sec1000.options import FIRST_CONTROLLER
from sec1000.plant import KNOWN_NAME, Plant, controller_dir, refuse_shared_devices
from sec1000.protocol import Command
from sec1000.runtime import file_saver
from sec1000.serve import load_startup_options
from sec1000.simulator import SimulatorServer

from tests.helpers.packaging import ADDON, ROOT
from tests.helpers.watchdog import SHORT_WATCHDOG

FIXTURES = ROOT / "tests" / "fixtures" / "data"
RELEASES = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())
# The fixture's own notes, not files of the add-on.
NOTES = ("fixture.json", "entity_ids.json")
LOOPBACK = "127.0.0.1"
MODE_SWITCHES = {Command.MODE_VALUE, Command.MODE_DRED, Command.MODE_RCR}
# Every file a release writes in a controller's folder (the first controller's is /data).
CONTROLLER_FILES = ("energy.json", WANTED_NAME, RECORD_NAME)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Upgrade:
    """A release's /data, copied and pointed at this test's simulators."""

    release: str
    data: Path
    fixture: Path
    notes: dict[str, Any]
    simulators: dict[str, SimulatorServer]

    def old(self, relative: str) -> Any:
        """A file as the release wrote it (before the ports were rewritten)."""
        return read_json(self.fixture / relative)

    def now(self, relative: str) -> Any:
        return read_json(self.data / relative)

    @property
    def names(self) -> list[str]:
        return list(self.notes["ports"])


def port_map(notes: dict[str, Any], simulators: dict[str, SimulatorServer]) -> dict[int, int]:
    """Each recorded simulator's port -> this test's simulator of the same controller."""
    return {notes["ports"][name]: simulators[name].port for name in notes["ports"]}


def rewrite_addresses(data: Path, ports: dict[int, int]) -> None:
    """Point the options and every restore record at the test's simulators, consistently."""
    options = read_json(data / "options.json")
    for item in [options, *options.get("controllers", [])]:
        assert item["host"] == LOOPBACK and item["port"] in ports, item
        item["port"] = ports[item["port"]]
    (data / "options.json").write_text(json.dumps(options, indent=2))
    for record_path in data.rglob(RECORD_NAME):
        record = read_json(record_path)
        assert record["host"] == LOOPBACK and record["port"] in ports, record
        record["port"] = ports[record["port"]]
        record_path.write_text(json.dumps(record))


@pytest.fixture(params=RELEASES)
async def upgrade(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Upgrade]:
    """The release's /data in tmp_path, fresh simulators holding what the release's held at
    the kill (every limiter off), the addresses rewritten."""
    fixture = FIXTURES / request.param
    notes = read_json(fixture / "fixture.json")
    assert notes["release"] == request.param
    simulators = {name: SimulatorServer(host=LOOPBACK) for name in notes["ports"]}
    for name, server in simulators.items():
        held = notes["held_at_the_kill"][name]
        server.device.export_limit_w = held["export_limit_w"]
        server.device.switches = dict.fromkeys(server.device.switches, False)
        assert server.device.mode.option == held["mode"] == "deactivated"
        await server.start()
    data = tmp_path / "data"
    shutil.copytree(fixture, data, ignore=shutil.ignore_patterns(*NOTES))
    rewrite_addresses(data, port_map(notes, simulators))
    yield Upgrade(request.param, data, fixture, notes, simulators)
    for server in simulators.values():
        await server.stop()


async def open_plant(upgrade: Upgrade) -> Plant:
    """The current code's start on that folder: the options as serve reads them, the plant."""
    path = upgrade.data / "options.json"
    options, error = await asyncio.to_thread(load_startup_options, path)
    assert error is None, f"{upgrade.release}'s options are refused: {error}"
    options = await refuse_shared_devices(options)
    assert options.refused == (), options.refused
    return Plant(
        options, upgrade.data, save_options=file_saver(path), watchdog_timings=SHORT_WATCHDOG
    )


def assert_contains(new: Any, old: Any, where: str) -> None:
    """Everything `old` holds is in `new` with the same value (new keys may be added)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for key, value in old.items():
            assert key in new, f"{where}.{key} was lost"
            assert_contains(new[key], value, f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for index, (now, was) in enumerate(zip(new, old, strict=True)):
            assert_contains(now, was, f"{where}[{index}]")
    else:
        assert new == old, f"{where}: {old!r} became {new!r}"


async def test_every_option_is_read_as_the_release_saved_it(upgrade: Upgrade) -> None:
    plant = await open_plant(upgrade)
    saved = upgrade.now("options.json")  # the release's, with only the ports rewritten
    assert_contains(plant.first.options.to_dict(), saved, "options")
    assert plant.names == upgrade.names
    for item in saved["controllers"]:
        own = plant.get(item["name"]).options
        for key, value in item.items():
            if key != "name":
                assert getattr(own, key) == value, (item["name"], key)
    # The negative price threshold of the fixture survives as typed.
    assert plant.first.options.export_off_below == saved["export_off_below"] < 0


async def test_every_counter_and_wanted_state_is_carried_over(upgrade: Upgrade) -> None:
    plant = await open_plant(upgrade)
    for name in upgrade.names:
        runtime = plant.get(name)
        folder = controller_dir(Path(""), name)
        energy = upgrade.old(str(folder / "energy.json"))
        assert runtime.energy.broken is None, runtime.energy.broken
        assert_contains(runtime.energy.book.to_json(), energy, f"{name} energy.json")
        assert any(value > 0 for value in energy["totals"].values()), "the release counted energy"
        wanted = await asyncio.to_thread(WantedStore(runtime.data_dir).load)
        assert wanted is not None
        assert_contains(
            {**vars_of(wanted), "basis": dict(wanted.basis)},
            upgrade.old(str(folder / WANTED_NAME)),
            f"{name} wanted.json",
        )


def vars_of(value: Any) -> dict[str, Any]:
    return {slot: getattr(value, slot) for slot in value.__slots__}


async def test_the_audit_trail_and_the_controllers_list_are_kept(upgrade: Upgrade) -> None:
    plant = await open_plant(upgrade)
    lines = (upgrade.fixture / AUDIT_NAME).read_text(encoding="utf-8").splitlines()
    written = [json.loads(line) for line in lines]
    assert written, "the release audited its writes"
    for name in upgrade.names:
        mine = [entry for entry in written if entry.get("controller", FIRST_CONTROLLER) == name]
        assert mine, name
        assert_contains(plant.get(name).audit.tail(), mine, f"{name} audit")
    assert upgrade.old(KNOWN_NAME) == upgrade.names
    assert plant.departed == {}


async def test_every_pending_restore_is_carried_over_and_done_on_the_wire(
    upgrade: Upgrade,
) -> None:
    plant = await open_plant(upgrade)
    records = {}
    for name in upgrade.names:
        runtime = plant.get(name)
        record = upgrade.now(str(controller_dir(Path(""), name) / RECORD_NAME))
        assert runtime.restore_store.pending and runtime.restore_store.record is not None
        assert_contains(vars_of(runtime.restore_store.record), record, f"{name} restore record")
        records[name] = record
    counters = {name: dict(plant.get(name).energy.book.totals) for name in upgrade.names}
    await plant.start()
    try:
        await plant.wait_ready()
        for name, record in records.items():
            server = upgrade.simulators[name]
            assert server.device.mode.option == record["mode"], name
            assert server.device.export_limit_w == record["export_limit_w"], name
            assert {request[4] for request in server.requests()} & MODE_SWITCHES, name
            runtime = plant.get(name)
            assert not runtime.restore_store.pending, name
            assert not (runtime.data_dir / RECORD_NAME).exists(), name
            for counter, value in counters[name].items():
                assert runtime.energy.book.totals[counter] >= value, (name, counter)
    finally:
        await plant.stop()


async def test_no_entity_id_changed(upgrade: Upgrade) -> None:
    """The ids the release derived (its sec1000.ha.entities and discovery) are all still
    derived, each MQTT unique id naming the same entity."""
    plant = await open_plant(upgrade)
    recorded = read_json(upgrade.fixture / "entity_ids.json")
    assert list(recorded) == upgrade.names
    for name, old in recorded.items():
        sensors = {sensor.entity_id for sensor in entities.sensors_of(name)}
        helpers = {helper.entity_id for helper in entities.helpers_of(name)}
        mqtt = {
            component.unique_id: component.entity_id
            for component in discovery.components(plant.first.options, name)
        }
        assert set(old["sensors"]) - sensors == set(), name
        assert set(old["helpers"]) - helpers == set(), name
        assert {uid: mqtt.get(uid) for uid in old["mqtt"]} == old["mqtt"], name


def test_every_earlier_release_has_its_data_fixture() -> None:
    """Each release adds the /data its code writes: every CHANGELOG release before the one
    config.yaml carries has a folder here, and each folder is a release of the CHANGELOG."""
    changelog = (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - ", changelog, re.M)
    current = re.search(r'^version: "([^"]+)"$', (ADDON / "config.yaml").read_text(), re.M)
    assert current is not None
    earlier = [version for version in released if version != current.group(1)]
    assert RELEASES, "0.1.0 at least"
    assert set(earlier) <= set(RELEASES)
    assert set(RELEASES) <= set(released)
    for release in RELEASES:
        folder = FIXTURES / release
        for name in read_json(folder / "fixture.json")["ports"]:
            for file in CONTROLLER_FILES:
                assert (controller_dir(folder, name) / file).is_file(), (release, name, file)
        for file in ("options.json", AUDIT_NAME, KNOWN_NAME, *NOTES):
            assert (folder / file).is_file(), (release, file)


def test_the_fixture_generator_contacts_loopback_only() -> None:
    script = (ROOT / "scripts" / "make_data_fixture.py").read_text(encoding="utf-8")
    addresses = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", script))
    assert addresses == {LOOPBACK}
    for release in RELEASES:
        notes = read_json(FIXTURES / release / "fixture.json")
        assert notes["loopback"] == LOOPBACK
        options = read_json(FIXTURES / release / "options.json")
        hosts = {item["host"] for item in [options, *options["controllers"]]}
        assert hosts == {LOOPBACK}, release
