"""Block Kit for requests for a secret: pure functions from values to payloads.

The "what for" is typed by the requester and shown to others: it is always
escaped (no mention, channel alert or link can be made of it) or plain text.
No builder here takes a secret.

Every word goes through the catalogue (bot/slack/lang.py) in the language of
whoever reads the payload: the caller says whose it is (`speaking_to`).
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
from bot.slack.lang import _
from bot.slack.modals import MAX_RECIPIENTS, View, plain, secret_inputs

WHAT_FOR_LIMIT = 300


def what_for_text(what_for: str) -> str:
    """The requester's "what for", as inert mrkdwn (a placeholder value, never a message)."""
    return escape_mrkdwn(what_for)


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button", "action_id": action_id, "text": plain(text), "value": value,
    }
    if style:
        button["style"] = style
    return button


def _expires(expires_at: int, ttl: int) -> str:
    return _("The request expires {when} (in {duration}).",
             when=slack_date(expires_at), duration=human_duration(ttl))


def ask_message(
    *, requester: str, what_for: str, expires_at: int, ttl: int, answer_value: str,
    decline_value: str, others: Sequence[str] = (),
) -> Message:
    """The DM to a person asked for a secret: who asks, what for, until when; Answer, Decline."""
    who = mention(requester)
    if what_for.strip():
        asks = _("{requester} asks you for a secret: *{what_for}*",
                 requester=who, what_for=what_for_text(what_for))
    else:
        asks = _("{requester} asks you for a secret", requester=who)
    notes = []
    if others:
        notes.append(_("They asked {people} too: the first answer fulfils the request.",
                       people=people(others)))
    notes.append(_expires(expires_at, ttl))
    notes.append(_("*Answer* opens a form only you see; the secret goes to them as a one-time "
                   "secret, never into this chat."))
    blocks: Blocks = [
        section(":key: " + asks),
        context(" ".join(notes)),
        {
            "type": "actions",
            "elements": [
                _button(ids.ANSWER_ACTION, _("Answer"), answer_value, "primary"),
                _button(ids.DECLINE_ACTION, _("Decline"), decline_value),
            ],
        },
    ]
    return {"text": _("{requester} asks you for a secret", requester=who), "blocks": blocks}


def closed_message(text: str) -> Message:
    """What an ask DM (or the requester's confirmation) becomes: the outcome, no buttons."""
    return {"text": text, "blocks": [section(text)]}


def answered_by_you(requester: str) -> Message:
    return closed_message(":white_check_mark: " + _(
        "You answered {requester}'s request. They got a one-time secret; you get a message "
        "when they view it.", requester=mention(requester)
    ))


def answered_by_other(requester: str, by: str) -> Message:
    return closed_message(":white_check_mark: " + _(
        "{requester}'s request was answered by {by}. Nothing more to do.",
        requester=mention(requester), by=mention(by),
    ))


def declined_by_you(requester: str) -> Message:
    return closed_message(":no_entry_sign: " + _(
        "You declined {requester}'s request.", requester=mention(requester)))


def declined_by_everyone() -> Message:
    return closed_message(":no_entry_sign: " + _("Everyone asked declined."))


def cancelled(requester: str) -> Message:
    return closed_message(":no_entry_sign: " + _(
        "{requester} cancelled their request.", requester=mention(requester)))


def expired(requester: str) -> Message:
    return closed_message(":hourglass: " + _(
        "{requester}'s request expired.", requester=mention(requester)))


def confirmation_message(
    *, asked: Sequence[str], failed: Sequence[tuple[str, str]], what_for: str,
    expires_at: int, ttl: int, cancel_value: str | None,
) -> Message:
    """The requester's private answer: who was asked, who could not be, Cancel request.

    `failed`: (person, why) with `why` a clause in the requester's language."""
    lines: list[str] = []
    if asked:
        if what_for.strip():
            did = _("Asked {people} for a secret: *{what_for}*.",
                    people=people(asked), what_for=what_for_text(what_for))
        else:
            did = _("Asked {people} for a secret.", people=people(asked))
        lines.append(":key: " + did + " " + _(
            "The first answer comes to you as a one-time secret in a direct message."))
    for user, reason in failed:
        lines.append(":warning: " + _("Could not ask {person}: {reason}.",
                                      person=mention(user), reason=reason.rstrip(".")))
    text = "\n".join(lines)
    blocks: Blocks = [section(text)]
    if asked:
        blocks.append(context(
            _expires(expires_at, ttl) + " " + _("Only you can see this message.")
        ))
        if cancel_value:
            blocks.append({"type": "actions", "elements": [
                _button(ids.CANCEL_REQUEST_ACTION, _("Cancel request"), cancel_value, "danger")
            ]})
    return {"text": text, "blocks": blocks}


