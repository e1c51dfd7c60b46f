"""Issue 12, points 7-10: passphrase tries, lifetimes on Onetime Secret, the message
shortcut's text, and the wording users hit; end to end over signed HTTP against the
served app and the fake Slack, on every backend where the point applies. Every view
and message the app sent is validated with slack_sdk's Block Kit models.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.slack import ids
from tests.support.block_kit import validate_recorded
from tests.support.servers import RedisServer
from tests.support.slack_world import (
    KINDS,
    SlackWorld,
    eventually,
    link_in,
    new_user,
    passphrase_values,
    reveal_by_link,
    share_values,
    slack_world,
)
from tests.test_slack_recipients import reveal_in_slack, revealed_value, share_to

ATTEMPTS = 3


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("slack"), redis_srv.url,
                     PASSPHRASE_ATTEMPTS=str(ATTEMPTS), RECEIPT_POLL_SECONDS="1") as world:
        yield world
        validate_recorded(world.fake)


def dm_updates(world: SlackWorld, user: str, count: int = 1) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        found = [c.body for c in world.fake.calls_to("chat.update")
                 if c.body["channel"] == f"D{user}"]
        return found if len(found) >= count else None

    return eventually(probe, what=f"update of the DM to {user}")


def api_reveal(world: SlackWorld, link: str, passphrase: str) -> httpx.Response:
    key = link.rsplit("/", 1)[1]
    base = world.fake_ots.url if world.fake_ots else world.served.url
    return httpx.post(f"{base}/api/v1/secret/{key}", data={"passphrase": passphrase},
                      timeout=10)


def expires_in(message: dict[str, Any]) -> float:
    """Seconds from now to the expiry date a message shows (Slack's date format)."""
    match = re.search(r"<!date\^(\d+)\^", json.dumps(message))
    assert match, message
    return int(match.group(1)) - time.time()


# -- 7: passphrase tries ---------------------------------------------------------------


def test_wrong_passphrases_count_down_then_destroy_and_say_so(world: SlackWorld) -> None:
    if world.fake_ots:
        pytest.skip("Onetime Secret does not say how many tries are left")
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="count-me-down", passphrase="right")
    dm = world.dms(bob)[0]
    view, answer = reveal_in_slack(world, dm, bob, passphrase="wrong 1")
    assert answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK] == (
        "That passphrase is not right. 2 tries left.")
    # The web API still answers exactly "Unknown secret", and its try counts too.
    refused = api_reveal(world, link_in(dm), "wrong 2")
    assert refused.status_code == 404 and refused.json()["message"] == "Unknown secret"
    answer = world.submit(view, passphrase_values("wrong 3"), user=bob).json()
    assert answer["response_action"] == "update"
    shown = json.dumps(answer["view"])
    assert "the last try: the secret was destroyed" in shown
    update = dm_updates(world, bob)[-1]
    assert "was destroyed" in update["text"]
    assert "after too many wrong passphrases" in update["text"]
    assert link_in_or_none(update) is None and ids.REVEAL_ACTION not in json.dumps(update)
    answer = world.submit(view, passphrase_values("right"), user=bob).json()
    assert "count-me-down" not in json.dumps(answer)
    assert api_reveal(world, link_in(dm), "right").json()["message"] == "Unknown secret"


def test_one_try_left_is_said_in_the_singular(world: SlackWorld) -> None:
    if world.fake_ots:
        pytest.skip("Onetime Secret does not say how many tries are left")
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="careful", passphrase="right")
    view, answer = reveal_in_slack(world, world.dms(bob)[0], bob, passphrase="wrong")
    answer = world.submit(view, passphrase_values("wrong again"), user=bob).json()
    assert "1 try left: one more wrong passphrase destroys the secret" in (
        answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK])
    answer = world.submit(view, passphrase_values("right"), user=bob).json()
    assert revealed_value(answer) == "careful"


