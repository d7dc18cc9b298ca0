"""Opening a WebSocket to Home Assistant (through the Supervisor's proxy or straight): the
connection, then the auth phase (`auth_required`, our `auth`, then `auth_ok` or `auth_invalid`).
Commands and subscriptions on the open socket are `websocket.WebSocketConnection`'s."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any, TypedDict

import aiohttp

from sec1000.ha import (
    AuthenticationError,
    CannotConnectError,
    Endpoint,
    InvalidResponseError,
)

CONNECT_TIMEOUT = 15.0  # the TCP and HTTP upgrade, then again for the auth phase
HEARTBEAT = 30.0  # WebSocket ping interval; a dead peer is noticed after about twice that
MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # get_states of a large home exceeds aiohttp's 4 MiB default


class MessageType(StrEnum):
    """The `type` values of the WebSocket API that this client acts on."""

    AUTH_REQUIRED = "auth_required"
    AUTH = "auth"
    AUTH_OK = "auth_ok"
    AUTH_INVALID = "auth_invalid"
    RESULT = "result"
    EVENT = "event"
    PING = "ping"
    PONG = "pong"
    UNSUBSCRIBE_EVENTS = "unsubscribe_events"


class AuthMessage(TypedDict):
    """The client's answer to `auth_required`."""

    type: str
    access_token: str


async def open_socket(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> tuple[aiohttp.ClientWebSocketResponse, str | None]:
    """Connect and authenticate: the socket and Home Assistant's version.

    Raises CannotConnectError, AuthenticationError or InvalidResponseError.
    """
    try:
        async with asyncio.timeout(connect_timeout):
            ws = await session.ws_connect(
                endpoint.websocket_url,
                heartbeat=HEARTBEAT,
                max_msg_size=MAX_MESSAGE_SIZE,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )
    except aiohttp.WSServerHandshakeError as err:
        if err.status in (401, 403):
            raise AuthenticationError(f"{endpoint.websocket_url}: HTTP {err.status}") from err
        raise CannotConnectError(f"{endpoint.websocket_url}: HTTP {err.status}") from err
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        raise CannotConnectError(f"cannot connect to {endpoint.websocket_url}: {err!r}") from err
    try:
        async with asyncio.timeout(connect_timeout):
            ha_version = await authenticate(ws, endpoint.token)
    except TimeoutError as err:
        await ws.close()
        raise CannotConnectError("authentication did not complete in time") from err
    except BaseException:
        await ws.close()
        raise
    return ws, ha_version


async def authenticate(ws: aiohttp.ClientWebSocketResponse, token: str) -> str | None:
    """The auth phase; Home Assistant's version. Raises AuthenticationError or
    InvalidResponseError (CannotConnectError when the socket closes)."""
    hello = await _receive_json(ws)
    if not isinstance(hello, dict) or hello.get("type") != MessageType.AUTH_REQUIRED:
        raise InvalidResponseError(f"expected auth_required, got {str(hello)[:80]!r}")
    auth: AuthMessage = {"type": MessageType.AUTH, "access_token": token}
    try:
        await ws.send_json(auth)
    except (aiohttp.ClientError, ConnectionError) as err:
        raise CannotConnectError(f"the WebSocket closed during authentication: {err}") from err
    answer = await _receive_json(ws)
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind == MessageType.AUTH_OK:
        version = answer.get("ha_version")
        return version if isinstance(version, str) else None
    if kind == MessageType.AUTH_INVALID:
        raise AuthenticationError(f"authentication refused: {answer.get('message')}")
    raise InvalidResponseError(f"expected auth_ok, got {str(answer)[:80]!r}")


async def _receive_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    message = await ws.receive()
    if message.type is aiohttp.WSMsgType.TEXT:
        try:
            return json.loads(message.data)
        except ValueError as err:
            raise InvalidResponseError(f"not JSON: {str(message.data)[:80]!r}") from err
    if message.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    ):
        raise CannotConnectError("the WebSocket closed during authentication")
    raise InvalidResponseError(f"unexpected {message.type.name} frame during authentication")
