"""The SimPy discrete-event model: per request, exact, the reference engine."""

from sim.model.engine import ReplicationOutput, simulate

__all__ = ["ReplicationOutput", "simulate"]
