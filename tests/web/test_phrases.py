"""The core's sentences in German and Slovak: made by the core's own functions (feedback bits,
malformed answers, the policy's reasons, the options' refusals and warnings), said by the panel
without an English word left; numbers with a decimal comma; origins and commands in words."""

from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

import pytest
from sec1000.options import Options, OptionsError
from sec1000.pricing.decide import PolicyMemory, decide
from sec1000.protocol import Command, Sec1000Error, build_response, describe_feedback
from sec1000.protocol.frames import parse_response
from sec1000.runtime import Runtime
from sec1000.web.i18n import translator
from sec1000.web.phrases import TEMPLATES, command, origin, say

from tests.helpers.english import english_words
from tests.helpers.web import ClientFactory, StandIn, panel

LANGS = ("de", "sk")
NOW = 1_780_000_000.0


def refusals() -> list[str]:
    """What the options refuse, as the core says it."""
    out = []
    for values in (
        {"max_export_limit": "abc"},
        {"min_export_limit": -1},
        {"scan_interval": 2.5},
        {"min_export_limit": 5, "max_export_limit": 4},
        {"max_export_limit": 12, "total_capacity": 10},
        {"price_policy": True},
        {"export_off_below": 0.2, "export_on_above": 0.1},
        {"host": "not a host"},
        {"export_limit_control_mode": "sometimes"},
        {"three_phase_sum": "perhaps"},
        {"price_entity": "no id"},
    ):
        with pytest.raises(OptionsError) as refused:
            Options.from_mapping({"host": "10.0.0.9", **values})
        out += refused.value.errors.values()
    return out


def malformed() -> list[str]:
    """What the codec says of malformed answers."""
    good = build_response(int(Command.READ_EXPORT_SETTINGS), bytes(12))
    out = []
    for raw in (
        good[:5],
        good[:-1] + bytes([good[-1] ^ 1]),
        good.replace(b"\x01\x01", b"\x02\x01", 1),
        build_response(0x0B, bytes(12)),
        build_response(int(Command.READ_EXPORT_SETTINGS), bytes(3)),
    ):
        with pytest.raises(Sec1000Error) as failed:
            parse_response(raw, Command.READ_EXPORT_SETTINGS, 12)
        out.append(str(failed.value))
    return out


def core_sentences() -> list[str]:
    policy = Options.from_mapping(
        {"host": "10.0.0.9", "price_policy": True, "price_entity": "sensor.price"}
    )
    warned = Options.from_mapping(
        {
            "host": "10.0.0.9",
            "scan_interval": 2,
            "export_ceiling_kw": 3.555,
            "max_export_limit": 3.5,
            "verify_interval": 0,
        }
    )
    return [
        *(describe_feedback(value) for value in (0, 1, 2, 4, 8, 16, 32, 64, 128, 129, 136, 96)),
        decide(Options.from_mapping({"host": "10.0.0.9"}), None, PolicyMemory(), NOW).reason,
        decide(policy, None, PolicyMemory(), NOW).reason,
        decide(policy, None, PolicyMemory(override_until=NOW + 60), NOW).reason,
        *warned.warnings().values(),
        *refusals(),
        *malformed(),
        "refused: 9 kW is above the maximum export limit of 8 kW (the options); nothing was sent",
        "export limit set to 3.50 kW in mode value, confirmed by read-back",
        "no answer from 192.168.1.200:1234 within 2 s",
        "cannot talk to '127.0.0.1':1: [Errno 111] Connect call failed ('127.0.0.1', 1)",
        "price -0.05 is below 0: export off",
        "price 0.12 is between 0 and 0.2: export stays on; the write did not go through: "
        "tried again soon",
        "Home Assistant refused the sign-in code (invalid_grant).",
        "The sign-in took too long and has expired.",
    ]


@pytest.mark.parametrize("lang", LANGS)
def test_every_sentence_the_core_makes_is_said_without_english(lang: str) -> None:
    tr = translator(lang)
    left = {
        sentence: found
        for sentence in core_sentences()
        if (found := english_words([say(sentence, tr)], lang))
    }
    assert left == {}


