"""Redis storage: what several replicas share. Works on Redis Cluster too.

Every primitive is one command or one Lua script on one key, so each is atomic
on the server and needs no cross-slot transaction. Expiry is Redis's own TTL.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.errors import BackendUnavailable

MAX_CONNECTIONS = 100  # per process
POOL_WAIT = 5.0  # seconds an operation may wait for a free connection

_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    return 1
end
return 0
"""

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


class RedisStorage:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "ots:") -> None:
        self._redis = client
        self._prefix = prefix
        self._replace = client.register_script(_REPLACE)
        self._incr = client.register_script(_INCR)
        self._pop_due = client.register_script(_POP_DUE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStorage:
        # A blocking pool: when all its connections are busy, an operation waits
        # for one (up to POOL_WAIT seconds). redis-py's default pool raises at
        # once instead, which turned any burst of over 100 concurrent requests
        # into 503s (tests/test_exactly_once.py races more than that).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=30,
            # Never resend a command: if GETDEL or DEL ran but its answer was lost,
            # a resend answers "nothing there" and the secret is lost without a word.
            # A failure must reach the caller as BackendUnavailable instead.
            retry=Retry(NoBackoff(), 0),
            **kwargs,
        )
        return cls(aioredis.Redis.from_pool(pool))

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            # redis-py's messages can hold the URL (and its password): name the kind only.
            raise BackendUnavailable(
                f"The secret store (Redis) is unavailable: {type(exc).__name__}."
            ) from None

    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(await self._call(self._redis.set(self._k(key), value, ex=ttl, nx=True)))

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._redis.get(self._k(key)))
        return value

    async def take(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._redis.getdel(self._k(key)))
        return value

    async def delete(self, key: str) -> bool:
        return int(await self._call(self._redis.delete(self._k(key)))) == 1

    async def replace(self, key: str, old: bytes, new: bytes) -> bool:
        return int(await self._call(self._replace(keys=[self._k(key)], args=[old, new]))) == 1

    async def incr(self, key: str, ttl: int) -> int:
        return int(await self._call(self._incr(keys=[self._k(key)], args=[ttl])))

    async def index_add(
        self, key: str, member: bytes, score: float, ttl: int, *, keep: int = 0
    ) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._k(key), {member: score})
            if keep > 0:
                # Ranks count up from the lowest score: drop all but the top `keep`.
                pipe.zremrangebyrank(self._k(key), 0, -(keep + 1))
            pipe.expire(self._k(key), ttl)
            await self._call(pipe.execute())

    async def index_range(self, key: str, limit: int) -> list[bytes]:
        if limit <= 0:
            return []  # ZREVRANGE 0 -1 would answer the whole index
        members: list[bytes] = await self._call(
            self._redis.zrevrange(self._k(key), 0, limit - 1)
        )
        return members

    async def index_remove(self, key: str, member: bytes) -> bool:
        return int(await self._call(self._redis.zrem(self._k(key), member))) == 1

    async def index_pop_due(self, key: str, until: float, limit: int) -> list[bytes]:
        members: list[bytes] = await self._call(
            self._pop_due(keys=[self._k(key)], args=[until, limit])
        )
        return members

    async def index_count(self, key: str, until: float) -> int:
        return int(await self._call(self._redis.zcount(self._k(key), "-inf", until)))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
