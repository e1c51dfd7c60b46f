"""Block Kit validation with slack_sdk's own models, for every view and message sent.

The fake Slack checks the limits this app could get wrong; slack_sdk's models
know the whole of Block Kit (element types, field lengths, required fields). A
test that calls `validate_recorded(fake)` fails if anything the app sent would
not parse or validate there.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.support.fake_slack import FakeSlack

MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url")


def validate_view(view: dict[str, Any]) -> None:
    parsed = View(**view)
    parsed.validate_json()
    # Round trip: a field the model does not know is dropped, and would show here.
    assert len(parsed.to_dict()["blocks"]) == len(view.get("blocks", [])), view


def validate_message(body: dict[str, Any]) -> None:
    blocks = body.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and type(parsed) is not Block, f"unknown block: {block}"
        parsed.validate_json()


def validate_recorded(fake: FakeSlack) -> int:
    """Validate every view and message the fake recorded; returns how many."""
    checked = 0
    for call in list(fake.calls):
        if call.method.startswith("views."):
            view = call.body["view"]
            validate_view(view if isinstance(view, dict) else json.loads(view))
        elif call.method in MESSAGE_METHODS:
            validate_message(call.body)
        else:
            continue
        checked += 1
    return checked
