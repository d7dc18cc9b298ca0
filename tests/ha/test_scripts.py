"""Awaitable scripts: their configs from the registry, and installed into a real Home Assistant."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sec1000.commands import BY_NAME, COMMANDS, CommandName
from sec1000.ha import Endpoint, HttpStatusError
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.rest import HomeAssistantRest
from sec1000.ha.scripts import (
    CONTROLLER_FIELD,
    EDITED,
    NOT_LOADED,
    SCRIPT_COMMANDS,
    TIMEOUT_MESSAGE,
    ScriptOutcome,
    install_scripts,
    is_own,
    script_config,
    script_object_id,
)
from sec1000.ha.supervisor import endpoint_from_env
from sec1000.ha.websocket import WebSocketConnection
from sec1000.protocol import ControlMode
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.fake_supervisor import ADDON_TOKEN, create_fake_supervisor
from tests.ha_harness import HomeAssistant, HomeAssistantTemplate
from tests.helpers.ha import User, connected, load_scripts_yaml, running_addon
from tests.helpers.waiting import eventually_async

homeassistant = pytest.mark.homeassistant
SCRIPT_IDS = [f"script.{script_object_id(spec)}" for spec in SCRIPT_COMMANDS]
SET_LIMIT = BY_NAME[CommandName.SET_EXPORT_LIMIT]
RESULT_KEYS = {"command", "request_id", "feedback", "ok", "message", "controller"}


def _event_step(config: dict[str, Any]) -> dict[str, Any]:
    return next(step for step in config["sequence"] if "event" in step)


def _wait_step(config: dict[str, Any]) -> dict[str, Any]:
    return next(step for step in config["sequence"] if "wait_for_trigger" in step)


# ---------------------------------------------------------------- the configs


def test_every_registry_command_has_a_script_named_after_it() -> None:
    assert [spec.name for spec in SCRIPT_COMMANDS] == [spec.name for spec in COMMANDS]
    assert "script.sec1000_export_enable" in SCRIPT_IDS
    assert "script.sec1000_set_export_limit" in SCRIPT_IDS
    assert script_object_id(SET_LIMIT) == "sec1000_set_export_limit"
    for spec in SCRIPT_COMMANDS:
        config = script_config(spec)
        assert config["alias"] == f"SEC1000 {spec.label}"
        assert config["description"].startswith(spec.help)
        assert config["mode"] == "parallel"
    assert script_config(SET_LIMIT)["alias"] == "SEC1000 Set export limit"


def test_fields_and_selectors_follow_the_params() -> None:
    assert script_config(SET_LIMIT)["fields"] == {
        "controller": CONTROLLER_FIELD,
        "limit": {
            "name": "Export limit",
            "description": "the export limit in kW (0-100, 0.01 steps)",
            "required": True,
            "selector": {
                "number": {
                    "min": 0,
                    "max": 100.0,
                    "step": 0.01,
                    "mode": "box",
                    "unit_of_measurement": "kW",
                }
            },
        },
    }
    fields = script_config(BY_NAME[CommandName.SET_CONTROL_MODE])["fields"]
    assert list(fields) == ["mode", "three_phase_sum", "controller"]
    assert fields["mode"]["required"] is True
    assert fields["mode"]["selector"] == {
        "select": {"options": [mode.option for mode in ControlMode]}
    }
    assert fields["three_phase_sum"]["required"] is False
    assert fields["three_phase_sum"]["selector"] == {"boolean": {}}
    assert script_config(BY_NAME[CommandName.EXPORT_ENABLE])["fields"] == {
        "controller": CONTROLLER_FIELD
    }
    assert CONTROLLER_FIELD["required"] is False


def test_every_script_passes_its_controller_on_and_the_first_is_the_default() -> None:
    for spec in SCRIPT_COMMANDS:
        event = _event_step(script_config(spec))
        assert event["event_data"]["controller"] == "{{ controller | default(none) }}"


def test_event_carries_the_command_its_params_and_a_request_id() -> None:
    event = _event_step(script_config(BY_NAME[CommandName.SET_CONTROL_MODE]))
    assert event["event"] == "sec1000_command"
    assert event["event_data"] == {
        "command": "set_control_mode",
        "request_id": "{{ request_id }}",
        "mode": "{{ mode | default(none) }}",
        "three_phase_sum": "{{ three_phase_sum | default(none) }}",
        "controller": "{{ controller | default(none) }}",
    }
    wait = _wait_step(script_config(SET_LIMIT))
    assert wait["timeout"] == 60 and wait["continue_on_timeout"] is True
    assert [trigger["event_data"] for trigger in wait["wait_for_trigger"]] == [
        {"request_id": "{{ request_id }}", "command": "set_export_limit"}
    ]


def test_toggle_waits_for_the_command_it_ends_with() -> None:
    wait = _wait_step(script_config(BY_NAME[CommandName.EXPORT_TOGGLE]))
    assert [t["event_data"]["command"] for t in wait["wait_for_trigger"]] == [
        "export_enable",
        "export_disable",
    ]


def test_marker_hash_detects_an_edit() -> None:
    config = script_config(SET_LIMIT)
    assert is_own(config)
    edited = copy.deepcopy(config)
    edited["fields"]["limit"]["selector"]["number"]["max"] = 10
    assert not is_own(edited)
    assert not is_own({**config, "alias": "My export limit"})
    assert not is_own({**config, "description": "my own words"})
    assert not is_own({key: value for key, value in config.items() if key != "description"})
    assert not is_own("not a config")
    other = script_config(BY_NAME[CommandName.EXPORT_ENABLE])
    assert not is_own({**config, "description": other["description"]})


def marker_hash(body: dict[str, Any]) -> str:
    """The marker's hash, spelled out: installed scripts carry it, so it must not change."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_marker_hash_is_the_documented_one() -> None:
    config = script_config(SET_LIMIT)
    body = {key: value for key, value in config.items() if key != "description"}
    assert f"[sec1000:{marker_hash(body)}]" in config["description"]


