"""Block Kit modals: pure functions from values to views.

A revealed or generated secret is only ever shown in a modal: a modal leaves
nothing in chat history. `private_metadata` carries where to answer and, for a
reveal, the key the viewer may use; never the secret or a passphrase.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.slack import ids
from bot.slack.blocks import (
    Message,
    context,
    human_duration,
    section,
    service_words,
    who,
)

View = dict[str, Any]
MODAL_TEXT_LIMIT = 3000  # plain_text_input max_length, and section text
MAX_RECIPIENTS = 10
LABEL_LIMIT = 100
TTL_CHOICES = (300, 3600, 86400, 7 * 86400, 14 * 86400, 30 * 86400)


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def ttl_choices(default_ttl: int, max_ttl: int) -> list[int]:
    """The lifetimes offered: the usual ones up to the maximum, plus the default."""
    return sorted({t for t in TTL_CHOICES if t <= max_ttl} | {default_ttl})


def _ttl_option(seconds: int) -> dict[str, Any]:
    return {"text": plain(human_duration(seconds)), "value": str(seconds)}


def secret_inputs(
    *, default_ttl: int, max_ttl: int, initial_text: str | None = None
) -> list[dict[str, Any]]:
    """The secret, Generate, Passphrase and Expires after inputs (share and answer forms)."""
    secret_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ids.SECRET_INPUT,
        "multiline": True,
        "max_length": MODAL_TEXT_LIMIT,
        "placeholder": plain("Password, token, recovery code…"),
    }
    if initial_text:
        secret_input["initial_value"] = initial_text
    return [
        {
            "type": "input",
            "block_id": ids.SECRET_BLOCK,
            "optional": True,
            "label": plain("Secret"),
            "element": secret_input,
            "hint": plain("It can be viewed once. Leave it empty to generate a password."),
        },
        {
            "type": "input",
            "block_id": ids.GENERATE_BLOCK,
            "optional": True,
            "label": plain("Or"),
            "element": {
                "type": "checkboxes",
                "action_id": ids.GENERATE_INPUT,
                "options": [
                    {"text": plain("Generate a strong password for me"), "value": "generate"}
                ],
            },
        },
        {
            "type": "input",
            "block_id": ids.LABEL_BLOCK,
            "optional": True,
            "label": plain("What is it for?"),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.LABEL_INPUT,
                "max_length": LABEL_LIMIT,
                "placeholder": plain("e.g. staging database"),
            },
            "hint": plain(
                "Optional, not secret: shown with the link, to the people you send it to, "
                "and in your list. Never put the secret here."
            ),
        },
        {
            "type": "input",
            "block_id": ids.PASSPHRASE_BLOCK,
            "optional": True,
            "label": plain("Passphrase"),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.PASSPHRASE_INPUT,
                "max_length": 200,
            },
            "hint": plain(
                "Optional. Asked before the secret is shown; send it another way. "
                "Slack shows it as you type."
            ),
        },
        {
            "type": "input",
            "block_id": ids.TTL_BLOCK,
            "label": plain("Expires after"),
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
        "placeholder": plain("Nobody: just give me the link"),
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
                "text": plain("Request a secret instead"),
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
            "label": plain("Send to"),
            "element": recipients,
            "hint": plain("Up to 10 people. Each gets their own one-time secret in a DM."),
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.SHARE_VIEW,
        "title": plain("Share a secret"),
        "submit": plain("Share"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def answer_modal(message: Message, *, generated: str | None = None) -> View:
    """The share form's own window, showing its answer (from the global shortcut,
    which has no conversation to answer in); a generated password on top."""
    top: list[dict[str, Any]] = []
    if generated is not None:
        top = [
            section("Here is the password that was generated. Copy it now: it is not "
                    "shown again, and it is in no message."),
            *_verbatim(generated),
        ]
    return {
        "type": "modal",
        "callback_id": ids.SHARE_ANSWER_VIEW,
        "title": plain("Share a secret"),
        "close": plain("Done"),
        "blocks": [*top, *message["blocks"]],
    }


def notice_modal(title: str, text: str, *, said: str | None = None) -> View:
    """A modal that only says something (working, done, gone); what a remote service
    said, if anything, as plain text below it."""
    return {
        "type": "modal",
        "title": plain(title[:24]),
        "close": plain("Close"),
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
        "title": plain("Your new password"),
        "close": plain("Done"),
        "blocks": [
            section("Here is the password that was generated. Copy it now: it is not "
                    "shown again, and it is in no message."),
            *_verbatim(value),
            context(summary),
        ],
    }


def reveal_modal(*, sender: str, passphrase_required: bool, private_metadata: str) -> View:
    blocks: list[dict[str, Any]] = [
        section(
            f"{who(sender, start=True)} sent you a one-time secret. Once you reveal it, it is "
            "gone: "
            "copy it before you close this window."
        )
    ]
    if passphrase_required:
        blocks.append(
            {
                "type": "input",
                "block_id": ids.REVEAL_PASSPHRASE_BLOCK,
                "label": plain("Passphrase"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REVEAL_PASSPHRASE_INPUT,
                    "max_length": 200,
                },
                "hint": plain("The sender should give it to you separately, not with the link."),
            }
        )
    return {
        "type": "modal",
        "callback_id": ids.REVEAL_VIEW,
        "title": plain("One-time secret"),
        "submit": plain("Reveal"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def revealed_modal(*, sender: str, value: str) -> View:
    return {
        "type": "modal",
        "title": plain("One-time secret"),
        "close": plain("Done"),
        "blocks": [
            section(f"The secret from {who(sender)}:"),
            *_verbatim(value),
            context("This was its one view: it is gone from the store now. Copy it before "
                    "closing this window."),
        ],
    }
