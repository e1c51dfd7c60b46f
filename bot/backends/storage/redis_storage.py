"""Redis storage: what several replicas share. One server, Redis Cluster or Sentinel.

Every primitive is one command or one Lua script, so each is atomic on the server.
Most touch one key. The two per-request ones (`put_all`, `take_settle`) touch the
records of one share, whose names carry one hash tag (`s:{tag}…`, `m:{tag}…`), so
on Redis Cluster they are in one slot and nothing ever spans two. The rate-limit
counter they take belongs to a client: on one server and on Sentinel it is in the
same script (one round trip per request); on Cluster it lives in a slot of its
own, so it is counted first, in a round trip of its own. Expiry is Redis's own TTL.

The topology comes from REDIS_URL (see redis_url.py) and is chosen in
`RedisStorage.from_url` only; the primitives below are the same on all three.

What a caller is told when something goes wrong:
- the server refused the command (read-only, out of memory, MOVED, MISCONF, …) or
  no connection could be made: `BackendUnavailable`, and nothing happened;
- a reveal or a burn (`take`, `delete`) was sent but no answer came back in time
  or the connection broke while waiting: `OutcomeUnknown`, because the secret may
  have been used up. Nothing is ever resent: a resent GETDEL would answer
  "nothing there" for a secret the first one consumed.
- `put` (every create) is acknowledged only once `wait_replicas` replicas hold it
  (WAIT), when the master has replicas at all; otherwise the new key is deleted
  again and the caller gets `BackendUnavailable`, so nobody is handed a link to a
  secret one node's failure could lose.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.backends.storage import Count, Taken, redis_url
from bot.errors import BackendUnavailable, OutcomeUnknown, OverLimit, StoreFull

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 100  # per process (per node on Redis Cluster)
POOL_WAIT = 5.0  # seconds an operation may wait for a free connection
PROBE_TTL_MS = 5000
PROBE_BYTES = 4096
WARN_EVERY = 60.0  # seconds between two warnings of the same kind

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

_INDEX_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local keep = tonumber(ARGV[4])
if keep > 0 then
    -- Ranks count up from the lowest score: drop all but the top `keep`.
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""

# A create: count (ARGV[1] == "1": the counter is the last key), then every entry or none.
_PUT_ALL = """
local n = #KEYS
if ARGV[1] == '1' then
    local count = redis.call('INCR', KEYS[n])
    if count == 1 then redis.call('EXPIRE', KEYS[n], ARGV[2]) end
    if count > tonumber(ARGV[3]) then return -1 end
    n = n - 1
end
for i = 1, n do
    if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, n do
    redis.call('SET', KEYS[i], ARGV[2 + 2 * i], 'EX', ARGV[3 + 2 * i])
end
return 1
"""

# A reveal: count (ARGV[3] == "1": KEYS[3]), take KEYS[1] (else read KEYS[2]), and
# mark the receipt it points to received if it names this record (its "sid" is
# ARGV[6]), as `settle_received` does. The receipt's name comes from the record
# (its first 32 bytes): it shares the record's hash tag, so on Cluster it is in
# this slot. The INCR comes first: on a full store it is refused (OOM) before
# anything is taken; after the GETDEL the receipt's SET runs even on a full store
# (Redis lets a script that has written finish). Once the record is taken nothing
# may fail the script (a script is not rolled back: its caller would hear "refused"
# for a secret that is gone), so the receipt's steps are pcall'ed; a refused one
# (an ACL, a wrong type) answers the fifth field, and the reveal goes on.
_TAKE_SETTLE = """
if ARGV[3] == '1' then
    local count = redis.call('INCR', KEYS[3])
    if count == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
    if count > tonumber(ARGV[5]) then return {-1} end