def test_config_round_trips_as_json() -> None:
    for spec in SCRIPT_COMMANDS:
        config = script_config(spec)
        again = json.loads(json.dumps(config))
        assert again == config
        assert is_own(again)


# ---------------------------------------------------------------- a real Home Assistant


@pytest.fixture(scope="module")
def scripted_ha(
    ha_template: HomeAssistantTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAssistant]:
    """A Home Assistant of this module's own that loads scripts.yaml."""
    instance = ha_template.instance(tmp_path_factory.mktemp("home-assistant-scripts"))
    try:
        instance.start()
        load_scripts_yaml(instance)
        yield instance
    finally:
        instance.stop()


@pytest.fixture
async def supervisor(scripted_ha: HomeAssistant, aiohttp_server: Any) -> TestServer:
    server: TestServer = await aiohttp_server(
        create_fake_supervisor(scripted_ha.url, scripted_ha.token)
    )
    return server


@pytest.fixture
async def rest(supervisor: TestServer) -> AsyncIterator[HomeAssistantRest]:
    """The add-on's REST client, through the fake Supervisor."""
    env = {
        "SUPERVISOR_TOKEN": ADDON_TOKEN,
        "SUPERVISOR_URL": str(supervisor.make_url("")).rstrip("/"),
    }
    endpoint = endpoint_from_env(env)
    assert endpoint is not None
    async with aiohttp.ClientSession() as session:
        yield HomeAssistantRest.from_endpoint(session, endpoint)


@pytest.fixture
async def user(scripted_ha: HomeAssistant) -> AsyncIterator[User]:
    """The owner on a WebSocket of their own; starts with none of the add-on's scripts."""
    async with aiohttp.ClientSession() as session:
        endpoint = Endpoint(scripted_ha.api_url, scripted_ha.websocket_url, scripted_ha.token, "t")
        ws = await WebSocketConnection.open(session, endpoint)
        person = User(scripted_ha, session, ws)
        for entity_id in SCRIPT_IDS:
            await delete_script(person, entity_id.removeprefix("script."))
        await wait_for_entities(
            person, lambda ids: not set(SCRIPT_IDS) & ids, "the scripts removed"
        )
        yield person
        await ws.close()


