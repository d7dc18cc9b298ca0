"""The owner of the connection to Home Assistant: it keeps one `WebSocketConnection` up.

Connect, authenticate, wait until Home Assistant runs, let the application re-create its
helpers, re-publish and re-subscribe (`on_connected`), then reconnect with capped exponential
backoff when the socket drops or Home Assistant is down. Garbage from Home Assistant is logged
and skipped; nothing it sends can end the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sec1000.common.backoff import BACKOFF_FIRST, backoff_delays
from sec1000.ha import (
    RECONNECT_MAX,
    AuthenticationError,
    ConnectionClosedError,
    Endpoint,
    HomeAssistantError,
)
from sec1000.ha.rest import HomeAssistantRest, State
from sec1000.ha.websocket import COMMAND_TIMEOUT, EventCallback, WebSocketConnection

_LOGGER = logging.getLogger(__name__)

STARTING_POLL = 0.5  # how often to ask a starting Home Assistant whether it runs yet
CORE_RUNNING = "RUNNING"

ConnectedCallback = Callable[[], Awaitable[None]]
DisconnectedCallback = Callable[[], None]


@dataclass(frozen=True)
class ClientTimings:
    """How soon the client reconnects (capped exponential backoff) and how long a command waits
    for its result."""

    backoff_first: float = BACKOFF_FIRST
    backoff_max: float = RECONNECT_MAX
    command_timeout: float = COMMAND_TIMEOUT


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
        timings: ClientTimings = ClientTimings(),
    ) -> None:
        self.endpoint = endpoint
        self.session = session
        self.api = HomeAssistantRest.from_endpoint(session, endpoint)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self.timings = timings
        self.connected = False
        self.status = "not started"
        self.connects = 0
        self.last_error: str | None = None
        self.since: float | None = None
        # Home Assistant's language (its core config, read at every connect): the panel's
        # default for a browser that chose none in its menu.
        self.language: str | None = None
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
            "language": self.language,
        }

    async def _run(self) -> None:
        delays = backoff_delays(self.timings.backoff_first, self.timings.backoff_max)
        failures = 0
        while True:
            try:
                if await self._connect_once():
                    delays = backoff_delays(self.timings.backoff_first, self.timings.backoff_max)
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
                self.session, self.endpoint, command_timeout=self.timings.command_timeout
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
            config = config if isinstance(config, dict) else {}
            language = config.get("language")
            self.language = language if isinstance(language, str) and language else self.language
            state = config.get("state")
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
