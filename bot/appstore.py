"""The app store: the app's own state, always present whichever backend keeps secrets.

Built once from REDIS_URL (Redis) or DATA_DIR (SQLite) with the same `Storage`
contract the embedded store uses, and handed to every layer that needs state of
the app's own: the replay guard, rate limits, receipt keys of Slack shares,
API users' `recent` lists. The embedded backend keeps its secrets in it too;
the Onetime Secret backend does not, but the store exists all the same.

It carries the server key (bot/serverkey.py), which seals what the store keeps
about people and authenticates what the app hands out and gets back.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.backends.storage import Storage
from bot.config import Settings
from bot.serverkey import ServerKey, key_file


@dataclass
class AppStore:
    storage: Storage
    key: ServerKey

    async def close(self) -> None:
        await self.storage.close()


def load_server_key(settings: Settings) -> ServerKey:
    """SERVER_KEY when set, else the key file in DATA_DIR (see bot/serverkey.py)."""
    if settings.server_key:
        return ServerKey(settings.server_key)
    return key_file(settings.data_dir)


def open_app_store(settings: Settings) -> AppStore:
    from bot.backends.factory import make_storage

    return AppStore(make_storage(settings), load_server_key(settings))
