"""The fit report (Markdown and HTML): each estimate, what was read, and fitted against observed figures.

Figures: per cohort, the observed requests per client against the Poisson
count the fitted rate predicts; per family, the idle gaps on connections
with the fitted keep-alive; the day's shape with its intervals; per resolver
policy, the gaps between queries against the TTL. No address appears.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.fit.estimate import Estimate
from sim.fit.resolvers import ResolverFit, by_family
from sim.fit.run import Fit

FIGURE_DIR = "figures"


def _poisson_pmf(k: np.ndarray, mu: float) -> np.ndarray:
    logs = k * math.log(mu) - mu - np.array([math.lgamma(x + 1) for x in k])
    return np.exp(logs)


def _figures(fit: Fit) -> dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, object] = {}
    for c in fit.cohorts:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        hi = int(np.quantile(c.counts, 0.995)) + 2
        lo = max(1, int(c.counts.min()))
        # both per unit count: the histogram's density and the zero-truncated Poisson pmf
        ax.hist(c.counts, bins=np.arange(lo, hi + 1) - 0.5 if hi - lo < 80 else 40, range=None if hi - lo < 80 else (lo, hi),
                density=True, alpha=0.6, label="observed")
        k = np.arange(lo, hi + 1)
        mu = c.rate.value * fit.span
        ax.plot(k, _poisson_pmf(k, mu) / -math.expm1(-mu), "k.-" if hi - lo < 80 else "k-",
                label=f"fitted Poisson, {c.rate.value * 60:.3g}/min")
        ax.set(xlabel="requests per client in the log", ylabel="share of clients", title=f"cohort {c.name}")
        ax.legend()
        out[f"cohort-{c.name}.png"] = fig
    for fam, r in fit.reuse.items():
        if r.gaps.size == 0:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.hist(r.gaps, bins=50, range=(0, max(float(np.quantile(r.gaps, 0.999)), 1e-3)), alpha=0.6, label="observed idle gaps")
        ax.axvline(r.keepalive.value, color="k", label=f"fitted keep-alive {r.keepalive.value:.3g} s")
        ax.set(xlabel="seconds between requests on one connection", ylabel="gaps", title=f"connections: {fam}")
        ax.legend()
        out[f"idle-{fam}.png"] = fig
    hours = [h for h, f in enumerate(fit.shape.factors) if f is not None]
    if hours:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        vals = [fit.shape.factors[h] for h in hours]
        ax.errorbar(hours, [v.value for v in vals], yerr=[[v.value - v.low for v in vals], [v.high - v.value for v in vals]],
                    fmt="o", capsize=2)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set(xlabel="hour of the day (log time)", ylabel="rate / mean rate", title="traffic over the day", xlim=(-0.5, 23.5))
        out["shape.png"] = fig
    if fit.resolvers is not None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for policy in fit.resolvers.query_share:
            g = np.concatenate([r.gaps for r in fit.resolvers.resolvers if r.policy == policy] or [np.zeros(0)])
            if g.size:
                ax.ecdf(g / fit.resolvers.ttl, label=f"{policy} ({g.size} gaps)")
        ax.axvline(1.0, color="grey", lw=0.8)
        ax.set(xscale="log", xlabel="gap between a resolver's queries / TTL", ylabel="CDF", title=f"resolvers asking for {fit.resolvers.name}")
        ax.legend()
        out["resolvers.png"] = fig
    return out


def _sections(fit: Fit) -> list[tuple[str, list[str], list[list[str]]]]:
    e = lambda x, f="{:.4g}": f"{f.format(x.value)} [{f.format(x.low)}, {f.format(x.high)}]"  # noqa: E731
    cohorts = [[c.name, c.family, str(c.seen), e(c.size, "{:.0f}"), e(c.rate, "{:.4g}")] for c in fit.cohorts]
    def age(f: str) -> str:
        a = fit.ages.get(f)
        return "-" if a is None else a.why if a.value is None else f"{e(a.value)} ({a.aged} replaced)"

    reuse = [[f, str(r.connections), e(r.per_connection), e(r.idle["p50"]), e(r.idle["p99"]), e(r.keepalive), age(f)]
             for f, r in fit.reuse.items()]
    shape = [[f"{h:02d}h", e(f, "{:.2f}"), f"{fit.shape.hours_covered[h]:.1f}"] for h, f in enumerate(fit.shape.factors) if f]
    files = [[Path(s.path).name, s.format, str(s.lines), str(s.records), str(s.skipped),
              "; ".join(f"{n} {k} (first line {s.first_line[k]})" for k, n in s.malformed.most_common()) or "none"]
             for s in fit.files]
    out = [
        ("Files read", ["file", "format", "lines", "records", "not for the service", "malformed, by kind"], files),
        ("Client cohorts (95% intervals)", ["cohort", "family", "seen", "clients", "requests/s per client"], cohorts),
        ("Connection reuse", ["family", "connections", "requests per connection", "idle p50 (s)", "idle p99 (s)", "keep-alive (s)",
                              "max connection age (s)"], reuse),
        ("Traffic over the day", ["hour", "rate / mean", "hours of log"], shape),
    ]
    if fit.resolvers is not None:
        out.append(_resolver_section(fit.resolvers, e))
        families = by_family(fit.resolvers.resolvers)
        if families:
            policies = sorted({p for d in families.values() for p in d})
            rows = [[fam, f"{sum(d.values()):.0f}", *(f"{d.get(p, 0.0) / sum(d.values()):.3f}" for p in policies)]
                    for fam, d in sorted(families.items())]
            out.append(("Linked clients by family and the policy of their resolvers (EDNS client subnet; "
                        "the scenario spreads every cohort by the groups' shares)", ["family", "clients", *policies], rows))
    return out


def _resolver_section(r: ResolverFit, e: Callable[..., str]) -> tuple[str, list[str], list[list[str]]]:
    def share(d: dict[str, Estimate], p: str) -> str:
        return e(d[p], "{:.3f}") if p in d else "-"

    rows = [[p, share(r.query_share, p), share(r.count_share, p), share(r.client_share, p), share(r.request_share, p),
             e(r.value[p]) if p != "honor" else "-"] for p in r.query_share]
    linked = ""
    if r.linked is not None:
        linked = (f"; {r.linked.clients} of {r.access_clients} access-log clients linked through "
                  f"{r.linked.with_clients} of {r.subnets} client networks ({r.linked.split} in networks seen from "
                  f"several resolvers, split by queries)")
    if r.dropped_subnets:
        linked += f"; {r.dropped_subnets} resolver-network pairs past the tally's limit not counted"
    basis = ("share of clients (EDNS client subnet)" if r.basis == "clients" else "share of resolvers")
    return (f"Resolvers asking for {r.name} (TTL {r.ttl:g} s; {len(r.resolvers)} resolvers, "
            f"{sum(1 for x in r.resolvers if x.policy is None)} unclassified; {r.with_subnet} sent client subnets{linked}; "
            f"a stretch's extra is its mean gap less the TTL and the {r.wait:.3g} s wait for the next lookup; "
            f"the scenario's share is the {basis})",
            ["policy", "share of queries", "share of resolvers", "share of clients", "share of requests",
             "lifetime / extra / kept at least (s)"], rows)


def write_report(fit: Fit, out_dir: str | Path, scenario_name: str) -> tuple[Path, Path]:
    """fit-report.md and fit-report.html in `out_dir`, the figures in out_dir/figures/."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    (out / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    figures = _figures(fit)
    encoded = {}
    for name, fig in figures.items():
        path = out / FIGURE_DIR / name
        fig.savefig(path, dpi=90, bbox_inches="tight")  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        encoded[name] = base64.b64encode(path.read_bytes()).decode()
    title = f"Fit report: {scenario_name}"
    md, htm = [f"# {title}", "", f"{fit.requests} requests over {fit.span / 3600:.2f} h. docs/fit.md says what each estimate comes from.", ""], [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>", f"<p>{fit.requests} requests over {fit.span / 3600:.2f} h.</p>"]
    for heading, head, rows in _sections(fit):
        md += [f"## {heading}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        md += ["| " + " | ".join(row) + " |" for row in rows] + [""]
        htm += [f"<h2>{html.escape(heading)}</h2>", "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        htm += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows] + ["</table>"]
    md += ["## Fitted against observed", ""] + [f"![{n}]({FIGURE_DIR}/{n})" for n in figures]
    htm += ["<h2>Fitted against observed</h2>"] + [f'<img alt="{n}" src="data:image/png;base64,{b}">' for n, b in encoded.items()]
    md_path, html_path = out / "fit-report.md", out / "fit-report.html"
    md_path.write_text("\n".join(md) + "\n")
    html_path.write_text("\n".join(htm) + "</body></html>\n")
    return md_path, html_path