@pytest.fixture
async def addon(runtime: Runtime, supervisor: TestServer) -> AsyncIterator[HomeAssistantAdapter]:
    async with running_addon(runtime, supervisor) as adapter:
        await connected(adapter)
        yield adapter


async def config_api(user: User, method: str, object_id: str, body: Any = None) -> Any:
    async with user.session.request(
        method,
        f"{user.ha.api_url}/config/script/config/{object_id}",
        json=body,
        headers=user.ha.headers,
    ) as response:
        return response.status, await response.json()


async def delete_script(user: User, object_id: str) -> None:
    status, answer = await config_api(user, "DELETE", object_id)
    assert status == 200 or answer == {"message": "Resource not found"}, (status, answer)


async def entity_ids(user: User) -> set[str]:
    return {state["entity_id"] for state in await user.ws.send_command({"type": "get_states"})}


async def wait_for_entities(
    user: User, predicate: Callable[[set[str]], bool], what: str, within: float = 15
) -> None:
    """Wait until `predicate` holds for the entity ids Home Assistant lists."""

    async def holds() -> bool:
        return predicate(await entity_ids(user))

    await eventually_async(holds, within, what)


async def run_script(user: User, object_id: str, **data: Any) -> dict[str, Any]:
    """Call a script and wait for its response: {"context": …, "response": …}."""
    result: dict[str, Any] = await user.ws.send_command(
        {
            "type": "call_service",
            "domain": "script",
            "service": object_id,
            "service_data": data,
            "return_response": True,
        }
    )
    return result


def actions(outcomes: list[ScriptOutcome]) -> dict[str, str]:
    return {outcome.entity_id: outcome.action for outcome in outcomes}


@homeassistant
async def test_install_creates_every_script_callable_at_once(
    user: User, rest: HomeAssistantRest
) -> None:
    outcomes = await install_scripts(rest)
    assert actions(outcomes) == dict.fromkeys(SCRIPT_IDS, "created")
    assert set(SCRIPT_IDS) <= await entity_ids(user)  # no waiting: install reloaded scripts
    for spec in SCRIPT_COMMANDS:
        status, stored = await config_api(user, "GET", script_object_id(spec))
        assert status == 200 and stored == script_config(spec)
    state = await user.state("script.sec1000_set_export_limit")
    assert state is not None
    assert state["attributes"]["friendly_name"] == "SEC1000 Set export limit"
    assert state["attributes"]["mode"] == "parallel"


@homeassistant
async def test_set_limit_script_returns_the_result_after_the_device_answered(
    user: User,
    rest: HomeAssistantRest,
    addon: HomeAssistantAdapter,
    runtime: Runtime,
    simulator: SimulatorServer,
) -> None:
    await install_scripts(rest)
    answer = await run_script(user, "sec1000_set_export_limit", limit=7)
    returned_at = time.monotonic()
    frames = len(simulator.requests())  # counted before anything else can run
    response = answer["response"]
    assert set(response) == RESULT_KEYS
    assert response["feedback"] == 1 and response["ok"] is True
    assert response["command"] == "set_export_limit" and response["message"]
    assert frames == 5
    assert all(
        exchange.answered_at is not None and exchange.answered_at <= returned_at
        for exchange in simulator.exchanges
    )
    assert simulator.device.export_limit_w == 7_000
    # The request id is the caller's context id with a random part, and reached the add-on.
    assert response["request_id"].startswith(answer["context"]["id"] + "-")
    record = runtime.state.commands[-1]
    assert record.request_id == response["request_id"]
    assert record.source == "home_assistant (Test Owner)"


@homeassistant
async def test_limit_out_of_range_returns_128_and_sends_nothing(
    user: User, rest: HomeAssistantRest, addon: HomeAssistantAdapter, simulator: SimulatorServer
) -> None:
    await install_scripts(rest)
    response = (await run_script(user, "sec1000_set_export_limit", limit=250))["response"]
    assert response["feedback"] == 128 and response["ok"] is False
    assert "between 0 and 100" in response["message"]
    assert simulator.requests() == []


