"""Live state in words: a button's, the export switch's, a setup save's write; how long ago.

Each reads the state model (the feedback, the messages, the command log) and says it in the
page's language; whoever started the command (panel, Home Assistant, MQTT) is shown too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sec1000.commands import COMMANDS, OPTIONS_WRITE, CommandName
from sec1000.device.health import LinkHealth
from sec1000.options import Options
from sec1000.protocol import Feedback, describe_feedback
from sec1000.state import CommandRecord, StateModel
from sec1000.web.i18n import ENGLISH, N_, Translator
from sec1000.web.phrases import say
from sec1000.web.words import headline, refusal_words

TOGGLE_OPERATIONS = (CommandName.EXPORT_ENABLE, CommandName.EXPORT_DISABLE)
# The commands the export switch runs: its own element shows their progress.
TOGGLE_COMMANDS = (
    CommandName.EXPORT_ENABLE,
    CommandName.EXPORT_DISABLE,
    CommandName.EXPORT_TOGGLE,
)
FEEDBACK_BITS = tuple(bit for bit in Feedback if bit)  # every bit but WAITING, low to high


@dataclass(frozen=True, slots=True)
class Status:
    """A button's live state, decoded in words."""

    kind: str  # ready | waiting | ok | error
    word: str
    detail: str
    feedback: int | None = None
    at: float | None = None
    source: str | None = None
    age: str = ""  # "2 min ago"; the date once older than today
    stale: bool = False  # older than the next good read: shown faded
    invalid: bool = False  # the input was refused (feedback 128): the field is marked


def clock(at: float | None) -> str:
    """A wall time as HH:MM:SS (local), or a dash."""
    return "—" if at is None else dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


# How long ago, as the page shows it; panel.js keeps these words up to date between updates
# (`ago_words`: every plural form of each, for the page's language).
JUST_NOW_BELOW = 10  # seconds: younger than this is "just now"
# A value's age where it is shown; "old" once it is older than two reads (see `read_age`).
READ_AGE = {"read": N_("read {age}"), "old": N_("old: read {age}")}


def ago_words(tr: Translator = ENGLISH) -> dict[str, object]:
    """The words of an age in the page's language, with every plural form, for panel.js."""
    return {
        "lang": tr.lang,
        "now": tr.gettext(N_("just now")),
        "below": JUST_NOW_BELOW,
        "s": tr.forms("{n} s ago", "{n} s ago"),
        "min": tr.forms("{n} min ago", "{n} min ago"),
        "h": tr.forms("{n} h ago", "{n} h ago"),
        "read": tr.gettext(READ_AGE["read"]),
        "old": tr.gettext(READ_AGE["old"]),
    }


@dataclass(frozen=True, slots=True)
class ReadAge:
    """How old the values of a read are: its time, when they count as old, and in words."""

    at: float | None
    old_after: float  # seconds
    old: bool
    text: str


def read_age(at: float | None, now: float, old_after: float, tr: Translator = ENGLISH) -> ReadAge:
    """The age of values read at `at` (None: never read): old after `old_after` seconds, that
    is two reads and a request's timeout."""
    if at is None:
        return ReadAge(None, old_after, True, tr.gettext(N_("not read yet")))
    old = now - at > old_after
    words = tr.gettext(READ_AGE["old" if old else "read"])
    return ReadAge(at, old_after, old, words.format(age=age(at, now, tr, exact=old)))


def age(at: float, now: float, tr: Translator = ENGLISH, *, exact: bool = False) -> str:
    """How long ago: just now, seconds, minutes, hours today, then the date and time (`exact`:
    seconds also below "just now", for a value already old)."""
    seconds = max(0, round(now - at))
    then = dt.datetime.fromtimestamp(at)
    if seconds < JUST_NOW_BELOW and not exact:
        return tr.gettext(N_("just now"))
    if seconds < 60:
        return tr.ngettext("{n} s ago", "{n} s ago", seconds).format(n=seconds)
    if seconds < 3600:
        minutes = seconds // 60
        return tr.ngettext("{n} min ago", "{n} min ago", minutes).format(n=minutes)
    if then.date() == dt.datetime.fromtimestamp(now).date():
        hours = seconds // 3600
        return tr.ngettext("{n} h ago", "{n} h ago", hours).format(n=hours)
    return tr.moment(then)


def last_record(commands: Iterable[CommandRecord], names: Iterable[str]) -> CommandRecord | None:
    """The newest command log entry for any of `names`."""
    wanted = set(names)
    for record in reversed(list(commands)):
        if record.command in wanted:
            return record
    return None


def running(state: StateModel, operation: CommandName) -> bool:
    """True while the operation waits for the device (0 is also the value before any run)."""
    return state.feedback[operation] == Feedback.WAITING and operation in state.messages


