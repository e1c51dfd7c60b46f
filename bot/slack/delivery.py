"""Talking to Slack: the one boundary where Slack API failures become `SlackFailure`.

Every call that posts, opens or updates something goes through `Messenger`, so
each failure Slack can answer (`expired_trigger_id`, `channel_not_found`,
`not_in_channel`, `cannot_dm_bot`, `user_disabled`, `ratelimited`, an
unreachable Slack) is translated once and logged with its error code only,
never with the message body. A 429 with a short `Retry-After` is retried after
that many seconds; a long one fails fast so no listener hangs for minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import metrics
from bot.slack.lang import N_, Languages, _
from bot.slack.trust import ResponseUrls
from bot.slack.workspaces import CURRENT_CLIENT

log = logging.getLogger(__name__)

MAX_RETRY_WAIT = 10  # seconds; longer Retry-After answers fail instead of blocking
# Said to a person (in their language, at the moment `reason` is read); the codes
# themselves, and log lines, stay Slack's and English.
_REASONS = {
    "cannot_dm_bot": N_("they are a bot, and bots cannot receive secrets"),
    "user_disabled": N_("their account is deactivated"),
    "account_inactive": N_("their account is deactivated"),
    "user_not_found": N_("they are not a member of this workspace"),
    "ratelimited": N_("Slack is rate-limiting the app; try again in a minute"),
}


class SlackFailure(Exception):
    """Slack said no (or could not be reached). `error` is Slack's code; no body is kept."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error

    @property
    def reason(self) -> str:
        """Why a person could not be messaged, as a clause after their name, in the
        reader's language (English outside Slack: the API's strings stay English)."""
        known = _REASONS.get(self.error)
        if known is not None:
            return _(known)
        return _("Slack would not deliver the message ({error})", error=self.error)


