"""Socket Mode: connecting to Slack in the background, so the web side never waits for it.

slack-sdk's `SocketModeClient.connect()` retries forever, every 10 s, logging a
traceback each time, and Bolt's handler awaits it during start-up: with a
rejected app token or an unreachable Slack the web side (reveal links,
`/healthz`, `/api/v1`) never came up and SIGTERM could not stop the process.
Here the app starts serving first and `SocketModeConnection.run` connects as a
background task:

- each `connect()` is one attempt (`_OneAttemptClient`); retries are this
  module's, with a bounded backoff (1 s, doubling up to `MAX_BACKOFF`);
- a token Slack rejects (`invalid_auth`, `token_revoked`, …) is one ERROR line
  and no more attempts: retrying cannot fix it;
- "Slack connected (Socket Mode)" is logged once a websocket is open, and a
  connection that drops is opened again the same way;
- cancelling the task (at shutdown) closes the client at once.

Log lines name Slack's error code or the exception type only, never a URL (a
Socket Mode URL carries a ticket) or a token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.logs import framework_logger

log = logging.getLogger("bot")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
CHECK_INTERVAL = 1.0  # how often an open connection is checked
STABLE_SECONDS = 30.0  # a connection that lasted this long resets the backoff
# Slack's answers to apps.connections.open that no retry can change.
REJECTED = frozenset({
    "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
    "not_allowed_token_type", "missing_scope", "no_permission",
})


class TokenRejected(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class _OneAttemptClient(SocketModeClient):
    """slack-sdk's aiohttp client, with `connect()` made one attempt that raises on failure.

    Reconnecting is left to `SocketModeConnection` (auto_reconnect is off), so
    there is one retry policy and it backs off.
    """

    async def issue_new_wss_url(self) -> str:
        # slack-sdk's own version logs the whole error response at ERROR first.
        try:
            response = await self.web_client.apps_connections_open(app_token=self.app_token)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            if error in REJECTED:
                raise TokenRejected(error) from None
            raise
        return str(response["url"])

    async def connect(self) -> None:
        async with self.connect_operation_lock:
            if self.current_session is not None and not self.current_session.closed:
                await self.current_session.close()
            for task in (self.current_session_monitor, self.message_receiver):
                if task is not None:
                    task.cancel()
            self.wss_uri = await self.issue_new_wss_url()
            ssl = self.web_client.ssl if self.web_client.ssl is not None else True
            self.current_session = await self.aiohttp_client_session.ws_connect(
                self.wss_uri, autoping=False, heartbeat=self.ping_interval,
                proxy=self.proxy, ssl=ssl,
            )
            self.stale = False
            self.last_ping_pong_time = None
            self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
            self.message_receiver = asyncio.ensure_future(self.receive_messages())


class SocketModeConnection:
    def __init__(
        self,
        bolt: AsyncApp,
        app_token: str,
        *,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        ping_interval: float = 10.0,
    ) -> None:
        self.bolt = bolt
        self.app_token = app_token
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.ping_interval = ping_interval

    async def run(self) -> None:
        # Built here: the client starts a task in its constructor, so it needs the loop.
        client = _OneAttemptClient(
            app_token=self.app_token,
            logger=framework_logger(),
            web_client=self.bolt.client,
            auto_reconnect_enabled=False,
            ping_interval=self.ping_interval,
        )
        client.socket_mode_request_listeners.append(self._handle)
        try:
            await self._keep_connected(client)
        finally:
            await client.close()  # type: ignore[no-untyped-call]

    async def _handle(self, client: Any, request: SocketModeRequest) -> None:
        start = asyncio.get_running_loop().time()
        response = await run_async_bolt_app(self.bolt, request)
        await send_async_response(client, request, response, start)

    async def _keep_connected(self, client: _OneAttemptClient) -> None:
        delay, connected_before = self.first_backoff, False
        loop = asyncio.get_running_loop()
        while True:
            try:
                await client.connect()
            except TokenRejected as exc:
                log.error(
                    "Slack rejected SLACK_APP_TOKEN (%s): Slack is not connected. Set an "
                    "app-level token (xapp-…, scope connections:write) and restart; "
                    "links and the web side keep working meanwhile", exc.error,
                )
                return
            except SlackApiError as exc:
                error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
                log.warning("Slack refused a Socket Mode connection (%s); trying again in "
                            "%g s", error, delay)
            except Exception as exc:  # aiohttp, OSError, a bad answer: all worth a retry
                log.warning("Slack could not be reached for Socket Mode (%s); trying again "
                            "in %g s", type(exc).__name__, delay)
            else:
                log.info("Slack %s (Socket Mode)",
                         "reconnected" if connected_before else "connected")
                connected_before, since = True, loop.time()
                # slack-sdk offers no event for "connection gone", only this check.
                while await client.is_connected():  # noqa: ASYNC110
                    await asyncio.sleep(CHECK_INTERVAL)
                if loop.time() - since > STABLE_SECONDS:
                    delay = self.first_backoff  # a connection that held: start over
                log.warning("the Socket Mode connection to Slack was lost; reconnecting in "
                            "%g s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
