"""The SimPy discrete-event model: per request, exact, the reference engine.

`simulate` runs one replication, `unsupported` says what it cannot run (nothing),
`trace` builds a replication's random inputs for the lab to replay.
"""

from sim.model.engine import DRAWS, ReplicationOutput, simulate, unsupported
from sim.model.trace import trace

__all__ = ["DRAWS", "ReplicationOutput", "simulate", "trace", "unsupported"]
