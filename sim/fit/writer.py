"""A fit as a scenario file: every fitted value with its 95% interval as a comment beside it.

What the logs cannot say (balancers, backends, faults, failover timing) is
written as a minimal valid default and marked `not fitted`; a user edits
those. The text is checked by the scenario loader before it is returned.
"""

from __future__ import annotations

from pathlib import Path

from sim.fit.cohorts import Cohort
from sim.fit.estimate import Estimate
from sim.fit.resolvers import ECS_COVERAGE, MIN_GAPS, ResolverFit
from sim.fit.run import Fit

# The stub cache of each family (not fitted: the logs do not show it), from
# docs/references.md, "Caches above and below the resolver".
STUB_CACHE = {
    "browser": ("{kind: floor, min_ttl: 60s}", 'docs/references.md, "Browsers": Chrome keeps at least 60 s'),
    "jvm": ("{kind: fixed, ttl: 30s}", 'docs/references.md, "Runtimes": the JVM keeps 30 s'),
    "proxy": ("{kind: forever}", 'docs/references.md, "Proxies": nginx proxy_pass resolves once'),
}
RUN_S = 1200.0  # the written scenario's default duration (20m, no warm-up)
MIN_FACTOR = 1e-3  # an hour without requests: a traffic factor must be above 0
NO_CACHE = ("{kind: none}", 'docs/references.md, "Runtimes": glibc, Go and Node keep no cache')


def _num(x: float) -> str:
    return f"{x:.6g}"


def _split_service(service: str) -> tuple[str, str]:
    labels = service.rstrip(".").lower().split(".")
    if len(labels) <= 2:
        return ".".join(labels), "@"
    return ".".join(labels[-2:]), ".".join(labels[:-2])


def _cohort(c: Cohort, fit: Fit) -> list[str]:
    cache, source = STUB_CACHE.get(c.family, NO_CACHE)
    lines = [
        f"  - name: {c.name}",
        f"    count: {max(1, round(c.size.value))}          # 95% CI [{c.size.low:.0f}, {c.size.high:.0f}]; "
        f"{c.seen} seen in the log, the rest a Poisson source of this rate leaves unseen",
        f"    rate: {_num(c.rate.value)}/s     # per client; 95% CI [{_num(c.rate.low)}, {_num(c.rate.high)}] "
        f"(= {c.rate.value * 60:.3g}/min)",
        f"    stub_cache: {cache}   # not fitted: {source}",
    ]
    reuse = fit.reuse.get(c.family)
    if reuse is not None:
        k = reuse.keepalive
        if k.value == 0.0:
            lines.append(f"    keepalive: 0s     # {reuse.per_connection.value:.3g} requests per connection: not reused")
            return lines
        if reuse.censored:
            lines.append(f"    keepalive: {_num(k.value)}s     # at least: no connection ended within the log; the "
                         f"longest idle gap one survived; {reuse.per_connection.value:.3g} requests per connection")
            return lines + _age_lines(fit, c.family)
        lines.append(f"    keepalive: {_num(k.value)}s     # 99th percentile idle gap on a connection, 95% CI "
                     f"[{_num(k.low)}, {_num(k.high)}]; {reuse.per_connection.value:.3g} requests per connection")
        lines += _age_lines(fit, c.family)
    else:
        lines.append("    # keepalive: not fitted (the log shows no connections)")
    return lines


def _basis_note(r: ResolverFit) -> str:
    """How the groups' shares were converted from what the logs show (docs/fit.md)."""
    if r.basis == "clients" and r.linked is not None:
        ecs = sum(1 for x in r.resolvers if x.policy is not None and x.clients == x.clients)
        known = sum(1 for x in r.resolvers if x.policy is not None)
        return (f"share = share of the access log's clients behind each group, linked by EDNS client subnet "
                f"({r.linked.clients} of {r.access_clients} clients in {r.linked.with_clients} of the {r.subnets} "
                f"networks; {ecs} of {known} classified resolvers sent subnets; a network seen from several "
                f"resolvers split by its queries to each: {r.linked.split} clients)")
    ecs = sum(1 for x in r.resolvers if x.policy is not None and x.clients == x.clients)
    known = sum(1 for x in r.resolvers if x.policy is not None)
    if r.with_subnet == 0:
        why = "no client subnets in the DNS log"
    elif ecs < ECS_COVERAGE * known:
        why = f"client subnets from {ecs} of the {known} classified resolvers (under {ECS_COVERAGE:.0%})"
    else:
        why = "no access-log client in the networks their subnets name"
    if r.linked is not None and r.with_subnet:
        why += f"; shares of clients in the report ({r.linked.clients} of {r.access_clients} clients linked)"
    return f"share = share of resolvers, not of clients: {why} (docs/fit.md)"


