"""The embedded store over real storage: one-time reveal, passphrases, receipts, expiry,
and what a copy of the store would give away (nothing).

Every test that touches storage runs on a real SQLite file and on a real redis-server.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest
import redis

from bot.backends import crypto
from bot.backends.base import Revealed
from bot.backends.embedded import (
    GENERATE_MAX_LENGTH,
    EmbeddedStore,
    SecretEvent,
    generate_password,
)
from bot.backends.storage import Storage
from bot.backends.storage.redis_storage import RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.errors import BackendUnavailable, InvalidRequest, SecretNotFound, WrongPassphrase
from bot.serverkey import ServerKey
from tests.support.servers import RedisServer

pytestmark = pytest.mark.anyio

FAST = 2**10  # scrypt cost where the cost is not what is tested (production: crypto.SCRYPT_N)
RACERS = 50


@dataclass
class Backing:
    """Where a store keeps its bytes: opens storage on it, and reads back every stored byte."""

    kind: str
    open: Callable[[], Storage]
    stored_bytes: Callable[[], bytes]


@pytest.fixture(params=["sqlite", "redis"])
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> Backing:
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"
        return Backing("sqlite", lambda: SQLiteStorage(path), lambda: sqlite_bytes(path))
    url = request.getfixturevalue("redis_url")
    return Backing("redis", lambda: RedisStorage.from_url(url), lambda: redis_bytes(url))


def sqlite_bytes(path: Path) -> bytes:
    """The database file and its -wal and -shm companions, checkpointed or not."""
    files = sorted(path.parent.glob(path.name + "*"))
    assert path in files
    return b"".join(f.read_bytes() for f in files)


def redis_bytes(url: str) -> bytes:
    """Every key's name, raw value and DUMP (DUMP alone may be LZF-compressed)."""
    client = redis.Redis.from_url(url)
    try:
        parts: list[bytes] = []
        for key in client.scan_iter(count=1000):
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"zset":
                parts.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
            else:
                raise AssertionError(f"unexpected Redis type {kind!r}")
            parts.append(client.dump(key) or b"")
        return b"\n".join(parts)
    finally:
        client.close()


@dataclass
class FakeClock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class Events:
    seen: list[SecretEvent] = field(default_factory=list)

    async def __call__(self, event: SecretEvent) -> None:
        self.seen.append(event)


@pytest.fixture
async def storage(backing: Backing) -> AsyncIterator[Storage]:
    opened = backing.open()
    yield opened
    await opened.close()


@pytest.fixture
async def other_storage(backing: Backing) -> AsyncIterator[Storage]:
    opened = backing.open()
    yield opened
    await opened.close()


# Stores that share data share the server key, as replicas share SERVER_KEY.
SERVER_KEY = ServerKey.generate()


def make_store(storage: Storage, **options: object) -> EmbeddedStore:
    options.setdefault("scrypt_n", FAST)
    options.setdefault("server_key", SERVER_KEY)
    return EmbeddedStore(storage, public_url="http://ots.test", **options)  # type: ignore[arg-type]


@pytest.fixture
def store(storage: Storage) -> EmbeddedStore:
    return make_store(storage)


def unique(label: str) -> str:
    return f"{label}-{secrets.token_hex(8)}"


# -- one-time reveal -------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "pw"])
async def test_a_secret_reveals_once(store: EmbeddedStore, passphrase: str | None) -> None:
    value = unique("value") + " ünïcode \U0001f511"
    receipt = await store.share(value, passphrase=passphrase)
    # 31 random base36 characters, then the share's slot tag (4), as in the receipt key.
    assert receipt.secret_key and re.fullmatch(r"[0-9a-z]{35}", receipt.secret_key)
    assert receipt.secret_key[-4:] == receipt.metadata_key[-4:]
    assert receipt.secret_key[:31] != receipt.metadata_key[:31]
    assert store.secret_url(receipt.secret_key) == f"http://ots.test/secret/{receipt.secret_key}"
    assert await store.peek(receipt.secret_key) is bool(passphrase)
    assert await store.peek(receipt.secret_key) is bool(passphrase)  # peeking never consumes

    revealed = await store.reveal(receipt.secret_key, passphrase)
    assert revealed.value == value
    assert await store.peek(receipt.secret_key) is None
    with pytest.raises(SecretNotFound):
        await store.reveal(receipt.secret_key, passphrase)


