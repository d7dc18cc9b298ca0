"""Where Home Assistant is (Supervisor proxy, or HA_URL + HA_TOKEN), and the Supervisor options API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from sec1000.ha.client import Endpoint, HomeAssistantError
from sec1000.options import Options

DEFAULT_SUPERVISOR_URL = "http://supervisor"
TIMEOUT = aiohttp.ClientTimeout(total=15)


def supervisor_token(env: Mapping[str, str]) -> str | None:
    """The add-on's token, under the Supervisor."""
    return env.get("SUPERVISOR_TOKEN") or env.get("HASSIO_TOKEN") or None


def supervisor_url(env: Mapping[str, str]) -> str:
    """The Supervisor's base URL (overridable for tests with SUPERVISOR_URL)."""
    return env.get("SUPERVISOR_URL", DEFAULT_SUPERVISOR_URL).rstrip("/")


def _websocket(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http") if http_url.startswith("http") else http_url


def find_endpoint(env: Mapping[str, str]) -> Endpoint | None:
    """Supervisor proxy when SUPERVISOR_TOKEN is set; else HA_URL + HA_TOKEN; else None."""
    if token := supervisor_token(env):
        base = supervisor_url(env)
        return Endpoint(
            f"{base}/core/api", _websocket(f"{base}/core/websocket"), token, "supervisor"
        )
    url, token = env.get("HA_URL", "").rstrip("/"), env.get("HA_TOKEN", "")
    if url and token:
        return Endpoint(f"{url}/api", _websocket(f"{url}/api/websocket"), token, "HA_URL")
    return None


class SupervisorOptions:
    """Reads and writes the add-on's options through the Supervisor API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with self.session.request(
                method, f"{self.base_url}{path}", json=body, headers=self.headers, timeout=TIMEOUT
            ) as response:
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise HomeAssistantError(f"the Supervisor did not answer: {err!r}") from err
        if not isinstance(payload, dict) or payload.get("result") != "ok":
            message = payload.get("message") if isinstance(payload, dict) else None
            raise HomeAssistantError(f"the Supervisor refused the options: {message or payload!r}")
        return payload.get("data")

    async def save(self, options: Options) -> None:
        """POST /addons/self/options with the whole options object."""
        await self._call("POST", "/addons/self/options", {"options": options.to_dict()})

    async def load(self) -> dict[str, Any]:
        """The stored options, from /addons/self/info."""
        data = await self._call("GET", "/addons/self/info")
        return dict(data.get("options", {})) if isinstance(data, dict) else {}
