"""The add-on's persistent notifications in Home Assistant: which ones should show now, and
creating and dismissing them (a one-shot notification is created once per run; the user
dismisses it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from sec1000.ha import service_call
from sec1000.ha.entities import BRAND, id_prefix, iso_time, name_prefix
from sec1000.options import FIRST_CONTROLLER, Options
from sec1000.runtime import Runtime
from sec1000.state import GuardState, StateModel

RESTORE_NOTIFICATION = "sec1000_watchdog_restore"
OFFLINE_NOTIFICATION = "sec1000_device_unreachable"
CONFIG_NOTIFICATION = "sec1000_configuration_invalid"
RETIRED_NOTIFICATION = "sec1000_watchdog_restore_retired"
GUARD_NOTIFICATION = "sec1000_export_guard"
ENERGY_NOTIFICATION = "sec1000_energy_file"
UNSAVED_NOTIFICATION = "sec1000_wanted_state_unsaved"
OVERSHOOT_NOTIFICATION = "sec1000_export_over_limit"
MQTT_NOTIFICATION = "sec1000_mqtt_broker"
# Created once per switch to MQTT; the user dismisses it.
MOVED_NOTIFICATION = "sec1000_entities_moved"
NOTIFICATIONS = (
    MQTT_NOTIFICATION,
    RESTORE_NOTIFICATION,
    OFFLINE_NOTIFICATION,
    CONFIG_NOTIFICATION,
    RETIRED_NOTIFICATION,
    GUARD_NOTIFICATION,
    ENERGY_NOTIFICATION,
    UNSAVED_NOTIFICATION,
    OVERSHOOT_NOTIFICATION,
)
# Told once per add-on run: the user dismisses them; a reconnect does not bring them back.
ONE_SHOT = frozenset({ENERGY_NOTIFICATION, RETIRED_NOTIFICATION})
# Guard states that need the user: a write not taken, a drift only reported, a contested limit.
GUARD_ALERTS = {
    GuardState.UNVERIFIED: "SEC1000: export limit not confirmed",
    GuardState.DRIFT: "SEC1000: export limit changed on the controller",
    GuardState.CONTESTED: "SEC1000: something else writes the export limit",
}

Notice = tuple[str, str]  # title, message
Wanted = dict[str, Notice]


class Commands(Protocol):
    """What the notifications need of the Home Assistant client."""

    async def send_command(self, message: dict[str, Any]) -> Any:
        """Send one WebSocket command and return its result."""


def desired_notifications(
    runtime: Runtime, *, started_at: float, now: float, mqtt_problem: str | None = None
) -> Wanted:
    """The notifications that should be shown now: id -> (title, message)."""
    state, options = runtime.state, runtime.options
    found: tuple[tuple[str, Notice | None], ...] = (
        (RESTORE_NOTIFICATION, _restore(state) or _not_running(runtime)),
        (OFFLINE_NOTIFICATION, _offline(state, options, started_at, now)),
        (RETIRED_NOTIFICATION, _retired(state)),
        (ENERGY_NOTIFICATION, _energy(state)),
        (GUARD_NOTIFICATION, _guard(state)),
        (OVERSHOOT_NOTIFICATION, _overshoot(state)),
        (UNSAVED_NOTIFICATION, _unsaved(state)),
        (MQTT_NOTIFICATION, _mqtt(mqtt_problem)),
        (CONFIG_NOTIFICATION, _config(runtime)),
    )
    return {notification_id: notice for notification_id, notice in found if notice is not None}


def _restore(state: StateModel) -> Notice | None:
    if not state.restore_pending:
        return None
    detail = state.restore_error or "the add-on is restoring it now"
    return (
        "SEC1000: export limiter not confirmed",
        "A reset export watchdog turned the export limiter off and it is not confirmed back on "
        f"yet: the plant may export without limit. {detail}",
    )


def _not_running(runtime: Runtime) -> Notice | None:
    """Controllers that do not run (removed or refused) whose restore is still pending: told
    on the first controller, whose notifications are the plant's."""
    names = runtime.others_restoring()
    if not names:
        return None
    return (
        "SEC1000: export limiter not confirmed",
        "A reset export watchdog turned the export limiter off on "
        + ", ".join(f"controller {name}" for name in names)
        + ", which the options no longer run (removed or refused). The add-on restores it at "
        "the address in its record, retried with backoff, until it is confirmed: the plant "
        "may export without limit there until then.",
    )


def _offline(state: StateModel, options: Options, started_at: float, now: float) -> Notice | None:
    health = state.link
    offline_for = now - (health.last_success or started_at)
    if not health.consecutive_failures or offline_for <= options.offline_notification_minutes * 60:
        return None
    return (
        "SEC1000: controller unreachable",
        f"The SEC1000 at {options.host}:{options.port} has not answered for "
        f"{offline_for / 60:.0f} minutes. Last error: {health.last_error}",
    )


def _retired(state: StateModel) -> Notice | None:
    if not state.restore_retired:
        return None
    return (
        "SEC1000: watchdog restore given up",
        f"The add-on could not put the export limiter back as recorded: {state.restore_retired}",
    )


def _energy(state: StateModel) -> Notice | None:
    broken = state.energy.get("broken")
    return ("SEC1000: energy counters restarted", f"{broken}.") if broken else None


