"""Installations of the app in many workspaces, kept in the app store.

Distribution mode ("Add to Slack") needs two kinds of state that Bolt keeps
through interfaces of slack-sdk's: installations (bot tokens, refresh tokens)
and OAuth `state` values. Both are written here for our `Storage` contract, so
they live in the same SQLite file or Redis as everything else and are shared by
every worker and replica:

- An installation is one record per workspace (or per organisation, for an
  Enterprise Grid org-wide install), named by a keyed hash of its ids and
  sealed under the server key: a copy of the store holds no token and does not
  say which workspaces use the app. Saving is compare-and-set, so a token
  refresh racing another one never resurrects an older token.
- A `state` is a one-time value: issued with put-if-absent and an expiry,
  consumed with an atomic take, so a replayed callback fails even on another
  replica.

Tokens never reach a log line: records are sealed before storage sees them and
errors name only their kind.
"""

from __future__ import annotations

import json
import logging
import secrets as _random
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.appstore import AppStore
from bot.errors import BackendError
from bot.serverkey import Unsealable

log = logging.getLogger(__name__)

# Installations do not expire on their own; storage wants a lifetime all the same.
INSTALLATION_TTL = 10 * 365 * 86400
_SAVE_ATTEMPTS = 20


def _scope(enterprise_id: str | None, team_id: str | None, org_wide: bool) -> str:
    # An org-wide install serves every workspace of the organisation: one record
    # for the enterprise, whatever workspace a request comes from.
    return f"{enterprise_id or '-'}:{'*' if org_wide else team_id or '-'}"


class StoredInstallations(AsyncInstallationStore):
    """Bolt's installation store on the app store, bot tokens only."""

    def __init__(self, store: AppStore) -> None:
        self._storage = store.storage
        self._key = store.key

    @property
    def logger(self) -> logging.Logger:
        return log

    def _record_id(self, enterprise_id: str | None, team_id: str | None, org_wide: bool) -> str:
        return self._key.hash_id("install:", _scope(enterprise_id, team_id, org_wide))

    async def async_save(self, installation: Installation) -> None:
        org_wide = bool(installation.is_enterprise_install)
        record_id = self._record_id(installation.enterprise_id, installation.team_id, org_wide)
        data = _installation_data(installation)
        await self._write(record_id, data)

    async def async_save_bot(self, bot: Bot) -> None:
        # Bolt calls this after a token refresh: keep the installation, new tokens.
        org_wide = bool(bot.is_enterprise_install)
        record_id = self._record_id(bot.enterprise_id, bot.team_id, org_wide)
        current = await self._read(record_id)
        data = dict(current) if current else {}
        data.update({
            "app_id": bot.app_id, "enterprise_id": bot.enterprise_id,
            "enterprise_name": bot.enterprise_name, "team_id": bot.team_id,
            "team_name": bot.team_name, "bot_token": bot.bot_token, "bot_id": bot.bot_id,
            "bot_user_id": bot.bot_user_id, "bot_scopes": ",".join(bot.bot_scopes),
            "bot_refresh_token": bot.bot_refresh_token,
            "bot_token_expires_at": bot.bot_token_expires_at,
            "is_enterprise_install": org_wide, "installed_at": bot.installed_at,
        })
        await self._write(record_id, data)

    async def _write(self, record_id: str, data: dict[str, Any]) -> None:
        sealed = self._key.seal(json.dumps(data).encode(), record_id.encode())
        for _ in range(_SAVE_ATTEMPTS):
            old = await self._storage.get(record_id)
            if old is None:
                if await self._storage.put(record_id, sealed, INSTALLATION_TTL):
                    return
            elif await self._storage.replace(record_id, old, sealed):
                return
        raise BackendError("The installation is changing too fast; try again.")

    async def _read(self, record_id: str) -> dict[str, Any] | None:
        raw = await self._storage.get(record_id)
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(self._key.open(raw, record_id.encode()))
        except Unsealable:
            log.error("an installation was sealed under another SERVER_KEY: reinstall the app")
            return None
        return data

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> dict[str, Any] | None:
        if is_enterprise_install:
            return await self._read(self._record_id(enterprise_id, None, True))
        found = await self._read(self._record_id(enterprise_id, team_id, False))
        if found is None and enterprise_id:
            # A workspace of an organisation where the app was installed org-wide.
            found = await self._read(self._record_id(enterprise_id, None, True))
        return found

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        data = await self._find(enterprise_id, team_id, is_enterprise_install)
        if data is None or not data.get("bot_token"):
            return None
        return Installation(**{"user_id": "", **data}).to_bot()

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        data = await self._find(enterprise_id, team_id, is_enterprise_install)
        if data is None or (user_id is not None and data.get("user_id") != user_id):
            return None
        return Installation(**{"user_id": "", **data})

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        # Only bot tokens are kept: a user's revoked token has nothing here to delete.
        if user_id is None:
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        # app_uninstalled from an org-wide install names the enterprise and no team.
        for org_wide in (False, True):
            if org_wide and not enterprise_id:
                continue
            await self._storage.delete(self._record_id(enterprise_id, team_id, org_wide))


def _installation_data(installation: Installation) -> dict[str, Any]:
    """What is kept: the bot's side of an installation (user tokens are never asked for)."""
    return {
        "app_id": installation.app_id,
        "enterprise_id": installation.enterprise_id,
        "enterprise_name": installation.enterprise_name,
        "enterprise_url": installation.enterprise_url,
        "team_id": installation.team_id,
        "team_name": installation.team_name,
        "bot_token": installation.bot_token,
        "bot_id": installation.bot_id,
        "bot_user_id": installation.bot_user_id,
        "bot_scopes": ",".join(installation.bot_scopes or ()),
        "bot_refresh_token": installation.bot_refresh_token,
        "bot_token_expires_at": installation.bot_token_expires_at,
        "user_id": installation.user_id,
        "is_enterprise_install": bool(installation.is_enterprise_install),
        "token_type": installation.token_type,
        "installed_at": installation.installed_at,
    }


class StoredStates(AsyncOAuthStateStore):
    """One-time OAuth `state` values in the app store."""

    def __init__(self, store: AppStore, expiration_seconds: int = 600) -> None:
        self._storage = store.storage
        self._key = store.key
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = _random.token_urlsafe(24)
        await self._storage.put(self._key.hash_id("oauth-state:", state), b"1",
                                self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        taken = await self._storage.take(self._key.hash_id("oauth-state:", state))
        return taken is not None
