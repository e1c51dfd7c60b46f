"""Storage under the embedded store: small atomic primitives, each on a single key.

Every operation touches exactly one key, so the Redis implementation works on
Redis Cluster, and every operation is atomic across processes sharing the store
(several uvicorn workers on one SQLite file, several replicas on one Redis).

Implementations raise `bot.errors.BackendUnavailable` when the store cannot be
reached; that is the one place their own exceptions are translated. Two kinds are
told apart: `StoreFull` (a write refused for memory or disk: reads and deletes go
on) and `OutcomeUnknown` (a `take` or `delete` whose answer was lost).
"""

from __future__ import annotations

from typing import Protocol


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
