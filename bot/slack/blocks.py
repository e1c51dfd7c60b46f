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

from babel.numbers import format_decimal

from bot import i18n
from bot.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    NotAuthorized,
    OutcomeUnknown,
    RateLimited,
    SecretNotFound,
    StoreFull,
)
from bot.i18n import DEFAULT
from bot.recipients import ANONYMOUS_SENDER
from bot.slack.ids import BURN_ACTION, COMMAND, OPEN_LINK_ACTION, REVEAL_ACTION
from bot.slack.lang import N_, _

Blocks = list[dict[str, Any]]
Message = dict[str, Any]


def slack_date(timestamp: int) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback.

    Slack fills in the date and the time; only the words around them are ours."""
    fallback = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tokens = _("{date} at {time}", date="{date_short_pretty}", time="{time}")
    return f"<!date^{timestamp}^{tokens}|{fallback}>"


def human_duration(seconds: int) -> str:
    """"7 days", "1 hour", "5 minutes", "30 seconds", in the reader's language."""
    return i18n.duration(_, seconds)


def number(value: int) -> str:
    """A count as the reader writes numbers ("3,000")."""
    return format_decimal(value, locale=_.locale)




def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def who(sender: str, *, start: bool = False) -> str:
    """A sender as a mention; an API user by their email (custid), the API's anonymous
    caller in words; an answer to a request link came from outside Slack."""
    if sender.startswith(("U", "W")) and sender.isalnum():
        return mention(sender)
    if sender == ANONYMOUS_SENDER:
        return _("Someone using the API") if start else _("someone using the API")
    if "@" in sender:
        return escape_mrkdwn(sender)
    return _("Someone outside Slack") if start else _("someone outside Slack")


def opening(text: str, sender: str) -> str:
    """A sentence that may start with the sender: where our own words stand for them
    ("someone outside Slack sent you…"), they start with a capital letter there. An
    address stays as it was typed; a language that puts the name later is unchanged."""
    name, start = who(sender), who(sender, start=True)
    if name != start and text.startswith(name):
        return start + text[len(name):]
    return text


def escape_mrkdwn(text: str) -> str:
    """Text typed by a person, shown as text: no mention, link or channel alert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def people(user_ids: Sequence[str]) -> str:
    """"<@A>, <@B> and <@C>", joined as the reader's language joins a list of people."""
    names = [mention(u) for u in user_ids]
    if len(names) <= 1:
        return "".join(names)
    return _("{others} and {last}", others=", ".join(names[:-1]), last=names[-1])


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


BURN_EXPLAINED = N_(
    "*Burn now* destroys the secret if nobody has opened it yet: the link stops working."
)


def burn_button(value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": BURN_ACTION,
        "text": {"type": "plain_text", "text": _("Burn now")},
        "style": "danger",
        "value": value,
        "confirm": {
            "title": {"type": "plain_text", "text": _("Burn this secret?")},
            "text": {"type": "mrkdwn", "text": _("Nobody will be able to open it any more.")},
            "confirm": {"type": "plain_text", "text": _("Burn it")},
            "deny": {"type": "plain_text", "text": _("Keep it")},
        },
    }


