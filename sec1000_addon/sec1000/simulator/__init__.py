"""A faithful simulated SEC1000 on a TCP port, with every known fault switchable."""

from sec1000.simulator.device import SimulatedDevice
from sec1000.simulator.server import FAULTS, Fault, SimulatorServer

__all__ = ["FAULTS", "Fault", "SimulatedDevice", "SimulatorServer"]
