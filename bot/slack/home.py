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
    quoted,
    section,
    slack_date,
)
from bot.slack.lang import N_, _
from bot.slack.shares import Share

LIVE_SHOWN = 20  # live secrets listed (each a block with its Burn button)
RECENT_SHOWN = 10  # outcomes listed

_EMOJI = {"live": ":closed_lock_with_key:", "received": ":unlock:", "burned": ":fire:",
          "expired": ":hourglass:"}


def listed_burn_value(key: ServerKey, share: Share) -> str:
    return trust.pack(key, trust.LISTED_BURN, {"i": share.id, "by": share.sender})


def _title(share: Share) -> str:
    label = f"*{escape_mrkdwn(share.label)}*" if share.label else "_" + _("No label") + "_"
    whom = (_("to {person}", person=mention(share.recipient)) if share.recipient
            else _("link only"))
    return f"{label} · {whom}"


def outcome_phrase(share: Share, now: float) -> str:
    """What became of a share, from its sender's side, in the current language."""
    state = share.shown_state(now)
    at = slack_date(share.settled_at or share.expires_at)
    if state == "received":
        if share.via == "slack":
            return _("revealed in Slack by {person} {when}", person=mention(share.recipient or ""),
                     when=at)
        if share.via == "page":
            return _("opened in a browser {when}, by someone with the link", when=at)
        if share.via == "api":
            return _("retrieved through the API {when}, by someone with the link", when=at)
        return _("opened {when}, by someone with the link", when=at)
    if state == "burned":
        if share.via == "attempts":
            return _("destroyed {when} after too many wrong passphrases", when=at)
        return _("burned {when}", when=at)
    if state == "expired":
        return _("expired unopened {when}", when=at)
    return _("not opened yet; expires {when}", when=slack_date(share.expires_at))


def _refusals(share: Share) -> str:
    if not share.refused:
        return ""
    return " · :warning: " + _.plural(
        "{count} refused attempt", "{count} refused attempts", share.refused, count=share.refused
    )


def _burn_button(key: ServerKey, share: Share) -> dict[str, Any]:
    """Burn, for one listed secret (its own action: the value names the record)."""
    return {
        "type": "button",
        "action_id": ids.HOME_BURN_ACTION,
        "text": {"type": "plain_text", "text": _("Burn")},
        "style": "danger",
        "value": listed_burn_value(key, share),
        "confirm": {
            "title": {"type": "plain_text", "text": _("Burn this secret?")},
            "text": {"type": "mrkdwn", "text": _("Nobody will be able to open it any more.")},
            "confirm": {"type": "plain_text", "text": _("Burn it")},
            "deny": {"type": "plain_text", "text": _("Keep it")},
        },
    }


def _live_block(key: ServerKey, share: Share, now: float) -> dict[str, Any]:
    details = _("Shared {when}", when=slack_date(share.created)) + " · " + outcome_phrase(
        share, now)
    if share.passphrase:
        details += " · " + _("passphrase")
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"{_title(share)}\n{details}{_refusals(share)}"},
        "accessory": _burn_button(key, share),
    }


def _recent_block(share: Share, now: float) -> dict[str, Any]:
    emoji = _EMOJI.get(share.shown_state(now), ":grey_question:")
    return context(f"{emoji} {_title(share)}: {outcome_phrase(share, now)}{_refusals(share)}")


HOW_TO = N_(
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
        blocks.append(section(_("*Live secrets* ({count}): not opened yet.", count=len(live))))
        blocks += [_live_block(key, s, now) for s in live[:LIVE_SHOWN]]
        if len(live) > LIVE_SHOWN:
            older = len(live) - LIVE_SHOWN
            blocks.append(context(_.plural(
                "…and {count} older one.", "…and {count} older ones.", older, count=older)))
    else:
        blocks.append(section(_("*Live secrets*: none. Nothing you shared can still be opened.")))
    blocks.append({"type": "divider"})
    if done:
        blocks.append(section(_("*Recent outcomes*")))
        blocks += [_recent_block(s, now) for s in done[:RECENT_SHOWN]]
    else:
        blocks.append(section(_("*Recent outcomes*: none yet.")))
    return blocks


def home_view(key: ServerKey, shares: Sequence[Share], now: float) -> dict[str, Any]:
    """The app's Home tab for the sender of `shares`, in the current language (build it
    speaking to them: it is often published outside their own request)."""
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _("Your one-time secrets")}},
        *_listing(key, shares, now),
        {"type": "divider"},
        section(_(HOW_TO)),
    ]
    return {"type": "home", "blocks": blocks}


def list_message(key: ServerKey, shares: Sequence[Share], now: float) -> Message:
    """`/ots list`: the Home tab's list, privately, where the command was typed."""
    live = sum(1 for s in shares if s.is_live(now))
    text = _("Your one-time secrets: {count} live.", count=live)
    blocks: Blocks = [
        *_listing(key, shares, now),
        context(_("Only you can see this. The app's Home tab keeps this list up to date.")),
    ]
    return {"text": text, "blocks": blocks}


# A share's state in a one-word summary (a message's `text`: previews, screen readers).
_STATES = {"live": N_("live"), "received": N_("received"), "burned": N_("burned"),
           "expired": N_("expired")}


def answer_message(shares: Sequence[Share], now: float, burn_value: str | None) -> Message:
    """The sender's answer, rebuilt when one of its secrets changed: what became of
    each, and Burn now only while one is still live. No link. In the current
    language: build it speaking to the sender."""
    first = shares[0]
    label = quoted(first.label)
    live = [s for s in shares if s.is_live(now)]
    if first.recipient is None:
        state = first.shown_state(now)
        text = f"{_EMOJI.get(state, '')} " + _(
            "Your one-time link{label}: {outcome}.", label=label,
            outcome=outcome_phrase(first, now))
        summary = _("Your one-time link{label}: {state}", label=label,
                    state=_(_STATES[state]) if state in _STATES else state)
    else:
        lines = [":closed_lock_with_key: " + _(
            "Your one-time secret{label}, shared {when} with {people}:", label=label,
            when=slack_date(first.created), people=people([s.recipient or "" for s in shares]))]
        lines += [f"• {mention(s.recipient or '')}: {outcome_phrase(s, now)}{_refusals(s)}"
                  for s in shares]
        text = "\n".join(lines)
        summary = _("Your one-time secret{label}: {done} of {total} done", label=label,
                    done=len(shares) - len(live), total=len(shares))
    blocks: Blocks = [section(text)]
    if live and burn_value:
        blocks.append({"type": "actions", "elements": [burn_button(burn_value)]})
    return {"text": summary, "blocks": blocks}
