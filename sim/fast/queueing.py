"""M/M/C/N by formula, vectorised over seconds: blocking, waiting, busy servers.

A birth-death queue with C servers of rate mu and room for N >= C requests in
all (C in service, N - C waiting). With a = lambda / mu, rho = a / C and B the
Erlang B probability of C servers, the stationary law restricted to j <= C is
Erlang B's, and above C it is geometric: pi_{C+k} proportional to B rho^k.
So, with T = 1 + B (rho + ... + rho^(N-C)):

- blocking (an arrival finds N): B rho^(N-C) / T
- waiting (finds C <= j < N): B (1 + ... + rho^(N-C-1)) / T, and then it waits
  for k + 1 departures at rate C mu, k its place in the queue (P(k) ~ rho^k).

Everything is computed with rho^-1 where rho > 1, so an overloaded second does
not overflow (its queue is full: blocking 1 - 1/rho).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def erlang_b(servers: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """Erlang B per element by its recurrence (stable for large C); servers may vary."""
    servers = np.asarray(servers, dtype=np.int64)
    a = np.asarray(offered, dtype=float)
    b = np.ones(np.broadcast(servers, a).shape)
    top = int(servers.max()) if servers.size else 0
    for k in range(1, top + 1):
        step = a * b / (k + a * b)
        b = np.where(k <= servers, step, b)
    return np.where(servers > 0, b, 1.0)


@dataclass
class Queue:
    """The per-second M/M/C/N state: what an arrival meets."""

    servers: np.ndarray  # C
    room: np.ndarray  # N - C: places in the queue
    rho: np.ndarray  # lambda / (C mu)
    erlang: np.ndarray  # B(C, a)
    mu: float  # 1 / mean holding time
    # Instances that share the queue (a balancer that keeps queues level): an arrival that
    # meets k waiting joins an instance with floor(k / pool) ahead of it, served by its own
    # C / pool workers. 1: the queue is one instance's.
    pool: np.ndarray | None = None

    @property
    def _geometric(self) -> tuple[np.ndarray, np.ndarray]:
        """(sum_{k<room} x^k, x^room) with x = rho, or 1/rho where rho > 1."""
        rho, room = self.rho, self.room.astype(float)
        over = rho > 1.0
        r = np.where(over, 1.0 / np.maximum(rho, 1e-300), rho)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rk = r**room
            # sum_{k<room} r^k; room where r == 1
            s = np.where(np.abs(1.0 - r) > 1e-12, (1.0 - rk) / (1.0 - r), room)
        return s, rk

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """(blocking, waiting) probabilities of an arrival (PASTA).

        With s = sum_{k<room} rho^k: T = 1 + B rho s, blocking B rho^room / T,
        waiting B s / T. Where rho > 1 all three are divided by rho^room and
        written with r = 1/rho (s then sums r^k): T' = r^room + B s,
        blocking B / T', waiting B r s / T'.
        """
        b = self.erlang
        s, rk = self._geometric
        over = self.rho > 1.0
        r = np.where(over, 1.0 / np.maximum(self.rho, 1e-300), self.rho)
        total = np.where(over, rk + b * s, 1.0 + b * self.rho * s)
        block = np.where(over, b, b * rk) / total
        wait = np.where(over, b * r * s, b * s) / total
        return block, wait

    def waits(self, seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Waiting times of admitted arrivals in the given seconds (0 for those served at once)."""
        block, wait = self.probabilities()
        admitted = np.maximum(1.0 - block[seconds], 1e-300)
        p_wait = np.clip(wait[seconds] / admitted, 0.0, 1.0)
        waiting = rng.random(len(seconds)) < p_wait
        out = np.zeros(len(seconds))
        idx = seconds[waiting]
        if len(idx) == 0:
            return out
        rho, room = self.rho[idx], self.room[idx].astype(float)
        # Place k in the queue: P(k) ~ rho^k on 0..room-1, drawn by inverting its CDF.
        u = rng.random(len(idx))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            near_one = np.abs(np.log(np.maximum(rho, 1e-300))) < 1e-9
            # CDF(k) = (1 - rho^(k+1)) / (1 - rho^room); k = ceil(log(1 - u (1 - rho^room)) / log rho) - 1
            lr = np.log(np.maximum(rho, 1e-300))
            # rho > 1, without rho^room: k + 1 >= room + log(u + (1 - u) rho^-room) / log rho
            top = np.where(
                rho > 1.0,
                room + np.log(u + (1.0 - u) * np.exp(-room * lr)) / lr,
                np.log1p(-u * (1.0 - np.exp(room * lr))) / lr,
            )
            k = np.where(near_one, np.floor(u * room), np.ceil(top) - 1.0)
        k = np.clip(np.nan_to_num(k, nan=0.0), 0.0, np.maximum(room - 1.0, 0.0))
        pool = np.ones(len(idx)) if self.pool is None else self.pool[idx].astype(float)
        rate = self.servers[idx] / pool * self.mu
        out[waiting] = rng.gamma(np.floor(k / pool) + 1.0, 1.0 / rate)
        return out


def mean_in_system(servers: int, room: int, offered: float) -> float:
    """E[requests in an M/M/C/N queue] with C = servers, N - C = room, lambda / mu = offered."""
    j = np.arange(servers + room + 1, dtype=float)
    # log pi_j (unnormalised): a^j / j! up to C, then a^C / C! (a / C)^(j - C).
    log_a = np.log(max(offered, 1e-300))
    steps = np.log(np.maximum(np.minimum(j[1:], servers), 1.0))
    log_pi = np.concatenate([[0.0], np.cumsum(log_a - steps)])
    pi = np.exp(log_pi - log_pi.max())
    return float((j * pi).sum() / pi.sum())
