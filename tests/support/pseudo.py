"""A pseudo-locale for finding text that bypasses the catalogues.

`install()` makes the language `qps` from the template: every message id becomes
`⟦message⟧`. A surface rendered in it must show no word outside ⟦ ⟧; whatever
English is left was written around the catalogue. `slack_leftovers` finds it in
a Block Kit payload (messages, modals, Home views).
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot import i18n

PSEUDO = "qps"
TEMPLATE = Path(__file__).parent.parent.parent / "bot" / "locales" / "messages.pot"


def install() -> None:
    with TEMPLATE.open("rb") as f:
        template = read_po(f)
    catalog = Catalog(locale="en")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            catalog.add(message.id, tuple(f"⟦{s}⟧" for s in message.id))
        else:
            catalog.add(message.id, f"⟦{message.id}⟧")
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    i18n.install(PSEUDO, gettext.GNUTranslations(compiled))


def unwrap(text: str) -> str:
    """Remove ⟦…⟧ runs, innermost first (a translated value can sit inside another)."""
    while True:
        shorter = re.sub(r"⟦[^⟦⟧]*⟧", "", text)
        if shorter == text:
            return text
        text = shorter


# Slack's own markup is not the app's words: <@U1>, <#C1|name>, <!date^…|fallback>,
# <https://link|label> (a label the app writes is text, and is checked), :emoji:.
_MENTION = re.compile(r"<[@#!][^<>]*>")
_LINK = re.compile(r"<(?:https?|mailto):[^<>|]*(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":[a-z0-9_+-]+:")


def _visible(text: str) -> str:
    text = _MENTION.sub("", text)
    text = _LINK.sub(lambda m: m.group(1) or "", text)
    return _EMOJI.sub("", text)


def slack_texts(payload: Any) -> Iterator[str]:
    """The text a person reads in a Block Kit payload: text objects and a message's text.

    Values a person typed (a form's initial_value, a label) are the tests' own
    words: tests choose ones without Latin letters, or wrap them in ⟦ ⟧."""
    if isinstance(payload, dict):
        if payload.get("type") in ("plain_text", "mrkdwn") and isinstance(payload.get("text"), str):
            yield payload["text"]
        for key, value in payload.items():
            if key in ("text", "fallback") and isinstance(value, str) and "type" not in payload:
                yield value
            elif key not in ("value", "action_id", "block_id", "callback_id",
                             "private_metadata", "initial_value", "url", "external_id"):
                yield from slack_texts(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from slack_texts(item)


def slack_leftovers(payload: Any) -> list[str]:
    """Words in a Slack payload that did not come through the catalogue."""
    found = []
    for text in slack_texts(payload):
        rest = unwrap(_visible(text))
        if re.search(r"[A-Za-z]{2,}", rest):
            found.append(text)
    return found
