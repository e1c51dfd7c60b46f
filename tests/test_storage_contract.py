"""The Storage contract, primitive by primitive, against a real SQLite file and a real Redis.

Every test runs on both implementations: whatever the embedded store relies on must
hold on each. Races use two storage instances on the same file / the same Redis, so
two connections really compete, not just two tasks on one connection.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.backends.storage import Count, Storage, Taken
from bot.backends.storage.redis_storage import RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.errors import BackendUnavailable, OverLimit
from tests.support.redis_topologies import redis_url_for
from tests.support.servers import RedisServer

pytestmark = pytest.mark.anyio

OpenStorage = Callable[[], Storage]
RACERS = 50


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "redis-sentinel"])
def open_storage(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStorage:
    """Opens another storage instance on the same SQLite file or the same Redis (one
    server, a Cluster of 3 masters and 3 replicas, or a Sentinel-managed master)."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"
        return lambda: SQLiteStorage(path)
    url = redis_url_for(request.param, request)
    assert url is not None
    return lambda: RedisStorage.from_url(url)


@pytest.fixture
async def storage(open_storage: OpenStorage) -> AsyncIterator[Storage]:
    store = open_storage()
    yield store
    await store.close()


@pytest.fixture
async def other(open_storage: OpenStorage) -> AsyncIterator[Storage]:
    """A second instance: its own connection to the same data."""
    store = open_storage()
    yield store
    await store.close()


