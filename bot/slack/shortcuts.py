"""Shortcuts: "Share a secret" (global) and "Make one-time secret" (on a message)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.slack import ids, modals
from bot.slack.delivery import Origin
from bot.slack.deps import SlackDeps
from bot.slack.text import unescape
from bot.slack.views import open_share_modal

STAYS_IN_HISTORY = (
    ":warning: The original message stays in the conversation's history until you delete "
    "it. Delete it once the secret is shared, and change the secret if others may have "
    "seen it."
)
TOO_LONG = (
    "That message is longer than the {limit:,} characters a form can hold, so it was not "
    "copied here. Paste the part that is secret."
)
NO_TEXT = "That message has no text to copy. Type or paste the secret here."


async def open_share_modal_from_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], deps: SlackDeps
) -> None:
    await ack()
    # A global shortcut has no channel and no response_url: the answer goes by DM.
    await open_share_modal(
        deps, shortcut["trigger_id"], shortcut["user"]["id"], Origin(), offer_request=True
    )


async def open_share_modal_from_message(
    ack: AsyncAck, shortcut: dict[str, Any], deps: SlackDeps
) -> None:
    await ack()
    message = shortcut.get("message") or {}
    text = unescape(message.get("text") or "")
    notes = [STAYS_IN_HISTORY]
    if not text.strip():
        notes.append(NO_TEXT)
    elif len(text) > modals.MODAL_TEXT_LIMIT:
        notes.append(TOO_LONG.format(limit=modals.MODAL_TEXT_LIMIT))
        text = ""
    origin = Origin(shortcut.get("response_url"), (shortcut.get("channel") or {}).get("id"))
    await open_share_modal(
        deps, shortcut["trigger_id"], shortcut["user"]["id"], origin,
        initial_text=text or None, notes=notes,
    )


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_share_shortcut(ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await open_share_modal_from_shortcut(ack, shortcut, deps)

    async def on_message_shortcut(ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await open_share_modal_from_message(ack, shortcut, deps)

    app.shortcut(ids.SHARE_SHORTCUT)(on_share_shortcut)
    app.shortcut(ids.MESSAGE_SHORTCUT)(on_message_shortcut)
