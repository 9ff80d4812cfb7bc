"""A fit as a scenario file: every fitted value with its 95% interval as a comment beside it.

What the logs cannot say (balancers, backends, faults, failover timing) is
written as a minimal valid default and marked `not fitted`; a user edits
those. The text is checked by the scenario loader before it is returned.
"""

from __future__ import annotations

from pathlib import Path

from sim.fit.cohorts import Cohort
from sim.fit.resolvers import MIN_GAPS, ResolverFit
from sim.fit.run import Fit

# The stub cache of each family (not fitted: the logs do not show it), from
# docs/references.md, "Caches above and below the resolver".
STUB_CACHE = {
    "browser": ("{kind: floor, min_ttl: 60s}", 'docs/references.md, "Browsers": Chrome keeps at least 60 s'),
    "jvm": ("{kind: fixed, ttl: 30s}", 'docs/references.md, "Runtimes": the JVM keeps 30 s'),
    "proxy": ("{kind: forever}", 'docs/references.md, "Proxies": nginx proxy_pass resolves once'),
}
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
            return lines
        lines.append(f"    keepalive: {_num(k.value)}s     # 99th percentile idle gap on a connection, 95% CI "
                     f"[{_num(k.low)}, {_num(k.high)}]; {reuse.per_connection.value:.3g} requests per connection")
    else:
        lines.append("    # keepalive: not fitted (the log shows no connections)")
    return lines


def _resolver_lines(r: ResolverFit) -> list[str]:
    policies = list(r.query_share)
    if not policies:
        # a short log: no resolver asked often enough to be classified (MIN_GAPS gaps)
        return [f"  # resolvers: not fitted: none of the {len(r.resolvers)} resolvers that asked for {r.name} "
                f"asked {MIN_GAPS + 1} times or more (docs/fit.md); the default group stands"]
    # the share of resolvers, not of queries: a busy resolver asks once per lifetime whatever
    # its clients, so its queries measure its lifetime, not who is behind it (docs/fit.md)
    shares = [round(r.count_share[p].value, 6) for p in policies]
    shares[shares.index(max(shares))] += round(1.0 - sum(shares), 6)  # sum exactly 1
    counts = {p: sum(1 for x in r.resolvers if x.policy == p) for p in policies}
    unknown = sum(1 for x in r.resolvers if x.policy is None)
    lines = [f"  resolvers:   # {len(r.resolvers)} resolvers asked for {r.name}; {unknown} with too few "
             "queries to classify are left out. share = share of resolvers (docs/fit.md: not a share of clients)"]
    for p, share in zip(policies, shares, strict=True):
        q, n, v = r.query_share[p], r.count_share[p], r.value.get(p)
        policy = {"honor": "{kind: honor}", "floor": f"{{kind: floor, min_ttl: {_num(v.value)}s}}" if v else "",
                  "cap": f"{{kind: cap, max_ttl: {_num(v.value)}s}}" if v else "",
                  "extend": f"{{kind: extend, extra: {{exp: {_num(max(v.value, 1.0))}s}}}}" if v else ""}[p]
        note = f"resolvers 95% CI [{n.low:.3f}, {n.high:.3f}]; queries {q.value:.1%} [{q.low:.1%}, {q.high:.1%}]"
        if p != "honor" and v:
            note += f"; {'extra mean' if p == 'extend' else 'lifetime'} median over them {_num(v.value)}s [{_num(v.low)}, {_num(v.high)}]"
        lines.append(f"    - {{name: {p}, count: {counts[p]}, share: {share:.6f}, policy: {policy}}}   # {note}")
    return lines


def _shape_lines(fit: Fit) -> list[str]:
    lines = ["# The day's shape (not applied: the cohort rates are the log's mean; a traffic fault",
             "# {at, kind: traffic, factor, for} reproduces an hour's). Hour: factor of the mean [95% CI]"]
    for h, f in enumerate(fit.shape.factors):
        if f is not None:
            lines.append(f"#   {h:02d}h: {f.value:.2f} [{f.low:.2f}, {f.high:.2f}]  ({fit.shape.hours_covered[h]:.1f} h of log)")
    return lines


def scenario_text(fit: Fit, *, service: str | None = None, name: str = "fitted") -> str:
    target = service or (fit.resolvers.name if fit.resolvers else "www.example.com")
    zone, label = _split_service(target)
    files = ", ".join(Path(s.path).name for s in fit.files)
    lines = [
        f"# Fitted by `failover-sim fit` from {files}:",
        f"# {fit.requests} requests over {fit.span / 3600:.2f} h. Each fitted value has its 95% interval beside it;",
        "# balancers, backends, faults and failover are not in the logs: defaults, edit them.",
        "version: 1", f"name: {name}", f'description: "fitted from the logs of {target}"',
        "duration: 20m   # not fitted: a run's length, [choice] as in the shipped scenarios",
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
              "  - {at: 5m, kind: balancer_down, target: blue}", "", *_shape_lines(fit)]
    return "\n".join(lines) + "\n"
