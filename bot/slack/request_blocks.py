"""Block Kit for requests for a secret: pure functions from values to payloads.

The "what for" is typed by the requester and shown to others: it is always
escaped (no mention, channel alert or link can be made of it) or plain text.
No builder here takes a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.slack import ids
from bot.slack.blocks import (
    Blocks,
    Message,
    context,
    escape_mrkdwn,
    human_duration,
    mention,
    people,
    recipient_message,
    section,
    slack_date,
)
from bot.slack.modals import MAX_RECIPIENTS, View, plain, secret_inputs

WHAT_FOR_LIMIT = 300


def _for(what_for: str) -> str:
    return f": *{escape_mrkdwn(what_for)}*" if what_for.strip() else ""


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button", "action_id": action_id, "text": plain(text), "value": value,
    }
    if style:
        button["style"] = style
    return button


def ask_message(
    *, requester: str, what_for: str, expires_at: int, ttl: int, answer_value: str,
    decline_value: str, others: Sequence[str] = (),
) -> Message:
    """The DM to a person asked for a secret: who asks, what for, until when; Answer, Decline."""
    text = f":key: {mention(requester)} asks you for a secret{_for(what_for)}"
    also = (
        f"They asked {people(others)} too: the first answer fulfils the request. "
        if others else ""
    )
    blocks: Blocks = [
        section(text),
        context(
            f"{also}The request expires {slack_date(expires_at)} (in {human_duration(ttl)}). "
            "*Answer* opens a form only you see; the secret goes to them as a one-time secret, "
            "never into this chat."
        ),
        {
            "type": "actions",
            "elements": [
                _button(ids.ANSWER_ACTION, "Answer", answer_value, "primary"),
                _button(ids.DECLINE_ACTION, "Decline", decline_value),
            ],
        },
    ]
    return {"text": f"{mention(requester)} asks you for a secret", "blocks": blocks}


def closed_message(text: str) -> Message:
    """What an ask DM (or the requester's confirmation) becomes: the outcome, no buttons."""
    return {"text": text, "blocks": [section(text)]}


def answered_by_you(requester: str) -> Message:
    return closed_message(
        f":white_check_mark: You answered {mention(requester)}'s request. They got a "
        "one-time secret; you get a message when they view it."
    )


def answered_by_other(requester: str, by: str) -> Message:
    return closed_message(
        f":white_check_mark: {mention(requester)}'s request was answered by {mention(by)}. "
        "Nothing more to do."
    )


def declined_by_you(requester: str) -> Message:
    return closed_message(f":no_entry_sign: You declined {mention(requester)}'s request.")


def cancelled(requester: str) -> Message:
    return closed_message(f":no_entry_sign: {mention(requester)} cancelled their request.")


def expired(requester: str) -> Message:
    return closed_message(f":hourglass: {mention(requester)}'s request expired.")


def confirmation_message(
    *, asked: Sequence[str], failed: Sequence[tuple[str, str]], what_for: str,
    expires_at: int, ttl: int, cancel_value: str | None,
) -> Message:
    """The requester's private answer: who was asked, who could not be, Cancel request."""
    lines: list[str] = []
    if asked:
        lines.append(
            f":key: Asked {people(asked)} for a secret{_for(what_for)}. The first answer comes "
            "to you as a one-time secret in a direct message."
        )
    for user, reason in failed:
        lines.append(f":warning: Could not ask {mention(user)}: {reason.rstrip('.')}.")
    text = "\n".join(lines)
    blocks: Blocks = [section(text)]
    if asked:
        blocks.append(context(
            f"The request expires {slack_date(expires_at)} (in {human_duration(ttl)}). "
            "Only you can see this message."
        ))
        if cancel_value:
            blocks.append({"type": "actions", "elements": [
                _button(ids.CANCEL_REQUEST_ACTION, "Cancel request", cancel_value, "danger")
            ]})
    return {"text": text, "blocks": blocks}


def link_message(*, link: str, what_for: str, expires_at: int, ttl: int,
                 cancel_value: str) -> Message:
    """The requester's private answer for someone outside Slack: the request link."""
    text = f"Request link (expires in {human_duration(ttl)}): {link}"
    blocks: Blocks = [
        section(
            f":key: Here is your one-time request link{_for(what_for)}\n<{link}>\n"
            "Send it to the person who has the secret (by email or any channel). They "
            "type the secret on that page; it comes to you as a one-time secret here."
        ),
        context(
            f"It works once, and expires {slack_date(expires_at)} (in {human_duration(ttl)}). "
            "Only you can see this message."
        ),
        {"type": "actions", "elements": [
            _button(ids.CANCEL_REQUEST_ACTION, "Cancel request", cancel_value, "danger")
        ]},
    ]
    return {"text": text, "blocks": blocks}


def answer_modal(
    *, requester: str, what_for: str, private_metadata: str, default_ttl: int, max_ttl: int
) -> View:
    """The form behind Answer: the usual secret inputs, for the requester."""
    asks: list[dict[str, Any]] = [section(f"{mention(requester)} asks you for a secret.")]
    if what_for.strip():
        # Plain text: nothing the requester typed is read as markup.
        asks.append({"type": "section", "text": plain(f"What for: {what_for}"[:3000])})
    return {
        "type": "modal",
        "callback_id": ids.ANSWER_VIEW,
        "title": plain("Answer a request"),
        "submit": plain("Send"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            *asks,
            *secret_inputs(default_ttl=default_ttl, max_ttl=max_ttl),
            context("They get it as a one-time secret in a direct message, with "
                    "*Reveal in Slack*. Send a passphrase another way."),
        ],
    }


def request_modal(*, private_metadata: str) -> View:
    """The form behind "Request a secret": whom to ask (or a link), and what for."""
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_VIEW,
        "title": plain("Request a secret"),
        "submit": plain("Ask"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": ids.REQUEST_PEOPLE_BLOCK,
                "optional": True,
                "label": plain("Ask"),
                "element": {
                    "type": "multi_users_select",
                    "action_id": ids.REQUEST_PEOPLE_INPUT,
                    "max_selected_items": MAX_RECIPIENTS,
                    "placeholder": plain("Who has the secret?"),
                },
                "hint": plain("Up to 10 people. The first to answer fulfils the request."),
            },
            {
                "type": "input",
                "block_id": ids.REQUEST_OUTSIDE_BLOCK,
                "optional": True,
                "label": plain("Or"),
                "element": {
                    "type": "checkboxes",
                    "action_id": ids.REQUEST_OUTSIDE_INPUT,
                    "options": [{
                        "text": plain("Someone outside Slack: give me a request link"),
                        "value": "outside",
                    }],
                },
            },
            {
                "type": "input",
                "block_id": ids.REQUEST_FOR_BLOCK,
                "optional": True,
                "label": plain("What for"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REQUEST_FOR_INPUT,
                    "max_length": WHAT_FOR_LIMIT,
                    "placeholder": plain("The staging database password"),
                },
                "hint": plain("Shown to the people you ask. Never type the secret here."),
            },
        ],
    }


def outside_answer_message(
    *, what_for: str, link: str, expires_at: int, passphrase: bool, reveal_value: str,
) -> Message:
    """The requester's DM when their request link was answered (a recipient's DM)."""
    return recipient_message(
        sender="outside", link=link, expires_at=expires_at, passphrase=passphrase,
        reveal_value=reveal_value, about=what_for or "your request link",
    )
