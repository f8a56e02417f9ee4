"""Local WhatsApp Cloud API simulator: Graph endpoints, signed webhooks, scripted customers, faults."""

from layanify.simulator.app import Simulator
from layanify.simulator.config import SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig"]
