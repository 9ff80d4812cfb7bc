"""sim.policy: the decisions, with no I/O and no clock of their own.

Purity rule: nothing in this package reads a clock, sleeps, touches a socket or a
file, or imports simpy, asyncio, an engine (``sim.model``, ``sim.fast``,
``sim.lab``) or ``sim.core``. Every time-dependent function takes ``now`` (or
another time) in seconds as an argument, and every random choice takes a
``numpy.random.Generator``. The SimPy model, the numpy engine and the real asyncio
balancer all call this same code, so they differ only in time and I/O (in the
spirit of h11's sans-IO state machines). numpy is the only dependency.

Modules: :mod:`~sim.policy.cache` (DNS cache policies and a cache),
:mod:`~sim.policy.balancing` (eligibility and pick policies),
:mod:`~sim.policy.health` (the health-check state machine),
:mod:`~sim.policy.attempts` (retries, connection reuse, address choice),
:mod:`~sim.policy.failover` (failover strategies as timed actions),
:mod:`~sim.policy.sampling` (the ``Sampler`` protocol),
:mod:`~sim.policy.outcomes` (what an attempt outcome means),
:mod:`~sim.policy.restarts` (a client's process restarts),
:mod:`~sim.policy.sessions` (browsing sessions in place of Poisson requests).
"""

from sim.policy.attempts import (
    ADDRESS_MODES,
    ConnectionReuse,
    RetryRule,
    attempt_cost,
    choose_address,
)
from sim.policy.balancing import (
    BALANCING_POLICIES,
    BalancingPolicy,
    Host,
    LeastOutstanding,
    PowerOfTwoChoices,
    Random,
    RoundRobin,
    eligible,
    make_balancing_policy,
)
from sim.policy.cache import (
    CACHE_KINDS,
    Cache,
    CachePolicy,
    Cap,
    Extend,
    Fixed,
    Floor,
    Forever,
    Honor,
    NoCache,
    ServeStale,
    equilibrium_residual,
    in_grace,
    make_cache_policy,
)
from sim.policy.failover import (
    PLANS,
    Action,
    CnameRepoint,
    EipRemap,
    FailoverPlan,
    FailoverSpec,
    detection_bounds,
    make_plan,
    operator_detected_at,
)
from sim.policy.health import (
    HealthCheckSpec,
    HealthState,
    detection_time,
    first_probe_at,
    on_probe,
    probe_duration,
    probe_ok,
    probe_step,
)
from sim.policy.outcomes import OUTCOMES, is_success, waits_for_timeout
from sim.policy.restarts import Restarts
from sim.policy.sampling import Constant, Exponential, Sampler, draw, length_biased
from sim.policy.sessions import Sessions, expected_count

__all__ = [
    "ADDRESS_MODES",
    "BALANCING_POLICIES",
    "CACHE_KINDS",
    "OUTCOMES",
    "PLANS",
    "Action",
    "BalancingPolicy",
    "Cache",
    "CachePolicy",
    "Cap",
    "CnameRepoint",
    "ConnectionReuse",
    "Constant",
    "EipRemap",
    "Exponential",
    "Extend",
    "FailoverPlan",
    "FailoverSpec",
    "Fixed",
    "Floor",
    "Forever",
    "HealthCheckSpec",
    "HealthState",
    "Honor",
    "Host",
    "LeastOutstanding",
    "NoCache",
    "PowerOfTwoChoices",
    "Random",
    "Restarts",
    "RetryRule",
    "RoundRobin",
    "Sampler",
    "ServeStale",
    "Sessions",
    "attempt_cost",
    "choose_address",
    "detection_bounds",
    "detection_time",
    "draw",
    "eligible",
    "equilibrium_residual",
    "expected_count",
    "first_probe_at",
    "in_grace",
    "is_success",
    "length_biased",
    "make_balancing_policy",
    "make_cache_policy",
    "make_plan",
    "on_probe",
    "operator_detected_at",
    "probe_duration",
    "probe_ok",
    "probe_step",
    "waits_for_timeout",
]
