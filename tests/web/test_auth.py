"""Sign-in through Home Assistant (no Supervisor): redirects, the callback, cookies and CSRF.

The panel is the real app from `create_app` with `setup_auth`; Home Assistant is a FAKE here
(`FakeHomeAssistant`), an aiohttp app on loopback answering like Core's /auth/token,
/auth/revoke and /api/websocket. The real Core's login page is driven in
tests/browser/test_auth_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from sec1000.plant import Plant
from sec1000.runtime import Runtime
from sec1000.web import create_app
from sec1000.web.auth import STATE_COOKIE, _next_path, needs_auth, setup_auth
from sec1000.web.session import SECRET_FILE, SESSION_COOKIE, Signer, _b64
from sec1000.web.signin import HomeAssistantSignIn

from tests.helpers.ports import free_port
from tests.helpers.waiting import eventually
from tests.helpers.web import ClientFactory

PANEL_URL = "http://127.0.0.1:8099/"  # where no request of the test goes

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = bytes(range(32))
ANNA = {"id": "a1b2c3", "name": "Anna", "is_admin": True}
BOB = {"id": "d4e5f6", "name": "Bob", "is_admin": False}
HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class FakeHomeAssistant:
    """A FAKE of Home Assistant Core's sign-in endpoints, for handler tests (not Home Assistant).

    POST /auth/token exchanges a code issued by `issue()` for the client_id it was issued to,
    once (else 400 "Invalid code", as Core answers); GET /api/websocket does the auth handshake
    and answers `auth/current_user`; POST /auth/revoke records the refresh token.
    """

    codes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)  # every token handed out
    token_requests: int = 0
    revoked: list[str] = field(default_factory=list)

    def issue(self, client_id: str, user: dict[str, Any]) -> str:
        """A code, as Core's login flow would hand it to the browser."""
        code = secrets.token_hex(16)
        self.codes[code] = (client_id, user)
        return code

    def app(self) -> web.Application:
        """The fake's routes."""
        app = web.Application()
        app.router.add_post("/auth/token", self.token)
        app.router.add_post("/auth/revoke", self.revoke)
        app.router.add_get("/api/websocket", self.websocket)
        return app

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        found = self.codes.pop(str(form.get("code")), None)
        if (
            form.get("grant_type") != "authorization_code"
            or found is None
            or found[0] != form.get("client_id")
        ):
            return web.json_response(
                {"error": "invalid_request", "error_description": "Invalid code"}, status=400
            )
        access, refresh = secrets.token_hex(24), secrets.token_hex(24)
        self.access[access] = found[1]
        self.issued += [access, refresh]
        return web.json_response(
            {
                "access_token": access,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "expires_in": 1800,
            }
        )

    async def revoke(self, request: web.Request) -> web.Response:
        self.revoked.append(str((await request.post()).get("token")))
        return web.Response()

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "auth_required", "ha_version": "fake"})
        user = self.access.get((await ws.receive_json()).get("access_token"))
        if user is None:
            await ws.send_json({"type": "auth_invalid", "message": "Invalid access token"})
            await ws.close()
            return ws
        await ws.send_json({"type": "auth_ok", "ha_version": "fake"})
        async for message in ws:
            data = json.loads(message.data)
            if data.get("type") == "auth/current_user":
                result = {**user, "is_owner": False, "credentials": [], "mfa_modules": []}
                await ws.send_json(
                    {"id": data["id"], "type": "result", "success": True, "result": result}
                )
        return ws


@dataclass
class Panel:
    """The signed-in panel under test, its fake Home Assistant and its URLs."""

    client: TestClient[Any, Any]
    ha: FakeHomeAssistant
    ha_url: str
    base: str  # the panel's URL as the test client sees it: the client_id


@pytest.fixture
async def fake_ha(aiohttp_server: ServerFactory) -> tuple[FakeHomeAssistant, str]:
    """A fake Home Assistant on loopback and its URL."""
    ha = FakeHomeAssistant()
    server = await aiohttp_server(ha.app())
    return ha, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def panel(
    aiohttp_client: ClientFactory,
    runtime: Runtime,
    fake_ha: tuple[FakeHomeAssistant, str],
    tmp_path: Path,
) -> Panel:
    """The panel with sign-in through the fake Home Assistant."""
    ha, ha_url = fake_ha
    app = create_app(Plant.of_one(runtime))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    setup_auth(
        app,
        HomeAssistantSignIn(ha_url=ha_url, public_url=url),
        data_dir=tmp_path / "auth",
        secret=SECRET,
    )
    client = await aiohttp_client(TestServer(app, port=port))
    return Panel(client, ha, ha_url, str(client.make_url("/")))