end
local value = redis.call('GETDEL', KEYS[1])
if not value then return {0, redis.call('GET', KEYS[2])} end
local pointer = string.gsub(string.sub(value, 1, 32), '.', function(c)
    return string.format('%02x', string.byte(c))
end)
local name = ARGV[1] .. pointer
local receipt = redis.pcall('GET', name)
if type(receipt) == 'table' then return {1, value, false, false, 1} end
if not receipt then return {1, value} end
local ok, record = pcall(cjson.decode, receipt)
if ok and type(record) == 'table' and record.sid == ARGV[6]
        and (record.state == 'new' or record.state == 'viewed') then
    local now = tonumber(ARGV[2])
    record.state = 'received'
    record.updated = now
    record.received = now
    record.sk = cjson.null
    local settled = cjson.encode(record)
    local done = redis.pcall('SET', name, settled, 'KEEPTTL')
    if type(done) == 'table' and done.err then return {1, value, receipt, false, 1} end
    return {1, value, receipt, settled}
end
return {1, value, receipt}
"""

# Every way a command can fail (RedisClusterException: no node known for a slot).
_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)

NOT_REPLICATED = (
    "The secret store could not confirm a copy of the secret on a replica in time, "
    "so it was not kept. Please try again shortly."
)


class RedisStorage:
    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        prefix: str = "ots:",
        timeout: float = 5.0,
        wait_replicas: int = 0,
        wait_ms: int = 1000,
        topology: redis_url.Topology = "standalone",
        sentinels: Sentinel | None = None,
    ) -> None:
        self._redis = client
        # The clients of the sentinels, kept here to be closed: redis-py reorders
        # `Sentinel.sentinels` while discovering the master, and concurrent
        # discoveries can drop one from that list (its connections then leak).
        self._sentinel_clients = list(sentinels.sentinels) if sentinels is not None else []
        self._prefix = prefix
        self.topology = topology
        self._timeout = timeout
        self._wait_replicas = wait_replicas
        self._wait_ms = wait_ms
        self._warned: dict[str, float] = {}
        # Commands in flight at once, per process. redis-py's cluster and sentinel
        # pools raise at once when their connections are all busy; a command waits
        # here for its turn instead (up to POOL_WAIT seconds), as on the blocking
        # pool of a single server.
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)
        self._replace = client.register_script(_REPLACE)
        self._incr = client.register_script(_INCR)
        self._index_add = client.register_script(_INDEX_ADD)
        self._pop_due = client.register_script(_POP_DUE)
        self._put_all = client.register_script(_PUT_ALL)
        self._take_settle = client.register_script(_TAKE_SETTLE)
        # On Cluster a client's counter is in a slot of its own: counted apart.
        self._count_apart = isinstance(client, RedisCluster)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = 5.0,
        wait_replicas: int | None = None,
        wait_ms: int = 1000,
    ) -> RedisStorage:
        """The one place the topology is chosen. `timeout`: seconds an ordinary
        command may take; reveals and burns wait twice as long for their answer.
        `wait_replicas`: None means 1 on Cluster and Sentinel, 0 on one server."""
        target = redis_url.parse(url)
        if wait_replicas is None:
            wait_replicas = 0 if target.topology == "standalone" else 1
        options: dict[str, Any] = {
            "socket_connect_timeout": min(2.0, timeout),
            # The longest wait any command gets (a reveal's, or a create's WAIT for a
            # replica); ordinary commands are cut off sooner by `_call`.
            "socket_timeout": max(2 * timeout, timeout + wait_ms / 1000),
            # Never resend a command: if GETDEL or DEL ran but its answer was lost,
            # a resend answers "nothing there" and the secret is lost without a word.
            # A failure must reach the caller instead.
            "retry": Retry(NoBackoff(), 0),
        }
        client: aioredis.Redis | RedisCluster
        if target.topology == "cluster":
            client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
                username=target.username,
                password=target.password,
                ssl=target.tls,
                max_connections=MAX_CONNECTIONS,
                # After a failover a node answers MOVED or cannot be reached: the
                # client relearns the slots (a redirect is never a resend of a
                # command that ran).
                **options,
            )
        elif target.topology == "sentinel":
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(target.hosts),
                sentinel_kwargs={
                    "socket_connect_timeout": options["socket_connect_timeout"],
                    "socket_timeout": timeout,
                    "ssl": target.tls,
                },
                username=target.username,
                password=target.password,
                ssl=target.tls,
                db=target.db,
                **options,
            )
            # The pool asks the sentinels for the master on every new connection and
            # drops a connection whose server turned replica (ReadOnlyError), so a
            # failover needs no restart.
            client = sentinel.master_for(target.service, max_connections=MAX_CONNECTIONS)
            return cls(
                client, timeout=timeout, wait_replicas=wait_replicas, wait_ms=wait_ms,
                topology="sentinel", sentinels=sentinel,
            )
        else:
            # A blocking pool: when all its connections are busy, an operation waits
            # for one (up to POOL_WAIT seconds). redis-py's default pool raises at
            # once instead, which turned any burst of over 100 concurrent requests
            # into 503s (tests/test_exactly_once.py races more than that).
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=MAX_CONNECTIONS,
                timeout=POOL_WAIT,
                health_check_interval=30,
                **options,
            )
            client = aioredis.Redis.from_pool(pool)
        return cls(
            client, timeout=timeout, wait_replicas=wait_replicas, wait_ms=wait_ms,
            topology=target.topology,
        )

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def _call(
        self, awaitable: Awaitable[Any], *, consumes: bool = False, waits: float = 0.0
    ) -> Any:
        """Run one command, translating every failure. `consumes`: the command may
        use up a secret, so it waits longer, and a lost answer is OutcomeUnknown.
        `waits`: seconds the server itself may hold the answer back (WAIT)."""
        try:
            async with asyncio.timeout(POOL_WAIT):
                await self._turns.acquire()
        except TimeoutError:
            _close(awaitable)
            raise BackendUnavailable(
                "The secret store (Redis) is too busy: no connection was free in time."
            ) from None
        try:
            if consumes:
                return await awaitable  # bounded by the socket timeout (2 × timeout)
            async with asyncio.timeout(self._timeout + waits):
                return await awaitable
        except _FAILURES as exc:
            # redis-py's messages can hold the URL (and its password): name the kind only.
            if consumes and _maybe_ran(exc):
                raise OutcomeUnknown from None
            if _reason(exc) == "out of memory":
                raise StoreFull(
                    "The secret store (Redis) is full (out of memory): nothing new can be "
                    "stored right now, but links already given out still work."
                ) from None
            raise BackendUnavailable(
                f"The secret store (Redis) is unavailable: {_kind(exc)}."
            ) from None
        finally:
            self._turns.release()

    def _warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY) >= WARN_EVERY:
            self._warned[kind] = now
            log.warning(message, *args)

    # -- the primitives ---------------------------------------------------------

    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        k = self._k(key)
        if self._wait_replicas <= 0:
            return bool(await self._call(self._redis.set(k, value, ex=ttl, nx=True)))
        stored, acked, node = await self._call(
            self._set_and_wait(k, value, ttl), waits=self._wait_ms / 1000
        )
        if not stored or acked >= self._wait_replicas:
            return bool(stored)
        # Fewer replicas than asked: fine only if the master has none to ask.
        replicas = await self._call(self._connected_replicas(node))
        if replicas == 0 and acked == 0:
            self._warn(
                "no-replica",
                "Redis: the master holding a new secret has no replica connected; it "
                "was acknowledged without a copy (REDIS_WAIT_REPLICAS=%d)",
                self._wait_replicas,
            )
            return True
        if acked >= replicas > 0:
            return True
        self._warn("not-replicated", "Redis: WAIT timed out; a new secret was refused")
        try:
            await self._call(self._redis.delete(k))
        except BackendUnavailable:
            pass  # it expires with its TTL; nobody was given its link
        raise BackendUnavailable(NOT_REPLICATED)

    async def _set_and_wait(
        self, k: str, value: bytes, ttl: int
    ) -> tuple[bool, int, ClusterNode | None]:
        """SET NX, then WAIT on the same connection (WAIT counts that connection's writes)."""
        if isinstance(self._redis, RedisCluster):
            await self._redis.initialize()  # learns the slots once, and after a failover
            node = self._redis.get_node_from_key(k)
            cpipe = self._redis.pipeline()
            cpipe.set(k, value, ex=ttl, nx=True)
            cpipe.execute_command("WAIT", self._wait_replicas, self._wait_ms, target_nodes=node)
            stored, acked = await cpipe.execute()
            if self._redis.get_node_from_key(k) is not node:
                # The slot moved while we wrote: WAIT asked the wrong node.
                raise BackendUnavailable("The secret store (Redis) is failing over.")
            return bool(stored), _count(acked), node
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(k, value, ex=ttl, nx=True)
            pipe.execute_command("WAIT", self._wait_replicas, self._wait_ms)
            stored, acked = await pipe.execute()
        return bool(stored), int(acked), None

    async def _connected_replicas(self, node: ClusterNode | None) -> int:
        if isinstance(self._redis, RedisCluster):
            role = await self._redis.execute_command("ROLE", target_nodes=node)
        else:
            role = await self._redis.execute_command("ROLE")  # type: ignore[no-untyped-call]
        if isinstance(role, dict):  # a cluster answer keyed by node
            role = next(iter(role.values()))
        return len(role[2]) if role and _text(role[0]) == "master" else 0

    # -- one round trip per request -------------------------------------------

    async def _count_first(self, count: Count | None) -> Count | None:
        """On Cluster, count now (a round trip of its own); else leave it to the script."""
        if count is None or not self._count_apart:
            return count
        if await self.incr(count.key, count.ttl) > count.limit:
            raise OverLimit
        return None

    async def put_all(
        self, entries: list[tuple[str, bytes, int]], *, count: Count | None = None
    ) -> bool:
        count = await self._count_first(count)
        keys = [self._k(key) for key, _, _ in entries]
        args: list[Any] = ["1", count.ttl, count.limit] if count else ["0", 0, 0]
        if count is not None:
            keys.append(self._k(count.key))
        for _, value, ttl in entries:
            args += [value, ttl]
        if self._wait_replicas <= 0:
            outcome = int(await self._call(self._put_all(keys=keys, args=args)))
        else:
            outcome = await self._put_all_and_wait(keys, args, entries)
        if outcome < 0:
            raise OverLimit
        return outcome == 1

    async def _put_all_and_wait(
        self, keys: list[str], args: list[Any], entries: list[tuple[str, bytes, int]]
    ) -> int:
        """The create script, then WAIT on the same connection; as `put` does, a create
        no replica confirmed in time is deleted again and refused."""
        outcome: int
        acked: int
        outcome, acked, node = await self._call(
            self._script_and_wait(self._put_all, keys, args), waits=self._wait_ms / 1000
        )
        if outcome != 1 or acked >= self._wait_replicas:
            return outcome
        replicas = await self._call(self._connected_replicas(node))
        if replicas == 0 and acked == 0:
            self._warn(
                "no-replica",
                "Redis: the master holding a new secret has no replica connected; it "
                "was acknowledged without a copy (REDIS_WAIT_REPLICAS=%d)",
                self._wait_replicas,
            )
            return outcome
        if acked >= replicas > 0:
            return outcome
        self._warn("not-replicated", "Redis: WAIT timed out; a new secret was refused")
        try:
            await self._call(self._redis.delete(*(self._k(key) for key, _, _ in entries)))
        except BackendUnavailable:
            pass  # they expire with their TTL; nobody was given the link
        raise BackendUnavailable(NOT_REPLICATED)

    async def _script_and_wait(
        self, script: AsyncScript, keys: list[str], args: list[Any]
    ) -> tuple[int, int, ClusterNode | None]:
        """EVALSHA then WAIT in one pipeline (WAIT counts that connection's writes);
        a server that does not know the script yet (NOSCRIPT: it did not run) is
        sent it, and the pipeline again."""
        node: ClusterNode | None = None
        for attempt in range(2):
            if isinstance(self._redis, RedisCluster):
                await self._redis.initialize()  # learns the slots once, and after a failover
                node = self._redis.get_node_from_key(keys[0])
                cpipe = self._redis.pipeline()
                # execute_command: redis-py blocks `evalsha` in a cluster pipeline.
                cpipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                cpipe.execute_command(
                    "WAIT", self._wait_replicas, self._wait_ms, target_nodes=node
                )
                answers = await cpipe.execute(raise_on_error=False)
                if self._redis.get_node_from_key(keys[0]) is not node:
                    # The slot moved while we wrote: WAIT asked the wrong node.
                    raise BackendUnavailable("The secret store (Redis) is failing over.")
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                    pipe.execute_command("WAIT", self._wait_replicas, self._wait_ms)
                    answers = await pipe.execute(raise_on_error=False)
            outcome, acked = answers
            if isinstance(outcome, NoScriptError) and attempt == 0:
                await self._redis.script_load(script.script)
                continue
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            return int(outcome), _count(acked), node
        raise BackendUnavailable("The secret store (Redis) does not keep its scripts.")

    async def take_settle(
        self, key: str, *, other: str, receipt_prefix: str, sid: str, now: int,
        count: Count | None = None,
    ) -> Taken:
        count = await self._count_first(count)
        keys = [self._k(key), self._k(other)]
        args: list[Any] = [self._k(receipt_prefix), now]
        if count is not None:
            keys.append(self._k(count.key))
            args += ["1", count.ttl, count.limit, sid]
        else:
            args += ["0", 0, 0, sid]
        answer = await self._call(self._take_settle(keys=keys, args=args), consumes=True)
        if int(answer[0]) < 0:
            raise OverLimit
        if int(answer[0]) == 0:
            return Taken(None, answer[1] if len(answer) > 1 else None)
        return Taken(
            answer[1],
            None,
            answer[2] if len(answer) > 2 else None,
            answer[3] if len(answer) > 3 else None,
            unsettled=len(answer) > 4 and bool(answer[4]),
        )

    # -- single keys ------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._redis.get(self._k(key)))
        return value

    async def take(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(
            self._redis.getdel(self._k(key)), consumes=True
        )
        return value

    async def delete(self, key: str) -> bool:
        return int(await self._call(self._redis.delete(self._k(key)), consumes=True)) == 1

    async def replace(self, key: str, old: bytes, new: bytes) -> bool:
        return int(await self._call(self._replace(keys=[self._k(key)], args=[old, new]))) == 1

    async def incr(self, key: str, ttl: int) -> int:
        return int(await self._call(self._incr(keys=[self._k(key)], args=[ttl])))

    async def index_add(
        self, key: str, member: bytes, score: float, ttl: int, *, keep: int = 0
    ) -> None:
        await self._call(
            self._index_add(keys=[self._k(key)], args=[member, score, ttl, keep])
        )

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

    # -- operations -------------------------------------------------------------

    async def readiness(self) -> str | None:
        """None when every master accepts a write right now (a short-lived probe key
        on each), else why not, in a few words."""
        try:
            async with asyncio.timeout(self._timeout):
                if isinstance(self._redis, RedisCluster):
                    await self._redis.initialize()
                for key in self._probe_keys():
                    # As large as a typical secret: a store with room only for crumbs
                    # cannot take a share.
                    await self._redis.set(key, bytes(PROBE_BYTES), px=PROBE_TTL_MS)
                    await self._redis.delete(key)
        except _FAILURES as exc:
            return _reason(exc)
        return None

    def _probe_keys(self) -> list[str]:
        token = secrets.token_hex(8)
        if not isinstance(self._redis, RedisCluster):
            return [f"{self._prefix}probe:{token}"]
        # One key per master: each must take writes for its slots.
        masters = {node.name for node in self._redis.get_primaries()}
        keys: dict[str, str] = {}
        for i in range(16384 * 4):
            key = f"{self._prefix}probe:{token}:{i}"
            node = self._redis.nodes_manager.get_node_from_slot(key_slot(key.encode()))
            if node is not None and node.name in masters and node.name not in keys:
                keys[node.name] = key
                if len(keys) == len(masters):
                    break
        return list(keys.values())

    async def server_warnings(self) -> list[str]:
        """What in the Redis configuration can lose secrets, as far as it can be read
        (CONFIG GET is often disabled on managed Redis: then nothing is said)."""
        found: list[str] = []
        try:
            async with asyncio.timeout(self._timeout):
                policy = await self._config_get("maxmemory-policy")
                aof = await self._config_get("appendonly")
                save = await self._config_get("save")
        except _FAILURES:
            return found
        if policy and policy != "noeviction":
            found.append(
                f"Redis maxmemory-policy is {policy}: when memory is full Redis may evict "
                "unread secrets, which then read as already used. Set it to noeviction."
            )
        if aof == "no" and save == "":
            found.append(
                "Redis persistence is off (appendonly no, no save points): a restart of "
                "Redis loses every secret. Set appendonly yes (appendfsync everysec)."
            )
        elif aof == "no":
            found.append(
                "Redis appendonly is off: a crash loses the secrets created since the last "
                "snapshot. Set appendonly yes (appendfsync everysec)."
            )
        return found

    async def _config_get(self, name: str) -> str | None:
        answer: Any
        if isinstance(self._redis, RedisCluster):
            answer = await self._redis.config_get(name, target_nodes=RedisCluster.PRIMARIES)
        else:
            answer = await self._redis.config_get(name)
        if isinstance(answer, dict) and answer and isinstance(next(iter(answer.values())), dict):
            answer = next(iter(answer.values()))  # per node: the first speaks for all
        for key, value in dict(answer or {}).items():
            if _text(key) == name:
                return _text(value)
        return None

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        finally:
            for client in self._sentinel_clients:
                await client.aclose()


def _close(awaitable: Awaitable[Any]) -> None:
    """A coroutine that will never run: close it (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _count(answer: Any) -> int:
    if isinstance(answer, dict):
        return int(next(iter(answer.values())))
    return int(answer)


def _maybe_ran(exc: BaseException) -> bool:
    """Whether a failed command may have run on the server all the same."""
    if isinstance(exc, (ResponseError, BusyLoadingError, AuthenticationError)):
        return False  # the server answered: it refused the command
    text = str(exc)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)) and (
        "connecting to" in text or "No connection available" in text
        or "Timeout connecting" in text or "No master found" in text
    ):
        return False  # never sent: no connection
    return True  # sent, then no answer: a timeout or a connection that broke


def _kind(exc: BaseException) -> str:
    if isinstance(exc, OutOfMemoryError) or str(exc).startswith("OOM"):
        return "out of memory"
    if isinstance(exc, ReadOnlyError):
        return "read-only replica"
    return type(exc).__name__


def _reason(exc: BaseException) -> str:
    """Why the store does not take writes, for /readyz."""
    text = str(exc)
    if isinstance(exc, OutOfMemoryError) or text.startswith("OOM"):
        return "out of memory"
    if isinstance(exc, ReadOnlyError) or text.startswith("READONLY"):
        return "read-only"
    if isinstance(exc, (MovedError, AskError, TryAgainError, ClusterDownError)):
        return "moved"
    if text.startswith("MISCONF"):
        return "disk full"  # Redis refuses writes while it cannot persist them
    if isinstance(exc, ResponseError):
        return "not writable"
    return "unreachable"
