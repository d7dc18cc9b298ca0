"""What kinds of values the options take, and how a raw value (JSON, form text) becomes one.

Each kind has one reader in `READERS`; an option's declaration names its kind and bounds.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

from sec1000.common.numbers import NumberError, parse_number

MAX_TEXT_LENGTH = 255  # MQTT user names and passwords
# A Home Assistant entity id, e.g. sensor.nordpool_kwh_no1_eur.
_ENTITY_ID = re.compile(r"[a-z_]+\.[a-z0-9_]+")
# RFC 1123 host names: labels of 1-63 letters, digits and hyphens, not starting or ending
# with a hyphen; at most 253 characters in all.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_HOST_LENGTH = 253
# An IPv6 zone (fe80::1%eth0): an interface name or index, 15 characters at most on Linux.
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
MAX_ENTITY_ID_LENGTH = 255


class Kind(StrEnum):
    """An option's kind; the value is its name in the option table and the Supervisor schema."""

    STR = "str"  # a host: never empty
    ADDRESS = "address"  # a host, or empty
    ENTITY = "entity"
    TEXT = "text"
    PASSWORD = "password"
    PORT = "port"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    LIST = "list"  # one of the choices
    CONTROLLERS = "controllers"


class Bounds(Protocol):
    """What a reader needs of an option beyond its kind."""

    @property
    def minimum(self) -> float | None:
        """The least value (None: no bound)."""

    @property
    def maximum(self) -> float | None:
        """The greatest value (None: no bound)."""

    @property
    def choices(self) -> tuple[str, ...]:
        """The values a choice may take."""


def bound(value: float) -> str:
    """A bound as written in messages and the schema: 5, not 5.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


_TRUE = ("true", "on", "1", "yes")
_FALSE = ("false", "off", "0", "no")


def read_bool(spec: Bounds, raw: object) -> bool:
    """true/false, or the words a form or a person may send for them."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in (*_TRUE, *_FALSE):
        return raw.lower() in _TRUE
    raise ValueError("must be true or false")


def read_choice(spec: Bounds, raw: object) -> str:
    """One of the option's choices."""
    if raw not in spec.choices:
        raise ValueError("must be one of " + ", ".join(spec.choices))
    return str(raw)


def read_host(spec: Bounds, raw: object) -> str:
    """A host the add-on connects to."""
    return validate_host(raw)


def read_address(spec: Bounds, raw: object) -> str:
    """A host, or empty (none)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ""
    return validate_host(raw)


def read_text(spec: Bounds, raw: object) -> str:
    """One line of printable text (a user name, a password), or empty."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValueError("must be text")
    if len(raw) > MAX_TEXT_LENGTH:
        raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters")
    if not raw.isprintable():
        raise ValueError("must not hold line breaks or control characters")
    return raw


def read_entity(spec: Bounds, raw: object) -> str:
    """A Home Assistant entity id, or empty."""
    text = raw.strip() if isinstance(raw, str) else None
    if text is not None and len(text) > MAX_ENTITY_ID_LENGTH:
        raise ValueError(f"must be an entity id of at most {MAX_ENTITY_ID_LENGTH} characters")
    if text is None or (text and not _ENTITY_ID.fullmatch(text)):
        raise ValueError("must be an entity id such as sensor.electricity_price, or empty")
    return text


def read_number(spec: Bounds, raw: object) -> float:
    """A number within the option's bounds (the one number parser: 3,5 and 3.5 alike)."""
    try:
        number: float = parse_number(raw)
    except NumberError as err:
        raise ValueError(str(err)) from None
    return _within(spec, number)


def read_whole(spec: Bounds, raw: object) -> int:
    """A whole number within the option's bounds."""
    try:
        number: float = parse_number(raw)
    except NumberError as err:
        raise ValueError(str(err)) from None
    if not number.is_integer():
        raise ValueError("must be a whole number")
    return int(_within(spec, int(number)))


def _within(spec: Bounds, number: float) -> float:
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"must be at least {bound(spec.minimum)}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"must be at most {bound(spec.maximum)}")
    return number


def _not_alone(spec: Bounds, raw: object) -> Any:
    raise ValueError("is read with the controllers (parse_controllers)")


# The reader of each kind: a raw value (JSON or form text) in, the option's value out, or
# ValueError in words.
READERS: dict[Kind, Callable[[Bounds, object], Any]] = {
    Kind.STR: read_host,
    Kind.ADDRESS: read_address,
    Kind.ENTITY: read_entity,
    Kind.TEXT: read_text,
    Kind.PASSWORD: read_text,
    Kind.PORT: read_whole,
    Kind.INT: read_whole,
    Kind.FLOAT: read_number,
    Kind.BOOL: read_bool,
    Kind.LIST: read_choice,
    Kind.CONTROLLERS: _not_alone,
}


def validate_host(raw: object) -> str:
    """An IPv4 or IPv6 address, or an RFC 1123 host name; raises ValueError in words."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must not be empty")
    text = raw.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        zone = getattr(address, "scope_id", None)
        if zone is not None and not _ZONE.fullmatch(zone):
            raise ValueError(
                "must be an IP address whose zone (after %) names a network interface: "
                "1 to 15 letters, digits, '_', '.' or '-'"
            )
        return str(address)
    name = text.removesuffix(".")
    if (
        len(name) <= MAX_HOST_LENGTH
        and name.isascii()
        and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))
        and not name.replace(".", "").isdigit()  # 192.168.1..200 is no name either
    ):
        return text
    raise ValueError(
        "must be an IP address (192.168.1.200, fd00::1) or a host name of letters, digits, "
        "hyphens and dots, without spaces"
    )


def ceiling_watts(ceiling_kw: float) -> int:
    """A ceiling in kW as the controller can hold it: whole 10 W steps, rounded down (the
    protocol's limit is whole watts, set in 10 W steps)."""
    return math.floor(round(ceiling_kw * 1000, 6) / 10) * 10


def canonical_host(host: str) -> str:
    """One spelling per address, for telling two controllers at one device apart without a
    lookup: IPv4-mapped IPv6 and the short and hex IPv4 forms (0x7f.1) as dotted quads."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:  # inet_aton's forms, which the socket calls accept: 127.1, 0x7f.1, 2130706433
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host.lower().removesuffix(".")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
