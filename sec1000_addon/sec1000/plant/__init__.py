"""Every controller: the plant (`core`), the options document as it keeps it (`document`) and
two controllers on one device found (`devices`)."""

from sec1000.plant.core import Change, Plant, PlantEvent, UnknownController
from sec1000.plant.devices import refuse_shared_devices, shared_devices
from sec1000.plant.document import (
    KNOWN_NAME,
    controller_dir,
    controller_item,
    keep_inherited,
    read_known,
)

__all__ = [
    "KNOWN_NAME",
    "Change",
    "Plant",
    "PlantEvent",
    "UnknownController",
    "controller_dir",
    "controller_item",
    "keep_inherited",
    "read_known",
    "refuse_shared_devices",
    "shared_devices",
]
