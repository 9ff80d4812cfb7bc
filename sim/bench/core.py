"""failover-sim bench core: sim.core against HAProxy and nginx, on loopback.

One run, the same tiny backend for all (nginx `return 200` with a 1 KiB body,
or the package's asyncio backend when nginx is missing), the same pinning for
all (balancer on one core, generator and backend on the other, as
docs/benchmarks.md asks), one worker each, knobs written out:

- maximum throughput with wrk (closed loop, keep-alive), and the balancer's
  requests per CPU-second of its own process (utime + stime over the run);
- latency at 25/50/75% of each target's own maximum with an open-loop
  generator that measures from the intended send time into an HdrHistogram
  (no coordinated omission), reported as added latency over the direct run
  at the same fraction of load, with a 95% bootstrap interval over the
  recorded latencies and the repetitions' range (sim.bench.added).

Targets: direct (no balancer), simcore, haproxy, nginx; modes http (L7) and
tcp (L4). Output in ``--out``: the generated configs, results.json (raw
histograms included), results.md (the table) and added-latency.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sim.bench import added, openloop

__all__ = ["main", "run_bench"]

BODY_SIZE = 1024
TARGETS = ("direct", "simcore", "haproxy", "nginx")
MODES = ("http", "tcp")


# -- processes and CPU accounting -------------------------------------------------


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _descendants(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += _descendants(int(child))
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants (nginx's worker), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def _pin(cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


class Proc:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.logf = open(log, "wb")  # noqa: SIM115 - lives as long as the process
        self.p = subprocess.Popen(
            argv, stdout=self.logf, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.logf.close()


# -- configurations, written out ----------------------------------------------------------


def backend_nginx_conf(out: Path, port: int) -> str:
    body = "x" * BODY_SIZE
    return f"""# the shared tiny backend: 1 KiB fixed response
worker_processes 1;
daemon off;
pid {out}/backend-nginx.pid;
error_log {out}/backend-nginx.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {out}/tmp; proxy_temp_path {out}/tmp; fastcgi_temp_path {out}/tmp;
    uwsgi_temp_path {out}/tmp; scgi_temp_path {out}/tmp;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""


def simcore_conf(mode: str, port: int, backend: int) -> str:
    return f"""# sim.core, knobs as in haproxy.cfg and nginx.conf
name: bench
mode: {mode}
listen: 127.0.0.1:{port}
workers: 1
backends:
  - {{name: b1, address: 127.0.0.1:{backend}}}
health_check: {{kind: tcp, interval: 2s, timeout: 2s, rise: 2, fall: 3}}
retries: {{count: 3}}
timeouts: {{connect: 5s, http_request: 10s, http_keep_alive: 60s, client: 60s, server: 30s}}
upstream_pool: {{max_idle_per_backend: 256}}
admin: null
"""


def haproxy_conf(mode: str, port: int, backend: int) -> str:
    http = mode == "http"
    return f"""# HAProxy, one thread, logging off, same checks/retries/timeouts as sim.core;
# in http mode it appends X-Forwarded-For, as sim.core always does
global
    nbthread 1
    maxconn 8000
defaults
    mode {mode}
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 30s
    {"timeout http-request 10s" if http else ""}
    {"timeout http-keep-alive 60s" if http else ""}
    {"option http-keep-alive" if http else ""}
    {"http-reuse always" if http else ""}
    {"option forwardfor" if http else ""}
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    server b1 127.0.0.1:{backend} check inter 2s fall 3 rise 2
"""


def nginx_conf(mode: str, port: int, backend: int, out: Path) -> str:
    common = f"""# nginx as a proxy, one worker, logging off, upstream keep-alive on
worker_processes 1;
daemon off;
pid {out}/nginx-{mode}.pid;
error_log {out}/nginx-{mode}.err warn;
events {{ worker_connections 20000; }}
"""
    if mode == "tcp":
        return (
            common
            + f"""stream {{
    upstream be {{ server 127.0.0.1:{backend} max_fails=3 fail_timeout=10s; }}
    server {{ listen 127.0.0.1:{port}; proxy_pass be; proxy_connect_timeout 5s; proxy_timeout 60s; }}
}}
"""
        )
    return (
        common
        + f"""http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {out}/tmp; proxy_temp_path {out}/tmp; fastcgi_temp_path {out}/tmp;
    uwsgi_temp_path {out}/tmp; scgi_temp_path {out}/tmp;
    upstream be {{ server 127.0.0.1:{backend} max_fails=3 fail_timeout=10s; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 60s;
        client_header_timeout 10s;
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # as sim.core does: the client's Host passed on, X-Forwarded-For appended
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 5s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 4;
        }}
    }}
}}
"""
    )