class ShortRetryAfter(AsyncRateLimitErrorRetryHandler):
    """Retry a 429 after its Retry-After, unless Slack asks for a long wait."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        headers = {k.lower(): v for k, v in response.headers.items()}
        wait = (headers.get("retry-after") or ["1"])[0]
        return wait.isdigit() and int(wait) <= MAX_RETRY_WAIT


def retry_handlers() -> list[AsyncRetryHandler]:
    return [ShortRetryAfter(max_retry_count=2)]


@dataclass(frozen=True)
class Origin:
    """Where a request came from, so the answer can go back there. Never holds a secret."""

    response_url: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class Told:
    """Where a private answer went: "response_url", "ephemeral", "dm" or "window"."""

    how: str
    response_url: str | None = None
    view_id: str | None = None
    channel: str | None = None
    ts: str | None = None


def ephemeral(payload: dict[str, Any]) -> dict[str, Any]:
    # One-time links must not be fetched by Slack's unfurler.
    return {**payload, "unfurl_links": False, "unfurl_media": False}


class Messenger:
    def __init__(self, client: AsyncWebClient, response_urls: ResponseUrls) -> None:
        self.client = client
        self.response_urls = response_urls
        # Each user's language, for the text built for them (bot/slack/lang.py).
        self.languages = Languages(self.user_locale)

    def _client(self) -> AsyncWebClient:
        # The current workspace's client (bot/slack/workspaces.py); the app's own
        # client when there is one workspace.
        return CURRENT_CLIENT.get() or self.client

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """A Web API call with a JSON body (conversations.* take forms: see open_dm)."""
        return await self._guard(method, self._client().api_call(method, json=kwargs))

    async def _guard(
        self, method: str, pending: Awaitable[AsyncSlackResponse], *, quiet: bool = False
    ) -> dict[str, Any]:
        """The call's answer, or SlackFailure with Slack's error code (counted, and logged
        unless the caller logs its own consequence: `quiet`)."""
        report = log.debug if quiet else log.warning
        try:
            response = await pending
        except SlackApiError as exc:
            error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            report("Slack %s failed: %s", method, error)
            metrics.slack_api_error(method, error)
            raise SlackFailure(error) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            report("Slack %s failed: %s", method, type(exc).__name__)
            metrics.slack_api_error(method, "slack_unreachable")
            raise SlackFailure("slack_unreachable") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal; returns its view id."""
        answer = await self.call("views.open", trigger_id=trigger_id, view=view)
        return str(answer["view"]["id"])

    async def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        await self.call("views.update", view_id=view_id, view=view)

    async def open_dm(self, user_id: str) -> str:
        answer = await self._guard(
            "conversations.open", self._client().conversations_open(users=user_id)
        )
        return str(answer["channel"]["id"])

    async def user_info(self, user_id: str) -> dict[str, Any]:
        return await self._guard("users.info", self._client().users_info(user=user_id))

    async def user_locale(self, user_id: str) -> str | None:
        """The user's Slack locale ("mi-NZ"), or None when Slack does not say."""
        answer = await self._guard(
            "users.info", self._client().users_info(user=user_id, include_locale=True),
            quiet=True,  # Languages logs what a failure means: English for a while
        )
        locale = (answer.get("user") or {}).get("locale")
        return locale if isinstance(locale, str) else None

    async def channel_info(self, channel_id: str) -> dict[str, Any]:
        return await self._guard(
            "conversations.info", self.client.conversations_info(channel=channel_id)
        )

    async def user_by_email(self, email: str) -> dict[str, Any] | None:
        """The workspace member with this email (scope users:read.email), or None."""
        try:
            answer = await self._guard(
                "users.lookupByEmail", self._client().users_lookupByEmail(email=email)
            )
        except SlackFailure as exc:
            if exc.error == "users_not_found":
                return None
            raise
        user = answer.get("user")
        return user if isinstance(user, dict) else None

    async def post(self, channel: str, payload: dict[str, Any]) -> str:
        """Post a message; returns its ts."""
        answer = await self.call("chat.postMessage", channel=channel, **ephemeral(payload))
        return str(answer.get("ts", ""))

    async def dm(self, user_id: str, payload: dict[str, Any]) -> tuple[str, str]:
        """Message a person directly; returns (channel, ts)."""
        channel = await self.open_dm(user_id)
        return channel, await self.post(channel, payload)

    async def update(self, channel: str, ts: str, payload: dict[str, Any]) -> None:
        await self.call("chat.update", channel=channel, ts=ts, **payload)

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        await self.call("views.publish", user_id=user_id, view=view)

    async def respond(
        self, response_url: str, payload: dict[str, Any], *, replace_original: bool = False
    ) -> None:
        if not self.response_urls.allowed(response_url):
            # The app posts one-time links there: never to a host that is not Slack's.
            log.warning("refused to post to a response_url outside Slack's hosts")
            raise SlackFailure("response_url_refused")
        body = {**ephemeral(payload), "response_type": "ephemeral"}
        if replace_original:
            body["replace_original"] = True
        client = AsyncWebhookClient(response_url, retry_handlers=retry_handlers())
        try:
            answer = await client.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("response_url post failed: %s", type(exc).__name__)
            metrics.slack_api_error("response_url", "slack_unreachable")
            raise SlackFailure("slack_unreachable") from None
        if answer.status_code != 200:
            # An expired (30 min) or used-up (5 posts) response_url answers 404.
            log.warning("response_url post failed: HTTP %s", answer.status_code)
            metrics.slack_api_error("response_url", f"http_{answer.status_code}")
            raise SlackFailure(f"response_url_{answer.status_code}")

    async def tell(self, user_id: str, payload: dict[str, Any], origin: Origin) -> Told:
        """Privately tell a person something: response_url, else ephemeral, else DM.

        Returns where it went, so that the message can be rewritten later (an
        ephemeral message cannot be); raises SlackFailure only when every way failed.
        """
        if origin.response_url:
            try:
                await self.respond(origin.response_url, payload)
                return Told("response_url", response_url=origin.response_url)
            except SlackFailure:
                pass
        if origin.channel_id:
            try:
                await self.call(
                    "chat.postEphemeral", channel=origin.channel_id, user=user_id, **payload
                )
                return Told("ephemeral")
            except SlackFailure:
                # channel_not_found / not_in_channel: DMs and private channels the
                # bot has not joined. The DM below always works for a real person.
                pass
        channel, ts = await self.dm(user_id, payload)
        return Told("dm", channel=channel, ts=ts)
