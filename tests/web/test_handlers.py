"""The panel's HTTP handlers: ingress rules, commands, setup validation and write-back, live data."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sec1000.commands import CommandName
from sec1000.ha.supervisor import SupervisorOptionsStore
from sec1000.operations import Origin
from sec1000.options import InvalidOptions, Options, OptionsError, stored_options
from sec1000.plant import Plant
from sec1000.protocol import ControlMode, Feedback
from sec1000.runtime import Runtime, file_saver
from sec1000.serve import load_startup_options
from sec1000.simulator import SimulatorServer
from sec1000.web import HA_STATUS, create_app
from sec1000.web.app import SUPERVISOR_INGRESS_IP

from tests.fake_supervisor import ADDON_TOKEN, OPTIONS, create_fake_supervisor
from tests.helpers.waiting import eventually
from tests.helpers.web import ClientFactory, as_if_from, panel

INGRESS = "/api/hassio_ingress/abc123token"


def absolute_urls(html: str) -> list[str]:
    """Every href/src/action/hx-* URL that starts at the server root or names a host."""
    found = re.findall(r'(?:href|src|action|hx-post|hx-get)="([^"]*)"', html)
    return [url for url in found if url.startswith(("/", "http:", "https:", "//"))]


# -- ingress


async def test_pages_are_not_cached_not_compressed_and_use_relative_urls(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    for path in ("/", "/setup", "/diagnostics"):
        response = await client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert response.status == 200, path
        assert response.headers["Cache-Control"] == "no-cache"
        assert "Content-Encoding" not in response.headers
        assert response.content_type == "text/html"
        html = await response.text()
        assert absolute_urls(html) == [], path
        assert "<base" not in html  # no ingress header: plain relative URLs


async def test_static_files_are_cached_by_hashed_url_and_never_compressed(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    html = await (await client.get("/")).text()
    scripts = re.findall(r'src="(static/[^"]+)"', html)
    assert any("vendor/htmx/htmx.min.js?v=" in src for src in scripts)
    for src in scripts:
        response = await client.get("/" + src, headers={"Accept-Encoding": "gzip"})
        assert response.status == 200
        assert "max-age" in response.headers["Cache-Control"]
        assert "Content-Encoding" not in response.headers


async def test_ingress_path_header_becomes_the_base_of_every_relative_url(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    html = await (await client.get("/", headers={"X-Ingress-Path": INGRESS})).text()
    assert f'<base href="{INGRESS}/">' in html
    assert absolute_urls(html.replace(f'<base href="{INGRESS}/">', "")) == []


@pytest.mark.parametrize(
    "header",
    ['/api/hassio_ingress/x"><script>alert(1)</script>', "/api/../../etc", "relative/path"],
)
async def test_a_strange_ingress_path_is_not_used(
    aiohttp_client: ClientFactory, runtime: Runtime, header: str
) -> None:
    client = await panel(aiohttp_client, runtime)
    html = await (await client.get("/", headers={"X-Ingress-Path": header})).text()
    assert "<base" not in html
    assert "<script>alert" not in html


async def test_under_the_supervisor_only_its_ingress_proxy_is_answered(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime, supervised=True)
    for path in ("/", "/setup", "/live?page=dashboard", "/static/panel.css", "/ws"):
        response = await client.get(path)
        assert response.status == 403, path
    assert (await client.post("/command", data={"command": "set_datetime"})).status == 403
    assert runtime.state.commands == type(runtime.state.commands)()  # nothing ran


async def test_the_supervisors_address_is_let_in(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(
        aiohttp_client, runtime, supervised=True, middleware=as_if_from(SUPERVISOR_INGRESS_IP)
    )
    response = await client.get("/", headers={"X-Ingress-Path": INGRESS})
    assert response.status == 200
    assert f'<base href="{INGRESS}/">' in await response.text()


async def test_outside_the_supervisor_any_address_is_answered(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(
        aiohttp_client, runtime, supervised=False, middleware=as_if_from("192.168.1.50")
    )
    assert (await client.get("/")).status == 200


# -- commands


async def test_a_command_answers_at_once_with_its_button_waiting_then_ends_ok(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    response = await client.post(
        "/command",
        data={"command": "get_export_limit"},
        headers={"X-Remote-User-Display-Name": "Anna", "X-Remote-User-Name": "anna"},
    )
    assert response.status == 200
    body = await response.text()
    assert 'id="status-get_export_limit"' in body
    assert 'hx-swap-oob="outerMorph"' in body
    assert 'data-kind="waiting"' in body
    # The record of the command ends it (its feedback starts at 1, so OK alone proves nothing).
    await eventually(lambda: len(runtime.state.commands) == 1, what="get_export_limit done")
    assert runtime.state.feedback[CommandName.GET_EXPORT_LIMIT] == Feedback.OK
    assert runtime.state.commands[-1].source == "panel (Anna)"


async def test_set_export_limit_takes_the_forms_value(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    await client.post("/command", data={"command": "set_export_limit", "limit": "3,25"})
    await eventually(lambda: simulator.device.export_limit_w == 3250, what="3.25 kW written")


async def test_the_dashboard_opens_with_the_headline_and_its_live_copy_is_newer(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    await runtime.ops.get_export_limit(Origin("test"))
    page = await (await client.get("/")).text()
    found = re.search(r'<p id="headline"[^>]*data-live-seq="(\d+)">([^<]*)</p>', page)
    assert found is not None, page[:2000]
    held = simulator.device.export_limit_w / 1000
    assert found[2] == f"Export limited to {held:.2f} kW, as found on the controller."
    await client.post(
        "/command",
        data={"command": "set_export_limit", "limit": "3,25"},
        headers={"X-Remote-User-Display-Name": "Anna", "X-Remote-User-Name": "anna"},
    )
    await eventually(lambda: simulator.device.export_limit_w == 3250, what="3.25 kW written")
    await eventually(lambda: runtime.state.export_limit_kw == 3.25, what="3.25 kW read back")
    live = await client.get("/live", params={"page": "dashboard", "since": found[1]})
    update = await live.text()
    fresh = re.search(r'<p id="headline"[^>]*data-live-seq="(\d+)">([^<]*)</p>', update)
    assert fresh is not None, update[:2000]
    assert fresh[2] == "Export limited to 3.25 kW, set by Anna on the panel."
    assert int(fresh[1]) > int(found[1])


async def test_an_invalid_limit_is_refused_in_words_and_nothing_is_sent(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    response = await client.post("/command", data={"command": "set_export_limit", "limit": "150"})
    body = await response.text()
    assert runtime.state.feedback[CommandName.SET_EXPORT_LIMIT] == Feedback.INVALID_INPUT
    # The rule is the user's own maximum (8 kW), not the device's range of 100 kW.
    assert "150 kW is above the maximum of 8 kW" in body
    assert 'data-invalid="true"' in body and "(feedback 128)" in body
    assert simulator.requests() == []


@pytest.mark.parametrize(
    ("typed", "words", "advice"),
    [
        ("12", "12 kW is above the maximum of 8 kW", "Setup → Limits"),
        ("-1", "-1 kW is below the minimum of 0 kW", "cannot be negative"),
        ("abc", "“abc” is not a number", "such as 2.5 or 2,5"),
        ("1e3", "“1e3” is not written in plain digits", "exponent"),
        ("", "The field is empty", "such as 2.5"),
    ],
)
async def test_a_refused_limit_names_the_rule_it_broke(
    aiohttp_client: ClientFactory,
    runtime: Runtime,
    simulator: SimulatorServer,
    typed: str,
    words: str,
    advice: str,
) -> None:
    client = await panel(aiohttp_client, runtime)
    form = {"command": "set_export_limit", "limit": typed}
    body = await (await client.post("/command", data=form)).text()
    assert f'<span class="word">{words}</span>' in body
    assert advice in body and "Nothing was sent to the controller (feedback 128)." in body
    assert "Refused: not a valid value" not in body
    assert simulator.requests() == []


async def test_a_refusal_stays_after_good_reads_while_a_failure_fades(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    """A refusal is about what was typed: no telemetry read after it makes it old news."""
    client = await panel(aiohttp_client, runtime)
    await client.post("/command", data={"command": "set_export_limit", "limit": "12"})
    await eventually(lambda: len(runtime.state.commands) == 1, what="the refusal")
    await runtime.ops.get_telemetry_data()
    assert runtime.state.telemetry_at is not None
    assert runtime.state.telemetry_at > runtime.state.commands[-1].at
    body = await (await client.get("/")).text()
    status = re.search(r'<p id="status-set_export_limit".*?</p>', body, re.S)
    assert status is not None
    assert 'data-stale="false"' in status[0] and 'data-invalid="true"' in status[0]
    assert "12 kW is above the maximum of 8 kW" in status[0]
    assert "The controller has answered since." not in status[0]
    assert re.search(r'<input id="limit"[^>]*aria-invalid="true"', body)


async def test_the_watchdog_reset_needs_its_confirmation(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    body = await (await client.post("/command", data={"command": "reset_export_watchdog"})).text()
    assert "needs its confirmation" in body
    assert "full export for ~5 s" in body
    assert simulator.requests() == []
    assert CommandName.RESET_EXPORT_WATCHDOG not in runtime.state.messages


async def test_an_unknown_command_is_refused(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    assert (await client.post("/command", data={"command": "format_disk"})).status == 400


async def test_the_toggle_offers_the_opposite_of_the_export_state(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    await runtime.ops.export_disable()
    client = await panel(aiohttp_client, runtime)
    html = await (await client.get("/")).text()
    toggle = html[html.index('id="export-toggle"') :]
    assert 'value="export_enable"' in toggle[:600]
    assert 'aria-checked="false"' in toggle[:1200]


# -- setup: validation and write-back


@pytest.fixture
async def fake_supervisor(aiohttp_server: Any) -> TestServer:
    """The FAKE Supervisor from tests/fake_supervisor.py (only /addons/self/options is used)."""
    return await aiohttp_server(create_fake_supervisor("http://127.0.0.1:9", "unused"))


@pytest.fixture
async def supervised_runtime(
    make_options: Callable[..., Options], tmp_path: Path, fake_supervisor: TestServer
) -> Any:
    """A core whose options are saved to the fake Supervisor, as under the real one."""
    async with aiohttp.ClientSession() as session:
        store = SupervisorOptionsStore(
            session, str(fake_supervisor.make_url("")).rstrip("/"), ADDON_TOKEN
        )
        yield Runtime(make_options(), tmp_path / "data", save_options=store.save)


async def post_step(client: TestClient[Any, Any], step: str, **values: str) -> str:
    response = await client.post(
        "/setup", data={"step": step, **values}, headers={"HX-Request": "true"}
    )
    assert response.status == 200
    return await response.text()


async def test_invalid_limits_are_refused_inline_and_nothing_is_saved(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, fake_supervisor: TestServer
) -> None:
    runtime = supervised_runtime
    before = runtime.options
    client = await panel(aiohttp_client, runtime)
    body = await post_step(
        client, "limits", min_export_limit="6", max_export_limit="5", total_capacity="10"
    )
    assert "Not saved" in body
    assert 'id="e-min_export_limit"' in body and "is above the maximum" in body
    assert 'aria-invalid="true"' in body
    # What the user typed is still there, nothing is lost.
    assert 'name="min_export_limit" value="6"' in body
    assert 'name="max_export_limit" value="5"' in body
    assert runtime.options == before
    assert fake_supervisor.app[OPTIONS] == {}


async def test_every_error_of_a_form_is_shown_after_one_save(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, fake_supervisor: TestServer
) -> None:
    """`abc` as the minimum and 20 kW as the maximum over a 10 kW plant: both errors at once,
    not the second one only after a second save."""
    client = await panel(aiohttp_client, supervised_runtime)
    body = await post_step(
        client, "limits", min_export_limit="abc", max_export_limit="20", total_capacity="10"
    )
    assert 'id="e-min_export_limit"' in body and "must be a number" in body
    assert 'id="e-max_export_limit"' in body and "above the total capacity" in body
    assert fake_supervisor.app[OPTIONS] == {}


async def test_a_value_that_is_not_a_number_is_refused_with_the_field_named(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, fake_supervisor: TestServer
) -> None:
    client = await panel(aiohttp_client, supervised_runtime)
    body = await post_step(client, "connection", host="", port="70000", scan_interval="abc")
    assert "must not be empty" in body
    assert "must be at most 65535" in body
    assert "must be a number" in body
    assert 'name="scan_interval" value="abc"' in body
    assert fake_supervisor.app[OPTIONS] == {}


async def test_valid_options_are_written_back_to_the_fake_supervisor_and_applied(
    aiohttp_client: ClientFactory,
    supervised_runtime: Runtime,
    fake_supervisor: TestServer,
    simulator: SimulatorServer,
) -> None:
    runtime = supervised_runtime
    client = await panel(aiohttp_client, runtime)
    body = await post_step(
        client, "limits", min_export_limit="0.5", max_export_limit="7.25", total_capacity="9"
    )
    assert "Saved and applied." in body
    saved = fake_supervisor.app[OPTIONS]
    # The whole options object is posted, as POST /addons/self/options {"options": {...}} wants.
    assert saved["max_export_limit"] == 7.25
    assert saved["min_export_limit"] == 0.5
    assert saved["total_capacity"] == 9
    assert saved["port"] == simulator.port
    assert set(saved) == set(Options().to_dict())
    # Applied at once: the next "export on" writes the new maximum.
    assert runtime.options.max_export_limit == 7.25
    await runtime.ops.export_enable()
    assert simulator.device.export_limit_w == 7250


async def test_a_refused_save_changes_nothing_and_says_why(
    aiohttp_client: ClientFactory,
    make_options: Callable[..., Options],
    tmp_path: Path,
    fake_supervisor: TestServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        wrong = SupervisorOptionsStore(
            session, str(fake_supervisor.make_url("")).rstrip("/"), "bad"
        )
        runtime = Runtime(make_options(), tmp_path / "data", save_options=wrong.save)
        before = runtime.options
        client = await panel(aiohttp_client, runtime)
        body = await post_step(
            client, "connection", host="10.0.0.9", port="1234", scan_interval="30"
        )
    assert "Not saved" in body and "Nothing was changed" in body
    assert 'name="host" value="10.0.0.9"' in body  # the input is kept
    assert runtime.options == before
    assert runtime.link.settings.host == before.host
    assert fake_supervisor.app[OPTIONS] == {}


async def test_outside_the_supervisor_options_go_to_the_options_file(
    aiohttp_client: ClientFactory, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    path = tmp_path / "options.json"
    runtime = Runtime(make_options(), tmp_path / "data", save_options=file_saver(path))
    client = await panel(aiohttp_client, runtime)
    body = await post_step(
        client,
        "advanced",
        request_gap_ms="1500",
        request_timeout="5",
        offline_notification_minutes="20",
        log_level="debug",
    )
    assert "Saved and applied." in body
    stored = json.loads(path.read_text())
    assert stored["request_gap_ms"] == 1500 and stored["log_level"] == "debug"
    assert runtime.link.gap == 1.5


async def test_a_fast_refresh_is_warned_of_before_it_is_saved_and_saved_when_confirmed(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime = supervised_runtime
    before = runtime.options
    client = await panel(aiohttp_client, runtime)
    address = {"host": "127.0.0.1", "port": str(simulator.port)}
    body = await post_step(client, "connection", **address, scan_interval="2")
    assert "Saved and applied." not in body
    assert 'id="confirm-connection"' in body and "Not saved yet" in body
    assert 'id="w-scan_interval"' in body and "power-cycled" in body
    assert re.search(r'id="save-anyway-connection"[^>]*>Save anyway<', body)
    assert re.search(r'id="f-scan_interval"[^>]*value="2"', body)  # as typed
    assert re.search(r'id="f-scan_interval"[^>]*autofocus', body)
    assert runtime.options == before  # nothing saved, nothing applied
    body = await post_step(client, "connection", **address, scan_interval="2", confirm="yes")
    assert "Saved and applied." in body and "Not saved yet" not in body
    assert 'id="w-scan_interval"' in body  # still said, after the save too
    assert runtime.options.scan_interval == 2
    # A warning in force already (the same words) is not asked about again.
    body = await post_step(client, "connection", **address, scan_interval="3")
    assert "Saved and applied." in body and runtime.options.scan_interval == 3


async def test_a_save_without_new_warnings_is_not_asked_about(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, supervised_runtime)
    address = {"host": "127.0.0.1", "port": str(simulator.port)}
    body = await post_step(client, "connection", **address, scan_interval="20")
    assert "Saved and applied." in body and "Save anyway" not in body


async def test_every_error_of_a_step_is_shown_after_one_save(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime
) -> None:
    """Min `abc` and max 20 (above the capacity of 10 kW): both said at once, nothing saved."""
    before = supervised_runtime.options
    client = await panel(aiohttp_client, supervised_runtime)
    body = await post_step(
        client, "limits", min_export_limit="abc", max_export_limit="20", total_capacity="10"
    )
    assert 'id="e-min_export_limit"' in body and "must be a number" in body
    assert 'id="e-max_export_limit"' in body and "above the total capacity" in body
    assert supervised_runtime.options == before


async def started_with_its_guard(runtime: Runtime) -> None:
    """Start the core and wait for the guard's first read (it then knows the wanted state)."""
    await runtime.start()
    await eventually(lambda: runtime.guard.wanted is not None, what="the guard's first read")