def mint(value: dict[str, Any], purpose: str = "session", secret: bytes = SECRET) -> str:
    """A cookie value signed like the panel signs it."""
    return Signer(secret).sign(purpose, value)


def session_cookie(user_id: str = "a1b2c3", name: str = "Anna", **extra: Any) -> str:
    return mint({"u": user_id, "n": name, "e": int(time.time()) + 3600, "s": "sid-1", **extra})


async def sign_in(panel: Panel, path: str = "/", user: dict[str, Any] = ANNA) -> str:
    """The whole flow against the fake: page → authorize URL → callback; the Location after."""
    start = await panel.client.get(path, headers=HTML, allow_redirects=False)
    assert start.status == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    code = panel.ha.issue(query["client_id"][0], user)
    done = await panel.client.get(
        "/auth/callback",
        params={"code": code, "state": query["state"][0]},
        allow_redirects=False,
    )
    assert done.status == 302, await done.text()
    return done.headers["Location"]


async def csrf_token(panel: Panel) -> str:
    """The session's token, as the sign-out page's form carries it."""
    html = await (await panel.client.get("/auth/signout")).text()
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def signed_in_cookies(panel: Panel) -> list[str]:
    return [c.value for c in panel.client.session.cookie_jar if c.key == SESSION_COOKIE]


# -- who needs it


@pytest.mark.parametrize(
    ("host", "supervised", "expected"),
    [
        ("127.0.0.1", False, False),
        ("127.0.0.53", False, False),
        ("::1", False, False),
        ("[::1]", False, False),
        ("localhost", False, False),
        ("LOCALHOST", False, False),
        ("::ffff:127.0.0.1", False, False),
        ("0.0.0.0", False, True),
        ("", False, True),
        ("::", False, True),
        ("192.168.1.10", False, True),
        ("fe80::1", False, True),
        ("nas.lan", False, True),
        ("0.0.0.0", True, False),
        ("192.168.1.10", True, False),
        ("127.0.0.1", True, False),
    ],
)
def test_needs_auth_truth_table(host: str, supervised: bool, expected: bool) -> None:
    assert needs_auth(host, supervised) is expected


def test_setup_auth_refuses_a_supervised_panel(runtime: Runtime, tmp_path: Path) -> None:
    app = create_app(Plant.of_one(runtime), supervised=True)
    with pytest.raises(ValueError, match="Supervisor"):
        setup_auth(
            app,
            HomeAssistantSignIn(ha_url="http://127.0.0.1:8123", public_url=PANEL_URL),
            data_dir=tmp_path,
            secret=SECRET,
        )


# -- signed out


async def test_a_page_redirects_to_home_assistants_login_with_client_id_redirect_and_state(
    panel: Panel,
) -> None:
    response = await panel.client.get("/setup?x=1", headers=HTML, allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{panel.ha_url}/auth/authorize"
    )
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == panel.base
    # IndieAuth: the redirect_uri has the client_id's scheme, host and port (and prefix).
    assert query["redirect_uri"] == panel.base + "auth/callback"
    assert len(query["state"]) >= 32
    state = response.cookies[STATE_COOKIE]
    assert state["httponly"] and state["samesite"] == "Lax" and state["path"] == "/"
    # The state cookie is signed and carries the same state and the page to return to.
    payload = Signer(SECRET).unsign("state", state.value)
    assert payload is not None
    assert payload["n"] == query["state"] and payload["next"] == "/setup?x=1"
    assert response.headers["Cache-Control"] == "no-cache"


async def test_a_browser_navigation_redirects_and_everything_else_gets_401(
    panel: Panel,
) -> None:
    client = panel.client
    navigate = {"Sec-Fetch-Mode": "navigate", "Accept": "*/*"}
    assert (await client.get("/", headers=navigate, allow_redirects=False)).status == 302
    for path, headers in [
        ("/", {}),  # no browser headers: not a page view
        ("/", {**HTML, "HX-Request": "true"}),
        ("/live?page=dashboard&since=0", {"Sec-Fetch-Mode": "cors", **HTML}),
        ("/api/state", {}),
        ("/diagnostics.json", {}),
    ]:
        response = await client.get(path, headers=headers, allow_redirects=False)
        assert response.status == 401, path
        assert "Not signed in" in await response.text()
    response = await client.post("/command", data={"command": "set_datetime"})
    assert response.status == 401
    assert "sign in with Home Assistant" in await response.text()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws?page=dashboard&since=0")
    assert refused.value.status == 401


