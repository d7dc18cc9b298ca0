"""Where Home Assistant is (Supervisor proxy, or HA_URL + HA_TOKEN), and the Supervisor options API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from sec1000.ha import CannotConnectError, Endpoint, InvalidResponseError, SupervisorError
from sec1000.ha.http import HttpEndpoint, decode_json

DEFAULT_SUPERVISOR_URL = "http://supervisor"
TIMEOUT = aiohttp.ClientTimeout(total=15)


def supervisor_token(env: Mapping[str, str]) -> str | None:
    """The add-on's token under the Supervisor (SUPERVISOR_TOKEN, legacy HASSIO_TOKEN)."""
    return env.get("SUPERVISOR_TOKEN") or env.get("HASSIO_TOKEN") or None


def supervisor_url(env: Mapping[str, str]) -> str:
    """The Supervisor's base URL: http://supervisor, or SUPERVISOR_URL (tests point it at a fake)."""
    return (env.get("SUPERVISOR_URL") or DEFAULT_SUPERVISOR_URL).rstrip("/")


def websocket_url(http_url: str) -> str:
    """http(s)://… → ws(s)://…"""
    if http_url.startswith(("http://", "https://")):
        return "ws" + http_url.removeprefix("http")
    return http_url


def endpoint_from_env(env: Mapping[str, str]) -> Endpoint | None:
    """Supervisor proxy when SUPERVISOR_TOKEN is set; else HA_URL + HA_TOKEN; else None."""
    if token := supervisor_token(env):
        base = supervisor_url(env)
        return Endpoint(
            f"{base}/core/api", websocket_url(f"{base}/core/websocket"), token, "supervisor"
        )
    url, token = env.get("HA_URL", "").strip().rstrip("/"), env.get("HA_TOKEN", "").strip()
    if url and token:
        url = url.removesuffix("/api")  # accept both http://host:8123 and http://host:8123/api
        return Endpoint(f"{url}/api", websocket_url(f"{url}/api/websocket"), token, "HA_URL")
    return None


class SupportsToDict(Protocol):
    """An options object that turns itself into the JSON object the Supervisor stores."""

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict."""


class SupervisorOptionsStore:
    """The Supervisor API the add-on uses: its options (/addons/self/…), its own info, and the
    MQTT broker it provides (/services/mqtt)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.http = HttpEndpoint(session, base_url, token, TIMEOUT)

    @classmethod
    def from_env(
        cls, session: aiohttp.ClientSession, env: Mapping[str, str]
    ) -> SupervisorOptionsStore | None:
        """The store under the Supervisor (SUPERVISOR_TOKEN set), else None."""
        token = supervisor_token(env)
        return cls(session, supervisor_url(env), token) if token else None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            status, text = await self.http.call(method, path, body)
            payload = decode_json(text, f"{method} {path}")
        except CannotConnectError as err:
            raise SupervisorError(f"the Supervisor did not answer {method} {path}: {err}") from err
        except InvalidResponseError:
            payload = None
        if not isinstance(payload, dict):
            raise SupervisorError(
                f"the Supervisor answered {method} {path} with HTTP {status}: {text[:200]!r}"
            )
        if payload.get("result") != "ok":
            message = payload.get("message") or f"HTTP {status}, result {payload.get('result')!r}"
            raise SupervisorError(f"the Supervisor refused {method} {path}: {message}")
        return payload.get("data")

    async def save(self, options: Mapping[str, Any] | SupportsToDict) -> None:
        """POST /addons/self/options with {"options": {...}}: the body replaces every option.

        Raises SupervisorError with the Supervisor's message when it refuses.
        """
        values = dict(options) if isinstance(options, Mapping) else options.to_dict()
        await self._call("POST", "/addons/self/options", {"options": values})

    async def load(self) -> dict[str, Any]:
        """The stored options: `data.options` of GET /addons/self/info."""
        info = await self.addon_info()
        options = info.get("options")
        if not isinstance(options, dict):
            raise SupervisorError(f"the Supervisor's add-on info has no options: {info!r:.200}")
        return options

    async def addon_info(self) -> dict[str, Any]:
        """`data` of GET /addons/self/info (slug, options, …)."""
        data = await self._call("GET", "/addons/self/info")
        if not isinstance(data, dict):
            raise SupervisorError(f"the Supervisor's add-on info is not an object: {data!r:.200}")
        return data

    async def mqtt_service(self) -> dict[str, Any] | None:
        """The broker of `services: mqtt:want` (host, port, ssl, username, password, protocol),
        or None when no add-on provides one (the Supervisor answers an error then).

        Raises CannotConnectError when the Supervisor does not answer.
        """
        status, text = await self.http.call("GET", "/services/mqtt")
        if status >= 400:
            return None
        try:
            payload = decode_json(text, "GET /services/mqtt")
        except InvalidResponseError:
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data.get("host"):
            return None
        return data
