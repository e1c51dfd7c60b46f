"""Block Kit messages: pure functions from values to message payloads.

No builder here ever takes the secret or a passphrase: messages go to channels,
DMs and response_urls, and a secret belongs only in a modal (see modals.py).
The only key a message may carry is the one its reader may use: the link (in
the sender's own answer and in the recipient's DM) and a button value for the
person the button is for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bot.recipients import ANONYMOUS_SENDER
from bot.slack.ids import BURN_ACTION, COMMAND, OPEN_LINK_ACTION, REVEAL_ACTION

Blocks = list[dict[str, Any]]
Message = dict[str, Any]


def slack_date(timestamp: int) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    fallback = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{timestamp}^{{date_short_pretty}} at {{time}}|{fallback}>"


def human_duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def who(sender: str, *, start: bool = False) -> str:
    """A sender as a mention; an API user by their email (custid), the API's anonymous
    caller in words; an answer to a request link came from outside Slack."""
    if sender.startswith(("U", "W")) and sender.isalnum():
        return mention(sender)
    if sender == ANONYMOUS_SENDER:
        return "Someone using the API" if start else sender
    if "@" in sender:
        return escape_mrkdwn(sender)
    return "Someone outside Slack" if start else "someone outside Slack"


def escape_mrkdwn(text: str) -> str:
    """Text typed by a person, shown as text: no mention, link or channel alert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def people(user_ids: Sequence[str]) -> str:
    names = [mention(u) for u in user_ids]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


BURN_EXPLAINED = (
    "*Burn now* destroys the secret if nobody has opened it yet: the link stops working."
)


def burn_button(value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": BURN_ACTION,
        "text": {"type": "plain_text", "text": "Burn now"},
        "style": "danger",
        "value": value,
        "confirm": {
            "title": {"type": "plain_text", "text": "Burn this secret?"},
            "text": {"type": "mrkdwn", "text": "Nobody will be able to open it any more."},
            "confirm": {"type": "plain_text", "text": "Burn it"},
            "deny": {"type": "plain_text", "text": "Keep it"},
        },
    }


def quoted(label: str | None) -> str:
    """A label as it appears in a sentence, or nothing."""
    return f" “{escape_mrkdwn(label)}”" if label else ""


def secret_link_message(
    *,
    link: str,
    expires_at: int,
    passphrase: bool = False,
    burn_value: str | None = None,
    label: str | None = None,
) -> Message:
    """The sender's private answer: the one-time link, its expiry, and a Burn button.

    `text` (push and e-mail previews, screen readers) never carries the link."""
    text = f"Your one-time link{quoted(label)} is ready. It can be opened once."
    blocks: Blocks = [
        section(f":closed_lock_with_key: Here is your one-time link{quoted(label)}:\n<{link}>"),
        context(_expiry_note(expires_at, passphrase)),
    ]
    if burn_value:
        blocks += [{"type": "actions", "elements": [burn_button(burn_value)]},
                   context(BURN_EXPLAINED)]
    return {"text": text, "blocks": blocks}


def sent_to_recipients_message(
    *,
    delivered: Sequence[str],
    failed: Sequence[tuple[str, str]],
    expires_at: int,
    passphrase: bool = False,
    burn_value: str | None = None,
    said: Sequence[str] = (),
    label: str | None = None,
) -> Message:
    """The sender's private answer after sharing to people: who got it, who did not
    (and, as plain text, what the secret store said when it refused)."""
    lines: list[str] = []
    if delivered:
        how = ("Each got their own link in a direct message" if len(delivered) > 1
               else "They got the link in a direct message")
        lines.append(
            f":closed_lock_with_key: Sent a one-time secret{quoted(label)} to "
            f"{people(delivered)}. {how}, with a *Reveal in Slack* button."
        )
    for user_id, reason in failed:
        lines.append(f":warning: Nothing was shared with {mention(user_id)}: {reason.rstrip('.')}.")
    text = "\n".join(lines)
    blocks: Blocks = [section(text)]
    if said:
        blocks.append(service_words(*said))
    if delivered:
        blocks.append(context(_expiry_note(expires_at, passphrase)))
        if burn_value:
            blocks += [{"type": "actions", "elements": [burn_button(burn_value)]},
                       context(BURN_EXPLAINED)]
    return {"text": text, "blocks": blocks}


def _expiry_note(expires_at: int, passphrase: bool) -> str:
    # An absolute date, shown in each reader's time zone: "in 7 days" would go stale.
    note = (
        f"It can be opened once, and expires {slack_date(expires_at)}. "
        "Only you can see this message."
    )
    if passphrase:
        note += " Send the passphrase another way: never next to the link."
    return note


