"""Sign-in through Home Assistant for a panel reachable beyond loopback, without a Supervisor.

The middleware lets only signed-in users through (`session.py`: the signed cookie, CSRF) and
sends a browser without a session to Home Assistant's login page (`signin.py`: the OAuth
exchange); its routes finish and end a sign-in. The Supervisor's ingress does not use this
module: there Home Assistant has signed the user in already.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sec1000.web.controllers import chosen_controller
from sec1000.web.i18n import N_, request_translator
from sec1000.web.keys import SIGNED_IN, SUPERVISED, TEMPLATES, SignedIn
from sec1000.web.phrases import say
from sec1000.web.session import (
    SESSION_COOKIE,
    SESSION_LIFETIME,
    SIGNED_OUT_FILE,
    Session,
    Sessions,
    SignedOut,
    load_or_create_secret,
)
from sec1000.web.signin import HomeAssistantSignIn, SignInError, is_loopback

_LOGGER = logging.getLogger(__name__)

STATE_COOKIE = "sec1000_signin"
CALLBACK_PATH = "/auth/callback"
SIGNOUT_PATH = "/auth/signout"
# Home Assistant's authorization codes expire after 10 minutes as well.
SIGNIN_LIFETIME = 600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The auth pages live under /auth/, one level below the panel's root.
AUTH_ROOT = "../"
CODE_PATTERN = re.compile(r"[A-Za-z0-9._~\-]{1,512}")
LOCAL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
FRAME_DESTINATIONS = frozenset({"iframe", "frame"})

SIGNIN = web.AppKey("sec1000_signin", HomeAssistantSignIn)
SESSIONS = web.AppKey("sec1000_sessions", Sessions)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def needs_auth(listen_host: str, supervised: bool) -> bool:
    """True when the panel must sign users in: no Supervisor and a non-loopback listen address.

    An empty host, 0.0.0.0, :: and any host name other than localhost count as non-loopback.
    """
    return not supervised and not is_loopback(listen_host)


# ---------------------------------------------------------------- requests


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    tr = request_translator(request)
    text = request.app[TEMPLATES].get_template(template).render(root=AUTH_ROOT, tr=tr, **context)
    return web.Response(status=status, text=text, content_type="text/html")


def _message(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    link: str = AUTH_ROOT,
    new_tab: bool = False,
) -> web.Response:
    tr = request_translator(request)
    context = {
        "title": tr.gettext(title),
        "message": say(message, tr),
        "link": link,
        "new_tab": new_tab,
    }
    return _page(request, "auth_message.html", status, **context)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _wants_page(request: web.Request) -> bool:
    """True for a browser navigation to a page (worth a redirect to the login page)."""
    if request.method not in ("GET", "HEAD") or _is_websocket(request):
        return False
    if "HX-Request" in request.headers:
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("Accept", "")


def _next_path(request: web.Request) -> str:
    """Where to return after signing in: this request's path (still percent-encoded), if it
    is a plain local path."""
    path = request.rel_url.raw_path_qs
    if not LOCAL_PATH.fullmatch(path) or path.startswith("//") or len(path) > 1024:
        return "/"
    return path


def start_signin(request: web.Request) -> web.Response:
    """302 to Home Assistant's login page; a signed, short-lived cookie holds the state."""
    auth, sessions = request.app[SIGNIN], request.app[SESSIONS]
    nonce = secrets.token_urlsafe(24)
    client_id = auth.panel_base(request)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": client_id + CALLBACK_PATH.lstrip("/"),
            "state": nonce,
        }
    )
    location = f"{auth.ha_browser_url(request)}/auth/authorize?{query}"
    response = web.Response(status=302, headers={"Location": location}, text="Sign in first.\n")
    state = {"n": nonce, "next": _next_path(request), "e": int(time.time()) + SIGNIN_LIFETIME}
    sessions.set_cookie(
        response, STATE_COOKIE, sessions.signer.sign("state", state), SIGNIN_LIFETIME
    )
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Signed-in users only (static files and the sign-in routes excepted); CSRF on POSTs."""
    auth, sessions = request.app[SIGNIN], request.app[SESSIONS]
    path = request.path
    if path.startswith("/static/") or path in (CALLBACK_PATH, SIGNOUT_PATH):
        request[SIGNED_IN] = None
        return await handler(request)
    session = sessions.session(request)
    if session is None:
        if _wants_page(request) and request.headers.get("Sec-Fetch-Dest") in FRAME_DESTINATIONS:
            # Home Assistant's login page refuses to be framed (X-Frame-Options: SAMEORIGIN).
            message = N_("Open the panel in a tab of its own to sign in, then reload this page.")
            title = N_("Sign in first")
            return _message(request, 401, title, message, auth.panel_base(request), True)
        if _wants_page(request):
            return start_signin(request)
        return _text(401, "Not signed in: open the panel's page to sign in with Home Assistant.")
    if (
        _is_websocket(request)
        and "Origin" in request.headers
        and not sessions.origin_matches(request)
    ):
        return _text(403, "Refused: this WebSocket was opened by another site's page.")
    if request.method not in SAFE_METHODS and not await sessions.csrf_ok(request, session):
        return _text(
            403,
            "Refused: the request carries no valid CSRF token and does not come from the "
            "panel's own page. Reload the panel and try again.",
        )
    request[SIGNED_IN] = SignedIn(session.name, sessions.csrf_token(session))
    return await handler(request)


# ---------------------------------------------------------------- the sign-in routes


def _signin_state(request: web.Request, sessions: Sessions) -> str:
    """The page to return to, once the callback's state matches the signed state cookie."""
    state = request.query.get("state", "")
    value = sessions.signer.unsign("state", request.cookies.get(STATE_COOKIE))
    if value is None or not isinstance(value.get("n"), str):
        raise SignInError(400, "This sign-in was not started here, or its cookie is missing.")
    if not state or not hmac.compare_digest(state.encode(), str(value["n"]).encode()):
        raise SignInError(400, "The sign-in state does not match: the request was not ours.")
    expires = value.get("e")
    if not isinstance(expires, int) or expires <= time.time():
        raise SignInError(400, "The sign-in took too long and has expired.")
    next_path = value.get("next")
    return next_path if isinstance(next_path, str) and next_path.startswith("/") else "/"