def _guard(state: StateModel) -> Notice | None:
    title = GUARD_ALERTS.get(state.guard.state)
    return (title, f"The export guard: {state.guard.message}.") if title else None


def _overshoot(state: StateModel) -> Notice | None:
    over = state.overshoot
    if not over.get("on"):
        return None
    return (
        "SEC1000: export over the limit",
        f"Since {iso_time(over['since'])} the grid meter reads up to "
        f"{over['max_kw']:.2f} kW of export with a limit of {over['limit_kw']:.2f} kW: "
        "more than the limit plus the margin, for longer than the controller needs to "
        "settle. Check the inverters the controller does not reach, the CT ratio and "
        "the RS485 line. It is dismissed when export is back under the limit.",
    )


def _unsaved(state: StateModel) -> Notice | None:
    if not state.guard.save_error:
        return None
    return (
        "SEC1000: the wanted export state is not saved",
        f"The export guard {state.guard.save_error}. Free some space in the add-on's data folder.",
    )


def _mqtt(problem: str | None) -> Notice | None:
    return ("SEC1000: MQTT broker not reachable", problem) if problem else None


def _config(runtime: Runtime) -> Notice | None:
    if runtime.options_error is None:
        refused = runtime.options.refused
        if not refused:
            return None
        items = "\n".join(f"- {item.label}: {item.reason}" for item in refused)
        return (
            "SEC1000: a controller's configuration is refused",
            "These items of the `controllers` option are invalid, so their controllers are "
            "not contacted (a pending watchdog restore still runs from its record). Every "
            f"other controller runs as configured. Fix them in the Configuration tab:\n{items}",
        )
    return (
        "SEC1000: configuration invalid",
        "The add-on options are invalid, so the controller is not contacted: "
        f"{runtime.options_error}",
    )


def moved_notice(entity_ids: Iterable[str]) -> Notice:
    """The words of the one-off notification after a switch to the MQTT device."""
    new = "\n".join(f"- `{entity_id}`" for entity_id in entity_ids)
    return (
        "SEC1000: entities moved to MQTT",
        "The SEC1000 entities are now one device through MQTT (Settings → Devices). "
        "The helpers `input_button.sec1000_*`, `input_number.sec1000_export_limit_setpoint` "
        "and `input_boolean.sec1000_*` were removed: update automations and dashboards "
        f"that use them. The entities now:\n{new}",
    )


def notification_id(base: str, controller: str = FIRST_CONTROLLER) -> str:
    """A notification's id for one controller: sec1000_device_unreachable of the first,
    sec1000_barn_device_unreachable of controller barn."""
    return id_prefix(controller) + base.removeprefix(FIRST_CONTROLLER)


def titled(title: str, controller: str = FIRST_CONTROLLER) -> str:
    """A notification's title for one controller: "SEC1000 barn: …" for controller barn."""
    return name_prefix(controller) + title.removeprefix(BRAND)


class Notifications:
    """Shows one controller's wanted notifications in Home Assistant and dismisses the others
    (controller barn's ids and titles say so: sec1000_barn_…, "SEC1000 barn: …")."""

    def __init__(
        self,
        runtime: Runtime,
        client: Commands,
        *,
        mqtt_problem: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._runtime = runtime
        self._controller = runtime.name
        self._client = client
        self._mqtt_problem = mqtt_problem  # why the MQTT device is missing
        self.started_at = time.time()  # the controller counts as offline from here at most
        self._shown: dict[str, str] = {}
        self._told: dict[str, str] = {}  # one-shot notifications already created

    def desired(self) -> Wanted:
        """The notifications that should be shown now: id -> (title, message)."""
        return desired_notifications(
            self._runtime,
            started_at=self.started_at,
            now=time.time(),
            mqtt_problem=self._mqtt_problem(),
        )

    def forget_shown(self) -> None:
        """A new connection: what Home Assistant shows is known again after the next resync."""
        self._shown.clear()

    async def notify(self, notification_id: str, title: str, message: str) -> None:
        """Create (or replace) one notification."""
        data = {"notification_id": notification_id, "title": title, "message": message}
        await self._client.send_command(service_call("persistent_notification", "create", data))

    async def update(self, resync: bool = False) -> None:
        """Create what is wanted and changed; dismiss what is no longer wanted (`resync`: every
        one not wanted, shown before this connection or not)."""
        wanted = self.desired()
        for base, (title, message) in wanted.items():
            if base in ONE_SHOT and self._told.get(base) == message:
                continue
            if self._shown.get(base) != message:
                await self.notify(
                    notification_id(base, self._controller),
                    titled(title, self._controller),
                    message,
                )
                self._shown[base] = message
                if base in ONE_SHOT:
                    self._told[base] = message
        for base in NOTIFICATIONS:
            if base in ONE_SHOT:
                continue  # dismissed by the user, never by the add-on
            if base not in wanted and (resync or base in self._shown):
                await self._dismiss(base)

    async def dismiss_all(self) -> None:
        """Dismiss every notification of this controller (it was removed from the options)."""
        for base in NOTIFICATIONS:
            await self._dismiss(base)

    async def _dismiss(self, base: str) -> None:
        data = {"notification_id": notification_id(base, self._controller)}
        await self._client.send_command(service_call("persistent_notification", "dismiss", data))
        self._shown.pop(base, None)