def quoted(label: str | None) -> str:
    """A label as it appears in a sentence, or nothing: the value of `{label}`, which
    each language places right after the noun it names ("link{label}")."""
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
    text = _("Your one-time link{label} is ready. It can be opened once.", label=quoted(label))
    blocks: Blocks = [
        section(":closed_lock_with_key: " + _("Here is your one-time link{label}:",
                                              label=quoted(label)) + f"\n<{link}>"),
        context(_expiry_note(expires_at, passphrase)),
    ]
    if burn_value:
        blocks += [{"type": "actions", "elements": [burn_button(burn_value)]},
                   context(_(BURN_EXPLAINED))]
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
    (`failed`: each person, and a sentence saying why nothing was shared with them —
    `not_delivered_to`, `not_saved_for`), and, as plain text, what the secret store
    said when it refused."""
    lines: list[str] = []
    if delivered:
        lines.append(":closed_lock_with_key: " + _.plural(
            "Sent a one-time secret{label} to {people}. They got the link in a direct "
            "message, with a *Reveal in Slack* button.",
            "Sent a one-time secret{label} to {people}. Each got their own link in a direct "
            "message, with a *Reveal in Slack* button.",
            len(delivered), label=quoted(label), people=people(delivered),
        ))
    for _user_id, why in failed:
        lines.append(f":warning: {why}")
    text = "\n".join(lines)
    blocks: Blocks = [section(text)]
    if said:
        blocks.append(service_words(*said))
    if delivered:
        blocks.append(context(_expiry_note(expires_at, passphrase)))
        if burn_value:
            blocks += [{"type": "actions", "elements": [burn_button(burn_value)]},
                       context(_(BURN_EXPLAINED))]
    return {"text": text, "blocks": blocks}


_NOT_DELIVERED = {
    "cannot_dm_bot": N_("Nothing was shared with {person}: they are a bot, and bots cannot "
                        "receive secrets."),
    "user_disabled": N_("Nothing was shared with {person}: their account is deactivated."),
    "account_inactive": N_("Nothing was shared with {person}: their account is deactivated."),
    "user_not_found": N_("Nothing was shared with {person}: they are not a member of this "
                         "workspace."),
    "ratelimited": N_("Nothing was shared with {person}: Slack is rate-limiting the app; try "
                      "again in a minute."),
}


def not_delivered_to(user_id: str, error: str) -> str:
    """Why nothing was shared with someone Slack would not let the app message
    (`error`: Slack's error code)."""
    known = _NOT_DELIVERED.get(error)
    if known is not None:
        return _(known, person=mention(user_id))
    return _("Nothing was shared with {person}: Slack would not deliver the message ({error}).",
             person=mention(user_id), error=error)


def not_saved_for(user_id: str, exc: BackendError, *, generated: bool) -> str:
    """Why nothing was shared with someone: the secret store did not keep their secret."""
    if generated:
        return _("Nothing was shared with {person}: the new password was not saved. {problem}",
                 person=mention(user_id), problem=store_problem(exc))
    return _("Nothing was shared with {person}: the secret was not saved. {problem}",
             person=mention(user_id), problem=store_problem(exc))


# What went wrong in the secret store, by kind, most specific first. Each is the
# error's own default message, so an English reader reads exactly what the store said.
_STORE_PROBLEMS: tuple[tuple[type[BackendError], str], ...] = (
    (OutcomeUnknown, N_(
        "The secret store did not answer in time, so it is not known whether this went "
        "through: the secret may have been used up. If it is gone, ask the sender to "
        "share it again.")),
    (StoreFull, N_("The secret store is full right now. Please try again later.")),
    (BackendUnavailable, N_(
        "The secret store is unavailable right now. Please try again shortly.")),
    (SecretNotFound, N_(
        "That secret does not exist: it was already viewed, burned, expired, or the "
        "passphrase was wrong.")),
    (NotAuthorized, N_("Not authorized: the credentials were rejected.")),
    (RateLimited, N_("Too many requests right now. Please try again in a few minutes.")),
    (InvalidRequest, N_("The request was not valid.")),
    (BackendError, N_("Something went wrong with the secret store.")),
)


def store_problem(exc: BackendError) -> str:
    """What the secret store's failure means, as a sentence for the reader.

    The stores write their messages in English, some with details (which store,
    which host). An English reader gets that message as it is; any other reader
    gets the sentence for its kind of failure in their own language."""
    message = exc.message if exc.message.endswith((".", "!", "?")) else exc.message + "."
    if _.language == DEFAULT:
        return message
    for kind, text in _STORE_PROBLEMS:
        if isinstance(exc, kind):
            return _(text)
    return message  # not reached: BackendError is the last kind


def _expiry_note(expires_at: int, passphrase: bool) -> str:
    # An absolute date, shown in each reader's time zone: "in 7 days" would go stale.
    note = _("It can be opened once, and expires {when}. Only you can see this message.",
             when=slack_date(expires_at))
    if passphrase:
        note += " " + _("Send the passphrase another way: never next to the link.")
    return note


def recipient_message(
    *, sender: str, link: str, expires_at: int, passphrase: bool, reveal_value: str,
    about: str | None = None, label: str | None = None,
) -> Message:
    """A recipient's DM: who sent it, until when, a Reveal button and the link. No secret.

    `about`: the "what for" of the request this secret answers."""
    if about:
        first = _("{sender} sent you a one-time secret{label} for your request: *{about}*. "
                  "It can be viewed once and expires {when}.",
                  sender=who(sender), label=quoted(label), about=escape_mrkdwn(about),
                  when=slack_date(expires_at))
    else:
        first = _("{sender} sent you a one-time secret{label}. It can be viewed once and "
                  "expires {when}.",
                  sender=who(sender), label=quoted(label), when=slack_date(expires_at))
    lines = [":closed_lock_with_key: " + opening(first, sender)]
    if passphrase:
        lines.append(_("You need the passphrase {sender} gives you separately.",
                       sender=who(sender)))
    blocks: Blocks = [
        section("\n".join(lines)),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": REVEAL_ACTION,
                    "text": {"type": "plain_text", "text": _("Reveal in Slack")},
                    "style": "primary",
                    "value": reveal_value,
                },
                {
                    "type": "button",
                    "action_id": OPEN_LINK_ACTION,
                    "text": {"type": "plain_text", "text": _("Open in browser")},
                    "url": link,
                },
            ],
        },
        context(_("Or open {link} yourself. Either way it works once, then it is gone.",
                  link=f"<{link}>")),
    ]
    return {
        "text": opening(_("{sender} sent you a one-time secret{label}",
                          sender=who(sender), label=quoted(label)), sender),
        "blocks": blocks,
    }