def _policy(p: str, v: Estimate | None) -> str:
    if p == "honor":
        return "{kind: honor}"
    if p == "forever":
        return "{kind: forever}"
    if v is None:
        return ""
    return {"floor": f"{{kind: floor, min_ttl: {_num(v.value)}s}}", "cap": f"{{kind: cap, max_ttl: {_num(v.value)}s}}",
            "extend": f"{{kind: extend, extra: {{exp: {_num(max(v.value, 1.0))}s}}}}"}[p]


def _age_lines(fit: Fit, family: str) -> list[str]:
    age = fit.ages.get(family)
    if age is None:
        return []
    if age.value is None:
        return [f"    # max_connection_age: not fitted: {age.why} ({age.handovers} new connections after one)"]
    a = age.value
    return [f"    max_connection_age: {_num(a.value)}s     # median of {age.aged} connections replaced while alive, "
            f"95% CI [{_num(a.low)}, {_num(a.high)}]: the client's or the balancer's limit (docs/fit.md)"]


def _resolver_lines(r: ResolverFit) -> list[str]:
    policies = list(r.query_share)
    if not policies:
        # a short log: no resolver asked often enough to be classified (MIN_GAPS gaps)
        return [f"  # resolvers: not fitted: none of the {len(r.resolvers)} resolvers that asked for {r.name} "
                f"asked {MIN_GAPS + 1} times or more (docs/fit.md); the default group stands"]
    # by default the share of resolvers, not of queries: a busy resolver asks once per lifetime whatever
    # its clients, so its queries measure its lifetime, not who is behind it (docs/fit.md); the share
    # of clients where client subnets link the resolvers to the access log's clients
    used = r.client_share if r.basis == "clients" else r.count_share
    written = [p for p in policies if p in used and round(used[p].value, 6) > 0]  # a group's share must be above 0
    shares = [round(used[p].value, 6) for p in written]
    shares[shares.index(max(shares))] += round(1.0 - sum(shares), 6)  # sum exactly 1
    counts = {p: sum(1 for x in r.resolvers if x.policy == p) for p in policies}
    unknown = sum(1 for x in r.resolvers if x.policy is None)
    lines = [f"  resolvers:   # {len(r.resolvers)} resolvers asked for {r.name}; {unknown} with too few "
             f"queries to classify are left out. {_basis_note(r)}"]
    for p in policies:
        if p not in written:
            why = "with no linked client" if p in used else "none of which sent client subnets"
            lines.append(f"    # {p}: {counts[p]} resolvers {why}: share 0, left out")
    for p, share in zip(written, shares, strict=True):
        q, n, v = r.query_share[p], r.count_share[p], r.value.get(p)
        note = f"resolvers {n.value:.3f} [{n.low:.3f}, {n.high:.3f}]"
        if p in r.client_share:
            c, rq = r.client_share[p], r.request_share[p]
            note += f"; clients {c.value:.3f} [{c.low:.3f}, {c.high:.3f}]; requests {rq.value:.1%} [{rq.low:.1%}, {rq.high:.1%}]"
        note += f"; queries {q.value:.1%} [{q.low:.1%}, {q.high:.1%}] (95% CIs)"
        if p == "forever" and v:
            note += (f"; kept at least {_num(v.value)}s [{_num(v.low)}, {_num(v.high)}] (median over them) while "
                     "their clients went on looking up")
        elif p == "extend" and v:
            note += (f"; extra mean median over them {_num(v.value)}s [{_num(v.low)}, {_num(v.high)}] (mean gap less "
                     f"the TTL and the {_num(r.wait)}s wait for the next lookup, from the honouring resolvers)")
        elif p != "honor" and v:
            note += f"; lifetime median over them {_num(v.value)}s [{_num(v.low)}, {_num(v.high)}]"
        lines.append(f"    - {{name: {p}, count: {counts[p]}, share: {share:.6f}, policy: {_policy(p, v)}}}   # {note}")
    return lines


