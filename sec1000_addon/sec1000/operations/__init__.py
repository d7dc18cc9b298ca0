"""The user-level operations (`core.Operations`), the rules every limiter write meets
(`limits`), and what they are handed and give back (`ports`)."""

from sec1000.limiter.writes import CLI, POLL, Origin
from sec1000.operations.core import Operations
from sec1000.operations.limits import MODE_OFF, LimitRules
from sec1000.operations.ports import Call, CommandResult, GuardPort, Wiring

__all__ = [
    "CLI",
    "MODE_OFF",
    "POLL",
    "Call",
    "CommandResult",
    "GuardPort",
    "LimitRules",
    "Operations",
    "Origin",
    "Wiring",
]
