"""Our app's own CPU per create-then-reveal cycle, without the HTTP server or sockets.

    .venv/bin/python bench/inprocess.py [--store redis|sqlite] [--cycles 3000] [--rounds 5]

Calls the ASGI app (as `create_app` builds it, rate limits on) directly, one cycle
at a time: `POST /api/v1/share` then `POST /api/v1/secret/{key}`, each with a
ready-made request body, the answers checked. Measures this process's CPU time
(`time.process_time`: the app, Starlette, redis-py; SQLite's thread included)
per cycle, the median of several rounds. Without uvicorn, the client and the
sockets, and with the store's own CPU in another process (Redis), a change of a
few percent in our per-request code shows here where `bench/run.py`, on a
shared machine, cannot see it. Use it to measure one change at a time (run it
before and after); it is not a throughput figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from tests.support.servers import TEST_SERVER_KEY, redis_server  # noqa: E402

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


async def call(app: App, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "",
        "headers": [(b"host", b"ots.test"),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def cycles(app: App, n: int) -> float:
    """CPU seconds per cycle over `n` cycles."""
    started = time.process_time()
    for i in range(n):
        value = f"secret-{i}"
        status, answer = await call(app, "POST", "/api/v1/share", f"secret={value}".encode())
        assert status == 200, answer
        key = json.loads(answer)["secret_key"]
        status, answer = await call(app, "POST", f"/api/v1/secret/{key}", b"")
        assert status == 200 and json.loads(answer)["value"] == value, answer
    return (time.process_time() - started) / n


async def measure(env: dict[str, str], n: int, rounds: int) -> list[float]:
    app: Any = create_app(Settings.from_env(env))
    async with app.router.lifespan_context(app):
        await cycles(app, 200)  # warm-up: connections, scripts, caches
        return [await cycles(app, n) for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {
            "PUBLIC_URL": "http://ots.test", "DATA_DIR": str(work / "data"),
            "SERVER_KEY": TEST_SERVER_KEY, "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_CREATE": "1000000000", "RATE_LIMIT_REVEAL": "1000000000",
        }
        if args.store == "redis":
            (work / "redis").mkdir()
            env["REDIS_URL"] = stack.enter_context(redis_server(work / "redis")).url
        per_cycle = asyncio.run(measure(env, args.cycles, args.rounds))
    runs = ", ".join(f"{1000 * s:.3f}" for s in per_cycle)
    print(f"{args.store}: {1000 * statistics.median(per_cycle):.3f} ms CPU per cycle "
          f"(median of {args.rounds} x {args.cycles}; rounds: {runs})")


if __name__ == "__main__":
    main()
