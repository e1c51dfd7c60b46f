"""SIGTERM under load: in-flight requests finish, and no secret is lost or revealed twice.

A real `python -m bot` (one process, or a supervisor with two workers) serves
reveals of passphrase secrets (each takes a scrypt derivation at the cost the
secret was sealed with, `SLOW_SCRYPT_N`) while workers reveal plain secrets in a
steady stream. SIGTERM
arrives as soon as the first slow reveal has answered, so the others are still
being worked on. Every slow reveal must get its secret; the stream must see only
answers or refused connections. Then a fresh process on the same store proves
that each secret went out exactly once: a secret whose reveal got no answer is
still there, and nothing is there twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.appstore import open_app_store
from bot.backends.embedded import EmbeddedStore
from bot.backends.factory import make_backend
from bot.config import Settings
from tests.support.server_process import UNLIMITED, ServerProcess, Shared, share_many

SLOW_REVEALS = 12  # passphrase secrets revealed at once when SIGTERM arrives
STREAM_SECRETS = 400  # plain secrets revealed by the steady stream
STREAM_WORKERS = 8
STREAM_PAUSE = 0.05  # each worker's pause between reveals: at most 160 reveals/s in all
# The cost each slow secret is sealed with (a secret keeps its own N, so the real
# server derives at this cost): a quarter of production's 2**17, still tens of ms of
# CPU each, twelve at once, so the later ones are in flight when SIGTERM arrives.
# The production cost itself is tested in tests/test_crypto.py.
SLOW_SCRYPT_N = 2**15


@dataclass(frozen=True)
class Outcome:
    shared: Shared
    status: int | None  # None: no answer (connection refused or closed)
    body: str = ""
    at: float = 0.0


@pytest.fixture
def store_env(store_kind: str, data_dir: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"DATA_DIR": str(data_dir), "PUBLIC_URL": "http://ots.test", **UNLIMITED}
    if store_kind == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


def open_store(env: dict[str, str]) -> EmbeddedStore:
    settings = Settings.from_env(env)
    store = make_backend(settings, open_app_store(settings), scrypt_n=SLOW_SCRYPT_N)
    assert isinstance(store, EmbeddedStore)
    return store


async def reveal(session: aiohttp.ClientSession, url: str, shared: Shared) -> Outcome:
    form = {"passphrase": shared.passphrase} if shared.passphrase else {}
    try:
        async with session.post(f"{url}/secret/{shared.secret_key}", data=form) as response:
            return Outcome(shared, response.status, await response.text(), time.monotonic())
    except aiohttp.ClientConnectionError:
        return Outcome(shared, None, "", time.monotonic())


async def reveal_under_sigterm(
    server: ServerProcess, slow: list[Shared], stream: list[Shared]
) -> tuple[list[Outcome], list[Outcome], float]:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:
        first_answer = asyncio.Event()

        async def slow_reveal(shared: Shared) -> Outcome:
            outcome = await reveal(session, server.url, shared)
            first_answer.set()
            return outcome

        pending = list(reversed(stream))

        async def stream_worker() -> list[Outcome]:
            outcomes: list[Outcome] = []
            while pending:
                outcome = await reveal(session, server.url, pending.pop())
                outcomes.append(outcome)
                if outcome.status is None:
                    break  # the server is gone; what is left stays unrevealed
                await asyncio.sleep(STREAM_PAUSE)
            return outcomes

        slow_tasks = [asyncio.create_task(slow_reveal(s)) for s in slow]
        workers = [asyncio.create_task(stream_worker()) for _ in range(STREAM_WORKERS)]
        await asyncio.wait_for(first_answer.wait(), timeout=30)
        signalled_at = time.monotonic()
        server.terminate()
        slow_outcomes = list(await asyncio.gather(*slow_tasks))
        stream_outcomes = [o for batch in await asyncio.gather(*workers) for o in batch]
    return slow_outcomes, stream_outcomes, signalled_at


async def reveal_all_again(url: str, shared: list[Shared]) -> dict[str, Outcome]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        outcomes = await asyncio.gather(*(reveal(session, url, s) for s in shared))
    return {o.shared.secret_key: o for o in outcomes}


async def receipt_states(env: dict[str, str], shared: list[Shared]) -> set[str]:
    store = open_store(env)
    try:
        return {(await store.receipt(s.metadata_key)).state for s in shared}
    finally:
        await store.close()


async def share_both(env: dict[str, str]) -> tuple[list[Shared], list[Shared]]:
    store = open_store(env)
    try:
        return (
            await share_many(store, SLOW_REVEALS, True),
            await share_many(store, STREAM_SECRETS, False),
        )
    finally:
        await store.close()


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_sigterm_finishes_in_flight_reveals_and_loses_nothing(
    store_env: dict[str, str], tmp_path: Path, workers: int
) -> None:
    slow, stream = asyncio.run(share_both(store_env))

    server = ServerProcess.python_m_bot(
        store_env, tmp_path / "first.log", workers=workers
    ).start()
    try:
        slow_outcomes, stream_outcomes, signalled_at = asyncio.run(
            reveal_under_sigterm(server, slow, stream)
        )
        exit_code = server.wait(timeout=30)
    finally:
        server.stop()

    # Every slow reveal was in flight at SIGTERM and still got its secret...
    for outcome in slow_outcomes:
        assert outcome.status == 200, outcome.status
        assert outcome.shared.value in outcome.body
    # ...and some answered after the signal: the test really caught requests in flight.
    assert any(o.at > signalled_at for o in slow_outcomes)
    # The stream saw answers, then refused connections; never an error page.
    assert {o.status for o in stream_outcomes} <= {200, None}
    assert any(o.status == 200 for o in stream_outcomes)
    log = server.log()
    # uvicorn re-raises the signal once it has shut down, as process managers expect.
    assert exit_code in (0, -signal.SIGTERM), log[-3000:]
    assert log.count("Application shutdown complete") == workers, log[-3000:]
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]

    delivered = {o.shared.secret_key for o in (*slow_outcomes, *stream_outcomes)
                 if o.status == 200}
    everything = [*slow, *stream]
    with ServerProcess.python_m_bot(store_env, tmp_path / "second.log") as again:
        after = asyncio.run(reveal_all_again(again.url, everything))
    for shared in everything:
        outcome = after[shared.secret_key]
        if shared.secret_key in delivered:
            assert outcome.status == 404  # never twice
        else:
            assert outcome.status == 200  # never lost
            assert shared.value in outcome.body
    # The restart delivered what the stream did not reach before the shutdown.
    assert len(delivered) < len(everything)
    assert asyncio.run(receipt_states(store_env, everything)) == {"received"}
