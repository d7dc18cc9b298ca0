"""Home Assistant's WebSocket API on one authenticated socket: its commands and subscriptions.

`WebSocketConnection` is one socket (opened by `handshake.open_socket`): integer ids from one
counter, a dict of pending futures, subscriptions registered before their message goes out (the
result and the first event can arrive in one read), and every pending future failed when the
socket closes. It never reconnects: `client.HomeAssistantClient` owns it and does. Garbage from
Home Assistant is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, NotRequired, TypedDict

import aiohttp

from sec1000.ha import (
    CommandFailedError,
    CommandTimeoutError,
    ConnectionClosedError,
    Endpoint,
)
from sec1000.ha.handshake import CONNECT_TIMEOUT, MessageType, open_socket

_LOGGER = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0

EventCallback = Callable[[dict[str, Any]], None]


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
        """Connect and authenticate (`handshake.open_socket`).

        Raises CannotConnectError, AuthenticationError or InvalidResponseError.
        """
        ws, ha_version = await open_socket(session, endpoint, connect_timeout=connect_timeout)
        return cls(ws, ha_version=ha_version, command_timeout=command_timeout)

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
