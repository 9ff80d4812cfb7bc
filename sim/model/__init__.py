"""The SimPy discrete-event model: per request, exact, the reference engine."""

from sim.model.engine import DRAWS, ReplicationOutput, simulate, unsupported

__all__ = ["DRAWS", "ReplicationOutput", "simulate", "unsupported"]
