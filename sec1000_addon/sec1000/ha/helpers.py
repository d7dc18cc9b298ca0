"""The helpers of the REST mode (`input_button`, `input_number`, `input_boolean`): created when
missing, kept in step with the controller, their presses turned into commands, and removed when
the MQTT device replaces them. The add-on's own changes are never taken for presses."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from sec1000.ha import CommandFailedError, service_call
from sec1000.ha.entities import (
    EXPORT_SWITCH,
    HELPER_DOMAINS,
    POLICY_SWITCH,
    SETPOINT,
    UNAVAILABLE,
    Helper,
    helpers_for,
    helpers_of,
)
from sec1000.operations import Origin
from sec1000.runtime import Runtime

_LOGGER = logging.getLogger(__name__)

OWN_CONTEXTS_KEPT = 200
IGNORED_STATES = (UNAVAILABLE, "unknown")


class Commands(Protocol):
    """What the helpers need of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""


async def listed_helpers(client: Commands) -> set[str]:
    """The entity ids of the helpers Home Assistant lists (made in the UI or over the API)."""
    listed: set[str] = set()
    for domain in HELPER_DOMAINS:
        items = await client.send_command({"type": f"{domain}/list"})
        listed |= {f"{domain}.{item.get('id')}" for item in items if isinstance(item, dict)}
    return listed


