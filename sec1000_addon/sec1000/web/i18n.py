"""The panel's languages: one catalogue per language, chosen per request, numbers in its style.

A catalogue is `locale/<lang>.json`: {English text: translation}, or for a text with a count
{English singular: [one form per plural class]}. A text missing from it stays English. Python
code marks its words with `N_()` and translates them where they are shown; templates use
`{% trans %}` and `_()` (Jinja2's own i18n extension).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from sec1000.web.keys import HA_STATUS

LOCALE = Path(__file__).parent / "locale"
COOKIE = "sec1000_lang"  # the language chosen in the panel's menu, per browser
DEFAULT = "en"
# Each language with its own name, as the language menu shows it.
LANGUAGES = {"en": "English", "de": "Deutsch", "sk": "Slovenčina"}
DECIMAL_COMMA = frozenset({"de", "sk"})
# How a date is written: 2026-12-07, 07.12.2026, 7. 12. 2026.
DATE_FORMATS = {
    "en": "{y:04d}-{m:02d}-{d:02d}",
    "de": "{d:02d}.{m:02d}.{y:04d}",
    "sk": "{d}. {m}. {y}",
}
# Accept-Language: "de-AT,de;q=0.9,en;q=0.8"
_RANGE = re.compile(r"\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*")


def N_(text: str) -> str:
    """Mark a text for the catalogue; it is translated where it is shown."""
    return text


def plural_class(lang: str, count: float) -> int:
    """The plural form for a count: Slovak has three (1, 2-4, other), English and German two."""
    if count == 1:
        return 0
    if lang == "sk" and count in (2, 3, 4):
        return 1
    return 2 if lang == "sk" else 1


@dataclass(frozen=True, slots=True)
class Translator:
    """One language: its catalogue and its number style."""

    lang: str
    messages: Mapping[str, Any]

    def gettext(self, text: str) -> str:
        """The translation of `text`, or `text`."""
        found = self.messages.get(text)
        return found if isinstance(found, str) and found else text

    def ngettext(self, singular: str, plural: str, count: float) -> str:
        """The form of `singular`/`plural` for `count`."""
        forms = self.messages.get(singular)
        index = plural_class(self.lang, count)
        if isinstance(forms, list) and len(forms) > index and forms[index]:
            return str(forms[index])
        return singular if count == 1 else plural

    @property
    def decimal(self) -> str:
        """The decimal mark of this language."""
        return "," if self.lang in DECIMAL_COMMA else "."

    def number(self, value: float | None, digits: int = 2) -> str:
        """A number with a fixed count of decimals in this language's style, or a dash."""
        if value is None:
            return "—"
        return f"{value:.{digits}f}".replace(".", self.decimal)

    def short(self, value: float) -> str:
        """A number without trailing zeros ("%g"), in this language's style."""
        return f"{value:g}".replace(".", self.decimal)

    def forms(self, singular: str, plural: str) -> list[str]:
        """Every plural form of a text in this language, in the order of `plural_class`."""
        count = 3 if self.lang == "sk" else 2
        found = self.messages.get(singular)
        if isinstance(found, list) and len(found) == count and all(found):
            return [str(form) for form in found]
        return [singular, plural] if count == 2 else [singular, plural, plural]

    def date(self, day: dt.date) -> str:
        """A date in this language's order: 2026-12-07, 07.12.2026, 7. 12. 2026."""
        pattern = DATE_FORMATS.get(self.lang, DATE_FORMATS[DEFAULT])
        return pattern.format(y=day.year, m=day.month, d=day.day)

    def moment(self, when: dt.datetime) -> str:
        """A date and a time of day (HH:MM) in this language's style."""
        return f"{self.date(when)} {when:%H:%M}"


@functools.cache
def translator(lang: str) -> Translator:
    """The translator of a shipped language (English for any other)."""
    if lang not in LANGUAGES or lang == DEFAULT:
        return Translator(DEFAULT, {})
    data = json.loads((LOCALE / f"{lang}.json").read_text(encoding="utf-8"))
    return Translator(lang, data)


ENGLISH = translator(DEFAULT)
for _lang in LANGUAGES:  # read every catalogue at import: a request never waits for the disk
    translator(_lang)


def _shipped(lang: str | None) -> str | None:
    base = (lang or "").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


def choose(
    accept_language: str | None, home_assistant: str | None = None, chosen: str | None = None
) -> str:
    """The page's language: the one chosen in the panel's menu (its cookie), else Home
    Assistant's, else the first shipped language the browser asks for, else English."""
    for lang in (chosen, home_assistant):
        shipped = _shipped(lang)
        if shipped is not None:
            return shipped
    ranked: list[tuple[float, int, str]] = []
    for n, item in enumerate((accept_language or "").split(",")):
        match = _RANGE.fullmatch(item)
        if match is None:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        if quality > 0:
            ranked.append((-quality, n, match.group(1).lower()))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT


def of_context(context: jinja2.runtime.Context) -> Translator:
    """The translator a render was given as `tr` (English without one)."""
    tr = context.get("tr")
    return tr if isinstance(tr, Translator) else ENGLISH


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, text: str) -> str:
    return of_context(context).gettext(text)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
    return of_context(context).ngettext(singular, plural, count)


def install(env: jinja2.Environment) -> None:
    """Give an environment with the i18n extension the translator of each render's `tr`."""
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]


def request_translator(request: web.Request) -> Translator:
    """The request's language: the one chosen in the panel's menu, else Home Assistant's, else
    the browser's, else English."""
    ha_language = request.app[HA_STATUS]().get("language")
    home_assistant = ha_language if isinstance(ha_language, str) else None
    chosen = request.cookies.get(COOKIE)
    return translator(choose(request.headers.get("Accept-Language"), home_assistant, chosen))