def recipient_message(
    *, sender: str, link: str, expires_at: int, passphrase: bool, reveal_value: str,
    about: str | None = None, label: str | None = None,
) -> Message:
    """A recipient's DM: who sent it, until when, a Reveal button and the link. No secret.

    `about`: the "what for" of the request this secret answers."""
    lines = [
        f":closed_lock_with_key: {who(sender, start=True)} sent you a one-time secret"
        + quoted(label)
        + (f" for your request: *{escape_mrkdwn(about)}*" if about else "")
        + f". It can be viewed once and expires {slack_date(expires_at)}."
    ]
    if passphrase:
        lines.append(f"You need the passphrase {who(sender)} gives you separately.")
    blocks: Blocks = [
        section("\n".join(lines)),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": REVEAL_ACTION,
                    "text": {"type": "plain_text", "text": "Reveal in Slack"},
                    "style": "primary",
                    "value": reveal_value,
                },
                {
                    "type": "button",
                    "action_id": OPEN_LINK_ACTION,
                    "text": {"type": "plain_text", "text": "Open in browser"},
                    "url": link,
                },
            ],
        },
        context(f"Or open <{link}> yourself. Either way it works once, then it is gone."),
    ]
    return {
        "text": f"{who(sender, start=True)} sent you a one-time secret{quoted(label)}",
        "blocks": blocks,
    }


def revealed_dm_message(*, sender: str, at: int, label: str | None = None) -> Message:
    """What a recipient's DM becomes once they revealed the secret in Slack."""
    return recipient_outcome_message(
        sender=sender, label=label, state="received", via="slack", at=at
    )


_DM_OUTCOMES = {
    ("received", "slack"): ":white_check_mark: You revealed {what} in Slack {at}. "
    "It is gone now; its link no longer works.",
    ("received", "page"): ":unlock: {What} was opened in a browser {at}, by someone "
    "with the link.",
    ("received", "api"): ":unlock: {What} was retrieved through the API {at}, by someone "
    "with the link.",
    ("received", None): ":unlock: {What} was opened {at}, by someone with the link.",
    ("burned", "attempts"): ":fire: {What} was destroyed {at} after too many wrong "
    "passphrases.",
    ("burned", None): ":fire: {What} was burned by {sender} {at}, before anyone opened it.",
    ("expired", None): ":hourglass: {What} expired unopened {at}.",
}
_GONE = " Its link no longer works; ask {sender} to share it again if you still need it."


def recipient_outcome_message(
    *, sender: str, label: str | None, state: str, via: str | None, at: int
) -> Message:
    """What a recipient's DM becomes once its secret is gone: what happened, and no
    link or button left."""
    line = _DM_OUTCOMES.get((state, via)) or _DM_OUTCOMES.get((state, None))
    if line is None:
        line = ":no_entry_sign: {What} is gone."
    if not (state == "received" and via == "slack"):
        line += _GONE
    what = f"the one-time secret{quoted(label)} from {who(sender)}"
    text = line.format(
        what=what, What=what[0].upper() + what[1:], at=slack_date(at), sender=who(sender)
    )
    return {"text": text, "blocks": [section(text)]}


def not_revealed_dm_message(*, sender: str, destroyed: bool) -> Message:
    """What a recipient's DM becomes when Reveal found the secret gone or destroyed it."""
    if destroyed:
        text = (f":fire: The secret from {mention(sender)} was destroyed after too many "
                "wrong passphrases. Ask them to share it again if it is still needed.")
    else:
        text = (f":no_entry_sign: The secret from {mention(sender)} is not available any "
                "more: it was already viewed, burned or expired. Its link no longer works.")
    return {"text": text, "blocks": [section(text)]}


def burn_outcome_message(
    *, burned: int, gone: int, failed: int, recipients: Sequence[str] = (), unknown: int = 0
) -> Message:
    """What the sender's message becomes after Burn now."""
    whose = f" for {people(recipients)}" if recipients else ""
    several = burned + gone + failed > 1
    lines: list[str] = []
    if burned:
        lines.append(
            f":fire: Burned{whose}: nobody can open {'them' if several else 'it'} any more."
            if not gone and not failed and not unknown
            else f":fire: Burned {_of_them(burned)}: nobody can open "
            f"{'it' if burned == 1 else 'those'} any more."
        )
    if gone:
        lines.append(
            ":information_source: "
            + (f"{_of_them(gone)} {'was' if gone == 1 else 'were'}" if several else "It was")
            + " already opened, burned or expired: there was nothing left to burn."
        )
    if failed:
        lines.append(
            f":warning: {_of_them(failed) if several else 'It'} could not be burned right "
            "now: the secret store is unavailable. Try *Burn now* again in a minute."
        )
    if unknown:
        lines.append(
            f":grey_question: For {unknown} the secret store did not answer in time: it is "
            "not known whether the burn went through, and the secret may have been used up."
        )
    text = "\n".join(lines)
    return {"text": text, "blocks": [section(text)]}


def _of_them(count: int) -> str:
    return f"{count} of them"


_RECEIVED_VIA = {
    # Only a reveal in Slack says who it was: a link works for whoever holds it.
    "slack": "{who} revealed it in Slack",
    "page": "someone with the link opened it in a browser",
    "api": "someone with the link retrieved it through the API (a program, not a browser)",
}


