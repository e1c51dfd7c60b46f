"""The /ots slash command."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.backends.base import SecretBackend
from bot.errors import BackendError
from bot.slack import blocks
from bot.slack.ids import COMMAND
from bot.slack.text import unescape

log = logging.getLogger(__name__)


def slack_owner(team_id: str | None, user_id: str | None) -> str:
    return f"slack:{team_id or '-'}:{user_id or '-'}"


async def reply(respond: AsyncRespond, payload: dict[str, Any]) -> None:
    """An ephemeral answer through response_url, with unfurling off: links are one-time."""
    await respond(
        **payload, response_type="ephemeral", unfurl_links=False, unfurl_media=False
    )


async def share_from_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, backend: SecretBackend
) -> None:
    await ack()
    text = unescape(command.get("text") or "")
    if not text.strip() or text.strip().lower() == "help":
        await reply(respond, blocks.usage_message())
        return
    try:
        receipt = await backend.share(
            text, owner=slack_owner(command.get("team_id"), command.get("user_id"))
        )
    except BackendError as exc:
        log.warning("share from /ots failed: %s", type(exc).__name__)
        await reply(respond, blocks.error_message(f"Your secret was not saved. {exc.message}"))
        return
    assert receipt.secret_key is not None
    await reply(
        respond,
        blocks.secret_link_message(
            link=backend.secret_url(receipt.secret_key),
            expires_at=receipt.expires_at,
            ttl=receipt.ttl,
        ),
    )


def register(app: AsyncApp, backend: SecretBackend) -> None:
    async def on_ots(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await share_from_command(ack, command, respond, backend)

    app.command(COMMAND)(on_ots)
