"""Sign-in through Home Assistant for a panel reachable beyond loopback, without a Supervisor.

Home Assistant is the OAuth2 / IndieAuth provider: an unauthenticated page request is sent to
its login page (`/auth/authorize`, the panel's URL as `client_id`, `<panel>/auth/callback` as
`redirect_uri`); the callback exchanges the code at `/auth/token`, asks who signed in
(WebSocket `auth/current_user`), revokes the refresh token at `/auth/revoke`, and keeps only the
user's id, name and an expiry in an HMAC-signed cookie. No Home Assistant token is kept.

Every POST (and any other unsafe method) must carry the session's CSRF token (header
`X-CSRF-Token` or form field `csrf_token`) or come from the panel's own origin according to the
browser (`Sec-Fetch-Site: same-origin`, else an `Origin` matching the panel). The Supervisor's
ingress does not use this module: there Home Assistant has signed the user in already.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from sec1000.common.files import fsync_directory, write_atomic
from sec1000.web.keys import SUPERVISED, TEMPLATES

_LOGGER = logging.getLogger(__name__)

SESSION_COOKIE = "sec1000_session"
STATE_COOKIE = "sec1000_signin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
CALLBACK_PATH = "/auth/callback"
SIGNOUT_PATH = "/auth/signout"
SECRET_FILE = "session_secret"
SIGNED_OUT_FILE = "signed_out.json"
SESSION_LIFETIME = 7 * 24 * 3600.0
# Home Assistant's authorization codes expire after 10 minutes as well.
SIGNIN_LIFETIME = 600
HA_TIMEOUT = 10.0
# Home Assistant counts every refused code as a failed login of this add-on's address (and may
# ban it when `login_attempts_threshold` is set), so refusals are capped.
REFUSAL_LIMIT = 5
REFUSAL_WINDOW = 900.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
USER_HEADERS = ("X-Remote-User-Id", "X-Remote-User-Name", "X-Remote-User-Display-Name")
# The auth pages live under /auth/, one level below the panel's root.
AUTH_ROOT = "../"
SECRET_PATTERN = re.compile(r"[0-9a-f]{64}")
CODE_PATTERN = re.compile(r"[A-Za-z0-9._~\-]{1,512}")
LOCAL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
FRAME_DESTINATIONS = frozenset({"iframe", "frame"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- who may need it


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1, IPv4-mapped loopback)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def needs_auth(listen_host: str, supervised: bool) -> bool:
    """True when the panel must sign users in: no Supervisor and a non-loopback listen address.

    An empty host, 0.0.0.0, :: and any host name other than localhost count as non-loopback.
    """
    return not supervised and not is_loopback(listen_host)


# ---------------------------------------------------------------- signing and the secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signatures of small JSON values, each bound to a purpose."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret

    def mac(self, purpose: str, data: str) -> str:
        """The signature of `data` for `purpose`, base64url."""
        message = f"{purpose}\0{data}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign(self, purpose: str, value: dict[str, Any]) -> str:
        """`<base64url JSON>.<signature>`."""
        body = _b64(json.dumps(value, separators=(",", ":")).encode())
        return f"{body}.{self.mac(purpose, body)}"

    def unsign(self, purpose: str, token: str | None) -> dict[str, Any] | None:
        """The value of a signed token, or None when it is missing, malformed or forged."""
        if not token or len(token) > 4096:
            return None
        body, dot, mac = token.rpartition(".")
        expected = self.mac(purpose, body)
        if not dot or not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        try:
            value = json.loads(_unb64(body))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def load_or_create_secret(data_dir: Path) -> bytes:
    """The session secret in `<data_dir>/session_secret`; created (0600, atomically) if absent.

    An unreadable or malformed file is replaced, which signs everyone out.
    """
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_secret(path, replace=False)
    except (OSError, ValueError) as err:
        _LOGGER.error("cannot read %s (%s): making a new session secret", path, type(err).__name__)
        return _create_secret(path, replace=True)
    if not SECRET_PATTERN.fullmatch(text):
        _LOGGER.error("%s is not a session secret: making a new one", path)
        return _create_secret(path, replace=True)
    if path.stat().st_mode & 0o077:
        _LOGGER.warning("%s was readable by others: now 0600", path)
        path.chmod(0o600)
    return bytes.fromhex(text)


def _create_secret(path: Path, *, replace: bool) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(secret.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # never overwrites a secret made meanwhile
            except FileExistsError:
                return bytes.fromhex(path.read_text(encoding="ascii").strip())
            except OSError:  # a file system without hard links
                os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
    _LOGGER.info("created a new session secret in %s", path)
    return secret


# ---------------------------------------------------------------- sessions


class SignedOut:
    """The sessions signed out before they expired, kept until they would have (a signed cookie
    cannot be taken back: a copy of it must be refused by the server)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._sids: dict[str, float] = self._load()

    def has(self, sid: str) -> bool:
        """True when this session was signed out."""
        return sid in self._sids

    def add(self, sid: str, expires: float) -> None:
        """Refuse this session from now on, until it expires; kept across restarts."""
        now = time.time()
        self._sids = {s: e for s, e in self._sids.items() if e > now}
        self._sids[sid] = expires
        if self.path is not None:
            try:
                write_atomic(self.path, json.dumps(self._sids))
            except OSError as err:
                _LOGGER.error("cannot keep the sign-out in %s: %s", self.path, err)

    def _load(self) -> dict[str, float]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return {}
        except Exception as err:  # any content: start an empty list, never stop the panel
            _LOGGER.error("cannot read the sign-outs in %s (%s): starting anew", self.path, err)
            return {}
        if not isinstance(data, dict):
            return {}
        now = time.time()
        return {
            str(sid): float(expires)
            for sid, expires in data.items()
            if isinstance(expires, int | float) and expires > now
        }


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in Home Assistant user: what the cookie holds (never a token)."""

    user_id: str
    name: str
    expires: float
    sid: str

    def as_cookie(self) -> dict[str, Any]:
        """The cookie's JSON."""
        return {"u": self.user_id, "n": self.name, "e": int(self.expires), "s": self.sid}

    @classmethod
    def from_cookie(cls, value: dict[str, Any] | None, now: float) -> Session | None:
        """The session, or None when the value is incomplete or expired."""
        if value is None:
            return None
        user_id, name, expires, sid = (value.get(k) for k in ("u", "n", "e", "s"))
        if not (isinstance(user_id, str) and isinstance(name, str) and isinstance(sid, str)):
            return None
        if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
            return None
        return cls(user_id, name, float(expires), sid)


