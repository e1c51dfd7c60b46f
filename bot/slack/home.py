"""The sender's view of their secrets: the Home tab, `/ots list`, and the answer
message rebuilt when a secret in it changes. Pure functions from shares to Block Kit.

No link ever appears here: a listed secret's link was the sender's to pass on,
and a Home tab is seen again long after. Each live secret has a Burn button
whose signed value names the record (not the receipt key) and its sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.serverkey import ServerKey
from bot.slack import ids, trust
from bot.slack.blocks import (
    Blocks,
    Message,
    burn_button,
    context,
    escape_mrkdwn,
    mention,
    people,
    section,
    slack_date,
)
from bot.slack.shares import Share

LIVE_SHOWN = 20  # live secrets listed (each a block with its Burn button)
RECENT_SHOWN = 10  # outcomes listed

_EMOJI = {"live": ":closed_lock_with_key:", "received": ":unlock:", "burned": ":fire:",
          "expired": ":hourglass:"}


def listed_burn_value(key: ServerKey, share: Share) -> str:
    return trust.pack(key, trust.LISTED_BURN, {"i": share.id, "by": share.sender})


def _title(share: Share) -> str:
    label = f"*{escape_mrkdwn(share.label)}*" if share.label else "_No label_"
    whom = f"to {mention(share.recipient)}" if share.recipient else "link only"
    return f"{label} · {whom}"


def outcome_phrase(share: Share, now: float) -> str:
    """What became of a share, from its sender's side."""
    state = share.shown_state(now)
    at = slack_date(share.settled_at or share.expires_at)
    if state == "received":
        if share.via == "slack":
            return f"revealed in Slack by {mention(share.recipient or '')} {at}"
        if share.via == "page":
            return f"opened in a browser {at}, by someone with the link"
        if share.via == "api":
            return f"retrieved through the API {at}, by someone with the link"
        return f"opened {at}, by someone with the link"
    if state == "burned":
        if share.via == "attempts":
            return f"destroyed {at} after too many wrong passphrases"
        return f"burned {at}"
    if state == "expired":
        return f"expired unopened {at}"
    return f"not opened yet; expires {slack_date(share.expires_at)}"


def _refusals(share: Share) -> str:
    if not share.refused:
        return ""
    return f" · :warning: {share.refused} refused attempt{'s' if share.refused != 1 else ''}"


def _live_block(key: ServerKey, share: Share, now: float) -> dict[str, Any]:
    details = f"Shared {slack_date(share.created)} · {outcome_phrase(share, now)}"
    if share.passphrase:
        details += " · passphrase"
    button = burn_button(listed_burn_value(key, share))
    button["action_id"] = ids.HOME_BURN_ACTION
    button["text"] = {"type": "plain_text", "text": "Burn"}
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"{_title(share)}\n{details}{_refusals(share)}"},
        "accessory": button,
    }


def _recent_block(share: Share, now: float) -> dict[str, Any]:
    emoji = _EMOJI.get(share.shown_state(now), ":grey_question:")
    return context(f"{emoji} {_title(share)}: {outcome_phrase(share, now)}{_refusals(share)}")


HOW_TO = (
    "*How it works.* `/ots` (or the *Share a secret* shortcut) opens a form: the secret, "
    "an optional label saying what it is for, a passphrase, a lifetime and up to 10 "
    "people. Each person gets their own one-time secret in a DM; whoever opens it sees "
    "it once, then it is gone. *Burn* destroys a secret nobody has opened yet. "
    "`/ots list` shows this list anywhere; `/ots help` says more."
)


def _listing(key: ServerKey, shares: Sequence[Share], now: float) -> Blocks:
    live = [s for s in shares if s.is_live(now)]
    done = sorted(
        (s for s in shares if not s.is_live(now)),
        key=lambda s: s.settled_at or s.expires_at, reverse=True,
    )
    blocks: Blocks = []
    if live:
        blocks.append(section(f"*Live secrets* ({len(live)}): not opened yet."))
        blocks += [_live_block(key, s, now) for s in live[:LIVE_SHOWN]]
        if len(live) > LIVE_SHOWN:
            blocks.append(context(f"…and {len(live) - LIVE_SHOWN} older ones."))
    else:
        blocks.append(section("*Live secrets*: none. Nothing you shared can still be opened."))
    blocks.append({"type": "divider"})
    if done:
        blocks.append(section("*Recent outcomes*"))
        blocks += [_recent_block(s, now) for s in done[:RECENT_SHOWN]]
    else:
        blocks.append(section("*Recent outcomes*: none yet."))
    return blocks


def home_view(key: ServerKey, shares: Sequence[Share], now: float) -> dict[str, Any]:
    """The app's Home tab for the sender of `shares`."""
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your one-time secrets"}},
        *_listing(key, shares, now),
        {"type": "divider"},
        section(HOW_TO),
    ]
    return {"type": "home", "blocks": blocks}


def list_message(key: ServerKey, shares: Sequence[Share], now: float) -> Message:
    """`/ots list`: the Home tab's list, privately, where the command was typed."""
    live = sum(1 for s in shares if s.is_live(now))
    text = f"Your one-time secrets: {live} live."
    blocks: Blocks = [
        *_listing(key, shares, now),
        context("Only you can see this. The app's Home tab keeps this list up to date."),
    ]
    return {"text": text, "blocks": blocks}


def answer_message(shares: Sequence[Share], now: float, burn_value: str | None) -> Message:
    """The sender's answer, rebuilt when one of its secrets changed: what became of
    each, and Burn now only while one is still live. No link."""
    first = shares[0]
    label = f" “{escape_mrkdwn(first.label)}”" if first.label else ""
    live = [s for s in shares if s.is_live(now)]
    if first.recipient is None:
        text = (f"{_EMOJI.get(first.shown_state(now), '')} Your one-time link{label}: "
                f"{outcome_phrase(first, now)}.")
        summary = f"Your one-time link{label}: {first.shown_state(now)}"
    else:
        lines = [f":closed_lock_with_key: Your one-time secret{label}, shared "
                 f"{slack_date(first.created)} with {people([s.recipient or '' for s in shares])}:"]
        lines += [f"• {mention(s.recipient or '')}: {outcome_phrase(s, now)}{_refusals(s)}"
                  for s in shares]
        text = "\n".join(lines)
        summary = f"Your one-time secret{label}: {len(shares) - len(live)} of {len(shares)} done"
    blocks: Blocks = [section(text)]
    if live and burn_value:
        blocks.append({"type": "actions", "elements": [burn_button(burn_value)]})
    return {"text": summary, "blocks": blocks}
