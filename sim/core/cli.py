"""``failover-sim serve CONFIG.yaml``: run the balancer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import resource
import signal
import sys
from typing import Any

from sim.core.config import Config, ConfigError, load_config
from sim.core.private import PrivateFileError
from sim.lifeline import die_with_parent

__all__ = ["main", "raise_fd_limit"]


def raise_fd_limit(want: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``want`` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _pick_loop(config: Config) -> str:
    if config.loop == "asyncio":
        return "asyncio"
    # Found, not imported: importing uvloop before the workers fork left a worker's loop
    # hung when `serve` ran as a background job of a shell with job control (`serve &`).
    if importlib.util.find_spec("uvloop") is None:
        if config.loop == "uvloop":
            raise SystemExit(
                "loop: uvloop is not installed (pip install 'failover-sim[fast]')"
            ) from None
        return "asyncio"
    return "uvloop"


async def _reload(balancer: Any, file: str, children: list[int]) -> None:
    """SIGHUP: read and check ``file`` whole first; on any error keep serving what runs."""
    from sim.core.resolve import ResolveError
    from sim.core.server import ReloadError

    for pid in children:  # each worker reloads itself
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)
    try:
        config = load_config(file, files=True)
        await balancer.reload(config)
    except ConfigError as e:
        balancer.events.emit("reload_failed", file=file, errors=e.lines)
        return
    except ReloadError as e:
        balancer.events.emit("reload_failed", file=file, errors=[f"{file}: {e}"])
        return
    except ResolveError as e:
        balancer.events.emit("reload_failed", file=file, errors=[f"{file}: backends: {e}"])
        return
    except OSError as e:  # a file the new config names (the access log) cannot be opened
        balancer.events.emit("reload_failed", file=file, errors=[f"{file}: {e}"])
        return
    balancer.events.emit("reloaded", file=file, backends=len(config.backends))


async def _serve(
    config: Config, worker: int, ready_file: str | None, file: str, children: list[int]
) -> int:
    from sim.core.resolve import ResolveError
    from sim.core.server import Balancer

    balancer = Balancer(config, worker=worker, admin=worker == 0)
    try:
        await balancer.start()
    except PrivateFileError as e:
        # the admin token's file or directory: a one-line error, exit 2
        print(f"{file}: admin.token_file: {e}", file=sys.stderr)
        await balancer.stop()
        return 2
    except ResolveError as e:
        print(f"{file}: backends: {e}", file=sys.stderr)
        await balancer.stop()
        return 2
    except OSError as e:
        print(
            f"failover-sim serve: cannot listen on {config.listen}: {e.strerror or e}",
            file=sys.stderr,
        )
        await balancer.stop()
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(balancer.stop()))
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = loop.create_task(_reload(balancer, file, children))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    info = balancer.ready_info()
    line = json.dumps(info)
    print(line, flush=True)
    if ready_file and worker == 0:
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, ready_file)
    await balancer.stopped.wait()
    return 0


# Whole: it runs as it is from any folder (the backends ship with the package).
EXAMPLE = """example: a balancer on 127.0.0.1:8080 in front of two backends
  python -m sim.core.backend --port 9001 --name web1 &
  python -m sim.core.backend --port 9002 --name web2 &
  printf 'name: lb\\nlisten: 127.0.0.1:8080\\nbackends:\\n  - {name: web1, address: 127.0.0.1:9001}\\n  - {name: web2, address: 127.0.0.1:9002}\\n' > lb.yaml
  failover-sim serve lb.yaml --check
  failover-sim serve lb.yaml &
  curl -s http://127.0.0.1:8080/"""


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["serve"]:
        args_in = args_in[1:]
    parser = argparse.ArgumentParser(
        prog="failover-sim serve", description="Run the sim.core load balancer (docs/core.md: every setting).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="YAML configuration (see docs/core.md)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--ready-file", help="write the ready line (JSON: ports, token file) here once serving"
    )
    args = parser.parse_args(args_in)
    try:
        config = load_config(args.config, files=True)
    except ConfigError as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok ({config.mode}, {len(config.backends)} backends)")
        return 0
    want = config.limits.max_connections * 2 + 64  # a client and an upstream socket each
    have = raise_fd_limit(want)
    if have < want:
        print(
            f"failover-sim serve: warning: open-file limit {have} is below {want} "
            f"(2 x limits.max_connections + 64); connections past it are refused, "
            "raise it with `ulimit -n` or lower limits.max_connections",
            file=sys.stderr,
        )
    loop_kind = _pick_loop(config)
    worker = 0
    children: list[int] = []
    if config.workers > 1:
        # fork before any event loop exists; each worker binds the same port
        # with SO_REUSEPORT and the kernel spreads the connections
        master = os.getpid()
        for i in range(1, config.workers):
            pid = os.fork()
            if pid == 0:
                worker = i
                children = []
                # A worker outlives a master killed outright (or stopped, then killed, by a
                # lab fault) unless the kernel ends it: SIGKILL, which a stopped process obeys.
                die_with_parent(signal.SIGKILL, master)
                break
            children.append(pid)
    runner: Any
    if loop_kind == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    serving: Any = _serve(config, worker, args.ready_file, args.config, children)
    if os.environ.get("FAILOVER_SIM_BENCH_SLOWDOWN"):
        # only the regression gate's calibration sets it (sim.bench.slowdown, docs/ci.md)
        from sim.bench.slowdown import slowed_serve

        serving = slowed_serve(serving)
    try:
        code = runner(serving)
    except KeyboardInterrupt:
        code = 0
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    if worker != 0:
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
