"""The words the panel shows for options, choices and feedback: one home, marked for translation."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sec1000.commands import Refusal, Rule
from sec1000.protocol import Feedback
from sec1000.web.i18n import N_, Translator

# Each option's label, as Setup shows it and as messages name it (never the option key).
OPTION_LABELS: Mapping[str, str] = {
    "host": N_("Controller address"),
    "port": N_("Port"),
    "scan_interval": N_("Refresh interval"),
    "min_export_limit": N_("Minimum export limit"),
    "max_export_limit": N_("Maximum export limit"),
    "total_capacity": N_("Total PV capacity"),
    "export_limit_control_mode": N_("Export limit control mode"),
    "three_phase_sum": N_("Three-phase sum"),
    "request_gap_ms": N_("Gap between packets"),
    "request_timeout": N_("Answer timeout"),
    "offline_notification_minutes": N_("Offline notification after"),
    "log_level": N_("Log level"),
    "verify_interval": N_("Check the controller every"),
    "overshoot_margin_kw": N_("Over-limit margin"),
    "overshoot_seconds": N_("Over-limit after"),
    "export_ceiling_kw": N_("Export ceiling"),
    "drift_action": N_("When the controller's limit changed behind the add-on's back"),
    "price_policy": N_("Price policy"),
    "price_entity": N_("Price sensor"),
    "export_off_below": N_("Export off below"),
    "export_on_above": N_("Export on at or above"),
    "policy_min_dwell_minutes": N_("Minimum time off"),
    "price_stale_minutes": N_("Price stale after"),
    "price_stale_action": N_("With a stale price"),
    "entities": N_("Entities"),
    "mqtt_host": N_("MQTT broker"),
    "mqtt_port": N_("MQTT port"),
    "mqtt_username": N_("MQTT user name"),
    "mqtt_password": N_("MQTT password"),
    "controllers": N_("Additional controllers"),
}

# The control mode has one name everywhere: (name, hint).
MODES: Mapping[str, tuple[str, str]] = {
    "value": (N_("By value"), N_("limit the export to a value in kW; most plants")),
    "dred": (N_("DRED"), N_("Demand Response Enabled Device: Australia and New Zealand")),
    "rcr": (N_("RCR"), N_("Ripple Control Receiver: Germany")),
    "deactivated": (N_("Off"), N_("no limit: the full PV power may go to the grid")),
}

# What each choice of a menu option reads as.
CHOICES: Mapping[str, Mapping[str, str]] = {
    "export_limit_control_mode": {key: name for key, (name, _) in MODES.items()},
    "entities": {
        "auto": N_("Automatic"),
        "mqtt": N_("MQTT device"),
        "rest": N_("REST states and helpers"),
    },
    "price_stale_action": {
        "keep": N_("Keep the export as it is"),
        "export_off": N_("Switch export off"),
        "export_on": N_("Switch export on"),
    },
    "drift_action": {
        "restore": N_("Restore the wanted limit"),
        "adopt": N_("Adopt the controller's limit"),
        "notify": N_("Only notify Home Assistant"),
    },
    "log_level": {
        "trace": N_("Trace (everything)"),
        "debug": N_("Debug"),
        "info": N_("Info (normal)"),
        "notice": N_("Notice"),
        "warning": N_("Warnings"),
        "error": N_("Errors only"),
        "fatal": N_("Fatal errors only"),
    },
}

# The Home Assistant connection's details on Diagnostics, by their keys.
HA_KEYS: Mapping[str, str] = {
    "via": N_("Reached through"),
    "connects": N_("Connections made"),
    "last_error": N_("Last error"),
    "ha_version": N_("Home Assistant version"),
    "since": N_("Connected since"),
    "language": N_("Language"),
}

# The demo simulator's misbehaviours, as its switches on Diagnostics name them.
FAULTS: Mapping[str, str] = {
    "short_answer": N_("short answer"),
    "zero_inverters": N_("zero inverters"),
    "bad_checksum": N_("bad checksum"),
    "wrong_echo": N_("wrong echo"),
    "nak": N_("nak"),
    "silence": N_("silence"),
    "reset": N_("reset"),
    "slow": N_("slow"),
    "split": N_("split"),
    "overload": N_("overload"),
    "ignore_writes": N_("ignore writes"),
    "drift": N_("drift"),
    "overshoot": N_("overshoot"),
}

# A failed result's headline, by the bit that explains it, most telling first.
HEADLINES: tuple[tuple[Feedback, str], ...] = (
    (Feedback.INVALID_INPUT, N_("Refused: not a valid value")),
    (Feedback.SOCKET_ERROR, N_("The controller cannot be reached")),
    (Feedback.TIMEOUT, N_("No answer from the controller")),
    (Feedback.CHECKSUM_ERROR, N_("The answer was garbled")),
    (Feedback.UNEXPECTED_PACKET, N_("The controller answered something unexpected")),
    (Feedback.GENERAL_ERROR, N_("Not carried out")),
    (Feedback.UNKNOWN_ERROR, N_("Something went wrong")),
)


def headline(feedback: int, tr: Translator) -> str:
    """A failed result in a few words (the bit itself goes in the detail line)."""
    for bit, words in HEADLINES:
        if feedback & bit:
            return tr.gettext(words)
    return tr.gettext(N_("Something went wrong"))


# A refused number's words, by the rule it broke: (headline, what to do).
REFUSALS: Mapping[Rule, tuple[str, str]] = {
    Rule.EMPTY: (N_("The field is empty"), N_("Type a number of kW, such as 2.5.")),
    Rule.NOT_A_NUMBER: (
        N_("“{typed}” is not a number"),
        N_("Type digits with a decimal comma or point, such as 2.5 or 2,5."),
    ),
    Rule.EXPONENT: (
        N_("“{typed}” is not written in plain digits"),
        N_("A number with an exponent is not taken: type the kW in digits, such as 2.5."),
    ),
    Rule.BELOW_MINIMUM: (
        N_("{value} kW is below the minimum of {bound} kW"),
        N_("An export limit cannot be negative."),
    ),
    Rule.ABOVE_MAXIMUM: (
        N_("{value} kW is above the maximum of {bound} kW"),
        N_("The maximum export limit is set in Setup → Limits."),
    ),
    Rule.ABOVE_CEILING: (
        N_("{value} kW is above the export ceiling of {bound} kW"),
        N_("The export ceiling is the grid contract's limit, set in Setup → Limits."),
    ),
}


def refusal_words(refusal: Refusal, tr: Translator) -> tuple[str, str]:
    """A refused input's headline, naming the rule it broke, and what to do instead."""
    headline_text, advice = REFUSALS[refusal.rule]
    value = tr.short(refusal.value) if refusal.value is not None else refusal.typed
    bound = tr.short(refusal.bound) if refusal.bound is not None else ""
    words = tr.gettext(headline_text).format(typed=refusal.typed, value=value, bound=bound)
    return words, tr.gettext(advice)


def mode_name(mode: str | None, tr: Translator) -> str:
    """The control mode's one name ("By value", "DRED", "RCR", "Off"), or a dash."""
    if mode is None:
        return "—"
    return tr.gettext(MODES[mode][0]) if mode in MODES else mode


def choice_label(key: str, choice: str, tr: Translator) -> str:
    """What a menu shows for one choice of an option."""
    return tr.gettext(CHOICES.get(key, {}).get(choice, choice))


# Keys with an underscore only: "host" and "port" are also plain words in messages.
_KEYS = re.compile(
    r"\b("
    + "|".join(sorted((k for k in OPTION_LABELS if "_" in k), key=len, reverse=True))
    + r")\b"
)


_EMPTY = re.compile(r",? got ''$")


def labelled(message: str, tr: Translator) -> str:
    """A message with every option key in it replaced by the option's label, and an empty
    input said as such (never "got ''")."""
    message = _EMPTY.sub(tr.gettext(N_("; the field is empty")), message)
    return _KEYS.sub(lambda m: tr.gettext(OPTION_LABELS[m.group(1)]), message)
