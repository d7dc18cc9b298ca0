"""A Home Assistant client: one WebSocket for commands and subscriptions, REST for states."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

_LOGGER = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0
REST_TIMEOUT = aiohttp.ClientTimeout(total=10)
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0

EventCallback = Callable[[dict[str, Any]], None]


class HomeAssistantError(Exception):
    """Home Assistant could not be reached or refused a request."""


class CommandFailedError(HomeAssistantError):
    """A WebSocket command answered `success: false`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ConnectionClosedError(HomeAssistantError):
    """The WebSocket closed while a command was waiting."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where Home Assistant is: REST base (…/api), WebSocket URL, token, and how it was found."""

    rest_url: str
    websocket_url: str
    token: str
    via: str


class WebSocketConnection:
    """One authenticated WebSocket: integer ids, pending futures, subscriptions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[int, EventCallback] = {}

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, endpoint: Endpoint) -> WebSocketConnection:
        """Connect and authenticate; raises HomeAssistantError when refused."""
        try:
            ws = await session.ws_connect(
                endpoint.websocket_url, heartbeat=30, timeout=aiohttp.ClientWSTimeout(ws_close=5)
            )
        except (aiohttp.ClientError, OSError) as err:
            raise HomeAssistantError(f"cannot connect to {endpoint.websocket_url}: {err}") from err
        try:
            async with asyncio.timeout(15):
                hello = await ws.receive_json()
                if hello.get("type") != "auth_required":
                    raise HomeAssistantError(f"unexpected greeting {hello.get('type')!r}")
                await ws.send_json({"type": "auth", "access_token": endpoint.token})
                answer = await ws.receive_json()
        except (TimeoutError, TypeError, ValueError, aiohttp.ClientError) as err:
            await ws.close()
            raise HomeAssistantError(f"authentication did not complete: {err!r}") from err
        except BaseException:
            await ws.close()
            raise
        if answer.get("type") != "auth_ok":
            await ws.close()
            raise HomeAssistantError(
                f"authentication refused: {answer.get('message', answer.get('type'))}"
            )
        return cls(ws)

    @property
    def closed(self) -> bool:
        """True once the socket is closed."""
        return self._ws.closed

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send a command and return its result; CommandFailedError on `success: false`."""
        if self._ws.closed:
            raise ConnectionClosedError("the connection to Home Assistant is closed")
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._ws.send_json({**message, "id": msg_id})
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await future
        except (aiohttp.ClientError, ConnectionError) as err:
            raise ConnectionClosedError(f"sending to Home Assistant failed: {err}") from err
        finally:
            self._pending.pop(msg_id, None)

    async def subscribe(self, message: dict[str, Any], callback: EventCallback) -> int:
        """Subscribe; the callback is registered before the message goes out."""
        msg_id = next(self._ids)
        self._subscriptions[msg_id] = callback  # the first event may arrive with the result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._ws.send_json({**message, "id": msg_id})
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await future
        except BaseException:
            self._subscriptions.pop(msg_id, None)
            raise
        finally:
            self._pending.pop(msg_id, None)
        return msg_id

    async def read(self) -> None:
        """Dispatch every message until the socket closes; then fail whatever still waits."""
        try:
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._dispatch_text(message.data)
                elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
        finally:
            error = ConnectionClosedError("the connection to Home Assistant closed")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()
            self._subscriptions.clear()

    def _dispatch_text(self, text: str) -> None:
        try:
            payload = json.loads(text)
        except ValueError:
            _LOGGER.warning("ignoring a message from Home Assistant that is not JSON: %.80s", text)
            return
        for item in payload if isinstance(payload, list) else [payload]:
            if not isinstance(item, dict):
                _LOGGER.warning("ignoring a malformed message from Home Assistant: %.80r", item)
                continue
            self._dispatch(item)

    def _dispatch(self, item: dict[str, Any]) -> None:
        msg_id = item.get("id")
        kind = item.get("type")
        if kind == "result" and isinstance(msg_id, int):
            future = self._pending.get(msg_id)
            if future is None or future.done():
                return
            if item.get("success"):
                future.set_result(item.get("result"))
            else:
                raw_error = item.get("error")
                error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
                future.set_exception(
                    CommandFailedError(str(error.get("code")), str(error.get("message")))
                )
        elif kind == "event" and isinstance(msg_id, int):
            callback = self._subscriptions.get(msg_id)
            event = item.get("event")
            if callback is not None and isinstance(event, dict):
                try:
                    callback(event)
                except Exception:
                    _LOGGER.exception("event handler failed")
        elif kind != "pong":
            _LOGGER.debug("ignoring message of type %r", kind)

    async def close(self) -> None:
        """Close the socket."""
        await self._ws.close()