class Helpers:
    """One controller's helpers of the REST mode in Home Assistant, both ways."""

    def __init__(
        self,
        runtime: Runtime,
        client: Commands,
        *,
        active: Callable[[], bool],
        origin: Callable[[dict[str, Any]], Origin],
    ) -> None:
        self.runtime = runtime
        self.controller = runtime.name  # its helpers' ids: sec1000_… or sec1000_<name>_…
        every = helpers_of(self.controller)
        self.by_entity = {helper.entity_id: helper for helper in every}
        self._setpoint, self._switch, self._policy = (
            helper.of(self.controller) for helper in (SETPOINT, EXPORT_SWITCH, POLICY_SWITCH)
        )
        self._client = client
        self._active = active  # connected, in the REST mode: the helpers are followed
        self._origin = origin  # who pressed, from a state change's context
        self._synced: dict[str, Any] = {}
        self._pressing: set[str] = set()  # helpers whose command is running
        self._own_contexts: deque[str] = deque(maxlen=OWN_CONTEXTS_KEPT)
        self._own_calls = 0
        self.settled = asyncio.Event()  # set while none of our own calls is under way
        self.settled.set()
        self.listed: set[str] = set()  # the helpers Home Assistant lists (it can delete)
        self.present: set[str] = set()  # ours that Home Assistant has, as the last ensure saw

    # -- to Home Assistant

    async def read_lists(self) -> set[str]:
        """The entity ids of the helpers Home Assistant lists (made in the UI or over the API)."""
        self.listed = await listed_helpers(self._client)
        return self.listed

    async def ensure(self, existing: set[str]) -> None:
        """Create missing helpers through the WebSocket API; reuse existing ones, never duplicate."""
        present = {entity_id for entity_id in self.by_entity if entity_id in existing}
        self.present = present
        for helper in helpers_for(self.runtime.options.price_entity, self.controller):
            if helper.entity_id in existing:
                continue
            _LOGGER.info("creating %s", helper.entity_id)
            created = await self._client.send_command(
                {"type": f"{helper.domain}/create", "name": helper.name, **helper.create}
            )
            if isinstance(created, dict) and created.get("id") != helper.object_id:
                _LOGGER.error(
                    "Home Assistant gave %s the id %s", helper.entity_id, created.get("id")
                )
            else:
                present.add(helper.entity_id)

    async def remove(self) -> list[str]:
        """Delete the helpers (the MQTT device replaces them, or the controller is gone); the
        entity ids removed."""
        removed: list[str] = []
        for helper in self.by_entity.values():
            # Only helpers made in the UI or over the API can go; one from YAML stays.
            if helper.entity_id not in self.listed:
                continue
            _LOGGER.info("removing %s", helper.entity_id)
            try:
                await self._client.send_command(
                    {"type": f"{helper.domain}/delete", f"{helper.domain}_id": helper.object_id}
                )
            except CommandFailedError as err:
                _LOGGER.warning("could not remove %s: %s", helper.entity_id, err)
                continue
            removed.append(helper.entity_id)
        return removed

    def forget_synced(self) -> None:
        """Set every helper again at the next sync (a new connection, back to REST)."""
        self._synced.clear()

    async def _own_call(self, domain: str, service: str, data: dict[str, Any]) -> None:
        """Call a service whose state change must not be taken for a user command."""
        self._own_calls += 1
        self.settled.clear()
        try:
            result = await self._client.send_command(service_call(domain, service, data))
            context = result.get("context") if isinstance(result, dict) else None
            if isinstance(context, dict) and context.get("id"):
                self._own_contexts.append(str(context["id"]))
        finally:
            self._own_calls -= 1
            if self._own_calls == 0:
                self.settled.set()

    async def sync(self) -> None:
        """The setpoint follows the device's limit; the export switch follows the export state."""
        if not self._active():
            return
        state = self.runtime.state
        setpoint = self._setpoint.entity_id
        if (
            state.export_limit_kw is not None
            and setpoint not in self._pressing
            and self._synced.get(setpoint) != state.export_limit_kw
        ):
            self._synced[setpoint] = state.export_limit_kw
            await self._own_call(
                "input_number",
                "set_value",
                {"entity_id": setpoint, "value": state.export_limit_kw},
            )
        exporting = state.exporting
        export_state = None if exporting is None else ("on" if exporting else "off")
        switch = self._switch.entity_id
        if (
            export_state is not None
            and switch not in self._pressing
            and self._synced.get(switch) != export_state
        ):
            self._synced[switch] = export_state
            await self._own_call("input_boolean", f"turn_{export_state}", {"entity_id": switch})
        options = self.runtime.options
        policy = "on" if options.price_policy else "off"
        switch = self._policy.entity_id
        if (
            options.price_entity
            and switch in self.present  # a price sensor just set: not before its helper is made
            and switch not in self._pressing
            and self._synced.get(switch) != policy
        ):
            self._synced[switch] = policy
            await self._own_call("input_boolean", f"turn_{policy}", {"entity_id": switch})

    # -- from Home Assistant

    async def changed(self, data: dict[str, Any]) -> None:
        """A helper's `state_changed` data: a press runs its command."""
        new, old = data.get("new_state"), data.get("old_state")
        if not isinstance(new, dict) or not isinstance(old, dict):
            return  # created, removed, or restored at start: not a press
        helper: Helper = self.by_entity[str(data["entity_id"])]
        # A button never pressed is "unknown"; its first press is real. Anything coming back from
        # "unavailable" is a restore (Home Assistant starting, the helper reloading), not a press.
        ignored_before = (UNAVAILABLE,) if helper.domain == "input_button" else IGNORED_STATES
        if new.get("state") in IGNORED_STATES or old.get("state") in ignored_before:
            return
        if new.get("state") == old.get("state"):
            return
        raw_context = new.get("context")
        context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
        if context.get("id") in self._own_contexts:
            return
        await self._press(helper, new.get("state"), self._origin(context))

    async def _press(self, helper: Helper, value: Any, origin: Origin) -> None:
        # While its command runs, the pressed helper is left as the user set it: a sync from a
        # state read mid-write would flip it back, and a second press would then change nothing.
        self._pressing.add(helper.entity_id)
        try:
            await self._run(helper, value, origin)
        finally:
            self._pressing.discard(helper.entity_id)
            self._synced.pop(helper.entity_id, None)
        await self.sync()  # the helper shows the outcome: a failed command puts it back

    async def _run(self, helper: Helper, value: Any, origin: Origin) -> None:
        ops = self.runtime.ops
        if helper.key == SETPOINT.key:
            await ops.set_export_limit(value, origin)
        elif helper.key == POLICY_SWITCH.key:
            await self.runtime.update_options({"price_policy": value == "on"})
            _LOGGER.info("price policy turned %s by %s", value, origin)
        elif helper.key == EXPORT_SWITCH.key:
            if value == "on":
                await ops.export_enable(origin)
            else:
                await ops.export_disable(origin)
        elif helper.command is not None:
            await ops.run(helper.command, {}, origin)
