"""Shortcuts: "Share a secret" (global) and "Make one-time secret" (on a message)."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.slack import blocks, ids, modals
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import SlackDeps
from bot.slack.lang import N_, _
from bot.slack.text import readable, references
from bot.slack.views import open_share_modal

# Names are looked up before the form opens, and its trigger id lives 3 s.
NAME_LOOKUP_SECONDS = 1.0

# The notes above the form, in the language of whoever opened it.
STAYS_IN_HISTORY = N_(
    "The original message stays in the conversation's history until you delete it. Delete "
    "it once the secret is shared, and change the secret if others may have seen it."
)
TOO_LONG = N_(
    "That message is longer than the {limit} characters a form can hold, so it was not "
    "copied here. Paste the part that is secret."
)
NO_TEXT = N_("That message has no text to copy. Type or paste the secret here.")
SOMEONE_ELSES = N_(
    "This is {author}'s message: you cannot delete it, and it stays in the conversation's "
    "history until they do. Ask them to delete it once the secret is shared, and change the "
    "secret if others may have seen it."
)
AN_APPS = N_(
    "This is an app's message: you cannot delete it, and it stays in the conversation's "
    "history until they do. Ask them to delete it once the secret is shared, and change the "
    "secret if others may have seen it."
)


def history_note(message: dict[str, Any], user: str) -> str:
    """The warning for the form: whose message stays in history, and what to do."""
    author = message.get("user")
    if author == user:
        return ":warning: " + _(STAYS_IN_HISTORY)
    if author:
        return ":warning: " + _(SOMEONE_ELSES, author=blocks.mention(str(author)))
    return ":warning: " + _(AN_APPS)


async def names_in(deps: SlackDeps, text: str) -> dict[str, str]:
    """Names of the people and channels a message mentions; what Slack will not say is left out."""
    users, channels = references(text)

    async def person(user_id: str) -> tuple[str, str | None]:
        try:
            info = (await deps.messenger.user_info(user_id)).get("user") or {}
        except SlackFailure:
            return user_id, None
        profile = info.get("profile") or {}
        name = profile.get("display_name") or info.get("real_name") or info.get("name")
        return user_id, str(name) if name else None

    async def channel(channel_id: str) -> tuple[str, str | None]:
        try:
            info = (await deps.messenger.channel_info(channel_id)).get("channel") or {}
        except SlackFailure:
            return channel_id, None
        return channel_id, str(info["name"]) if info.get("name") else None

    lookups = [person(u) for u in users] + [channel(c) for c in channels]
    if not lookups:
        return {}
    try:
        found = await asyncio.wait_for(asyncio.gather(*lookups), NAME_LOOKUP_SECONDS)
    except TimeoutError:
        return {}
    return {key: name for key, name in found if name}


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
    raw = message.get("text") or ""
    text = readable(raw, await names_in(deps, raw))
    notes = [history_note(message, shortcut["user"]["id"])]
    if not text.strip():
        notes.append(_(NO_TEXT))
    elif len(text) > modals.MODAL_TEXT_LIMIT:
        notes.append(_(TOO_LONG, limit=blocks.number(modals.MODAL_TEXT_LIMIT)))
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
