"""Home Assistant's REST API: one helper for every call, on one shared ClientSession."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import aiohttp

from sec1000.ha import (
    AuthenticationError,
    CannotConnectError,
    Endpoint,
    HttpStatusError,
)
from sec1000.ha.http import HttpEndpoint, decode_json

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
# The Supervisor's proxy answers these while Home Assistant is down or restarting.
UNREACHABLE_STATUSES = frozenset({502, 503, 504})


class Context(TypedDict):
    """Who caused a state change or event."""

    id: str
    parent_id: str | None
    user_id: str | None


class State(TypedDict):
    """A state object as the REST and WebSocket APIs return it."""

    entity_id: str
    state: str
    attributes: dict[str, Any]
    last_changed: str
    last_updated: str
    context: Context


class HomeAssistantRest:
    """Calls the REST API under `base_url` (…/api) with a bearer token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.http = HttpEndpoint(session, base_url, token, timeout)

    @classmethod
    def from_endpoint(cls, session: aiohttp.ClientSession, endpoint: Endpoint) -> HomeAssistantRest:
        """The REST client of an endpoint."""
        return cls(session, endpoint.rest_url, endpoint.token)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call; returns the decoded JSON (None for an empty body).

        Raises CannotConnectError (down, timeout, 502-504 from the Supervisor proxy),
        AuthenticationError (401/403), HttpStatusError (other errors), InvalidResponseError.
        """
        path = path.lstrip("/")
        status, text = await self.http.call(method, f"/{path}", body)
        if status in (401, 403):
            raise AuthenticationError(f"{method} {path}: HTTP {status} (token refused)")
        if status in UNREACHABLE_STATUSES:
            raise CannotConnectError(f"{method} {path}: HTTP {status}")
        if status >= 400:
            raise HttpStatusError(method, path, status, text)
        if not text:
            return None
        return decode_json(text, f"{method} {path}")

    async def check(self) -> None:
        """GET /api/: raises unless the API runs and takes the token."""
        await self.request("GET", "")

    async def get_state(self, entity_id: str) -> State | None:
        """GET /api/states/<entity_id>; None when Home Assistant does not know the entity."""
        try:
            state: State = await self.request("GET", f"states/{entity_id}")
        except HttpStatusError as err:
            if err.status == 404:
                return None
            raise
        return state

    async def set_state(
        self, entity_id: str, state: str, attributes: dict[str, Any] | None = None
    ) -> State:
        """POST /api/states/<entity_id>: create or replace the state object."""
        result: State = await self.request(
            "POST", f"states/{entity_id}", {"state": state, "attributes": attributes or {}}
        )
        return result

    async def delete_state(self, entity_id: str) -> bool:
        """DELETE /api/states/<entity_id>: remove a posted state; False when there was none."""
        try:
            await self.request("DELETE", f"states/{entity_id}")
        except HttpStatusError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> Any:
        """POST /api/services/<domain>/<service>; returns the states that changed."""
        return await self.request("POST", f"services/{domain}/{service}", data or {})

    async def fire_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """POST /api/events/<event_type>."""
        await self.request("POST", f"events/{event_type}", data or {})
