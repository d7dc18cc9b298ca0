"""Signing in to the panel with a real Home Assistant Core's login page, in Chromium.

The panel listens on 127.0.0.2 (another loopback address than Home Assistant's 127.0.0.1, so
another site, as a panel on a LAN address next to Home Assistant is) with `setup_auth`. The
owner the harness onboarded types the username and password on Core's own /auth/authorize
page; the panel exchanges the code with that Core.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect
from sec1000.plant import Plant
from sec1000.runtime import Runtime, file_saver
from sec1000.simulator import SimulatorServer
from sec1000.web import create_app
from sec1000.web.auth import setup_auth
from sec1000.web.session import SECRET_FILE, SESSION_COOKIE, Signer
from sec1000.web.signin import HomeAssistantSignIn

from tests.ha_harness import OWNER, HomeAssistant
from tests.helpers.browser import DESKTOP, command_within_ms, settle, shot
from tests.helpers.ports import free_port
from tests.helpers.served_panel import panel_options
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.homeassistant]

PANEL_HOST = "127.0.0.2"
CSRF_FROM_SIGNOUT_PAGE = """
() => fetch("auth/signout").then((r) => r.text())
  .then((t) => t.match(/name="csrf_token" value="([^"]+)"/)[1])
"""
# The template change proposed for base.html, applied to the live page: HTMX 4 sends the
# header with every request of an element inside <body>.
ADD_CSRF_HEADER = """
(token) => document.body.setAttribute("hx-headers:inherited", JSON.stringify({"X-CSRF-Token": token}))
"""


@dataclass
class SignedPanel:
    """The panel with sign-in, on its own loopback address."""

    url: str
    runtime: Runtime
    data_dir: Path


async def _site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@contextlib.asynccontextmanager
async def serve_signed_panel(tmp_path: Path, ha: HomeAssistant) -> AsyncIterator[SignedPanel]:
    """Simulator → core → panel with sign-in through `ha`, on real loopback sockets."""
    simulator = await SimulatorServer(slow_delay=0.4).start()
    options = panel_options(simulator.port)
    save = file_saver(tmp_path / "options.json")
    await save(options)
    data_dir = tmp_path / "data"
    runtime = Runtime(options, data_dir, save_options=save)
    app = create_app(Plant.of_one(runtime))
    port = free_port()
    url = f"http://{PANEL_HOST}:{port}/"
    setup_auth(app, HomeAssistantSignIn(ha_url=ha.url, public_url=url), data_dir=data_dir)
    runner = await _site(app, PANEL_HOST, port)
    await runtime.start()
    try:
        yield SignedPanel(url, runtime, data_dir)
    finally:
        await runtime.stop()
        await runner.cleanup()
        await simulator.stop()


@contextlib.asynccontextmanager
async def serve_attacker(target: str) -> AsyncIterator[str]:
    """Another origin of the same site (127.0.0.2, another port): a page that posts a form to
    the panel as soon as it loads. SameSite=Lax still sends the cookie within a site."""
    page = (
        '<!doctype html><title>prize</title><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{target}command">'
        '<input type="hidden" name="command" value="set_datetime"></form>'
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    port = free_port()
    runner = await _site(app, PANEL_HOST, port)
    try:
        yield f"http://{PANEL_HOST}:{port}/"
    finally:
        await runner.cleanup()


async def refresh_tokens_for(ha: HomeAssistant, client_id: str) -> list[dict[str, object]]:
    """The owner's refresh tokens in Home Assistant issued to `client_id`."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ha.websocket_url) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": ha.token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": "auth/refresh_tokens"})
        answer = await ws.receive_json()
    return [token for token in answer["result"] if token.get("client_id") == client_id]


