from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium  # noqa: F401 (a fixture for every module)
from tests.support.fake_ots import FakeOTS
from tests.support.fake_slack import FakeSlack
from tests.support.redis_topologies import RedisClusterSetup, SentinelSetup, redis_url_for
from tests.support.server_process import APP_VARIABLES
from tests.support.servers import (
    TEST_SCRYPT_N,
    TEST_SERVER_KEY,
    RedisServer,
    ServedApp,
    redis_server,
)

_APP_VARIABLES = APP_VARIABLES


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell (or .env) must not change what the tests see."""
    for name in _APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_srv: RedisServer) -> Iterator[str]:
    """A real redis-server, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    client.close()
    yield redis_srv.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSetup]:
    """A real Redis Cluster: 3 masters, 3 replicas (started once, ~3 s)."""
    cluster = RedisClusterSetup(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A real Sentinel setup: a master, its replica and three sentinels."""
    setup = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterSetup) -> str:
    """REDIS_URL of the cluster, every master emptied (and healthy again after a fault test)."""
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def sentinel_url(redis_sentinel: SentinelSetup) -> str:
    redis_sentinel.wait_healthy()
    redis_sentinel.flush()
    return redis_sentinel.url


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    return path



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "any_backend: also run on the Onetime Secret backend (store_kind "
        "'onetimesecret', against the fake OTS server)")
    config.addinivalue_line(
        "markers", "embedded_only: needs the embedded store (e.g. the reveal page) even in "
        "an any_backend module")
    config.addinivalue_line(
        "markers", "redis_topologies: also run on Redis Cluster and Sentinel (store_kind "
        "'redis-cluster' and 'redis-sentinel')")
    config.addinivalue_line(
        "markers", "slow: a fault test that takes seconds (failovers, freezes); runs in CI too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The 'onetimesecret' kind runs only where a test opted in: most tests exercise
    the embedded store's own pages, API and storage."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("store_kind") if callspec is not None else None
        on_ots = kind == "onetimesecret"
        opted_in = item.get_closest_marker("any_backend") is not None
        if on_ots and (not opted_in or item.get_closest_marker("embedded_only") is not None):
            drop.append(item)
        elif kind in ("redis-cluster", "redis-sentinel") and (
            item.get_closest_marker("redis_topologies") is None
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=["sqlite", "redis", "onetimesecret", "redis-cluster", "redis-sentinel"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake_ots() -> Iterator[FakeOTS]:
    with FakeOTS() as fake:
        yield fake


@pytest.fixture
def app_env(store_kind: str, request: pytest.FixtureRequest, data_dir: Path,
            fake_slack: FakeSlack) -> dict[str, str]:
    """Environment of an app connected to the fake Slack, on the chosen store."""
    from tests.support.slack_requests import SIGNING_SECRET

    env = {
        "DATA_DIR": str(data_dir),
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "PUBLIC_URL": "http://ots.test",
    }
    url = redis_url_for(store_kind, request)
    if url is not None:
        env["REDIS_URL"] = url
        env["SERVER_KEY"] = TEST_SERVER_KEY
    if store_kind == "onetimesecret":
        from tests.support import fake_ots

        env["OTS_URL"] = request.getfixturevalue("fake_ots").url
        env["OTS_USERNAME"], env["OTS_API_TOKEN"] = fake_ots.USERNAME, fake_ots.API_TOKEN
    return env


@pytest.fixture
def served(app_env: dict[str, str]) -> Iterator[ServedApp]:
    """The whole application, built from settings as `python -m bot` builds it."""
    from bot.config import Settings
    from bot.web.app import create_app

    settings = Settings.from_env(app_env)
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
        yield server