def test_after_a_burn_a_passphrase_reveal_says_gone_not_wrong(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="burn-then-try", passphrase="right")
    dm = world.dms(bob)[0]
    view, answer = reveal_in_slack(world, dm, bob, passphrase="wrong")
    assert answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK].startswith(
        "That passphrase is not right.")
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert "Burned" in world.replies(burn_url)[0]["text"]
    answer = world.submit(view, passphrase_values("right"), user=bob).json()
    assert answer["response_action"] == "update"
    assert "not available any more" in json.dumps(answer["view"])
    update = dm_updates(world, bob)[-1]
    assert "is not available any more" in update["text"]
    assert link_in_or_none(update) is None and ids.REVEAL_ACTION not in json.dumps(update)


def link_in_or_none(body: dict[str, Any]) -> str | None:
    try:
        return link_in(body)
    except AssertionError:
        return None


# -- 8: lifetimes ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=KINDS)
def short_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                redis_srv: RedisServer) -> Iterator[SlackWorld]:
    """DEFAULT_TTL one minute, MAX_TTL two days."""
    with slack_world(request.param, tmp_path_factory.mktemp("slack"), redis_srv.url,
                     DEFAULT_TTL="60", MAX_TTL=str(2 * 86400)) as world:
        yield world
        validate_recorded(world.fake)


def ttl_sent(world: SlackWorld, count: int) -> list[str]:
    """The ttl of the last `count` shares Onetime Secret received."""
    assert world.fake_ots is not None
    shares = world.fake_ots.requests_to("/api/v1/share")[-count:]
    return [r.params.get("ttl", ["(none)"])[0] for r in shares]


def offered(view: dict[str, Any]) -> list[int]:
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.TTL_BLOCK)
    return [int(o["value"]) for o in block["element"]["options"]]


def test_every_slack_path_uses_the_default_lifetime(short_world: SlackWorld) -> None:
    world, alice, bob = short_world, new_user(), new_user()
    _, link_url, _ = world.command("plain text secret", user=alice)
    reply = world.replies(link_url)[0]
    assert abs(expires_in(reply) - 60) < 30  # an absolute date, never "in 1 minute"
    _, people_url, _ = world.command(f"<@{bob}> for bob", user=alice)
    assert f"Sent a one-time secret to <@{bob}>" in world.replies(people_url)[0]["text"]
    assert abs(expires_in(world.dms(bob)[0]) - 60) < 30
    _, _, trigger = world.command("gen", user=alice)
    view_id = world.fake.view_ids.get(trigger) or eventually(
        lambda: world.fake.view_ids.get(trigger), what="the generate modal")
    generated = world.updated_views(view_id)[0]
    assert "expires in 1 minute" in json.dumps(generated)
    if world.fake_ots:
        assert ttl_sent(world, 3) == ["60", "60", "60"]
    else:
        assert reveal_by_link(world, link_in(reply)) == "plain text secret"


def test_the_modal_offers_lifetimes_up_to_max_ttl(short_world: SlackWorld) -> None:
    world, alice = short_world, new_user()
    _, _, trigger = world.command("", user=alice)
    view = world.opened_view(trigger)
    assert offered(view) == [60, 300, 3600, 86400]
    ack = world.submit(view, share_values(secret="too long", ttl=7 * 86400), user=alice)
    assert ack.json()["errors"][ids.TTL_BLOCK] == "Pick one of the lifetimes offered."


@pytest.fixture(scope="module")
def anonymous_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    """Onetime Secret without an account, DEFAULT_TTL 14 days, MAX_TTL 30 days."""
    with slack_world("onetimesecret", tmp_path_factory.mktemp("slack"), None, anonymous=True,
                     DEFAULT_TTL=str(14 * 86400)) as world:
        yield world
        validate_recorded(world.fake)


