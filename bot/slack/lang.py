"""Which language the app speaks to a Slack user, and `_` for Slack's text.

Every Slack user reads the app in the language of their own Slack (users.info
with `include_locale`): `mi-NZ` gets te reo Māori, a locale without a
catalogue gets English (bot/i18n.py).

Text is translated where it is built, into the language of whoever it is for:

    from bot.slack.lang import _
    _("Sent a one-time secret to {people}.", people=...)
    _.plural("{count} day", "{count} days", n, count=n)

`_` speaks the language current in this task. For a request from Slack that is
the acting user's (the `middleware` below sets it before the listener runs, and
asyncio copies it into every task the listener starts). A message for someone
else (a recipient's DM, a notice to the sender after a reveal on the web page)
is built inside `async with speaking_to(languages, user):`, so it reads in that
person's language. This is the pattern of Django's `translation.override`:
builders stay plain functions of their values, and the place that knows who
reads a message says so once.

Each user's language is looked up once and kept for an hour (people rarely
change it, and a lookup costs a Web API call). A lookup that fails or takes
longer than `timeout` (Slack's 3 s to acknowledge must hold) gives English,
kept for a few minutes, and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.i18n import DEFAULT, N_, from_slack_locale, text_for
from bot.slack.workspaces import current_team

log = logging.getLogger(__name__)

CURRENT: ContextVar[str] = ContextVar("slack_language", default=DEFAULT)

__all__ = ["CURRENT", "N_", "Languages", "Speech", "_", "middleware", "speaking", "speaking_to"]


class Speech:
    """`_`: the current reader's catalogue, looked up at each call."""

    def __call__(self, message: str, **values: object) -> str:
        return text_for(CURRENT.get())(message, **values)

    def plural(self, singular: str, plural: str, n: int, **values: object) -> str:
        return text_for(CURRENT.get()).plural(singular, plural, n, **values)

    @property
    def language(self) -> str:
        return CURRENT.get()

    @property
    def locale(self) -> str:
        """For Babel's formatting (numbers, lists) in the reader's language."""
        return text_for(CURRENT.get()).locale


_ = Speech()


@contextlib.contextmanager
def speaking(language: str) -> Iterator[None]:
    token = CURRENT.set(language)
    try:
        yield
    finally:
        CURRENT.reset(token)


LocaleLookup = Callable[[str], Awaitable[str | None]]


class Languages:
    """Each Slack user's language, from their Slack locale, kept a while."""

    def __init__(
        self, lookup: LocaleLookup, *, ttl: float = 3600.0, failed_ttl: float = 300.0,
        timeout: float = 1.0, size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl, self._failed_ttl, self._timeout = ttl, failed_ttl, timeout
        self._size = size
        self._clock = clock
        self._known: OrderedDict[tuple[str | None, str], tuple[float, str]] = OrderedDict()

    async def of(self, user_id: str) -> str:
        key = (current_team(), user_id)
        now = self._clock()
        cached = self._known.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            locale = await asyncio.wait_for(self._lookup(user_id), self._timeout)
        except Exception as exc:  # noqa: BLE001 (any failure: speak English, never fail the work)
            reason = getattr(exc, "error", None) or type(exc).__name__
            log.info("could not read a Slack user's language (%s); speaking English", reason)
            self._keep(key, now + self._failed_ttl, DEFAULT)
            return DEFAULT
        language = from_slack_locale(locale)
        self._keep(key, now + self._ttl, language)
        return language

    def _keep(self, key: tuple[str | None, str], until: float, language: str) -> None:
        self._known[key] = (until, language)
        self._known.move_to_end(key)
        while len(self._known) > self._size:
            self._known.popitem(last=False)


@contextlib.asynccontextmanager
async def speaking_to(languages: Languages, user_id: str) -> AsyncIterator[None]:
    """Build what is inside in `user_id`'s language (a DM, a notice, their Home tab)."""
    with speaking(await languages.of(user_id)):
        yield


def middleware(
    languages: Languages,
) -> Callable[[AsyncBoltContext, Callable[[], Awaitable[BoltResponse]]], Awaitable[BoltResponse]]:
    """Bolt middleware: the acting user's language for everything their request does."""

    async def speak_the_users_language(
        context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        # Set, not entered: Bolt runs the listeners after every middleware has returned
        # (`next()` only marks that it may go on), so a `with` block would be over by then.
        # Each request is dispatched in its own task, like workspaces.bind_request's
        # client; a request without a user is English, whatever came before it.
        user = context.user_id
        CURRENT.set(await languages.of(user) if user else DEFAULT)
        return await next()

    return speak_the_users_language

