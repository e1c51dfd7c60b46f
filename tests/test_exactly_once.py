"""Exactly once across processes: 200 secrets, each raced by 16 concurrent reveals.

Two real server processes share one store (one Redis, a Redis Cluster, a
Sentinel-managed master, or one SQLite file); each
secret's 16 reveal requests are sent at once, split 8 and 8 between them, half
to the reveal page (POST /secret/{key}) and half to the API (POST
/api/v1/secret/{key}). Every secret must be delivered to exactly one request,
every other request must get the plain "not found" answer, and the receipt
must say "received".

Secrets are created directly through an EmbeddedStore on the same storage. The
servers run with a cheaper scrypt (see tests/support/server_process.py): 3,200
passphrase checks at the production cost would take minutes of CPU, and the
cost changes how long a check takes, not who wins the atomic delete.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.appstore import open_app_store
from bot.backends.embedded import EmbeddedStore
from bot.backends.factory import make_backend
from bot.config import Settings
from tests.support.redis_topologies import redis_url_for
from tests.support.server_process import (
    TEST_SCRYPT_N,
    UNLIMITED,
    ServerProcess,
    Shared,
    share_many,
)

SECRETS = 200
# On Redis Cluster and Sentinel (the same atomic commands, slower clients, and a WAIT
# for a replica on every create) fewer secrets keep the suite's time down; each is
# still raced by 16 requests across both processes.
TOPOLOGY_SECRETS = 48
REVEALS_PER_SECRET = 16
SECRETS_RACED_AT_ONCE = 16  # 256 requests in flight: more than a Redis pool holds


@dataclass(frozen=True)
class Answer:
    server: int
    status: int
    body: str


@pytest.fixture
def store_env(store_kind: str, data_dir: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"DATA_DIR": str(data_dir), "PUBLIC_URL": "http://ots.test", **UNLIMITED,
           "TEST_SCRYPT_N": str(TEST_SCRYPT_N)}
    url = redis_url_for(store_kind, request)
    if url is not None:
        env["REDIS_URL"] = url
    return env


@pytest.fixture
def two_servers(store_env: dict[str, str], tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = [
        ServerProcess.uvicorn(
            store_env, tmp_path / f"server{i}.log",
            factory="tests.support.server_process:app_with_test_scrypt",
        )
        for i in range(2)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log(), server.log()[-3000:]


def open_store(env: dict[str, str]) -> EmbeddedStore:
    settings = Settings.from_env(env)
    store = make_backend(settings, open_app_store(settings), scrypt_n=TEST_SCRYPT_N)
    assert isinstance(store, EmbeddedStore)
    return store


async def race(session: aiohttp.ClientSession, urls: list[str], shared: Shared,
               first: int) -> list[Answer]:
    """All reveal requests for one secret at once, alternating between the servers
    and, on each server, between the reveal page and the API."""
    form = {"passphrase": shared.passphrase} if shared.passphrase else {}

    async def reveal(server: int, path: str) -> Answer:
        async with session.post(f"{urls[server]}{path}{shared.secret_key}",
                                data=form) as response:
            return Answer(server, response.status, await response.text())

    paths = ("/secret/", "/secret/", "/api/v1/secret/", "/api/v1/secret/")
    return list(await asyncio.gather(*(
        reveal((first + i) % len(urls), paths[i % len(paths)])
        for i in range(REVEALS_PER_SECRET)
    )))


async def race_all(urls: list[str], shared: list[Shared]) -> list[list[Answer]]:
    gate = asyncio.Semaphore(SECRETS_RACED_AT_ONCE)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int, item: Shared) -> list[Answer]:
            async with gate:
                return await race(session, urls, item, first=index % len(urls))

        return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(shared))))


async def warm_up(urls: list[str]) -> None:
    """Fill both processes' store connection pools first, so neither starts the race
    behind by opening connections while the other already has them."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def miss(url: str) -> None:
            async with session.post(f"{url}/api/v1/secret/{'w' * 31}") as response:
                assert response.status == 404

        await asyncio.gather(*(miss(url) for url in urls for _ in range(SECRETS_RACED_AT_ONCE)))


async def run_scenario(env: dict[str, str], urls: list[str], with_passphrase: bool,
                       count: int = SECRETS
                       ) -> tuple[list[Shared], list[list[Answer]], list[str]]:
    store = open_store(env)
    try:
        shared = await share_many(store, count, with_passphrase)
        answers = await race_all(urls, shared)
        states = [(await store.receipt(s.metadata_key)).state for s in shared]
        left = [s.secret_key for s in shared if await store.peek(s.secret_key) is not None]
    finally:
        await store.close()
    return shared, answers, [*states, *left]


def check_exactly_once(shared: list[Shared], answers: list[list[Answer]],
                       after: list[str], every_winner: Counter[int]) -> None:
    assert len(answers) == len(shared)
    winners: Counter[int] = Counter()
    other_bodies: set[str] = set()
    for item, raced in zip(shared, answers, strict=True):
        assert len(raced) == REVEALS_PER_SECRET
        delivered = [a for a in raced if a.status == 200]
        assert len(delivered) == 1, [a.status for a in raced]
        assert item.value in delivered[0].body
        assert sorted(a.status for a in raced) == [200] + [404] * (REVEALS_PER_SECRET - 1)
        other_bodies.update(a.body for a in raced if a is not delivered[0])
        winners[delivered[0].server] += 1
    # No "not found" answer carries any secret.
    assert not any(s.value in body for s in shared for body in other_bodies)
    # Which process won each race: the test checks over both scenarios that each won some.
    every_winner.update(winners)
    # Every receipt says received, and nothing is left in the store to reveal.
    assert after == ["received"] * len(shared)


@pytest.mark.redis_topologies
def test_every_secret_is_delivered_exactly_once(
    store_env: dict[str, str], two_servers: list[ServerProcess], store_kind: str
) -> None:
    """Plain secrets, then passphrase secrets, raced through the same two processes."""
    urls = [server.url for server in two_servers]
    count = SECRETS if store_kind in ("sqlite", "redis") else TOPOLOGY_SECRETS
    asyncio.run(warm_up(urls))
    winners: Counter[int] = Counter()
    for with_passphrase in (False, True):
        check_exactly_once(
            *asyncio.run(run_scenario(store_env, urls, with_passphrase, count)), winners
        )
    # Both processes won races: the secrets really were contended across processes.
    # (Over both scenarios: on Cluster and Sentinel, with fewer secrets, one process can
    # be ahead for a whole scenario when the machine is busy.)
    assert set(winners) == {0, 1}, winners