def test_anonymous_onetimesecret_is_offered_seven_days_at_most(
    anonymous_world: SlackWorld,
) -> None:
    world, alice = anonymous_world, new_user()
    _, response_url, trigger = world.command("", user=alice)
    view = world.opened_view(trigger)
    assert offered(view) == [300, 3600, 86400, 7 * 86400]
    ttl_block = next(b for b in view["blocks"] if b.get("block_id") == ids.TTL_BLOCK)
    assert ttl_block["element"]["initial_option"]["value"] == str(7 * 86400)
    world.submit(view, share_values(secret="a week", ttl=7 * 86400), user=alice)
    assert abs(expires_in(world.replies(response_url)[0]) - 7 * 86400) < 30
    _, text_url, _ = world.command("typed", user=alice)
    assert abs(expires_in(world.replies(text_url)[0]) - 7 * 86400) < 30
    assert ttl_sent(world, 2) == [str(7 * 86400)] * 2


# -- 9: the message shortcut --------------------------------------------------------------


def prefilled(view: dict[str, Any]) -> str:
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.SECRET_BLOCK)
    return str(block["element"].get("initial_value", ""))


def notes_of(view: dict[str, Any]) -> str:
    return json.dumps([b for b in view["blocks"] if b["type"] == "context"])


def test_message_shortcut_keeps_link_addresses_and_names_people_and_channels(
    world: SlackWorld,
) -> None:
    carol, dave, me = new_user(), new_user(), new_user()
    world.fake.add_user(carol, name="Carol Jones", display_name="carol")
    world.fake.add_user(dave, name="Dave Smith")  # no display name: the real name
    world.fake.add_channel("C0DEPLOY", "deploys")
    text = (f"<!here> <@{carol}> and <@{dave}>: the token for <#C0OPS|ops> and <#C0DEPLOY|> and "
            "<#C0SECRET> is on <https://wiki.example.com/t|the wiki>, "
            "<https://example.com|example.com>, <mailto:ops@example.com|ops@example.com>, "
            "<@U0GHOST>: a &lt;b&gt; &amp; c")
    _, _, trigger = world.message_shortcut(text, user=me, author=me)
    view = world.opened_view(trigger)
    assert prefilled(view) == (
        "@here @carol and @Dave Smith: the token for #ops and #deploys and #C0SECRET is on "
        "the wiki (https://wiki.example.com/t), example.com, ops@example.com, @U0GHOST: "
        "a <b> & c")
    assert "stays in the conversation's history until you delete it" in notes_of(view)


def test_message_shortcut_on_someone_elses_message_warns_whose_it_is(world: SlackWorld) -> None:
    me, author = new_user(), new_user()
    _, _, trigger = world.message_shortcut("pw: hunter2", user=me, author=author)
    notes = notes_of(world.opened_view(trigger))
    assert f"This is <@{author}>'s message: you cannot delete it" in notes
    assert "Ask them to delete it" in notes


def test_message_shortcut_opens_in_time_when_slack_cannot_name_people(
    world: SlackWorld,
) -> None:
    me, ghost = new_user(), new_user()
    world.fake.fail("users.info", "missing_scope", match={"user": ghost})
    _, _, trigger = world.message_shortcut(f"for <@{ghost}>: 42", user=me, author=me)
    assert prefilled(world.opened_view(trigger)) == f"for @{ghost}: 42"


# -- 10: wording ---------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "said"), [
    ("expired_trigger_id", "did not let the window open in time (it allows 3 seconds"),
    ("exchanged_trigger_id", "was already used to open a window"),
    ("internal_error", "Slack would not open the window (internal_error)"),
])
def test_each_views_open_failure_says_what_happened(
    world: SlackWorld, error: str, said: str
) -> None:
    alice, bob = new_user(), new_user()
    for text in ("", "gen"):  # the share form, and the generated password's window
        trigger = world.fake.new_trigger()
        world.fake.fail("views.open", error, match={"trigger_id": trigger})
        _, response_url, _ = world.command(text, user=alice, trigger=trigger)
        assert said in world.replies(response_url)[0]["text"]
    share_to(world, alice, bob, secret="reveal-me-later")
    dm = world.dms(bob)[0]
    world.fake.fail("views.open", error)  # the next views.open: the Reveal button's
    ack, response_url, trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}")
    assert ack.status_code == 200
    assert said in world.replies(response_url)[0]["text"]
    assert trigger not in world.fake.view_ids


