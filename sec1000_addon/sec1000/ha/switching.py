"""The entity mode in Home Assistant and every step between its two kinds of entities: the REST
states and helpers, or the MQTT devices' entities. Both kinds use the same entity ids, so one
kind must be gone before the other appears: the MQTT entities would get `_2` beside a posted
state, and a state posted beside an MQTT entity vanishes with it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from sec1000.ha import CommandFailedError, EntityMode, HomeAssistantApi
from sec1000.ha.controller import ControllerBridge
from sec1000.ha.discovery import device_of, entity_ids
from sec1000.ha.helpers import listed_helpers
from sec1000.ha.notifications import MOVED_NOTIFICATION, moved_notice

_LOGGER = logging.getLogger(__name__)

MQTT_GONE_TIMEOUT = 15.0  # seconds to wait for Home Assistant to drop the MQTT entities


class ModeSwitch:
    """The entity mode, its locks, and Home Assistant moved to it over the bridge's client.

    `sides` is the bridge's own mapping of controller sides (it changes as controllers come and
    go); `first` names the first controller, whose notifications tell the user of new ids.
    """

    def __init__(
        self, client: HomeAssistantApi, sides: Mapping[str, ControllerBridge], first: str
    ) -> None:
        self._client = client
        self._sides = sides
        self._first = first
        self.mode = EntityMode.REST
        # A switch, a connect's set-up and a controller added or removed: one at a time.
        self.lock = asyncio.Lock()
        self.posting = asyncio.Lock()  # no state is posted while the REST entities are removed
        self.rest_cleared = asyncio.Event()  # set once the REST states and helpers are gone

    def choose(self, mode: EntityMode) -> bool:
        """Take `mode` (with `lock` held); False if it is the mode already. Home Assistant is
        moved to it by `enter`, now or at the next connect."""
        if mode is self.mode:
            return False
        self.mode = mode
        self.rest_cleared.clear()
        return True

    async def enter(self, existing: set[str]) -> None:
        """Move Home Assistant to the mode (`existing`: every entity id it has). MQTT: the
        posted states and the helpers go. REST: once the MQTT entities are gone, every helper
        is there, and set again at the next sync."""
        if self.mode is EntityMode.MQTT:
            await self._leave_rest(existing)
            return
        await self._wait_mqtt_gone()
        for side in self._sides.values():
            side.helpers.forget_synced()
            await side.helpers.ensure(existing)

    async def remove_rest(self, side: ControllerBridge, existing: set[str]) -> list[str]:
        """Remove the posted states and the helpers of a controller that was removed; the
        entity ids removed."""
        side.helpers.listed = await listed_helpers(self._client)  # its own may be newer
        registered = set(await self._registered(side))
        async with self.posting:
            return await side.remove_rest(existing, registered)

    async def _leave_rest(self, existing: set[str]) -> None:
        """Remove the posted states and the helpers; tell the user the new ids once."""
        async with self.posting:
            registered = set(await self._registered())
            removed: list[str] = []
            for side in self._sides.values():
                removed += await side.remove_rest(existing, registered)
        self.rest_cleared.set()
        if removed:
            first = self._sides[self._first]
            options = first.runtime.options
            new = [entity for name in self._sides for entity in entity_ids(options, name)]
            title, message = moved_notice(new)
            await first.notifications.notify(MOVED_NOTIFICATION, title, message)

    def _ours(self, *sides: ControllerBridge) -> set[str]:
        """Every entity id of these controllers (default: all), in either mode."""
        options = self._sides[self._first].runtime.options
        ours: set[str] = set()
        for side in sides or tuple(self._sides.values()):
            ours |= set(side.entity_ids) | set(entity_ids(options, side.name))
        return ours

    async def _registered(self, *sides: ControllerBridge) -> dict[str, dict[str, Any]]:
        """The entity registry's entries of these controllers' (default: all) entity ids."""
        entries = await self._client.send_command({"type": "config/entity_registry/list"})
        ours = self._ours(*sides)
        return {
            str(entry["entity_id"]): entry
            for entry in entries
            if isinstance(entry, dict) and entry.get("entity_id") in ours
        }

    async def _wait_mqtt_gone(self) -> None:
        """Wait until Home Assistant has dropped the MQTT devices' entities (a switch back to
        REST). Without a device's connectivity sensor in the registry there is no device: one
        small question per controller, not the whole registry, on every connect of a REST
        user."""
        if not await self._any_mqtt_device():
            return
        deadline = time.monotonic() + MQTT_GONE_TIMEOUT
        while True:
            left = [
                entity_id
                for entity_id, entry in (await self._registered()).items()
                if entry.get("platform") == "mqtt"
            ]
            if not left:
                return
            if time.monotonic() > deadline:
                _LOGGER.warning(
                    "the MQTT device's entities are still in Home Assistant (%s…); remove the "
                    "SEC1000 device in Settings → Devices, or let the add-on reach the broker",
                    ", ".join(left[:3]),
                )
                return
            await asyncio.sleep(0.5)

    async def _any_mqtt_device(self) -> bool:
        for name in self._sides:
            entity_id = device_of(name).connected.entity_id
            try:
                await self._client.send_command(
                    {"type": "config/entity_registry/get", "entity_id": entity_id}
                )
            except CommandFailedError:  # not_found
                continue
            return True
        return False
