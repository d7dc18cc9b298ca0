"""Home Assistant as the panel's OAuth2 / IndieAuth provider: its URLs and the code exchange.

An unauthenticated page request is sent to Home Assistant's login page (`/auth/authorize`, the
panel's URL as `client_id`, `<panel>/auth/callback` as `redirect_uri`); the callback exchanges
the code at `/auth/token`, asks who signed in (WebSocket `auth/current_user`) and revokes the
refresh token at `/auth/revoke`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sec1000.common.errors import AddonError

_LOGGER = logging.getLogger(__name__)

HA_TIMEOUT = 10.0
# Home Assistant counts every refused code as a failed login of this add-on's address (and may
# ban it when `login_attempts_threshold` is set), so refusals are capped.
REFUSAL_LIMIT = 5
REFUSAL_WINDOW = 900.0


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


@dataclass(frozen=True, slots=True)
class HaUser:
    """Who Home Assistant says signed in."""

    id: str
    name: str
    is_admin: bool


class SignInError(AddonError):
    """The sign-in cannot finish; `status` and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _normal_url(url: str, what: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL, not {url!r}")
    if parts.username is not None or parts.fragment:
        raise ValueError(f"{what} must have no user name and no fragment: {url!r}")
    return url.strip()


def _host_name(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


class HomeAssistantSignIn:
    """The sign-in settings of one panel: Home Assistant's URLs, the exchange, the refusals."""

    def __init__(
        self,
        *,
        ha_url: str,
        public_url: str,
        ha_external_url: str | None = None,
        admins_only: bool = True,
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
