"""The headline: what limits the export, who set it, and until when, in one sentence."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sec1000.ha.adapter import HomeAssistantAdapter
from sec1000.ha.discovery import attributes_topic, state_payloads
from sec1000.ha.entities import EXPORT_STATE, sensor_extra_attributes
from sec1000.headline import Phrase, headline
from sec1000.limiter.audit import AuditLog
from sec1000.options import FIRST_CONTROLLER, Options
from sec1000.protocol import TELEMETRY_FIELDS, ControlMode, Feedback
from sec1000.runtime import Runtime
from sec1000.state import GuardState, StateModel
from sec1000.web.i18n import choose, translator
from sec1000.web.status import read_age

TELEMETRY = {
    **{field.key: 1.0 for field in TELEMETRY_FIELDS},
    "meters_power": -2.0,
    "inverters_power": 3.0,
    "load_power": 1.0,
}


def plant(
    limit: float | None = 3.5,
    mode: ControlMode | None = ControlMode.VALUE,
    by: tuple[str, str] | None = None,
    policy: dict[str, Any] | None = None,
) -> StateModel:
    state = StateModel(0.0, clock=lambda: 1_000.0)
    state.settings_read(export_limit_kw=limit, control_mode=mode)
    state.telemetry_read({**TELEMETRY})
    if by is not None:
        state.written_by(*by)
    if policy is not None:
        state.policy_decided(policy)
    return state


OPTIONS = Options()
# The day of the policy's times below (Home Assistant's zone, +01:00).
MORNING = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()


@pytest.mark.parametrize(
    ("by", "said"),
    [
        (None, "Export limited to 3.50 kW, as found on the controller."),
        (
            ("panel:Anna", "set_export_limit"),
            "Export limited to 3.50 kW, set by Anna on the panel.",
        ),
        (("panel", "set_export_limit"), "Export limited to 3.50 kW, set on the panel."),
        (
            ("home_assistant:Ben", "set_export_limit"),
            "Export limited to 3.50 kW, set by Ben in Home Assistant.",
        ),
        (
            ("home_assistant:automation", "set_export_limit"),
            "Export limited to 3.50 kW, set by a Home Assistant automation.",
        ),
        (
            ("mqtt", "set_export_limit"),
            "Export limited to 3.50 kW, set from Home Assistant (MQTT).",
        ),
        (("cli", "set_export_limit"), "Export limited to 3.50 kW, set from the command line."),
        (("guard", "restore"), "Export limited to 3.50 kW, put back by the export guard."),
        (("guard", "ceiling"), "Export limited to 3.50 kW, held by the export ceiling."),
        (("robot", "set_export_limit"), "Export limited to 3.50 kW, set by robot."),
    ],
)
def test_the_headline_names_who_set_the_limit(by: tuple[str, str] | None, said: str) -> None:
    assert headline(plant(by=by), OPTIONS).words() == said


def test_export_off_by_the_policy_until_its_next_planned_change() -> None:
    policy = {
        "state": "export_off",
        "attributes": {"next_change_at": "2026-12-07T14:15:00+01:00"},
    }
    state = plant(limit=0.0, by=("policy", "export_disable"), policy=policy)
    said = headline(state, OPTIONS, MORNING)
    assert said.kind == "off"
    assert said.words() == "Export off, set by the price policy, until 14:15 (price forecast)."
    # The same plan does not belong to a limit somebody else set.
    state.written_by("panel:Anna", "export_disable")
    assert headline(state, OPTIONS).words() == "Export off, set by Anna on the panel."


def test_a_manual_command_during_the_policy_says_until_when_it_holds() -> None:
    policy = {"state": "override", "attributes": {"override_until": "2026-12-07T12:30:00+01:00"}}
    state = plant(by=("panel:Anna", "set_export_limit"), policy=policy)
    assert headline(state, OPTIONS, MORNING).words() == (
        "Export limited to 3.50 kW, set by Anna on the panel, "
        "until 12:30 (then the price policy decides again)."
    )


def test_the_ceiling_is_named_unless_it_set_the_limit() -> None:
    options = Options.from_mapping({"export_ceiling_kw": 4, "max_export_limit": 4})
    state = plant(by=("panel:Anna", "set_export_limit"))
    assert headline(state, options).words() == (
        "Export limited to 3.50 kW, set by Anna on the panel. The export ceiling is 4.00 kW."
    )
    state.written_by("guard", "ceiling")
    assert (
        headline(state, options).words() == "Export limited to 3.50 kW, held by the export ceiling."
    )


def test_modes_other_than_value_say_what_limits_instead() -> None:
    off = headline(plant(mode=ControlMode.DEACTIVATED, by=("cli", "set_control_mode")), OPTIONS)
    assert off.kind == "unlimited"
    assert off.words() == "Export is not limited: the limiter is off, set from the command line."
    rcr = headline(plant(mode=ControlMode.RCR), OPTIONS).words()
    assert (
        rcr == "Export follows the grid operator's signal (mode rcr), as found on the controller."
    )


def test_another_tools_limit_is_a_warning_with_what_the_addon_wants() -> None:
    state = plant(limit=9.0)
    state.guard = replace(state.guard, state=GuardState.DRIFT, wanted_limit_kw=3.0)
    said = headline(state, OPTIONS)
    assert said.kind == "warning"
    assert said.words() == "Export limited to 9.00 kW by another tool; the app wants 3.00 kW."


def test_a_silent_controller_is_not_shown_as_holding_anything_now() -> None:
    state = plant()
    for _ in range(3):
        state.link.record(Feedback.TIMEOUT, 1.0, "no answer")
        state.telemetry_failed()
    said = headline(state, OPTIONS)
    assert said.kind == "warning"
    assert said.words() == "The controller is not answering; it last held 3.50 kW."
    never = StateModel()
    never.link.record(Feedback.SOCKET_ERROR, 0.0, "refused")
    assert headline(never, OPTIONS).words() == "The controller has not answered yet."
    assert headline(StateModel(), OPTIONS).kind == "unknown"


def test_the_watchdog_window_is_said_as_unlimited_for_a_moment() -> None:
    state = plant()
    state.watchdog_running = True
    assert headline(state, OPTIONS).words() == (
        "Export is briefly unlimited: the watchdog reset is under way."
    )


class German:
    """A stand-in language: every text marked, numbers with a comma."""

    def gettext(self, text: str) -> str:
        return f"«{text}»"

    def number(self, value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}".replace(".", ",")


def test_every_part_is_translated_and_numbers_follow_the_language() -> None:
    said = headline(plant(by=("panel:Anna", "set_export_limit")), OPTIONS).words(German())
    assert said == "«Export limited to {limit} kW, {by}{until}.»".format(
        limit="3,50", by="«set by {user} on the panel»".format(user="Anna"), until=""
    )
    assert Phrase("{n} kW", {"n": 1.5}).words(German()) == "«{n} kW»".format(n="1,50")


async def test_who_set_the_limit_is_remembered_across_a_restart(tmp_path: Path) -> None:
    """The audit trail is the memory: a restart still names the last confirmed write."""
    audit = AuditLog(tmp_path)
    audit.append({"origin": "panel:Anna", "command": "set_export_limit", "verified": True})
    audit.append({"origin": "cli", "command": "set_export_limit", "verified": False})
    audit.append({"kind": "drift", "message": "another tool"})
    await audit.flush()
    runtime = Runtime(Options(), tmp_path)
    assert runtime.state.set_by is not None
    assert (runtime.state.set_by.origin, runtime.state.set_by.command) == (
        "panel:Anna",
        "set_export_limit",
    )
    assert Runtime(Options(), tmp_path / "new").state.set_by is None


def test_until_names_the_day_when_it_is_not_today() -> None:
    zone = dt.timezone(dt.timedelta(hours=1))
    now = dt.datetime(2026, 12, 7, 19, 0, tzinfo=zone).timestamp()

    def said(next_change: str) -> str:
        policy = {"state": "export_off", "attributes": {"next_change_at": next_change}}
        state = plant(limit=0.0, by=("policy", "export_disable"), policy=policy)
        return headline(state, OPTIONS, now).words()

    today = said("2026-12-07T21:15:00+01:00")
    assert today == "Export off, set by the price policy, until 21:15 (price forecast)."
    tomorrow = said("2026-12-08T11:00:00+01:00")
    assert tomorrow == "Export off, set by the price policy, until tomorrow 11:00 (price forecast)."
    later = said("2026-12-10T11:00:00+01:00")
    assert later.endswith("until 2026-12-10 11:00 (price forecast).")


def test_home_assistant_gets_the_headline_in_its_own_language() -> None:
    """The attribute follows Home Assistant's language (its config, read at each connect):
    the MQTT payload and the REST attributes are built with the adapter's words."""
    state = plant(by=("panel:Anna", "set_export_limit"))
    german = translator("de")
    payloads = state_payloads(state, OPTIONS, FIRST_CONTROLLER, german)
    said = json.loads(payloads[attributes_topic(EXPORT_STATE.object_id)])["headline"]
    assert said == "Einspeisung auf 3,50 kW begrenzt, gesetzt von Anna im Panel."
    english = sensor_extra_attributes(state, EXPORT_STATE, OPTIONS)["headline"]
    assert english == "Export limited to 3.50 kW, set by Anna on the panel."

    class Client:
        language: str | None = None

    adapter = HomeAssistantAdapter.__new__(HomeAssistantAdapter)
    adapter.client = Client()  # type: ignore[assignment]
    adapter._words_for = lambda language: translator(choose(None, language))
    assert adapter.words().gettext("set on the panel") == "set on the panel"  # not known yet
    adapter.client.language = "sk"  # type: ignore[union-attr]
    assert adapter.words().gettext("set on the panel") == "nastavená na paneli"


def test_an_old_value_never_reads_just_now() -> None:
    assert read_age(100.0, 105.0, 4.0).text == "old: read 5 s ago"
    assert read_age(100.0, 103.0, 4.0).text == "read just now"


async def test_an_unreadable_audit_time_is_passed_over_not_fatal(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)
    audit.append({"origin": "cli", "command": "set_export_limit", "verified": True})
    audit.append(
        {"origin": "panel:Anna", "command": "set_export_limit", "verified": True, "at": "junk"}
    )
    set_by = audit.last_confirmed_write()
    assert set_by is not None and set_by.origin == "cli"  # the newest readable one


def test_a_policy_time_that_is_not_iso_says_no_until() -> None:
    policy = {"state": "override", "attributes": {"override_until": "soon"}}
    state = plant(by=("panel:Anna", "set_export_limit"), policy=policy)
    assert headline(state, OPTIONS, MORNING).words() == (
        "Export limited to 3.50 kW, set by Anna on the panel."
    )
