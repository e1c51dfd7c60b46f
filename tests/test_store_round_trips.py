"""The embedded store's hot paths in one store round trip, on every store: what they
keep (one share in one Redis Cluster slot, a reveal that settles its receipt once,
the rate-limit count before the work), and that shares written by the version
before slot tags (31-character keys, `s:<hash>` names, receipts without `sid`)
still reveal, burn and count their passphrase attempts after an upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from bot.backends import crypto
from bot.backends.base import SecretEvent
from bot.backends.embedded import EmbeddedStore
from bot.backends.storage import PENDING_COUNT, Count, PendingCount, Storage
from bot.backends.storage.redis_storage import RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.errors import OverLimit, SecretNotFound, WrongPassphrase
from bot.serverkey import ServerKey
from tests.support.redis_topologies import redis_url_for

pytestmark = pytest.mark.anyio

FAST = 2**4  # scrypt cost: these tests are about storage, not the passphrase's cost
SERVER_KEY = ServerKey.generate()


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "redis-sentinel"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    opened: Storage
    if request.param == "sqlite":
        opened = SQLiteStorage(tmp_path / "store.sqlite3")
    else:
        url = redis_url_for(request.param, request)
        assert url is not None
        opened = RedisStorage.from_url(url)
    yield opened
    await opened.close()


@dataclass
class Events:
    seen: list[SecretEvent] = field(default_factory=list)

    async def __call__(self, event: SecretEvent) -> None:
        self.seen.append(event)


def make_store(storage: Storage) -> EmbeddedStore:
    return EmbeddedStore(
        storage, public_url="http://ots.test", scrypt_n=FAST, server_key=SERVER_KEY
    )


# -- one share, one slot ------------------------------------------------------------


async def test_every_record_of_a_share_is_in_one_cluster_slot(storage: Storage) -> None:
    store = make_store(storage)
    for passphrase in (None, "pw"):
        receipt = await store.share("v", passphrase=passphrase, owner="U1")
        assert receipt.secret_key is not None
        names = [
            crypto.storage_id(prefix, receipt.secret_key) for prefix in ("s:", "p:", "a:")
        ] + [crypto.storage_id("m:", receipt.metadata_key)]
        assert len({key_slot(("ots:" + name).encode()) for name in names}) == 1
        if passphrase:
            with pytest.raises(WrongPassphrase):
                await store.reveal(receipt.secret_key, "wrong")
        assert (await store.reveal(receipt.secret_key, passphrase)).value == "v"
        assert (await store.receipt(receipt.metadata_key)).state == "received"


def test_shares_spread_over_the_slots() -> None:
    """Tags are random: shares do not pile up in a few slots (or on one node)."""
    slots = {
        key_slot(crypto.storage_id("s:", crypto.new_key(crypto.new_tag())).encode())
        for _ in range(2000)
    }
    assert len(slots) > 1800


async def test_a_raced_reveal_delivers_once_and_tells_the_owner_once(storage: Storage) -> None:
    """Many reveals of one secret at once, each with its own connection's worth of
    concurrency: one value, one receipt update, one event."""
    store = make_store(storage)
    events = Events()
    store.subscribe(events)
    receipt = await store.share("once", owner="U1")
    assert receipt.secret_key is not None
    await asyncio.gather(*(storage.ping() for _ in range(20)))

    async def attempt() -> str | None:
        try:
            return (await store.reveal(receipt.secret_key or "")).value
        except SecretNotFound:
            return None

    got = await asyncio.gather(*(attempt() for _ in range(20)))
    assert [g for g in got if g is not None] == ["once"]
    assert [e.kind for e in events.seen] == ["received"]
    assert events.seen[0].ref == crypto.storage_id("m:", receipt.metadata_key)
    after = await store.receipt(receipt.metadata_key)
    assert (after.state, after.secret_key) == ("received", None)


async def test_the_count_comes_first_and_nothing_is_done_over_the_limit(
    storage: Storage,
) -> None:
    """The count the middleware leaves is taken by the create and the reveal themselves:
    over the limit, nothing is stored and nothing is taken."""
    store = make_store(storage)
    receipt = await store.share("kept")
    assert receipt.secret_key is not None
    for kind, key in (("create", "rl:c"), ("reveal", "rl:r")):
        await storage.incr(key, 60)  # one earlier request of this client
        token = PENDING_COUNT.set(PendingCount(kind, Count(key, 60, 1)))
        try:
            with pytest.raises(OverLimit):
                if kind == "create":
                    await store.share("refused")
                else:
                    await store.reveal(receipt.secret_key)
        finally:
            PENDING_COUNT.reset(token)
        assert await storage.get(key) == b"2"
    assert await store.peek(receipt.secret_key) is False  # still there
    assert (await store.receipt(receipt.metadata_key)).state == "new"


# -- shares made before slot tags -----------------------------------------------------


async def old_share(
    store: EmbeddedStore, value: str, *, passphrase: str | None = None, owner: str = "U1",
    ttl: int = 3600,
) -> tuple[str, str]:
    """A share as the version before slot tags wrote it: 31-character keys, records at
    `s:`/`p:`/`m:` + hash, the receipt without `sid`, each record put on its own."""
    now = int(time.time())
    secret_key, metadata_key = crypto.new_key(), crypto.new_key()
    assert len(secret_key) == len(metadata_key) == 31
    metadata_id = "m:" + crypto.digest_of(crypto.storage_id("m:", metadata_key))
    secret_id = ("p:" if passphrase else "s:") + crypto.digest_of(
        crypto.storage_id("s:", secret_key))
    assert metadata_id == crypto.storage_id("m:", metadata_key)  # no tag: the old name
    pointer = bytes.fromhex(metadata_id[2:])
    sealed = crypto.seal(value.encode(), secret_key, secret_id.encode() + pointer, passphrase,
                         scrypt_n=FAST)
    record = {
        "custid": owner, "state": "new", "created": now, "updated": now, "ttl": ttl,
        "passphrase_required": bool(passphrase), "recipient": [],
        "sk": base64.b64encode(
            crypto.seal(secret_key.encode(), metadata_key, metadata_id.encode())).decode(),
    }
    assert await store.storage.put(metadata_id, store._dump(metadata_id, record), 2 * ttl)
    assert await store.storage.put(secret_id, pointer + sealed, ttl)
    assert "sid" not in json.loads(await store.storage.get(metadata_id) or b"")
    return secret_key, metadata_key


async def test_an_old_share_reveals_once_and_its_receipt_is_settled(storage: Storage) -> None:
    store = make_store(storage)
    events = Events()
    store.subscribe(events)
    secret_key, metadata_key = await old_share(store, "from before")
    assert await store.peek(secret_key) is False
    assert (await store.receipt(metadata_key)).secret_key == secret_key
    assert (await store.reveal(secret_key)).value == "from before"
    with pytest.raises(SecretNotFound):
        await store.reveal(secret_key)
    assert (await store.receipt(metadata_key)).state == "received"
    assert [(e.kind, e.ref) for e in events.seen] == [
        ("received", "m:" + crypto.digest_of(crypto.storage_id("m:", metadata_key)))]


async def test_an_old_passphrase_share_counts_attempts_and_reveals(storage: Storage) -> None:
    store = make_store(storage)
    secret_key, metadata_key = await old_share(store, "guarded", passphrase="pw")
    assert await store.peek(secret_key) is True
    with pytest.raises(WrongPassphrase) as wrong:
        await store.reveal(secret_key, "nope")
    assert wrong.value.tries_left == store.passphrase_attempts - 1
    assert (await store.reveal(secret_key, "pw")).value == "guarded"
    assert (await store.receipt(metadata_key)).state == "received"


async def test_an_old_share_burns(storage: Storage) -> None:
    store = make_store(storage)
    secret_key, metadata_key = await old_share(store, "burn me")
    burned = await store.burn(metadata_key, by_owner=True)
    assert burned.state == "burned"
    assert await store.peek(secret_key) is None


async def test_an_old_reveal_counts_before_it_takes(storage: Storage) -> None:
    store = make_store(storage)
    secret_key, _ = await old_share(store, "kept")
    await storage.incr("rl:old", 60)
    token = PENDING_COUNT.set(PendingCount("reveal", Count("rl:old", 60, 1)))
    try:
        with pytest.raises(OverLimit):
            await store.reveal(secret_key)
    finally:
        PENDING_COUNT.reset(token)
    assert await store.peek(secret_key) is False


def test_old_names_are_unchanged() -> None:
    """A key without a tag is named as before: sha256 of the key after the prefix."""
    old = "k" * 31
    assert crypto.storage_id("s:", old) == "s:" + hashlib.sha256(old.encode()).hexdigest()
    assert crypto.slot_tag(old) == ""
    tagged = crypto.new_key("ab12")
    assert crypto.storage_id("m:", tagged).startswith("m:{ab12}")


async def test_redis_names_on_the_server(request: pytest.FixtureRequest) -> None:
    """What a Redis holds for one share: the prefix, then the tag in braces."""
    url = redis_url_for("redis", request)
    assert url is not None
    storage = RedisStorage.from_url(url)
    try:
        store = make_store(storage)
        receipt = await store.share("named")
        tag = receipt.metadata_key[-4:]
        client = redis.Redis.from_url(url)
        try:
            names = {n.decode() for n in client.scan_iter(match=f"ots:*{{{tag}}}*")}
        finally:
            client.close()
        assert {n[:12] for n in names} == {f"ots:s:{{{tag}}}", f"ots:m:{{{tag}}}"}
    finally:
        await storage.close()
