"""The panel's signed session cookie: the signing secret, sessions, sign-outs and CSRF checks.

The cookie keeps only the user's id, name, an expiry and a random session id, signed with
HMAC-SHA256; no Home Assistant token is kept. A POST (and any other unsafe method) must carry
the session's CSRF token (header `X-CSRF-Token` or form field `csrf_token`) or come from the
panel's own origin according to the browser (`Sec-Fetch-Site: same-origin`, else an `Origin`
matching the panel).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sec1000.common.files import fsync_directory, write_atomic

_LOGGER = logging.getLogger(__name__)

SESSION_COOKIE = "sec1000_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "session_secret"
SIGNED_OUT_FILE = "signed_out.json"
SESSION_LIFETIME = 7 * 24 * 3600.0
SECRET_PATTERN = re.compile(r"[0-9a-f]{64}")
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Sessions:
    """The cookies of one panel at `public_url` (its URL as the browser sees it): sessions
    read and written, their sign-outs, and the CSRF checks."""

    def __init__(
        self,
        *,
        secret: bytes,
        public_url: str,
        lifetime: float = SESSION_LIFETIME,
        signed_out: SignedOut | None = None,
    ) -> None:
        self.signer = Signer(secret)
        self.public_url = public_url
        self.lifetime = lifetime
        self.signed_out = signed_out if signed_out is not None else SignedOut(None)

    # -- cookies

    def cookie_path(self) -> str:
        """The panel's path prefix (from public_url), "/" by default."""
        return urlsplit(self.public_url).path or "/"

    def secure(self) -> bool:
        """Cookies get the Secure flag when the browser reaches the panel over https."""
        return self.public_url.startswith("https://")

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, age: int) -> None:
        """An HttpOnly, SameSite=Lax cookie on the panel's path."""
        response.set_cookie(
            name,
            value,
            max_age=age,
            path=self.cookie_path(),
            httponly=True,
            samesite="Lax",
            secure=self.secure(),
        )

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        """Remove a cookie of the panel."""
        response.del_cookie(name, path=self.cookie_path())

    # -- sessions

    def session(self, request: web.Request) -> Session | None:
        """The request's valid session, or None (missing, forged, malformed or expired)."""
        value = self.signer.unsign("session", request.cookies.get(SESSION_COOKIE))
        session = Session.from_cookie(value, time.time())
        if session is not None and self.signed_out.has(session.sid):
            return None  # a cookie replayed after its sign-out
        return session

    def session_cookie(self, session: Session) -> str:
        """The signed cookie value of a session."""
        return self.signer.sign("session", session.as_cookie())

    # -- CSRF

    def csrf_token(self, session: Session) -> str:
        """The session's CSRF token: derived from its random id, so nothing is stored."""
        return self.signer.mac("csrf", session.sid)

    async def csrf_ok(self, request: web.Request, session: Session) -> bool:
        """The session's token as header or form field, or a same-origin request."""
        expected = self.csrf_token(session).encode()
        sent = request.headers.get(CSRF_HEADER)
        if sent is not None and hmac.compare_digest(sent.encode(), expected):
            return True
        if self.same_origin(request):
            return True
        if request.content_type in FORM_TYPES:
            field = (await request.post()).get(CSRF_FIELD)
            return isinstance(field, str) and hmac.compare_digest(field.encode(), expected)
        return False

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
