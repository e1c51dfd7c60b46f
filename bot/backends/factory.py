"""Choosing and building the backend from settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.backends.crypto import SCRYPT_N
from bot.backends.embedded import EmbeddedStore
from bot.backends.onetimesecret import OnetimeSecretBackend, new_client
from bot.backends.storage import Storage
from bot.backends.storage.instrumented import InstrumentedStorage
from bot.backends.storage.redis_storage import MAX_CONNECTIONS, RedisStorage
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings

SQLITE_FILENAME = "secrets.sqlite3"


def make_storage(settings: Settings) -> Storage:
    """The app's store, counted and timed for /metrics."""
    if settings.redis_url:
        return InstrumentedStorage(
            RedisStorage.from_url(
                settings.redis_url,
                timeout=settings.redis_timeout,
                wait_replicas=settings.redis_wait_replicas,
                wait_ms=settings.redis_wait_ms,
            ),
            pool_size=MAX_CONNECTIONS,
        )
    return InstrumentedStorage(SQLiteStorage(settings.data_dir / SQLITE_FILENAME), pool_size=1)


def make_backend(
    settings: Settings, store: AppStore, *, scrypt_n: int = SCRYPT_N,
    clock: Callable[[], float] = time.time,
) -> SecretBackend:
    """The backend; the embedded one keeps its secrets in the app store."""
    if settings.uses_onetimesecret:
        return make_onetimesecret(settings)
    # scrypt_n is not a setting: only tests lower it (see tests/support/server_process.py).
    return EmbeddedStore(
        store.storage,
        server_key=store.key,
        public_url=settings.public_url,
        default_ttl=settings.default_ttl,
        max_ttl=settings.max_ttl,
        max_secret_bytes=settings.max_secret_bytes,
        passphrase_attempts=settings.passphrase_attempts,
        api_tokens={user.custid: user.token for user in settings.api_users},
        scrypt_n=scrypt_n,
        clock=clock,
    )


def make_onetimesecret(settings: Settings) -> OnetimeSecretBackend:
    """OTS_REGION or OTS_URL: secrets are kept by an Onetime Secret v1 server."""
    assert settings.ots_base_url is not None
    return OnetimeSecretBackend(
        new_client(),
        settings.ots_base_url,
        username=settings.ots_username,
        api_token=settings.ots_api_token,
        max_secret_bytes=settings.max_secret_bytes,
    )
