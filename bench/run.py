"""Benchmark: our server against the floor of its stack and snappass, and the Slack path.

    .venv/bin/python bench/run.py            # the full run (about 5 minutes)
    .venv/bin/python bench/run.py --quick    # a smoke run (under a minute)

In one run it starts a redis-server on a free 127.0.0.1 port; our server under
uvicorn (1 and 2 workers) on that Redis, on a Redis Cluster of its own (3
masters, 3 replicas: each create waits for a replica) and on SQLite; the floor
(bench/floor.py: Starlette on uvicorn doing one Redis command per request, from
the same environment as ours); snappass (from PyPI, in a venv of its own under
bench/.work/) on the same Redis; then drives
create-then-reveal cycles through each with one client, the same number of
connections and the same duration, alternating the targets round by round. It
prints cycles/s and latencies for each, the ratio ours/snappass, and the Slack
path: the ack latency of signed /ots requests and the time until the ephemeral
link reaches the fake Slack. Everything it starts, it stops by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import (  # noqa: E402
    Cycle,
    Samples,
    SlackSamples,
    drive,
    drive_slack,
    ours_cycle,
    percentile,
    snappass_cycle,
)
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.redis_topologies import RedisClusterSetup  # noqa: E402
from tests.support.server_process import UNLIMITED, ServerProcess  # noqa: E402
from tests.support.servers import TEST_SERVER_KEY, RedisServer, redis_server  # noqa: E402
from tests.support.slack_requests import SIGNING_SECRET  # noqa: E402

WORK = ROOT / "bench" / ".work"
SNAPPASS_VENV = WORK / "snappass"
SNAPPASS = "snappass==1.6.2"
GUNICORN = "gunicorn==23.0.0"
GUNICORN_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
SNAPPASS_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
SPEEDUPS_VENV = WORK / "speedups"
# What `uvicorn[standard]` users get (uvloop, httptools) plus redis-py's C parser.
# None of them is a dependency of ours (docs/benchmarks.md says why).
SPEEDUPS = ("uvloop", "httptools", "hiredis")
REDIS_LABEL = "redis"
CLUSTER_LABEL = "redis-cluster"
SNAPPASS_LABEL = "snappass"
FLOOR_LABEL = "floor"
SPEEDUPS_MARK = " +C"


@dataclass(frozen=True)
class Target:
    name: str
    server: ServerProcess
    cycle: Cycle
    store: str  # "redis", "redis-cluster" or "sqlite"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.split()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "redis": next((w[2:] for w in redis_version if w.startswith("v=")), "?"),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def ensure_snappass() -> Path:
    """snappass in a venv of its own (it pins Flask and redis versions of its own)."""
    python = SNAPPASS_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {SNAPPASS} into {SNAPPASS_VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SNAPPASS_VENV)], check=True)
    check = subprocess.run([str(python), "-c", "import snappass.main, gunicorn"],
                           capture_output=True, env={**os.environ, "REDIS_HOST": "127.0.0.1"})
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", SNAPPASS, GUNICORN],
                       check=True)
    return python


def ensure_speedups() -> Path:
    """Our app in a venv of its own, with uvicorn's optional C speed-ups installed (+C rows)."""
    python = SPEEDUPS_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing the app with {', '.join(SPEEDUPS)} into "
              f"{SPEEDUPS_VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SPEEDUPS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *SPEEDUPS],
                       check=True)
    return python


RATE_LIMITS_OFF = {"RATE_LIMIT_CREATE": "0", "RATE_LIMIT_REVEAL": "0"}


def ours_env(store: str, redis: RedisServer | str, data_dir: Path, limits: dict[str, str]
             ) -> dict[str, str]:
    # One client address sends everything: the rate limits are either far out
    # of the way (UNLIMITED: their counters still run, so their cost is
    # measured) or off.
    env = {"PUBLIC_URL": "http://ots.bench", "DATA_DIR": str(data_dir), **limits}
    if store in (REDIS_LABEL, CLUSTER_LABEL):
        # A str is a REDIS_URL of its own (the cluster's).
        env["REDIS_URL"] = redis if isinstance(redis, str) else redis.url
    return env