def link_message(*, link: str, what_for: str, expires_at: int, ttl: int,
                 cancel_value: str) -> Message:
    """The requester's private answer for someone outside Slack: the request link."""
    text = _("Request link (expires in {duration}): {link}",
             duration=human_duration(ttl), link=link)
    if what_for.strip():
        here = _("Here is your one-time request link: *{what_for}*",
                 what_for=what_for_text(what_for))
    else:
        here = _("Here is your one-time request link")
    blocks: Blocks = [
        section(
            f":key: {here}\n<{link}>\n" + _(
                "Send it to the person who has the secret (by email or any channel). They "
                "type the secret on that page; it comes to you as a one-time secret here.")
        ),
        context(
            _("It works once, and expires {when} (in {duration}).",
              when=slack_date(expires_at), duration=human_duration(ttl))
            + " " + _("Only you can see this message.")
        ),
        {"type": "actions", "elements": [
            _button(ids.CANCEL_REQUEST_ACTION, _("Cancel request"), cancel_value, "danger")
        ]},
    ]
    return {"text": text, "blocks": blocks}


def answer_modal(
    *, requester: str, what_for: str, private_metadata: str, default_ttl: int, max_ttl: int
) -> View:
    """The form behind Answer: the usual secret inputs, for the requester."""
    asks: list[dict[str, Any]] = [
        section(_("{requester} asks you for a secret.", requester=mention(requester)))
    ]
    if what_for.strip():
        # Plain text: nothing the requester typed is read as markup.
        asks.append({"type": "section",
                     "text": plain(_("What for: {what_for}", what_for=what_for)[:3000])})
    return {
        "type": "modal",
        "callback_id": ids.ANSWER_VIEW,
        "title": plain(_("Answer a request")),
        "submit": plain(_("Send")),
        "close": plain(_("Cancel")),
        "private_metadata": private_metadata,
        "blocks": [
            *asks,
            *secret_inputs(default_ttl=default_ttl, max_ttl=max_ttl),
            context(_("They get it as a one-time secret in a direct message, with "
                      "*Reveal in Slack*. Send a passphrase another way.")),
        ],
    }


def request_modal(*, private_metadata: str) -> View:
    """The form behind "Request a secret": whom to ask (or a link), and what for."""
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_VIEW,
        "title": plain(_("Request a secret")),
        "submit": plain(_("Ask")),
        "close": plain(_("Cancel")),
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": ids.REQUEST_PEOPLE_BLOCK,
                "optional": True,
                "label": plain(_("Ask")),
                "element": {
                    "type": "multi_users_select",
                    "action_id": ids.REQUEST_PEOPLE_INPUT,
                    "max_selected_items": MAX_RECIPIENTS,
                    "placeholder": plain(_("Who has the secret?")),
                },
                "hint": plain(_.plural(
                    "Up to {count} person. The first to answer fulfils the request.",
                    "Up to {count} people. The first to answer fulfils the request.",
                    MAX_RECIPIENTS, count=MAX_RECIPIENTS,
                )),
            },
            {
                "type": "input",
                "block_id": ids.REQUEST_OUTSIDE_BLOCK,
                "optional": True,
                "label": plain(_("Or")),
                "element": {
                    "type": "checkboxes",
                    "action_id": ids.REQUEST_OUTSIDE_INPUT,
                    "options": [{
                        "text": plain(_("Someone outside Slack: give me a request link")),
                        "value": "outside",
                    }],
                },
            },
            {
                "type": "input",
                "block_id": ids.REQUEST_FOR_BLOCK,
                "optional": True,
                "label": plain(_("What for")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REQUEST_FOR_INPUT,
                    "max_length": WHAT_FOR_LIMIT,
                    "placeholder": plain(_("The staging database password")),
                },
                "hint": plain(_("Shown to the people you ask. Never type the secret here.")),
            },
        ],
    }


def outside_answer_message(
    *, what_for: str, link: str, expires_at: int, passphrase: bool, reveal_value: str,
) -> Message:
    """The requester's DM when their request link was answered (a recipient's DM)."""
    return recipient_message(
        sender="outside", link=link, expires_at=expires_at, passphrase=passphrase,
        reveal_value=reveal_value, about=what_for or _("your request link"),
    )
