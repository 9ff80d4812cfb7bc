"""The fit's speed and memory on a large access log (docs/benchmarks.md, "The fit").

Writes an ALB access log of `--size` MB (plain: gzip would time the
decompressor as much as the fit), one day of a fixed population (browsers,
a JVM service, command-line tools) whose hours repeat one generated hour
with its timestamps moved on, then runs `failover-sim fit` on it in a fresh
process and reports its wall time and peak memory (the child's maximum
resident set, from getrusage). The target (issue 19): 1 GB in at most 2
minutes and 2 GB. On a busy machine, measure a smaller file: the fit streams,
so its time grows with the lines and its memory with the clients and
connections; the figure scaled to 1 GB says it was scaled.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TARGET_SECONDS_PER_GB, TARGET_MEMORY_MB = 120.0, 2048.0
GB = 1024**3
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "Apache-HttpClient/4.5.14 (Java/17.0.9)", "curl/8.5.0")


def one_hour(clients: int, rng: np.random.Generator) -> str:
    """An hour of ALB lines with `@D@` for the date and `@H@` for the hour, in time order."""
    kind = rng.choice(3, clients, p=[0.8, 0.05, 0.15])
    rate = np.array([2 / 60, 0.5, 1 / 600])[kind]
    n = rng.poisson(rate * 3600)
    who = np.repeat(np.arange(clients), n)
    t = rng.uniform(0, 3600, who.size)
    order = np.argsort(t)
    lines = []
    for c, s in zip(who[order].tolist(), t[order].tolist(), strict=True):
        k = int(kind[c])
        stamp = f"@D@T@H@:{int(s // 60):02d}:{s % 60:09.6f}Z"
        lines.append(
            f"https {stamp} app/bench-lb/50dc6c495c0c9188 10.{c >> 16 & 255}.{c >> 8 & 255}.{c & 255}:{40000 + c % 20000} "
            f"10.0.0.1:80 0.000 0.001 0.000 200 200 120 5120 \"GET https://www.example.com:443/api/items?id={c} HTTP/1.1\" "
            f"\"{AGENTS[k]}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:"
            f"targetgroup/bench/73e2d6bc24d8a067 \"Root=1-5833-{c:x}\" \"www.example.com\" \"-\" 1 {stamp} \"forward\" "
            f"\"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" TID_{c:x}_{int(s // 15)}\n")
    return "".join(lines)


def write_log(path: Path, size: int, clients: int, seed: int) -> tuple[int, int]:
    """(bytes, lines) written: hours of one generated hour until `size` bytes."""
    hour = one_hour(clients, np.random.default_rng(seed))  # about 500 bytes a line
    written = lines = h = 0
    per_hour = hour.count("\n")
    with open(path, "w") as f:
        while written < size:
            day = 1 + h // 24
            chunk = hour.replace("@D@", f"2026-12-{day:02d}").replace("@H@", f"{h % 24:02d}")
            f.write(chunk)
            written += len(chunk)
            lines += per_hour
            h += 1
    return written, lines


# The child reports its own high-water mark (VmHWM, of its own address space):
# getrusage's ru_maxrss for children would also count the pages a forked child
# shares with this process before it execs, i.e. the generator's memory.
_CHILD = ("import sys; from sim.cli import main; rc = main(sys.argv[1:]); "
          "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr); sys.exit(rc)")


def time_fit(path: Path, out: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MB) of `failover-sim fit` on the log, in a fresh
    process. On a shared machine the CPU seconds are what the fit costs; the wall time adds the wait
    for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "fit", "--access-log", str(path), "--format", "alb",
                           "--out", str(out / "fitted.yaml")], check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, int(done.stderr.split()[-1]) / 1024.0  # VmHWM is in kB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="failover-sim bench fit", description=__doc__.split("\n\n")[0],
                                     epilog="example:\n  failover-sim bench fit --size 1024\n  failover-sim bench fit --size 256",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=float, default=1024.0, help="MB of access log to generate (default 1024)")
    parser.add_argument("--clients", type=int, default=5000, help="clients in the population (default 5000: an hour is about 480,000 lines)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/failover-sim-bench-fit"), help="where the log is written")
    parser.add_argument("--out", type=Path, default=Path("results/bench-fit.json"), help="the JSON result")
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    log = args.dir / "alb.log"
    size, lines = write_log(log, int(args.size * 1024**2), args.clients, seed=19)
    gc.collect()
    wall, cpu, peak = time_fit(log, args.dir)
    if not args.keep:
        log.unlink()
    per_gb = wall * GB / size
    result = {
        "command": "failover-sim bench fit " + " ".join(argv if argv is not None else sys.argv[1:]),
        "bytes": size, "lines": lines, "clients": args.clients, "seconds": round(wall, 2),
        "mb_per_s": round(size / 1024**2 / wall, 2), "lines_per_s": round(lines / wall),
        "seconds_per_gb": round(per_gb, 1), "scaled_to_1gb": size < 0.95 * GB,
        "cpu_seconds": round(cpu, 2), "cpu_seconds_per_gb": round(cpu * GB / size, 1),
        "peak_memory_mb": round(peak, 1), "target": {"seconds_per_gb": TARGET_SECONDS_PER_GB, "memory_mb": TARGET_MEMORY_MB},
        "meets_target": per_gb <= TARGET_SECONDS_PER_GB and peak <= TARGET_MEMORY_MB,
        "meets_target_on_one_free_core": cpu * GB / size <= TARGET_SECONDS_PER_GB and peak <= TARGET_MEMORY_MB,
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["meets_target"] else 1
