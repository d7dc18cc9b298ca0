"""Typed application state keys shared by the panel's modules."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import jinja2
from aiohttp import web

from sec1000.runtime import Runtime
from sec1000.simulator import SimulatorServer

RUNTIME = web.AppKey("runtime", Runtime)
SIMULATOR = web.AppKey("simulator", SimulatorServer)
HaStatus = Callable[[], dict[str, Any]]
HA_STATUS: web.AppKey[HaStatus] = web.AppKey("ha_status")
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SUPERVISED = web.AppKey("supervised", bool)
TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("tasks")  # commands started by the panel
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")  # live channels