def start_ours(stack: ExitStack, store: str, workers: int, redis: RedisServer | str,
               python: Path | None = None, limits: dict[str, str] = UNLIMITED) -> Target:
    name = f"ours {store}, {workers} worker{'s' if workers > 1 else ''}"
    slug = f"ours-{store}-{workers}w"
    if python is not None:
        name, slug = f"{name}{SPEEDUPS_MARK}", f"{slug}-c"
    if limits is RATE_LIMITS_OFF:
        name, slug = f"{name}, no rate limit", f"{slug}-nolimits"
    env = ours_env(store, redis, fresh_dir(WORK / slug) / "data", limits)
    server = ServerProcess.python_m_bot(env, WORK / f"{slug}.log", workers=workers,
                                        python=str(python or sys.executable))
    stack.enter_context(server)
    return Target(name, server, ours_cycle, store)


def start_floor(stack: ExitStack, redis: RedisServer, python: Path | None = None) -> Target:
    """bench/floor.py under uvicorn, from the same environment as ours (or the +C one)."""
    name, slug = f"{FLOOR_LABEL} (Starlette, 1 command), redis", "floor"
    if python is not None:
        name, slug = f"{name}{SPEEDUPS_MARK}", f"{slug}-c"
    # As `python -m bot` runs uvicorn: one process, no access log, no Server header.
    argv = [str(python or sys.executable), "-m", "uvicorn", "bench.floor:app",
            "--host", "127.0.0.1", "--port", "0", "--no-access-log", "--no-server-header",
            "--log-level", "info"]
    server = ServerProcess(argv, {"REDIS_URL": redis.url}, WORK / f"{slug}.log")
    stack.enter_context(server)
    return Target(name, server, ours_cycle, REDIS_LABEL)


def start_snappass(stack: ExitStack, python: Path, redis: RedisServer) -> Target:
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port), "NO_SSL": "True",
           "SNAPPASS_REDIS_DB": "1"}
    # What the `snappass` command runs (Flask's threaded server), bound to loopback.
    argv = [str(python), "-m", "flask", "--app", "snappass.main", "run",
            "--host", "127.0.0.1", "--port", "0", "--with-threads"]
    server = ServerProcess(argv, env, WORK / "snappass.log", listening=SNAPPASS_LISTENING,
                           ready_count=0)
    stack.enter_context(server)
    return Target("snappass (Flask), redis", server, snappass_cycle, REDIS_LABEL)


def start_snappass_gunicorn(stack: ExitStack, python: Path, redis: RedisServer) -> Target:
    """snappass behind a production WSGI server: 2 processes x 8 threads for 16 connections."""
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port), "NO_SSL": "True",
           "SNAPPASS_REDIS_DB": "1"}
    argv = [str(python), "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "2",
            "--worker-class", "gthread", "--threads", "8", "snappass.main:app"]
    server = ServerProcess(argv, env, WORK / "snappass-gunicorn.log",
                           listening=GUNICORN_LISTENING, ready_count=0)
    stack.enter_context(server)
    return Target("snappass (gunicorn, 2x8), redis", server, snappass_cycle, REDIS_LABEL)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def slack_server(redis: RedisServer, limits: dict[str, str]
                 ) -> Iterator[tuple[ServerProcess, FakeSlack]]:
    with FakeSlack() as fake:
        env = {**ours_env(REDIS_LABEL, redis, WORK / "slack" / "data", limits),
               "SLACK_BOT_TOKEN": fake.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": fake.api_url,
               # Slack on Redis needs the key every replica shares (not a secret here).
               "SERVER_KEY": TEST_SERVER_KEY}
        with ServerProcess.uvicorn(env, WORK / "ours-slack.log") as server:
            yield server, fake


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def print_table(results: dict[str, Samples]) -> None:
    head = (f"{'target':<38} {'cycles/s':>9} {'create p50':>10} {'p99':>7} "
            f"{'reveal p50':>10} {'p99':>7} {'cycle p50':>9} {'p99':>7} {'errors':>6} "
            f"{'server CPU':>10} {'client CPU':>10}")
    print(head)
    print("-" * len(head))
    for name, s in results.items():
        print(f"{name:<38} {s.rate:9.0f} {ms(percentile(s.create, .5)):>10} "
              f"{ms(percentile(s.create, .99))} {ms(percentile(s.reveal, .5)):>10} "
              f"{ms(percentile(s.reveal, .99))} {ms(percentile(s.cycle, .5)):>9} "
              f"{ms(percentile(s.cycle, .99))} {s.errors:6d} {ms(s.cpu_per_cycle):>10} "
              f"{ms(s.client_cpu_per_cycle):>10}")
    print("(latencies in ms; CPU in ms per cycle: the server's processes, and this driver's)")


