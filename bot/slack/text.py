"""Undoing Slack's escaping of command and message text.

With `should_escape: true` Slack sends `&`, `<` and `>` as `&amp;`, `&lt;` and
`&gt;`, and wraps what it recognised as a link in `<url|label>` or `<url>`.
A `<` in the payload is therefore always Slack's own markup, never the user's.
"""

from __future__ import annotations

import re

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