@homeassistant
async def test_missing_required_field_is_the_addons_128_not_a_template_error(
    user: User, rest: HomeAssistantRest, addon: HomeAssistantAdapter, simulator: SimulatorServer
) -> None:
    await install_scripts(rest)
    response = (await run_script(user, "sec1000_set_control_mode"))["response"]
    assert response["feedback"] == 128 and "needs mode" in response["message"]
    assert simulator.requests() == []


@homeassistant
async def test_toggle_script_returns_the_write_not_the_read_before_it(
    user: User, rest: HomeAssistantRest, addon: HomeAssistantAdapter, runtime: Runtime
) -> None:
    await install_scripts(rest)
    assert runtime.state.export_state is None  # so the toggle reads the limit first
    response = (await run_script(user, "sec1000_export_toggle"))["response"]
    assert response["command"] == "export_disable" and response["ok"] is True
    assert [(r.command, r.request_id) for r in runtime.state.commands] == [
        ("get_export_limit", response["request_id"]),
        ("export_disable", response["request_id"]),
    ]


@homeassistant
async def test_parallel_runs_each_get_their_own_result(
    user: User, rest: HomeAssistantRest, addon: HomeAssistantAdapter, simulator: SimulatorServer
) -> None:
    await install_scripts(rest)
    first, second = await asyncio.gather(
        run_script(user, "sec1000_set_export_limit", limit=3),
        run_script(user, "sec1000_get_export_limit"),
    )
    assert first["response"]["command"] == "set_export_limit" and first["response"]["ok"]
    assert second["response"]["command"] == "get_export_limit" and second["response"]["ok"]
    assert first["response"]["request_id"] != second["response"]["request_id"]
    assert simulator.device.export_limit_w == 3_000


@homeassistant
async def test_a_script_awaits_the_addons_script_through_response_variable(
    user: User, rest: HomeAssistantRest, addon: HomeAssistantAdapter
) -> None:
    await install_scripts(rest)
    caller = {
        "alias": "Limit reader",
        "sequence": [
            {"action": "script.sec1000_get_export_limit", "response_variable": "first"},
            {"action": "script.sec1000_get_export_limit", "response_variable": "second"},
            {"variables": {"both": "{{ {'first': first, 'second': second} }}"}},
            {"stop": "read twice", "response_variable": "both"},
        ],
    }
    status, _ = await config_api(user, "POST", "limit_reader", caller)
    assert status == 200
    try:
        await wait_for_entities(user, lambda ids: "script.limit_reader" in ids, "the caller script")
        both = (await run_script(user, "limit_reader"))["response"]
    finally:
        await delete_script(user, "limit_reader")
    first, second = both["first"], both["second"]
    assert first["ok"] is True and second["ok"] is True
    assert first["command"] == second["command"] == "get_export_limit"
    # One caller, one context: only the random part keeps the two runs apart.
    assert first["request_id"].rsplit("-", 1)[0] == second["request_id"].rsplit("-", 1)[0]
    assert first["request_id"] != second["request_id"]


@homeassistant
async def test_unanswered_script_returns_timeout_feedback_in_words(user: User) -> None:
    probe = script_config(SET_LIMIT)
    _wait_step(probe)["timeout"] = 1  # the add-on's 60 s, shortened; nobody answers here
    status, _ = await config_api(user, "POST", "timeout_probe", probe)
    assert status == 200
    try:
        await wait_for_entities(user, lambda ids: "script.timeout_probe" in ids, "the probe script")
        response = (await run_script(user, "timeout_probe", limit=1))["response"]
    finally:
        await delete_script(user, "timeout_probe")
    assert response == {
        "command": "set_export_limit",
        "request_id": response["request_id"],
        "feedback": 8,
        "ok": False,
        "message": TIMEOUT_MESSAGE,
        "controller": None,  # none given: the first
    }
    assert TIMEOUT_MESSAGE == "the add-on did not answer within 60 s"