@dataclass(frozen=True, slots=True)
class HaUser:
    """Who Home Assistant says signed in."""

    id: str
    name: str
    is_admin: bool


class SignInError(Exception):
    """The sign-in cannot finish; `status` and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_CURRENT: contextvars.ContextVar[tuple[Session, str] | None] = contextvars.ContextVar(
    "sec1000_auth_current", default=None
)


def current_csrf_token() -> str:
    """The CSRF token of the request being handled ("" outside a signed-in request)."""
    current = _CURRENT.get()
    return current[1] if current else ""


def current_user_name() -> str:
    """The signed-in user's name for the request being handled ("" outside one)."""
    current = _CURRENT.get()
    return current[0].name if current else ""


def _normal_url(url: str, what: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL, not {url!r}")
    if parts.username is not None or parts.fragment:
        raise ValueError(f"{what} must have no user name and no fragment: {url!r}")
    return url.strip()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _host_name(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


# ---------------------------------------------------------------- Home Assistant as the provider


class HomeAssistantSignIn:
    """The sign-in settings and helpers of one panel (stored in the app under AUTH)."""

    def __init__(
        self,
        *,
        ha_url: str,
        secret: bytes,
        public_url: str,
        ha_external_url: str | None = None,
        session_lifetime: float = SESSION_LIFETIME,
        admins_only: bool = True,
        signed_out: SignedOut | None = None,
    ) -> None:
        self.ha_url = _normal_url(ha_url, "ha_url").rstrip("/").removesuffix("/api")
        self.ha_external_url = (
            _normal_url(ha_external_url, "ha_external_url").rstrip("/") if ha_external_url else None
        )
        # The panel's URL, never taken from a request's Host header: an attacker's Host would
        # send the sign-in (and its code) to a site of theirs.
        self.public_url = _normal_url(public_url, "public_url")
        if not self.public_url.endswith("/"):
            self.public_url += "/"
        self.signed_out = signed_out if signed_out is not None else SignedOut(None)
        self.signer = Signer(secret)
        self.session_lifetime = session_lifetime
        self.admins_only = admins_only
        self.refusals: deque[float] = deque()

    # -- URLs

    def panel_base(self, request: web.Request) -> str:
        """The panel's URL as the browser sees it, with a trailing slash: the client_id."""
        return self.public_url

    def ha_browser_url(self, request: web.Request) -> str:
        """Home Assistant's URL for the browser.

        ha_external_url if given; else ha_url, except that a loopback host there (the add-on
        next to Home Assistant on one machine) becomes the host the browser used for the panel.
        """
        if self.ha_external_url:
            return self.ha_external_url
        parts = urlsplit(self.ha_url)
        browser_host = _host_name(urlsplit(self.panel_base(request)).netloc)
        if is_loopback(parts.hostname or "") and browser_host and not is_loopback(browser_host):
            host = f"[{browser_host}]" if ":" in browser_host else browser_host
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}{parts.path}"
        return self.ha_url

    def cookie_path(self) -> str:
        """The panel's path prefix (from public_url), "/" by default."""
        return urlsplit(self.public_url).path or "/"

    def secure(self, request: web.Request) -> bool:
        """Cookies get the Secure flag when the browser reaches the panel over https."""
        return self.panel_base(request).startswith("https://")

    # -- sessions and CSRF

    def session(self, request: web.Request) -> Session | None:
        """The request's valid session, or None (missing, forged, malformed or expired)."""
        value = self.signer.unsign("session", request.cookies.get(SESSION_COOKIE))
        session = Session.from_cookie(value, time.time())
        if session is not None and self.signed_out.has(session.sid):
            return None  # a cookie replayed after its sign-out
        return session

    def csrf_token(self, session: Session) -> str:
        """The session's CSRF token: derived from its random id, so nothing is stored."""
        return self.signer.mac("csrf", session.sid)

    def set_cookie(
        self, response: web.StreamResponse, request: web.Request, name: str, value: str, age: int
    ) -> None:
        """An HttpOnly, SameSite=Lax cookie on the panel's path."""
        response.set_cookie(
            name,
            value,
            max_age=age,
            path=self.cookie_path(),
            httponly=True,
            samesite="Lax",
            secure=self.secure(request),
        )

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        """Remove a cookie of the panel."""
        response.del_cookie(name, path=self.cookie_path())

    # -- same origin

    def same_origin(self, request: web.Request) -> bool:
        """True when the browser says the request comes from the panel's own pages.

        Sec-Fetch-Site is set by the browser and cannot be set by a page; without it, Origin
        must name this server (the Host it was asked for, or public_url).
        """
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site in ("same-origin", "none")
        return self.origin_matches(request)

    def origin_matches(self, request: web.Request) -> bool:
        """True when the Origin header names this panel."""
        origin = request.headers.get("Origin")
        if not origin or origin == "null":
            return False
        if origin.rstrip("/").lower() == _origin(self.public_url):
            return True
        return urlsplit(origin).netloc.lower() == request.host.lower()

    # -- refusals

    def refused_recently(self) -> bool:
        """True when Home Assistant refused REFUSAL_LIMIT codes within REFUSAL_WINDOW."""
        horizon = time.monotonic() - REFUSAL_WINDOW
        while self.refusals and self.refusals[0] < horizon:
            self.refusals.popleft()
        return len(self.refusals) >= REFUSAL_LIMIT

    # -- the exchange

    async def exchange(self, code: str, client_id: str) -> HaUser:
        """Code → tokens → the user; the refresh token is revoked at once. SignInError if not."""
        try:
            async with (
                asyncio.timeout(HA_TIMEOUT),
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HA_TIMEOUT)) as http,
            ):
                tokens = await self._token(http, code, client_id)
                try:
                    return await self._current_user(http, str(tokens["access_token"]))
                finally:
                    await self._revoke(http, tokens.get("refresh_token"))
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            _LOGGER.warning("sign-in: Home Assistant at %s: %s", self.ha_url, type(err).__name__)
            raise SignInError(
                502, f"Could not reach Home Assistant at {self.ha_url} to finish the sign-in."
            ) from err

    async def _token(self, http: aiohttp.ClientSession, code: str, client_id: str) -> Any:
        form = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
        async with http.post(f"{self.ha_url}/auth/token", data=form) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
        if not isinstance(answer, dict):
            answer = {}
        if response.status == 200 and isinstance(answer.get("access_token"), str):
            return answer
        detail = str(answer.get("error_description") or answer.get("error") or response.status)
        if response.status == 403:
            raise SignInError(403, f"Home Assistant does not let this user sign in: {detail}.")
        self.refusals.append(time.monotonic())
        raise SignInError(400, f"Home Assistant refused the sign-in code ({detail}).")

    async def _current_user(self, http: aiohttp.ClientSession, access_token: str) -> HaUser:
        url = self.ha_url.replace("http", "ws", 1) + "/api/websocket"
        async with http.ws_connect(url, autoping=True) as ws:
            try:
                await ws.receive_json()  # auth_required
                await ws.send_json({"type": "auth", "access_token": access_token})
                if (await ws.receive_json()).get("type") != "auth_ok":
                    raise SignInError(502, "Home Assistant did not accept the token it issued.")
                await ws.send_json({"id": 1, "type": "auth/current_user"})
                answer = await ws.receive_json()
            except (TypeError, ValueError) as err:  # closed, or not JSON
                raise SignInError(502, "Home Assistant closed the connection.") from err
        result = answer.get("result") if answer.get("success") else None
        if not isinstance(result, dict) or not isinstance(result.get("id"), str):
            raise SignInError(502, "Home Assistant did not say who signed in.")
        return HaUser(result["id"], str(result.get("name") or ""), bool(result.get("is_admin")))

    async def _revoke(self, http: aiohttp.ClientSession, refresh_token: Any) -> None:
        if not isinstance(refresh_token, str):
            return
        try:
            async with http.post(f"{self.ha_url}/auth/revoke", data={"token": refresh_token}):
                pass
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            _LOGGER.warning("sign-in: could not revoke the refresh token: %s", type(err).__name__)


