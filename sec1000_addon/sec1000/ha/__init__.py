"""Home Assistant adapter: where Home Assistant is, its errors, and its WebSocket and REST clients.

The connection's modules: `handshake` (opening and authenticating a WebSocket), `websocket`
(commands and subscriptions on one socket), `client` (the owner that keeps one connection up),
`rest` and `http` (the REST API), `supervisor` (endpoint selection and the Supervisor options
API). ARCHITECTURE.md names the others. This package file holds only what they share, so
importing it stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sec1000.common.errors import AddonError

# The longest wait between two tries to reach Home Assistant or its broker again: every entity is
# back within 10 s of Home Assistant answering after a restart (a try costs it nothing).
RECONNECT_MAX = 5.0


class HomeAssistantError(AddonError):
    """Home Assistant (or the Supervisor in front of it) could not be reached or refused."""


class CannotConnectError(HomeAssistantError):
    """No connection: Home Assistant is down, restarting, or the network failed or timed out."""


class AuthenticationError(HomeAssistantError):
    """The token was refused (WebSocket `auth_invalid`, HTTP 401)."""


class ConnectionClosedError(HomeAssistantError):
    """The WebSocket closed (or was never open) while a command waited for its result."""


class CommandFailedError(HomeAssistantError):
    """A WebSocket command answered `success: false`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CommandTimeoutError(HomeAssistantError):
    """A WebSocket command got no result in time."""


class InvalidResponseError(HomeAssistantError):
    """Home Assistant answered something that is not its protocol (bad JSON, wrong shape)."""


class HttpStatusError(HomeAssistantError):
    """A REST call answered an HTTP error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {body[:200]}")
        self.status = status
        self.body = body


class SupervisorError(HomeAssistantError):
    """The Supervisor refused a request (its `result` was not `ok`) or could not be reached."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where Home Assistant is: REST base (…/api), WebSocket URL, token, and how it was found."""

    rest_url: str
    websocket_url: str
    token: str
    via: str


class EntityMode(StrEnum):
    """Which entities Home Assistant gets (the `entities` option's `auto` resolves to one)."""

    REST = "rest"  # sensors posted as states, helpers for the controls
    MQTT = "mqtt"  # one MQTT device per controller holds them


class HomeAssistantApi(Protocol):
    """What the bridge and each controller's side need of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""

    async def subscribe(
        self, message: dict[str, Any], callback: Callable[[dict[str, Any]], None]
    ) -> Any:
        """Subscribe; `callback` gets each event payload."""

    async def set_state(self, entity_id: str, state: str, attributes: dict[str, Any]) -> Any:
        """POST /api/states/<entity_id>."""

    async def get_state(self, entity_id: str) -> Any:
        """GET /api/states/<entity_id> (None when unknown)."""

    async def delete_state(self, entity_id: str) -> bool:
        """DELETE /api/states/<entity_id> (False when unknown)."""


def service_call(
    domain: str, service: str, data: dict[str, Any], *, return_response: bool = False
) -> dict[str, Any]:
    """The WebSocket command that calls a service (`return_response`: its answer comes back)."""
    message = {"type": "call_service", "domain": domain, "service": service, "service_data": data}
    return {**message, "return_response": True} if return_response else message


__all__ = [
    "RECONNECT_MAX",
    "AuthenticationError",
    "CannotConnectError",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConnectionClosedError",
    "Endpoint",
    "EntityMode",
    "HomeAssistantApi",
    "HomeAssistantError",
    "HttpStatusError",
    "InvalidResponseError",
    "SupervisorError",
    "service_call",
]