@pytest.mark.parametrize("key", ["", "short", "x" * 200, "a/b" * 12, "é" * 31,
                                 # a fixed id: the random key would name a different
                                 # test in each pytest-xdist worker's collection
                                 pytest.param(crypto.new_key(), id="well-formed")])
async def test_unknown_or_malformed_keys_are_not_found(store: EmbeddedStore, key: str) -> None:
    assert await store.peek(key) is None
    with pytest.raises(SecretNotFound):
        await store.reveal(key)
    with pytest.raises(SecretNotFound):
        await store.receipt(key)
    with pytest.raises(SecretNotFound):
        await store.burn(key)


async def race(
    stores: list[EmbeddedStore], secret_key: str, passphrase: str | None
) -> list[Revealed | BaseException]:
    # Connections are opened first, so the reveals reach the server together instead of
    # one by one as each new connection is set up (that would hide a non-atomic step).
    each = RACERS // len(stores)
    await asyncio.gather(*(s.storage.ping() for s in stores for _ in range(each)))
    calls = (stores[i % len(stores)].reveal(secret_key, passphrase) for i in range(RACERS))
    return await asyncio.gather(*calls, return_exceptions=True)


@pytest.mark.parametrize("passphrase", [None, "the right one"])
@pytest.mark.parametrize("connections", [1, 2])
async def test_fifty_concurrent_reveals_give_exactly_one_value(
    storage: Storage, other_storage: Storage, passphrase: str | None, connections: int
) -> None:
    """On one store, and on two stores whose own connections race on the same data."""
    stores = [make_store(storage), make_store(other_storage)][:connections]
    events = Events()
    stores[0].subscribe(events)
    value = unique("raced")
    receipt = await stores[0].share(value, passphrase=passphrase, owner="U1")
    assert receipt.secret_key is not None

    results = await race(stores, receipt.secret_key, passphrase)

    winners = [r for r in results if isinstance(r, Revealed)]
    losers = [r for r in results if not isinstance(r, Revealed)]
    assert [w.value for w in winners] == [value]
    assert len(losers) == RACERS - 1
    assert all(type(r) is SecretNotFound for r in losers), {type(r) for r in losers}
    final = await stores[-1].receipt(receipt.metadata_key)
    assert final.state == "received" and final.secret_key is None
    if connections == 1:  # the listener lives on the first store
        assert [e.kind for e in events.seen] == ["received"]


# -- expiry ----------------------------------------------------------------------


async def test_an_expired_secret_is_not_revealable(storage: Storage) -> None:
    """Real expiry by the storage itself (Redis TTL, SQLite expiry column)."""
    store = make_store(storage, min_ttl=1)
    plain = await store.share(unique("plain"), ttl=1)
    protected = await store.share(unique("protected"), ttl=1, passphrase="pw")
    lasting = await store.share(unique("lasting"), ttl=60)
    assert plain.secret_key and protected.secret_key and lasting.secret_key
    assert plain.ttl == 1 and await store.peek(plain.secret_key) is False

    await asyncio.sleep(1.2)

    for receipt, passphrase in ((plain, None), (protected, "pw")):
        assert receipt.secret_key is not None
        assert await store.peek(receipt.secret_key) is None
        with pytest.raises(SecretNotFound):
            await store.reveal(receipt.secret_key, passphrase)
    assert await store.peek(lasting.secret_key) is False


async def test_the_store_keeps_secrets_at_least_a_minute(store: EmbeddedStore) -> None:
    receipt = await store.share("x", ttl=1)
    assert receipt.ttl == 60
    assert (await store.share("x", ttl=10**9)).ttl == store.max_ttl
    assert (await store.share("x")).ttl == store.default_ttl


async def test_a_receipt_past_the_secrets_expiry_reads_expired(storage: Storage) -> None:
    clock = FakeClock()
    store = make_store(storage, clock=clock)
    events = Events()
    store.subscribe(events)
    receipt = await store.share(unique("value"), ttl=60, owner="U1")
    assert receipt.secret_ttl == 60 and receipt.metadata_ttl == 120

    clock.now += 61
    expired = await store.receipt(receipt.metadata_key)
    assert expired.state == "expired"
    assert expired.secret_key is None and expired.secret_ttl is None
    assert 0 < expired.metadata_ttl <= 60
    with pytest.raises(SecretNotFound):
        await store.burn(receipt.metadata_key)

    await store.sweep()  # the owner hears about it once
    await store.sweep()
    assert [(e.kind, e.via, e.custid) for e in events.seen] == [("expired", "expiry", "U1")]


