"""Storage under the embedded store: small atomic primitives, and two per request.

Most operations touch exactly one key, so the Redis implementation works on Redis
Cluster, and every operation is atomic across processes sharing the store
(several uvicorn workers on one SQLite file, several replicas on one Redis).

The hot paths have one operation each, so a request costs one round trip:
`put_all` (a create: receipt and secret, after the client's rate-limit count) and
`take_settle` (a reveal: take the secret, mark its receipt received, after the
count). The records of one share carry one hash tag in their names (see
`crypto.storage_id`), so on Redis Cluster they share a slot; a rate-limit counter
belongs to a client, not a share, so there it is counted in a round trip of its
own first (one server or Sentinel: in the same script).

Implementations raise `bot.errors.BackendUnavailable` when the store cannot be
reached; that is the one place their own exceptions are translated. Two kinds are
told apart: `StoreFull` (a write refused for memory or disk: reads and deletes go
on) and `OutcomeUnknown` (a `take` or `delete` whose answer was lost).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Count:
    """A rate-limit counter to add one to before the work, in the same round trip.

    A new counter starts at 1 and expires after `ttl` seconds; when the count
    passes `limit`, the work is not done and the operation raises
    `bot.errors.OverLimit`."""

    key: str
    ttl: int
    limit: int


class PendingCount:
    """A request's rate-limit count, left by the middleware for the store operation
    that does the request's work, so both go in one round trip. Claimed at most once:
    by that operation, or else by the middleware itself as the answer starts."""

    def __init__(self, kind: str, count: Count) -> None:
        self.kind = kind
        self.count = count
        self.claimed = False

    def claim(self) -> Count | None:
        if self.claimed:
            return None
        self.claimed = True
        return self.count


PENDING_COUNT: ContextVar[PendingCount | None] = ContextVar("pending_count", default=None)


def claim_count(kind: str) -> Count | None:
    """The count the current request left for a `kind` ("create", "reveal") operation,
    once; None when there is none (no limit, not a counted route, or taken already)."""
    pending = PENDING_COUNT.get()
    if pending is None or pending.kind != kind:
        return None
    return pending.claim()


@dataclass(frozen=True)
class Taken:
    """What `take_settle` found. `value`: the record taken (None: nothing there).
    `other`: when nothing was taken, the record at the `other` key, read and left in
    place. `receipt`: the receipt as it was; `settled`: as it is now, when this call
    marked it received (None when it was not there or not new or viewed)."""

    value: bytes | None
    other: bytes | None = None
    receipt: bytes | None = None
    settled: bytes | None = None
    # The record was taken but its receipt could not be read or written (the store
    # refused that step): the reveal stands, with a stale receipt.
    unsettled: bool = False


RECEIPT_POINTER = 32  # bytes: a secret record starts with its receipt's hash


def settle_received(raw: bytes, now: int, sid: str) -> bytes | None:
    """A receipt (JSON) marked received at `now`, or None when it is not new or viewed
    or does not name the record taken (its "sid" is not `sid`: an edited record cannot
    make a reveal settle another share's receipt).

    What `take_settle` does to the receipt, in Python (SQLite). The Redis script does
    the same in Lua (`_TAKE_SETTLE`); the storage contract tests hold both to it.
    """
    try:
        record = json.loads(raw)
    except ValueError:
        return None  # not a receipt this app wrote: left as it is
    if (not isinstance(record, dict) or record.get("state") not in ("new", "viewed")
            or record.get("sid") != sid):
        return None
    record.update(state="received", updated=now, received=now, sk=None)
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


class Storage(Protocol):
    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        """Store `value` for `ttl` seconds unless `key` holds a live value. True if stored."""

    async def get(self, key: str) -> bytes | None:
        """The live value at `key`, or None."""

    async def take(self, key: str) -> bytes | None:
        """Atomically read and delete: of any number of concurrent callers, one gets the value."""

    async def delete(self, key: str) -> bool:
        """Delete `key`; True only for the one caller whose call removed a live value."""

    async def replace(self, key: str, old: bytes, new: bytes) -> bool:
        """Compare-and-set: write `new` only if `key` still holds `old`. Keeps the expiry."""

    async def incr(self, key: str, ttl: int) -> int:
        """Add one to a counter; a new counter starts at 1 and expires after `ttl` seconds."""

    async def put_all(
        self, entries: list[tuple[str, bytes, int]], *, count: Count | None = None
    ) -> bool:
        """Count (see `Count`), then store every (key, value, ttl) of `entries` if none
        of their keys holds a live value; else store nothing and answer False. One
        atomic step; on Redis Cluster the keys must share a hash tag."""

    async def take_settle(
        self, key: str, *, other: str, receipt_prefix: str, sid: str, now: int,
        count: Count | None = None,
    ) -> Taken:
        """Count (see `Count`), then atomically take the record at `key` (of any number
        of concurrent callers, one gets it) and settle its receipt: the record's first
        RECEIPT_POINTER bytes, in hex after `receipt_prefix`, name it; it is marked
        received (`settle_received` with `sid`) keeping its expiry. When `key` holds
        nothing, the record at `other` is read instead (left in place). One atomic
        step; on Redis Cluster `key`, `other` and the receipt must share a hash tag."""

    async def index_add(
        self, key: str, member: bytes, score: float, ttl: int, *, keep: int = 0
    ) -> None:
        """Add `member` to the sorted set `key` (expiring `ttl` seconds after the last add).

        With `keep`, only the `keep` highest-scored members stay (ties: the greatest
        member stays), so an index that is added to all the time stays bounded.
        """

    async def index_range(self, key: str, limit: int) -> list[bytes]:
        """Up to `limit` members of `key`, highest score first."""

    async def index_remove(self, key: str, member: bytes) -> bool:
        """Remove `member`; True only for the caller whose call removed it."""

    async def index_pop_due(self, key: str, until: float, limit: int) -> list[bytes]:
        """Atomically remove and return up to `limit` members with score <= `until`."""

    async def index_count(self, key: str, until: float) -> int:
        """How many members have a score <= `until`."""

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the store answers."""

    async def readiness(self) -> str | None:
        """None if the store accepts a write right now, else why not in a few words
        ("unreachable", "read-only", "out of memory", "moved", "disk full",
        "not writable"). Never raises."""

    async def close(self) -> None: ...
