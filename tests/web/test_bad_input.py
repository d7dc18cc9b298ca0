"""The panel and hostile requests: every bad body gets 400 and words, never 500, never an echo."""

from __future__ import annotations

import pytest
from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

from tests.helpers.web import ClientFactory, panel

ENDPOINTS = ("/command", "/setup", "/test-connection", "/simulator", "/homeassistant/scripts")
FORM = "application/x-www-form-urlencoded"
# (content type, body): bodies that no form parser can read.
BROKEN_BODIES = [
    (FORM, b"command=export_enable&limit=\xff\xfe"),  # not UTF-8
    (f"{FORM}; charset=klingon", b"command=export_enable"),  # unknown charset
    ("multipart/form-data", b"--x\r\n\r\nvalue\r\n--x--\r\n"),  # no boundary
    (
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--x--\r\n",  # no field name
    ),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("content_type", "body"), BROKEN_BODIES)
async def test_an_unreadable_form_is_a_400_in_words(
    aiohttp_client: ClientFactory,
    runtime: Runtime,
    simulator: SimulatorServer,
    endpoint: str,
    content_type: str,
    body: bytes,
) -> None:
    client = await panel(aiohttp_client, runtime, simulator)
    before = runtime.options
    response = await client.post(endpoint, data=body, headers={"Content-Type": content_type})
    text = await response.text()
    assert response.status == 400, (endpoint, content_type, text)
    assert "form" in text.lower()
    assert "Traceback" not in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert runtime.options == before
    assert simulator.requests() == []


@pytest.mark.parametrize("host", ["host\x00name", "a" * 64 + ".lan", "192.168.1..200"])
async def test_test_connection_names_a_bad_host_and_sends_nothing(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer, host: str
) -> None:
    client = await panel(aiohttp_client, runtime, simulator)
    response = await client.post("/test-connection", data={"host": host, "port": "1234"})
    text = await response.text()
    assert response.status == 200  # the form's answer, not a 400 the browser logs
    assert "Check the address: Controller address must be an IP address" in text
    assert host not in text
    assert simulator.requests() == []


async def test_an_unknown_command_is_not_echoed(
    aiohttp_client: ClientFactory, runtime: Runtime, simulator: SimulatorServer
) -> None:
    client = await panel(aiohttp_client, runtime, simulator)
    response = await client.post("/command", data={"command": "<script>alert(1)</script>"})
    text = await response.text()
    assert response.status == 400
    assert "<script>" not in text and "alert" not in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/live?page=<b>x</b>"), ("GET", "/nowhere"), ("POST", "/setup")],
)
async def test_every_response_says_nosniff(
    aiohttp_client: ClientFactory,
    runtime: Runtime,
    simulator: SimulatorServer,
    method: str,
    path: str,
) -> None:
    client = await panel(aiohttp_client, runtime, simulator)
    response = await client.request(method, path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<b>" not in await response.text()