def busiest_hour(fit: Fit) -> int | None:
    seen = [(f.value, h) for h, f in enumerate(fit.shape.factors) if f is not None]
    return max(seen)[1] if seen else None


def _traffic_faults(fit: Fit, start_hour: int | None, run_s: float) -> list[str]:
    """The day's shape over the run as traffic faults: time 0 is `start_hour`:00 of the log's clock,
    and each hour the run reaches multiplies every cohort's rate (the log's mean) by its factor."""
    hour = busiest_hour(fit) if start_hour is None else start_hour
    if hour is None:
        return ["  # traffic: not fitted: the log spans no time"]
    how = "given with --start-hour" if start_hour is not None else "not given: the busiest hour of the log"
    lines = [f"  # the day's shape from {hour:02d}:00 (log time; {how}) to the end of the run: each hour's "
             "traffic against the log's mean rate, which the cohorts' rates are; edit with `duration`"]
    start = 0.0
    while start < run_s:
        h = (hour + int(start // 3600)) % 24
        span, f = min(3600.0, run_s - start), fit.shape.factors[h]
        if f is None:
            lines.append(f"  # {h:02d}h: not in the log: the mean rate")
        else:
            factor = max(f.value, MIN_FACTOR)  # a traffic factor must be above 0
            lines.append(f"  - {{at: {_num(start)}s, kind: traffic, factor: {_num(round(factor, 4))}, for: {_num(span)}s}}"
                         f"   # {h:02d}h: 95% CI [{f.low:.3f}, {f.high:.3f}] ({fit.shape.hours_covered[h]:.1f} h of log)")
        start += span
    return lines


def _shape_lines(fit: Fit) -> list[str]:
    lines = ["# The day's shape (applied above as traffic faults for the run's hours). Hour: factor of the mean [95% CI]"]
    for h, f in enumerate(fit.shape.factors):
        if f is not None:
            lines.append(f"#   {h:02d}h: {f.value:.2f} [{f.low:.2f}, {f.high:.2f}]  ({fit.shape.hours_covered[h]:.1f} h of log)")
    return lines


def scenario_text(fit: Fit, *, service: str | None = None, name: str = "fitted", start_hour: int | None = None,
                  duration: float = RUN_S) -> str:
    """`start_hour`: the hour of the day (log time) the run's time 0 stands for (default: the busiest);
    `duration`: the run's length (s), which the traffic faults cover."""
    if start_hour is not None and not 0 <= start_hour <= 23:
        raise ValueError(f"start hour must be 0 to 23, got {start_hour}")
    target = service or (fit.resolvers.name if fit.resolvers else "www.example.com")
    zone, label = _split_service(target)
    files = ", ".join(Path(s.path).name for s in fit.files)
    lines = [
        f"# Fitted by `failover-sim fit` from {files}:",
        f"# {fit.requests} requests over {fit.span / 3600:.2f} h. Each fitted value has its 95% interval beside it;",
        "# balancers, backends, faults and failover are not in the logs: defaults, edit them.",
        "version: 1", f"name: {name}", f'description: "fitted from the logs of {target}"',
        f"duration: {_num(duration)}s   # not fitted: the run's length ({'given' if duration != RUN_S else '20m, [choice] as in the shipped scenarios'})",
        "strategies: [cname_repoint, eip_remap]   # not fitted: the original question", "", "dns:",
        f"  zone: {zone}", f'  service_name: "{label}"',
    ]
    if fit.resolvers is not None:
        how = "given with --ttl" if fit.ttl_given else "not given: the median shortest gap between a resolver's queries"
        lines.append(f"  service_ttl: {_num(fit.resolvers.ttl)}s   # {how}")
        lines += _resolver_lines(fit.resolvers)
    else:
        lines.append("  # resolvers: not fitted (no DNS log): the default group")
    lines += ["", "clients:"]
    for c in fit.cohorts:
        lines += _cohort(c, fit)
    lines += ["", "balancers:   # not fitted", "  - {name: blue, role: active}", "  - {name: green, role: standby}",
              "", "faults:   # not fitted: the question to ask of the fitted population",
              "  - {at: 5m, kind: balancer_down, target: blue}", *_traffic_faults(fit, start_hour, duration), "", *_shape_lines(fit)]
    return "\n".join(lines) + "\n"