async def test_saving_a_new_mode_switches_the_controller(
    aiohttp_client: ClientFactory,
    supervised_runtime: Runtime,
    fake_supervisor: TestServer,
    simulator: SimulatorServer,
) -> None:
    runtime = supervised_runtime
    await started_with_its_guard(runtime)
    client = await panel(aiohttp_client, runtime)
    body = await post_step(
        client, "mode", export_limit_control_mode="dred", three_phase_sum="false"
    )
    assert "Switching the controller to mode DRED" in body
    await eventually(lambda: simulator.device.mode is ControlMode.DRED, what="DRED on")
    await eventually(
        lambda: any(r.command == "set_control_mode" for r in runtime.state.commands),
        what="the mode switch's record",
    )  # its feedback starts at 1: only the record says the switch ended
    assert runtime.state.feedback[CommandName.SET_CONTROL_MODE] == Feedback.OK
    await runtime.stop()
    assert fake_supervisor.app[OPTIONS]["export_limit_control_mode"] == "dred"
    assert fake_supervisor.app[OPTIONS]["three_phase_sum"] is False
    writes = [e for e in runtime.audit.tail() if e["command"] != "drift"]
    assert [(e["origin"], e["command"]) for e in writes] == [("panel", "set_control_mode")]


async def test_one_save_of_the_limits_makes_one_write_under_its_true_name(
    aiohttp_client: ClientFactory,
    supervised_runtime: Runtime,
    simulator: SimulatorServer,
) -> None:
    runtime = supervised_runtime
    await started_with_its_guard(runtime)
    assert (await runtime.ops.export_enable(Origin("panel"))).ok  # on: at the maximum, 8 kW
    client = await panel(aiohttp_client, runtime)
    body = await post_step(client, "limits", min_export_limit="0", max_export_limit="6,5")
    assert "Writing the new settings to the controller" in body
    await eventually(
        lambda: not runtime.guard.options_pending(runtime.options), what="6.5 kW confirmed"
    )
    assert simulator.device.export_limit_w == 6_500
    body = await post_step(client, "limits", min_export_limit="0,5", max_export_limit="6.5")
    assert "already holds these settings: nothing to write" in body  # on stays 6.5 kW
    await asyncio.sleep(0.3)  # a second write would come within the gap (20 ms)
    await runtime.stop()
    writes = [
        (e["origin"], e["command"], e["requested"]["export_limit_kw"]) for e in runtime.audit.tail()
    ]
    assert writes == [("panel", "export_enable", 8.0), ("panel", "apply_options", 6.5)]


