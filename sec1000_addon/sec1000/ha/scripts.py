"""Awaitable scripts: one Home Assistant script per command, answering with the command's result.

Each `script.sec1000_<command>` fires `sec1000_command` with a fresh `request_id`, waits for the
matching `sec1000_command_result` and returns it as its response. The add-on writes a script only
while it is still its own: the description carries a hash of the rest of the config, so a script
the user edited is left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from sec1000.commands import COMMANDS, CommandName, CommandSpec, Param, parse_flag
from sec1000.ha import HomeAssistantError, HttpStatusError
from sec1000.ha.entities import COMMAND_EVENT, RESULT_EVENT
from sec1000.ha.rest import HomeAssistantRest
from sec1000.protocol import Feedback

_LOGGER = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 60
TIMEOUT_MESSAGE = f"the add-on did not answer within {ANSWER_TIMEOUT_S} s"
EDITED = "edited by the user"
NOT_LOADED = (
    "written, but Home Assistant does not load it: configuration.yaml needs "
    "`script: !include scripts.yaml`"
)
MARKER = re.compile(r"\[sec1000:([0-9a-f]{12})\]")
SCRIPT_COMMANDS: tuple[CommandSpec, ...] = COMMANDS
# The result that ends a run: export_toggle answers as the export_enable or export_disable it ran
# (after a get_export_limit with the same request_id when the state is unknown).
ANSWERS_AS: dict[CommandName, tuple[CommandName, ...]] = {
    CommandName.EXPORT_TOGGLE: (CommandName.EXPORT_ENABLE, CommandName.EXPORT_DISABLE),
}
# Templates: a script run's `context.id` is the caller's (an automation's actions share one),
# hence the random part; the sandbox refuses ranges over 100000.
REQUEST_ID = "{{ context.id }}-{{ (range(100000) | random) * 100000 + (range(100000) | random) }}"
# `wait.trigger` is None after a timeout (continue_on_timeout).
RESULT = (
    "{{ dict(wait.trigger.event.data) if wait.trigger else "
    "{'command': %r, 'request_id': request_id, 'feedback': %d, 'ok': false, 'message': %r, "
    "'controller': controller | default(none)} }}"
)
# Every script's last field: the controller it acts on (absent: the first).
CONTROLLER_FIELD = {
    "name": "Controller",
    "description": "the controller's name from the add-on options; empty: the first controller",
    "required": False,
    "selector": {"text": {}},
}


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    """What install_scripts did with one script."""

    entity_id: str  # script.sec1000_export_enable
    action: str  # "created" | "updated" | "unchanged" | "kept" | "failed"
    detail: str = ""  # words, e.g. why it was kept or the HTTP error


def script_object_id(spec: CommandSpec) -> str:
    """The script's object id: sec1000_<command>."""
    return f"sec1000_{spec.name.value}"


def _selector(param: Param) -> dict[str, Any]:
    if param.parse is parse_flag:
        return {"boolean": {}}
    if param.choices:
        return {"select": {"options": list(param.choices)}}
    if param.bounds is None:
        return {"text": {}}
    low, high, step = param.bounds
    number: dict[str, Any] = {"min": low, "max": high, "step": step, "mode": "box"}
    if unit := param.unit.split(",")[0].strip():  # "kW, 0 to 100, two decimals"
        number["unit_of_measurement"] = unit
    return {"number": number}


def _field(param: Param) -> dict[str, Any]:
    return {
        "name": param.label or param.name.replace("_", " ").capitalize(),
        "description": param.help,
        "required": param.required,
        "selector": _selector(param),
    }