def revealed_dm_message(*, sender: str, at: int, label: str | None = None) -> Message:
    """What a recipient's DM becomes once they revealed the secret in Slack."""
    return recipient_outcome_message(
        sender=sender, label=label, state="received", via="slack", at=at
    )


# What a recipient's DM says once its secret is gone, by (state, via). Whole
# sentences, translated in the recipient's language; {label} is the label in
# quotes (or nothing), {sender} who sent it, {when} a Slack date.
_DM_OUTCOMES = {
    ("received", "slack"): (":white_check_mark:", N_(
        "You revealed the one-time secret{label} from {sender} in Slack {when}. "
        "It is gone now; its link no longer works.")),
    ("received", "page"): (":unlock:", N_(
        "The one-time secret{label} from {sender} was opened in a browser {when}, by someone "
        "with the link.")),
    ("received", "api"): (":unlock:", N_(
        "The one-time secret{label} from {sender} was retrieved through the API {when}, by "
        "someone with the link.")),
    ("received", None): (":unlock:", N_(
        "The one-time secret{label} from {sender} was opened {when}, by someone with the link.")),
    ("burned", "attempts"): (":fire:", N_(
        "The one-time secret{label} from {sender} was destroyed {when} after too many wrong "
        "passphrases.")),
    ("burned", None): (":fire:", N_(
        "The one-time secret{label} from {sender} was burned by {sender} {when}, before anyone "
        "opened it.")),
    ("expired", None): (":hourglass:", N_(
        "The one-time secret{label} from {sender} expired unopened {when}.")),
}
_DM_GONE = (":no_entry_sign:", N_("The one-time secret{label} from {sender} is gone."))
_ASK_AGAIN = N_("Its link no longer works; ask {sender} to share it again if you still need it.")


def recipient_outcome_message(
    *, sender: str, label: str | None, state: str, via: str | None, at: int
) -> Message:
    """What a recipient's DM becomes once its secret is gone: what happened, and no
    link or button left. In the current language: build it speaking to the recipient."""
    emoji, line = _DM_OUTCOMES.get((state, via)) or _DM_OUTCOMES.get((state, None)) or _DM_GONE
    values = {"label": quoted(label), "sender": who(sender), "when": slack_date(at)}
    text = f"{emoji} {_(line, **values)}"
    if not (state == "received" and via == "slack"):
        text += " " + _(_ASK_AGAIN, sender=who(sender))
    return {"text": text, "blocks": [section(text)]}


def not_revealed_dm_message(*, sender: str, destroyed: bool) -> Message:
    """What a recipient's DM becomes when Reveal found the secret gone or destroyed it."""
    if destroyed:
        text = ":fire: " + _(
            "The secret from {sender} was destroyed after too many wrong passphrases. Ask "
            "them to share it again if it is still needed.", sender=mention(sender))
    else:
        text = ":no_entry_sign: " + _(
            "The secret from {sender} is not available any more: it was already viewed, "
            "burned or expired. Its link no longer works.", sender=mention(sender))
    return {"text": text, "blocks": [section(text)]}


