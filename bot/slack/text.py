"""Undoing Slack's escaping of command and message text.

With `should_escape: true` Slack sends `&`, `<` and `>` as `&amp;`, `&lt;` and
`&gt;`, and wraps what it recognised as a link in `<url|label>` or `<url>`.
A `<` in the payload is therefore always Slack's own markup, never the user's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_LINK = re.compile(r"<((?:https?|mailto|tel):[^<>|]*)(?:\|([^<>]*))?>")


def unescape(text: str) -> str:
    """The text as the user typed it: links back to what was typed, entities decoded."""
    text = _LINK.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_LEADING_MENTION = re.compile(r"\s*<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def split_mentions(text: str) -> tuple[tuple[str, ...], str]:
    """Leading `<@U123>` / `<@U123|name>` mentions as user ids, and the rest of the text.

    Only mentions before the secret count: a mention inside the secret is part of it.
    """
    users: list[str] = []
    position = 0
    while match := _LEADING_MENTION.match(text, position):
        if match.group(1) not in users:
            users.append(match.group(1))
        position = match.end()
    rest = text[position:]
    # One separating space belongs to the command, the rest of the text to the secret.
    return tuple(users), rest[1:] if users and rest.startswith(" ") else rest


# Any of Slack's markup: <target> or <target|label>.
_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_SPECIAL = ("here", "channel", "everyone")


def references(text: str) -> tuple[list[str], list[str]]:
    """(user ids, channel ids without a name) in a message's markup: what to look up."""
    users: list[str] = []
    channels: list[str] = []
    for match in _MARKUP.finditer(text):
        target, label = match.group(1), match.group(2)
        if target.startswith("@") and target[1:] not in users:
            users.append(target[1:])
        elif target.startswith("#") and not label and target[1:] not in channels:
            channels.append(target[1:])
    return users, channels


def readable(text: str, names: Mapping[str, str] | None = None) -> str:
    """A message's text as people read it in Slack, for copying into a form.

    Labelled links keep their address (`<https://wiki|the wiki>` becomes
    `the wiki (https://wiki)`), people and channels are shown by name (`names`
    maps ids to names; the id is the last resort), `<!here>` becomes `@here`.
    """
    names = names or {}

    def render(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2) or ""
        if target.startswith("@"):
            return "@" + (names.get(target[1:]) or label.lstrip("@") or target[1:])
        if target.startswith("#"):
            return "#" + (label or names.get(target[1:]) or target[1:])
        if target.startswith("!"):
            command = target[1:]
            if command in _SPECIAL:
                return "@" + command
            # <!subteam^S1|@team>, <!date^1700000000^{date}|fallback>
            return label or "@" + command.split("^")[-1]
        if _SCHEME.match(target):
            return _link(target, label)
        return match.group(0)

    text = _MARKUP.sub(render, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link(target: str, label: str) -> str:
    address = target[len("mailto:"):] if target.lower().startswith("mailto:") else target
    bare = address.split("://", 1)[-1].rstrip("/")
    # Slack links what was typed as an address by itself (`example.com`): keep that.
    if not label or label in (target, address) or label.rstrip("/") == bare:
        return label or address
    return f"{label} ({address})"