def failure_detail(feedback: int, message: str, tr: Translator = ENGLISH) -> str:
    """The detail line of a failure: the bit in words, its number, and the operation's message."""
    detail = tr.gettext(N_("{words} (feedback {bit})")).format(
        words=say(describe_feedback(feedback), tr), bit=feedback
    )
    if not message or message == describe_feedback(feedback):
        return detail
    return f"{detail}: {say(message, tr)}"


def status(
    state: StateModel,
    operation: CommandName,
    tr: Translator = ENGLISH,
    now: float | None = None,
) -> Status:
    """The live state of one operation's button, whoever started it (panel, Home Assistant...)."""
    value = state.feedback[operation]
    message = state.messages.get(operation, "")
    if operation not in state.messages:
        return Status(
            "ready", tr.gettext(N_("Ready")), tr.gettext(N_("not run since the add-on started"))
        )
    if value == Feedback.WAITING:
        words = say(message, tr) or tr.gettext(N_("waiting for the device"))
        return Status("waiting", tr.gettext(N_("Waiting…")), words, 0)
    record = last_record(state.commands, [operation.value])
    at, source = (record.at, record.source) if record is not None else (None, None)
    when = age(at, time.time() if now is None else now, tr) if at is not None else ""
    # Faded once the controller gave a good read after it: old news, whatever it said.
    stale = at is not None and state.telemetry_at is not None and state.telemetry_at > at
    if value & Feedback.OK:
        corrected = value & Feedback.INVALID_INPUT
        word = tr.gettext(N_("OK, corrected") if corrected else N_("OK"))
        return Status("ok", word, say(message, tr), value, at, source, when, stale)
    if value & Feedback.INVALID_INPUT:
        # A refusal is about what was typed, not about the controller: it stays until the
        # user changes the field (panel.js), however many reads come after it.
        word, detail = refused_words(record, value, message, tr)
        return Status("error", word, detail, value, at, source, when, False, True)
    detail = failure_detail(value, message, tr)
    return Status("error", headline(value, tr), detail, value, at, source, when, stale)


def refused_words(
    record: CommandRecord | None, feedback: int, message: str, tr: Translator
) -> tuple[str, str]:
    """A refused input's headline and detail: the rule it broke when it is known."""
    if record is None or record.refusal is None or record.feedback != feedback:
        return headline(feedback, tr), failure_detail(feedback, message, tr)
    words, advice = refusal_words(record.refusal, tr)
    sent = tr.gettext(N_("Nothing was sent to the controller (feedback {feedback}).")).format(
        feedback=feedback
    )
    return words, f"{advice} {sent}"


# Every command that writes the limiter: a setup save's write is reported as one of them.
WRITE_COMMANDS = frozenset(spec.name.value for spec in (*COMMANDS, OPTIONS_WRITE) if spec.writes)


def applied(
    state: StateModel, started: float | None, tr: Translator = ENGLISH, now: float | None = None
) -> Status | None:
    """The first panel write that ended after `started` (a setup save), in words."""
    if started is None:
        return None
    record = next(
        (
            r
            for r in state.commands
            if r.at >= started and r.command in WRITE_COMMANDS and r.source.startswith("panel")
        ),
        None,
    )
    if record is None:
        words = tr.gettext(N_("Writing the new settings to the controller…"))
        return Status("waiting", tr.gettext(N_("Writing…")), words, 0)
    when = age(record.at, time.time() if now is None else now, tr)
    if record.feedback & Feedback.OK:
        done = tr.gettext(N_("Done: the controller holds the new settings."))
        return Status(
            "ok", tr.gettext(N_("Done")), done, record.feedback, record.at, record.source, when
        )
    detail = failure_detail(record.feedback, record.message, tr)
    word = tr.gettext(N_("Failed: {headline}")).format(headline=headline(record.feedback, tr))
    return Status("error", word, detail, record.feedback, record.at, record.source, when)


@dataclass(frozen=True, slots=True)
class Toggle:
    """The export ON/OFF switch: its state, what a press does, and how the last switch went."""

    kind: str  # on | off | unknown, with waiting / error on top
    checked: bool
    label: str
    command: str
    status: Status
    paused_until: str | None = None  # the price policy is paused by a press, until HH:MM


