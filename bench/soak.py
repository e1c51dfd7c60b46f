"""Soak: a bounded mixed load with short lifetimes, and what the store holds before,
during and after it.

    .venv/bin/python bench/soak.py                   # SQLite and Redis together, ~6.5 min
    .venv/bin/python bench/soak.py --duration 30 --settle 150 --stores sqlite

For each store it starts `python -m bot` (2 workers, METRICS_TOKEN set, Slack
connected to the fake Slack so that owners' secrets go through the expiry
index) on 127.0.0.1, and a redis-server on a free port for the Redis one. The
load runs at a fixed rate for `--duration` seconds over the OTS v1 API, every
secret living the minimum 60 seconds:

- 35 % anonymous shares, half of them revealed at once;
- 45 % shares by an API user (an owner: expiry index, `recent` index), a third
  revealed, a sixth burned, the rest left to expire;
- 5 % shares with a passphrase, each tried once with a wrong one (a counter);
- 10 % `recent` listings; 5 % reveals of keys that do not exist.

Then it waits `--settle` seconds (past twice the lifetime, when receipts go too)
and prints, at each snapshot: live keys by kind and stored rows (SQLite: rows
not yet swept; Redis: keys), the expiry index and the `recent` index, the
file sizes (SQLite and its WAL) or Redis's used memory, the server's resident
memory (both workers) and what /metrics says (expiry backlog, secrets, errors).
Everything it starts it stops by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402
from tests.support.servers import RedisServer, redis_server  # noqa: E402
from tests.support.slack_requests import SIGNING_SECRET  # noqa: E402

WORK = ROOT / "bench" / ".work" / "soak"
TOKEN = "soak-metrics-token-0123456789"
USER = ("soak@example.com", "soak-api-token")
TTL = 60  # the shortest lifetime the app allows
SQLITE_FILE = "secrets.sqlite3"
SERVER_KEY = "ab" * 32  # 32 bytes in hex; replicas on one Redis share one
IN_FLIGHT = 16  # operations under way at once, per store


@dataclass
class Target:
    store: str
    server: ServerProcess
    data_dir: Path
    redis_url: str | None = None
    done: Counter[str] = field(default_factory=Counter)


# -- what the store holds -----------------------------------------------------------


def kind_of(key: str) -> str:
    """`s:<hash>` -> `s`, `r:reveal:<hash>` -> `r:reveal`, `x:expiring` -> `x:expiring`."""
    head, _, tail = key.rpartition(":")
    return head if len(tail) >= 32 else key


def sqlite_counts(data_dir: Path) -> dict[str, object]:
    path = data_dir / SQLITE_FILE
    if not path.exists():
        return {"keys": {}, "rows": 0}
    now = time.time()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        live: Counter[str] = Counter()
        for (key,) in conn.execute("SELECT key FROM kv WHERE expires > ?", (now,)):
            live[kind_of(key)] += 1
        rows = conn.execute("SELECT count(*) FROM kv").fetchone()[0]
        index: Counter[str] = Counter()
        for name, count in conn.execute(
            "SELECT name, count(*) FROM idx WHERE expires > ? GROUP BY name", (now,)
        ):
            index[kind_of(name)] += count
        index_rows = conn.execute("SELECT count(*) FROM idx").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    files = {p.name.removeprefix(SQLITE_FILE) or "db": p.stat().st_size
             for p in data_dir.glob(SQLITE_FILE + "*")}
    return {"keys": dict(live), "rows": rows, "index": dict(index), "index_rows": index_rows,
            "pages": pages, "free_pages": free, "files": files}


def redis_counts(url: str) -> dict[str, object]:
    client = redis.Redis.from_url(url)
    try:
        keys: Counter[str] = Counter()
        index: dict[str, int] = {}
        for raw in client.scan_iter(match="ots:*", count=1000):
            key = raw.decode().removeprefix("ots:")
            kind = kind_of(key)
            keys[kind] += 1
            if client.type(raw) == b"zset":
                index[kind] = index.get(kind, 0) + int(client.zcard(raw))
        memory = client.info("memory")
        return {"keys": dict(keys), "index": index, "dbsize": client.dbsize(),
                "used_memory": memory["used_memory"]}
    finally:
        client.close()


def rss_bytes(root: int) -> int:
    """Resident memory of a process and its children (the workers), from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry.name), int(fields.get("PPid", "0").strip() or 0)
        if pid == root or ppid == root:
            total += int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    return total


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=10).text
    wanted: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ots_expiry_backlog":
                wanted["backlog"] = sample.value
            elif sample.name == "ots_secrets_total":
                wanted[sample.labels["event"]] = sample.value
            elif sample.name == "ots_store_errors_total":
                wanted["store_errors"] = wanted.get("store_errors", 0) + sample.value
            elif sample.name == "ots_http_requests_total" and int(sample.labels["status"]) >= 500:
                wanted["http_5xx"] = wanted.get("http_5xx", 0) + sample.value
    return wanted


