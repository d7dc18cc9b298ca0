"""Panel handlers with pytest-aiohttp: ingress, validation, option write-back, live channel."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from sec1000.ha.supervisor import SupervisorOptions
from sec1000.options import Options, OptionsError, load_options_file, save_options_file
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.state import OperationName
from sec1000.web import create_app
from sec1000.web.app import ingress_only

from tests.conftest import eventually
from tests.fake_supervisor import ADDON_TOKEN, OPTIONS, create_fake_supervisor

Client = TestClient[Any, Any]


@pytest.fixture
def options_file(tmp_path: Path, make_options: Callable[..., Options]) -> Path:
    path = tmp_path / "options.json"
    save_options_file(path, make_options())
    return path


@pytest.fixture
async def client(
    aiohttp_client: Any,
    make_options: Callable[..., Options],
    options_file: Path,
    tmp_path: Path,
    simulator: SimulatorServer,
) -> Client:
    runtime = Runtime(make_options(), tmp_path / "data", save_options=file_saver(options_file))
    return await aiohttp_client(create_app(runtime, simulator=simulator))  # type: ignore[no-any-return]


def runtime_of(client: Client) -> Runtime:
    from sec1000.web.keys import RUNTIME

    return client.app[RUNTIME]  # type: ignore[index]


async def test_pages_use_the_ingress_prefix_and_relative_urls(client: Client) -> None:
    for path in ("/", "/setup", "/diagnostics"):
        response = await client.get(path, headers={"X-Ingress-Path": "/api/hassio_ingress/abc123"})
        assert response.status == 200
        html = await response.text()
        assert '<base href="/api/hassio_ingress/abc123/">' in html
        rest = html.replace('<base href="/api/hassio_ingress/abc123/">', "")
        assert 'href="/' not in rest and 'src="/' not in rest and 'hx-post="/' not in rest
        assert 'action="/' not in rest and "url(/" not in rest
        assert response.headers["Cache-Control"] == "no-cache"


async def test_without_ingress_there_is_no_base(client: Client) -> None:
    assert "<base" not in await (await client.get("/")).text()


async def test_responses_are_never_compressed(client: Client) -> None:
    response = await client.get("/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in response.headers
    static = await client.get(
        "/static/vendor/htmx/htmx.min.js", headers={"Accept-Encoding": "gzip"}
    )
    assert static.status == 200 and "Content-Encoding" not in static.headers


async def test_supervised_panel_refuses_other_addresses(
    aiohttp_client: Any, runtime: Runtime
) -> None:
    client = await aiohttp_client(create_app(runtime, supervised=True))
    response = await client.get("/")
    assert response.status == 403
    assert "ingress" in await response.text()


async def test_supervised_panel_answers_the_supervisor_address() -> None:
    async def handler(request: Any) -> str:
        return "passed"

    app = create_app.__globals__["web"].Application()
    from sec1000.web.keys import SUPERVISED

    app[SUPERVISED] = True
    request = make_mocked_request("GET", "/", app=app).clone(remote="172.30.32.2")
    assert await ingress_only(request, handler) == "passed"  # type: ignore[arg-type]
    refused = make_mocked_request("GET", "/", app=app).clone(remote="172.30.32.3")
    with pytest.raises(aiohttp.web.HTTPForbidden):
        await ingress_only(refused, handler)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("port", "abc", "must be a number"),
        ("scan_interval", "0", "at least 1"),
        ("host", "", "must not be empty"),
        ("max_export_limit", "50", "above the total capacity"),
        ("export_limit_control_mode", "turbo", "must be one of"),
    ],
)
async def test_invalid_form_is_refused_inline_and_nothing_is_saved(
    client: Client, options_file: Path, field: str, value: str, words: str
) -> None:
    before = options_file.read_text()
    options_before = runtime_of(client).options
    response = await client.post(
        "/setup", data={field: value, "host": "10.1.1.1"} if field != "host" else {field: value}
    )
    assert response.status == 200  # the form comes back with its messages
    html = await response.text()
    assert words in html and 'aria-invalid="true"' in html and "Not saved" in html
    assert (
        f'value="{value}"' in html or field == "export_limit_control_mode"
    )  # the user's input is kept
    assert options_file.read_text() == before
    assert runtime_of(client).options == options_before


async def test_valid_form_is_saved_and_applied_at_once(client: Client, options_file: Path) -> None:
    response = await client.post(
        "/setup",
        data={
            "host": "127.0.0.1",
            "scan_interval": "3",
            "max_export_limit": "7,5",
            "three_phase_sum": ["false"],
            "export_limit_control_mode": "rcr",
            "request_gap_ms": "300",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert "Saved and applied" in html
    assert "can make the controller stop answering" in html  # the < 5 s warning
    saved = load_options_file(options_file)
    assert (saved.scan_interval, saved.max_export_limit, saved.three_phase_sum) == (3, 7.5, False)
    assert saved.export_limit_control_mode == "rcr"
    runtime = runtime_of(client)
    assert runtime.options == saved
    assert runtime.link.gap == 0.3


async def test_checkbox_checked_wins_over_its_hidden_false(
    client: Client, options_file: Path
) -> None:
    response = await client.post(
        "/setup", data=[("three_phase_sum", "false"), ("three_phase_sum", "true")]
    )
    assert response.status == 200
    assert load_options_file(options_file).three_phase_sum is True


async def test_options_are_written_back_to_the_fake_supervisor(
    aiohttp_client: Any, aiohttp_server: Any, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    fake = await aiohttp_server(create_fake_supervisor("http://127.0.0.1:9", "unused"))
    async with aiohttp.ClientSession() as session:
        store = SupervisorOptions(session, str(fake.make_url("")).rstrip("/"), ADDON_TOKEN)
        runtime = Runtime(make_options(), tmp_path, save_options=store.save)
        client = await aiohttp_client(create_app(runtime, supervised=False))
        response = await client.post(
            "/setup", data={"max_export_limit": "6", "min_export_limit": "1"}
        )
        assert response.status == 200
        assert fake.app[OPTIONS]["max_export_limit"] == 6.0
        assert fake.app[OPTIONS]["min_export_limit"] == 1.0
        assert set(fake.app[OPTIONS]) == set(Options().to_dict())
        assert runtime.options.max_export_limit == 6.0
        assert await store.load() == fake.app[OPTIONS]


async def test_supervisor_refusal_keeps_everything(
    aiohttp_client: Any, aiohttp_server: Any, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    fake: TestServer = await aiohttp_server(create_fake_supervisor("http://127.0.0.1:9", "unused"))
    async with aiohttp.ClientSession() as session:
        store = SupervisorOptions(session, str(fake.make_url("")).rstrip("/"), "wrong-token")
        runtime = Runtime(make_options(), tmp_path, save_options=store.save)
        before = runtime.options
        client = await aiohttp_client(create_app(runtime))
        response = await client.post("/setup", data={"max_export_limit": "6"})
        assert response.status == 502
        assert "not saved" in await response.text()
        assert runtime.options == before
        assert fake.app[OPTIONS] == {}


async def test_broken_options_show_on_the_setup_page(
    aiohttp_client: Any, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    error = OptionsError({"port": "must be at most 65535"})
    runtime = Runtime(make_options(), tmp_path, options_error=error)
    client = await aiohttp_client(create_app(runtime))
    html = await (await client.get("/setup")).text()
    assert "must be at most 65535" in html and "The options are invalid" in html


async def test_command_runs_in_the_background(client: Client, simulator: SimulatorServer) -> None:
    response = await client.post(
        "/command/get_export_limit", headers={"X-Remote-User-Display-Name": "Ada"}
    )
    assert response.status == 204
    runtime = runtime_of(client)
    await eventually(
        lambda: runtime.state.feedback[OperationName.GET_EXPORT_LIMIT] == 1, 5, "get_export_limit"
    )
    assert runtime.state.commands[-1].source == "panel (Ada)"


async def test_invalid_limit_from_the_panel_sends_nothing(
    client: Client, simulator: SimulatorServer
) -> None:
    await client.post("/command/set_export_limit", data={"limit": "12kW"})
    runtime = runtime_of(client)
    await eventually(
        lambda: runtime.state.feedback[OperationName.SET_EXPORT_LIMIT] == 128, 5, "feedback 128"
    )
    assert simulator.requests() == []


async def test_unknown_command_is_404(client: Client) -> None:
    assert (await client.post("/command/self_destruct")).status == 404


async def test_test_connection_reads_the_form_address(
    client: Client, simulator: SimulatorServer
) -> None:
    ok = await client.post("/setup/test", data={"host": "127.0.0.1", "port": str(simulator.port)})
    assert "answered" in await ok.text()
    bad = await client.post("/setup/test", data={"host": "127.0.0.1", "port": "1"})
    assert "socket error" in await bad.text()
    invalid = await client.post("/setup/test", data={"host": "127.0.0.1", "port": "x"})
    assert "must be a number" in await invalid.text()


async def test_diagnostics_download(client: Client) -> None:
    await client.post("/command/get_export_limit")
    runtime = runtime_of(client)
    await eventually(lambda: bool(runtime.state.commands), 5, "a command")
    response = await client.get("/diagnostics.json")
    assert response.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(await response.text())
    assert {"options", "state", "link", "frames", "commands", "home_assistant"} <= set(data)
    assert data["frames"][0]["hex"].startswith("00 05 01 01 43")
    assert data["home_assistant"]["connected"] is False


async def test_simulator_faults_can_be_switched_in_the_demo(
    client: Client, simulator: SimulatorServer
) -> None:
    response = await client.post(
        "/simulator/fault", data={"fault": "silence", "on": "on"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "../diagnostics"
    assert "silence" in simulator.faults
    await client.post(
        "/simulator/fault", data={"fault": "silence", "on": "off"}, allow_redirects=False
    )
    assert simulator.faults == {}


async def test_live_channel_pushes_waiting_then_ok(client: Client) -> None:
    async with client.ws_connect("/ws") as ws:
        first = await ws.receive_json(timeout=5)
        assert "status-get_export_limit" in first["parts"] and "live-values" in first["parts"]
        await client.post("/command/get_export_limit")
        seen = []
        while not any("OK" in text for text in seen):
            message = await ws.receive_json(timeout=5)
            seen.append(message["parts"]["status-get_export_limit"])
    assert "OK" in seen[-1]


async def test_polling_fallback_returns_the_same_parts(client: Client) -> None:
    data = await (await client.get("/live")).json()
    assert {"live-values", "chart", "export-toggle", "status-reset_export_watchdog"} <= set(
        data["parts"]
    )
