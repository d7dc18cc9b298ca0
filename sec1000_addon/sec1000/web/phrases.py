"""The core's sentences in the page's language: results, reasons, refusals, errors, origins.

The core (operations, the guard, the watchdog, the policy, the link, the protocol) says what
happened in English, for the log, the events and the audit trail; it never depends on the
panel. The panel translates those sentences here, at its edge: each English sentence the core
makes is a template below (its variable parts in braces), and the catalogue translates the
template. A variable part named in `NESTED` is a sentence itself and is said in turn; a number
takes the language's decimal mark; `mode`, `origin` and `command` are named as the panel names
them. A sentence the table does not know is split at "; " and ": " and its parts are said; what
is still unknown stays as the core said it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from sec1000.commands import COMMANDS, OPTIONS_WRITE
from sec1000.web.i18n import DEFAULT, N_, Translator, translator
from sec1000.web.words import CHOICES, labelled, mode_name

# Who started a command or a write (`Origin.source`, the audit trail's origin before ":").
ORIGINS: Mapping[str, str] = {
    "panel": N_("panel"),
    "home_assistant": N_("Home Assistant"),
    "automation": N_("automation"),
    "mqtt": N_("MQTT"),
    "cli": N_("command line"),
    "poll": N_("timer"),
    "startup": N_("start"),
    "policy": N_("price policy"),
    "guard": N_("export guard"),
    "meter": N_("meter check"),
    "watchdog": N_("watchdog"),
    "grid_rule": N_("grid rule"),
    "ceiling": N_("ceiling"),
}

# Every sentence (or part of one) the core says, with its variable parts in braces.
TEMPLATES: tuple[str, ...] = (
    # protocol/errors.py: the feedback bits
    N_("OK"),
    N_("general error"),
    N_("unknown error"),
    N_("timeout: the device did not answer in time"),
    N_("unexpected packet from the device"),
    N_("checksum error"),
    N_("socket error: the device could not be reached"),
    N_("invalid input"),
    N_("waiting for the device"),
    N_("OK; input corrected within limits"),
    N_("unknown bits {bits}"),
    # protocol: malformed answers
    N_("response header is {n} bytes, expected 7"),
    N_("response announces {n} bytes, which no answer has"),
    N_("response announces {n} bytes but carries {m}"),
    N_("checksum {sent} does not match the bytes ({computed})"),
    N_("response starts {start}, expected 01 01"),
    N_("response echoes command {got}, expected {expected}"),
    N_("answer to {code} has {n} data bytes, expected {m}"),
    N_("device answered status {status}"),
    N_("unknown control mode byte {byte}"),
    N_("year {year} cannot be sent (2000-2255)"),
    # device/link.py
    N_("the device is busy: {n} commands are already waiting; try again later"),
    N_("no answer from {address} within {seconds} s"),
    N_("the device closed the connection without answering"),
    N_("answer cut short after {n} bytes"),
    N_("cannot talk to {address}: {error}"),
    N_("exchange with {address} failed: {error}"),
    N_("Connect call failed {address}"),
    N_("[Errno {n}] {error}"),
    N_("Connection refused"),
    N_("Connection reset by peer"),
    N_("No route to host"),
    N_("Network is unreachable"),
    N_("Name or service not known"),
    N_("Temporary failure in name resolution"),
    N_("not connected"),
    # commands.py and common/numbers.py: what a user typed
    N_("export limit {error}"),
    N_("export limit must be between {low} and {high} kW, got {got}"),
    N_("must be a number"),
    N_("must be a number, got {got}"),
    N_("must be a finite number, got {got}"),
    N_("must be a number such as 2.5 (plain digits), got {got}"),
    N_("must be a whole number, got {got}"),
    N_("must be true or false, got {got}"),
    N_("the field is empty"),
    # operations.py
    N_("unknown command {command}; known commands: {known}"),
    N_("unexpected error: {error}"),
    N_("the controller already holds it: nothing written"),
    N_("the controller already holds {write}: nothing written"),
    N_("refused: {reason}; nothing was sent"),
    N_("the mode Off (deactivated) would export without any limit, above"),
    N_("refused: {what} the export ceiling of {kw} kW (the grid contract); nothing was sent"),
    N_("{kw} kW is above"),
    N_(
        "refused: {kw} kW is above the maximum export limit of {maximum} kW (the options); "
        "nothing was sent"
    ),
    N_("{message} (rounded to {kw} kW: the controller takes 10 W steps)"),
    N_("export limit {limit} kW, mode {mode}, total capacity {capacity} kW"),
    N_("device clock set to {when}"),
    N_("telemetry read"),
    N_("the controller at {address} answered: grid {grid} kW, inverters {inverters} kW"),
    N_(
        "the export ceiling of {kw} kW needs the limiter: the mode cannot be deactivated while a ceiling is set"
    ),
    N_(
        "the export ceiling of {kw} kW needs the mode value: in mode {mode} the controller "
        "follows an outside signal that the add-on cannot hold under the ceiling"
    ),
    # limiter/writes.py
    N_("{kw} kW in mode {mode}"),
    N_("the controller holds {holds}, not {write}"),
    N_("{message} (capacity {held} kW, not {written} kW)"),
    N_("export limit set to {write}, confirmed by read-back"),
    N_("{message}; the device answered NAK to {n} packets, and took the write"),
    N_("{message} (written {n} times)"),
    N_("not written: {command} from {origin} replaced it while it waited for the controller"),
    N_("refused: the add-on is stopping; nothing is written now"),
    # limiter/guard.py
    N_("{holds} after a write that failed"),
    N_("the controller holds {holds}, not the wanted {wanted}"),
    N_("restored {write}"),
    N_("{message}; {write} confirmed"),
    N_(
        "the controller allows more than the export ceiling of {kw} kW: {write} written back at once"
    ),
    N_("the controller's settings are now the wanted state"),
    N_("cannot read the controller: {error}"),
    N_(
        "it came back {n} times within an hour: something else writes to the controller "
        "(installer tool, SolarGo, a second integration). The add-on stops restoring until "
        "you set the limit again"
    ),
    N_("restore"),
    N_("adopt"),
    N_("notify"),
    # limiter/watchdog.py
    N_("refused: the export limiter restore is still pending; retry once it is confirmed"),
    N_(
        "export watchdog reset: the limiter was off for {seconds} s and is back on, "
        "confirmed by read-back"
    ),
    N_("the add-on is stopping: the limiter is not turned off now"),
    N_("a reset export watchdog is already running"),
    N_("the export limiter restore from an earlier reset is still pending"),
    N_(
        "refused: the last exchange with the device failed ({error}); the limiter is not "
        "turned off while the device is not answering"
    ),
    N_("read-back: {message}"),
    N_("the limiter restored"),
    N_("the limiter was off for {seconds} s and is back on: {write}"),
    N_(
        "the limiter restore is not confirmed ({error}); it is retried in the background "
        "until the device confirms it"
    ),
    N_("restoring the export limiter failed: {error}; retrying in {seconds} s"),
    N_("restoring the export limiter left off by an earlier run"),
    # pricing: the policy's reasons and the forecast's source
    N_("the price policy is off"),
    N_("a manual export command holds until the override ends"),
    N_("no price yet"),
    N_("no current price for {minutes} min"),
    N_("{why}: export off (price_stale_action)"),
    N_("{why}: export on (price_stale_action)"),
    N_("{why}: the controller is left as it is"),
    N_("price {price} is below {low}: export off"),
    N_("price {price} is at or above {high}: export on"),
    N_("{reason}, but back below {low} at {time}, within the dwell"),
    N_("{reason}: export stays off"),
    N_("price {price} is between {low} and {high}: export stays on"),
    N_("price {price} is between {low} and {high}: export stays off"),
    N_("{reason}, after {minutes} min off (the dwell)"),
    N_("{reason}; the last write did not go through: tried again at {time}"),
    N_("{reason}; the write did not go through: tried again soon"),
    N_("forecast from the price sensor's attributes"),
    N_("forecast from {source}"),
    N_("current price only: {why}"),
    N_("the price sensor's attributes hold no forecast"),
    N_("{service} was not called"),
    N_("{service} failed: {error}"),
    # options.py: the warnings Setup shows
    N_(
        "polling faster than every {seconds} s can make the controller stop answering until it is power-cycled"
    ),
    N_(
        "{kw} kW is not a whole number of the controller's 10 W steps: the ceiling in force "
        "is {ceiling} kW (rounded down)"
    ),
    N_(
        "0 does not turn the check off while an export ceiling is set: the controller's limit "
        "and mode are still read every {option} ({seconds} s)"
    ),
    N_("the controller is checked every {seconds} s at most often; 0 turns the periodic check off"),
    N_(
        "the maximum export limit ({maximum} kW) is above the total capacity of the PV system "
        "({capacity} kW)"
    ),
    # ha/: the connection to Home Assistant, the MQTT broker, the scripts' install
    N_("not started"),
    N_("stopped"),
    N_("connecting"),
    N_("connected"),
    N_("setting up"),
    N_("connection lost"),
    N_("connection lost during set-up"),
    N_("not configured"),
    N_("token refused ({error})"),
    N_("unreachable ({error})"),
    N_("set-up after connecting failed ({error})"),
    N_("waiting for Home Assistant to start ({state})"),
    N_("retrying in {seconds} s"),
    N_("Cannot connect to host {address}"),
    N_("Cannot connect to host {address} ssl:default [{error}]"),
    N_("Cannot connect to host {address} ssl:{ssl} [{error}]"),
    N_("timed out"),
    N_("connected to {address}"),
    N_("no broker at {address}: {error}"),
    N_("Broker({address} from the Supervisor)"),
    N_("Broker({address} from options)"),
    N_(
        "The entities are set to MQTT, but no broker was found: install and start the "
        "Mosquitto broker add-on, or set the MQTT broker on the panel's Setup page. The add-on "
        "looks again every minute; meanwhile the SEC1000 entities are missing."
    ),
    N_(
        "The add-on cannot reach the MQTT broker {address} ({error}). It keeps retrying; the "
        "SEC1000 entities are unavailable meanwhile."
    ),
    N_("created"),
    N_("updated"),
    N_("unchanged"),
    N_("kept"),
    N_("failed"),
    N_("edited by the user"),
    N_(
        "written, but Home Assistant does not load it: configuration.yaml needs "
        "`script: !include scripts.yaml`"
    ),
    # web/auth.py and web/signin.py: signing in through Home Assistant
    N_("This sign-in was not started here, or its cookie is missing."),
    N_("The sign-in state does not match: the request was not ours."),
    N_("The sign-in took too long and has expired."),
    N_("Home Assistant did not sign you in: {error}."),
    N_("The sign-in code is missing or malformed."),
    N_(
        "Home Assistant refused several sign-ins in a row; wait a quarter of an hour. (Each "
        "refusal counts as a failed login of this add-on in Home Assistant.)"
    ),
    N_("Only Home Assistant administrators may use this panel."),
    N_("Home Assistant does not let this user sign in: {detail}."),
    N_("Home Assistant refused the sign-in code ({detail})."),
    N_("Home Assistant did not accept the token it issued."),
    N_("Home Assistant closed the connection."),
    N_("Home Assistant did not say who signed in."),
    # options.py: what Setup refuses
    N_("is not a known option"),
    N_("must be a list of controllers"),
    N_("controller {n}: the name {name} is taken"),
    N_(
        "controller {n} ({name}): {other} is at {address} already; each controller takes the "
        "one connection its device allows"
    ),
    N_("must be an object with name and host"),
    N_(
        "must be 1 to 20 small letters, digits or '_' (not first, not last, not two in a row: "
        "Home Assistant's entity ids refuse them)"
    ),
    N_("{name} is the first controller's name"),
    N_("is not a key of a controller ({keys})"),
    N_("must not be empty"),
    N_("must be true or false"),
    N_("must be one of {choices}"),
    N_("must be text"),
    N_("must be at most {n} characters"),
    N_("must not hold line breaks or control characters"),
    N_("must be an entity id of at most {n} characters"),
    N_("must be an entity id such as sensor.electricity_price, or empty"),
    N_("must be a whole number"),
    N_("must be at least {n}"),
    N_("must be at most {n}"),
    N_(
        "must be an IP address whose zone (after %) names a network interface: 1 to 15 "
        "letters, digits, '_', '.' or '-'"
    ),
    N_(
        "must be an IP address (192.168.1.200, fd00::1) or a host name of letters, digits, "
        "hyphens and dots, without spaces"
    ),
    N_(
        "must be at least {option} ({value}): export comes back on only at a price at or "
        "above the one that switched it off"
    ),
    N_("the price policy needs a price sensor"),
    N_("the minimum export limit ({minimum} kW) is above the maximum ({maximum} kW)"),
    N_(
        "the maximum export limit ({maximum} kW) is above the export ceiling of {kw} kW "
        "(the grid contract)"
    ),
    N_(
        "the maximum export limit ({maximum} kW) is written in the controller's 10 W steps as "
        "{written} kW, above the export ceiling in force of {ceiling} kW ({kw} kW rounded down "
        "to 10 W steps)"
    ),
)

# Variable parts that are sentences themselves.
NESTED = frozenset({"error", "message", "reason", "why", "what", "write", "holds", "wanted"})
_EMPTY = re.compile(r",? got ''$")  # an empty field, as the number parser says it
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FIELD = re.compile(r"\{(\w*)\}")
# Commands by name, with the words the panel shows for them.
_COMMAND_LABELS = {
    **{spec.name.value: spec.label for spec in (*COMMANDS, OPTIONS_WRITE)},
    # the audit trail's own entries (the guard's and the meter check's)
    "restore": N_("Restore"),
    "ceiling": N_("Restore under the ceiling"),
    "adopt": N_("Adopt"),
    "drift": N_("Drift"),
    "overshoot": N_("Over the limit"),
}


# Each choice of a menu option (the control mode, the entities...) by its words.
_CHOICE_WORDS = {choice: words for menu in CHOICES.values() for choice, words in menu.items()}


def _compile(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    for field in _FIELD.finditer(template):
        parts.append(re.escape(template[last : field.start()]))
        parts.append(f"(?P<{field.group(1)}>.+?)")
        last = field.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts), re.DOTALL)


# The most literal templates first: "{message}; {write} confirmed" must not take what a
# sentence of its own says better.
_COMPILED = tuple(
    (template, _compile(template))
    for template in sorted(TEMPLATES, key=lambda t: len(_FIELD.sub("", t)), reverse=True)
)


def origin(source: str | None, tr: Translator) -> str:
    """Who started it, in words: "panel (anna)", "price policy", "Home Assistant (automation)"."""
    if not source:
        return ""
    head, sep, user = source.partition(" (")
    if not sep:
        head, sep, user = source.partition(":")
        user = f"{user})" if sep else ""
    words = ORIGINS.get(head)
    named = tr.gettext(words) if words is not None else head
    if not user:
        return named
    user = user.removesuffix(")")
    inner = ORIGINS.get(user)
    return f"{named} ({tr.gettext(inner) if inner is not None else user})"


def command(name: str, tr: Translator) -> str:
    """A command by the words the panel shows for it (its name when it has none)."""
    label = _COMMAND_LABELS.get(name)
    return tr.gettext(label) if label else name


def _part(name: str, value: str, tr: Translator, depth: int) -> str:
    if name in NESTED:
        return _say(value, tr, depth + 1)
    if name == "mode":
        return mode_name(value, tr) if value in ("value", "dred", "rcr", "deactivated") else value
    if name == "origin":
        return origin(value, tr)
    if name == "command":
        return command(value, tr)
    if name == "choices":  # a menu's choices, each by the words the menu shows
        return ", ".join(tr.gettext(_CHOICE_WORDS.get(c, c)) for c in value.split(", "))
    if _NUMBER.fullmatch(value):
        return value.replace(".", tr.decimal)
    return value


def _say(message: str, tr: Translator, depth: int = 0) -> str:
    if depth > 6 or not message.strip():
        return message
    for template, pattern in _COMPILED:
        match = pattern.fullmatch(message)
        if match is None:
            continue
        parts: Mapping[str, str] = {
            name: _part(name, value, tr, depth) for name, value in match.groupdict().items()
        }
        return tr.gettext(template).format(**parts)
    for separator in ("; ", ": "):
        if separator in message:
            head, tail = message.split(separator, 1)
            return f"{_say(head, tr, depth + 1)}{separator}{_say(tail, tr, depth + 1)}"
    return message


@functools.lru_cache(maxsize=2048)
def _cached(message: str, lang: str) -> str:
    return _say(message, translator(lang))


def say(message: str | None, tr: Translator) -> str:
    """A sentence of the core in the page's language, option keys named by their labels."""
    if not message:
        return ""
    message = _EMPTY.sub("; the field is empty", message)
    if tr.lang != DEFAULT:
        message = _cached(message, tr.lang)
    return labelled(message, tr)
