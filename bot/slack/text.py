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