AUTH = web.AppKey("sec1000_auth", HomeAssistantSignIn)


# ---------------------------------------------------------------- requests


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    text = request.app[TEMPLATES].get_template(template).render(root=AUTH_ROOT, **context)
    return web.Response(status=status, text=text, content_type="text/html")


def _message(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    link: str = AUTH_ROOT,
    new_tab: bool = False,
) -> web.Response:
    context = {"title": title, "message": message, "link": link, "new_tab": new_tab}
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


def _with_user(request: web.Request, session: Session | None) -> web.Request:
    """The request with X-Remote-User-* naming the session's user (a client's own are dropped)."""
    if session is None and not any(name in request.headers for name in USER_HEADERS):
        return request
    headers = CIMultiDict(request.headers)
    for name in USER_HEADERS:
        headers.popall(name, None)
    if session is not None:
        headers["X-Remote-User-Id"] = session.user_id
        if session.name:
            headers["X-Remote-User-Name"] = session.name
            headers["X-Remote-User-Display-Name"] = session.name
    return request.clone(headers=headers)


async def _csrf_ok(request: web.Request, auth: HomeAssistantSignIn, session: Session) -> bool:
    """The session's token as header or form field, or a same-origin request."""
    expected = auth.csrf_token(session).encode()
    sent = request.headers.get(CSRF_HEADER)
    if sent is not None and hmac.compare_digest(sent.encode(), expected):
        return True
    if auth.same_origin(request):
        return True
    if request.content_type in FORM_TYPES:
        field = (await request.post()).get(CSRF_FIELD)
        return isinstance(field, str) and hmac.compare_digest(field.encode(), expected)
    return False