def burn_outcome_message(
    *, burned: int, gone: int, failed: int, recipients: Sequence[str] = (), unknown: int = 0
) -> Message:
    """What the sender's message becomes after Burn now."""
    several = burned + gone + failed > 1
    lines: list[str] = []
    if burned and not gone and not failed and not unknown:
        if recipients:
            lines.append(":fire: " + _.plural(
                "Burned for {people}: nobody can open it any more.",
                "Burned for {people}: nobody can open them any more.",
                burned, people=people(recipients)))
        else:
            lines.append(":fire: " + _.plural(
                "Burned: nobody can open it any more.",
                "Burned: nobody can open them any more.", burned))
    elif burned:
        lines.append(":fire: " + _.plural(
            "Burned {count} of them: nobody can open it any more.",
            "Burned {count} of them: nobody can open those any more.",
            burned, count=burned))
    if gone:
        lines.append(":information_source: " + (_.plural(
            "{count} of them was already opened, burned or expired: there was nothing left "
            "to burn.",
            "{count} of them were already opened, burned or expired: there was nothing left "
            "to burn.", gone, count=gone) if several else _(
            "It was already opened, burned or expired: there was nothing left to burn.")))
    if failed:
        lines.append(":warning: " + (_.plural(
            "{count} of them could not be burned right now: the secret store is unavailable. "
            "Try *Burn now* again in a minute.",
            "{count} of them could not be burned right now: the secret store is unavailable. "
            "Try *Burn now* again in a minute.", failed, count=failed) if several else _(
            "It could not be burned right now: the secret store is unavailable. Try *Burn "
            "now* again in a minute.")))
    if unknown:
        lines.append(":grey_question: " + _.plural(
            "For {count} the secret store did not answer in time: it is not known whether the "
            "burn went through, and the secret may have been used up.",
            "For {count} the secret store did not answer in time: it is not known whether the "
            "burn went through, and the secrets may have been used up.", unknown, count=unknown))
    text = "\n".join(lines)
    return {"text": text, "blocks": [section(text)]}


# A sender's notice, by outcome: one sentence with the people it went to, one for a
# link (nobody named). {label}: the label in quotes, or nothing; {when}: when it was
# shared (a Slack date); {people}: who it was sent to.
_NOTICES = {
    ("received", "slack"): (":unlock:", N_(
        "The secret{label} you shared {when} with {people} was viewed: {people} revealed it "
        "in Slack. It is gone now."), N_(
        "The secret{label} you shared {when} was viewed: the recipient revealed it in Slack. "
        "It is gone now.")),
    # Only a reveal in Slack says who it was: a link works for whoever holds it.
    ("received", "page"): (":unlock:", N_(
        "The secret{label} you shared {when} with {people} was viewed: someone with the link "
        "opened it in a browser. It is gone now."), N_(
        "The secret{label} you shared {when} was viewed: someone with the link opened it in a "
        "browser. It is gone now.")),
    ("received", "api"): (":unlock:", N_(
        "The secret{label} you shared {when} with {people} was viewed: someone with the link "
        "retrieved it through the API (a program, not a browser). It is gone now."), N_(
        "The secret{label} you shared {when} was viewed: someone with the link retrieved it "
        "through the API (a program, not a browser). It is gone now.")),
    ("received", None): (":unlock:", N_(
        "The secret{label} you shared {when} with {people} was viewed: someone with the link "
        "opened it. It is gone now."), N_(
        "The secret{label} you shared {when} was viewed: someone with the link opened it. "
        "It is gone now.")),
    ("burned", "attempts"): (":fire:", N_(
        "The secret{label} you shared {when} with {people} was destroyed after too many wrong "
        "passphrases. Share it again if it is still needed."), N_(
        "The secret{label} you shared {when} was destroyed after too many wrong passphrases. "
        "Share it again if it is still needed.")),
    ("burned", None): (":fire:", N_(
        "The secret{label} you shared {when} with {people} was burned before anyone viewed "
        "it."), N_(
        "The secret{label} you shared {when} was burned before anyone viewed it.")),
    ("expired", None): (":hourglass:", N_(
        "The secret{label} you shared {when} with {people} expired without being viewed."), N_(
        "The secret{label} you shared {when} expired without being viewed.")),
}


def notification_message(
    *, kind: str, via: str | None, recipients: Sequence[str], created: int,
    label: str | None = None,
) -> Message:
    """A sender's DM when a secret they shared was revealed, burned or expired. In the
    current language: build it speaking to the sender.

    Never a link: `text` shows in push and e-mail previews."""
    if kind == "received":
        key = ("received", via if via in ("slack", "page", "api") else None)
    elif kind == "burned":
        key = ("burned", "attempts" if via == "attempts" else None)
    else:
        key = ("expired", None)
    emoji, with_people, link_only = _NOTICES[key]
    line = with_people if recipients else link_only
    text = f"{emoji} " + _(line, label=quoted(label), when=slack_date(created),
                           people=people(recipients))
    return {"text": text, "blocks": [section(text)]}