async def test_a_receipt_never_says_expired_while_the_secret_can_be_revealed(
    tmp_path: Path,
) -> None:
    """`created` is whole seconds; storage counts the lifetime from the exact moment."""
    clock = FakeClock(1_000_000.9)
    storage = SQLiteStorage(tmp_path / "store.sqlite3", clock=clock)
    store = make_store(storage, clock=clock)
    events = Events()
    store.subscribe(events)
    late = await store.share(unique("late"), ttl=60, owner="U1")
    gone = await store.share(unique("gone"), ttl=60, owner="U1")
    assert late.created == 1_000_000

    clock.now = 1_000_060.5  # past created + ttl, but storage still holds both secrets
    await store.sweep()
    assert (await store.receipt(late.metadata_key)).state == "new"  # the first read
    assert events.seen == []
    await store.reveal(late.secret_key or "")
    assert (await store.receipt(late.metadata_key)).state == "received"

    clock.now = 1_000_061.0  # storage dropped the secret: now the receipt says so
    assert await store.peek(gone.secret_key or "") is None
    await store.sweep()
    assert (await store.receipt(gone.metadata_key)).state == "expired"
    assert [e.kind for e in events.seen] == ["received", "expired"]
    await store.close()


# -- passphrases -----------------------------------------------------------------


async def test_wrong_or_missing_passphrase_keeps_the_secret(storage: Storage) -> None:
    """At the production scrypt cost."""
    store = make_store(storage, scrypt_n=crypto.SCRYPT_N)
    value = unique("value")
    receipt = await store.share(value, passphrase="correct horse")
    assert receipt.secret_key is not None and receipt.passphrase_required
    for wrong in ("wrong", None, ""):
        with pytest.raises(SecretNotFound):
            await store.reveal(receipt.secret_key, wrong)
        assert await store.peek(receipt.secret_key) is True
    assert (await store.reveal(receipt.secret_key, "correct horse")).value == value
    assert (await store.receipt(receipt.metadata_key)).state == "received"


async def test_too_many_wrong_passphrases_burn_the_secret(storage: Storage) -> None:
    store = make_store(storage, passphrase_attempts=3)
    events = Events()
    store.subscribe(events)
    value, passphrase = unique("value"), unique("passphrase")
    receipt = await store.share(value, passphrase=passphrase, owner="U1", recipient=("U2",))
    assert receipt.secret_key is not None
    for attempt in range(3):
        assert await store.peek(receipt.secret_key) is True, attempt
        with pytest.raises(WrongPassphrase) as wrong:
            await store.reveal(receipt.secret_key, f"guess {attempt}")
        # Counted down from the store's own counter; 0 means this try destroyed it.
        assert wrong.value.tries_left == 2 - attempt
        assert wrong.value.destroyed is (attempt == 2)
        assert wrong.value.message == SecretNotFound().message  # says no more than that

    assert await store.peek(receipt.secret_key) is None
    with pytest.raises(SecretNotFound) as gone:
        await store.reveal(receipt.secret_key, passphrase)
    assert not isinstance(gone.value, WrongPassphrase)  # gone, not a wrong passphrase
    burned = await store.receipt(receipt.metadata_key)
    assert burned.state == "burned" and burned.secret_key is None

    # The owner hears of each refused guess but the last, which burned it.
    refused = [e for e in events.seen if e.kind == "refused"]
    assert [(e.via, e.custid, e.recipient) for e in refused] == [("api", "U1", ("U2",))] * 2
    (event,) = [e for e in events.seen if e.kind != "refused"]
    assert (event.kind, event.via, event.custid, event.recipient) == (
        "burned", "attempts", "U1", ("U2",),
    )
    assert {e.ref for e in events.seen} == {crypto.storage_id("m:", receipt.metadata_key)}
    for seen in events.seen:
        told = repr(seen) + "".join(str(getattr(seen, f.name)) for f in fields(seen))
        for private in (value, passphrase, receipt.secret_key, receipt.metadata_key):
            assert private not in told


class CountingStore(EmbeddedStore):
    """Counts passphrase evaluations (each one a scrypt run)."""

    evaluations = 0

    def _open(self, raw: bytes, key: str, secret_id: str, passphrase: str | None) -> str:
        if passphrase is not None:
            type(self).evaluations += 1
        return super()._open(raw, key, secret_id, passphrase)


