"""Slack API failures handled, not crashed on: 429 with Retry-After, a dead
response_url, channel_not_found / not_in_channel, an answer that cannot be
delivered at all; expiry notifications; and no secret in any log line.

These are about the Slack side, which is the same whatever keeps the secrets:
they run on the embedded store (SQLite), with one app per module.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from bot.backends.embedded import EmbeddedStore
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings
from bot.logs import PINNED
from bot.slack import ids
from bot.slack.app import build_slack
from bot.web.app import build_app
from tests.support.fake_slack import FakeSlack
from tests.support.servers import ServedApp, app_store_of
from tests.support.slack_requests import SIGNING_SECRET
from tests.support.slack_world import (
    MovableClock,
    SlackWorld,
    eventually,
    link_in,
    new_user,
    passphrase_values,
    reveal_by_link,
    share_values,
    slack_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    with slack_world("sqlite", tmp_path_factory.mktemp("slack"), None) as world:
        yield world


def dm_calls(world: SlackWorld, user: str) -> list:
    return [c for c in world.fake.calls_to("chat.postMessage")
            if c.body.get("channel") == f"D{user}"]


def test_a_429_with_a_short_retry_after_is_retried_after_that_wait(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    world.fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=1,
                    match={"channel": f"D{bob}"})
    _, response_url, _ = world.command(f"<@{bob}> rate-limited-secret", user=alice)
    reply = world.replies(response_url)[0]
    assert f"Sent a one-time secret to <@{bob}>" in reply["text"]
    first, second = dm_calls(world, bob)
    assert second.at - first.at >= 0.9  # Slack asked for one second
    assert reveal_by_link(world, link_in(second.body)) == "rate-limited-secret"


def test_a_429_with_a_long_retry_after_fails_fast_and_says_so(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    world.fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=120,
                    match={"channel": f"D{bob}"})
    _, response_url, _ = world.command(f"<@{bob}> never-delivered", user=alice)
    reply = world.replies(response_url)[0]
    assert f"Nothing was shared with <@{bob}>: Slack is rate-limiting the app" in reply["text"]
    (only,) = dm_calls(world, bob)
    assert reveal_by_link(world, link_in(only.body)) is None  # burned, not left behind


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
def test_a_dead_response_url_falls_back_to_ephemeral_then_to_a_dm(
    world: SlackWorld, error: str
) -> None:
    alice = new_user()
    _, response_url, trigger = world.command("", user=alice, channel="C0PRIVATE")
    view = world.opened_view(trigger)
    # Thirty minutes later the response_url is dead, and the bot is not in the channel.
    path = response_url[len(world.fake.url):]
    world.fake.fail("response_url", "expired_url", status=404, match={"path": path})
    world.fake.fail("chat.postEphemeral", error, match={"user": alice})
    assert world.submit(view, share_values(secret="fallback-secret"), user=alice).text == ""
    answer = world.dms(alice)[0]
    assert "Here is your one-time link" in json.dumps(answer)
    ephemeral = [c.body for c in world.fake.calls_to("chat.postEphemeral")
                 if c.body["user"] == alice]
    assert ephemeral and ephemeral[0]["channel"] == "C0PRIVATE"
    assert reveal_by_link(world, link_in(answer)) == "fallback-secret"


def test_a_link_that_cannot_be_delivered_anywhere_is_burned(world: SlackWorld) -> None:
    alice, trigger = new_user(), world.fake.new_trigger()
    world.global_shortcut(user=alice, trigger=trigger)
    view = world.opened_view(trigger)
    # The form's window is gone (closed) before the answer can be shown there, and
    # the link is never put in a lasting DM instead.
    world.fake.views.pop(world.fake.view_ids[trigger])
    world.submit(view, share_values(secret="undeliverable"), user=alice,
                 view_id=world.fake.view_ids[trigger])
    (told,) = eventually(lambda: dm_calls(world, alice), what="the DM saying so")
    assert "nothing was kept" in told.body["text"] and "/secret/" not in json.dumps(told.body)
    # The secret that was made is burned: nothing of Alice's is live.
    _, response_url, _ = world.command("list", user=alice)
    listing = world.replies(response_url)[0]
    assert "Live secrets*: none" in json.dumps(listing), listing


def test_slack_being_unreachable_is_a_logged_failure_not_a_crash(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    world.fake.fail("conversations.open", "internal_error", status=500,
                    match={"users": bob})
    _, response_url, _ = world.command(f"<@{bob}> s", user=alice)
    assert f"Nothing was shared with <@{bob}>" in world.replies(response_url)[0]["text"]


# -- expiry: the embedded store on a clock the test moves -----------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_the_sender_hears_when_a_secret_expires_unread(tmp_path) -> None:
    clock = Clock()
    with FakeSlack() as fake:
        settings = Settings.from_env({
            "SLACK_BOT_TOKEN": fake.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url, "PUBLIC_URL": "http://ots.test",
            "DATA_DIR": str(tmp_path)})
        store = EmbeddedStore(SQLiteStorage(tmp_path / "s.sqlite3", clock=clock),
                              public_url=settings.public_url, clock=clock)
        app_store = app_store_of(store)
        slack = build_slack(settings, store, app_store)
        app = build_app(settings, store, app_store, slack.bolt, slack.background)
        with ServedApp(app) as served:
            world = SlackWorld(served, fake, "sqlite", None, settings, MovableClock())
            alice, bob = new_user(), new_user()
            _, response_url, trigger = world.command("", user=alice)
            view = world.opened_view(trigger)
            world.submit(view, share_values(secret="too-late", ttl=3600, recipients=(bob,)),
                         user=alice)
            world.replies(response_url)
            served.call(store.sweep())
            assert not dm_calls(world, alice)  # not expired yet: nothing said
            clock.now += 3601
            served.call(store.sweep())
            text = world.dms(alice)[0]["text"]
            assert f"with <@{bob}> expired without being viewed" in text
            served.call(store.sweep())
            assert len(dm_calls(world, alice)) == 1


# -- logs ------------------------------------------------------------------------------------


def test_no_secret_passphrase_or_key_reaches_a_log_line(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secret, passphrase = "log-canary-secret-9Qx", "log-canary-phrase-7Wz"
    with slack_world("sqlite", tmp_path, None) as world:
        for name in PINNED:
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
        alice, bob = new_user(), new_user()
        _, response_url, trigger = world.command("", user=alice)
        view = world.opened_view(trigger)
        world.submit(view, share_values(secret=secret, passphrase=passphrase,
                                        recipients=(bob,)), user=alice)
        world.replies(response_url)
        dm = world.dms(bob)[0]
        _, _, reveal_trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}")
        reveal_view = world.opened_view(reveal_trigger)
        world.submit(reveal_view, passphrase_values("wrong"), user=bob)
        answer = world.submit(reveal_view, passphrase_values(passphrase), user=bob).json()
        assert secret in json.dumps(answer)
        world.dms(alice)  # the notification
        world.fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=60)
        world.command(f"<@{new_user()}> {secret}", user=alice)
        time.sleep(0.3)
    key = link_in(dm).rsplit("/", 1)[1]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}"
                       for r in caplog.records)
    assert caplog.records, "nothing was logged: the capture is broken"
    assert "Slack chat.postMessage failed: ratelimited" in logged
    for canary in (secret, passphrase, key, "/secret/"):
        assert canary not in logged, canary