async def test_the_checkbox_hidden_false_and_checked_true_give_true(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime
) -> None:
    runtime = supervised_runtime
    await runtime.apply_options(
        Options.from_mapping({"three_phase_sum": False}, base=runtime.options)
    )
    client = await panel(aiohttp_client, runtime)
    form = aiohttp.FormData()
    form.add_field("step", "mode")
    form.add_field("export_limit_control_mode", "value")
    form.add_field("three_phase_sum", "false")
    form.add_field("three_phase_sum", "true")
    await client.post("/setup", data=form, headers={"HX-Request": "true"})
    assert runtime.options.three_phase_sum is True


async def test_a_plain_form_post_gets_the_whole_page(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, supervised_runtime)
    response = await client.post(
        "/setup", data={"step": "limits", "min_export_limit": "x", "max_export_limit": "5"}
    )
    html = await response.text()
    assert html.startswith("<!doctype html>")
    assert 'id="e-min_export_limit"' in html
    assert 'id="form-connection"' in html


async def test_test_connection_reads_the_address_in_the_form_and_saves_nothing(
    aiohttp_client: ClientFactory,
    runtime: Runtime,
    simulator: SimulatorServer,
    unused_tcp_port: int,
) -> None:
    before = runtime.options
    client = await panel(aiohttp_client, runtime)
    ok = await (
        await client.post(
            "/test-connection", data={"host": "127.0.0.1", "port": str(simulator.port)}
        )
    ).text()
    assert f"The controller at 127.0.0.1:{simulator.port} answered." in ok
    failed = await (
        await client.post(
            "/test-connection", data={"host": "127.0.0.1", "port": str(unused_tcp_port)}
        )
    ).text()
    # One short sentence; the socket's own words only behind the "details" toggle.
    words = re.search(r'<p class="result-words">([^<]*)</p>', failed)
    assert words and words.group(1) == f"No controller answered at 127.0.0.1:{unused_tcp_port}."
    assert "<details" in failed and "socket error" in failed.split("<details", 1)[1]
    assert "Failed" not in failed and "Not tested" not in failed
    bad = await (await client.post("/test-connection", data={"host": "", "port": "1"})).text()
    assert "Check the address: Controller address must not be empty." in bad
    assert runtime.options == before
    assert runtime.link.settings.port == simulator.port