def start_signin(request: web.Request) -> web.Response:
    """302 to Home Assistant's login page; a signed, short-lived cookie holds the state."""
    auth = request.app[AUTH]
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
    auth.set_cookie(
        response, request, STATE_COOKIE, auth.signer.sign("state", state), SIGNIN_LIFETIME
    )
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Signed-in users only (static files and the sign-in routes excepted); CSRF on POSTs."""
    auth = request.app[AUTH]
    path = request.path
    if path.startswith("/static/") or path in (CALLBACK_PATH, SIGNOUT_PATH):
        return await handler(_with_user(request, None))
    session = auth.session(request)
    if session is None:
        if _wants_page(request) and request.headers.get("Sec-Fetch-Dest") in FRAME_DESTINATIONS:
            # Home Assistant's login page refuses to be framed (X-Frame-Options: SAMEORIGIN).
            message = "Open the panel in a tab of its own to sign in, then reload this page."
            return _message(request, 401, "Sign in first", message, auth.panel_base(request), True)
        if _wants_page(request):
            return start_signin(request)
        return _text(401, "Not signed in: open the panel's page to sign in with Home Assistant.")
    request = _with_user(request, session)
    if _is_websocket(request) and "Origin" in request.headers and not auth.origin_matches(request):
        return _text(403, "Refused: this WebSocket was opened by another site's page.")
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, auth, session):
        return _text(
            403,
            "Refused: the request carries no valid CSRF token and does not come from the "
            "panel's own page. Reload the panel and try again.",
        )
    token = _CURRENT.set((session, auth.csrf_token(session)))
    try:
        return await handler(request)
    finally:
        _CURRENT.reset(token)


# ---------------------------------------------------------------- the sign-in routes


def _signin_state(request: web.Request, auth: HomeAssistantSignIn) -> str:
    """The page to return to, once the callback's state matches the signed state cookie."""
    state = request.query.get("state", "")
    value = auth.signer.unsign("state", request.cookies.get(STATE_COOKIE))
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
    auth = request.app[AUTH]
    try:
        if "error" in request.query:
            error = request.query["error"][:200]
            raise SignInError(400, f"Home Assistant did not sign you in: {error}.")
        next_path = _signin_state(request, auth)
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
        response = _message(request, err.status, "Not signed in", err.message)
        auth.clear_cookie(response, STATE_COOKIE)
        return response
    session = Session(
        user.id, user.name, time.time() + auth.session_lifetime, secrets.token_urlsafe(16)
    )
    location = auth.panel_base(request) + next_path.lstrip("/")
    response = web.Response(status=302, headers={"Location": location}, text="Signed in.\n")
    auth.clear_cookie(response, STATE_COOKIE)
    auth.set_cookie(
        response,
        request,
        SESSION_COOKIE,
        auth.signer.sign("session", session.as_cookie()),
        int(auth.session_lifetime),
    )
    _LOGGER.info("panel: %s signed in", user.name or user.id)
    return response