async def test_static_files_stay_open(panel: Panel) -> None:
    response = await panel.client.get("/static/panel.css")
    assert response.status == 200
    assert "max-age" in response.headers["Cache-Control"]


# -- signing in


async def test_sign_in_returns_to_the_page_and_keeps_no_token(panel: Panel) -> None:
    location = await sign_in(panel, "/diagnostics")
    assert location == panel.base + "diagnostics"
    page = await panel.client.get("/diagnostics", allow_redirects=False)
    assert page.status == 200
    assert "Diagnostics" in await page.text()
    [cookie] = signed_in_cookies(panel)
    payload = Signer(SECRET).unsign("session", cookie)
    assert payload is not None
    assert set(payload) == {"u", "n", "e", "s"}
    assert payload["u"] == ANNA["id"] and payload["n"] == "Anna"
    assert time.time() + 6 * 86400 < payload["e"] <= time.time() + 7 * 86400 + 5
    # Neither token is in the cookie, and the refresh token was revoked at once.
    assert len(panel.ha.issued) == 2
    assert all(token not in cookie for token in panel.ha.issued)
    assert panel.ha.revoked == [panel.ha.issued[1]]
    # The state cookie is gone after use.
    assert STATE_COOKIE not in {c.key for c in panel.client.session.cookie_jar}


async def test_a_non_admin_is_refused_as_under_the_supervisor(panel: Panel) -> None:
    start = await panel.client.get("/", headers=HTML, allow_redirects=False)
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    code = panel.ha.issue(query["client_id"][0], BOB)
    response = await panel.client.get(
        "/auth/callback", params={"code": code, "state": query["state"][0]}
    )
    assert response.status == 403
    assert "administrators" in await response.text()
    assert signed_in_cookies(panel) == []
    assert panel.ha.revoked == [panel.ha.issued[1]]


# -- garbage on the callback


async def start_state(panel: Panel) -> str:
    start = await panel.client.get("/", headers=HTML, allow_redirects=False)
    return parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]


async def test_a_callback_with_a_bad_state_is_400_and_home_assistant_is_not_asked(
    panel: Panel,
) -> None:
    await start_state(panel)
    code = panel.ha.issue(panel.base, ANNA)
    response = await panel.client.get("/auth/callback", params={"code": code, "state": "x" * 32})
    assert response.status == 400
    assert "state does not match" in await response.text()
    assert panel.ha.token_requests == 0
    assert signed_in_cookies(panel) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "not started here"),
        ({"code": "abc", "state": "x"}, "not started here"),
        ({"error": "access_denied", "state": "x"}, "did not sign you in: access_denied"),
    ],
)
async def test_a_callback_without_our_state_cookie_is_400(
    panel: Panel, params: dict[str, str], message: str
) -> None:
    response = await panel.client.get("/auth/callback", params=params)
    assert response.status == 400
    assert message in await response.text()
    assert panel.ha.token_requests == 0


async def test_a_missing_or_malformed_code_is_400(panel: Panel) -> None:
    for code in ({}, {"code": "<script>"}):
        # a failed callback clears the state cookie: each try starts again
        state = await start_state(panel)
        response = await panel.client.get("/auth/callback", params={"state": state, **code})
        assert response.status == 400
        assert "code is missing or malformed" in await response.text()
    assert panel.ha.token_requests == 0


async def test_an_expired_state_is_400(panel: Panel) -> None:
    cookie = mint({"n": "s" * 32, "next": "/", "e": int(time.time()) - 1}, "state")
    response = await panel.client.get(
        "/auth/callback",
        params={"code": "abc", "state": "s" * 32},
        headers={"Cookie": f"{STATE_COOKIE}={cookie}"},
    )
    assert response.status == 400
    assert "expired" in await response.text()


async def test_a_code_home_assistant_refuses_is_400_and_nothing_is_stored(panel: Panel) -> None:
    state = await start_state(panel)
    response = await panel.client.get(
        "/auth/callback", params={"code": "0123456789abcdef", "state": state}
    )
    assert response.status == 400
    text = await response.text()
    assert "Home Assistant refused the sign-in code (Invalid code)" in text
    assert SESSION_COOKIE not in response.cookies
    assert signed_in_cookies(panel) == []
    assert panel.ha.token_requests == 1
    # Still signed out.
    assert (await panel.client.post("/command", data={"command": "set_datetime"})).status == 401


