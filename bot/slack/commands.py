"""The /ots slash command: `/ots`, `/ots <text>`, `/ots @someone <text>`, `/ots gen`,
`/ots request [@someone] [what for]`, `/ots help`.

Anything that opens a modal does so first, before any backend call: the
trigger_id is good for 3 s and once.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.slack import blocks, ids, modals
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import SlackDeps
from bot.slack.ids import COMMAND
from bot.slack.lang import _
from bot.slack.requesting import Requests
from bot.slack.sharing import ShareRequest
from bot.slack.text import split_mentions, unescape
from bot.slack.views import form_failed, open_share_modal, show_generated, tell_quietly

GENERATE_WORDS = ("gen", "generate")
LIST_WORDS = ("list", "ls")


async def handle_ots(ack: AsyncAck, command: dict[str, Any], deps: SlackDeps) -> None:
    await ack()
    user, trigger = command.get("user_id") or "", command.get("trigger_id") or ""
    origin = Origin(command.get("response_url"), command.get("channel_id"))
    raw = command.get("text") or ""
    word, _sep, after = raw.strip().partition(" ")
    if word.lower() == ids.REQUEST_WORD:
        # `/ots request @bob what for`; nobody named: a link for someone outside Slack.
        people, rest = split_mentions(after)
        await Requests(deps).ask(
            user, command.get("team_id"), people, unescape(rest).strip(), origin,
            command.get("enterprise_id"),
        )
        return
    if word.lower() in GENERATE_WORDS:
        # `/ots gen @a @b`: mentions come after the word.
        recipients, rest = split_mentions(after)
        if not rest.strip():
            if user in recipients:
                await tell_quietly(deps, user, blocks.error_message(_(
                    "You picked yourself: secrets go to other people. For a link you can keep "
                    "or pass on, leave yourself out.")), origin)
                return
            if await _too_many(deps, user, recipients, origin):
                return
            await share_generated(deps, command, origin, recipients)
            return
    # Mentions are split off before unescaping: after it, `&lt;@U1&gt;` typed
    # inside a secret would look like a mention.
    recipients, rest = split_mentions(raw)
    text = unescape(rest)
    keyword = text.strip().lower()
    if await _too_many(deps, user, recipients, origin):
        return
    if keyword == "help":
        await tell_quietly(deps, user, blocks.usage_message(), origin)
    elif user in recipients and text.strip():
        # Nothing is shared, not even with the others named: they can send it again.
        await tell_quietly(deps, user, blocks.error_message(_(
            "You picked yourself: secrets go to other people. For a link you can keep or "
            "pass on, leave yourself out. Nothing was shared.")), origin)
    elif keyword in LIST_WORDS and not recipients and deps.followup is not None:
        listing = await deps.followup.listing(command.get("team_id"), user)
        await tell_quietly(deps, user, listing, origin)
    elif recipients and keyword in GENERATE_WORDS:
        await share_generated(deps, command, origin, recipients)
    elif not text.strip():
        await open_share_modal(
            deps, trigger, user, origin, initial_users=recipients, offer_request=not recipients
        )
    else:
        await deps.sharer.share(ShareRequest(
            sender=user, team_id=command.get("team_id"), secret=text,
            recipients=recipients, origin=origin,
        ))


async def _too_many(
    deps: SlackDeps, user: str, recipients: tuple[str, ...], origin: Origin
) -> bool:
    """The form's cap applies to the command too: refuse before anything is stored or sent
    (and before a form would silently drop the extra people)."""
    if len(recipients) <= modals.MAX_RECIPIENTS:
        return False
    await tell_quietly(deps, user, blocks.error_message(_.plural(
        "You named {count} person; {command} sends to at most {limit} at a time. Nothing "
        "was shared: name at most {limit}, and share again for the others.",
        "You named {count} people; {command} sends to at most {limit} at a time. Nothing "
        "was shared: name at most {limit}, and share again for the others.",
        len(recipients), count=len(recipients), command=COMMAND, limit=modals.MAX_RECIPIENTS,
    )), origin)
    return True


async def share_generated(
    deps: SlackDeps, command: dict[str, Any], origin: Origin, recipients: tuple[str, ...]
) -> None:
    """Open a waiting modal first (trigger ids expire), then generate, then show it there."""
    user = command.get("user_id") or ""
    waiting = modals.notice_modal(
        _("New password"), ":hourglass_flowing_sand: " + _("Generating a strong password…")
    )
    try:
        view_id = await deps.messenger.open_view(command.get("trigger_id") or "", waiting)
    except SlackFailure as exc:
        # The password is shown only in a modal: without one, make nothing.
        await tell_quietly(deps, user, blocks.error_message(form_failed(exc)), origin)
        return
    result = await deps.sharer.share(ShareRequest(
        sender=user, team_id=command.get("team_id"), secret=None,
        recipients=recipients, origin=origin,
    ))
    await show_generated(deps, view_id, result)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_ots(ack: AsyncAck, command: dict[str, Any]) -> None:
        await handle_ots(ack, command, deps)

    app.command(COMMAND)(on_ots)
