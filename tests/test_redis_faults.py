"""Faults of a real Redis under a real app: readiness, a frozen server, a full one,
and a master killed under load on Redis Cluster and on Sentinel.

Each test starts what it breaks (its own redis-server) or, for the failovers, breaks
the session's cluster or sentinel setup and restores it before it ends (the killed
node comes back as a replica). The app runs in-process (uvicorn on 127.0.0.1, port
0) and is asked over HTTP, as a load balancer and clients would.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.errors import StoreFull
from bot.web.app import create_app
from tests.support.redis_topologies import (
    RedisClusterSetup,
    RedisProcess,
    SentinelSetup,
    wait_until,
)
from tests.support.servers import TEST_SERVER_KEY, ServedApp

MAY_BE_USED_UP = "may have been used up"


def redis_process(workdir: Path, *extra: str) -> RedisProcess:
    node = RedisProcess(workdir, ["--save", "", "--appendonly", "no", *extra])
    node.start()
    return node


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    node = redis_process(tmp_path / "redis", "--maxmemory-policy", "noeviction")
    try:
        yield node
    finally:
        node.stop()


@contextmanager
def app_on(redis_url: str | None, data_dir: Path, **env: str) -> Iterator[ServedApp]:
    settings = {"DATA_DIR": str(data_dir), "PUBLIC_URL": "http://ots.test", **env}
    if redis_url:
        settings["REDIS_URL"] = redis_url
    with ServedApp(create_app(Settings.from_env(settings))) as served:
        yield served


def url_of(node: RedisProcess) -> str:
    return f"redis://127.0.0.1:{node.port}/0"


def readyz(served: ServedApp) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = httpx.get(f"{served.url}/readyz", timeout=10)
    return response.status_code, response.json(), time.monotonic() - started


def assert_not_ready(served: ServedApp, reason: str) -> None:
    status, body, took = readyz(served)
    assert (status, body) == (503, {"status": "not ready", "reason": reason})
    assert took < 3.5
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # liveness stays


def assert_ready(served: ServedApp) -> None:
    status, body, _ = readyz(served)
    assert (status, body) == (200, {"status": "ready"})


def share(client: httpx.Client, base: str, value: str) -> httpx.Response:
    return client.post(f"{base}/api/v1/share", data={"secret": value, "ttl": "600"})


# -- readiness ----------------------------------------------------------------


def test_readyz_says_why_redis_takes_no_writes_and_recovers(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    other = redis_process(tmp_path / "other")
    admin = own_redis.client()
    try:
        with app_on(url_of(own_redis), tmp_path / "data", REDIS_TIMEOUT="1") as served:
            assert_ready(served)

            admin.config_set("maxmemory", 1)
            assert_not_ready(served, "out of memory")
            admin.config_set("maxmemory", 0)
            assert_ready(served)

            admin.replicaof("127.0.0.1", other.port)  # now a read-only replica
            assert_not_ready(served, "read-only")
            admin.replicaof("NO", "ONE")
            assert_ready(served)

            own_redis.signal(signal.SIGSTOP)  # hangs: the probe must not
            try:
                assert_not_ready(served, "unreachable")
            finally:
                own_redis.signal(signal.SIGCONT)
            wait_until(lambda: readyz(served)[0] == 200, 10, "ready after SIGCONT")

            own_redis.stop()
            assert_not_ready(served, "unreachable")
            own_redis.start()
            wait_until(lambda: readyz(served)[0] == 200, 10, "ready after a restart")
    finally:
        admin.close()
        other.stop()


def test_readyz_says_moved_when_pointed_at_a_cluster_replica(
    redis_cluster: RedisClusterSetup, tmp_path: Path
) -> None:
    redis_cluster.wait_healthy()
    masters = redis_cluster.masters()
    replica = next(n for n in redis_cluster.nodes if n not in masters)
    with app_on(url_of(replica), tmp_path / "data") as served:
        assert_not_ready(served, "moved")


def test_readyz_on_sqlite_says_not_writable_and_disk_full(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("DATA_DIR cannot be a directory under a file")
    # With the server key given (else its file in DATA_DIR stops start-up first).
    with app_on(None, blocked / "data", SERVER_KEY=TEST_SERVER_KEY) as served:
        assert_not_ready(served, "not writable")

    with app_on(None, tmp_path / "data") as served:
        assert_ready(served)
        storage = served.app.state.store.storage
        # SQLite's own limit on the file's size: the same SQLITE_FULL a full disk gives.
        served.call(storage._run(lambda c: c.execute("PRAGMA max_page_count = 1")))
        with pytest.raises(StoreFull):
            for i in range(1000):  # fill the pages the file has
                served.call(storage.put(f"fill-{i}", b"x" * 500, 60))
        assert_not_ready(served, "disk full")
        served.call(storage._run(lambda c: c.execute("PRAGMA max_page_count = 1000000")))
        assert_ready(served)


# -- replicas and configuration ---------------------------------------------------------


def test_a_create_is_acknowledged_only_once_a_replica_has_it(tmp_path: Path) -> None:
    master = redis_process(tmp_path / "master")
    replica = redis_process(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
    admin = master.client()
    try:
        wait_until(lambda: admin.info("replication").get("slave0", {}).get("state") == "online",
                   10, "a replica in sync")
        with app_on(url_of(master), tmp_path / "data", REDIS_WAIT_REPLICAS="1",
                    REDIS_WAIT_MS="1500") as served, httpx.Client(timeout=30) as client:
            assert share(client, served.url, "copied").status_code == 200

            replica.signal(signal.SIGSTOP)  # connected, but acknowledges nothing
            try:
                before = admin.dbsize()
                refused = share(client, served.url, "not-copied")
                assert refused.status_code == 503, refused.text
                assert "replica" in refused.json()["message"]
                # What was not acknowledged is not kept (the receipt may stay, orphaned).
                assert not any(admin.get(k) and b"not-copied" in admin.get(k)
                               for k in admin.keys("ots:*"))
                assert admin.dbsize() <= before + 1
            finally:
                replica.signal(signal.SIGCONT)
            assert share(client, served.url, "copied again").status_code == 200

            replica.stop()  # no replica at all: nothing to wait for
            wait_until(lambda: admin.info("replication")["connected_slaves"] == 0, 10,
                       "the replica gone")
            assert share(client, served.url, "alone").status_code == 200
    finally:
        admin.close()
        replica.stop()
        master.stop()


def test_start_up_warns_about_eviction_and_missing_persistence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = redis_process(tmp_path / "redis", "--maxmemory-policy", "allkeys-lru")
    try:
        with caplog.at_level("WARNING", logger="bot"), app_on(url_of(node), tmp_path / "data"):
            wait_until(lambda: len(caplog.records) >= 2, 10, "the start-up warnings")
        said = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        assert "maxmemory-policy is allkeys-lru" in said and "noeviction" in said
        assert "persistence is off" in said and "appendonly yes" in said
    finally:
        node.stop()
    caplog.clear()
    node = redis_process(tmp_path / "good", "--maxmemory-policy", "noeviction",
                         "--appendonly", "yes")
    try:
        with caplog.at_level("WARNING", logger="bot"), app_on(url_of(node), tmp_path / "d2") as s:
            assert_ready(s)
            time.sleep(0.5)
        assert not [r for r in caplog.records if "Redis" in r.getMessage()]
    finally:
        node.stop()


# -- a full Redis -----------------------------------------------------------------


def test_a_full_redis_still_reveals_and_burns(own_redis: RedisProcess, tmp_path: Path) -> None:
    admin = own_redis.client()
    with app_on(url_of(own_redis), tmp_path / "data") as served, httpx.Client() as client:
        assert_ready(served)
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", used + 300_000)
        kept: list[tuple[str, str, str]] = []
        refused = None
        for _ in range(200):
            value = secrets.token_hex(2000)
            response = share(client, served.url, value)
            if response.status_code != 200:
                refused = response
                break
            kept.append((response.json()["secret_key"], response.json()["metadata_key"], value))
        assert refused is not None and len(kept) >= 10
        assert refused.status_code == 503 and "full" in refused.json()["message"]
        # Memory hovers at the limit (a small write may still fit): hold it clearly over.
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) - 30_000)
        assert_not_ready(served, "out of memory")

        # A key made before slot tags (31 characters) takes the old steps: its count,
        # refused like any write, does not stand in its way either.
        old = client.post(f"{served.url}/api/v1/secret/{'k' * 31}")
        assert old.status_code == 404 and old.json()["message"] == "Unknown secret"

        # Reveals (page and API) and burns go on while Redis refuses writes.
        for i, (secret_key, metadata_key, value) in enumerate(kept):
            if i % 3 == 0:
                answer = client.post(f"{served.url}/secret/{secret_key}")
                assert answer.status_code == 200 and value in answer.text
            elif i % 3 == 1:
                answer = client.post(f"{served.url}/api/v1/secret/{secret_key}")
                assert answer.status_code == 200 and answer.json()["value"] == value
            else:
                answer = client.post(f"{served.url}/api/v1/private/{metadata_key}/burn")
                assert answer.status_code == 200, answer.text
                gone = client.post(f"{served.url}/api/v1/secret/{secret_key}")
                assert gone.status_code == 404

        # Drained: writes are taken again.
        assert_ready(served)
        assert share(client, served.url, "again").status_code == 200
    admin.close()


# -- a frozen Redis -----------------------------------------------------------------


@pytest.mark.slow
def test_a_frozen_redis_never_reports_a_consumed_secret_as_untouched(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    """SIGSTOP for longer than reveals wait (2 × REDIS_TIMEOUT): GETDELs sent to the
    frozen server run when it wakes, after the app gave up waiting. Each such reveal
    must have said the secret may have been used up, never "nothing was revealed"."""
    admin = own_redis.client()
    # No reveal rate limit: its counter would be the first command to hang, and the
    # GETDEL, the command this is about, would never be sent.
    with app_on(url_of(own_redis), tmp_path / "data", REDIS_TIMEOUT="1",
                RATE_LIMIT_REVEAL="0") as served, httpx.Client(
                    timeout=30, limits=httpx.Limits(max_connections=50)) as client:
        shared = []
        for i in range(24):
            body = share(client, served.url, f"frozen-{i}").json()
            shared.append((body["secret_key"], f"frozen-{i}"))
        answers: dict[str, httpx.Response] = {}
        # One reveal first, as on any running server: Redis then knows the reveal's
        # script, and the frozen server's queued calls run it (rather than answer
        # NOSCRIPT, which takes nothing) when it wakes.
        warm = share(client, served.url, "warm").json()["secret_key"]
        assert client.post(f"{served.url}/api/v1/secret/{warm}").status_code == 200

        def reveal(index: int, secret_key: str) -> None:
            path = "/secret/" if index % 2 else "/api/v1/secret/"
            answers[secret_key] = client.post(f"{served.url}{path}{secret_key}")

        own_redis.signal(signal.SIGSTOP)
        try:
            threads = [threading.Thread(target=reveal, args=(i, key))
                       for i, (key, _) in enumerate(shared)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            assert_not_ready(served, "unreachable")
            time.sleep(3.0)  # past the reveals' 2 s
        finally:
            own_redis.signal(signal.SIGCONT)
        for thread in threads:
            thread.join(30)
        wait_until(lambda: readyz(served)[0] == 200, 10, "ready after SIGCONT")

        consumed_unknown = 0
        for secret_key, value in shared:
            answer = answers[secret_key]
            assert answer.status_code in (200, 503), answer.text
            # GET never consumes: 200 while the secret is still there, 404 once gone.
            still_there = client.get(f"{served.url}/secret/{secret_key}").status_code == 200
            if answer.status_code == 200:
                assert value in answer.text
                assert not still_there
            elif not still_there:
                # Consumed while the client was waiting: it must have been told so.
                assert MAY_BE_USED_UP in answer.text, answer.text
                consumed_unknown += 1
            else:
                again = client.post(f"{served.url}/api/v1/secret/{secret_key}")
                assert again.status_code == 200 and again.json()["value"] == value
        # The case the test is about happened: secrets were consumed unseen.
        assert consumed_unknown > 0
    admin.close()


# -- failovers under load ------------------------------------------------------------


@dataclass
class Load:
    """Creates and reveals through the API on two threads while a node fails."""

    base: str
    statuses: list[int] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # acknowledged: key -> value
    revealed: dict[str, int] = field(default_factory=dict)  # key -> times delivered
    unknown: set[str] = field(default_factory=set)  # told "may have been used up"
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                value = secrets.token_hex(8)
                response = share(client, self.base, value)
                self.statuses.append(response.status_code)
                if response.status_code != 200:
                    time.sleep(0.05)
                    continue
                key = response.json()["secret_key"]
                self.created[key] = value
                self.reveal(client, key)

    def reveal(self, client: httpx.Client, key: str) -> None:
        answer = client.post(f"{self.base}/api/v1/secret/{key}")
        self.statuses.append(answer.status_code)
        if answer.status_code == 200:
            assert answer.json()["value"] == self.created[key]
            self.revealed[key] = self.revealed.get(key, 0) + 1
        elif answer.status_code == 503 and MAY_BE_USED_UP in answer.text:
            self.unknown.add(key)


def fail_over_under_load(served: ServedApp, kill: Callable[[], None]) -> None:
    """Acknowledged secrets before and during the failure, all delivered exactly once
    after it; no 500 ever; /readyz 503 during and 200 after, without a restart."""
    load = Load(served.url)
    with httpx.Client(timeout=30) as client:
        before = {}
        for i in range(40):
            response = share(client, served.url, f"before-{i}")
            assert response.status_code == 200
            before[response.json()["secret_key"]] = f"before-{i}"
        load.created.update(before)
        threads = [threading.Thread(target=load.run) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            kill()
            wait_until(lambda: readyz(served)[0] == 503, 10, "readyz 503 after the kill")
            killed_at = time.monotonic()
            wait_until(lambda: readyz(served)[0] == 200, 30, "readyz 200 after promotion")
            recovered_in = time.monotonic() - killed_at
            time.sleep(1.0)  # served for a while after the promotion
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(60)
        assert 500 not in load.statuses and all(
            s in (200, 404, 503) for s in load.statuses), sorted(set(load.statuses))
        assert 503 in load.statuses  # the failure was seen...
        assert recovered_in < 15  # seconds from the kill: detection, election, relearning
        # ... and afterwards the service works, without a restart.
        for key, value in load.created.items():
            if load.revealed.get(key):
                continue
            answer = client.post(f"{served.url}/api/v1/secret/{key}")
            # An acknowledged secret is never lost. Only a reveal that was told "may
            # have been used up" (its GETDEL sent as the node died) may have taken it.
            if key in load.unknown and answer.status_code == 404:
                continue
            assert answer.status_code == 200, (answer.status_code, answer.text)
            assert answer.json()["value"] == value
            load.revealed[key] = 1
        assert all(times == 1 for times in load.revealed.values())
        after = share(client, served.url, "after")
        assert after.status_code == 200, after.text


@pytest.mark.slow
def test_a_cluster_master_killed_under_load_loses_nothing(
    redis_cluster: RedisClusterSetup, cluster_url: str, tmp_path: Path
) -> None:
    victim = redis_cluster.masters()[0]
    try:
        with app_on(cluster_url, tmp_path / "data", REDIS_TIMEOUT="1",
                    REDIS_WAIT_MS="1000") as served:
            assert_ready(served)
            fail_over_under_load(served, victim.kill)
    finally:
        if not victim.alive:
            victim.start()  # rejoins as a replica of the promoted one
        redis_cluster.wait_healthy(60)


@pytest.mark.slow
def test_the_sentinel_master_killed_under_load_loses_nothing(
    redis_sentinel: SentinelSetup, sentinel_url: str, tmp_path: Path
) -> None:
    victim = redis_sentinel.master()

    def kill_and_bring_back_empty() -> None:
        victim.kill()

    try:
        with app_on(sentinel_url, tmp_path / "data", REDIS_TIMEOUT="1",
                    REDIS_WAIT_MS="1000") as served:
            assert_ready(served)
            fail_over_under_load(served, kill_and_bring_back_empty)
            # The old master comes back empty, thinking it is a master: the app must
            # not write to it (the sentinels name the new one), nothing is lost.
            victim.start()
            with httpx.Client() as client:
                for i in range(5):
                    value = f"after-restart-{i}"
                    response = share(client, served.url, value)
                    assert response.status_code in (200, 503)
                    if response.status_code == 200:
                        key = response.json()["secret_key"]
                        answer = client.post(f"{served.url}/api/v1/secret/{key}")
                        assert answer.status_code == 200 and answer.json()["value"] == value
                    time.sleep(0.1)
    finally:
        if not victim.alive:
            victim.start()
        redis_sentinel.wait_healthy(60)


# -- Slack ------------------------------------------------------------------------------


@pytest.mark.slow
def test_reveal_in_slack_on_a_frozen_redis_says_the_secret_may_be_used_up(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    from bot.slack import ids
    from tests.support.slack_world import new_user, share_values, slack_world

    with slack_world("redis", tmp_path / "slack", url_of(own_redis),
                     REDIS_TIMEOUT="1") as world:
        alice, bob = new_user(), new_user()
        _, response_url, trigger = world.command("", user=alice)
        view = world.opened_view(trigger)
        world.submit(view, share_values(secret="frozen-in-slack", recipients=(bob,)),
                     user=alice)
        world.replies(response_url)
        dm = world.dms(bob)[0]
        _, _, trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}")
        modal = world.opened_view(trigger)

        own_redis.signal(signal.SIGSTOP)
        try:
            view_id = world.fake.view_ids[trigger]
            answer = world.submit(modal, {}, user=bob, view_id=view_id).json()
            told = json.dumps(answer)
            if MAY_BE_USED_UP not in told:  # the ack said "Revealing…": the update tells
                told = json.dumps(world.updated_views(view_id))
        finally:
            time.sleep(2.5)  # the GETDEL is queued in the frozen server's socket
            own_redis.signal(signal.SIGCONT)
        assert MAY_BE_USED_UP in told
        assert "frozen-in-slack" not in told
