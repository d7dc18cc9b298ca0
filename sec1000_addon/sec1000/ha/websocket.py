"""Home Assistant's WebSocket API: one authenticated connection, and the owner that keeps one up.

`WebSocketConnection` is one socket: integer ids from one counter, a dict of pending futures,
subscriptions registered before their message goes out (the result and the first event can arrive
in one read), and every pending future failed when the socket closes. It never reconnects.

`HomeAssistantClient` owns the connection: connect, authenticate, let the application re-create
its helpers, re-publish and re-subscribe (`on_connected`), then reconnect with capped exponential
backoff when the socket drops or Home Assistant is down. Garbage from Home Assistant is logged and
skipped; nothing it sends can end the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import aiohttp

from sec1000.common.backoff import BACKOFF_FIRST, backoff_delays
from sec1000.ha import (
    RECONNECT_MAX,
    AuthenticationError,
    CannotConnectError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectionClosedError,
    Endpoint,
    HomeAssistantError,
    InvalidResponseError,
)
from sec1000.ha.rest import HomeAssistantRest, State

_LOGGER = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0  # the TCP and HTTP upgrade, then again for the auth phase
HEARTBEAT = 30.0  # WebSocket ping interval; a dead peer is noticed after about twice that
MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # get_states of a large home exceeds aiohttp's 4 MiB default
STARTING_POLL = 0.5  # how often to ask a starting Home Assistant whether it runs yet
CORE_RUNNING = "RUNNING"

EventCallback = Callable[[dict[str, Any]], None]
ConnectedCallback = Callable[[], Awaitable[None]]
DisconnectedCallback = Callable[[], None]


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


class ErrorPayload(TypedDict, total=False):
    """The `error` of a failed result."""

    code: str
    message: str


class ResultMessage(TypedDict):
    """A command's result."""

    id: int
    type: str
    success: bool
    result: NotRequired[Any]
    error: NotRequired[ErrorPayload]


class EventMessage(TypedDict):
    """An event of a subscription; `id` is the id of the subscribe command."""

    id: int
    type: str
    event: dict[str, Any]


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