def nginx_stream_module() -> str | None:
    for path in (
        "/usr/lib/nginx/modules/ngx_stream_module.so",
        "/usr/share/nginx/modules/ngx_stream_module.so",
    ):
        if os.path.exists(path):
            return path
    return None


# -- wrk -------------------------------------------------------------------------------------


def run_wrk(port: int, duration: float, connections: int, cpu: int | None) -> dict[str, Any]:
    argv = [
        *_pin(cpu),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"http://127.0.0.1:{port}/",
    ]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.stdout is not None
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    rps = 0.0
    errors = 0
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "Non-2xx" in line or "Socket errors" in line:
            errors += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    return {"rps": rps, "errors": errors, "wrk_cpu_s": ru.ru_utime + ru.ru_stime, "raw": out}


# -- one run ------------------------------------------------------------------------------------


def _python() -> list[str]:
    return [sys.executable]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def start_target(
    target: str, mode: str, out: Path, backend: int, cpu: int | None
) -> tuple[Proc | None, int, str]:
    """Start a balancer; (process, port, skip reason or "")."""
    if target == "direct":
        return None, backend, ""
    port = _free_port()
    tag = f"{target}-{mode}"
    if target == "simcore":
        cfg = out / f"simcore-{mode}.yaml"
        cfg.write_text(simcore_conf(mode, port, backend))
        proc = Proc(
            [*_pin(cpu), *_python(), "-m", "sim.core.cli", "serve", str(cfg)],
            out / f"{tag}.log",
            _env(),
        )
    elif target == "haproxy":
        if shutil.which("haproxy") is None:
            return None, 0, "haproxy is not installed"
        cfg = out / f"haproxy-{mode}.cfg"
        cfg.write_text(haproxy_conf(mode, port, backend))
        proc = Proc([*_pin(cpu), "haproxy", "-db", "-f", str(cfg)], out / f"{tag}.log")
    elif target == "nginx":
        if shutil.which("nginx") is None:
            return None, 0, "nginx is not installed"
        text = nginx_conf(mode, port, backend, out)
        if mode == "tcp":
            module = nginx_stream_module()
            if module is None:
                return None, 0, "nginx has no stream module (install libnginx-mod-stream)"
            text = f"load_module {module};\n" + text
        cfg = out / f"nginx-{mode}.conf"
        cfg.write_text(text)
        proc = Proc([*_pin(cpu), "nginx", "-p", str(out), "-c", str(cfg)], out / f"{tag}.log")
    else:
        raise ValueError(target)
    try:
        _wait_port(port)
    except RuntimeError:
        proc.stop()
        return None, 0, f"{target} did not start; see {tag}.log"
    return proc, port, ""


def start_backend(out: Path, cpu: int | None) -> tuple[Proc, int, str]:
    port = _free_port()
    (out / "tmp").mkdir(exist_ok=True)
    if shutil.which("nginx"):
        conf = out / "backend-nginx.conf"
        conf.write_text(backend_nginx_conf(out, port))
        proc = Proc([*_pin(cpu), "nginx", "-p", str(out), "-c", str(conf)], out / "backend.log")
        kind = "nginx return 200"
    else:
        proc = Proc(
            [
                *_pin(cpu),
                *_python(),
                "-m",
                "sim.core.backend",
                "--port",
                str(port),
                "--size",
                str(BODY_SIZE),
            ],
            out / "backend.log",
            _env(),
        )
        kind = "sim.core.backend"
    _wait_port(port)
    return proc, port, kind