@homeassistant
async def test_reinstall_keeps_edits_updates_own_and_recreates_deleted(
    user: User, rest: HomeAssistantRest
) -> None:
    await install_scripts(rest)
    assert actions(await install_scripts(rest)) == dict.fromkeys(SCRIPT_IDS, "unchanged")

    edited = {**script_config(SET_LIMIT), "alias": "My export limit"}  # renamed in the editor
    assert (await config_api(user, "POST", "sec1000_set_export_limit", edited))[0] == 200
    outdated = copy.deepcopy(script_config(BY_NAME[CommandName.GET_EXPORT_LIMIT]))
    _wait_step(outdated)["timeout"] = 30  # an older add-on's script, marker and all
    body = {key: value for key, value in outdated.items() if key != "description"}
    outdated["description"] = f"An older version. [sec1000:{marker_hash(body)}]"
    assert is_own(outdated)
    assert (await config_api(user, "POST", "sec1000_get_export_limit", outdated))[0] == 200
    await delete_script(user, "sec1000_export_enable")

    outcomes = {outcome.entity_id: outcome for outcome in await install_scripts(rest)}
    assert outcomes["script.sec1000_set_export_limit"] == ScriptOutcome(
        "script.sec1000_set_export_limit", "kept", EDITED
    )
    assert outcomes["script.sec1000_get_export_limit"].action == "updated"
    assert outcomes["script.sec1000_export_enable"].action == "created"
    others = set(SCRIPT_IDS) - {
        "script.sec1000_set_export_limit",
        "script.sec1000_get_export_limit",
        "script.sec1000_export_enable",
    }
    assert all(outcomes[entity_id].action == "unchanged" for entity_id in others)
    assert (await config_api(user, "GET", "sec1000_set_export_limit"))[1] == edited
    assert (await config_api(user, "GET", "sec1000_get_export_limit"))[1] == script_config(
        BY_NAME[CommandName.GET_EXPORT_LIMIT]
    )
    assert "script.sec1000_export_enable" in await entity_ids(user)
    state = await user.state("script.sec1000_set_export_limit")
    assert state is not None and state["attributes"]["friendly_name"] == "My export limit"


class FailingFor(HomeAssistantRest):
    """The add-on's REST client, with one script's config calls failing (a 500)."""

    def __init__(self, rest: HomeAssistantRest, object_id: str) -> None:
        self.http = rest.http
        self.object_id = object_id

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        if path.endswith(f"/{self.object_id}"):
            raise HttpStatusError(method, path, 500, "Internal Server Error")
        return await super().request(method, path, body)


@homeassistant
async def test_one_failing_script_does_not_stop_the_others(
    user: User, rest: HomeAssistantRest
) -> None:
    outcomes = await install_scripts(FailingFor(rest, "sec1000_set_datetime"))
    failed = [outcome for outcome in outcomes if outcome.action == "failed"]
    assert [outcome.entity_id for outcome in failed] == ["script.sec1000_set_datetime"]
    assert "HTTP 500" in failed[0].detail
    assert sum(outcome.action == "created" for outcome in outcomes) == len(SCRIPT_IDS) - 1
    ids = await entity_ids(user)
    assert "script.sec1000_set_datetime" not in ids
    assert set(SCRIPT_IDS) - {"script.sec1000_set_datetime"} <= ids


@homeassistant
async def test_scripts_that_home_assistant_does_not_load_are_reported_failed(
    fresh_home_assistant: HomeAssistant,
) -> None:
    ha = fresh_home_assistant  # the harness's configuration: no `script: !include scripts.yaml`
    async with aiohttp.ClientSession() as session:
        rest = HomeAssistantRest(session, ha.api_url, ha.token)
        first, second = await install_scripts(rest), await install_scripts(rest)
    assert (
        first
        == second
        == [ScriptOutcome(entity_id, "failed", NOT_LOADED) for entity_id in SCRIPT_IDS]
    )