class WebSocketConnection:
    """One authenticated WebSocket to Home Assistant; its reader runs until the socket closes."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        ha_version: str | None = None,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self._ws = ws
        self.ha_version = ha_version
        self.command_timeout = command_timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[int, EventCallback] = {}
        self._finished = False
        self.ignored_messages = 0  # garbage counted for diagnostics and tests
        self._reader = asyncio.create_task(self._read(), name="sec1000-ha-websocket-reader")

    @classmethod
    async def open(
        cls,
        session: aiohttp.ClientSession,
        endpoint: Endpoint,
        *,
        command_timeout: float = COMMAND_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> WebSocketConnection:
        """Connect and authenticate.

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
            raise CannotConnectError(
                f"cannot connect to {endpoint.websocket_url}: {err!r}"
            ) from err
        try:
            async with asyncio.timeout(connect_timeout):
                ha_version = await cls._authenticate(ws, endpoint.token)
        except TimeoutError as err:
            await ws.close()
            raise CannotConnectError("authentication did not complete in time") from err
        except BaseException:
            await ws.close()
            raise
        return cls(ws, ha_version=ha_version, command_timeout=command_timeout)

    @staticmethod
    async def _authenticate(ws: aiohttp.ClientWebSocketResponse, token: str) -> str | None:
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

    @property
    def closed(self) -> bool:
        """True once the socket is closed (and every waiting command failed)."""
        return self._finished or self._ws.closed

    async def send_command(self, message: Mapping[str, Any]) -> Any:
        """Send one command and return its `result`.

        Raises CommandFailedError on `success: false`, ConnectionClosedError when the socket
        closes first, CommandTimeoutError after `command_timeout` seconds without a result.
        """
        if self.closed:
            raise ConnectionClosedError("the connection to Home Assistant is closed")
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._send({**message, "id": msg_id})
            async with asyncio.timeout(self.command_timeout):
                return await future
        except TimeoutError as err:
            raise CommandTimeoutError(f"no result for {message.get('type')!r} in time") from err
        finally:
            self._pending.pop(msg_id, None)

    async def ping(self) -> None:
        """Round trip a `ping` command (answered with `pong`)."""
        await self.send_command({"type": MessageType.PING})

    async def subscribe(self, message: Mapping[str, Any], callback: EventCallback) -> int:
        """Subscribe (subscribe_events, subscribe_trigger, …); return the subscription id.

        The callback is registered before the message goes out, so an event that arrives together
        with the result is delivered. It is called with each `event` payload, in the reader task.
        """
        if self.closed:
            raise ConnectionClosedError("the connection to Home Assistant is closed")
        msg_id = next(self._ids)
        self._subscriptions[msg_id] = callback
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._send({**message, "id": msg_id})
            async with asyncio.timeout(self.command_timeout):
                await future
        except TimeoutError as err:
            self._subscriptions.pop(msg_id, None)
            raise CommandTimeoutError(f"no result for {message.get('type')!r} in time") from err
        except BaseException:
            self._subscriptions.pop(msg_id, None)
            raise
        finally:
            self._pending.pop(msg_id, None)
        return msg_id

    async def unsubscribe(self, subscription_id: int) -> None:
        """Stop a subscription; no event is delivered to its callback afterwards."""
        if self._subscriptions.pop(subscription_id, None) is None:
            return
        with contextlib.suppress(CommandFailedError):  # already gone on Home Assistant's side
            await self.send_command(
                {"type": MessageType.UNSUBSCRIBE_EVENTS, "subscription": subscription_id}
            )

    async def _send(self, payload: dict[str, Any]) -> None:
        _LOGGER.debug("to Home Assistant: %.300s", payload)
        try:
            await self._ws.send_json(payload)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as err:
            raise ConnectionClosedError(f"sending to Home Assistant failed: {err!r}") from err

    async def wait_closed(self) -> None:
        """Return once the socket has closed and every waiting command has failed."""
        await asyncio.wait({self._reader})  # neither cancels the reader nor raises its end

    async def read(self) -> None:
        """Wait until the socket closes (the reader itself starts with the connection)."""
        await self.wait_closed()

    async def close(self) -> None:
        """Close the socket; waiting commands fail with ConnectionClosedError."""
        await self._ws.close()
        _done, pending = await asyncio.wait({self._reader}, timeout=5)
        if pending:
            self._reader.cancel()
            await asyncio.wait({self._reader})

    async def _read(self) -> None:
        try:
            while not self._ws.closed:
                message = await self._ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    _LOGGER.debug("from Home Assistant: %.300s", message.data)
                    self._dispatch_text(message.data)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    _LOGGER.debug("Home Assistant WebSocket closed (%s)", message.type.name)
                    break
                else:
                    self.ignored_messages += 1
                    _LOGGER.warning("ignoring a %s frame from Home Assistant", message.type.name)
        except Exception:
            _LOGGER.exception("reading from Home Assistant failed")
        finally:
            self._finish()
            if not self._ws.closed:
                await self._ws.close()

    def _finish(self) -> None:
        self._finished = True
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
            self.ignored_messages += 1
            _LOGGER.warning("ignoring a message from Home Assistant that is not JSON: %.80r", text)
            return
        # Home Assistant may coalesce several messages into one JSON array.
        for item in payload if isinstance(payload, list) else [payload]:
            if isinstance(item, dict):
                self._dispatch(item)
            else:
                self.ignored_messages += 1
                _LOGGER.warning("ignoring a malformed message from Home Assistant: %.80r", item)

    def _dispatch(self, item: dict[str, Any]) -> None:
        msg_id = item.get("id")
        kind = item.get("type")
        if not isinstance(msg_id, int) or isinstance(msg_id, bool):
            self.ignored_messages += 1
            _LOGGER.warning("ignoring a message without a valid id: %.80r", item)
        elif kind == MessageType.RESULT:
            self._dispatch_result(msg_id, item)
        elif kind == MessageType.EVENT:
            self._dispatch_event(msg_id, item)
        elif kind == MessageType.PONG:
            future = self._pending.get(msg_id)
            if future is not None and not future.done():
                future.set_result(None)
        else:
            self.ignored_messages += 1
            _LOGGER.debug("ignoring a message of type %r", kind)

    def _dispatch_result(self, msg_id: int, item: dict[str, Any]) -> None:
        future = self._pending.get(msg_id)
        if future is None or future.done():
            _LOGGER.debug("ignoring a result for %d, which nobody waits for", msg_id)
            return
        if item.get("success") is True:
            future.set_result(item.get("result"))
            return
        raw = item.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        future.set_exception(
            CommandFailedError(
                str(error.get("code", "unknown_error")), str(error.get("message", item))
            )
        )

    def _dispatch_event(self, msg_id: int, item: dict[str, Any]) -> None:
        callback = self._subscriptions.get(msg_id)
        event = item.get("event")
        if callback is None:
            _LOGGER.debug("ignoring an event for %d, which has no subscription", msg_id)
            return
        if not isinstance(event, dict):
            self.ignored_messages += 1
            _LOGGER.warning("ignoring an event without a payload: %.80r", item)
            return
        try:
            callback(event)
        except Exception:
            _LOGGER.exception("the handler of subscription %d failed", msg_id)