async def test_a_burst_of_guesses_gets_no_more_evaluations_than_the_limit(
    storage: Storage, other_storage: Storage
) -> None:
    """Forty wrong guesses and the right one, sent at once over two connections: at most
    PASSPHRASE_ATTEMPTS of them reach scrypt, and the right one, sent seventh, can only
    win if it was among them."""
    CountingStore.evaluations = 0
    stores = [
        CountingStore(s, public_url="http://ots.test", scrypt_n=FAST, server_key=SERVER_KEY,
                      passphrase_attempts=5)
        for s in (storage, other_storage)
    ]
    value = unique("value")
    receipt = await stores[0].share(value, passphrase="right", owner="U1")
    key = receipt.secret_key or ""
    calls = [stores[i % 2].reveal(key, f"wrong {i}") for i in range(40)]
    calls.insert(6, stores[1].reveal(key, "right"))
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(r, Revealed | SecretNotFound) for r in results)
    assert CountingStore.evaluations <= 5
    assert await stores[0].peek(key) is None  # received or burned: gone either way
    state = (await stores[0].receipt(receipt.metadata_key)).state
    revealed = [r.value for r in results if isinstance(r, Revealed)]
    assert (state, revealed) in (("received", [value]), ("burned", []))


async def test_a_right_passphrase_after_the_limit_is_spent_is_refused(storage: Storage) -> None:
    store = make_store(storage, passphrase_attempts=3)
    receipt = await store.share(unique("value"), passphrase="right")
    for guess in range(3):
        with pytest.raises(SecretNotFound):
            await store.reveal(receipt.secret_key or "", f"guess {guess}")
    with pytest.raises(SecretNotFound):
        await store.reveal(receipt.secret_key or "", "right")
    assert (await store.receipt(receipt.metadata_key)).state == "burned"