def run_bench(
    out: Path,
    targets: list[str],
    modes: list[str],
    duration: float,
    latency_duration: float,
    loads: list[float],
    repeat: int,
    connections: int,
    warmup: float,
    lb_cpu: int | None,
    gen_cpu: int | None,
    log: Any = print,
    warm_wrk: float = 1.0,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    backend, bport, bkind = start_backend(out, gen_cpu)
    results = _new_results(bkind, lb_cpu, gen_cpu, connections, loads)
    try:
        for rep in range(repeat):
            for mode in modes:
                # alternate the order between repetitions: the machine drifts (docs/benchmarks.md)
                order = targets if rep % 2 == 0 else list(reversed(targets))
                for target in order:
                    proc, port, why = start_target(target, mode, out, bport, lb_cpu)
                    if why:
                        results["skipped"][f"{target}-{mode}"] = why
                        log(f"skip {target} {mode}: {why}")
                        continue
                    try:
                        row = {
                            "rep": rep,
                            "mode": mode,
                            "target": target,
                            **_measure(
                                port,
                                proc.pid if proc else backend.pid,
                                duration,
                                latency_duration,
                                loads,
                                connections,
                                warmup,
                                gen_cpu,
                                warm_wrk,
                            ),
                        }
                        results["runs"].append(row)
                        log(_log_line(row))
                    finally:
                        if proc is not None:
                            proc.stop()
    finally:
        backend.stop()
    _save(results, out)
    return results


def _new_results(
    bkind: str, lb_cpu: int | None, gen_cpu: int | None, connections: int, loads: list[float]
) -> dict[str, Any]:
    """What a run records before its first measurement: how it was run, on what."""
    return {
        "command": " ".join(["failover-sim", "bench", "core", *sys.argv[3:]])
        if sys.argv[1:3] == ["bench", "core"]
        else " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "backend": bkind,
        "pinning": {"balancer_cpu": lb_cpu, "generator_and_backend_cpu": gen_cpu},
        "body_bytes": BODY_SIZE,
        "wrk_connections": connections,
        "loads": loads,
        "runs": [],
        "skipped": {},
    }


def _measure(
    port: int,
    pid: int,
    duration: float,
    latency_duration: float,
    loads: list[float],
    connections: int,
    warmup: float,
    gen_cpu: int | None,
    warm_wrk: float,
) -> dict[str, Any]:
    """One target: its maximum with wrk, the CPU ``pid`` spent on it, then the
    open-loop steps at ``loads`` of that maximum."""
    if warm_wrk > 0:
        run_wrk(port, warm_wrk, connections, gen_cpu)  # warm up
    c0 = cpu_seconds(pid)
    w = run_wrk(port, duration, connections, gen_cpu)
    cpu = cpu_seconds(pid) - c0
    latency = []
    for frac in loads:
        rate = max(10.0, w["rps"] * frac)
        lat = openloop.run(_pin(gen_cpu), _env(), port, rate, latency_duration, warmup)
        lat["load"] = frac
        latency.append(lat)
    return {
        "rps": w["rps"],
        "wrk_errors": w["errors"],
        "cpu_s": cpu,
        "rps_per_cpu_s": (w["rps"] * duration / cpu) if cpu > 0 else None,
        "wrk_cpu_s": w["wrk_cpu_s"],
        "latency": latency,
    }


def _log_line(row: dict[str, Any]) -> str:
    return (
        f"rep {row['rep']} {row['mode']:4} {row['target']:8} {row['rps']:9.0f} req/s  "
        f"{row['rps_per_cpu_s'] or 0:9.0f} req/CPU-s  "
        + "  ".join(
            f"{int(x['load'] * 100)}%: p99 {x.get('p99_us', 0)} us{' (not sustained)' if x.get('saturated') else ''}"
            for x in row["latency"]
        )
    )


def _save(results: dict[str, Any], out: Path) -> None:
    """Summarize, and write results.json, results.md and the plot into ``out``."""
    results["summary"] = summarize(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(render_table(results))
    with contextlib.suppress(Exception):
        plot(results, out / "added-latency.png")


# -- summaries -------------------------------------------------------------------------------


def _med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Medians over repetitions, and each target's ratios to HAProxy from the same repetition."""
    runs = results["runs"]
    summary: dict[str, Any] = {}
    resampler = added.Resampler()
    for mode in {r["mode"] for r in runs}:
        by_rep: dict[int, dict[str, Any]] = {}
        for r in runs:
            if r["mode"] == mode:
                by_rep.setdefault(r["rep"], {})[r["target"]] = r
        per_target: dict[str, Any] = {}
        targets = sorted({t for rep in by_rep.values() for t in rep})
        for t in targets:
            rows = [rep[t] for rep in by_rep.values() if t in rep]
            entry: dict[str, Any] = {
                "rps": _med([r["rps"] for r in rows]),
                "rps_per_cpu_s": _med([r["rps_per_cpu_s"] for r in rows]),
                "ratio_rps_per_cpu_to_haproxy": _med(
                    [
                        rep[t]["rps_per_cpu_s"] / rep["haproxy"]["rps_per_cpu_s"]
                        for rep in by_rep.values()
                        if t in rep
                        and "haproxy" in rep
                        and rep["haproxy"]["rps_per_cpu_s"]
                        and rep[t]["rps_per_cpu_s"]
                    ]
                ),
                "ratio_rps_to_haproxy": _med(
                    [
                        rep[t]["rps"] / rep["haproxy"]["rps"]
                        for rep in by_rep.values()
                        if t in rep and "haproxy" in rep and rep["haproxy"]["rps"]
                    ]
                ),
                "added": {},
            }
            for i, frac in enumerate(results["loads"]):
                entry["added"][f"{int(frac * 100)}%"] = _added(by_rep, mode, t, i, frac, resampler)
            per_target[t] = entry
        summary[mode] = per_target
    return summary


def _added(
    by_rep: dict[int, dict[str, Any]], mode: str, t: str, i: int, frac: float, resampler: added.Resampler
) -> dict[str, Any]:
    """Target ``t``'s added p50/p99 at load step ``i``: medians over repetitions, each repetition's
    own difference, and the bootstrap interval (sim.bench.added) of the medians."""
    pairs, reps = [], []
    for r, rep in sorted(by_rep.items()):
        if t in rep and "direct" in rep:
            mine, base = rep[t]["latency"][i], rep["direct"]["latency"][i]
            if "p50_us" in mine and "p50_us" in base and not mine["saturated"] and not base["saturated"]:
                reps.append({"rep": r, "p50_us": mine["p50_us"] - base["p50_us"],
                             "p99_us": mine["p99_us"] - base["p99_us"]})  # fmt: skip
                pairs.append((f"{mode}/{r}/{frac}/{t}", mine, f"{mode}/{r}/{frac}/direct", base))
    late = [
        rep[t]["latency"][i].get("send_late_p99_us")
        for rep in by_rep.values()
        if t in rep and len(rep[t]["latency"]) > i
    ]
    if t == "direct":  # the baseline against itself: 0 by construction, nothing to estimate
        cis, per_rep, how = dict.fromkeys(("p50", "p99")), [], "none: the baseline"
    else:
        cis, per_rep, how = added.added_intervals(resampler, pairs)
    for rep, ci in zip(reps, per_rep, strict=False):
        rep.update(ci)
    return {
        "p50_us": _med([x["p50_us"] for x in reps]),
        "p99_us": _med([x["p99_us"] for x in reps]),
        "p50_ci95_us": cis["p50"],
        "p99_ci95_us": cis["p99"],
        "interval": how,
        # the repetitions disagree by more than the interval allows: their range, not it, is the uncertainty
        "reps_outside_ci95": {
            k: any(not cis[k][0] <= x[f"{k}_us"] <= cis[k][1] for x in reps)  # type: ignore[index]
            for k in ("p50", "p99")
            if cis[k] is not None
        },
        "reps": reps,
        # the generator's own lateness in the target's step: added p99s
        # smaller than it (and the baseline's) are the shared core's noise
        "generator_late_p99_us": _med(late),
    }


def render_table(results: dict[str, Any]) -> str:
    lines = [
        f"# bench core: {results['started']}",
        "",
        f"Command: `{results['command']}`",
        f"Backend: {results['backend']}; pinning: {results['pinning']}; wrk -t1 -c{results['wrk_connections']}, "
        f"{results['body_bytes']} B responses, keep-alive. Medians over repetitions; ratios taken within one repetition.",
        "",
    ]
    loads = [f"{int(x * 100)}%" for x in results["loads"]]
    unavailable: set[str] = set()
    for mode, per_target in sorted(results["summary"].items()):
        lines += [
            f"## {mode}",
            "",
            "| target | req/s | req/CPU-s | x HAProxy (req/CPU-s) | x HAProxy (req/s) | "
            + " | ".join(f"added p50/p99 at {x} (us)" for x in loads)
            + " |",
            "|---" * (5 + len(loads)) + "|",
        ]
        for t in TARGETS:
            if t not in per_target:
                continue
            e = per_target[t]

            def f(x: Any, spec: str = ".0f") -> str:
                return "-" if x is None else format(x, spec)

            cells = [
                t,
                f(e["rps"]),
                f(e["rps_per_cpu_s"]) if t != "direct" else "(backend)",
                f(e["ratio_rps_per_cpu_to_haproxy"], ".2f"),
                f(e["ratio_rps_to_haproxy"], ".2f"),
            ]
            for x in loads:
                a = e["added"].get(x, {})
                late = a.get("generator_late_p99_us")
                cells.append(_added_cell(a) + (f" (gen. late {f(late)})" if late is not None else ""))
                if a.get("p50_us") is not None and a.get("interval", "").startswith("unavailable"):
                    unavailable.add(a["interval"].removeprefix("unavailable: "))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Added latency: the target's percentile minus the direct run's at the same fraction of each one's "
        'own maximum, from the intended send time (open-loop, no coordinated omission). "not sustained": '
        "in the target's or the baseline's step, fewer than 95% of the scheduled requests were answered "
        "within it, or the generator fell behind its own schedule (sim.bench.openloop.saturated). "
        '"gen. late": the C generator\'s own p99 lateness in that step (schedule to send, for requests '
        "a free connection was waiting for): it shares its core with the backend, and an added p99 "
        "of that order is that core's noise, not the target. "
        f"[lo, hi]: a 95% interval, a bootstrap over the recorded latencies ({added.RESAMPLES} multinomial "
        "redraws of each step's histogram, seeded; the median over repetitions taken in each redraw); it is "
        "the sampling noise of the requests, taken as independent, not the run-to-run variation: "
        '"reps a..b" is the range of the repetitions\' own differences, and where it reaches outside '
        "[lo, hi] the repetitions, not the interval, say how far the figure can move."
    )
    for why in sorted(unavailable):
        lines.append(f"- interval unavailable: {why}")
    for k, why in results["skipped"].items():
        lines.append(f"- skipped {k}: {why}")
    return "\n".join(lines) + "\n"


def _added_cell(a: dict[str, Any]) -> str:
    """``63 [41, 90] / 5,141 [3,900, 6,700] (reps 50..80 / 4,000..7,000)``, or "not sustained"."""
    if a.get("p50_us") is None:
        return "not sustained"

    def one(key: str) -> str:
        ci = a.get(f"{key}_ci95_us")
        return f"{a[f'{key}_us']:,.0f}" + (f" [{ci[0]:,.0f}, {ci[1]:,.0f}]" if ci else "")

    text = f"{one('p50')} / {one('p99')}"
    reps = a.get("reps", [])
    if len(reps) > 1 and not a.get("interval", "").startswith("none"):  # not the baseline's zeros
        span = [(min(r[k] for r in reps), max(r[k] for r in reps)) for k in ("p50_us", "p99_us")]
        text += f" (reps {span[0][0]:,.0f}..{span[0][1]:,.0f} / {span[1][0]:,.0f}..{span[1][1]:,.0f})"
    if a.get("interval", "").startswith("unavailable"):
        text += " (no interval)"
    return text


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted(results["summary"])
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4), squeeze=False)
    loads = results["loads"]
    for ax, mode in zip(axes[0], modes, strict=False):
        for t, e in results["summary"][mode].items():
            if t == "direct":
                continue
            ys = [e["added"].get(f"{int(x * 100)}%", {}).get("p99_us") for x in loads]
            ax.plot(
                [x * 100 for x in loads],
                [y if y is not None else float("nan") for y in ys],
                marker="o",
                label=f"{t} p99",
            )
            ys50 = [e["added"].get(f"{int(x * 100)}%", {}).get("p50_us") for x in loads]
            ax.plot(
                [x * 100 for x in loads],
                [y if y is not None else float("nan") for y in ys50],
                ls="--",
                marker=".",
                label=f"{t} p50",
            )
        ax.set_title(f"{mode}: added latency over direct")
        ax.set_xlabel("load, % of the target's own maximum")
        ax.set_ylabel("added latency (us)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def resummarize(out: Path, latency_duration: float) -> int:
    """The table of an earlier run under the current rules, from its raw steps."""
    path = out / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        print(f"failover-sim bench core: {path}: cannot read: {e}", file=sys.stderr)
        return 2
    for run in results["runs"]:
        for step in run["latency"]:
            if "completed" in step:
                step["saturated"] = openloop.saturated(step, latency_duration)
    results["summary"] = summarize(results)
    results["resummarized"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(render_table(results))
    print(render_table(results))
    return 0


def _modes_and_loads(modes_arg: str, loads_arg: str) -> tuple[list[str], list[float]] | None:
    """The modes and load fractions asked for, or None (said on stderr) when one is not valid. An empty
    --loads measures throughput only (no open-loop latency steps)."""
    modes = [m for m in modes_arg.split(",") if m]
    try:
        loads = [float(x) for x in loads_arg.split(",") if x.strip()]
    except ValueError:
        loads = [-1.0]
    if [m for m in modes if m not in ("http", "tcp")] or any(not 0 < x <= 1 for x in loads):
        print(f"failover-sim bench core: --modes {modes_arg!r} --loads {loads_arg!r}: expected modes of "
              "http,tcp and loads as comma-separated fractions in (0, 1], e.g. 0.25,0.5 (empty: none)",
              file=sys.stderr)
        return None
    return modes, loads


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="failover-sim bench core", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default results/bench-core-TIMESTAMP)",
    )
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated, of %(default)s")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, of %(default)s")
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds of each wrk run (>= 10 advised)"
    )
    p.add_argument(
        "--latency-duration", type=float, default=10.0, help="seconds of each open-loop step"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds discarded at the start of each open-loop step",
    )
    p.add_argument("--loads", default="0.25,0.5,0.75", help="fractions of each target's maximum")
    p.add_argument("--repeat", type=int, default=3, help="repetitions of the whole run (medians reported)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections")
    p.add_argument("--balancer-cpu", type=int, default=1, help="CPU the balancer under test is pinned to")
    p.add_argument("--generator-cpu", type=int, default=0, help="CPU the load generator and backend are pinned to")
    p.add_argument("--no-pin", action="store_true", help="no CPU pinning (the figures are then noisier)")
    p.add_argument(
        "--quick", action="store_true", help="a short smoke run (1 s steps, one repetition)"
    )
    p.add_argument(
        "--summarize-only",
        type=Path,
        metavar="DIR",
        help="re-read DIR/results.json, apply the current 'not sustained' rule and recompute the added latency's "
        "interval from the kept histograms, rewrite its "
        "table (results.md); nothing is measured",
    )
    a = p.parse_args(argv)
    if a.summarize_only is not None:
        return resummarize(a.summarize_only, a.latency_duration)
    if a.quick:
        a.duration, a.latency_duration, a.warmup, a.repeat = 1.0, 1.0, 0.2, 1
    # Absolute: nginx and haproxy resolve relative paths against their own prefix.
    out = Path(a.out or Path("results") / f"bench-core-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    targets = [t for t in a.targets.split(",") if t]
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        print(
            f"failover-sim bench core: unknown targets {bad}; known: {list(TARGETS)}",
            file=sys.stderr,
        )
        return 2
    parsed = _modes_and_loads(a.modes, a.loads)
    if parsed is None:
        return 2
    modes, loads = parsed
    if "direct" not in targets:
        targets.insert(0, "direct")  # the baseline for added latency
    pin_lb = None if a.no_pin else a.balancer_cpu
    pin_gen = None if a.no_pin else a.generator_cpu
    try:
        results = run_bench(out, targets, modes, a.duration, a.latency_duration, loads, a.repeat, a.connections,
                            a.warmup, pin_lb, pin_gen)
    except RuntimeError as e:
        print(f"failover-sim bench core: {e}", file=sys.stderr)
        return 1
    print(render_table(results))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
