"""English left on a German or Slovak page: the words of every English text the add-on can
show (the catalogues' keys and every string of the package), found in a page's texts, except
names, units, ids and the words German or Slovak share with English."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sec1000_addon" / "sec1000"
LOCALE = PACKAGE / "web" / "locale"
WORD = re.compile(r"[A-Za-zÀ-žß]+(?:'[a-z]+)?")
# What a page shows as one token: a word, a compound ("Live-Aktualisierung"), an id or a number.
TOKEN = re.compile(r"[\w'\u2019.-]+")
HEX_BYTES = re.compile(r"(?:[0-9a-f]{2}\s*)+")  # a raw frame
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w*\}")

# Names, units and ids: the same in every language.
NAMES = frozenset(
    {
        "sec1000",
        "goodwe",
        "home",
        "assistant",
        "mqtt",
        "rest",
        "mosquitto",
        "octopus",
        "energy",
        "nord",
        "pool",
        "supervisor",
        "dred",
        "rcr",
        "api",
        "csv",
        "json",
        "jsonl",
        "tcp",
        "ip",
        "ha",
        "kw",
        "kwh",
        "w",
        "v",
        "a",
        "s",
        "ms",
        "min",
        "h",
        "hex",
        "pv",
        "eur",
        "ct",
        "ok",
        "nordpool",
        "entsoe",
        "tibber",
        "awattar",
        "add-on",
        "add-ons",
        "rx",
        "tx",
        "nak",
        "solargo",
        "message",
        "english",
        "anna",
        "barn",
        "deutsch",
        "slovenčina",
        "demand",
        "response",
        "enabled",
        "device",
    }
)
# Words that are German (or Slovak) too, as the translations use them.
SHARED = {
    "de": frozenset(
        {
            "panel",
            "minute",
            "an",
            "in",
            "ins",
            "so",
            "was",
            "do",
            "bit",
            "bits",
            "broker",
            "bytes",
            "controller",
            "controllers",
            "debug",
            "demo",
            "details",
            "echo",
            "info",
            "integration",
            "limit",
            "minimum",
            "maximum",
            "max",
            "name",
            "option",
            "port",
            "sensor",
            "solar",
            "start",
            "status",
            "trace",
            "watchdog",
            "reset",
            "automation",
            "plus",
            "normal",
            "script",
            "feedback",
            "version",
            "via",
            "phase",
            "negative",
            "ids",
            "supervisors",
            "simulators",
        }
    ),
    "sk": frozenset(
        {
            "panel",
            "tie",
            "a",
            "to",
            "so",
            "do",
            "za",
            "bit",
            "broker",
            "demo",
            "limit",
            "info",
            "maximum",
            "minimum",
            "max",
            "port",
            "reset",
            "status",
            "trace",
            "watchdog",
            "feedback",
            "version",
            "via",
            "interval",
            "percent",
            "entity",
        }
    ),
}


def _strings(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield " ".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )


@functools.cache
def english_vocabulary() -> frozenset[str]:
    """Every word of every English text the add-on has: catalogue keys and package strings."""
    texts: list[str] = []
    for path in LOCALE.glob("*.json"):
        texts += json.loads(path.read_text(encoding="utf-8"))
    for path in PACKAGE.rglob("*.py"):
        texts += _strings(ast.parse(path.read_text(encoding="utf-8")))
    for path in (PACKAGE / "web" / "templates").glob("*.html"):
        texts.append(re.sub(r"<[^>]*>|\{[{%#].*?[}%#]\}", " ", path.read_text(encoding="utf-8")))
    words = set()
    for text in texts:
        for word in WORD.findall(PLACEHOLDER.sub(" ", text)):
            if len(word) > 1 and not word.isupper():
                words.add(word.lower())
    return frozenset(words)


def english_words(texts: Iterable[str], lang: str) -> dict[str, str]:
    """{English word: the text it was found in} for the texts of a page in `lang`."""
    vocabulary = english_vocabulary() - NAMES - SHARED[lang]
    found: dict[str, str] = {}
    for text in texts:
        if HEX_BYTES.fullmatch(text.strip()):
            continue
        for found_token in TOKEN.findall(text):
            token = found_token.strip("'\u2019.-")
            if any(c.isdigit() or c in "_." for c in token) or token.lower() in NAMES:
                continue  # an id, a number, an address, a name
            # A compound is English only when every part is ("Live-Aktualisierung" is not).
            parts = [w for w in WORD.findall(token) if not w.isupper() and len(w) > 1]
            if parts and all(w.lower() in vocabulary for w in parts):
                found.setdefault(token, text[:120])
    return found