def test_plurals_in_the_burn_outcome(world: SlackWorld) -> None:
    alice, bob, carol, dan = new_user(), new_user(), new_user(), new_user()
    reply = share_to(world, alice, bob, carol, dan, secret="three ways")
    assert "Each got their own link in a direct message" in reply["text"]
    assert reveal_by_link(world, link_in(world.dms(bob)[0])) == "three ways"
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    text = world.replies(burn_url)[0]["text"]
    assert "Burned 2 of them: nobody can open those any more." in text
    assert "1 of them was already opened" in text
    _, again_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert "3 of them were already opened" in world.replies(again_url)[0]["text"]


def test_one_recipient_is_not_told_each(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="just bob")
    assert "They got the link in a direct message" in reply["text"]
    assert "Each" not in reply["text"]
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert "Burned for" in world.replies(burn_url)[0]["text"]
    _, again_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert world.replies(again_url)[0]["text"].startswith(":information_source: It was")


def test_burn_now_is_explained_where_it_first_appears(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    _, response_url, _ = world.command("explain burn", user=alice)
    for answer in (world.replies(response_url)[0], share_to(world, alice, bob)):
        contexts = json.dumps([b for b in answer["blocks"] if b["type"] == "context"])
        assert "*Burn now* destroys the secret if nobody has opened it yet" in contexts
    assert "API" not in json.dumps(world.fake.calls_to("chat.postMessage")[-1].body)


def test_a_generated_password_that_could_not_be_stored_is_not_called_your_secret(
    world: SlackWorld,
) -> None:
    if not world.fake_ots:
        pytest.skip("the embedded store has no failure to script here")
    world.fake_ots.fail_next("/share", 502, body=b"<html>502</html>", content_type="text/html")
    _, response_url, trigger = world.command("gen", user=new_user())
    reply = world.replies(response_url)[0]["text"]
    assert "No password was made: it could not be stored." in reply
    assert "Your secret" not in reply
    shown = world.updated_views(world.fake.view_ids[trigger])[0]
    assert "No password was made" in json.dumps(shown)
    bob = new_user()
    world.fake_ots.fail_next("/share", 502, body=b"<html>502</html>", content_type="text/html")
    _, people_url, _ = world.command(f"gen <@{bob}>", user=new_user())
    reply = world.replies(people_url)[0]["text"]
    assert f"Nothing was shared with <@{bob}>: the new password was not saved." in reply


def test_sending_a_secret_to_yourself_is_refused_with_a_reason(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    before = world.fake_ots.requests_to("/api/v1/share") if world.fake_ots else []
    _, response_url, _ = world.command(f"<@{bob}> <@{alice}> to myself", user=alice)
    reply = world.replies(response_url)[0]["text"]
    assert "You picked yourself: secrets go to other people." in reply
    assert "Nothing was shared." in reply
    _, gen_url, gen_trigger = world.command(f"gen <@{alice}>", user=alice)
    assert "You picked yourself" in world.replies(gen_url)[0]["text"]
    assert gen_trigger not in world.fake.view_ids  # no password window was opened
    _, _, trigger = world.command("", user=alice)
    view = world.opened_view(trigger)
    ack = world.submit(view, share_values(secret="x", recipients=(alice,)), user=alice)
    assert ack.json()["errors"][ids.RECIPIENTS_BLOCK].startswith("You picked yourself")
    assert not [c for c in world.fake.calls_to("chat.postMessage")
                if c.body["channel"] in (f"D{alice}", f"D{bob}")]
    if world.fake_ots:
        assert world.fake_ots.requests_to("/api/v1/share") == before
