"""The panel with several controllers: the choice in the URL, the switcher, the summary, the
commands of the chosen controller only, Setup's Controllers step, and an unknown name."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sec1000.options import Options
from sec1000.plant import Plant
from sec1000.protocol import ControlMode
from sec1000.runtime import Runtime
from sec1000.serve import build_app
from sec1000.simulator import SimulatorServer

from tests.helpers.waiting import eventually
from tests.helpers.web import ClientFactory, panel, plant_of, with_barn

HX = {"HX-Request": "true"}


@pytest.fixture
async def barn_simulator() -> AsyncIterator[SimulatorServer]:
    """The second controller's simulator."""
    server = SimulatorServer(slow_delay=1.5)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def options_file(tmp_path: Path) -> Path:
    return tmp_path / "options.json"


@pytest.fixture
async def plant(
    make_options: Callable[..., Options],
    barn_simulator: SimulatorServer,
    tmp_path: Path,
    options_file: Path,
) -> AsyncIterator[Plant]:
    """Two controllers, `sec1000` and `barn`, each on its simulator; not started (no polls)."""
    built = plant_of(with_barn(make_options(), barn_simulator), tmp_path / "data", options_file)
    yield built
    await built.stop()


def saved(options_file: Path) -> dict[str, Any]:
    return dict(json.loads(options_file.read_text()))


def relative_only(html: str) -> None:
    found = re.findall(r'(?:href|src|action|hx-post|hx-get)="([^"]*)"', html)
    assert [u for u in found if u.startswith(("/", "http:", "https:", "//"))] == []


# -- one controller: nothing changes but the Setup step


