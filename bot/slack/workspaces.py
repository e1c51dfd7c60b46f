"""Which workspace a piece of Slack work is for, and that workspace's Web API client.

One deployment can serve many workspaces (distribution mode). Nothing global
holds a token: each request's workspace travels with it.

- For a request from Slack, Bolt's authorization has already resolved the
  workspace's bot token into `context.client`; `bind_request` (a Bolt
  middleware) puts that client and the team id into context variables, which
  asyncio copies into every task the listener starts. `Messenger` reads the
  client from there, so listeners need not pass it along.
- Work that does not start with a Slack request (a secret revealed on the web
  page, a receipt the watcher polled, a request link answered by a stranger)
  knows its workspace from the record it acts on and enters `acting_for(team)`,
  which looks the token up in the installation store.
- Values the app signs for Slack (bot/slack/trust.py) are bound to the current
  team: a button made in workspace A does not verify in workspace B.

With one workspace (SLACK_BOT_TOKEN) there is one client and one team, and all
of this reduces to what it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BackendError
from bot.slack.installs import StoredInstallations

log = logging.getLogger(__name__)

CURRENT_CLIENT: ContextVar[AsyncWebClient | None] = ContextVar("slack_client", default=None)
CURRENT_TEAM: ContextVar[str | None] = ContextVar("slack_team", default=None)


def current_team() -> str | None:
    return CURRENT_TEAM.get()


class NotInstalled(Exception):
    """No installation (any more) for the workspace asked for."""


class Workspaces:
    def __init__(
        self, default: AsyncWebClient, installations: StoredInstallations | None = None
    ) -> None:
        self._default = default
        self._installations = installations

    @property
    def distributed(self) -> bool:
        return self._installations is not None

    async def client_for(
        self, team_id: str | None, enterprise_id: str | None = None
    ) -> AsyncWebClient:
        if self._installations is None:
            return self._default
        try:
            bot = await self._installations.async_find_bot(
                enterprise_id=enterprise_id, team_id=team_id
            )
        except BackendError as exc:
            raise NotInstalled(f"the installation store failed: {type(exc).__name__}") from None
        if bot is None:
            raise NotInstalled("the app is not installed in that workspace")
        return AsyncWebClient(
            token=bot.bot_token,
            base_url=self._default.base_url,
            logger=self._default.logger,
            retry_handlers=self._default.retry_handlers,
        )

    @contextlib.asynccontextmanager
    async def acting_for(
        self, team_id: str | None, enterprise_id: str | None = None
    ) -> AsyncIterator[None]:
        """Work for one workspace outside a Slack request (raises NotInstalled)."""
        client = await self.client_for(team_id, enterprise_id)
        client_token = CURRENT_CLIENT.set(client)
        team_token = CURRENT_TEAM.set(team_id if self.distributed else None)
        try:
            yield
        finally:
            CURRENT_TEAM.reset(team_token)
            CURRENT_CLIENT.reset(client_token)

    async def bind_request(
        self, context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        """Bolt middleware: this request's client and team, for everything it starts.

        The team binds signed values only when there are several workspaces: with
        one, background work (a reveal on the web page) need not know its id."""
        CURRENT_CLIENT.set(context.client)
        CURRENT_TEAM.set(context.team_id if self.distributed else None)
        return await next()
