"""Buttons: "Burn now" (for the sender) and "Reveal in Slack" (for the recipient).

A button's value is set by this app and comes back in a request signed by
Slack, but the message holding it may be seen by others (a forwarded DM, a
screen share): each value names the one person who may use it, and the
clicker (`body.user.id`) is checked against it before anything happens.

Answers are in the clicker's language (`_`, bot/slack/lang.py).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.errors import BackendError, OutcomeUnknown, SecretNotFound
from bot.slack import blocks, ids, modals, trust
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import SlackDeps
from bot.slack.lang import _
from bot.slack.views import form_failed, report_refused, reveal_metadata, tell_quietly

log = logging.getLogger(__name__)


def _button_value(body: dict[str, Any], deps: SlackDeps, purpose: str) -> dict[str, Any]:
    """The value this app signed for the button, or {} for anything else."""
    try:
        raw = body["actions"][0]["value"]
    except (KeyError, IndexError, TypeError):
        return {}
    return trust.unpack(deps.store.key, purpose, raw) or {}


def _origin(body: dict[str, Any]) -> Origin:
    return Origin(body.get("response_url"), (body.get("channel") or {}).get("id"))


async def burn_secret(ack: AsyncAck, body: dict[str, Any], deps: SlackDeps) -> None:
    await ack()
    value, user = _button_value(body, deps, trust.BURN), body["user"]["id"]
    keys = value.get("m")
    if value.get("by") != user or not isinstance(keys, list):
        message = blocks.error_message(_("Only the person who shared this secret can burn it."))
        await tell_quietly(deps, user, message, _origin(body))
        return
    burned = gone = failed = unknown = 0
    for key in keys:
        result = await _burn(deps, str(key))
        burned += result == "burned"
        gone += result == "gone"
        failed += result == "failed"
        unknown += result == "unknown"
    outcome = blocks.burn_outcome_message(
        burned=burned, gone=gone, failed=failed, unknown=unknown,
        recipients=value.get("to") or ()
    )
    await _replace_message(deps, body, user, outcome)


async def _burn(deps: SlackDeps, metadata_key: str, *, answer: bool = False) -> str:
    """Burn one secret and follow it everywhere: "burned", "gone", "failed" or
    "unknown" (the store's answer was lost)."""
    if deps.ledger is not None:
        await deps.ledger.forget(metadata_key)
    try:
        # The button names its sender and Slack signed who clicked: the owner, who
        # needs no passphrase to burn their own secret.
        await deps.backend.burn(metadata_key, by_owner=True)
    except SecretNotFound:
        return "gone"
    except OutcomeUnknown:
        log.warning("burn from Slack: the store's answer was lost (outcome unknown)")
        return "unknown"
    except BackendError as exc:
        log.warning("burn from Slack failed: %s", type(exc).__name__)
        return "failed"
    if deps.followup is not None:
        # The embedded store's event may have done this already; then it is a no-op.
        # The sender's own click needs no DM about itself.
        record_id = deps.followup.book.id_for(metadata_key)
        settled = await deps.followup.settle(
            record_id, "burned", "burn", answer=answer, notify=False
        )
        if answer and settled is None:
            # The store's event settled it first, leaving the answer to the click.
            share = await deps.followup.book.get(record_id)
            if share is not None:
                await deps.followup.rewrite_answer(share)
    return "burned"


async def burn_listed_secret(ack: AsyncAck, body: dict[str, Any], deps: SlackDeps) -> None:
    """Burn from the Home tab or `/ots list`: the value names the record and its sender."""
    await ack()
    value, user = _button_value(body, deps, trust.LISTED_BURN), body["user"]["id"]
    record_id = value.get("i")
    share = None
    if deps.followup is not None and isinstance(record_id, str) and value.get("by") == user:
        share = await deps.followup.book.get(record_id)
    if share is None or share.sender != user:
        message = blocks.error_message(
            _("That secret is not in your list any more, or it is not yours to burn.")
        )
        await tell_quietly(deps, user, message, _origin(body))
        return
    assert deps.followup is not None
    result = await _burn(deps, share.metadata_key, answer=True)
    if result == "failed":
        message = blocks.error_message(_(
            "It could not be burned right now: the secret store is unavailable. "
            "Try *Burn* again in a minute."
        ))
        await tell_quietly(deps, user, message, _origin(body))
    elif result == "unknown":
        message = blocks.error_message(_(
            "The secret store did not answer in time: it is not known whether the burn "
            "went through. Look at the list again in a minute."
        ))
        await tell_quietly(deps, user, message, _origin(body))
    await deps.followup.publish_home(share.team, user)
    if body.get("response_url"):  # pressed in `/ots list`: show the list as it is now
        listing = await deps.followup.listing(share.team, user)
        await _replace_message(deps, body, user, listing)


async def _replace_message(
    deps: SlackDeps, body: dict[str, Any], user: str, message: blocks.Message
) -> None:
    view = body.get("view") or {}
    if view.get("type") == "modal" and view.get("id"):
        # Burn now in the share form's own window (the global shortcut's answer).
        try:
            await deps.messenger.update_view(str(view["id"]), modals.answer_modal(message))
            return
        except SlackFailure:
            pass
    response_url = body.get("response_url")
    if response_url:
        try:
            await deps.messenger.respond(response_url, message, replace_original=True)
            return
        except SlackFailure:
            pass
    await tell_quietly(deps, user, message, Origin(channel_id=None))


async def open_reveal_modal(ack: AsyncAck, body: dict[str, Any], deps: SlackDeps) -> None:
    await ack()
    value, user = _button_value(body, deps, trust.REVEAL), body["user"]["id"]
    recipient = value.get("to")
    if not value.get("k") or recipient != user:
        message = blocks.error_message(
            _("This secret was sent to {person}: only they can reveal it.",
              person=blocks.mention(str(recipient))) if recipient
            else _("This secret is not yours: only the person it was sent to can reveal it.")
        )
        await tell_quietly(deps, user, message, _origin(body))
        await report_refused(deps, value, "other", user)
        return
    container = body.get("container") or {}
    view = modals.reveal_modal(
        sender=str(value.get("from")),
        passphrase_required=bool(value.get("p")),
        private_metadata=reveal_metadata(
            deps.store.key, value, container.get("channel_id"), container.get("message_ts")
        ),
    )
    # No backend call before this: the trigger_id is good for 3 s.
    try:
        await deps.messenger.open_view(body["trigger_id"], view)
    except SlackFailure as exc:
        await tell_quietly(deps, user, blocks.error_message(form_failed(exc)), _origin(body))


async def acknowledge(ack: AsyncAck) -> None:
    """A URL button opens the browser by itself; Slack still expects an ack."""
    await ack()


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_burn(ack: AsyncAck, body: dict[str, Any]) -> None:
        await burn_secret(ack, body, deps)

    async def on_reveal(ack: AsyncAck, body: dict[str, Any]) -> None:
        await open_reveal_modal(ack, body, deps)

    async def on_listed_burn(ack: AsyncAck, body: dict[str, Any]) -> None:
        await burn_listed_secret(ack, body, deps)

    app.action(ids.BURN_ACTION)(on_burn)
    app.action(ids.HOME_BURN_ACTION)(on_listed_burn)
    app.action(ids.REVEAL_ACTION)(on_reveal)
    app.action(ids.OPEN_LINK_ACTION)(acknowledge)
