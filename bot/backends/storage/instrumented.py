"""Storage, counted and timed: what `/metrics` says about the store, and its error log.

Wraps any `Storage` (SQLite, Redis in any topology) without changing what it
does: each primitive is counted, timed and, while under way, shown in the
pool gauge; a failure is counted and logged (at most one line per operation
every few seconds, so a dead store cannot flood the log) and raised unchanged.
Anything else the wrapped storage offers (`sweep`, …) passes straight through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot import metrics
from bot.backends.storage import Count, Storage, Taken
from bot.errors import BackendUnavailable
from bot.logs import Throttled

T = TypeVar("T")
log = logging.getLogger(__name__)


class InstrumentedStorage:
    def __init__(self, inner: Storage, *, pool_size: int) -> None:
        self.inner = inner
        self._errors = Throttled(log)
        # Each operation's counter and histogram, looked up once: `labels()` on
        # every call was a measurable part of a request (docs/benchmarks.md).
        self._meters: dict[str, tuple[Any, Any]] = {}
        metrics.STORE_POOL_SIZE.set(pool_size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _meter(self, operation: str) -> tuple[Any, Any]:
        meter = self._meters.get(operation)
        if meter is None:
            meter = self._meters[operation] = (
                metrics.STORE_OPERATIONS.labels(operation=operation),
                metrics.STORE_LATENCY.labels(operation=operation),
            )
        return meter

    async def _observe(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        count, latency = self._meter(operation)
        count.inc()
        metrics.STORE_POOL_IN_USE.inc()
        started = time.perf_counter()
        try:
            return await call()
        except BackendUnavailable as exc:
            metrics.STORE_ERRORS.labels(operation=operation).inc()
            # The message names the kind of failure only (see the storages).
            self._errors.warning(operation, "store %s failed: %s", operation, exc.message)
            raise
        finally:
            metrics.STORE_POOL_IN_USE.dec()
            latency.observe(time.perf_counter() - started)

    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        return await self._observe("put", lambda: self.inner.put(key, value, ttl))

    async def get(self, key: str) -> bytes | None:
        return await self._observe("get", lambda: self.inner.get(key))

    async def take(self, key: str) -> bytes | None:
        return await self._observe("take", lambda: self.inner.take(key))

    async def delete(self, key: str) -> bool:
        return await self._observe("delete", lambda: self.inner.delete(key))

    async def replace(self, key: str, old: bytes, new: bytes) -> bool:
        return await self._observe("replace", lambda: self.inner.replace(key, old, new))

    async def incr(self, key: str, ttl: int) -> int:
        return await self._observe("incr", lambda: self.inner.incr(key, ttl))

    async def put_all(
        self, entries: list[tuple[str, bytes, int]], *, count: Count | None = None
    ) -> bool:
        return await self._observe("put_all", lambda: self.inner.put_all(entries, count=count))

    async def take_settle(
        self, key: str, *, other: str, receipt_prefix: str, sid: str, now: int,
        count: Count | None = None,
    ) -> Taken:
        return await self._observe("take_settle", lambda: self.inner.take_settle(
            key, other=other, receipt_prefix=receipt_prefix, sid=sid, now=now, count=count
        ))

    async def index_add(
        self, key: str, member: bytes, score: float, ttl: int, *, keep: int = 0
    ) -> None:
        await self._observe(
            "index_add", lambda: self.inner.index_add(key, member, score, ttl, keep=keep)
        )

    async def index_range(self, key: str, limit: int) -> list[bytes]:
        return await self._observe("index_range", lambda: self.inner.index_range(key, limit))

    async def index_remove(self, key: str, member: bytes) -> bool:
        return await self._observe("index_remove", lambda: self.inner.index_remove(key, member))

    async def index_pop_due(self, key: str, until: float, limit: int) -> list[bytes]:
        return await self._observe(
            "index_pop_due", lambda: self.inner.index_pop_due(key, until, limit)
        )

    async def index_count(self, key: str, until: float) -> int:
        return await self._observe("index_count", lambda: self.inner.index_count(key, until))

    async def ping(self) -> None:
        await self._observe("ping", self.inner.ping)

    async def close(self) -> None:
        await self.inner.close()
