"""The headline: one sentence on what limits the export now, who set it, and until when.

The same sentence tops the panel's dashboard and is the `headline` attribute of
`sensor.<controller>_export_state` (REST and MQTT). It is built from the state model and the
options only, as a template with values, so each adapter says it in its own language.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sec1000.options import Options
from sec1000.pricing.decide import PolicyState
from sec1000.protocol import ControlMode
from sec1000.state import GuardState, SetBy, StateModel


def N_(text: str) -> str:
    """Mark a text for the panel's catalogues (translated where it is shown)."""
    return text


class Words(Protocol):
    """A language: its catalogue and its number style (the panel's `Translator` is one)."""

    def gettext(self, text: str) -> str: ...

    def number(self, value: float | None, digits: int = 2) -> str: ...


class _English:
    def gettext(self, text: str) -> str:
        return text

    def number(self, value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}"


ENGLISH_WORDS: Words = _English()


@dataclass(frozen=True, slots=True)
class Phrase:
    """A text to translate, with its values (numbers in kW, or phrases of their own)."""

    text: str
    values: Mapping[str, float | str | Phrase] = field(default_factory=dict)

    def words(self, words: Words = ENGLISH_WORDS) -> str:
        """The phrase in a language."""
        shown: dict[str, str] = {}
        for key, value in self.values.items():
            if isinstance(value, Phrase):
                shown[key] = value.words(words)
            elif isinstance(value, float):
                shown[key] = words.number(value)
            else:
                shown[key] = value
        return words.gettext(self.text).format(**shown)


@dataclass(frozen=True, slots=True)
class Headline:
    """The sentence (and a second one on the ceiling) and its kind: ok, off, unlimited,
    warning or unknown (its colour)."""

    kind: str
    phrase: Phrase
    ceiling: Phrase | None = None

    def words(self, words: Words = ENGLISH_WORDS) -> str:
        """The sentence in a language."""
        said = self.phrase.words(words)
        return said if self.ceiling is None else f"{said} {self.ceiling.words(words)}"


def headline(state: StateModel, options: Options, now: float | None = None) -> Headline:
    """What limits the export now, who set it and until when, from what the add-on knows
    (`now`: the wall clock, for "until" today or tomorrow)."""
    limit = state.export_limit_kw
    if not state.telemetry_available and state.link.last_error:
        if limit is None:
            return Headline("unknown", Phrase(N_("The controller has not answered yet.")))
        return Headline(
            "warning",
            Phrase(
                N_("The controller is not answering; it last held {limit} kW."), {"limit": limit}
            ),
        )
    if state.watchdog_running:
        return Headline(
            "warning",
            Phrase(N_("Export is briefly unlimited: the watchdog reset is under way.")),
        )
    mode = state.control_mode
    if limit is None or mode is None:
        return Headline("unknown", Phrase(N_("The controller's export limit is not known yet.")))
    if mode is ControlMode.DEACTIVATED:
        return Headline(
            "unlimited",
            Phrase(N_("Export is not limited: the limiter is off, {by}."), {"by": _by(state)}),
        )
    if mode is not ControlMode.VALUE:
        return Headline(
            "ok",
            Phrase(
                N_("Export follows the grid operator's signal (mode {mode}), {by}."),
                {"mode": mode.option, "by": _by(state)},
            ),
        )
    guard = state.guard
    if (
        guard.state in (GuardState.DRIFT, GuardState.CONTESTED)
        and guard.wanted_limit_kw is not None
    ):
        return Headline(
            "warning",
            Phrase(
                N_("Export limited to {limit} kW by another tool; the app wants {wanted} kW."),
                {"limit": limit, "wanted": guard.wanted_limit_kw},
            ),
        )
    values: dict[str, float | str | Phrase] = {"by": _by(state), "until": _until(state, now)}
    if state.export_state == "off":
        text = N_("Export off, {by}{until}.")
    else:
        text = N_("Export limited to {limit} kW, {by}{until}.")
        values["limit"] = limit
    kind = "off" if state.export_state == "off" else "ok"
    ceiling_w = options.ceiling_w
    ceiling = None
    if ceiling_w is not None and not _set_by_ceiling(state.set_by):
        ceiling = Phrase(N_("The export ceiling is {ceiling} kW."), {"ceiling": ceiling_w / 1000})
    return Headline(kind, Phrase(text, values), ceiling)


def _set_by_ceiling(set_by: SetBy | None) -> bool:
    return set_by is not None and set_by.command == "ceiling"


def _by(state: StateModel) -> Phrase:
    """Who wrote what the controller holds, as people say it."""
    set_by = state.set_by
    if set_by is None:
        return Phrase(N_("as found on the controller"))
    source, _, user = set_by.origin.partition(":")
    if source == "guard":
        if set_by.command == "ceiling":
            return Phrase(N_("held by the export ceiling"))
        return Phrase(N_("put back by the export guard"))
    if source == "panel":
        if user:
            return Phrase(N_("set by {user} on the panel"), {"user": user})
        return Phrase(N_("set on the panel"))
    if source == "home_assistant":
        if user and user != "automation":
            return Phrase(N_("set by {user} in Home Assistant"), {"user": user})
        return Phrase(N_("set by a Home Assistant automation"))
    known = {
        "policy": N_("set by the price policy"),
        "mqtt": N_("set from Home Assistant (MQTT)"),
        "cli": N_("set from the command line"),
        "startup": N_("set by the app at start"),
    }
    return Phrase(known.get(source, N_("set by {origin}")), {"origin": set_by.origin})


def _until(state: StateModel, now: float | None = None) -> Phrase | str:
    """Until when the price policy leaves it so (empty when nothing plans a change)."""
    policy = state.policy
    attributes = policy.get("attributes") or {}
    policy_state = policy.get("state")
    if policy_state == PolicyState.OVERRIDE:
        until = _clock_time(attributes.get("override_until"), now)
        if until:
            return Phrase(
                N_(", until {time} (then the price policy decides again)"), {"time": until}
            )
    elif policy_state in (PolicyState.EXPORT_ON, PolicyState.EXPORT_OFF):
        set_by = state.set_by
        until = _clock_time(attributes.get("next_change_at"), now)
        if until and set_by is not None and set_by.origin == "policy":
            return Phrase(N_(", until {time} (price forecast)"), {"time": until})
    return ""


def _clock_time(iso: object, now: float | None = None) -> Phrase | str:
    """An ISO 8601 time as the policy gives it (in Home Assistant's zone): HH:MM today,
    "tomorrow HH:MM", else the date and HH:MM."""
    if not isinstance(iso, str):
        return ""
    try:
        at = dt.datetime.fromisoformat(iso)
    except ValueError:
        return ""
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, at.tzinfo).date()
    hour = at.strftime("%H:%M")
    if at.date() == today:
        return hour
    if at.date() == today + dt.timedelta(days=1):
        return Phrase(N_("tomorrow {time}"), {"time": hour})
    return f"{at.date().isoformat()} {hour}"