async def test_after_several_refusals_home_assistant_is_left_alone(panel: Panel) -> None:
    for attempt in range(6):
        state = await start_state(panel)
        response = await panel.client.get(
            "/auth/callback", params={"code": f"bad{attempt}", "state": state}
        )
        assert response.status == (400 if attempt < 5 else 429)
    assert panel.ha.token_requests == 5
    assert "wait a quarter of an hour" in await response.text()


async def test_home_assistant_unreachable_is_502_not_a_crash(
    aiohttp_client: ClientFactory, runtime: Runtime, tmp_path: Path
) -> None:
    app = create_app(Plant.of_one(runtime))
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    setup_auth(
        app, HomeAssistantSignIn(ha_url=url, public_url=PANEL_URL), data_dir=tmp_path, secret=SECRET
    )
    client = await aiohttp_client(app)
    start = await client.get("/", headers=HTML, allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    response = await client.get("/auth/callback", params={"code": "abc", "state": state})
    assert response.status == 502
    assert "Could not reach Home Assistant" in await response.text()


# -- forged, tampered and expired cookies


def forged_cookies() -> dict[str, str]:
    good = session_cookie()
    body, mac = good.rsplit(".", 1)
    other = Signer(b"another secret of 32 bytes......")
    return {
        "garbage": "garbage",
        "empty": "",
        "dot only": ".",
        "bad base64": "!!!.###",
        "other secret": other.sign("session", {"u": "x", "n": "Eve", "e": 2**40, "s": "s"}),
        "tampered": mint({"u": "x", "n": "Eve", "e": 2**40, "s": "s"}).split(".")[0] + "." + mac,
        "mac cut": f"{body}.{mac[:-2]}",
        "expired": mint({"u": "x", "n": "Eve", "e": int(time.time()) - 1, "s": "s"}),
        "wrong types": mint({"u": 1, "n": None, "e": "soon", "s": []}),
        "bool expiry": mint({"u": "x", "n": "Eve", "e": True, "s": "s"}),
        "not an object": f"{_b64(b'[1, 2]')}.{Signer(SECRET).mac('session', _b64(b'[1, 2]'))}",
        "state cookie as session": mint({"n": "x", "next": "/", "e": 2**40}, "state"),
        "huge": "A" * 5000,
    }


@pytest.mark.parametrize("kind", sorted(forged_cookies()))
async def test_a_forged_or_expired_cookie_means_signed_out(panel: Panel, kind: str) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={forged_cookies()[kind]}"}
    page = await panel.client.get("/", headers={**HTML, **cookie}, allow_redirects=False)
    assert page.status == 302, kind
    post = await panel.client.post("/command", data={"command": "set_datetime"}, headers=cookie)
    assert post.status == 401, kind


async def test_a_minted_session_is_accepted(panel: Panel) -> None:
    """The counterpart of the forgeries: the same format with the right secret works."""
    cookie = {"Cookie": f"{SESSION_COOKIE}={session_cookie()}"}
    assert (await panel.client.get("/", headers=cookie)).status == 200


# -- CSRF


async def test_a_post_without_csrf_is_403_and_nothing_runs(panel: Panel, runtime: Runtime) -> None:
    await sign_in(panel)
    for headers in (
        {},
        {"X-CSRF-Token": "wrong"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        # another port of the same host is same-site, not same-origin: SameSite=Lax lets the
        # cookie through, this check does not
        {"Sec-Fetch-Site": "same-site", "Origin": panel.base.rstrip("/")},
    ):
        response = await panel.client.post(
            "/command", data={"command": "set_datetime", "csrf_token": "nope"}, headers=headers
        )
        assert response.status == 403, headers
        assert "CSRF" in await response.text()
    assert list(runtime.state.commands) == []


@pytest.mark.parametrize("how", ["header", "form field", "Origin", "Sec-Fetch-Site"])
async def test_a_post_with_csrf_or_from_the_panels_own_page_reaches_the_handler(
    panel: Panel, runtime: Runtime, how: str
) -> None:
    await sign_in(panel)
    token = await csrf_token(panel)
    data = {"command": "get_export_limit"}
    headers = {"X-Remote-User-Display-Name": "Mallory"}  # a client's own claim is dropped
    if how == "header":
        headers["X-CSRF-Token"] = token
    elif how == "form field":
        data["csrf_token"] = token
    elif how == "Origin":
        headers["Origin"] = panel.base.rstrip("/")
    else:
        headers["Sec-Fetch-Site"] = "same-origin"
    response = await panel.client.post("/command", data=data, headers=headers)
    assert response.status == 200, await response.text()
    await eventually(lambda: len(runtime.state.commands) == 1, what="the command to finish")
    assert runtime.state.commands[0].source == "panel (Anna)"


async def test_a_signed_in_page_carries_its_users_name_and_csrf_token(
    panel: Panel, aiohttp_client: ClientFactory, runtime: Runtime
) -> None:
    await sign_in(panel)
    token = await csrf_token(panel)
    page = await (await panel.client.get("/setup")).text()
    assert f"""hx-headers:inherited='{{"X-CSRF-Token": "{token}"}}'""" in page
    assert re.search(r'id="signed-in"[^>]*>Anna</a>', page)
    unsigned = await aiohttp_client(create_app(Plant.of_one(runtime)))  # loopback: nobody signs in
    plain = await (await unsigned.get("/setup")).text()
    assert "X-CSRF-Token" not in plain and 'id="signed-in"' not in plain


async def test_a_post_to_an_unknown_command_with_csrf_gets_the_handlers_own_answer(
    panel: Panel,
) -> None:
    await sign_in(panel)
    token = await csrf_token(panel)
    response = await panel.client.post(
        "/command", data={"command": "format_disk"}, headers={"X-CSRF-Token": token}
    )
    assert response.status == 400
    assert "unknown command" in await response.text()


async def test_a_websocket_from_another_sites_page_is_refused(panel: Panel) -> None:
    await sign_in(panel)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await panel.client.ws_connect("/ws?page=dashboard&since=0", origin="http://evil.example")
    assert refused.value.status == 403
    ws = await panel.client.ws_connect("/ws?page=dashboard&since=0", origin=panel.base.rstrip("/"))
    await ws.close()


# -- signing out


async def test_sign_out_needs_csrf_and_forgets_the_session(panel: Panel) -> None:
    await sign_in(panel)
    page = await panel.client.get("/auth/signout")
    assert "Signed in as" in await page.text()
    assert (await panel.client.post("/auth/signout")).status == 403
    assert signed_in_cookies(panel) != []
    token = await csrf_token(panel)
    response = await panel.client.post("/auth/signout", data={"csrf_token": token})
    assert response.status == 200
    assert "You are signed out" in await response.text()
    assert signed_in_cookies(panel) == []
    assert (await panel.client.get("/", headers=HTML, allow_redirects=False)).status == 302


# -- the secret and the URLs


async def test_the_secret_is_created_0600_and_reused_so_sessions_survive_a_restart(
    aiohttp_client: ClientFactory, runtime: Runtime, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data-dir"
    first = create_app(Plant.of_one(runtime))
    setup_auth(
        first,
        HomeAssistantSignIn(ha_url="http://127.0.0.1:8123", public_url=PANEL_URL),
        data_dir=data_dir,
    )
    path = data_dir / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = bytes.fromhex(path.read_text().strip())
    assert len(secret) == 32
    assert [p.name for p in data_dir.iterdir()] == [SECRET_FILE]  # no temporary left
    cookie = Signer(secret).sign(
        "session", {"u": "a", "n": "Anna", "e": int(time.time()) + 60, "s": "s"}
    )
    second = create_app(Plant.of_one(runtime))
    setup_auth(
        second,
        HomeAssistantSignIn(ha_url="http://127.0.0.1:8123", public_url=PANEL_URL),
        data_dir=data_dir,
    )
    client = await aiohttp_client(second)
    assert (await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})).status == 200


def test_a_broken_secret_file_is_replaced_and_loose_permissions_tightened(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / SECRET_FILE
    path.write_text("not a secret")
    setup_auth(
        create_app(Plant.of_one(runtime)),
        HomeAssistantSignIn(ha_url="http://127.0.0.1:8123", public_url=PANEL_URL),
        data_dir=tmp_path,
    )
    replaced = path.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", replaced)
    os.chmod(path, 0o644)
    setup_auth(
        create_app(Plant.of_one(runtime)),
        HomeAssistantSignIn(ha_url="http://127.0.0.1:8123", public_url=PANEL_URL),
        data_dir=tmp_path,
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == replaced


async def test_public_url_sets_client_id_cookie_path_and_secure(
    aiohttp_client: ClientFactory, runtime: Runtime, tmp_path: Path
) -> None:
    app = create_app(Plant.of_one(runtime))
    setup_auth(
        app,
        HomeAssistantSignIn(
            ha_url="http://homeassistant:8123/api",
            public_url="https://panel.example.org/sec1000",
            ha_external_url="https://ha.example.org/",
        ),
        data_dir=tmp_path,
        secret=SECRET,
    )
    client = await aiohttp_client(app)
    response = await client.get("/", headers=HTML, allow_redirects=False)
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "ha.example.org" and location.path == "/auth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == ["https://panel.example.org/sec1000/"]
    assert query["redirect_uri"] == ["https://panel.example.org/sec1000/auth/callback"]
    state = response.cookies[STATE_COOKIE]
    assert state["path"] == "/sec1000/" and state["secure"]
    # Behind that proxy the browser's Origin is the public one.
    cookie = {"Cookie": f"{SESSION_COOKIE}={session_cookie()}"}
    ok = await client.post(
        "/command",
        data={"command": "format_disk"},
        headers={**cookie, "Origin": "https://panel.example.org"},
    )
    assert ok.status == 400  # the handler's answer: past the CSRF check


@pytest.mark.parametrize(
    ("ha_url", "host", "expected"),
    [
        ("http://127.0.0.1:8123", "192.168.1.10:8099", "http://192.168.1.10:8123"),
        ("http://localhost:8123/api", "nas.lan:8099", "http://nas.lan:8123"),
        ("http://127.0.0.1:8123", "[fd00::5]:8099", "http://[fd00::5]:8123"),
        ("http://127.0.0.1:8123", "127.0.0.1:8099", "http://127.0.0.1:8123"),
        ("http://192.168.1.5:8123", "192.168.1.10:8099", "http://192.168.1.5:8123"),
    ],
)
def test_home_assistants_url_for_the_browser(ha_url: str, host: str, expected: str) -> None:
    auth = HomeAssistantSignIn(ha_url=ha_url, public_url=f"http://{host}/")
    request = make_mocked_request("GET", "/", headers={"Host": "evil.example:666"})
    assert auth.ha_browser_url(request) == expected


async def test_a_forged_host_header_never_chooses_where_the_sign_in_goes(panel: Panel) -> None:
    response = await panel.client.get(
        "/", headers={**HTML, "Host": "evil.example"}, allow_redirects=False
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["client_id"] == [panel.base]
    assert query["redirect_uri"] == [f"{panel.base}auth/callback"]
    assert "evil.example" not in response.headers["Location"]


async def test_a_session_cookie_replayed_after_sign_out_is_refused(
    panel: Panel, tmp_path: Path
) -> None:
    await sign_in(panel)
    (cookie,) = signed_in_cookies(panel)
    token = await csrf_token(panel)
    out = await panel.client.post("/auth/signout", data={"csrf_token": token})
    assert out.status == 200
    replayed = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    again = await panel.client.get("/", headers={**HTML, **replayed}, allow_redirects=False)
    assert again.status == 302 and "/auth/authorize" in again.headers["Location"]
    kept = json.loads((tmp_path / "auth" / "signed_out.json").read_text())
    assert len(kept) == 1  # across a restart too


async def test_inside_a_frame_the_page_asks_for_a_tab_of_its_own(panel: Panel) -> None:
    """Home Assistant's login page refuses frames (a "Webpage" dashboard is one)."""
    headers = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}
    response = await panel.client.get("/", headers=headers, allow_redirects=False)
    assert response.status == 401
    html = await response.text()
    assert "tab of its own" in html
    assert f'href="{panel.base}" target="_blank"' in html
    assert STATE_COOKIE not in response.cookies


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/setup?step=connection", "setup?step=connection"),
        ("/setup%0D%0ALocation:%20x", "setup%0D%0ALocation:%20x"),
        ("/%2F%2Fevil.example", "%2F%2Fevil.example"),
    ],
)
async def test_the_page_to_return_to_stays_on_the_panel(
    panel: Panel, path: str, expected: str
) -> None:
    assert await sign_in(panel, path) == panel.base + expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("//evil.example/", "/"),
        ("/" + "a" * 1100, "/"),
        ("/\\evil.example", "/%5Cevil.example"),  # kept percent-encoded: a path on the panel
    ],
)
def test_a_strange_path_returns_to_the_dashboard(path: str, expected: str) -> None:
    assert _next_path(make_mocked_request("GET", path)) == expected