def print_slack(s: SlackSamples) -> None:
    print(f"/ots ack:            p50 {ms(percentile(s.ack, .5))} ms  "
          f"p99 {ms(percentile(s.ack, .99))} ms  ({len(s.ack)} requests, {s.errors} errors)")
    print(f"link posted (total): p50 {ms(percentile(s.link, .5))} ms  "
          f"p99 {ms(percentile(s.link, .99))} ms")


def find(results: dict[str, Samples], prefix: str) -> Samples | None:
    return next((s for n, s in results.items() if n.startswith(prefix)), None)


def floor_of(results: dict[str, Samples], name: str) -> Samples | None:
    """The floor row from the same environment: +C rows against the floor +C."""
    speedups = name.endswith(SPEEDUPS_MARK) or f"{SPEEDUPS_MARK}," in name
    return next((s for n, s in results.items() if n.startswith(FLOOR_LABEL)
                 and n.endswith(SPEEDUPS_MARK) == speedups), None)


def is_ours(name: str) -> bool:
    return not name.startswith((SNAPPASS_LABEL, FLOOR_LABEL))


def verdicts(results: dict[str, Samples], slack: SlackSamples | None) -> list[str]:
    """Each of our rows against issue 16's targets, as ratios taken in this run."""
    lines = []
    gunicorn = find(results, f"{SNAPPASS_LABEL} (gunicorn")
    redis_1w = results.get(f"ours {REDIS_LABEL}, 1 worker")
    for name, s in results.items():
        if not is_ours(name):
            continue
        line = f"{name:<38} reveal p99 {percentile(s.reveal, .99) * 1000:5.1f} ms (< 10)"
        floor = floor_of(results, name)
        if floor is not None and floor.counted:
            line += (f"   server CPU/cycle {s.cpu_per_cycle / floor.cpu_per_cycle:4.2f}x "
                     f"the floor's (<= 1.3)")
        if gunicorn is not None and gunicorn.rate:
            line += f"   cycles/s {s.rate / gunicorn.rate:4.1f}x snappass on gunicorn (>= 4)"
        if "sqlite" in name and redis_1w is not None and redis_1w.rate:
            same = results.get(name.replace("sqlite", REDIS_LABEL))
            if same is not None and same.rate:
                line += f"   {s.rate / same.rate:4.2f}x redis's cycles/s (>= 0.8)"
        lines.append(line)
    if slack is not None:
        lines.append(f"/ots ack p99 {percentile(slack.ack, .99) * 1000:.1f} ms (< 20)   "
                     f"link posted p99 {percentile(slack.link, .99) * 1000:.1f} ms (< 40)")
    return lines


