"""Shared by the tests that read the add-on's notifications without Home Assistant."""

from __future__ import annotations

from typing import Any


class NoClient:
    """Stands in for the Home Assistant client: only Notifications.desired() is called."""


class Recorder(NoClient):
    """Records the service calls the notifications send (stands in for Home Assistant's WebSocket)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def send_command(self, message: dict[str, Any]) -> None:
        self.calls.append(message)