def _body(spec: CommandSpec) -> dict[str, Any]:
    """The script config without its description."""
    command = spec.name.value
    # An absent optional field is an undefined variable: sent as null, which the add-on ignores.
    names = [*(p.name for p in spec.params), "controller"]
    data = {name: f"{{{{ {name} | default(none) }}}}" for name in names}
    triggers = [
        {
            "trigger": "event",
            "event_type": RESULT_EVENT,
            "event_data": {"request_id": "{{ request_id }}", "command": answer.value},
        }
        for answer in ANSWERS_AS.get(spec.name, (spec.name,))
    ]
    timeout = RESULT % (command, Feedback.TIMEOUT, TIMEOUT_MESSAGE)
    return {
        "alias": f"SEC1000 {spec.label}",
        "mode": "parallel",
        "fields": {
            **{param.name: _field(param) for param in spec.params},
            "controller": CONTROLLER_FIELD,
        },
        "sequence": [
            {"variables": {"request_id": REQUEST_ID}},
            {
                "event": COMMAND_EVENT,
                "event_data": {"command": command, "request_id": "{{ request_id }}", **data},
            },
            {
                "wait_for_trigger": triggers,
                "timeout": ANSWER_TIMEOUT_S,
                "continue_on_timeout": True,
            },
            {"variables": {"result": timeout}},
            {"stop": f"{command} finished", "response_variable": "result"},
        ],
    }


def _digest(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def script_config(spec: CommandSpec) -> dict[str, Any]:
    """The config as posted to Home Assistant, its description carrying the ownership marker."""
    body = _body(spec)
    risk = f" {spec.confirm.risk}" if spec.confirm else ""
    description = (
        f"{spec.help}{risk} Answers {{command, request_id, feedback, ok, message, controller}}."
        "\n\n"
        f"Installed by the SEC1000 add-on [sec1000:{_digest(body)}]; "
        "once you edit it, the add-on leaves it alone."
    )
    return {**body, "description": description}


def is_own(config: object) -> bool:
    """True when `config` still is the add-on's: its marker matches the hash of its content."""
    if not isinstance(config, dict) or not isinstance(config.get("description"), str):
        return False
    found = MARKER.search(config["description"])
    body = {key: value for key, value in config.items() if key != "description"}
    return found is not None and found.group(1) == _digest(body)


async def _install(rest: HomeAssistantRest, spec: CommandSpec) -> ScriptOutcome:
    entity_id = f"script.{script_object_id(spec)}"
    path = f"config/script/config/{script_object_id(spec)}"
    wanted = script_config(spec)
    try:
        current = await rest.request("GET", path)
    except HttpStatusError as err:
        if err.status != 404:
            raise
        current = None
    if current == wanted:
        return ScriptOutcome(entity_id, "unchanged")
    if current is not None and not is_own(current):
        return ScriptOutcome(entity_id, "kept", EDITED)
    await rest.request("POST", path, wanted)
    return ScriptOutcome(entity_id, "created" if current is None else "updated")


async def install_scripts(rest: HomeAssistantRest) -> list[ScriptOutcome]:
    """Create the missing scripts and update the add-on's own; leave edited ones alone."""
    outcomes: list[ScriptOutcome] = []
    for spec in SCRIPT_COMMANDS:
        try:
            outcome = await _install(rest, spec)
        except HomeAssistantError as err:
            outcome = ScriptOutcome(f"script.{script_object_id(spec)}", "failed", str(err))
        outcomes.append(outcome)
    if any(outcome.action in ("created", "updated") for outcome in outcomes):
        # The config API reloads scripts in a task of its own after answering; this blocking
        # reload makes every script callable once install_scripts returns.
        try:
            await rest.call_service("script", "reload")
        except HomeAssistantError as err:
            _LOGGER.warning("script.reload failed (Home Assistant reloads by itself): %s", err)
    outcomes = await _check_loaded(rest, outcomes)
    for outcome in outcomes:
        _LOGGER.info("%s: %s %s", outcome.entity_id, outcome.action, outcome.detail)
    return outcomes


async def _check_loaded(
    rest: HomeAssistantRest, outcomes: list[ScriptOutcome]
) -> list[ScriptOutcome]:
    """Each script written is a service now; a written one that is not becomes "failed"."""
    try:
        services = await rest.request("GET", "services")
    except HomeAssistantError as err:
        _LOGGER.warning("cannot list the services to check the scripts: %s", err)
        return outcomes
    # The service is named after the config key, even when the user renamed the entity.
    loaded = {
        f"script.{name}"
        for domain in services
        if isinstance(domain, dict) and domain.get("domain") == "script"
        for name in domain.get("services", {})
    }
    return [
        ScriptOutcome(outcome.entity_id, "failed", NOT_LOADED)
        if outcome.action in ("created", "updated", "unchanged") and outcome.entity_id not in loaded
        else outcome
        for outcome in outcomes
    ]
