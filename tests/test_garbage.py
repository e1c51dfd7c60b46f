"""What the store leaves behind: indexes stay bounded, counters expire with what they
count, expiry notices keep up, and SQLite gives freed space back to the file system.

On a real SQLite file and a real redis-server.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from bot.backends import crypto, embedded
from bot.backends.embedded import EmbeddedStore, SecretEvent
from bot.backends.storage import Storage
from bot.backends.storage.redis_storage import RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.errors import SecretNotFound
from bot.serverkey import ServerKey
from bot.web.limits import RateLimiter

pytestmark = pytest.mark.anyio

FAST = 2**8  # scrypt cost: what is tested here is not the passphrase check


@pytest.fixture(params=["sqlite", "redis"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    opened: Storage
    if request.param == "sqlite":
        opened = SQLiteStorage(tmp_path / "store.sqlite3")
    else:
        opened = RedisStorage.from_url(request.getfixturevalue("redis_url"))
    yield opened
    await opened.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def ttl_of(storage: Storage, key: str, request: pytest.FixtureRequest) -> float:
    """Seconds until `key` expires, read from the store itself (not through the app)."""
    if isinstance(storage, RedisStorage):
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        try:
            return float(client.pttl("ots:" + key)) / 1000
        finally:
            client.close()
    assert isinstance(storage, SQLiteStorage)
    with sqlite3.connect(storage.path) as conn:
        row = conn.execute("SELECT expires FROM kv WHERE key = ?", (key,)).fetchone()
    assert row is not None, "no such key"
    return float(row[0]) - time.time()


# -- the storage primitives --------------------------------------------------------


async def test_index_add_with_keep_trims_to_the_highest_scores(storage: Storage) -> None:
    for score in range(10):
        await storage.index_add("i", b"m%d" % score, float(score), 60, keep=4)
    assert await storage.index_range("i", 100) == [b"m9", b"m8", b"m7", b"m6"]
    # Without keep nothing is trimmed.
    await storage.index_add("i", b"low", -1.0, 60)
    assert len(await storage.index_range("i", 100)) == 5


async def test_index_count_counts_due_members(storage: Storage) -> None:
    for score in (1.0, 2.0, 3.0, 10.0):
        await storage.index_add("i", b"%d" % score, score, 60)
    assert await storage.index_count("i", 3.0) == 3
    assert await storage.index_count("i", 0.5) == 0
    assert await storage.index_count("missing", 100.0) == 0


# -- expiry notices -----------------------------------------------------------------


async def expired_owned_secrets(storage: Storage, count: int) -> tuple[EmbeddedStore, list[str]]:
    clock = Clock()
    store = EmbeddedStore(storage, public_url="http://ots.test", clock=clock, scrypt_n=FAST)
    heard: list[str] = []

    async def listener(event: SecretEvent) -> None:
        heard.append(event.kind)

    store.subscribe(listener)
    for _ in range(count):
        await store.share("v", ttl=60, owner="U1")
    clock.now += 62
    return store, heard


async def test_one_sweep_drains_many_batches(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old sweep took 100 entries per 30 s round whatever the backlog."""
    monkeypatch.setattr(embedded, "EXPIRY_BATCH", 7)
    store, heard = await expired_owned_secrets(storage, 7 * 4 + 3)
    assert await store.expiry_backlog() == 31
    assert await store.sweep() is False  # nothing left behind
    assert heard == ["expired"] * 31
    assert await store.expiry_backlog() == 0


async def test_a_sweep_out_of_time_says_so_and_the_next_goes_on(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "EXPIRY_BATCH", 5)
    monkeypatch.setattr(embedded, "SWEEP_BUDGET", 0.0)  # one batch per round
    store, heard = await expired_owned_secrets(storage, 12)
    assert await store.sweep() is True
    assert len(heard) == 5 and await store.expiry_backlog() == 7
    assert await store.sweep() is True
    assert await store.sweep() is False
    assert len(heard) == 12 and await store.expiry_backlog() == 0


# -- bounded indexes and counters ---------------------------------------------------


async def test_an_api_users_recent_index_is_trimmed_on_add(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "RECENT_LIMIT", 5)
    clock = Clock()
    store = EmbeddedStore(
        storage, public_url="http://ots.test", clock=clock, scrypt_n=FAST,
        api_tokens={"alice@example.com": "alice-token"},
    )
    made = []
    for _ in range(12):
        clock.now += 1
        made.append((await store.share("v", owner="alice@example.com")).metadata_key)
    index = embedded.RecentIndex("alice@example.com", store.server_key)
    assert len(await storage.index_range(index.name, 1000)) == 5
    listed = [r.metadata_key for r in await store.recent("alice@example.com")]
    assert listed == made[::-1][:5]


async def test_attempt_counter_lives_as_long_as_its_secret(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    store = EmbeddedStore(storage, public_url="http://ots.test", scrypt_n=FAST)
    receipt = await store.share("v", ttl=120, passphrase="right")
    assert receipt.secret_key is not None
    with pytest.raises(SecretNotFound):
        await store.reveal(receipt.secret_key, "wrong")
    counter = crypto.storage_id("a:", receipt.secret_key)
    assert await storage.get(counter) == b"1"
    # Not MAX_TTL (30 days): the secret's own 120 s, and a second for rounding.
    assert 100 < ttl_of(storage, counter, request) <= 122


async def test_rate_limit_counters_expire_with_their_window(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    server_key = ServerKey.generate()
    limiter = RateLimiter(
        storage, {"reveal": 10}, 90, key=server_key, clock=lambda: 1_000_000.0
    )
    await limiter.hit("reveal", "203.0.113.7")
    key = server_key.hash_id("rl:reveal:", f"203.0.113.7|{1_000_000 // 90}")
    assert await storage.get(key) == b"1"
    assert 80 < ttl_of(storage, key, request) <= 90


# -- SQLite gives space back ----------------------------------------------------------


def auto_vacuum(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))


async def test_a_new_sqlite_file_is_incremental_and_shrinks_after_a_sweep(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "store.sqlite3"
    storage = SQLiteStorage(path, clock=clock)
    for i in range(3000):
        await storage.put(f"k{i}", b"x" * 1000, 60)
    assert auto_vacuum(path) == 2  # INCREMENTAL
    full = path.stat().st_size
    assert full > 3_000_000

    clock.now += 61
    assert await storage.sweep() == 3000
    await storage.close()  # the last connection checkpoints the WAL into the file
    assert path.stat().st_size < full / 4


async def test_an_old_sqlite_file_is_converted_once_and_keeps_its_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.sqlite3"
    first = SQLiteStorage(path)
    await first.put("kept", b"value", 600)
    await first.close()
    with sqlite3.connect(path, isolation_level=None) as conn:  # as an older version left it
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
    assert auto_vacuum(path) == 0

    with caplog.at_level("INFO", logger="bot.backends.storage.sqlite_storage"):
        again = SQLiteStorage(path)
        assert await again.get("kept") == b"value"
        await again.close()
    assert auto_vacuum(path) == 2
    assert "converting store.sqlite3" in caplog.text

    caplog.clear()
    with caplog.at_level("INFO", logger="bot.backends.storage.sqlite_storage"):
        third = SQLiteStorage(path)
        assert await third.get("kept") == b"value"
        await third.close()
    assert "converting" not in caplog.text