async def racers(first: Storage, second: Storage, n: int = RACERS) -> list[Storage]:
    """`n` callers split between two instances, their connections opened beforehand so the
    racing calls reach the server together, not one by one as each connection is set up
    (that would hide a non-atomic step)."""
    await asyncio.gather(*(s.ping() for s in (first, second) for _ in range(n // 2)))
    return [first if i % 2 else second for i in range(n)]


# -- put / get ---------------------------------------------------------------


async def test_put_stores_and_get_reads(storage: Storage, other: Storage) -> None:
    assert await storage.put("k", b"\x00value\xff", 60) is True
    assert await storage.get("k") == b"\x00value\xff"
    assert await other.get("k") == b"\x00value\xff"
    assert await storage.get("missing") is None


async def test_put_never_overwrites_a_live_value(storage: Storage, other: Storage) -> None:
    assert await storage.put("k", b"first", 60)
    assert await other.put("k", b"second", 60) is False
    assert await storage.get("k") == b"first"


async def test_concurrent_puts_store_exactly_one(storage: Storage, other: Storage) -> None:
    stores = await racers(storage, other)
    won = await asyncio.gather(*(s.put("k", b"v%d" % i, 60) for i, s in enumerate(stores)))
    assert won.count(True) == 1
    assert await storage.get("k") == b"v%d" % won.index(True)


# -- take / delete -------------------------------------------------------------


async def test_take_reads_and_removes(storage: Storage) -> None:
    await storage.put("k", b"once", 60)
    assert await storage.take("k") == b"once"
    assert await storage.take("k") is None
    assert await storage.get("k") is None
    assert await storage.take("missing") is None


async def test_concurrent_takes_give_the_value_once(storage: Storage, other: Storage) -> None:
    await storage.put("k", b"once", 60)
    got = await asyncio.gather(*(s.take("k") for s in await racers(storage, other)))
    assert [g for g in got if g is not None] == [b"once"]


async def test_delete_is_true_only_for_the_remover(storage: Storage, other: Storage) -> None:
    assert await storage.delete("missing") is False
    await storage.put("k", b"v", 60)
    removed = await asyncio.gather(*(s.delete("k") for s in await racers(storage, other)))
    assert removed.count(True) == 1
    assert await storage.get("k") is None
    assert await storage.put("k", b"again", 60) is True


# -- one round trip per request: put_all, take_settle -----------------------------
#
# The records of one share carry one hash tag ({t1}), as the embedded store names
# them: on Redis Cluster the scripts' keys must be in one slot (redis-py refuses a
# script whose keys are not), so these tests also show the names co-locate there.

SID = "5" * 64  # the secret record's hash: its name and the receipt's "sid"
POINTER = bytes(range(32))  # the receipt's hash, the first bytes of the record


def share_names(tag: str = "t1", sid: str = SID) -> tuple[str, str, str]:
    """(secret, receipt, secret with a passphrase) names of one share."""
    return f"s:{{{tag}}}{sid}", f"m:{{{tag}}}{POINTER.hex()}", f"p:{{{tag}}}{sid}"


def receipt_json(state: str = "new", sid: str = SID) -> bytes:
    record = {"created": 1, "sid": sid, "sk": "c2VhbGVk", "state": state, "ttl": 60,
              "updated": 1, "who": "c2VhbGVkIHBlb3BsZQ=="}
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


async def take(storage: Storage, tag: str = "t1", count: Count | None = None) -> Taken:
    secret, _, protected = share_names(tag)
    return await storage.take_settle(
        secret, other=protected, receipt_prefix=f"m:{{{tag}}}", sid=SID, now=1000, count=count
    )


async def test_put_all_stores_every_entry_or_none(storage: Storage, other: Storage) -> None:
    secret, receipt, _ = share_names()
    assert await storage.put_all([(receipt, b"receipt", 120), (secret, b"secret", 60)])
    assert await other.get(receipt) == b"receipt"
    assert await other.get(secret) == b"secret"
    # One key of the next share collides: nothing of it is stored, nothing is changed.
    fresh = share_names(sid="6" * 64)[0]
    assert await other.put_all([(fresh, b"new", 60), (receipt, b"clash", 120)]) is False
    assert await storage.get(fresh) is None
    assert await storage.get(receipt) == b"receipt"


async def test_concurrent_put_alls_store_exactly_one_share(
    storage: Storage, other: Storage
) -> None:
    secret, receipt, _ = share_names()
    stores = await racers(storage, other)
    won = await asyncio.gather(*(
        s.put_all([(receipt, b"r%d" % i, 120), (secret, b"s%d" % i, 60)])
        for i, s in enumerate(stores)
    ))
    assert won.count(True) == 1
    winner = won.index(True)
    # Both records come from the same caller: no interleaving of two creates.
    assert (await storage.get(receipt), await storage.get(secret)) == (
        b"r%d" % winner, b"s%d" % winner)


async def test_put_all_counts_first_and_stores_nothing_over_the_limit(storage: Storage) -> None:
    count = Count("rl:create:client", 60, 2)
    for n in range(2):
        secret, receipt, _ = share_names(tag=f"c{n}")
        assert await storage.put_all([(receipt, b"r", 120), (secret, b"s", 60)], count=count)
    secret, receipt, _ = share_names(tag="c2")
    with pytest.raises(OverLimit):
        await storage.put_all([(receipt, b"r", 120), (secret, b"s", 60)], count=count)
    assert await storage.get(secret) is None
    assert await storage.get(receipt) is None
    # Counted as `incr` counts: the refused call too.
    assert await storage.get("rl:create:client") == b"3"


async def test_take_settle_gives_the_record_once_and_settles_its_receipt_once(
    storage: Storage, other: Storage
) -> None:
    secret, receipt, _ = share_names()
    assert await storage.put_all(
        [(receipt, receipt_json("viewed"), 120), (secret, POINTER + b"ciphertext", 60)]
    )
    got = await asyncio.gather(*(take(s) for s in await racers(storage, other)))
    winners = [t for t in got if t.value is not None]
    assert [t.value for t in winners] == [POINTER + b"ciphertext"]
    assert all(t == Taken(None, None) for t in got if t.value is None)
    assert winners[0].receipt == receipt_json("viewed")
    settled = json.loads(winners[0].settled or b"")
    assert settled == {**json.loads(receipt_json()), "state": "received", "updated": 1000,
                       "received": 1000, "sk": None}
    assert json.loads(await storage.get(receipt) or b"") == settled
    assert await storage.get(secret) is None


async def test_take_settle_reads_the_passphrase_record_when_there_is_nothing_to_take(
    storage: Storage,
) -> None:
    assert await take(storage) == Taken(None, None)
    _, _, protected = share_names()
    assert await storage.put(protected, POINTER + b"sealed", 60)
    assert await take(storage) == Taken(None, POINTER + b"sealed")
    assert await storage.get(protected) == POINTER + b"sealed"  # read, not taken


@pytest.mark.parametrize("stored", [receipt_json("burned"), receipt_json(sid="7" * 64),
                                    b"not json"])
async def test_take_settle_leaves_any_other_receipt_as_it_is(
    storage: Storage, stored: bytes
) -> None:
    """Settled only from new or viewed, and only the receipt that names the record
    taken (an edited pointer cannot settle another share's receipt)."""
    secret, receipt, _ = share_names()
    assert await storage.put_all([(receipt, stored, 120), (secret, POINTER + b"c", 60)])
    taken = await take(storage)
    assert (taken.value, taken.receipt, taken.settled) == (POINTER + b"c", stored, None)
    assert await storage.get(receipt) == stored


async def test_take_settle_without_a_receipt_still_takes(storage: Storage) -> None:
    secret, _, _ = share_names()
    assert await storage.put(secret, POINTER + b"c", 60)
    assert await take(storage) == Taken(POINTER + b"c")


async def test_take_settle_counts_first_and_takes_nothing_over_the_limit(
    storage: Storage,
) -> None:
    count = Count("rl:reveal:client", 60, 1)
    assert await take(storage, count=count) == Taken(None, None)  # counted: 1
    secret, receipt, _ = share_names()
    assert await storage.put_all([(receipt, receipt_json(), 120), (secret, POINTER + b"c", 60)])
    with pytest.raises(OverLimit):
        await take(storage, count=count)
    assert await storage.get(secret) == POINTER + b"c"
    assert await storage.get(receipt) == receipt_json()
    assert await storage.get("rl:reveal:client") == b"2"


# -- replace -------------------------------------------------------------------


async def test_replace_swaps_only_the_expected_value(storage: Storage) -> None:
    await storage.put("k", b"old", 60)
    assert await storage.replace("k", b"not-old", b"new") is False
    assert await storage.get("k") == b"old"
    assert await storage.replace("k", b"old", b"new") is True
    assert await storage.get("k") == b"new"
    assert await storage.replace("missing", b"old", b"new") is False
    assert await storage.get("missing") is None


async def test_concurrent_replaces_from_one_value_let_one_win(
    storage: Storage, other: Storage
) -> None:
    await storage.put("k", b"v0", 60)
    stores = await racers(storage, other)
    won = await asyncio.gather(
        *(s.replace("k", b"v0", b"v%d" % (i + 1)) for i, s in enumerate(stores))
    )
    assert won.count(True) == 1
    assert await storage.get("k") == b"v%d" % (won.index(True) + 1)


# -- incr ----------------------------------------------------------------------


async def test_incr_starts_at_one_and_counts(storage: Storage) -> None:
    assert [await storage.incr("c", 60) for _ in range(3)] == [1, 2, 3]
    assert await storage.incr("other", 60) == 1


async def test_concurrent_incrs_count_every_call(storage: Storage, other: Storage) -> None:
    counts = await asyncio.gather(*(s.incr("c", 60) for s in await racers(storage, other)))
    assert sorted(counts) == list(range(1, RACERS + 1))


async def test_a_counter_reads_as_its_decimal_value(storage: Storage) -> None:
    await storage.incr("c", 60)
    await storage.incr("c", 60)
    assert await storage.get("c") == b"2"


# -- sorted index --------------------------------------------------------------


async def test_index_range_is_highest_score_first(storage: Storage) -> None:
    for member, score in ((b"b", 2.0), (b"a", 1.0), (b"c", 3.0)):
        await storage.index_add("i", member, score, 60)
    assert await storage.index_range("i", 10) == [b"c", b"b", b"a"]
    assert await storage.index_range("i", 2) == [b"c", b"b"]
    assert await storage.index_range("i", 0) == []
    assert await storage.index_range("missing", 10) == []


async def test_index_add_of_a_member_again_moves_it(storage: Storage) -> None:
    await storage.index_add("i", b"a", 1.0, 60)
    await storage.index_add("i", b"b", 2.0, 60)
    await storage.index_add("i", b"a", 3.0, 60)
    assert await storage.index_range("i", 10) == [b"a", b"b"]


async def test_indexes_are_separate(storage: Storage) -> None:
    await storage.index_add("i", b"a", 1.0, 60)
    await storage.index_add("j", b"b", 1.0, 60)
    assert await storage.index_range("i", 10) == [b"a"]
    assert await storage.index_pop_due("j", 5.0, 10) == [b"b"]
    assert await storage.index_range("i", 10) == [b"a"]


async def test_index_remove_is_true_only_for_the_remover(
    storage: Storage, other: Storage
) -> None:
    await storage.index_add("i", b"a", 1.0, 60)
    await storage.index_add("i", b"b", 2.0, 60)
    stores = await racers(storage, other)
    removed = await asyncio.gather(*(s.index_remove("i", b"a") for s in stores))
    assert removed.count(True) == 1
    assert await storage.index_range("i", 10) == [b"b"]
    assert await storage.index_remove("i", b"never") is False


async def test_index_pop_due_takes_due_members_lowest_first(storage: Storage) -> None:
    # Names sort differently from scores, so the order comes from the scores.
    for member, score in ((b"e", 1.0), (b"d", 5.0), (b"c", 2.0), (b"b", 4.0), (b"a", 3.0)):
        await storage.index_add("i", member, score, 60)
    assert await storage.index_pop_due("i", 3.0, 2) == [b"e", b"c"]
    assert await storage.index_pop_due("i", 3.0, 10) == [b"a"]
    assert await storage.index_pop_due("i", 3.0, 10) == []
    assert await storage.index_range("i", 10) == [b"d", b"b"]


async def test_concurrent_pops_hand_out_each_member_once(
    storage: Storage, other: Storage
) -> None:
    members = [b"m%02d" % i for i in range(40)]
    for i, member in enumerate(members):
        await storage.index_add("i", member, float(i), 60)
    popped = await asyncio.gather(
        *(s.index_pop_due("i", 100.0, 3) for s in await racers(storage, other, 20))
    )
    flat = [m for batch in popped for m in batch]
    assert sorted(flat) == members


# -- expiry --------------------------------------------------------------------


async def test_everything_expires(storage: Storage) -> None:
    """One short sleep, every primitive's view of expired data (real Redis TTLs)."""
    await storage.put("gone", b"v", 1)
    await storage.put("kept-ttl", b"old", 1)
    assert await storage.replace("kept-ttl", b"old", b"new")
    await storage.incr("counter", 1)
    await storage.incr("counter", 1)
    await storage.index_add("idx", b"a", 1.0, 1)
    await storage.index_add("refreshed", b"a", 1.0, 1)
    await storage.index_add("refreshed", b"b", 2.0, 60)  # the last add sets the expiry...
    await storage.index_add("shortened", b"a", 1.0, 60)
    await storage.index_add("shortened", b"b", 2.0, 1)  # ...for the whole index
    await storage.put("alive", b"v", 60)
    secret, receipt, _ = share_names("x1")
    await storage.put_all([(receipt, receipt_json(), 1), (secret, POINTER + b"c", 60)])
    assert (await take(storage, "x1")).settled is not None
    briefly, _, _ = share_names("x2")
    await storage.put_all([(briefly, POINTER + b"c", 1)])
    assert await storage.get("gone") == b"v"
    assert await storage.index_range("idx", 10) == [b"a"]

    await asyncio.sleep(1.2)

    assert await storage.get("gone") is None
    assert await storage.take("gone") is None
    assert await storage.delete("gone") is False
    assert await storage.replace("gone", b"v", b"w") is False
    assert await storage.get("kept-ttl") is None  # replace kept the expiry
    assert await storage.put("gone", b"again", 60) is True  # an expired key can be re-put
    assert await storage.get("gone") == b"again"
    assert await storage.incr("counter", 60) == 1
    assert await storage.index_range("idx", 10) == []
    assert await storage.index_remove("idx", b"a") is False
    assert await storage.index_pop_due("idx", 10.0, 10) == []
    assert await storage.index_range("refreshed", 10) == [b"b", b"a"]
    assert await storage.index_range("shortened", 10) == []
    assert await storage.get("alive") == b"v"
    assert await storage.get(receipt) is None  # take_settle kept the receipt's expiry
    assert await take(storage, "x2") == Taken(None, None)
    assert await storage.put_all([(briefly, b"again", 60)]) is True  # expired: re-put
    await storage.index_add("idx", b"new", 2.0, 60)  # a new index: the expired one is gone
    assert await storage.index_range("idx", 10) == [b"new"]


# -- ping and failure ------------------------------------------------------------


async def test_ping_answers(storage: Storage) -> None:
    await storage.ping()


def every_primitive(store: Storage) -> dict[str, Callable[[], object]]:
    return {
        "put": lambda: store.put("k", b"v", 60),
        "get": lambda: store.get("k"),
        "take": lambda: store.take("k"),
        "delete": lambda: store.delete("k"),
        "replace": lambda: store.replace("k", b"v", b"w"),
        "incr": lambda: store.incr("c", 60),
        "index_add": lambda: store.index_add("i", b"m", 1.0, 60),
        "index_range": lambda: store.index_range("i", 10),
        "index_remove": lambda: store.index_remove("i", b"m"),
        "index_pop_due": lambda: store.index_pop_due("i", 1.0, 10),
        "ping": lambda: store.ping(),
    }


async def assert_all_unavailable(store: Storage, *forbidden: str) -> None:
    for name, call in every_primitive(store).items():
        with pytest.raises(BackendUnavailable) as caught:
            await call()  # type: ignore[misc]
        told = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
        for word in forbidden:
            assert word not in told, f"{name} leaked {word!r}"
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_redis_down_raises_backend_unavailable_without_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        connected = RedisStorage.from_url(server.url)
        assert await connected.put("k", b"v", 60)  # a pooled connection that will break
    finally:
        server.stop()
    url = f"redis://:s3cretpw@127.0.0.1:{server.port}/0"
    fresh = RedisStorage.from_url(url)
    try:
        for store in (connected, fresh):
            await assert_all_unavailable(store, url, server.url, "s3cretpw", str(server.port))
    finally:
        await connected.close()
        await fresh.close()


@pytest.mark.parametrize("damage", ["not-a-database", "parent-is-a-file"])
async def test_sqlite_failure_raises_backend_unavailable(tmp_path: Path, damage: str) -> None:
    if damage == "not-a-database":
        path = tmp_path / "private-name.sqlite3"
        path.write_bytes(b"this is not a database file at all" * 200)
    else:
        (tmp_path / "private-dir").write_bytes(b"a file where a directory should be")
        path = tmp_path / "private-dir" / "store.sqlite3"
    store = SQLiteStorage(path)
    try:
        await assert_all_unavailable(store, "private-")
    finally:
        await store.close()


async def test_sqlite_instances_opening_a_new_file_together_all_work(tmp_path: Path) -> None:
    """Workers that start at once on a new file must not fail while it is switched to WAL."""
    for round_ in range(30):
        path = tmp_path / f"new-{round_}.sqlite3"
        stores = [SQLiteStorage(path) for _ in range(3)]
        try:
            counts = await asyncio.gather(*(s.incr("c", 60) for s in stores))
            assert sorted(counts) == [1, 2, 3]
        finally:
            for store in stores:
                await store.close()


async def test_close_twice_is_harmless(open_storage: OpenStorage) -> None:
    store = open_storage()
    await store.put("k", b"v", 60)
    await store.close()
    await store.close()


async def test_sqlite_sweep_deletes_expired_rows_from_the_file(tmp_path: Path) -> None:
    """SQLite ignores expired rows on read at once; `sweep` (run periodically) deletes them."""
    now = [1_000_000.0]
    path = tmp_path / "swept.sqlite3"
    store = SQLiteStorage(path, clock=lambda: now[0])
    await store.put("short", b"short-lived-value", 10)
    await store.put("long", b"long-lived-value", 100)
    await store.index_add("i", b"short-lived-member", 1.0, 10)
    assert await store.sweep() == 0

    now[0] += 11
    assert await store.get("short") is None
    assert await store.sweep() == 2
    assert await store.sweep() == 0
    assert await store.get("long") == b"long-lived-value"
    await store.close()

    stored = files_bytes(path)
    assert b"long-lived-value" in stored
    assert b"short-lived-value" not in stored and b"short-lived-member" not in stored


def files_bytes(path: Path) -> bytes:
    """The database file and its -wal and -shm companions."""
    return b"".join(f.read_bytes() for f in path.parent.glob(path.name + "*"))