COLUMNS = ("t", "phase", "store", "secrets", "receipts", "counters", "expiry idx",
           "recent idx", "rows/keys", "files/mem KiB", "free pg", "RSS MiB", "backlog",
           "created", "expired", "5xx")


def snapshot(target: Target, phase: str, started: float) -> list[str]:
    """One row of the table: what the store and the server hold right now."""
    sqlite = target.redis_url is None
    counts = sqlite_counts(target.data_dir) if sqlite else redis_counts(target.redis_url or "")
    keys: dict[str, int] = counts["keys"]  # type: ignore[assignment]
    index: dict[str, int] = counts.get("index", {})  # type: ignore[assignment]
    files: dict[str, int] = counts.get("files", {})  # type: ignore[assignment]
    seen = scrape(target.server.url)
    kib = (sum(files.values()) if sqlite else int(counts["used_memory"])) // 1024  # type: ignore[call-overload]
    return [
        str(round(time.monotonic() - started)), phase, target.store,
        str(keys.get("s", 0) + keys.get("p", 0)),
        str(keys.get("m", 0)),
        str(sum(n for k, n in keys.items() if k == "a" or k.startswith("r:"))),
        str(index.get("x:expiring", 0)),
        str(index.get("r", 0)),
        str(counts["rows"] + counts["index_rows"] if sqlite else counts["dbsize"]),  # type: ignore[operator]
        str(kib),
        str(counts.get("free_pages", "-")),
        f"{rss_bytes(target.server.pid) / 2**20:.0f}",
        f"{seen.get('backlog', 0):.0f}",
        f"{seen.get('created', 0):.0f}",
        f"{seen.get('expired', 0):.0f}",
        f"{seen.get('http_5xx', 0):.0f}",
    ]


def show(row: list[str]) -> None:
    print(" | ".join(row), flush=True)


# -- the load -----------------------------------------------------------------------


def _missing_key() -> str:
    return "".join(random.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(31))  # noqa: S311


async def one(client: httpx.AsyncClient, target: Target) -> None:
    roll = random.random()  # noqa: S311
    value = f"soak-{random.getrandbits(64):x}"
    if roll < 0.35:
        r = await client.post("/share", data={"secret": value, "ttl": TTL})
        target.done["anon"] += 1
        if random.random() < 0.5:  # noqa: S311
            await client.post(f"/secret/{r.json()['secret_key']}")
            target.done["revealed"] += 1
    elif roll < 0.80:
        r = await client.post("/share", data={"secret": value, "ttl": TTL}, auth=USER)
        target.done["owned"] += 1
        fate = random.random()  # noqa: S311
        if fate < 1 / 3:
            await client.post(f"/secret/{r.json()['secret_key']}")
            target.done["revealed"] += 1
        elif fate < 0.5:
            await client.post(f"/private/{r.json()['metadata_key']}/burn", auth=USER)
            target.done["burned"] += 1
    elif roll < 0.85:
        r = await client.post("/share", data={"secret": value, "ttl": TTL, "passphrase": "pw"})
        await client.post(f"/secret/{r.json()['secret_key']}", data={"passphrase": "nope"})
        target.done["passphrase"] += 1
    elif roll < 0.95:
        await client.get("/private/recent", auth=USER)
        target.done["recent"] += 1
    else:
        await client.post(f"/secret/{_missing_key()}")
        target.done["missing"] += 1


