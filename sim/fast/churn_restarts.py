"""Node churn for clients whose stub keeps an answer until the process restarts.

A `forever` stub (nginx proxy_pass to a literal host) holds the node list it
resolved until a restart empties it (sim.model.lifecycle.restart); its first
request after the restart asks the resolver again and keeps what that holds
then, one position further in the list (the model's rotation, one on per answer
kept). sim.fast.churn follows such a client per held answer (sim.fast.churn.spans):
without restarts one answer, the first nodes, all run; with restarts here, one
answer per restart cycle:
- the restarts of each client from a random moment of its restart cycle
  (sim.policy.restarts: the wait to the first is the equilibrium residual, the
  gaps after it drawn from `every`), as the model starts them;
- the answer before the first restart is the primed one, the first nodes (the
  model primes the stub with the answer of time 0; one a restart before time 0
  emptied is fetched again at the first request, still the first nodes);
- after restart k the stub fetches at the client's next request (Poisson at its
  rate in the traffic shape) and holds the list its resolver holds then: the
  resolver's fetch that covers that moment (sim.fast.churn.Cycles), or a fetch
  of its own then if the resolver holds nothing; after a planned change the new
  target's row, whose nodes are not churned.
The position within each answer is drawn afresh (as sim.fast.churn draws an
honouring stub's per answer): the rotation's start is uniform, and the model's
step of one per answer is not kept from one restart to the next.

An honouring stub holds its resolver's answer (sim.fast.churn); a restart
within it empties the stub, and the next request takes the same list again,
one position on: its holds are cut at the client's restarts
(`split_at_restarts`).
"""

from __future__ import annotations

import numpy as np

from sim.fast.churn import Cycles, Holds, Replacements, split_at_cname
from sim.fast.intensity import Intensity
from sim.fast.population import Cohort, Population


def restart_times(cohort: Cohort, n: int, end: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every restart before `end` of `n` clients from a random moment of their cycle: (client
    index in 0..n-1, time), sorted by client then time."""
    assert cohort.restarts is not None
    who, at = [], []
    t = cohort.restarts.equilibrium(rng, n)[1]
    live = np.flatnonzero(t < end)
    while len(live):
        who.append(live)
        at.append(t[live].copy())
        t[live] += cohort.restarts.gaps(rng, len(live))
        live = live[t[live] < end]
    w = np.concatenate(who) if who else np.empty(0, dtype=np.int64)
    a = np.concatenate(at) if at else np.empty(0)
    order = np.lexsort((a, w))
    return w[order], a[order]


def held_list(cycles: Cycles, reps: Replacements, res: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The node list a query to resolvers `res` at `t` gets: the fetch that covers `t`, or the
    list of that moment (a fetch of its own, the resolver holding nothing)."""
    got = cycles.list_at(reps, res, t)
    if len(cycles.res) == 0:
        return got
    off = 4.0 * float(max(cycles.fetched.max(), t.max() if len(t) else 0.0)) + 1e4
    keys = cycles.res * off + cycles.fetched
    i = np.searchsorted(keys, res * off + t, side="right") - 1
    j = np.maximum(i, 0)
    covered = (i >= 0) & (cycles.res[j] == res) & (t < cycles.expires[j])
    return np.where(covered, cycles.list_[j], got)


def forever_holds(pop: Population, shape: Intensity, reps: Replacements, cycles: Cycles, cohort: Cohort, end: float,
                  rng: np.random.Generator) -> Holds:
    """A restarting `forever` cohort's held answers before `end` (see the module doc): the
    first nodes until each client's first restart, then per restart the resolver's list at
    the client's next request, held until the next restart."""
    idx = cohort.members
    n = len(idx)
    k, at = restart_times(cohort, n, end, rng)
    fetch = shape.next_after(at, np.full(len(at), cohort.rate), rng) if len(at) else np.empty(0)
    # Each answer ends at the client's next restart (or `end`): the next row's time if the
    # same client's, else `end`.
    same = np.zeros(len(k), dtype=bool)
    same[:-1] = k[1:] == k[:-1]
    nxt = np.where(same, np.roll(at, -1), end)
    first_restart = np.full(n, end)
    starts = np.ones(len(k), dtype=bool)
    starts[1:] = k[1:] != k[:-1]
    first_restart[k[starts]] = at[starts]
    who = idx[k]
    lists = held_list(cycles, reps, pop.resolver[who], np.minimum(fetch, end))
    keep = fetch < nxt
    return Holds(np.concatenate([idx, who[keep]]),
                  np.concatenate([np.zeros(n, dtype=np.int64), lists[keep]]),
                  np.concatenate([first_restart, nxt[keep]]),
                  np.concatenate([np.zeros(n), fetch[keep]]))


def split_at_restarts(hold: Holds, cohort: Cohort, n: int, end: float,
                      rng: np.random.Generator) -> tuple[Holds, np.ndarray, np.ndarray]:
    """A restarting honouring cohort's holds (its resolver's answers, `n` clients in all) cut at
    each client's restarts within them: a restart empties the stub, and the next request takes
    the same list from the resolver, one position on (the model's rotation). The pieces, for
    each its hold (an index into `hold`), and how many restarts came before it in the hold,
    as sim.fast.churn cuts them at a CNAME's fetches (`split_at_cname`, one client each)."""
    k, at = restart_times(cohort, len(cohort.members), end, rng)
    empty = np.empty(0)
    per_client = Cycles(np.arange(n), empty, empty, np.empty(0, dtype=np.int64), cname=(cohort.members[k], at))
    return split_at_cname(hold, hold.who, per_client, end)
