"""The panel's Home Assistant page: the mode, the entities, the scripts button and its answers.

The real adapter against a real Home Assistant is in tests/browser/test_homeassistant_browser.py;
here `tests.helpers.web.StandIn` takes the adapter's place to reach the answers a real one gives rarely (a
dropped connection, a user's edited script).
"""

from __future__ import annotations

from sec1000.options import Options
from sec1000.runtime import Runtime

from tests.helpers.web import ClientFactory, StandIn, panel


async def test_the_page_shows_the_mode_the_broker_and_the_entities(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime, home_assistant=StandIn([]))
    text = await (await client.get("/homeassistant")).text()
    assert 'data-mode="mqtt"' in text and "one device through MQTT" in text
    assert "127.0.0.1:1883" in text
    assert "<code>button.sec1000_export_enable</code>" in text
    assert 'aria-current="page">Home Assistant' in text


async def test_install_answers_each_scripts_outcome(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    side = StandIn(
        [
            {"entity_id": "script.sec1000_export_enable", "action": "created", "detail": ""},
            {
                "entity_id": "script.sec1000_set_export_limit",
                "action": "kept",
                "detail": "edited by the user",
            },
        ]
    )
    client = await panel(aiohttp_client, runtime, home_assistant=side)
    response = await client.post("/homeassistant/scripts", data={})
    text = await response.text()
    assert response.status == 200 and side.calls == 1
    assert 'data-script="script.sec1000_export_enable"' in text and "created" in text
    assert "edited by the user" in text


async def test_install_without_a_connection_says_why(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(
        aiohttp_client,
        runtime,
        home_assistant=StandIn(None, "Home Assistant is not connected (retrying)"),
    )
    text = await (await client.post("/homeassistant/scripts", data={})).text()
    assert "Not installed: Home Assistant is not connected (retrying)" in text


async def test_without_home_assistant_the_page_stands_and_install_says_so(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    page = await client.get("/homeassistant")
    assert page.status == 200
    assert "disabled" in await page.text()
    text = await (await client.post("/homeassistant/scripts", data={})).text()
    assert "No Home Assistant is configured." in text


async def test_the_password_is_masked_in_diagnostics_and_never_in_the_form(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    await runtime.apply_options(
        Options.from_mapping({"mqtt_password": "s3cret-pass"}, base=runtime.options)
    )
    client = await panel(aiohttp_client, runtime)
    diagnostics = await (await client.get("/diagnostics.json")).text()
    setup = await (await client.get("/setup")).text()
    assert "s3cret-pass" not in diagnostics and "**********" in diagnostics
    assert "s3cret-pass" not in setup
    # an empty password field keeps the saved one
    response = await client.post(
        "/setup",
        data={
            "step": "home_assistant",
            "entities": "auto",
            "mqtt_host": "",
            "mqtt_port": "1883",
            "mqtt_username": "",
            "mqtt_password": "",
        },
    )
    assert response.status == 200
    assert runtime.options.mqtt_password == "s3cret-pass"
    await client.post(
        "/setup",
        data={
            "step": "home_assistant",
            "entities": "mqtt",
            "mqtt_host": "broker.lan",
            "mqtt_port": "1884",
            "mqtt_username": "addons",
            "mqtt_password": "n3w",
        },
    )
    options = runtime.options
    assert (options.entities, options.mqtt_host, options.mqtt_port) == ("mqtt", "broker.lan", 1884)
    assert (options.mqtt_username, options.mqtt_password) == ("addons", "n3w")


async def test_bad_broker_values_are_refused_in_words(
    aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    client = await panel(aiohttp_client, runtime)
    before = runtime.options
    text = await (
        await client.post(
            "/setup",
            data={
                "step": "home_assistant",
                "entities": "carrier-pigeon",
                "mqtt_host": "bad host",
                "mqtt_port": "70000",
                "mqtt_username": "x\ny",
            },
        )
    ).text()
    assert "Not saved" in text
    assert "must be one of auto, mqtt, rest" in text
    assert "must be at most 65535" in text
    assert "line breaks" in text
    assert runtime.options == before
