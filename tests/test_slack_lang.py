"""Which language each Slack user is spoken to in: their Slack locale through
users.info (asked with include_locale, as Slack requires), kept a while, and
English whenever Slack cannot say."""

from __future__ import annotations

import asyncio
import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.delivery import Messenger
from bot.slack.lang import CURRENT, Languages, _, speaking, speaking_to
from bot.slack.trust import ResponseUrls
from bot.slack.workspaces import CURRENT_TEAM
from tests.support.fake_slack import BOT_TOKEN, FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_users_slack_locale_picks_their_language_and_is_kept(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("UMAORI1", locale="mi-NZ")
    fake_slack.add_user("UFRENCH1", locale="fr-FR")
    fake_slack.add_user("UENGLISH1", locale="en-GB")
    messenger = Messenger(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url),
                          ResponseUrls(fake_slack.api_url))

    async def main() -> list[str]:
        return [await messenger.languages.of(u)
                for u in ("UMAORI1", "UFRENCH1", "UENGLISH1", "UMAORI1", "UMAORI1")]

    assert asyncio.run(main()) == ["mi", "en", "en", "mi", "mi"]
    asked = [c for c in fake_slack.calls_to("users.info") if c.body.get("user") == "UMAORI1"]
    assert len(asked) == 1  # kept: one lookup per person, not one per message
    assert asked[0].body.get("include_locale") in ("1", "true", True)


def test_without_include_locale_slack_does_not_say(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("UMAORI2", locale="mi-NZ")
    messenger = Messenger(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url),
                          ResponseUrls(fake_slack.api_url))
    info = asyncio.run(messenger.user_info("UMAORI2"))
    assert "locale" not in info["user"]


def test_a_failed_lookup_speaks_english_logs_and_is_retried_later(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.add_user("UMAORI3", locale="mi-NZ")
    fake_slack.fail("users.info", "ratelimited", status=429, retry_after=30,
                    match={"user": "UMAORI3"})
    clock = Clock()
    messenger = Messenger(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url),
                          ResponseUrls(fake_slack.api_url))
    languages = Languages(messenger.user_locale, clock=clock)
    with caplog.at_level(logging.INFO, logger="bot.slack.lang"):
        assert asyncio.run(languages.of("UMAORI3")) == "en"
    assert "could not read a Slack user's language (ratelimited)" in caplog.text
    assert asyncio.run(languages.of("UMAORI3")) == "en"  # not asked again at once
    clock.now += 301
    assert asyncio.run(languages.of("UMAORI3")) == "mi"


def test_a_slow_lookup_gives_english_in_time() -> None:
    async def hangs(user: str) -> str | None:
        await asyncio.sleep(30)
        return "mi-NZ"

    languages = Languages(hangs, timeout=0.05)
    assert asyncio.run(asyncio.wait_for(languages.of("U1"), 5)) == "en"


def test_languages_are_kept_per_workspace_and_bounded() -> None:
    asked: list[tuple[str | None, str]] = []

    async def lookup(user: str) -> str | None:
        asked.append((CURRENT_TEAM.get(), user))
        return "mi-NZ" if CURRENT_TEAM.get() == "T2" else "en-US"

    languages = Languages(lookup, size=2)

    async def main() -> list[str]:
        found = [await languages.of("U1")]
        token = CURRENT_TEAM.set("T2")
        found.append(await languages.of("U1"))  # the same id in another workspace
        CURRENT_TEAM.reset(token)
        found += [await languages.of("U2"), await languages.of("U1")]
        return found

    assert asyncio.run(main()) == ["en", "mi", "en", "en"]
    # Only two are kept: the first U1 was dropped when U2 came, and asked again.
    assert asked == [(None, "U1"), ("T2", "U1"), (None, "U2"), (None, "U1")]


def test_speaking_to_someone_else_and_back() -> None:
    async def lookup(user: str) -> str | None:
        return {"UMI": "mi-NZ"}.get(user)

    languages = Languages(lookup)

    async def main() -> list[str]:
        said = [CURRENT.get()]
        async with speaking_to(languages, "UMI"):
            said.append(_.language)
            with speaking("en"):
                said.append(_.language)
            said.append(_.language)
        said.append(_.language)
        return said

    assert asyncio.run(main()) == ["en", "mi", "en", "mi", "en"]