async def test_one_controller_shows_no_switcher_and_no_summary(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    html = await (await client.get("/")).text()
    assert re.search(r'<nav id="switcher"[^>]* hidden', html)
    assert re.search(r'<section id="summary"[^>]* hidden', html)
    assert "controller=" not in html
    setup = await (await client.get("/setup")).text()
    assert 'id="step-controllers"' in setup and "Additional controllers" in setup
    assert 'id="no-controllers"' in setup


# -- the switcher and the pages


async def test_the_switcher_links_each_page_to_each_controller_with_relative_urls(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    for path, href in (("/", "./"), ("/setup", "setup"), ("/history", "history")):
        for query, chosen in (("", "sec1000"), ("?controller=barn", "barn")):
            html = await (await client.get(path + query)).text()
            relative_only(html)
            switcher = html[html.index('<nav id="switcher"') :]
            switcher = switcher[: switcher.index("</nav>")]
            assert " hidden" not in switcher.split(">")[0]
            assert f'href="{href}" id="controller-sec1000"' in switcher
            assert f'href="{href}?controller=barn" id="controller-barn"' in switcher
            assert re.search(rf'id="controller-{chosen}" aria-current="true"', switcher)
    barn = await (await client.get("/?controller=barn")).text()
    # Every link and form of barn's page stays on barn.
    assert 'href="setup?controller=barn"' in barn
    assert 'hx-post="command?controller=barn"' in barn
    assert 'href="compliance.csv?controller=barn"' in barn
    assert 'data-controller="barn"' in barn


async def test_each_page_shows_the_chosen_controllers_own_state(
    aiohttp_client: ClientFactory, plant: Plant, barn_simulator: SimulatorServer
) -> None:
    plant.first.state.settings_read(export_limit_kw=1.25)
    plant.get("barn").state.settings_read(export_limit_kw=4.75)
    client = await panel(aiohttp_client, plant)
    first = await (await client.get("/")).text()
    barn = await (await client.get("/?controller=barn")).text()
    info = re.compile(r'<span data-key="export_limit">([^<]*)<')
    assert info.findall(first) == ["1.25"]
    assert info.findall(barn) == ["4.75"]
    state = await (await client.get("/api/state?controller=barn")).json()
    assert state["export_limit"] == 4.75
    diagnostics = await (await client.get("/diagnostics.json?controller=barn")).json()
    assert diagnostics["controller"] == "barn"
    assert diagnostics["link"]["target"] == f"127.0.0.1:{barn_simulator.port}"


async def test_a_command_for_barn_reaches_only_barns_simulator(
    aiohttp_client: ClientFactory,
    plant: Plant,
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
) -> None:
    client = await panel(aiohttp_client, plant)
    response = await client.post(
        "/command?controller=barn", data={"command": "set_export_limit", "limit": "3,25"}
    )
    assert response.status == 200
    assert 'data-kind="waiting"' in await response.text()
    await eventually(lambda: barn_simulator.device.export_limit_w == 3250, what="3.25 kW on barn")
    barn = plant.get("barn")
    await eventually(lambda: len(barn.state.commands) == 1, what="barn's command done")
    assert barn_simulator.exchange_count > 0
    assert simulator.exchange_count == 0 and simulator.requests() == []
    assert list(plant.first.state.commands) == []
    # The audit names the controller; each controller's History shows its own writes.
    assert [e["controller"] for e in barn.audit.tail()] == ["barn"]
    history = await (await client.get("/history?controller=barn")).text()
    assert 'data-command="set_export_limit"' in history
    assert "set_export_limit" not in await (await client.get("/history")).text()


async def test_the_first_controllers_command_leaves_barn_alone(
    aiohttp_client: ClientFactory,
    plant: Plant,
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
) -> None:
    client = await panel(aiohttp_client, plant)
    await client.post("/command", data={"command": "get_export_limit"})
    await eventually(lambda: len(plant.first.state.commands) == 1, what="the first's command")
    assert simulator.exchange_count > 0
    assert barn_simulator.exchange_count == 0


# -- the summary


async def test_the_summary_has_one_row_per_controller_with_its_figures(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    barn = plant.get("barn")
    barn.state.settings_read(export_limit_kw=4.75)
    await barn.ops.get_telemetry_data()
    client = await panel(aiohttp_client, plant)
    html = await (await client.get("/")).text()
    summary = html[html.index('<section id="summary"') :]
    summary = summary[: summary.index("</section>")]
    assert " hidden" not in summary.split(">")[0]
    rows = re.findall(r'<tr id="summary-(\w+)"', summary)
    assert rows == ["sec1000", "barn"]
    barn_row = summary[summary.index('id="summary-barn"') :]
    barn_row = barn_row[: barn_row.index("</tr>")]
    assert 'href="./?controller=barn"' in barn_row
    assert re.search(r'data-key="connection"[^>]* data-state="ok"', barn_row)
    assert "Controller online" in barn_row
    assert re.search(r'data-key="export_power"[^>]*>-?\d+\.\d\d kW', barn_row)
    assert re.search(r'data-key="export_limit"[^>]*>4.75 kW', barn_row)
    assert 'data-key="guard"' in barn_row
    first_row = summary[summary.index('id="summary-sec1000"') :]
    assert 'data-state="unknown"' in first_row[: first_row.index("</tr>")]  # never read


async def test_the_summary_is_only_on_the_dashboard(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    assert 'id="summary"' not in await (await client.get("/diagnostics")).text()


# -- the live channel


async def test_the_live_channel_follows_the_chosen_controller(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    page = await (await client.get("/?controller=barn")).text()
    seq = re.search(r'data-seq="(\d+)"', page)
    assert seq is not None
    since = seq.group(1)
    plant.first.state.settings_read(export_limit_kw=2.5)  # the first one's: not barn's page
    response = await client.get(f"/live?page=dashboard&since={since}&controller=barn")
    body = await response.text()
    assert 'id="export-info"' not in body
    assert 'id="summary"' in body  # the summary shows every controller
    since = response.headers["X-Live-Seq"]
    plant.get("barn").state.settings_read(export_limit_kw=6.5)
    body = await (await client.get(f"/live?page=dashboard&since={since}&controller=barn")).text()
    assert 'id="export-info"' in body and '<span data-key="export_limit">6.50<' in body
    first = await (await client.get(f"/live?page=dashboard&since={since}")).text()
    assert 'id="export-info"' not in first


async def test_the_websocket_pushes_the_chosen_controllers_changes(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    async with client.ws_connect("/ws?page=dashboard&since=0&controller=barn") as ws:
        first = await ws.receive_str()
        assert 'data-controller="barn"' in first or 'controller=barn"' in first
        plant.get("barn").state.settings_read(export_limit_kw=7.25)
        pushed = await ws.receive_str(timeout=5)
        assert '<span data-key="export_limit">7.25<' in pushed


# -- an unknown controller


async def test_an_unknown_controller_gets_a_clear_404_page_and_nothing_is_done(
    aiohttp_client: ClientFactory,
    plant: Plant,
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
) -> None:
    client = await panel(aiohttp_client, plant)
    for path in ("/", "/setup", "/history", "/diagnostics.json", "/live?page=dashboard"):
        response = await client.get(path + ("&" if "?" in path else "?") + "controller=stable")
        assert response.status == 404, path
        assert response.content_type == "text/html"
        html = await response.text()
        assert "No such controller" in html
        assert "no controller named “stable”" in html
        assert 'href="./"' in html and 'href="./?controller=barn"' in html
        relative_only(html)
    command = await client.post(
        "/command?controller=stable", data={"command": "set_export_limit", "limit": "1"}
    )
    assert command.status == 404
    assert simulator.requests() == [] and barn_simulator.requests() == []


async def test_a_strange_controller_name_is_escaped_on_the_404_page(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    response = await client.get("/", params={"controller": '<script>x</script>"'})
    assert response.status == 404
    assert "<script>x" not in await response.text()


# -- Setup: the Controllers step and each controller's own settings


async def add(client: TestClient[Any, Any], **values: str) -> str:
    data = {"action": "add", "name": "", "host": "", "port": "", **values}
    response = await client.post("/controllers", data=data, headers=HX)
    assert response.status == 200
    return await response.text()


async def test_a_controller_is_added_from_setup(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    client = await panel(aiohttp_client, plant)
    body = await add(client, name="shed", host="10.0.0.9", port="1234")
    assert 'id="notice-controllers"' in body and "Controller shed added" in body
    assert 'id="controller-row-shed"' in body and "10.0.0.9:1234" in body
    assert plant.names == ["sec1000", "barn", "shed"]
    assert [c["name"] for c in saved(options_file)["controllers"]] == ["barn", "shed"]
    # It is a controller of the panel at once: its pages, and the switcher everywhere.
    html = await (await client.get("/setup?controller=shed")).text()
    assert 'id="controller-shed" aria-current="true"' in html
    assert 'value="10.0.0.9"' in html


async def test_an_invalid_controller_is_refused_by_field_and_nothing_is_lost(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    client = await panel(aiohttp_client, plant)
    body = await add(client, name="Big Barn!", host="", port="70000")
    assert 'id="failure-controllers"' in body and "Nothing was changed" in body
    for key in ("name", "host", "port"):
        assert f'id="ce-{key}"' in body, key
        assert re.search(rf'id="c-{key}"[^>]*aria-invalid="true"', body, re.S), key
    assert 'value="Big Barn!"' in body and 'value="70000"' in body  # as typed
    assert re.search(r'id="c-name"[^>]*autofocus', body, re.S)
    assert plant.names == ["sec1000", "barn"]
    assert not options_file.exists()  # nothing was saved


async def test_a_name_or_an_address_already_taken_is_refused_under_its_field(
    aiohttp_client: ClientFactory,
    plant: Plant,
    options_file: Path,
    simulator: SimulatorServer,
) -> None:
    client = await panel(aiohttp_client, plant)
    body = await add(client, name="barn", host="10.0.0.9")
    assert 'id="ce-name"' in body and "is taken" in body
    body = await add(client, name="shed", host="127.0.0.1", port=str(simulator.port))
    assert 'id="ce-host"' in body and "the first controller is at" in body
    assert plant.names == ["sec1000", "barn"]
    assert not options_file.exists()


async def test_a_controller_is_removed_from_setup_and_its_pages_are_gone(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    barn = plant.get("barn")
    client = await panel(aiohttp_client, plant)
    response = await client.post(
        "/controllers?controller=barn", data={"action": "remove", "name": "barn"}, headers=HX
    )
    assert response.status == 200
    assert response.headers["HX-Redirect"] == "setup"  # barn's own Setup is gone
    body = await response.text()
    assert "Controller barn removed" in body and 'id="no-controllers"' in body
    assert plant.names == ["sec1000"]
    assert saved(options_file)["controllers"] == []
    assert (await client.get("/?controller=barn")).status == 404
    assert barn not in plant.runtimes.values()


async def test_removing_a_controller_there_is_not_is_refused(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    for name in ("sec1000", "stable"):
        response = await client.post("/controllers", data={"action": "remove", "name": name})
        assert response.status == 400, name
    assert plant.names == ["sec1000", "barn"]


async def test_the_first_controllers_setup_keeps_every_option_and_barns_shows_its_own(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    first = await (await client.get("/setup")).text()
    for key in ("host", "scan_interval", "price_entity", "mqtt_host", "log_level"):
        assert f'id="f-{key}"' in first, key
    barn = await (await client.get("/setup?controller=barn")).text()
    assert "Setup · barn" in barn and 'id="own-settings"' in barn
    for key in ("host", "port", "max_export_limit", "export_limit_control_mode-value"):
        assert f'id="f-{key}"' in barn, key
    for key in ("scan_interval", "price_entity", "mqtt_host", "log_level"):
        assert f'id="f-{key}"' not in barn, key
    # Its unset keys are empty, the first controller's value shown in their place.
    assert re.search(
        r'id="f-max_export_limit" name="max_export_limit" value="" placeholder="8"', barn
    )
    assert 'hx-post="setup?controller=barn"' in barn


async def post_barn(client: TestClient[Any, Any], step: str, **values: str) -> str:
    response = await client.post(
        "/setup?controller=barn", data={"step": step, **values}, headers=HX
    )
    assert response.status == 200
    return await response.text()


async def test_barns_own_limits_are_saved_into_its_item_only(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    client = await panel(aiohttp_client, plant)
    body = await post_barn(
        client, "limits", min_export_limit="0,5", max_export_limit="6", total_capacity=""
    )
    assert "Saved and applied" in body
    document = saved(options_file)
    assert document["max_export_limit"] == 8.0  # the first controller's is unchanged
    (item,) = document["controllers"]
    assert item["min_export_limit"] == 0.5 and item["max_export_limit"] == 6.0
    assert "total_capacity" not in item  # left empty: the first controller's
    assert plant.get("barn").options.max_export_limit == 6.0
    assert plant.first.options.max_export_limit == 8.0
    # Emptied again, a key takes the first controller's value again.
    await post_barn(client, "limits", min_export_limit="", max_export_limit="6", total_capacity="")
    (item,) = saved(options_file)["controllers"]
    assert "min_export_limit" not in item
    assert plant.get("barn").options.min_export_limit == plant.first.options.min_export_limit


async def test_barns_invalid_values_are_refused_by_field_and_nothing_changes(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    client = await panel(aiohttp_client, plant)
    before = plant.get("barn").options
    body = await post_barn(
        client, "limits", min_export_limit="abc", max_export_limit="200", total_capacity=""
    )
    assert 'id="failure-limits"' in body and "Nothing was changed" in body
    assert 'id="e-min_export_limit"' in body and 'id="e-max_export_limit"' in body
    assert 'value="abc"' in body and 'value="200"' in body  # as typed
    body = await post_barn(client, "connection", host="", port="1234")
    assert 'id="e-host"' in body and "must not be empty" in body
    assert plant.get("barn").options == before
    assert not options_file.exists()


async def test_a_yes_no_like_the_first_controllers_stays_unset_on_barn(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    client = await panel(aiohttp_client, plant)
    body = await post_barn(client, "mode", export_limit_control_mode="dred", three_phase_sum="true")
    assert "Saved and applied" in body
    (item,) = saved(options_file)["controllers"]
    assert item["export_limit_control_mode"] == "dred"
    assert "three_phase_sum" not in item  # the same as the first controller's: not its own
    assert plant.first.options.export_limit_control_mode == "value"


async def test_a_controller_added_or_removed_reaches_every_open_page_live(
    aiohttp_client: ClientFactory, plant: Plant
) -> None:
    client = await panel(aiohttp_client, plant)
    page = await (await client.get("/history")).text()
    seq = re.search(r'data-seq="(\d+)"', page)
    assert seq is not None
    await add(client, name="shed", host="10.0.0.9")
    response = await client.get(f"/live?page=history&since={seq.group(1)}")
    body = await response.text()
    assert 'id="switcher"' in body and 'href="history?controller=shed"' in body
    since = response.headers["X-Live-Seq"]
    await client.post("/controllers", data={"action": "remove", "name": "shed"})
    body = await (await client.get(f"/live?page=dashboard&since={since}")).text()
    assert 'id="summary"' in body and 'id="summary-shed"' not in body
    assert 'id="controller-barn"' in body and 'id="controller-shed"' not in body


# -- the demo's switches


async def test_the_demos_switches_follow_the_chosen_controller(
    aiohttp_client: ClientFactory,
    plant: Plant,
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
) -> None:
    app = build_app(plant, None, [simulator, barn_simulator], supervised=False, signin_url=None)
    client = await aiohttp_client(app)
    html = await (await client.get("/diagnostics?controller=barn")).text()
    assert 'hx-post="simulator?controller=barn"' in html
    response = await client.post(
        "/simulator?controller=barn", data={"action": "silence", "on": "true"}
    )
    assert response.status == 200
    assert 'id="fault-silence" aria-pressed="true"' in await response.text()
    assert "silence" in barn_simulator.faults and "silence" not in simulator.faults
    first = await (await client.get("/diagnostics")).text()
    assert 'id="fault-silence" aria-pressed="false"' in first


async def test_a_mode_saved_on_barns_setup_switches_barn_only(
    aiohttp_client: ClientFactory,
    plant: Plant,
    simulator: SimulatorServer,
    barn_simulator: SimulatorServer,
) -> None:
    await plant.start()
    barn = plant.get("barn")
    await eventually(
        lambda: barn.guard.wanted is not None and plant.first.guard.wanted is not None,
        what="both guards' first read",
    )
    client = await panel(aiohttp_client, plant)
    body = await post_barn(client, "mode", export_limit_control_mode="dred", three_phase_sum="true")
    assert "Switching the controller to mode DRED" in body
    await eventually(lambda: barn_simulator.device.mode is ControlMode.DRED, what="DRED on barn")
    await eventually(
        lambda: any(r.command == "set_control_mode" for r in barn.state.commands),
        what="barn's mode switch recorded",
    )
    assert simulator.device.mode is ControlMode.VALUE
    assert not any(r.command == "set_control_mode" for r in plant.first.state.commands)
    live = await (await client.get("/setup?controller=barn")).text()
    assert 'id="apply-mode"' in live


async def test_the_first_controllers_setup_save_changes_the_first_controller_only(
    aiohttp_client: ClientFactory, plant: Plant, options_file: Path
) -> None:
    """The top level is also the first controller's own: a Setup save of its limits leaves
    barn, which took them from the top level, with the values it ran with."""
    client = await panel(aiohttp_client, plant)
    barn_before = plant.get("barn").options
    response = await client.post(
        "/setup",
        data={
            "step": "limits",
            "min_export_limit": "1",
            "max_export_limit": "6",
            "total_capacity": "9",
        },
        headers=HX,
    )
    assert response.status == 200 and "Saved and applied" in await response.text()
    assert plant.first.options.max_export_limit == 6.0
    barn = plant.get("barn").options
    assert (barn.min_export_limit, barn.max_export_limit, barn.total_capacity) == (
        barn_before.min_export_limit,
        barn_before.max_export_limit,
        barn_before.total_capacity,
    )
    (item,) = saved(options_file)["controllers"]
    assert item["max_export_limit"] == barn_before.max_export_limit  # now its own