def run(args: argparse.Namespace) -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    snappass_python = None if args.skip_snappass else ensure_snappass()
    speedups_python = None if args.skip_speedups else ensure_speedups()
    limits = RATE_LIMITS_OFF if args.no_rate_limits else UNLIMITED
    results: dict[str, Samples] = {}
    slack: SlackSamples | None = None
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(fresh_dir(WORK / "redis")))
        targets: list[Target] = []
        stores: dict[str, RedisServer | str] = {REDIS_LABEL: redis, "sqlite": redis}
        if CLUSTER_LABEL in args.stores:
            cluster = RedisClusterSetup(fresh_dir(WORK / "cluster"))
            stack.callback(cluster.stop)
            cluster.start()
            stores[CLUSTER_LABEL] = cluster.url
        for store in args.stores:
            for workers in args.workers:
                targets.append(start_ours(stack, store, workers, stores[store], limits=limits))
        # Without the rate-limit counter (the stretch target), one worker:
        # what the counter's round trips cost. Left out of the smoke run.
        without_counter = REDIS_LABEL in args.stores and limits is not RATE_LIMITS_OFF \
            and not args.quick
        if without_counter:
            targets.append(start_ours(stack, REDIS_LABEL, 1, redis, limits=RATE_LIMITS_OFF))
        if speedups_python is not None and REDIS_LABEL in args.stores:
            for workers in args.workers:
                targets.append(start_ours(stack, REDIS_LABEL, workers, redis, speedups_python,
                                          limits))
            if without_counter:
                targets.append(start_ours(stack, REDIS_LABEL, 1, redis, speedups_python,
                                          RATE_LIMITS_OFF))
        if REDIS_LABEL in args.stores:
            targets.append(start_floor(stack, redis))
            if speedups_python is not None:
                targets.append(start_floor(stack, redis, speedups_python))
        if snappass_python is not None:
            targets.append(start_snappass(stack, snappass_python, redis))
            targets.append(start_snappass_gunicorn(stack, snappass_python, redis))
        print(f"{len(targets)} targets up; {args.rounds} round(s) of {args.duration:g} s each "
              f"(+{args.warmup:g} s warm-up), {args.connections} connections", flush=True)
        for round_ in range(args.rounds):
            # Alternate the order so no target always runs first (or last).
            order = targets if round_ % 2 == 0 else list(reversed(targets))
            for target in order:
                samples = asyncio.run(drive(
                    target.cycle, target.server.url, connections=args.connections,
                    seconds=args.duration, warmup=args.warmup, server_pid=target.server.pid,
                ))
                print(f"  round {round_ + 1}: {target.name:<38} {samples.rate:7.0f} cycles/s",
                      flush=True)
                results.setdefault(target.name, Samples()).merge(samples)
        if not args.skip_slack:
            fresh_dir(WORK / "slack")
            with slack_server(redis, limits) as (server, fake):
                asyncio.run(drive_slack(server.url, fake, concurrency=args.slack_concurrency,
                                        requests=50))  # warm-up
                fake.reset()
                slack = asyncio.run(drive_slack(server.url, fake,
                                                concurrency=args.slack_concurrency,
                                                requests=args.slack_requests))
    info["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print()
    print_table(results)
    if slack is not None:
        print()
        print(f"Slack path ({args.slack_concurrency} concurrent signed /ots requests, Redis, "
              f"1 worker):")
        print_slack(slack)
    print()
    for line in verdicts(results, slack):
        print(line)
    record = {
        "machine": info,
        "args": vars(args),
        "results": {n: {"cycles_per_s": s.rate, "cycles": len(s.cycle), "errors": s.errors,
                        "server_cpu_ms_per_cycle": s.cpu_per_cycle * 1000,
                        "client_cpu_ms_per_cycle": s.client_cpu_per_cycle * 1000,
                        **{f"{k}_p{q}_ms": percentile(getattr(s, k), q / 100) * 1000
                           for k in ("create", "reveal", "cycle") for q in (50, 99)}}
                    for n, s in results.items()},
    }
    if slack is not None:
        record["slack"] = {f"{k}_p{q}_ms": percentile(getattr(slack, k), q / 100) * 1000
                           for k in ("ack", "link") for q in (50, 99)}
    (WORK / "last-run.json").write_text(json.dumps(record, indent=2))
    (WORK / "last-run.md").write_text(markdown(results, slack, args))
    print(f"\n(figures also in {(WORK / 'last-run.json').relative_to(ROOT)}, "
          f"and as a Markdown table in {(WORK / 'last-run.md').relative_to(ROOT)})")
    return 0


def markdown(results: dict[str, Samples], slack: SlackSamples | None,
             args: argparse.Namespace) -> str:
    """The tables for docs/benchmarks.md, from the same figures as the printout."""
    gunicorn = find(results, f"{SNAPPASS_LABEL} (gunicorn")
    lines = [
        f"{args.connections} connections, {args.rounds} x {args.duration:g} s per target "
        f"(after {args.warmup:g} s warm-up each), alternating. Latencies in ms, CPU in ms "
        "per cycle (the server's processes); x floor: server CPU per cycle over the floor's "
        "from the same environment.",
        "",
        "| target | cycles/s | x snappass on gunicorn | create p50 / p99 "
        "| reveal p50 / p99 | cycle p50 / p99 | server CPU | x floor | client CPU | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def pair(values: list[float]) -> str:
        return f"{percentile(values, .5) * 1000:.1f} / {percentile(values, .99) * 1000:.1f}"

    for name, s in results.items():
        versus = gunicorn is not None and gunicorn.rate and not name.startswith(SNAPPASS_LABEL)
        floor = floor_of(results, name) if is_ours(name) else None
        lines.append(
            f"| {name} | {s.rate:.0f} | {f'{s.rate / gunicorn.rate:.1f}' if versus else ''} "
            f"| {pair(s.create)} | {pair(s.reveal)} | {pair(s.cycle)} "
            f"| {s.cpu_per_cycle * 1000:.2f} "
            f"| {f'{s.cpu_per_cycle / floor.cpu_per_cycle:.2f}' if floor else ''} "
            f"| {s.client_cpu_per_cycle * 1000:.2f} | {s.errors} |"
        )
    if slack is not None:
        lines += [
            "",
            f"Slack path: {len(slack.ack)} signed `/ots` requests, {args.slack_concurrency} at "
            f"a time, {slack.errors} errors.",
            "",
            "| | p50 ms | p99 ms |",
            "|---|--:|--:|",
            f"| ack (HTTP answer to Slack) | {percentile(slack.ack, .5) * 1000:.1f} "
            f"| {percentile(slack.ack, .99) * 1000:.1f} |",
            f"| ephemeral link reaches Slack | {percentile(slack.link, .5) * 1000:.1f} "
            f"| {percentile(slack.link, .99) * 1000:.1f} |",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="runs per target, alternating")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stores", nargs="+", default=[REDIS_LABEL, CLUSTER_LABEL, "sqlite"],
                        choices=[REDIS_LABEL, CLUSTER_LABEL, "sqlite"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--skip-snappass", action="store_true")
    parser.add_argument("--skip-slack", action="store_true")
    parser.add_argument("--skip-speedups", action="store_true",
                        help="leave out our server with uvloop, httptools and hiredis (+C)")
    parser.add_argument("--slack-concurrency", type=int, default=8)
    parser.add_argument("--slack-requests", type=int, default=400)
    parser.add_argument("--no-rate-limits", action="store_true",
                        help="turn our rate limits off (by default they count, far above the load)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 worker, 3 s per target, one round, "
                             "100 /ots requests")
    args = parser.parse_args()
    if args.quick:
        # One worker only: the rows the targets name, in under a minute.
        args.duration, args.rounds, args.slack_requests, args.workers = 3.0, 1, 100, [1]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
