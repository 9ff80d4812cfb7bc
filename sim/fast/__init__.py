"""The fast engine: the model's semantics per client with numpy, for a million clients and a day.

`simulate(scenario, strategy, seed, replication)` has the model's signature
and returns the same tables; `unsupported(scenario)` names what it does not
model (the runner refuses those scenarios with `--engine fast`). docs/fast.md
explains the method and its approximations.
"""

from sim.fast.engine import simulate
from sim.fast.refusals import unsupported
from sim.replication import ReplicationOutput

__all__ = ["ReplicationOutput", "simulate", "unsupported"]
