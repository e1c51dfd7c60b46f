"""Profile our server's hot path under the benchmark's load, with py-spy.

    .venv/bin/python bench/profile.py [--store redis|sqlite] [--seconds 10] [--floor]

py-spy (from PyPI) goes into a venv of its own under bench/.work/; it is not a
project dependency. It samples the one-worker server process (or, with
--floor, bench/floor.py) while the load driver runs create-then-reveal cycles,
writes collapsed stacks to bench/.work/profile-<target>.txt (for flame graph
tools) and prints where the samples fall by layer (each sample goes to the
innermost frame that belongs to a known layer), then the functions with the
most samples, inclusive and own.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import drive, ours_cycle  # noqa: E402
from bench.run import (  # noqa: E402
    RATE_LIMITS_OFF,
    REDIS_LABEL,
    WORK,
    fresh_dir,
    start_floor,
    start_ours,
)
from tests.support.server_process import UNLIMITED  # noqa: E402
from tests.support.servers import redis_server  # noqa: E402

TOOLS = WORK / "tools"


def ensure_py_spy() -> Path:
    binary = TOOLS / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy"],
                       check=True)
    return binary


# (layer, what a frame's text contains), checked from the innermost frame out;
# standard-library helpers (hashlib, hmac, ipaddress, urllib, ...) count for
# the layer that called them.
LAYERS = (
    ("crypto: AES-GCM, HKDF, sealing", ("bot/backends/crypto.py", "bot/serverkey.py",
                                       "cryptography/")),
    ("JSON encode/decode", ("json/",)),
    ("socket writes (syscalls)", ("_SelectorSocketTransport.write ", "writelines ")),
    ("redis-py", ("redis/",)),
    ("uvicorn + HTTP parser", ("uvicorn/", "h11/", "httptools/")),
    ("Starlette + form parser", ("starlette/", "multipart/")),
    ("our code (bot/), other", ("bot/", "bench/floor.py")),
    ("event loop", ("asyncio/", "uvloop/", "selectors.py")),
)


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return layer
    return "other"


def summarize(collapsed: Path, top: int) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        layers[layer_of(frames)] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    print("\n-- by layer (own samples) --")
    for layer, n in layers.most_common():
        print(f"{100 * n / total:5.1f}%  {layer}")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"\n-- top {top} by {title} samples --")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=[REDIS_LABEL, "sqlite"], default=REDIS_LABEL)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--floor", action="store_true", help="profile bench/floor.py instead")
    parser.add_argument("--no-rate-limits", action="store_true")
    args = parser.parse_args()
    py_spy = ensure_py_spy()
    out = WORK / f"profile-{'floor' if args.floor else args.store}.txt"
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(fresh_dir(WORK / "redis")))
        if args.floor:
            target = start_floor(stack, redis)
        else:
            target = start_ours(stack, args.store, 1, redis,
                                limits=RATE_LIMITS_OFF if args.no_rate_limits else UNLIMITED)
        recorder = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(target.server.pid), "--format", "raw",
             "--rate", "250", "--duration", str(int(args.seconds)), "--output", str(out),
             "--nonblocking", "--nolineno"],
        )
        time.sleep(0.5)
        samples = asyncio.run(drive(ours_cycle, target.server.url, connections=16,
                                    seconds=args.seconds, warmup=0.5))
        recorder.wait(timeout=args.seconds + 30)
    print(f"{samples.rate:.0f} cycles/s while profiling (py-spy slows the server a little)")
    summarize(out, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