def shared_phrase(label: str | None, recipients: Sequence[str], created: int) -> str:
    """"The secret “label” you shared today at 01:04 with @bob"."""
    phrase = f"The secret{quoted(label)} you shared {slack_date(created)}"
    if recipients:
        phrase += f" with {people(recipients)}"
    return phrase


def received_how(via: str | None, recipients: Sequence[str]) -> str:
    how = _RECEIVED_VIA.get(via or "", "someone with the link opened it")
    return how.format(who=people(recipients) or "the recipient")


def notification_message(
    *, kind: str, via: str | None, recipients: Sequence[str], created: int,
    label: str | None = None,
) -> Message:
    """A sender's DM when a secret they shared was revealed, burned or expired.

    Never a link: `text` shows in push and e-mail previews."""
    shared = shared_phrase(label, recipients, created)
    if kind == "received":
        text = f":unlock: {shared} was viewed: {received_how(via, recipients)}. It is gone now."
    elif kind == "burned" and via == "attempts":
        text = (
            f":fire: {shared} was destroyed after too many wrong passphrases. "
            "Share it again if it is still needed."
        )
    elif kind == "burned":
        text = f":fire: {shared} was burned before anyone viewed it."
    else:
        text = f":hourglass: {shared} expired without being viewed."
    return {"text": text, "blocks": [section(text)]}


_REFUSED_WHY = {
    "other": "{who} pressed its *Reveal in Slack* button, but it was not sent to them, "
    "so nothing was shown",
    "passphrase": "someone tried a wrong passphrase in Slack",
    "page": "someone with the link tried a wrong passphrase in a browser",
    "api": "someone with the link tried a wrong passphrase through the API",
}


def refused_message(
    *, why: str, by: str | None, label: str | None, recipients: Sequence[str], created: int,
    refused: int,
) -> Message:
    """A sender's DM when someone tried to open their secret and was refused."""
    reason = _REFUSED_WHY.get(why, "someone tried to open it and was refused").format(
        who=mention(by) if by else "Someone"
    )
    shared = shared_phrase(label, recipients, created)
    text = f":warning: {shared} is still safe: {reason}."
    if refused > 1:
        text += f" Refused attempts so far: {refused}."
    text += (" To stop anyone opening it, burn it from the app's Home tab or with "
             f"`{COMMAND} list`.")
    return {"text": text, "blocks": [section(text)]}


def usage_message() -> Message:
    text = (
        "*Share a secret once.* Whoever opens a one-time secret sees it once, "
        "then it is gone: from the link, from the store and from chat history.\n"
        f"• `{COMMAND}` alone (or the *Share a secret* shortcut) opens a form: the secret, "
        "an optional label saying what it is for, an optional passphrase, how long it "
        "lives, and up to 10 people to send it to. "
        "Tick *Generate a strong password* to have one made for you.\n"
        f"• `{COMMAND} &lt;text&gt;` turns the text into a one-time link that only you see here; "
        "send it to whoever needs it.\n"
        f"• `{COMMAND} @someone &lt;text&gt;` sends it straight to that person: they get a "
        "direct message with a *Reveal in Slack* button and the link. Everyone you name "
        "(up to 10) gets their own one-time secret.\n"
        f"• `{COMMAND} gen` makes a strong random password, shows it to you once, and "
        f"gives you its one-time link (`{COMMAND} gen @someone` sends it to them).\n"
        f"• `{COMMAND} request @someone what for` asks them for a secret: they get a direct "
        "message with *Answer* and *Decline*; the first answer comes to you as a one-time "
        f"secret. `{COMMAND} request what for` (nobody named) gives you a one-time request "
        "link for someone outside Slack.\n"
        "• On any message, *More actions → Make one-time secret* opens the form with "
        "that message's text. Then delete the original message: it stays in history.\n"
        "• *Burn now* under your link destroys the secret if nobody has opened it yet. "
        "You get a direct message when your secret is viewed, burned or expires unread.\n"
        f"• `{COMMAND} list` (and the app's *Home* tab) lists your secrets: what became "
        "of each, and *Burn* for those nobody has opened yet.\n"
        f"• `{COMMAND} help` shows this message."
    )
    return {"text": text, "blocks": [section(text)]}


def error_message(text: str, *, said: str | None = None) -> Message:
    """Our own words (mrkdwn), and what a remote service said, as plain text, apart."""
    line = f":warning: {text}"
    blocks: Blocks = [section(line)]
    if said:
        blocks.append(service_words(said))
    return {"text": line, "blocks": blocks}


def service_words(*said: str) -> dict[str, Any]:
    """A remote service's own words (an Onetime Secret error message), quoted.

    Only ever plain text, never mrkdwn and never a message's `text`: a hostile or
    broken server must not be able to notify <!channel>, mention people, or put
    links and formatting in front of a user. Emoji codes are not turned into emoji.
    """
    return {"type": "context", "elements": [
        {"type": "plain_text", "text": f"It said: \u201c{text}\u201d", "emoji": False}
        for text in said
    ]}
