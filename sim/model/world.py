"""What traffic meets on its way: addresses, balancer endpoints, backend instances.

Plain objects with __slots__: they sit on the per-request path.
"""

from __future__ import annotations

from collections import deque

UP, REFUSE, BLACKHOLE = "up", "refuse", "blackhole"


class Balancer:
    """A load balancer: nodes that each answer on their own address, plus the
    front that a static address (Elastic IP) leads to."""

    __slots__ = ("capacity", "current", "front", "mode", "name", "nodes", "requests", "role", "scaling")

    def __init__(self, name: str, role: str, capacity: float) -> None:
        self.name = name
        self.role = role
        self.capacity = capacity
        self.mode = UP
        self.nodes: list[Endpoint] = []  # published in the balancer's own A records
        self.front: Endpoint = Endpoint(f"{name}-front", self, 0.0)
        self.requests = 0  # offered to its nodes since the last scaling decision
        self.scaling = False
        # Whether the service points here now (a current target): set by the
        # replication at each change, read on every request.
        self.current = False


class Endpoint:
    """Where packets sent to an address arrive: one balancer node, or a balancer's front.

    Capacity is enforced per whole second (a token bucket with a one-second
    window): requests beyond it are shed with a 503, which is how an
    overloaded ELB node behaves to a client.
    """

    __slots__ = ("admitted", "balancer", "capacity", "name", "retired", "window")

    def __init__(self, name: str, balancer: Balancer, capacity: float) -> None:
        self.name = name
        self.balancer = balancer
        self.capacity = capacity
        self.retired = False  # a replaced node refuses once its drain time is over
        self.window = -1
        self.admitted = 0

    @property
    def mode(self) -> str:
        return REFUSE if self.retired else self.balancer.mode

    def admit(self, now: float) -> bool:
        second = int(now)
        if second != self.window:
            self.window = second
            self.admitted = 0
        # Offered, not admitted: node scaling responds to the load sent to the
        # nodes; admitted requests never pass capacity, so scaling would never start.
        self.balancer.requests += 1
        if self.admitted >= self.capacity:
            return False
        self.admitted += 1
        return True


class Address:
    """An IP address; `endpoint` is where it leads now (a static address moves)."""

    __slots__ = ("endpoint", "name", "users")

    def __init__(self, name: str, endpoint: Endpoint) -> None:
        self.name = name
        self.endpoint = endpoint
        self.users = 0  # clients whose current connection target is this address

    def __repr__(self) -> str:
        return f"Address({self.name} -> {self.endpoint.name})"


class Instance:
    """A backend instance: `workers` in parallel, a FIFO queue up to `queue_limit`.

    Exposes `healthy`, `draining` and `outstanding` for sim.policy.balancing.
    """

    __slots__ = (
        "busy",
        "draining",
        "generation",
        "health",
        "healthy",
        "id",
        "mode",
        "outstanding",
        "queue",
        "queue_limit",
        "removed",
        "workers",
    )

    def __init__(self, id: int, workers: int, queue_limit: int, health: object) -> None:
        self.id = id
        self.workers = workers
        self.queue_limit = queue_limit
        self.mode = UP
        self.healthy = True
        self.draining = False
        self.removed = False
        self.health = health
        self.busy = 0
        self.queue: deque = deque()
        self.outstanding = 0
        # Bumped when the instance dies: work it held is lost, and completions
        # scheduled before the death must not count.
        self.generation = 0