def toggle(
    state: StateModel, options: Options, tr: Translator = ENGLISH, now: float | None = None
) -> Toggle:
    """The export switch: on/off from the limit, waiting while a switch runs, else the last result."""
    export = state.export_state
    checked = bool(state.exporting)
    if export is None:
        label, command = tr.gettext(N_("Export ?")), "export_toggle"
    else:
        label = tr.gettext(N_("Export ON") if checked else N_("Export OFF"))
        command = "export_disable" if checked else "export_enable"
    paused = policy_paused_until(state)
    busy = [op for op in TOGGLE_OPERATIONS if running(state, op)]
    if busy:
        on = busy[-1] is CommandName.EXPORT_ENABLE
        word = tr.gettext(N_("Switching on…") if on else N_("Switching off…"))
        waiting = Status("waiting", word, say(state.messages.get(busy[-1], ""), tr))
        return Toggle("waiting", checked, label, command, waiting, paused)
    record = last_record(state.commands, [op.value for op in TOGGLE_OPERATIONS])
    if record is not None and not record.feedback & Feedback.OK:
        failed = status(state, CommandName(record.command), tr, now)
        return Toggle("error", checked, label, command, failed, paused)
    if export is None:
        detail = tr.gettext(N_("the export state is not known yet; a press reads it first"))
        unknown = Status("ready", tr.gettext(N_("Unknown")), detail)
        return Toggle("unknown", False, label, command, unknown, paused)
    limit = tr.number(state.export_limit_kw)
    if checked:
        text = N_("limit {limit} kW; off writes the minimum, {kw} kW")
        detail = tr.gettext(text).format(limit=limit, kw=tr.short(options.min_export_limit))
    else:
        text = N_("limit {limit} kW; on writes the maximum, {kw} kW")
        detail = tr.gettext(text).format(limit=limit, kw=tr.short(options.max_export_limit))
    when = age(record.at, time.time() if now is None else now, tr) if record else ""
    shown = Status(
        "ok" if record else "ready",
        tr.gettext(N_("On") if checked else N_("Off")),
        detail,
        record.feedback if record else None,
        record.at if record else None,
        record.source if record else None,
        when,
    )
    return Toggle("on" if checked else "off", checked, label, command, shown, paused)


def policy_paused_until(state: StateModel) -> str | None:
    """HH:MM until which a manual export command holds the price policy, or None."""
    policy = state.policy
    until = (policy.get("attributes") or {}).get("override_until")
    if policy.get("state") != "override" or not isinstance(until, str):
        return None
    return until[11:16]


# A controller that has never answered, by why the last try failed: the problem in plain words.
UNREACHABLE = {
    "refused": N_("The controller at {target} cannot be reached: nothing is listening there."),
    "lookup": N_("The controller's address {host} cannot be found on the network."),
    "unreachable": N_("The controller at {target} cannot be reached: no route leads there."),
    "closed": N_("The device at {target} closed the connection without answering."),
    "timeout": N_("Nothing answered at {target} in time."),
    "checksum_error": N_("The device at {target} does not answer as a SEC1000 does."),
    "unexpected_packet": N_("The device at {target} does not answer as a SEC1000 does."),
}
UNREACHABLE_OTHER = N_("The controller at {target} cannot be reached.")


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The controller has not answered since the start: why, in words, and the raw error."""

    words: str
    detail: str


def unreachable(
    health: LinkHealth, target: tuple[str, int], tr: Translator = ENGLISH
) -> Unreachable | None:
    """Why the controller has never answered, or None (it answered, or nothing was tried)."""
    if health.last_success is not None or not health.consecutive_failures:
        return None
    host, port = target
    text = UNREACHABLE.get(health.last_cause or "", UNREACHABLE_OTHER)
    words = tr.gettext(text).format(target=f"{host}:{port}", host=host)
    return Unreachable(words, health.last_error or "")


def blocked(state: StateModel, health: LinkHealth, tr: Translator = ENGLISH) -> str | None:
    """Why the dashboard's buttons cannot act now, or None: the controller has never answered,
    or has stopped answering (reads failed several times in a row)."""
    if not health.consecutive_failures:
        return None
    if health.last_success is None:
        return tr.gettext(
            N_("The buttons wait for the controller: it has not answered since the start.")
        )
    if state.telemetry_available:
        return None
    text = N_("The buttons wait for the controller: it has not answered since {at}.")
    return tr.gettext(text).format(at=clock(health.last_success))


def counters(health: LinkHealth, tr: Translator = ENGLISH) -> list[tuple[int, str, int]]:
    """Exchanges counted per feedback bit: (bit, words, count), every bit listed."""
    out = []
    for bit in FEEDBACK_BITS:
        name = (bit.name or str(int(bit))).lower()
        words = say(describe_feedback(int(bit)), tr)
        out.append((int(bit), words, health.counters.get(name, 0)))
    return out


def result_words(feedback: int, tr: Translator = ENGLISH) -> str:
    """A command's result in a few words."""
    if feedback & Feedback.OK:
        return tr.gettext(N_("OK, corrected") if feedback & Feedback.INVALID_INPUT else N_("OK"))
    return headline(feedback, tr)
