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

Round robin hands each of n instances every n-th arrival of a Poisson stream:
Erlang-n interarrivals, E_n/M/C (docs/references.md, "Queueing results"). The
GI/M/C result: an arrival finds k >= C waiting-room places taken with
probability P_wait (1 - sigma) sigma^k, sigma the root in (0, 1) of
sigma = A*(C mu (1 - sigma)), A* the interarrival time's Laplace-Stieltjes
transform, and P_wait Takacs' boundary formula; so it waits for k + 1
departures at rate C mu, and P(W > t) = P_wait exp(-C mu (1 - sigma) t). With
room for N - C waiting, that law is cut at N (exact for Poisson arrivals,
where sigma = rho and it is the M/M/C/N law above; for Erlang arrivals an
approximation, small unless the queue is nearly full). At rho >= 1 there is
no such root, and the M/M/C/N law stands (an upper bound on the wait).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


def smoothed(servers: np.ndarray, phases: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigma, P_wait) of E_n/M/C per element: arrivals every `phases`-th of a Poisson
    stream, `servers` workers, load rho = lambda / (C mu) per instance; rho < 1.

    With Lambda = n lambda the Poisson stream's rate, A*(s) = (Lambda / (Lambda + s))^n,
    so A*(C mu (1 - sigma)) = (1 + (1 - sigma) / (n rho))^-n and A*(j mu) =
    (1 + j / (n rho C))^-n: both depend on n, C and rho only."""
    c = np.asarray(servers, dtype=float)
    n = np.asarray(phases, dtype=float)
    rho = np.asarray(rho, dtype=float)
    sigma = _sigma(n, rho)
    return sigma, _takacs(c, n, rho, sigma)


def _sigma(n: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """The root in (0, 1) of sigma = g(sigma) = (1 + (1 - sigma) / (n rho))^-n. g is convex
    with g(0) > 0 and g(1) = 1, so Newton's iterates from 0 rise to the root monotonically
    (slowly only as rho nears 1, where the two roots meet)."""
    nr = n * rho
    sigma = np.zeros(np.broadcast(n, rho).shape)
    todo = np.ones(sigma.shape, dtype=bool)
    for _ in range(200):
        base = 1.0 + (1.0 - sigma) / nr
        g = base**-n
        slope = g / (base * rho)  # g'(sigma) = n g / (n rho base)
        step = (g - sigma) / np.maximum(1.0 - slope, 1e-12)
        step = np.where(todo, step, 0.0)
        sigma = np.minimum(sigma + step, 1.0 - 1e-15)
        todo &= np.abs(step) > 1e-13
        if not todo.any():
            break
    return sigma


def _takacs(c: np.ndarray, n: np.ndarray, rho: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(an arrival waits) in GI/M/C (Takacs 1962; Gross & Harris, GI/M/c): with
    g_j = A*(j mu) and C_j = prod_{i<=j} g_i / (1 - g_i),
    P_wait = 1 / (1 + (1 - sigma) sum_{j=1}^{C} binom(C, j) (C (1 - g_j) - j) /
    (C_j (1 - g_j) (C (1 - sigma) - j))). Every term is positive (numerator and denominator
    change sign together, at j = C (1 - sigma), where the ratio tends to 1 + C mu A*'(j mu)),
    so the sum is taken in logs: 1 / C_j overflows for many workers."""
    top = int(c.max(initial=1))
    shape = np.broadcast(c, n, rho).shape
    log_cj, log_binom = np.zeros(shape), np.zeros(shape)
    log_sum = np.full(shape, -np.inf)
    for j in range(1, top + 1):
        x = j / (n * rho * c)
        log_g = -n * np.log1p(x)
        g = np.exp(log_g)
        log_1g = np.log(-np.expm1(log_g))
        log_cj = log_cj + log_g - log_1g
        log_binom = log_binom + np.log(np.maximum(c - j + 1, 1.0)) - math.log(j)
        num, den = c * (1.0 - g) - j, c * (1.0 - sigma) - j
        limit = 1.0 - g / (rho * (1.0 + x))
        ratio = np.where(np.abs(den) > 1e-9, num / np.where(den == 0, 1.0, den), limit)
        term = log_binom - log_cj - log_1g + np.log(np.maximum(ratio, 1e-300))
        log_sum = np.where(j <= c, np.logaddexp(log_sum, term), log_sum)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(np.log1p(-sigma) + log_sum))


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
    # Round robin: each instance takes every `phases`-th arrival (E_n/M/C, the module's
    # docstring); 1 or None: Poisson arrivals.
    phases: np.ndarray | None = None

    @functools.cached_property
    def _smoothed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seconds with smoothed arrivals, their sigma, their P_wait). Seconds where Poisson
        arrivals would almost never wait are left out: smoother arrivals wait less still."""
        if self.phases is None:
            empty = np.empty(0)
            return np.empty(0, dtype=np.int64), empty, empty
        _, wait = self._poisson()
        pick = np.flatnonzero((self.phases > 1) & (self.rho > 0) & (self.rho < 1.0 - 1e-9) & (wait > 1e-12))
        sigma, p_wait = smoothed(self.servers[pick], self.phases[pick], self.rho[pick])
        return pick, sigma, p_wait

    @property
    def ratio(self) -> np.ndarray:
        """The geometric ratio of the places arrivals find taken: rho, or sigma (smoothed)."""
        pick, sigma, _ = self._smoothed
        out = np.asarray(self.rho, dtype=float).copy()
        out[pick] = sigma
        return out

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
        """(blocking, waiting) probabilities of an arrival: M/M/C/N (PASTA), and where
        arrivals are smoothed, the GI/M/C law cut at N: with P = P_wait,
        blocking P (1 - sigma) sigma^room / (1 - P sigma^(room+1)) and waiting
        P (1 - sigma^room) / (1 - P sigma^(room+1)) (which are M/M/C/N's at sigma = rho)."""
        block, wait = self._poisson()
        pick, sigma, p_wait = self._smoothed
        if len(pick):
            block, wait = block.copy(), wait.copy()
            room = self.room[pick].astype(float)
            top = 1.0 - p_wait * sigma ** (room + 1.0)
            block[pick] = p_wait * (1.0 - sigma) * sigma**room / top
            wait[pick] = p_wait * (1.0 - sigma**room) / top
        return block, wait

    def _poisson(self) -> tuple[np.ndarray, np.ndarray]:
        """(blocking, waiting) probabilities of a Poisson arrival (PASTA).

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
        rho, room = self.ratio[idx], self.room[idx].astype(float)
        # Place k in the queue: P(k) ~ rho^k (sigma^k when smoothed) on 0..room-1, drawn by inverting its CDF.
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
