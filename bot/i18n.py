"""The words the app says to people, in their language.

One gettext catalogue per language, `bot/locales/LANG/LC_MESSAGES/messages.po`,
read with Babel when first needed (no compile step, no binary in the repo).
English is the source language: its catalogue lists every message id, and a
message without a translation is said in English. Adding a language is adding
a catalogue (see the README, "Adding a language").

Code asks for a `Text` bound to the reader's language and calls it:

    _ = text_for(locale)
    _("The link expires {when}.", when=...)
    _.plural("{count} person", "{count} people", n, count=n)

`pybabel extract -F babel.cfg -o bot/locales/messages.pot .` finds every such
call (keywords `_`, `N_` and `plural`). Module-level text that is translated
later is marked with `N_("...")`, which returns it unchanged.

What stays English on purpose: the OTS v1 API's strings (clients match them
literally), log lines, and the CLI.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path
from typing import Protocol

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT = "en"
LOCALES_DIR = Path(__file__).parent / "locales"


def N_(message: str) -> str:  # noqa: N802 (gettext's own name for "mark, translate later")
    return message


class Text:
    """Messages in one language; missing ones fall back to English."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self._t = translations

    @property
    def locale(self) -> str:
        """The locale Babel formats dates and numbers in (English for a pseudo-locale)."""
        try:
            Locale.parse(self.language)
        except (ValueError, UnknownLocaleError):
            return DEFAULT
        return self.language

    def __call__(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text.format(**values) if values else text

    def plural(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(**values) if values else text


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages with a catalogue, English first."""
    found = sorted(p.name for p in LOCALES_DIR.iterdir() if (p / "LC_MESSAGES").is_dir())
    return (DEFAULT, *[lang for lang in found if lang != DEFAULT])


def language_name(language: str) -> str:
    """A language's name in itself ("English", "Māori"), for the language switch."""
    try:
        name = Locale.parse(language).get_display_name(language) or language
    except (ValueError, UnknownLocaleError):
        return language
    return name[:1].upper() + name[1:]


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    path = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


_extra: dict[str, gettext.NullTranslations] = {}


def install(language: str, translations: gettext.NullTranslations) -> None:
    """Make a language available without a catalogue file (tests' pseudo-locale)."""
    _extra[language] = translations


def known(language: str | None) -> bool:
    return language in languages() or language in _extra


def text_for(language: str | None) -> Text:
    lang = language if known(language) else DEFAULT
    assert lang is not None
    return Text(lang, _extra.get(lang) or _translations(lang))


def from_slack_locale(locale: str | None) -> str:
    """Slack's user locale ("mi-NZ", "en-US") to a language we have, else English."""
    if not locale:
        return DEFAULT
    tag = locale.replace("_", "-")
    if known(tag):  # a whole tag we have (a test's pseudo-locale)
        return tag
    language = tag.split("-")[0].lower()
    return language if known(language) else DEFAULT


def from_accept_language(header: str | None) -> str:
    """The best language we have for an Accept-Language header (q-values honoured)."""
    if not header:
        return DEFAULT
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().split("-")[0].lower()
        if language and quality > 0:
            wanted.append((-quality, position, language))
    for _, _, language in sorted(wanted):
        if language in languages():
            return language
        if language == "*":
            return DEFAULT
    return DEFAULT


class Plurals(Protocol):
    def plural(self, singular: str, plural: str, n: int, **values: object) -> str: ...


def duration(_: Plurals, seconds: int) -> str:
    """"7 days", "1 hour", "5 minutes", "30 seconds" in `_`'s language (a page's or an
    email's `Text`, or Slack's current reader)."""
    # Each message written out in full, so that the extractor finds it.
    if seconds >= 86400:
        count = round(seconds / 86400)
        return _.plural("{count} day", "{count} days", count, count=count)
    if seconds >= 3600:
        count = round(seconds / 3600)
        return _.plural("{count} hour", "{count} hours", count, count=count)
    if seconds >= 60:
        count = round(seconds / 60)
        return _.plural("{count} minute", "{count} minutes", count, count=count)
    return _.plural("{count} second", "{count} seconds", seconds, count=seconds)