async def signout_page(request: web.Request) -> web.Response:
    """GET auth/signout: a button that signs out (a POST, so no link can do it)."""
    auth = request.app[AUTH]
    session = auth.session(request)
    return _page(
        request,
        "auth_signout.html",
        signed_in=session is not None,
        name=session.name if session else "",
        csrf=auth.csrf_token(session) if session else "",
    )


async def signout(request: web.Request) -> web.Response:
    """POST auth/signout: forget the session cookie."""
    auth = request.app[AUTH]
    session = auth.session(request)
    if session is not None and not await _csrf_ok(request, auth, session):
        return _text(403, "Refused: sign out from the panel's own page.")
    response = _page(request, "auth_signout.html", signed_in=False, name="", csrf="")
    auth.clear_cookie(response, SESSION_COOKIE)
    if session is not None:
        await asyncio.to_thread(auth.signed_out.add, session.sid, session.expires)
        _LOGGER.info("panel: %s signed out", session.name or session.user_id)
    return response


def setup_auth(
    app: web.Application,
    *,
    ha_url: str,
    data_dir: Path,
    public_url: str,
    ha_external_url: str | None = None,
    secret: bytes | None = None,
    session_lifetime: float = SESSION_LIFETIME,
    admins_only: bool = True,
) -> None:
    """Require sign-in through Home Assistant on a panel app that has not started yet.

    `ha_url` is where the add-on reaches Home Assistant (HA_URL); `ha_external_url` where the
    browser does (default: ha_url, a loopback host there replaced by the panel's host).
    `public_url` is the panel's URL as the browser sees it, used as the OAuth client_id (never
    a request's Host header). The signing secret is `secret`, else
    `<data_dir>/session_secret`. `admins_only` mirrors the Supervisor's admin-only panel.
    """
    if app.get(SUPERVISED):
        raise ValueError("under the Supervisor, ingress signs users in: no setup_auth")
    app[AUTH] = HomeAssistantSignIn(
        ha_url=ha_url,
        secret=secret if secret is not None else load_or_create_secret(data_dir),
        public_url=public_url,
        ha_external_url=ha_external_url,
        session_lifetime=session_lifetime,
        admins_only=admins_only,
        signed_out=SignedOut(data_dir / SIGNED_OUT_FILE),
    )
    templates = app[TEMPLATES]
    templates.globals["csrf_token"] = current_csrf_token
    templates.globals["signed_in_user"] = current_user_name
    app.middlewares.append(auth_middleware)
    app.router.add_get(CALLBACK_PATH, callback, name="auth-callback", allow_head=False)
    app.router.add_get(SIGNOUT_PATH, signout_page, name="auth-signout")
    app.router.add_post(SIGNOUT_PATH, signout, name="auth-signout-post")
