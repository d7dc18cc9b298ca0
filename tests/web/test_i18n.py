"""The panel's languages: every text shown is in each catalogue, languages are chosen from the
browser (then Home Assistant), numbers follow the language, and plurals follow Slovak's three."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from pathlib import Path

import jinja2
import pytest
from sec1000.commands import COMMANDS, OPTIONS_WRITE
from sec1000.web.i18n import LANGUAGES, LOCALE, choose, plural_class, translator
from sec1000.web.render import environment

WEB = Path(__file__).resolve().parents[2] / "sec1000_addon" / "sec1000" / "web"
PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
FORMS = {"de": 2, "sk": 3}


def template_texts() -> dict[str, tuple[str, ...] | None]:
    """Every text the templates translate: {msgid: plural forms or None}."""
    env = environment()
    found: dict[str, tuple[str, ...] | None] = {}
    for name in env.list_templates():
        source = (WEB / "templates" / name).read_text(encoding="utf-8")
        for _, _, message in env.extract_translations(source):
            strings = (
                tuple(m for m in message if isinstance(m, str))
                if isinstance(message, tuple)
                else ()
            )
            if len(strings) >= 2:  # ngettext: singular and plural
                found[strings[0]] = strings[:2]
            elif strings:
                found[strings[0]] = None
            elif isinstance(message, str):
                found[message] = None
    return found


def python_texts() -> dict[str, tuple[str, ...] | None]:
    """Every text the web modules (and the headline the panel shows) mark with N_() or pass to
    a translator."""
    found: dict[str, tuple[str, ...] | None] = {}
    for path in (*WEB.glob("*.py"), WEB.parent / "headline.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            texts = [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if name in ("N_", "gettext") and texts:
                found[texts[0]] = None
            elif name == "ngettext" and len(texts) >= 2:
                found[texts[0]] = tuple(texts[:2])
    return found


def registry_texts() -> set[str]:
    """The command registry's words the panel translates where it shows them (every command's
    label: the command log and the History name each command by it)."""
    out = {OPTIONS_WRITE.label}
    for spec in COMMANDS:
        out.add(spec.label)
        if spec.confirm is not None:
            out |= {spec.confirm.title, spec.confirm.risk, spec.confirm.action}
        out |= {param.label for param in spec.params if param.label}
    return out


def all_texts() -> dict[str, tuple[str, ...] | None]:
    texts = {**python_texts(), **template_texts()}
    for text in registry_texts():
        texts.setdefault(text, None)
    return texts


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


@pytest.mark.parametrize("lang", sorted(FORMS))
def test_every_text_of_the_panel_is_translated_with_its_placeholders(lang: str) -> None:
    catalogue = json.loads((LOCALE / f"{lang}.json").read_text(encoding="utf-8"))
    texts = all_texts()
    missing = sorted(text for text in texts if text not in catalogue)
    assert missing == [], f"{len(missing)} texts without a {lang} translation: {missing[:20]}"
    for text, plural in texts.items():
        shown = catalogue[text]
        if plural is None:
            assert isinstance(shown, str) and shown.strip(), text
            assert placeholders(shown) == placeholders(text), (text, shown)
        else:
            assert isinstance(shown, list) and len(shown) == FORMS[lang], (text, shown)
            for form in shown:
                assert placeholders(form) <= placeholders(text) | placeholders(plural[1]), form
    stale = sorted(set(catalogue) - set(texts))
    assert stale == [], f"{lang} translates texts the panel no longer shows: {stale[:20]}"


@pytest.mark.parametrize(
    ("header", "home_assistant", "chosen", "lang"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", None, None, "de"),
        ("fr-FR,sk;q=0.5,en;q=0.3", None, None, "sk"),
        ("en-US,en;q=0.9", "de", None, "de"),  # Home Assistant's before the browser's
        ("en-US", "de-CH", None, "de"),
        ("fr-FR", "de", None, "de"),
        ("sk-SK", "pt-BR", None, "sk"),  # Home Assistant's is not shipped: the browser's
        ("fr-FR", "pt-BR", None, "en"),
        ("", None, None, "en"),
        ("de;q=0, sk", None, None, "sk"),  # q=0 means "not this one"
        ("*;q=0.1, !!;q=x, sk-SK;q=0.2", None, None, "sk"),  # junk is skipped, never an error
        ("de-DE", "de", "sk", "sk"),  # the menu's choice (its cookie) before everything
        ("de-DE", "sk", "xx", "sk"),  # a cookie naming no shipped language is ignored
        ("sk", None, "en", "en"),
    ],
)
def test_the_language_is_the_menus_then_home_assistants_then_the_browsers_then_english(
    header: str, home_assistant: str | None, chosen: str | None, lang: str
) -> None:
    assert choose(header, home_assistant, chosen) == lang


def test_numbers_follow_the_language_and_slovak_has_three_plural_forms() -> None:
    assert translator("en").number(3.5) == "3.50"
    assert translator("de").number(3.5) == "3,50"
    assert translator("sk").short(0.05) == "0,05"
    day = dt.date(2026, 3, 7)
    assert [translator(lang).date(day) for lang in ("en", "de", "sk")] == [
        "2026-03-07",
        "07.03.2026",
        "7. 3. 2026",
    ]
    assert translator("de").forms("{n} s ago", "{n} s ago") == [
        "vor {n} Sekunde",
        "vor {n} Sekunden",
    ]
    assert len(translator("sk").forms("{n} min ago", "{n} min ago")) == 3
    assert [plural_class("sk", n) for n in (1, 2, 4, 5, 0)] == [0, 1, 1, 2, 2]
    assert [plural_class("de", n) for n in (1, 2, 5)] == [0, 1, 1]
    assert translator("xx").lang == "en"  # not shipped: English
    assert set(LANGUAGES) == {"en", "de", "sk"}


def test_a_template_renders_in_each_language_without_an_untranslated_marker() -> None:
    env = environment()
    page = env.from_string(
        "{{ _('Controls') }}|{% trans count=3 %}{{ count }} failed try in a row{% pluralize %}{{ count }} failed tries in a row{% endtrans %}"
    )
    assert page.render(tr=translator("en")) == "Controls|3 failed tries in a row"
    german = page.render(tr=translator("de"))
    slovak = page.render(tr=translator("sk"))
    assert german != slovak and "Controls" not in german and "Controls" not in slovak
    assert isinstance(env.undefined, type) and env.undefined is jinja2.StrictUndefined


def test_a_text_without_its_plural_forms_falls_back_to_the_english_ones() -> None:
    assert translator("sk").forms("{n} lamp", "{n} lamps") == ["{n} lamp", "{n} lamps", "{n} lamps"]
    assert translator("en").forms("{n} s ago", "{n} s ago") == ["{n} s ago", "{n} s ago"]
