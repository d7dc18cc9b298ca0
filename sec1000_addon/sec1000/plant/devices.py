"""Two controllers on one device: found by looking the addresses up, refused at a start."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

from sec1000.options import FIRST_CONTROLLER, Options, RefusedController, canonical_host

# A host name's lookup: how long it may take before the check goes on without it.
LOOKUP_TIMEOUT = 3.0


async def _device_addresses(host: str, port: int) -> set[tuple[str, int]]:
    """Every address a host name or spelling leads to (one spelling each); just its own
    spelling when it cannot be looked up."""
    try:
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
            LOOKUP_TIMEOUT,
        )
    except (OSError, TimeoutError, UnicodeError, ValueError):
        return {(canonical_host(host), port)}
    return {(canonical_host(str(info[4][0])), port) for info in found}


async def shared_devices(document: Options) -> dict[str, str]:
    """The additional controllers whose address leads to a device an earlier controller has
    (`localhost` beside `127.0.0.1`), by name, each with why: two controllers on one device
    take turns at its one connection, and each guard undoes the other's limit."""
    names = document.controller_names
    found = await asyncio.gather(*(_device_addresses(*address_of(document, n)) for n in names))
    taken: dict[tuple[str, int], str] = {}
    shared: dict[str, str] = {}
    for name, addresses in zip(names, found, strict=True):
        if clash := next((taken[a] for a in sorted(addresses) if a in taken), None):
            options = document.of_controller(name)
            owner = "the first controller" if clash == FIRST_CONTROLLER else f"controller {clash}"
            shared[name] = (
                f"controller {name} ({options.host}:{options.port}) leads to the device "
                f"{owner} is at; each controller takes the one connection its device allows"
            )
            continue
        taken.update(dict.fromkeys(addresses, name))
    return shared


async def refuse_shared_devices(options: Options) -> Options:
    """Stored options at a start: an additional controller on a device an earlier one has
    is refused, as a bad item is (kept as stored; the others run)."""
    shared = await shared_devices(options)
    if not shared:
        return options
    items = {item.name: item for item in options.controllers}
    refused = [
        RefusedController(options.controller_names.index(name), items[name].to_dict(), reason)
        for name, reason in shared.items()
    ]
    return replace(
        options,
        controllers=tuple(item for item in options.controllers if item.name not in shared),
        refused=(*options.refused, *refused),
    )


def address_of(document: Options, name: str) -> tuple[str, int]:
    """Where the options put controller `name`."""
    options = document.of_controller(name)
    return options.host, options.port
