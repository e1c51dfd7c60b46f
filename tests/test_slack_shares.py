"""What the app keeps about Slack shares (bot/slack/shares.py), on a real SQLite file
and a real redis-server: sealed, named by keyed hashes, bounded per sender,
settled once, gone with the receipt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from bot.appstore import AppStore
from bot.backends.storage import Storage
from bot.backends.storage.redis_storage import RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.serverkey import ServerKey
from bot.slack.shares import INDEX_LIMIT, Share, ShareBook

pytestmark = pytest.mark.anyio

KEY = ServerKey.generate()
NOW = 1_800_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "redis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the app store is: a SQLite file's path, or a Redis URL."""
    if request.param == "sqlite":
        return str(tmp_path / "app.sqlite3")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def storage(where: str) -> AsyncIterator[Storage]:
    opened: Storage = (
        RedisStorage.from_url(where) if where.startswith("redis") else SQLiteStorage(Path(where))
    )
    yield opened
    await opened.close()


def every_stored_byte(where: str) -> bytes:
    """Every byte the store holds: the SQLite files, or every Redis key and value."""
    if not where.startswith("redis"):
        path = Path(where)
        return b"".join(f.read_bytes() for f in sorted(path.parent.glob(path.name + "*")))
    client = redis.Redis.from_url(where)
    try:
        parts: list[bytes] = []
        for key in client.scan_iter():
            parts.append(key)
            if client.type(key) == b"string":
                parts.append(client.get(key) or b"")
            else:
                parts.extend(client.zrange(key, 0, -1))
        return b"\n".join(parts)
    finally:
        client.close()


def a_share(book: ShareBook, n: int, *, sender: str = "U0ALICE", team: str = "T0TEST",
            ttl: int = 3600) -> Share:
    metadata_key = f"metadatakey{n:020d}abcdefghij"
    return Share(
        id=book.id_for(metadata_key), metadata_key=metadata_key, sender=sender, team=team,
        recipient="U0BOB", label=f"label number {n}", created=NOW + n,
        expires_at=NOW + n + ttl, passphrase=False,
    )


async def test_a_senders_list_is_newest_first_bounded_and_their_own(storage: Storage) -> None:
    book = ShareBook(AppStore(storage, KEY))
    for n in range(INDEX_LIMIT + 5):
        await book.add(a_share(book, n))
    await book.add(a_share(book, 999, sender="U0CAROL"))
    mine = await book.of_user("T0TEST", "U0ALICE")
    assert [s.label for s in mine] == [
        f"label number {n}" for n in reversed(range(5, INDEX_LIMIT + 5))
    ]
    assert [s.label for s in await book.of_user("T0TEST", "U0CAROL")] == ["label number 999"]
    assert await book.of_user("T0OTHER", "U0ALICE") == []  # another workspace's Alice


async def test_the_store_names_nobody_and_shows_no_label_or_key(
    storage: Storage, where: str
) -> None:
    book = ShareBook(AppStore(storage, KEY))
    share = a_share(book, 1)
    await book.add(share)
    await book.settle(share.id, "received", "page", NOW + 10)
    stored = every_stored_byte(where)
    assert share.id.encode() in stored  # the record is there...
    for private in (share.label or "", share.metadata_key, "U0ALICE", "U0BOB", "T0TEST"):
        assert private.encode() not in stored, private  # ...but says nothing


async def test_a_record_sealed_under_another_key_is_unreadable(storage: Storage) -> None:
    book = ShareBook(AppStore(storage, KEY))
    share = a_share(book, 2)
    await book.add(share)
    other = ShareBook(AppStore(storage, ServerKey.generate()))
    assert await other.get(share.id) is None
    assert await book.get(share.id) == share


async def test_an_outcome_is_settled_once_among_racers(storage: Storage) -> None:
    book = ShareBook(AppStore(storage, KEY))
    share = a_share(book, 3)
    await book.add(share)
    results = await asyncio.gather(*(
        book.settle(share.id, "received" if i % 2 else "burned", "x", NOW + i)
        for i in range(10)
    ))
    settled = [r for r in results if r is not None]
    assert len(settled) == 1
    assert await book.get(share.id) == settled[0]
    assert await book.count_refused(share.id) is None  # a settled secret refuses nothing


async def test_refusal_notices_are_once_a_minute_per_secret(storage: Storage) -> None:
    book = ShareBook(AppStore(storage, KEY))
    first, second = a_share(book, 4), a_share(book, 5)
    await book.add(first)
    await book.add(second)
    assert [await book.notice_due(first.id) for _ in range(3)] == [True, False, False]
    assert await book.notice_due(second.id) is True
    counted = await book.count_refused(first.id)
    assert counted is not None and counted.refused == 1


async def test_records_go_with_their_receipts(tmp_path: Path) -> None:
    now = [float(NOW)]
    storage = SQLiteStorage(tmp_path / "app.sqlite3", clock=lambda: now[0])
    try:
        book = ShareBook(AppStore(storage, KEY))
        share = replace(a_share(book, 6, ttl=600), created=NOW, expires_at=NOW + 600)
        await book.add(share)
        now[0] = NOW + 2 * 600 + 3600 - 1  # the receipt lives twice the secret (+ margin)
        assert [s.id for s in await book.of_user("T0TEST", "U0ALICE")] == [share.id]
        now[0] += 2
        assert await book.get(share.id) is None
        assert await book.of_user("T0TEST", "U0ALICE") == []
    finally:
        await storage.close()