async def test_a_ciphertext_moved_to_another_receipt_does_not_open(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipt pointer stored with a ciphertext is bound into it: an edited copy of
    the store cannot make one secret's reveal mark another secret's receipt, even one
    in the same slot (the reveal's script settles only the receipt naming its record)."""
    store = make_store(storage)
    monkeypatch.setattr(crypto, "new_tag", lambda: "same")
    victim = await store.share(unique("victim"), owner="U1")
    other = await store.share(unique("other"), owner="U1")
    secret_id = crypto.storage_id("s:", victim.secret_key or "")
    raw = await storage.take(secret_id)
    assert raw is not None
    other_pointer = bytes.fromhex(crypto.digest_of(crypto.storage_id("m:", other.metadata_key)))
    await storage.put(secret_id, other_pointer + raw[32:], 60)
    with pytest.raises(BackendUnavailable):
        await store.reveal(victim.secret_key or "")
    assert (await store.receipt(other.metadata_key)).state in ("new", "viewed")


async def test_guesses_racing_the_right_passphrase_end_one_way_only(
    storage: Storage, other_storage: Storage
) -> None:
    """Wrong guesses from two connections race the owner's reveal: the secret is either
    received or burned, once, and the owner hears exactly one of the two."""
    stores = [make_store(s, passphrase_attempts=3) for s in (storage, other_storage)]
    events = Events()
    for store in stores:
        store.subscribe(events)
    value = unique("value")
    receipt = await stores[0].share(value, passphrase="right", owner="U1")
    key = receipt.secret_key or ""
    await asyncio.gather(*(s.storage.ping() for s in stores for _ in range(10)))

    calls = [stores[i % 2].reveal(key, f"wrong {i}") for i in range(20)]
    calls.insert(10, stores[0].reveal(key, "right"))
    results = await asyncio.gather(*calls, return_exceptions=True)

    revealed = [r for r in results if isinstance(r, Revealed)]
    assert all(isinstance(r, Revealed | SecretNotFound) for r in results)
    state = (await stores[1].receipt(receipt.metadata_key)).state
    assert [e.kind for e in events.seen if e.kind != "refused"] == [state]
    if state == "received":
        assert [r.value for r in revealed] == [value]
    else:
        assert state == "burned" and revealed == []


async def test_burn_racing_reveals_ends_one_way_only(
    storage: Storage, other_storage: Storage
) -> None:
    stores = [make_store(storage), make_store(other_storage)]
    receipt = await stores[0].share(unique("value"))
    key = receipt.secret_key or ""
    await asyncio.gather(*(s.storage.ping() for s in stores for _ in range(10)))

    calls: list[Awaitable[object]] = [stores[i % 2].reveal(key) for i in range(20)]
    calls.insert(10, stores[1].burn(receipt.metadata_key))
    results = await asyncio.gather(*calls, return_exceptions=True)

    won = [r for r in results if not isinstance(r, SecretNotFound)]
    assert len(won) == 1, results
    state = (await stores[0].receipt(receipt.metadata_key)).state
    expected = "received" if isinstance(won[0], Revealed) else "burned"
    assert state == expected


async def test_a_failing_listener_does_not_undo_the_reveal(store: EmbeddedStore) -> None:
    async def broken(event: SecretEvent) -> None:
        raise RuntimeError("the notifier is down")

    store.subscribe(broken)
    receipt = await store.share("value", owner="U1")
    assert receipt.secret_key is not None
    assert (await store.reveal(receipt.secret_key)).value == "value"
    assert (await store.receipt(receipt.metadata_key)).state == "received"


# -- receipts ----------------------------------------------------------------------


async def test_receipt_goes_new_viewed_received(storage: Storage) -> None:
    clock = FakeClock()
    store = make_store(storage, clock=clock)
    receipt = await store.share(unique("value"), ttl=3600, owner="U1", recipient=("U2",))
    assert receipt.state == "new" and receipt.secret_key is not None
    assert (receipt.custid, receipt.recipient, receipt.passphrase_required) == (
        "U1", ("U2",), False,
    )
    assert receipt.expires_at == receipt.created + 3600

    clock.now += 10
    # v1: the first read still answers "new" (and only then marks it viewed).
    first = await store.receipt(receipt.metadata_key)
    assert first.state == "new" and first.updated == first.created
    assert first.secret_key == receipt.secret_key  # the owner still sees the link
    viewed = await store.receipt(receipt.metadata_key)
    assert viewed.state == "viewed"
    assert viewed.secret_key == receipt.secret_key
    assert viewed.updated == viewed.created + 10
    assert (await store.receipt(receipt.metadata_key)).state == "viewed"

    clock.now += 10
    await store.reveal(receipt.secret_key)
    received = await store.receipt(receipt.metadata_key)
    assert received.state == "received"
    assert received.secret_key is None and received.secret_ttl is None
    assert received.received == receipt.created + 20

    with pytest.raises(SecretNotFound):
        await store.burn(receipt.metadata_key)


@pytest.mark.parametrize("passphrase", [None, "pw"])
async def test_burn_goes_new_burned(store: EmbeddedStore, passphrase: str | None) -> None:
    events = Events()
    store.subscribe(events)
    receipt = await store.share(unique("value"), passphrase=passphrase, owner="U1")
    assert receipt.secret_key is not None

    burned = await store.burn(receipt.metadata_key, passphrase)
    assert burned.state == "burned" and burned.secret_key is None
    assert await store.peek(receipt.secret_key) is None
    with pytest.raises(SecretNotFound):
        await store.reveal(receipt.secret_key, passphrase)
    with pytest.raises(SecretNotFound):
        await store.burn(receipt.metadata_key)
    assert (await store.receipt(receipt.metadata_key)).state == "burned"
    assert [(e.kind, e.via) for e in events.seen] == [("burned", "burn")]


async def test_burning_a_protected_secret_needs_its_passphrase(store: EmbeddedStore) -> None:
    """As on v1 servers: a receipt link alone must not destroy it, and burn tries
    count towards the passphrase limit (no guessing oracle)."""
    store.passphrase_attempts = 3
    events = Events()
    store.subscribe(events)
    receipt = await store.share(unique("value"), passphrase="right", owner="U1")
    for wrong in (None, "wrong"):
        with pytest.raises(SecretNotFound):
            await store.burn(receipt.metadata_key, wrong)
        assert await store.peek(receipt.secret_key or "") is True  # kept
    # The third wrong try, through reveal this time, uses up the attempts.
    with pytest.raises(SecretNotFound):
        await store.reveal(receipt.secret_key or "", "also wrong")
    assert await store.peek(receipt.secret_key or "") is None
    # The owner hears of each refused try (two burns, through the API), then the burn.
    assert [(e.kind, e.via) for e in events.seen] == [
        ("refused", "api"), ("refused", "api"), ("burned", "attempts"),
    ]

    other = await store.share(unique("value"), passphrase="right")
    assert (await store.burn(other.metadata_key, "right")).state == "burned"
    owned = await store.share(unique("value"), passphrase="right")
    # The owner, known to the caller (Slack's Burn now), needs no passphrase.
    assert (await store.burn(owned.metadata_key, by_owner=True)).state == "burned"


async def test_generate_starts_viewed(store: EmbeddedStore) -> None:
    made = await store.generate()
    assert made.state == "viewed"
    assert (await store.receipt(made.metadata_key)).state == "viewed"


async def test_a_viewed_receipt_can_still_burn(store: EmbeddedStore) -> None:
    receipt = await store.share("value")
    await store.receipt(receipt.metadata_key)
    assert (await store.burn(receipt.metadata_key)).state == "burned"


# -- what a copy of the store shows ----------------------------------------------------


async def test_no_stored_byte_holds_a_secret_key_or_passphrase(
    backing: Backing, storage: Storage
) -> None:
    store = make_store(storage, passphrase_attempts=5)
    store.subscribe(Events())  # so the expiry index is written too
    plain_value, protected_value, passphrase = (
        unique("plain-value"), unique("protected-value"), unique("passphrase"),
    )
    # Owners and recipients are sealed under the server key: none is in the store.
    owner, recipient = unique("slack:T0OWNER:U0OWNER"), unique("slack:U0RECIPIENT")
    plain = await store.share(plain_value, owner=owner, recipient=(recipient,))
    protected = await store.share(protected_value, passphrase=passphrase, owner=owner)
    generated = await store.generate(owner=owner, length=40)
    revealed = await store.share(unique("revealed-value"))
    assert protected.secret_key and revealed.secret_key and generated.value
    await store.receipt(plain.metadata_key)
    with pytest.raises(SecretNotFound):
        await store.reveal(protected.secret_key, "a wrong guess")
    await store.reveal(revealed.secret_key)
    canary = unique("canary")
    await storage.put("canary", canary.encode(), 60)

    private = [plain_value, protected_value, passphrase, generated.value, "a wrong guess",
               owner, recipient]
    for receipt in (plain, protected, generated, revealed):
        private += [receipt.secret_key or "", receipt.metadata_key]

    def assert_nothing_private() -> None:
        stored = backing.stored_bytes()
        # The scan sees what was stored: the canary and the hashed storage ids.
        assert canary.encode() in stored
        assert crypto.storage_id("s:", plain.secret_key or "")[2:].encode() in stored
        for text in private:
            assert text and text.encode() not in stored

    assert_nothing_private()
    await storage.close()  # SQLite checkpoints the WAL into the main file on close
    assert_nothing_private()


async def test_a_revealed_or_burned_secret_leaves_no_ciphertext_behind(
    backing: Backing, storage: Storage
) -> None:
    """With the link, a later copy of the store must not open a secret a second time."""
    store = make_store(storage)
    kept = [await store.share(unique("kept")) for _ in range(8)]
    gone = [await store.share(unique("gone"), passphrase="pw" if i % 2 else None)
            for i in range(8)]
    ciphertexts = []
    for receipt in gone:
        prefix = "p:" if receipt.passphrase_required else "s:"
        raw = await storage.get(crypto.storage_id(prefix, receipt.secret_key or ""))
        assert raw is not None
        ciphertexts.append(raw[32:])
    for i, receipt in enumerate(gone):
        if i % 4 == 3:
            await store.burn(receipt.metadata_key, "pw" if i % 2 else None)
        else:
            await store.reveal(receipt.secret_key or "", "pw" if i % 2 else None)
    await storage.close()  # SQLite: the WAL is checkpointed into the file

    stored = backing.stored_bytes()
    assert crypto.storage_id("s:", kept[0].secret_key or "")[2:].encode() in stored
    for ciphertext in ciphertexts:
        assert ciphertext not in stored


# -- creating ------------------------------------------------------------------------


async def test_empty_and_oversized_secrets_are_refused(storage: Storage) -> None:
    store = make_store(storage, max_secret_bytes=10)
    with pytest.raises(InvalidRequest, match="did not provide anything"):
        await store.share("")
    with pytest.raises(InvalidRequest) as caught:
        await store.share("ü" * 6)  # 6 characters, 12 bytes
    assert "12 bytes" in caught.value.message and "10 bytes" in caught.value.message
    assert "ü" not in caught.value.message
    assert (await store.share("ü" * 5)).state == "new"


async def test_generate_stores_the_password_it_returns(store: EmbeddedStore) -> None:
    receipt = await store.generate(length=20)
    assert receipt.value is not None and len(receipt.value) == 20
    assert receipt.secret_key is not None
    assert (await store.reveal(receipt.secret_key)).value == receipt.value
    assert receipt.value not in repr(receipt)  # a logged receipt shows no password


# -- failing storage -------------------------------------------------------------------


async def test_every_store_operation_says_unavailable_when_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    server.stop()  # the port is known and nothing answers on it
    storage = RedisStorage.from_url(f"redis://:s3cretpw@127.0.0.1:{server.port}/0")
    store = make_store(storage)
    key = crypto.new_key()
    calls = {
        "share": lambda: store.share("value"),
        "generate": lambda: store.generate(),
        "reveal": lambda: store.reveal(key, "pw"),
        "peek": lambda: store.peek(key),
        "receipt": lambda: store.receipt(key),
        "burn": lambda: store.burn(key),
        "status": lambda: store.status(),
    }
    try:
        for name, call in calls.items():
            with pytest.raises(BackendUnavailable) as caught:
                await call()  # type: ignore[operator]
            assert "s3cretpw" not in caught.value.message, name
            assert str(server.port) not in caught.value.message, name
    finally:
        await store.close()


# -- generate_password ---------------------------------------------------------------

LOOK_ALIKES = set("0Oo1lI")


@pytest.mark.parametrize("length", [0, -1, GENERATE_MAX_LENGTH + 1])
def test_generate_password_refuses_lengths_out_of_bounds(length: int) -> None:
    with pytest.raises(InvalidRequest, match=f"between 1 and {GENERATE_MAX_LENGTH}"):
        generate_password(length)


@pytest.mark.parametrize("length", [1, 2, 3, 12, GENERATE_MAX_LENGTH])
def test_generate_password_has_the_length_asked(length: int) -> None:
    assert len(generate_password(length)) == length


def test_generate_password_avoids_look_alikes_and_mixes_classes() -> None:
    seen: set[str] = set()
    for _ in range(300):
        value = generate_password(12)
        assert value.isascii() and value.isalnum()
        assert not LOOK_ALIKES & set(value)
        assert re.search("[a-z]", value) and re.search("[A-Z]", value)
        assert re.search("[0-9]", value)
        seen |= set(value)
    expected = {c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ23456789"}
    assert seen == expected - LOOK_ALIKES


def test_generated_passwords_differ() -> None:
    assert len({generate_password(12) for _ in range(500)}) == 500


async def test_sqlite_forgets_used_secrets_in_every_file_within_seconds(tmp_path: Path) -> None:
    """No close, no restart: the WAL of a live install must not keep revealed, burned
    or expired ciphertext (a copy of DATA_DIR plus a used link would open it)."""
    data_dir = tmp_path / "data"
    storage = SQLiteStorage(data_dir / "s.sqlite3")
    store = make_store(storage, min_ttl=1)
    scrubbing = asyncio.create_task(store.run_scrub(interval=0.5))
    try:
        gone = [await store.share(unique("gone"), passphrase="pw" if i % 2 else None)
                for i in range(6)]
        expiring = await store.share(unique("expiring"), ttl=1)
        kept = await store.share(unique("kept"))
        ciphertexts = []
        for receipt in [*gone, expiring]:
            prefix = "p:" if receipt.passphrase_required else "s:"
            raw = await storage.get(crypto.storage_id(prefix, receipt.secret_key or ""))
            assert raw is not None
            ciphertexts.append(raw[32:])
        for i, receipt in enumerate(gone):
            if i % 3 == 2:
                await store.burn(receipt.metadata_key, "pw" if i % 2 else None)
            else:
                await store.reveal(receipt.secret_key or "", "pw" if i % 2 else None)

        def left() -> list[bytes]:
            stored = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
            return [c for c in ciphertexts if c in stored]

        assert left(), "the scan must see ciphertext while it is there"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # noqa: ASYNC110 (polling files, not a task)
            if not left():
                break
            await asyncio.sleep(0.25)
        assert left() == []
        assert await store.reveal(kept.secret_key or "")  # the live one is untouched
    finally:
        scrubbing.cancel()
        await asyncio.gather(scrubbing, return_exceptions=True)
        await storage.close()
