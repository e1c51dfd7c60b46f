"""Which part of the stack costs what: our app and the floor under each server set-up.

    .venv/bin/python bench/levers.py [--duration 6] [--rounds 2]

Our app (Redis, 1 worker, rate limits counting far above the load) and the
floor (bench/floor.py) under: uvicorn with h11 on asyncio (what a plain
install runs), uvicorn with h11 on uvloop, uvicorn with httptools on uvloop,
the same without hiredis, and Granian (a Rust HTTP server, ASGI, on uvloop).
Same driver, same Redis, alternating rounds; it prints server CPU per cycle
and cycles/s for each. The servers run from a venv of their own under
bench/.work/levers (the app, plus httptools, hiredis and Granian from PyPI),
made on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Samples, drive, ours_cycle, percentile  # noqa: E402
from bench.run import WORK, fresh_dir, ours_env  # noqa: E402
from tests.support.server_process import UNLIMITED, ServerProcess  # noqa: E402
from tests.support.servers import free_port, redis_server  # noqa: E402

OURS = ("--factory", "bot.web.app:app_from_env")
FLOOR = ("bench.floor:app",)
GRANIAN_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
GRANIAN_READY = "Started worker-1"
VENV = WORK / "levers"
EXTRAS = ("httptools", "hiredis", "granian")
PYTHON = str(VENV / "bin" / "python")


def ensure_venv() -> None:
    if not (VENV / "bin" / "python").exists():
        print(f"installing the app with {', '.join(EXTRAS)} into {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", "-e", str(ROOT), *EXTRAS],
                       check=True)


def without_hiredis() -> None:
    """`python bench/levers.py uvicorn-without-hiredis ARGS`: uvicorn, redis-py's own parser."""
    import redis.asyncio as aioredis
    from redis.asyncio.connection import _AsyncRESP3Parser

    from_url = aioredis.BlockingConnectionPool.from_url.__func__  # type: ignore[attr-defined]

    def patched(cls: type, url: str, **kwargs: object) -> object:
        return from_url(cls, url, parser_class=_AsyncRESP3Parser, **kwargs)

    aioredis.BlockingConnectionPool.from_url = classmethod(patched)  # type: ignore[assignment]
    import uvicorn.main

    sys.argv = ["uvicorn", *sys.argv[2:]]
    uvicorn.main.main()


def uvicorn(app: tuple[str, ...], loop: str, http: str, hiredis: bool = True) -> list[str]:
    head = [PYTHON, "-m", "uvicorn"] if hiredis else [
        PYTHON, str(Path(__file__)), "uvicorn-without-hiredis"]
    return [*head, *app, "--host", "127.0.0.1", "--port", "0", "--loop", loop, "--http", http,
            "--no-access-log", "--no-server-header", "--log-level", "info"]


def granian(app: tuple[str, ...], port: int) -> list[str]:
    factory = ["--factory"] if app[0] == "--factory" else []
    return [PYTHON, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--loop", "uvloop", "--no-ws",
            "--log-level", "info", *factory, app[-1]]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "uvicorn-without-hiredis":
        without_hiredis()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="+", default=[],
                        help="only the set-ups whose name contains one of these words")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_venv()
    results: dict[str, Samples] = {}
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(fresh_dir(WORK / "redis")))
        setups = {
            "uvicorn h11, asyncio": lambda app: uvicorn(app, "asyncio", "h11"),
            "uvicorn h11, uvloop": lambda app: uvicorn(app, "uvloop", "h11"),
            "uvicorn httptools, uvloop": lambda app: uvicorn(app, "uvloop", "httptools"),
            "uvicorn httptools, uvloop, no hiredis":
                lambda app: uvicorn(app, "uvloop", "httptools", hiredis=False),
            "granian, uvloop": None,
        }
        targets: list[tuple[str, ServerProcess]] = []
        for setup, make in setups.items():
            if args.only and not any(word in setup for word in args.only):
                continue
            for label, app in (("ours", OURS), ("floor", FLOOR)):
                slug = re.sub(r"\W+", "-", f"levers {label} {setup}")
                env = ours_env("redis", redis, fresh_dir(WORK / slug) / "data", UNLIMITED)
                if make is None:
                    server = ServerProcess(granian(app, free_port()), env, WORK / f"{slug}.log",
                                           listening=GRANIAN_LISTENING,
                                           ready_marker=GRANIAN_READY)
                else:
                    server = ServerProcess(make(app), env, WORK / f"{slug}.log")
                targets.append((f"{label}: {setup}", stack.enter_context(server)))
        print(f"{len(targets)} targets up; {args.rounds} x {args.duration:g} s", flush=True)
        for round_ in range(args.rounds):
            order = targets if round_ % 2 == 0 else list(reversed(targets))
            for name, server in order:
                samples = asyncio.run(drive(ours_cycle, server.url, connections=args.connections,
                                            seconds=args.duration, warmup=args.warmup,
                                            server_pid=server.pid))
                print(f"  round {round_ + 1}: {name:<48} {samples.rate:6.0f} cycles/s "
                      f"{samples.cpu_per_cycle * 1000:5.2f} ms CPU", flush=True)
                results.setdefault(name, Samples()).merge(samples)
    print()
    print(f"{'target':<48} {'cycles/s':>8} {'CPU ms':>7} {'x floor':>7} {'reveal p99':>10} "
          f"{'errors':>6}")
    for name, s in results.items():
        label, _, setup = name.partition(": ")
        floor = results.get(f"floor: {setup}")
        ratio = f"{s.cpu_per_cycle / floor.cpu_per_cycle:7.2f}" if label == "ours" and floor \
            else " " * 7
        print(f"{name:<48} {s.rate:8.0f} {s.cpu_per_cycle * 1000:7.2f} {ratio} "
              f"{percentile(s.reveal, .99) * 1000:10.1f} {s.errors:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