async def sign_in_on_home_assistant(page: Page, panel: SignedPanel, ha: HomeAssistant) -> None:
    """Open the panel, land on Home Assistant's login page, type the owner's password."""
    await page.goto(panel.url)
    await page.wait_for_url(f"{ha.url}/auth/authorize?**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["client_id"] == [panel.url]
    assert query["redirect_uri"] == [f"{panel.url}auth/callback"]
    await page.locator("input[name=username]").fill(OWNER["username"])
    await page.locator("input[name=password]").fill(OWNER["password"])
    await shot(page, "auth-home-assistant-login")
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(panel.url)


def session_of(cookies: list[dict[str, object]], data_dir: Path) -> dict[str, object]:
    """The panel's session cookie, checked: HttpOnly, SameSite=Lax, signed, no token inside."""
    [cookie] = [c for c in cookies if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    secret = bytes.fromhex((data_dir / SECRET_FILE).read_text().strip())
    payload = Signer(secret).unsign("session", str(cookie["value"]))
    assert payload is not None
    assert set(payload) == {"u", "n", "e", "s"}  # user id, name, expiry, session id
    return payload


async def new_page(browser: Browser) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


async def refused_without_csrf(context: BrowserContext, panel: SignedPanel, token: str) -> None:
    """POSTs with the session cookie but no token and not from the panel's page are refused."""
    done = len(panel.runtime.state.commands)
    # Refused: a POST with the session cookie but neither token nor Origin / Fetch Metadata.
    refused = await context.request.post(f"{panel.url}command", form={"command": "set_datetime"})
    assert refused.status == 403
    assert "CSRF" in await refused.text()
    # Refused: a form another origin of the same site posts (the cookie does go along).
    attack_page = await context.new_page()
    async with serve_attacker(panel.url) as attacker:
        async with attack_page.expect_response(f"{panel.url}command") as answer:
            await attack_page.goto(attacker)
        assert (await answer.value).status == 403
    await settle(0.5)
    assert len(panel.runtime.state.commands) == done  # nothing ran
    # The same request with the token goes through.
    accepted = await context.request.post(
        f"{panel.url}command",
        form={"command": "get_export_limit"},
        headers={"X-CSRF-Token": token},
    )
    assert accepted.status == 200
    await eventually(lambda: len(panel.runtime.state.commands) == done + 1, what="the command")


async def sign_out(page: Page, panel: SignedPanel, ha: HomeAssistant) -> None:
    """Sign out on the panel's page: the next visit goes to Home Assistant's login page."""
    await page.goto(f"{panel.url}auth/signout")
    await page.locator("#auth-signout").click()
    await expect(page.locator("#auth-message")).to_contain_text("signed out")
    assert [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE] == []
    await page.goto(panel.url)
    await page.wait_for_url(f"{ha.url}/auth/authorize?**")


async def test_sign_in_with_home_assistant_then_posts_need_the_panels_page_or_token(
    browser: Browser, home_assistant: HomeAssistant, tmp_path: Path
) -> None:
    async with serve_signed_panel(tmp_path, home_assistant) as panel:
        context, page, errors = await new_page(browser)
        await sign_in_on_home_assistant(page, panel, home_assistant)

        # Back on the panel, signed in: the dashboard with live values.
        await page.wait_for_function("window.sec1000Live && window.sec1000Live.updates > 0")
        await expect(page.locator("#flow-title")).to_be_visible()
        await expect(page.locator("#live-indicator")).to_have_attribute("data-mode", "live")
        await shot(page, "auth-signed-in-dashboard")
        payload = session_of(await context.cookies(), panel.data_dir)  # type: ignore[arg-type]
        assert payload["n"] == OWNER["name"]
        # Home Assistant keeps no refresh token for the panel: it was revoked after the check.
        assert await refresh_tokens_for(home_assistant, panel.url) == []

        # One POST from the page: a button (the status shows "ok" from the start: the record
        # of the command says it ran).
        done = len(panel.runtime.state.commands)
        await page.locator("#btn-get_export_limit").click()
        await eventually(lambda: len(panel.runtime.state.commands) > done, what="the command")
        await expect(page.locator("#status-get_export_limit")).to_have_attribute(
            "data-kind", "ok", timeout=command_within_ms()
        )
        assert panel.runtime.state.commands[-1].source == f"panel ({OWNER['name']})"

        # The proposed base.html change: HTMX sends the token as a header with every request.
        token = await page.evaluate(CSRF_FROM_SIGNOUT_PAGE)
        await page.evaluate(ADD_CSRF_HEADER, token)
        done = len(panel.runtime.state.commands)
        async with page.expect_request(lambda r: r.method == "POST") as posted:
            await page.locator("#btn-set_datetime").click()
        assert (await (await posted.value).all_headers())["x-csrf-token"] == token
        await eventually(lambda: len(panel.runtime.state.commands) > done, what="set_datetime")
        assert panel.runtime.state.commands[-1].command == "set_datetime"
        await expect(page.locator("#status-set_datetime")).to_have_attribute(
            "data-kind", "ok", timeout=command_within_ms()
        )
        await refused_without_csrf(context, panel, token)

        await sign_out(page, panel, home_assistant)
        assert errors == []
        await context.close()


async def test_a_garbage_callback_is_a_clear_400_page(
    browser: Browser, home_assistant: HomeAssistant, tmp_path: Path
) -> None:
    async with serve_signed_panel(tmp_path, home_assistant) as panel:
        context, page, errors = await new_page(browser)
        await page.goto(panel.url)
        await page.wait_for_url(f"{home_assistant.url}/auth/authorize?**")
        state = parse_qs(urlsplit(page.url).query)["state"][0]
        # A code Home Assistant never issued, with the right state: Core refuses it.
        response = await page.goto(f"{panel.url}auth/callback?code={'0' * 32}&state={state}")
        assert response is not None and response.status == 400
        await expect(page.locator("#auth-message")).to_contain_text("refused the sign-in code")
        assert [c for c in await context.cookies() if c["name"] == SESSION_COOKIE] == []
        # A state that is not ours.
        response = await page.goto(f"{panel.url}auth/callback?code=abc&state=forged")
        assert response is not None and response.status == 400
        await shot(page, "auth-bad-callback")
        assert re.search(r"not started here|does not match", await page.inner_text("#auth-message"))
        assert errors == []
        await context.close()