async def callback(request: web.Request) -> web.Response:
    """GET auth/callback?code&state: finish the sign-in, set the session cookie, go back."""
    auth, sessions = request.app[SIGNIN], request.app[SESSIONS]
    try:
        if "error" in request.query:
            error = request.query["error"][:200]
            raise SignInError(400, f"Home Assistant did not sign you in: {error}.")
        next_path = _signin_state(request, sessions)
        code = request.query.get("code", "")
        if not CODE_PATTERN.fullmatch(code):
            raise SignInError(400, "The sign-in code is missing or malformed.")
        if auth.refused_recently():
            raise SignInError(
                429,
                "Home Assistant refused several sign-ins in a row; wait a quarter of an hour. "
                "(Each refusal counts as a failed login of this add-on in Home Assistant.)",
            )
        user = await auth.exchange(code, auth.panel_base(request))
        if auth.admins_only and not user.is_admin:
            raise SignInError(403, "Only Home Assistant administrators may use this panel.")
    except SignInError as err:
        response = _message(request, err.status, N_("Not signed in"), err.message)
        sessions.clear_cookie(response, STATE_COOKIE)
        return response
    session = Session(
        user.id, user.name, time.time() + sessions.lifetime, secrets.token_urlsafe(16)
    )
    location = auth.panel_base(request) + next_path.lstrip("/")
    response = web.Response(status=302, headers={"Location": location}, text="Signed in.\n")
    sessions.clear_cookie(response, STATE_COOKIE)
    sessions.set_cookie(
        response, SESSION_COOKIE, sessions.session_cookie(session), int(sessions.lifetime)
    )
    _LOGGER.info("panel: %s signed in", user.name or user.id)
    return response


async def signout_page(request: web.Request) -> web.Response:
    """GET auth/signout: a button that signs out (a POST, so no link can do it)."""
    sessions = request.app[SESSIONS]
    session = sessions.session(request)
    return _page(
        request,
        "auth_signout.html",
        signed_in=session is not None,
        name=session.name if session else "",
        csrf=sessions.csrf_token(session) if session else "",
    )


async def signout(request: web.Request) -> web.Response:
    """POST auth/signout: forget the session cookie."""
    sessions = request.app[SESSIONS]
    session = sessions.session(request)
    if session is not None and not await sessions.csrf_ok(request, session):
        return _text(403, "Refused: sign out from the panel's own page.")
    response = _page(request, "auth_signout.html", signed_in=False, name="", csrf="")
    sessions.clear_cookie(response, SESSION_COOKIE)
    if session is not None:
        await asyncio.to_thread(sessions.signed_out.add, session.sid, session.expires)
        _LOGGER.info("panel: %s signed out", session.name or session.user_id)
    return response


def setup_auth(
    app: web.Application,
    signin: HomeAssistantSignIn,
    *,
    data_dir: Path,
    secret: bytes | None = None,
    session_lifetime: float = SESSION_LIFETIME,
) -> None:
    """Require sign-in through Home Assistant, as `signin` says, on a panel app that has not
    started yet. The signing secret is `secret`, else `<data_dir>/session_secret`."""
    if app.get(SUPERVISED):
        raise ValueError("under the Supervisor, ingress signs users in: no setup_auth")
    secret = secret if secret is not None else load_or_create_secret(data_dir)
    signed_out = SignedOut(data_dir / SIGNED_OUT_FILE)
    app[SIGNIN] = signin
    app[SESSIONS] = Sessions(
        secret=secret,
        public_url=signin.public_url,
        lifetime=session_lifetime,
        signed_out=signed_out,
    )
    # Before the controller is looked up: nobody learns the controllers' names unsigned.
    place = next(
        (n for n, m in enumerate(app.middlewares) if m is chosen_controller), len(app.middlewares)
    )
    app.middlewares.insert(place, auth_middleware)
    app.router.add_get(CALLBACK_PATH, callback, name="auth-callback", allow_head=False)
    app.router.add_get(SIGNOUT_PATH, signout_page, name="auth-signout")
    app.router.add_post(SIGNOUT_PATH, signout, name="auth-signout-post")