# A sender's DM when someone was refused, by why; again with and without people.
_REFUSED = {
    "other": (N_(
        "The secret{label} you shared {when} with {people} is still safe: {who} pressed its "
        "*{button}* button, but it was not sent to them, so nothing was shown."), N_(
        "The secret{label} you shared {when} is still safe: {who} pressed its *{button}* "
        "button, but it was not sent to them, so nothing was shown.")),
    "passphrase": (N_(
        "The secret{label} you shared {when} with {people} is still safe: someone tried a "
        "wrong passphrase in Slack."), N_(
        "The secret{label} you shared {when} is still safe: someone tried a wrong passphrase "
        "in Slack.")),
    "page": (N_(
        "The secret{label} you shared {when} with {people} is still safe: someone with the "
        "link tried a wrong passphrase in a browser."), N_(
        "The secret{label} you shared {when} is still safe: someone with the link tried a "
        "wrong passphrase in a browser.")),
    "api": (N_(
        "The secret{label} you shared {when} with {people} is still safe: someone with the "
        "link tried a wrong passphrase through the API."), N_(
        "The secret{label} you shared {when} is still safe: someone with the link tried a "
        "wrong passphrase through the API.")),
    "": (N_(
        "The secret{label} you shared {when} with {people} is still safe: someone tried to "
        "open it and was refused."), N_(
        "The secret{label} you shared {when} is still safe: someone tried to open it and was "
        "refused.")),
}


def refused_message(
    *, why: str, by: str | None, label: str | None, recipients: Sequence[str], created: int,
    refused: int,
) -> Message:
    """A sender's DM when someone tried to open their secret and was refused. In the
    current language: build it speaking to the sender."""
    reason = why if why in _REFUSED and (why != "other" or by) else ""
    with_people, link_only = _REFUSED[reason]
    text = ":warning: " + _(
        with_people if recipients else link_only, label=quoted(label),
        when=slack_date(created), people=people(recipients), who=mention(by or ""),
        button=_("Reveal in Slack"),
    )
    if refused > 1:
        text += " " + _("Refused attempts so far: {count}.", count=refused)
    text += " " + _("To stop anyone opening it, burn it from the app's Home tab or with "
                    "`{command}`.", command=f"{COMMAND} list")
    return {"text": text, "blocks": [section(text)]}


def usage_message() -> Message:
    lines = [
        _("*Share a secret once.* Whoever opens a one-time secret sees it once, then it is "
          "gone: from the link, from the store and from chat history."),
        _("`{command}` alone (or the *Share a secret* shortcut) opens a form: the secret, an "
          "optional label saying what it is for, an optional passphrase, how long it lives, "
          "and up to 10 people to send it to. Tick *Generate a strong password* to have one "
          "made for you.", command=COMMAND),
        _("`{command} &lt;text&gt;` turns the text into a one-time link that only you see "
          "here; send it to whoever needs it.", command=COMMAND),
        _("`{command} @someone &lt;text&gt;` sends it straight to that person: they get a "
          "direct message with a *Reveal in Slack* button and the link. Everyone you name "
          "(up to 10) gets their own one-time secret.", command=COMMAND),
        _("`{command} gen` makes a strong random password, shows it to you once, and gives "
          "you its one-time link (`{command} gen @someone` sends it to them).",
          command=COMMAND),
        _("`{command} request @someone what for` asks them for a secret: they get a direct "
          "message with *Answer* and *Decline*; the first answer comes to you as a one-time "
          "secret. `{command} request what for` (nobody named) gives you a one-time request "
          "link for someone outside Slack.", command=COMMAND),
        _("On any message, *More actions → Make one-time secret* opens the form with that "
          "message's text. Then delete the original message: it stays in history."),
        _("*Burn now* under your link destroys the secret if nobody has opened it yet. You "
          "get a direct message when your secret is viewed, burned or expires unread."),
        _("`{command} list` (and the app's *Home* tab) lists your secrets: what became of "
          "each, and *Burn* for those nobody has opened yet.", command=COMMAND),
        _("`{command} help` shows this message.", command=COMMAND),
    ]
    text = lines[0] + "\n" + "\n".join(f"• {line}" for line in lines[1:])
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
        {"type": "plain_text", "text": _("It said: \u201c{said}\u201d", said=text),
         "emoji": False}
        for text in said
    ]}