class HomeAssistantClient:
    """Keeps one connection to Home Assistant up, and re-syncs the application after each connect.

    Built with `on_connected` (a coroutine function: re-create helpers, re-subscribe, re-publish)
    and optionally `on_disconnected`; then `start()`. Commands go to the current connection and
    fail with ConnectionClosedError while there is none.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        session: aiohttp.ClientSession,
        *,
        on_connected: ConnectedCallback | None = None,
        on_disconnected: DisconnectedCallback | None = None,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = RECONNECT_MAX,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.session = session
        self.api = HomeAssistantRest.from_endpoint(session, endpoint)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.command_timeout = command_timeout
        self.connected = False
        self.status = "not started"
        self.connects = 0
        self.last_error: str | None = None
        self.since: float | None = None
        self._connection: WebSocketConnection | None = None
        self._connected_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- life cycle

    def start(self) -> None:
        """Run the connection loop in the background."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sec1000-homeassistant")

    async def stop(self) -> None:
        """Stop the loop and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        self._set_disconnected("stopped")

    @property
    def running(self) -> bool:
        """True while the connection loop runs (it only ends with stop())."""
        return self._task is not None and not self._task.done()

    async def wait_connected(self) -> None:
        """Wait until connected and set up (bound it with asyncio.timeout)."""
        await self._connected_event.wait()

    def diagnostics(self) -> dict[str, Any]:
        """Connection status for the panel."""
        return {
            "connected": self.connected,
            "status": self.status,
            "via": self.endpoint.via,
            "connects": self.connects,
            "last_error": self.last_error,
            "ha_version": self._connection.ha_version if self._connection else None,
            "since": self.since,
        }

    async def _run(self) -> None:
        delays = backoff_delays(self.backoff_first, self.backoff_max)
        failures = 0
        while True:
            try:
                if await self._connect_once():
                    delays = backoff_delays(self.backoff_first, self.backoff_max)
                    failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug must not end the add-on's link to Home Assistant
                _LOGGER.exception("the Home Assistant connection loop failed")
                self.last_error = repr(err)
            failures += 1
            delay = next(delays)
            self.status = f"{self.status}; retrying in {delay:g} s"
            (_LOGGER.warning if failures == 1 else _LOGGER.debug)("Home Assistant: %s", self.status)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> bool:
        """One connection's life; True when it was fully set up before it ended."""
        self.status = "connecting"
        try:
            connection = await WebSocketConnection.open(
                self.session, self.endpoint, command_timeout=self.command_timeout
            )
        except AuthenticationError as err:
            self.last_error = str(err)
            self.status = f"token refused ({err})"
            return False
        except HomeAssistantError as err:
            self.last_error = str(err)
            self.status = f"unreachable ({err})"
            return False
        self._connection = connection
        try:
            await self._wait_until_running(connection)
            self.status = "setting up"
            if self._on_connected is not None:
                await self._on_connected()
        except asyncio.CancelledError:
            await connection.close()
            raise
        except Exception as err:
            self.last_error = f"set-up failed: {err!r}"
            self.status = f"set-up after connecting failed ({err})"
            await connection.close()
            self._connection = None
            return False
        if connection.closed:
            self._connection = None
            self.status = "connection lost during set-up"
            return False
        self.connected = True
        self.connects += 1
        self.since = time.time()
        self.status = "connected"
        self._connected_event.set()
        _LOGGER.info(
            "connected to Home Assistant %s (via %s)",
            connection.ha_version or "",
            self.endpoint.via,
        )
        try:
            await connection.wait_closed()
        finally:
            if not connection.closed:  # stop() cancelled us: close it on the way out
                await connection.close()
            self._connection = None
            self._set_disconnected("connection lost")
        return True

    async def _wait_until_running(self, connection: WebSocketConnection) -> None:
        """Wait while Home Assistant is still starting: its WebSocket API answers before the
        helper integrations are loaded (the Supervisor's proxy waits for RUNNING by itself)."""
        while True:
            config = await connection.send_command({"type": "get_config"})
            state = config.get("state") if isinstance(config, dict) else None
            if state in (None, CORE_RUNNING):
                return
            self.status = f"waiting for Home Assistant to start ({state})"
            await asyncio.sleep(STARTING_POLL)

    def _set_disconnected(self, status: str) -> None:
        was_connected = self.connected
        self.connected = False
        self._connected_event.clear()
        self.status = status
        if was_connected and self._on_disconnected is not None:
            try:
                self._on_disconnected()
            except Exception:
                _LOGGER.exception("on_disconnected failed")

    # -- commands on the current connection

    def _require(self) -> WebSocketConnection:
        if self._connection is None or self._connection.closed:
            raise ConnectionClosedError("not connected to Home Assistant")
        return self._connection

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send a WebSocket command on the current connection; see WebSocketConnection."""
        return await self._require().send_command(message)

    async def subscribe(self, message: dict[str, Any], callback: EventCallback) -> int:
        """Subscribe on the current connection (re-subscribe in on_connected after reconnects)."""
        return await self._require().subscribe(message, callback)

    async def unsubscribe(self, subscription_id: int) -> None:
        """Stop a subscription of the current connection."""
        await self._require().unsubscribe(subscription_id)

    async def set_state(self, entity_id: str, state: str, attributes: dict[str, Any]) -> State:
        """POST /api/states/<entity_id> (REST, independent of the WebSocket)."""
        return await self.api.set_state(entity_id, state, attributes)

    async def get_state(self, entity_id: str) -> State | None:
        """GET /api/states/<entity_id>; None when Home Assistant does not know it."""
        return await self.api.get_state(entity_id)

    async def delete_state(self, entity_id: str) -> bool:
        """DELETE /api/states/<entity_id>; False when Home Assistant had no such state."""
        return await self.api.delete_state(entity_id)