# -- live data and diagnostics


async def test_polling_returns_what_changed_since_a_sequence_number(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    response = await client.get("/live", params={"page": "dashboard", "since": "0"})
    everything = await response.text()
    seq = int(response.headers["X-Live-Seq"])
    for fid in ("flow", "phases", "chart", "export-info", "export-toggle", "link-status"):
        assert f'id="{fid}"' in everything
    assert "hx-swap-oob" in everything
    assert response.headers["Cache-Control"] == "no-cache"
    nothing = await client.get("/live", params={"page": "dashboard", "since": str(seq)})
    assert await nothing.text() == ""
    await runtime.ops.get_telemetry_data()
    changed = await (
        await client.get("/live", params={"page": "dashboard", "since": str(seq)})
    ).text()
    assert 'id="flow"' in changed and 'id="phases"' in changed
    assert 'id="status-set_datetime"' not in changed


async def test_the_websocket_pushes_changes_without_compression(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    async with client.ws_connect(
        "/ws", params={"page": "dashboard", "since": "1"}, compress=15
    ) as ws:
        assert ws.compress == 0  # no permessage-deflate, whatever the browser offers
        first = await ws.receive_str(timeout=5)
        assert 'id="link-status"' in first
        await runtime.ops.get_telemetry_data()
        pushed = await ws.receive_str(timeout=5)
        assert 'id="flow"' in pushed and 'hx-swap-oob="true"' in pushed


async def test_diagnostics_json_is_a_download_with_everything(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    await runtime.ops.get_telemetry_data()
    client = await panel(
        aiohttp_client,
        runtime,
        ha_status=lambda: {"connected": True, "status": "connected", "via": "supervisor"},
    )
    response = await client.get("/diagnostics.json")
    assert "attachment" in response.headers["Content-Disposition"]
    data = await response.json()
    assert data["home_assistant"] == {"connected": True, "status": "connected", "via": "supervisor"}
    assert data["link"]["counters"]["ok"] >= 1
    assert data["frames"] and data["frames"][0]["direction"] == "tx"
    assert data["state"]["telemetry"]["v1"] > 0
    assert data["options"]["port"] == runtime.options.port


async def test_the_home_assistant_status_hook_is_shown_and_can_be_set_later(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    app = create_app(Plant.of_one(runtime))
    app[HA_STATUS] = lambda: {"connected": False, "status": "unreachable: refused"}
    client = await aiohttp_client(app)
    html = await (await client.get("/diagnostics")).text()
    assert "unreachable: refused" in html and "not connected" in html


async def test_the_default_home_assistant_status_says_not_configured(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    assert "not configured" in await (await client.get("/diagnostics")).text()


async def test_simulator_faults_only_in_the_demo(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    plain = await panel(aiohttp_client, runtime)
    assert (await plain.post("/simulator", data={"action": "nak", "on": "true"})).status == 404
    assert "Simulator faults" not in await (await plain.get("/diagnostics")).text()

    demo = await panel(aiohttp_client, runtime, simulator=simulator)
    body = await (await demo.post("/simulator", data={"action": "nak", "on": "true"})).text()
    assert "nak" in simulator.faults
    assert 'id="fault-nak" aria-pressed="true"' in body
    await demo.post("/simulator", data={"action": "clear"})
    assert not simulator.faults


async def test_broken_stored_options_are_named_on_every_page_and_inline_on_setup(
    aiohttp_client: ClientFactory, make_options: Callable[..., Options], tmp_path: Path
) -> None:
    error = OptionsError({"port": "must be at most 65535"})
    runtime = Runtime(make_options(), tmp_path / "data", invalid=InvalidOptions(error, {}))
    client = await panel(aiohttp_client, runtime)
    assert "The options are invalid" in await (await client.get("/")).text()
    setup = await (await client.get("/setup")).text()
    assert 'id="e-port"' in setup and "must be at most 65535" in setup


async def test_the_live_channel_shows_waiting_then_ok_for_a_command_from_elsewhere(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    """A command from Home Assistant (not the panel) lights the same button."""
    simulator.slow_delay = 0.5  # within the 1 s timeout, long enough to see "waiting"
    simulator.set_fault("slow", count=1)
    client = await panel(aiohttp_client, runtime)
    async with client.ws_connect("/ws", params={"page": "dashboard", "since": "0"}) as ws:
        await ws.receive_str(timeout=5)  # everything, at once
        task = asyncio.create_task(runtime.ops.set_datetime(Origin("home_assistant", "Bob")))
        kinds = []
        while "ok" not in kinds:
            message = await ws.receive_str(timeout=5)
            for match in re.finditer(r'id="status-set_datetime"[^>]*data-kind="(\w+)"', message):
                kinds.append(match.group(1))
        await task
    assert kinds[0] == "waiting" and kinds[-1] == "ok"
    assert "Home Assistant (Bob)" in message


async def test_fixing_one_step_of_broken_stored_options_keeps_the_others(
    aiohttp_client: ClientFactory, simulator: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "options.json"
    stored = {
        "host": "127.0.0.1",
        "port": simulator.port,
        "scan_interval": 0,  # invalid
        "min_export_limit": 0.5,
        "max_export_limit": 3.0,
        "total_capacity": 4.0,
        "three_phase_sum": False,
    }
    path.write_text(json.dumps(stored))
    options, error = await asyncio.to_thread(load_startup_options, path)
    assert error is not None
    runtime = Runtime(
        options,
        tmp_path / "data",
        invalid=InvalidOptions(error, await asyncio.to_thread(stored_options, path)),
        save_options=file_saver(path),
    )
    client = await panel(aiohttp_client, runtime)
    setup = await (await client.get("/setup")).text()
    assert 'value="3"' in setup and 'value="4"' in setup  # the user's limits, not defaults
    assert (
        await runtime.ops.export_enable(Origin("panel", "x"))
    ).feedback == 2  # not with defaults
    assert simulator.requests() == []
    await post_step(
        client, "connection", host="127.0.0.1", port=str(simulator.port), scan_interval="30"
    )
    saved = json.loads(path.read_text())
    assert saved["max_export_limit"] == 3.0 and saved["total_capacity"] == 4.0
    assert saved["min_export_limit"] == 0.5 and saved["three_phase_sum"] is False
    assert saved["scan_interval"] == 30 and runtime.options_error is None


# -- words, languages and the price policy's pause (issue 20)


async def test_the_page_and_its_live_updates_follow_the_browsers_language(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    german = {"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"}
    page = await (await client.get("/", headers=german)).text()
    assert '<html lang="de">' in page and ">Bedienung<" in page and ">Controls<" not in page
    updates = await (await client.get("/live?page=dashboard&since=0", headers=german)).text()
    assert "Controller:" in updates or "Controller" in updates
    assert "Einspeisung" in updates and "Export ON" not in updates
    english = await (await client.get("/", headers={"Accept-Language": "fr"})).text()
    assert '<html lang="en">' in english and ">Controls<" in english


async def test_home_assistants_language_is_taken_when_the_browser_asks_for_none_shipped(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    status = {"connected": True, "status": "connected", "language": "sk"}
    client = await panel(aiohttp_client, runtime, ha_status=lambda: status)
    page = await (await client.get("/setup", headers={"Accept-Language": "fr-FR"})).text()
    assert '<html lang="sk">' in page and "Uložiť limity" in page


async def test_the_language_menu_remembers_a_choice_per_browser_over_home_assistants(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    status = {"connected": True, "status": "connected", "language": "de"}
    client = await panel(aiohttp_client, runtime, ha_status=lambda: status)
    page = await (await client.get("/", headers={"Accept-Language": "en-US"})).text()
    assert '<html lang="de">' in page  # Home Assistant's language before the browser's
    assert 'id="language-menu"' in page and '<option value="sk" lang="sk">Slovenčina' in page
    chosen = await client.get(
        "/language", params={"lang": "sk", "back": "setup"}, allow_redirects=False
    )
    assert chosen.status == 303 and chosen.headers["Location"] == "setup"
    cookie = chosen.cookies["sec1000_lang"]
    assert cookie.value == "sk" and cookie["httponly"] and cookie["samesite"] == "Lax"
    page = await (await client.get("/setup")).text()  # the client keeps the cookie
    assert '<html lang="sk">' in page and "Uložiť limity" in page
    assert '<option value="sk" lang="sk" selected>' in page
    page = await (await client.get("/diagnostics")).text()
    assert '<html lang="sk">' in page


@pytest.mark.parametrize(
    ("back", "location"),
    [
        ("setup?controller=barn", "setup?controller=barn"),
        ("./", "./"),
        ("https://evil.example/", "./"),
        ("//evil.example/", "./"),
        ("../../other", "./"),
        ("", "./"),
    ],
)
async def test_the_language_menu_only_sends_back_to_a_page_of_the_panel(
    aiohttp_client: ClientFactory, runtime: Runtime, back: str, location: str
) -> None:
    client = await panel(aiohttp_client, runtime)
    response = await client.get(
        "/language", params={"lang": "xx", "back": back}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == location
    assert "sec1000_lang" not in response.cookies  # no language of the panel: nothing kept


async def test_the_language_cookie_lives_on_the_ingress_path(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    response = await client.get(
        "/language",
        params={"lang": "de"},
        headers={"X-Ingress-Path": "/api/hassio_ingress/abc"},
        allow_redirects=False,
    )
    assert response.cookies["sec1000_lang"]["path"] == "/api/hassio_ingress/abc/"


async def test_resume_ends_the_manual_override_of_the_price_policy(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    runtime.policy.memory.override_until = 4_000_000_000.0
    runtime.policy.memory.export_on = False
    response = await client.post("/policy/resume")
    assert response.status == 200
    assert runtime.policy.memory.override_until is None
    assert runtime.policy.memory.export_on is None  # learnt anew from the controller
    body = await response.text()
    assert 'id="export-toggle"' in body and 'id="prices"' in body


async def test_setup_warns_about_mode_off_only_while_the_price_is_below_export_off(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    await runtime.apply_options(
        Options.from_mapping(
            {
                "price_policy": True,
                "price_entity": "sensor.price",
                "export_off_below": 0.05,
                "export_on_above": 0.05,
            },
            base=runtime.options,
        )
    )
    client = await panel(aiohttp_client, runtime)
    runtime.policy.price_changed("0.01", {"unit_of_measurement": "EUR/kWh"})
    low = await (await client.get("/setup")).text()
    assert 'id="w-deactivate"' in low and "(0.01) is below" in low and "(0.05)" in low
    runtime.policy.price_changed("0.30", {})
    assert 'id="w-deactivate"' not in await (await client.get("/setup")).text()


async def test_an_empty_or_wordy_limit_is_refused_in_words_never_got_empty_quotes(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime)
    for typed in ("", "abc", "3.5.1"):
        body = await (
            await client.post("/command", data={"command": "set_export_limit", "limit": typed})
        ).text()
        assert 'data-invalid="true"' in body, typed
        assert "got ''" not in body and "(feedback 128)" in body
    assert simulator.requests() == []


async def test_a_warning_is_said_while_typing_before_any_save(
    aiohttp_client: ClientFactory, supervised_runtime: Runtime, simulator: SimulatorServer
) -> None:
    runtime = supervised_runtime
    before = runtime.options
    client = await panel(aiohttp_client, runtime)
    form = {"step": "connection", "host": "127.0.0.1", "port": str(simulator.port)}
    response = await client.post("/setup/check", data={**form, "scan_interval": "2"})
    body = await response.text()
    line = re.search(r'<p class="warn-text" id="w-scan_interval"[^>]*>.*?</p>', body, re.S)
    assert line is not None and 'hx-swap-oob="true"' in line[0] and "hidden" not in line[0]
    assert "power-cycled" in line[0]
    assert runtime.options == before  # a check saves nothing
    body = await (await client.post("/setup/check", data={**form, "scan_interval": "20"})).text()
    assert re.search(r'id="w-scan_interval" hidden hx-swap-oob="true"></p>', body)
    body = await (await client.post("/setup/check", data={**form, "scan_interval": "x"})).text()
    assert "power-cycled" not in body  # a wrong value: the save says what is wrong
    page = await (await client.get("/setup")).text()
    field = re.search(r'<input id="f-scan_interval"[^>]*>', page, re.S)
    assert field is not None and 'hx-post="setup/check"' in field[0]
    assert 'aria-describedby="w-scan_interval h-scan_interval"' in field[0]


def test_every_warning_has_a_line_under_its_field() -> None:
    from sec1000.web.setup import WARNED_KEYS

    risky = Options.from_mapping(
        {"scan_interval": 2, "export_ceiling_kw": 10.005, "verify_interval": 2}
    )
    assert set(risky.warnings()) == WARNED_KEYS