async def load(target: Target, rate: float, duration: float) -> None:
    """`rate` operations a second for `duration` seconds, at most IN_FLIGHT under way.

    Bounded in time as in work: when the server falls behind, operations that would
    exceed IN_FLIGHT are not sent (counted as `shed`), so the load ends on time.
    """
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=target.server.url + "/api/v1", timeout=30) as client:

        async def run() -> None:
            try:
                await one(client, target)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                # A client-side failure (a timeout on a starved machine); the
                # server's own failures show in /metrics as 5xx.
                target.done[f"failed ({type(exc).__name__})"] += 1

        begin = time.monotonic()
        sent = 0
        while (now := time.monotonic()) < begin + duration:
            due = int((now - begin) * rate)
            for _ in range(due - sent):
                if len(tasks) >= IN_FLIGHT:
                    target.done["shed"] += 1
                    continue
                task = asyncio.create_task(run())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            sent = due
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)


async def watch(targets: list[Target], phase: str, seconds: float, started: float,
                every: float) -> None:
    """A row per store every `every` seconds, for `seconds` (taken off the event loop)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > every / 2:
        await asyncio.sleep(min(every, left))
        for target in targets:
            show(await asyncio.to_thread(snapshot, target, phase, started))


# -- servers -----------------------------------------------------------------------


@contextmanager
def start(stack: ExitStack, store: str, fake: FakeSlack, redis_srv: RedisServer | None
          ) -> Iterator[Target]:
    data_dir = WORK / store / "data"
    if data_dir.exists():
        for old in data_dir.iterdir():
            old.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "DATA_DIR": str(data_dir), "PUBLIC_URL": "http://ots.soak", "METRICS_TOKEN": TOKEN,
        "API_USERS": ":".join(USER), "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
        # One client address sends everything; the counters still run, per minute.
        "RATE_LIMIT_CREATE": "1000000", "RATE_LIMIT_REVEAL": "1000000",
        "RATE_LIMIT_WINDOW": "60",
    }
    if redis_srv is not None:
        env["REDIS_URL"] = redis_srv.url
        env["SERVER_KEY"] = SERVER_KEY
    server = ServerProcess.python_m_bot(env, WORK / f"{store}.log", workers=2)
    with server:
        yield Target(store, server, data_dir, redis_srv.url if redis_srv else None)


async def soak(targets: list[Target], args: argparse.Namespace) -> None:
    started = time.monotonic()
    show(list(COLUMNS))
    for target in targets:
        show(snapshot(target, "before", started))
    await asyncio.gather(
        watch(targets, "during", args.duration, started, args.every),
        *(load(t, args.rate, args.duration) for t in targets),
    )
    for target in targets:
        show(snapshot(target, "end of load", started))
    await watch(targets, "after", args.settle, started, args.every)
    for target in targets:
        print(f"{target.store}: operations sent {dict(target.done)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of load")
    parser.add_argument("--rate", type=float, default=15, help="operations per second per store")
    parser.add_argument("--settle", type=float, default=180,
                        help="seconds to watch after the load (past 2 x 60 s lifetimes)")
    parser.add_argument("--every", type=float, default=30, help="seconds between snapshots")
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    with ExitStack() as stack:
        fake = stack.enter_context(FakeSlack())
        redis_srv = (stack.enter_context(redis_server(WORK)) if "redis" in stores else None)
        targets = [stack.enter_context(start(stack, store, fake,
                                             redis_srv if store == "redis" else None))
                   for store in stores]
        asyncio.run(soak(targets, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
