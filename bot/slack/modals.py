"""Block Kit modals: pure functions from values to views.

A revealed or generated secret is only ever shown in a modal: a modal leaves
nothing in chat history. `private_metadata` carries where to answer and, for a
reveal, the key the viewer may use; never the secret or a passphrase.

Every word is translated where the view is built (`_`, bot/slack/lang.py), into
the language of whoever opens it; Block Kit's limits (a title of 24 characters,
a button or option of 75) hold in every catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.slack import ids
from bot.slack.blocks import (
    Message,
    context,
    opening,
    section,
    service_words,
    who,
)
from bot.slack.lang import N_, _

View = dict[str, Any]
MODAL_TEXT_LIMIT = 3000  # plain_text_input max_length, and section text
MAX_RECIPIENTS = 10
LABEL_LIMIT = 100
TTL_CHOICES = (300, 3600, 86400, 7 * 86400, 14 * 86400, 30 * 86400)
GENERATED_NOTE = N_(
    "Here is the password that was generated. Copy it now: it is not shown again, and it "
    "is in no message."
)


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def ttl_choices(default_ttl: int, max_ttl: int) -> list[int]:
    """The lifetimes offered: the usual ones up to the maximum, plus the default."""
    return sorted({t for t in TTL_CHOICES if t <= max_ttl} | {default_ttl})


def lifetime(seconds: int) -> str:
    """A lifetime as a menu shows it ("5 minutes", "1 day"), in the reader's language:
    in the largest unit it is a whole number of, else rounded in the largest unit."""
    units = [(size, unit) for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"))
             if seconds >= size]
    size, unit = next(((s, u) for s, u in units if seconds % s == 0),
                      units[0] if units else (1, "second"))
    count = round(seconds / size)
    if unit == "day":
        return _.plural("{count} day", "{count} days", count, count=count)
    if unit == "hour":
        return _.plural("{count} hour", "{count} hours", count, count=count)
    if unit == "minute":
        return _.plural("{count} minute", "{count} minutes", count, count=count)
    return _.plural("{count} second", "{count} seconds", count, count=count)


def _ttl_option(seconds: int) -> dict[str, Any]:
    return {"text": plain(lifetime(seconds)), "value": str(seconds)}


def secret_inputs(
    *, default_ttl: int, max_ttl: int, initial_text: str | None = None
) -> list[dict[str, Any]]:
    """The secret, Generate, Passphrase and Expires after inputs (share and answer forms)."""
    secret_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ids.SECRET_INPUT,
        "multiline": True,
        "max_length": MODAL_TEXT_LIMIT,
        "placeholder": plain(_("Password, token, recovery code…")),
    }
    if initial_text:
        secret_input["initial_value"] = initial_text
    return [
        {
            "type": "input",
            "block_id": ids.SECRET_BLOCK,
            "optional": True,
            "label": plain(_("Secret")),
            "element": secret_input,
            "hint": plain(_("It can be viewed once. Leave it empty to generate a password.")),
        },
        {
            "type": "input",
            "block_id": ids.GENERATE_BLOCK,
            "optional": True,
            "label": plain(_("Or")),
            "element": {
                "type": "checkboxes",
                "action_id": ids.GENERATE_INPUT,
                "options": [
                    {"text": plain(_("Generate a strong password for me")), "value": "generate"}
                ],
            },
        },
        {
            "type": "input",
            "block_id": ids.LABEL_BLOCK,
            "optional": True,
            "label": plain(_("What is it for?")),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.LABEL_INPUT,
                "max_length": LABEL_LIMIT,
                "placeholder": plain(_("e.g. staging database")),
            },
            "hint": plain(_(
                "Optional, not secret: shown with the link, to the people you send it to, "
                "and in your list. Never put the secret here."
            )),
        },
        {
            "type": "input",
            "block_id": ids.PASSPHRASE_BLOCK,
            "optional": True,
            "label": plain(_("Passphrase")),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.PASSPHRASE_INPUT,
                "max_length": 200,
            },
            "hint": plain(_(
                "Optional. Asked before the secret is shown; send it another way. "
                "Slack shows it as you type."
            )),
        },
        {
            "type": "input",
            "block_id": ids.TTL_BLOCK,
            "label": plain(_("Expires after")),
            "element": {
                "type": "static_select",
                "action_id": ids.TTL_INPUT,
                "options": [_ttl_option(t) for t in ttl_choices(default_ttl, max_ttl)],
                "initial_option": _ttl_option(default_ttl),
            },
        },
    ]


def share_modal(
    *,
    private_metadata: str,
    default_ttl: int,
    max_ttl: int,
    initial_text: str | None = None,
    initial_users: Sequence[str] = (),
    notes: Sequence[str] = (),
    offer_request: bool = False,
) -> View:
    recipients: dict[str, Any] = {
        "type": "multi_users_select",
        "action_id": ids.RECIPIENTS_INPUT,
        "max_selected_items": MAX_RECIPIENTS,
        "placeholder": plain(_("Nobody: just give me the link")),
    }
    if initial_users:
        recipients["initial_users"] = list(initial_users)[:MAX_RECIPIENTS]
    blocks: list[dict[str, Any]] = [context(note) for note in notes]
    if offer_request:
        # The other way round: the person who needs a secret asks for it.
        blocks.append({
            "type": "actions",
            "block_id": ids.SWITCH_BLOCK,
            "elements": [{
                "type": "button",
                "action_id": ids.SWITCH_TO_REQUEST_ACTION,
                "text": plain(_("Request a secret instead")),
                "value": "request",
            }],
        })
    blocks += secret_inputs(
        default_ttl=default_ttl, max_ttl=max_ttl, initial_text=initial_text
    )
    blocks.append(
        {
            "type": "input",
            "block_id": ids.RECIPIENTS_BLOCK,
            "optional": True,
            "label": plain(_("Send to")),
            "element": recipients,
            "hint": plain(_.plural(
                "Up to {count} person. They get their own one-time secret in a DM.",
                "Up to {count} people. Each gets their own one-time secret in a DM.",
                MAX_RECIPIENTS, count=MAX_RECIPIENTS,
            )),
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.SHARE_VIEW,
        "title": plain(_("Share a secret")),
        "submit": plain(_("Share")),
        "close": plain(_("Cancel")),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def answer_modal(message: Message, *, generated: str | None = None) -> View:
    """The share form's own window, showing its answer (from the global shortcut,
    which has no conversation to answer in); a generated password on top."""
    top: list[dict[str, Any]] = []
    if generated is not None:
        top = [
            section(_(GENERATED_NOTE)),
            *_verbatim(generated),
        ]
    return {
        "type": "modal",
        "callback_id": ids.SHARE_ANSWER_VIEW,
        "title": plain(_("Share a secret")),
        "close": plain(_("Done")),
        "blocks": [*top, *message["blocks"]],
    }


def notice_modal(title: str, text: str, *, said: str | None = None) -> View:
    """A modal that only says something (working, done, gone); what a remote service
    said, if anything, as plain text below it."""
    return {
        "type": "modal",
        "title": plain(title[:24]),  # every caller's title fits, in every language
        "close": plain(_("Close")),
        "blocks": [section(text), *([service_words(said)] if said else [])],
    }


def _verbatim(value: str) -> list[dict[str, Any]]:
    """The text exactly as stored: preformatted rich text, no markup interpreted."""
    chunks = [value[i : i + MODAL_TEXT_LIMIT] for i in range(0, len(value), MODAL_TEXT_LIMIT)]
    return [
        {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": c}]}
            ],
        }
        for c in chunks or [""]
    ]


def generated_modal(value: str, summary: str) -> View:
    """The generated password, shown once to its maker."""
    return {
        "type": "modal",
        "callback_id": ids.GENERATED_VIEW,
        "title": plain(_("Your new password")),
        "close": plain(_("Done")),
        "blocks": [
            section(_(GENERATED_NOTE)),
            *_verbatim(value),
            context(summary),
        ],
    }


def reveal_modal(*, sender: str, passphrase_required: bool, private_metadata: str) -> View:
    blocks: list[dict[str, Any]] = [
        section(opening(_(
            "{sender} sent you a one-time secret. Once you reveal it, it is gone: copy it "
            "before you close this window.", sender=who(sender),
        ), sender))
    ]
    if passphrase_required:
        blocks.append(
            {
                "type": "input",
                "block_id": ids.REVEAL_PASSPHRASE_BLOCK,
                "label": plain(_("Passphrase")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REVEAL_PASSPHRASE_INPUT,
                    "max_length": 200,
                },
                "hint": plain(_("The sender should give it to you separately, not with the link.")),
            }
        )
    return {
        "type": "modal",
        "callback_id": ids.REVEAL_VIEW,
        "title": plain(_("One-time secret")),
        "submit": plain(_("Reveal")),
        "close": plain(_("Cancel")),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def revealed_modal(*, sender: str, value: str) -> View:
    return {
        "type": "modal",
        "title": plain(_("One-time secret")),
        "close": plain(_("Done")),
        "blocks": [
            section(_("The secret from {sender}:", sender=who(sender))),
            *_verbatim(value),
            context(_("This was its one view: it is gone from the store now. Copy it before "
                      "closing this window.")),
        ],
    }
