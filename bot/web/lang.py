"""Which language a web page speaks: `?lang=` when it names one we have (the
language links on each page), else the browser's Accept-Language, else English.
No cookie: the choice travels in the links and forms themselves."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from bot.i18n import Text, from_accept_language, known, text_for


def text_of_scope(scope: Mapping[str, object]) -> Text:
    query = scope.get("query_string", b"")
    chosen = parse_qs(query.decode("latin-1") if isinstance(query, bytes) else "").get("lang")
    if chosen and known(chosen[-1]):
        return text_for(chosen[-1])
    accept = None
    for name, value in scope.get("headers", ()) or ():  # type: ignore[attr-defined]
        if name == b"accept-language":
            accept = value.decode("latin-1")
    return text_for(from_accept_language(accept))
