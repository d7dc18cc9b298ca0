"""One HTTP call to Home Assistant or the Supervisor: client failures become the adapter's errors."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from sec1000.ha import CannotConnectError, InvalidResponseError


class HttpEndpoint:
    """A base URL with its bearer token and time limit, on one shared ClientSession."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        limits: aiohttp.ClientTimeout,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.limits = limits
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        """Send one request to base_url + path; (status, text). Raises CannotConnectError."""
        return await fetch(
            self.session,
            method,
            f"{self.base_url}{path}",
            headers=self._headers,
            body=body,
            limits=self.limits,
        )


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: Any = None,
    limits: aiohttp.ClientTimeout,
) -> tuple[int, str]:
    """Send one request; returns (status, text). Raises CannotConnectError when nothing answered."""
    try:
        async with session.request(
            method, url, json=body, headers=headers, timeout=limits
        ) as response:
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        raise CannotConnectError(f"{method} {url}: {err!r}") from err


def decode_json(text: str, what: str) -> Any:
    """The JSON in an answer; raises InvalidResponseError naming `what` for anything else."""
    try:
        return json.loads(text)
    except ValueError as err:
        raise InvalidResponseError(f"{what}: not JSON: {text[:80]!r}") from err