def test_numbers_take_the_decimal_comma_and_english_stays_as_the_core_said_it() -> None:
    sentence = "export limit set to 3.50 kW in mode value, confirmed by read-back"
    assert say(sentence, translator("en")) == sentence
    german = say(sentence, translator("de"))
    assert (
        german
        == "Einspeisegrenze auf 3,50 kW im Modus Nach Wert gesetzt, durch Rücklesen bestätigt"
    )
    host = say("no answer from 192.168.1.200:1234 within 2.5 s", translator("sk"))
    assert host == "žiadna odpoveď z 192.168.1.200:1234 do 2,5 s"  # an address keeps its dots
    assert say("something nobody said before", translator("de")) == "something nobody said before"


def test_an_empty_field_and_an_option_key_are_said_in_words() -> None:
    de = translator("de")
    assert say("export limit must be a number, got ''", de) == (
        "Einspeisegrenze: muss eine Zahl sein; das Feld ist leer"
    )
    assert "Preissensor" in say("the price policy needs a price sensor", de)
    assert "price_stale_action" not in say("no price yet: export off (price_stale_action)", de)


def test_origins_and_commands_are_named_in_words() -> None:
    de, sk = translator("de"), translator("sk")
    assert origin("policy", de) == "Preisregel"
    assert origin("panel (Anna)", de) == "Panel (Anna)"
    assert origin("panel:Anna", sk) == "panel (Anna)"  # the audit trail's spelling
    assert origin("home_assistant:automation", de) == "Home Assistant (Automatisierung)"
    assert origin("someone_new", de) == "someone_new"
    assert command("set_export_limit", de) == "Einspeisegrenze setzen"
    assert command("restore", sk) == "Obnovenie"
    assert command("not_a_command", de) == "not_a_command"


def test_every_template_has_distinct_words_to_match() -> None:
    assert len(set(TEMPLATES)) == len(TEMPLATES)
    assert all(template.strip() == template for template in TEMPLATES)


class _Text(HTMLParser):
    """A page's text and its accessible names, as a user reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")
        self.texts += [v for k, v in attrs if k in ("title", "aria-label", "placeholder") and v]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


class _Unwell(StandIn):
    """Home Assistant's side as it reads while things go wrong: a lost connection, a broker
    that cannot be reached, a script the user edited."""

    language = "en"

    def diagnostics(self) -> Mapping[str, Any]:
        return {
            "connected": False,
            "status": "unreachable (Cannot connect to host supervisor:80); retrying in 4 s",
            "via": "supervisor",
            "connects": 3,
            "last_error": "connection lost",
            "ha_version": "2026.12.0",
            "since": NOW,
            "language": self.language,
            "entities": {
                "option": "auto",
                "mode": "mqtt",
                "broker": "Broker(core-mosquitto:1883 from the Supervisor)",
                "mqtt": {"status": "no broker at core-mosquitto:1883: timed out"},
                "problem": "The entities are set to MQTT, but no broker was found: install and "
                "start the Mosquitto broker add-on, or set the MQTT broker on the panel's Setup "
                "page. The add-on looks again every minute; meanwhile the SEC1000 entities are "
                "missing.",
            },
        }


@pytest.mark.parametrize("lang", LANGS)
async def test_home_assistants_side_is_said_without_english(
    aiohttp_client: ClientFactory, runtime: Runtime, lang: str
) -> None:
    side = _Unwell([{"entity_id": "script.x", "action": "kept", "detail": "edited by the user"}])
    side.language = lang  # Home Assistant's language: the panel's
    client = await panel(aiohttp_client, runtime, home_assistant=side)
    headers = {"Accept-Language": "en-US"}
    found = {}
    for path in ("/homeassistant", "/diagnostics"):
        reader = _Text()
        reader.feed(await (await client.get(path, headers=headers)).text())
        if english := english_words(reader.texts, lang):
            found[path] = english
    assert found == {}