class HomeAssistantClient:
    """Keeps one connection up: reconnects with backoff, then lets the application re-sync."""

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.session = session
        # Set by the application: re-create, re-subscribe and re-publish after every connect.
        self.on_connected: Callable[[], Awaitable[None]] | None = None
        self.on_disconnected: Callable[[], None] | None = None
        self._connection: WebSocketConnection | None = None
        self.connected = False
        self.status = "not connected yet"
        self.connects = 0
        self.backoff_max = BACKOFF_MAX
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the connection loop in the background."""
        self._task = asyncio.create_task(self._run(), name="sec1000-homeassistant")

    async def stop(self) -> None:
        """Stop the loop and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()

    def diagnostics(self) -> dict[str, Any]:
        """Connection status for the panel."""
        return {
            "connected": self.connected,
            "status": self.status,
            "via": self.endpoint.via,
            "connects": self.connects,
        }

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                connection = await WebSocketConnection.open(self.session, self.endpoint)
            except HomeAssistantError as err:
                self.status = f"unreachable: {err}"
                _LOGGER.info("Home Assistant %s; retrying in %g s", self.status, delay)
            else:
                self._connection = connection
                reader = asyncio.create_task(connection.read())
                try:
                    if self.on_connected is not None:
                        await self.on_connected()
                except Exception as err:
                    self.status = f"set-up after connecting failed: {err}"
                    _LOGGER.warning("Home Assistant %s", self.status)
                    await connection.close()
                else:
                    self.connected = True
                    self.connects += 1
                    self.status = "connected"
                    _LOGGER.info("connected to Home Assistant (%s)", self.endpoint.via)
                    delay = BACKOFF_FIRST
                await reader
                self._connection = None
                if self.connected:
                    self.status = "connection lost"
                    _LOGGER.warning("lost the connection to Home Assistant; reconnecting")
                self.connected = False
                if self.on_disconnected is not None:
                    self.on_disconnected()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    def _require(self) -> WebSocketConnection:
        if self._connection is None or self._connection.closed:
            raise ConnectionClosedError("not connected to Home Assistant")
        return self._connection

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send a WebSocket command on the current connection."""
        return await self._require().send_command(message)

    async def subscribe(self, message: dict[str, Any], callback: EventCallback) -> int:
        """Subscribe on the current connection (the application re-subscribes after reconnects)."""
        return await self._require().subscribe(message, callback)

    async def set_state(self, entity_id: str, state: str, attributes: dict[str, Any]) -> Any:
        """POST /api/states/<entity_id>."""
        return await self.rest(
            "POST", f"states/{entity_id}", {"state": state, "attributes": attributes}
        )

    async def rest(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One REST call with the shared session; errors become HomeAssistantError."""
        url = f"{self.endpoint.rest_url}/{path}"
        headers = {"Authorization": f"Bearer {self.endpoint.token}"}
        try:
            async with self.session.request(
                method, url, json=body, headers=headers, timeout=REST_TIMEOUT
            ) as response:
                if response.status >= 400:
                    text = await response.text()
                    raise HomeAssistantError(
                        f"{method} {path}: HTTP {response.status} {text[:120]}"
                    )
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise HomeAssistantError(f"{method} {path} failed: {err!r}") from err
