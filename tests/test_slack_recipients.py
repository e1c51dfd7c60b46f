"""Sharing to people end to end: their DMs, Reveal in Slack, Burn now, and the
sender's notifications, on every backend (Onetime Secret: through the receipt
watcher), over signed HTTP against the fake Slack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.slack import ids, modals
from tests.support.block_kit import validate_recorded
from tests.support.servers import RedisServer
from tests.support.slack_world import (
    KINDS,
    SlackWorld,
    eventually,
    find_element,
    link_in,
    new_user,
    passphrase_values,
    reveal_by_link,
    share_values,
    signed_value,
    slack_world,
)

ATTEMPTS = 2


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("slack"), redis_srv.url,
                     PASSPHRASE_ATTEMPTS=str(ATTEMPTS), RECEIPT_POLL_SECONDS="1") as world:
        yield world
        validate_recorded(world.fake)


def share_to(world: SlackWorld, sender: str, *recipients: str, secret: str = "pa55-word",
             passphrase: str | None = None) -> dict[str, Any]:
    """Share through the modal; returns the sender's answer."""
    _, response_url, trigger = world.command("", user=sender)
    view = world.opened_view(trigger)
    ack = world.submit(view, share_values(secret=secret, passphrase=passphrase,
                                          recipients=recipients), user=sender)
    assert ack.text == "", ack.text
    return world.replies(response_url)[0]


def reveal_in_slack(world: SlackWorld, dm: dict[str, Any], user: str,
                    passphrase: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Press Reveal in Slack and submit the modal: (the modal opened, the submission's ack)."""
    channel = f"D{user}"
    ack, _, trigger = world.click(dm, ids.REVEAL_ACTION, user=user, channel=channel)
    assert ack.status_code == 200
    view = world.opened_view(trigger)
    values = passphrase_values(passphrase) if passphrase is not None else {}
    answer = world.submit(view, values, user=user)
    assert answer.status_code == 200
    return view, answer.json()


def revealed_value(answer: dict[str, Any]) -> str:
    assert answer["response_action"] == "update", answer
    cells = [e["elements"][0]["text"] for b in answer["view"]["blocks"]
             if b["type"] == "rich_text" for e in b["elements"]]
    return "".join(cells)


def notifications(world: SlackWorld, sender: str, count: int = 1) -> list[str]:
    # The watcher polls Onetime Secret every second; the embedded store is immediate.
    return [m["text"] for m in world.dms(sender, count, timeout=15)]


# -- sharing to people ---------------------------------------------------------------


def test_ots_mention_text_sends_the_person_a_dm_without_the_secret(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    secret = "hunter2 &amp; more"
    ack, response_url, _ = world.command(f"<@{bob}|bob> {secret}", user=alice)
    assert ack.status_code == 200
    dm = world.dms(bob)[0]
    assert f"<@{alice}> sent you a one-time secret" in dm["text"]
    assert "hunter2" not in json.dumps(dm)
    assert "<!date^" in json.dumps(dm["blocks"])  # the expiry, in the reader's time zone
    assert dm["unfurl_links"] is False and dm["unfurl_media"] is False
    reveal, _ = find_element(dm, ids.REVEAL_ACTION)
    assert signed_value(reveal["value"])["to"] == bob
    link, _ = find_element(dm, ids.OPEN_LINK_ACTION)
    assert link["url"].startswith(world.link_origin)

    reply = world.replies(response_url)[0]
    assert f"Sent a one-time secret to <@{bob}>" in reply["text"]
    assert "hunter2" not in json.dumps(reply)
    burn, _ = find_element(reply, ids.BURN_ACTION)
    assert bob in burn["value"] and alice in burn["value"]
    assert reveal_by_link(world, link["url"]) == "hunter2 & more"  # unescaped


def test_each_recipient_gets_a_separate_one_time_secret(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    reply = share_to(world, alice, bob, carol, secret="shared-by-two")
    assert f"<@{bob}> and <@{carol}>" in reply["text"]
    bob_link, carol_link = link_in(world.dms(bob)[0]), link_in(world.dms(carol)[0])
    assert bob_link != carol_link
    assert reveal_by_link(world, bob_link) == "shared-by-two"
    assert reveal_by_link(world, carol_link) == "shared-by-two"  # bob's reveal left it


def test_the_passphrase_is_in_no_message(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="vault-code", passphrase="tuba-kettle")
    dm = world.dms(bob)[0]
    assert "You need the passphrase" in json.dumps(dm)
    assert "passphrase another way" in json.dumps(reply)
    assert "tuba-kettle" not in world.everything_sent()
    assert "vault-code" not in world.everything_sent()


@pytest.mark.parametrize(("flags", "reason"), [
    (dict(is_bot=True), "they are a bot"),
    (dict(deleted=True), "their account is deactivated"),
])
def test_a_bot_or_deactivated_recipient_gets_nothing_and_the_sender_is_told(
    world: SlackWorld, flags: dict[str, bool], reason: str
) -> None:
    alice, bob, robot = new_user(), new_user(), new_user()
    world.fake.add_user(robot, **flags)
    shares_before = len(world.fake_ots.requests_to("/api/v1/share")) if world.fake_ots else 0
    _, response_url, _ = world.command(f"<@{bob}> <@{robot}> s3cret", user=alice)
    reply = world.replies(response_url)[0]
    assert f"Nothing was shared with <@{robot}>: {reason}" in reply["text"]
    assert f"Sent a one-time secret to <@{bob}>" in reply["text"]
    assert world.dms(bob)
    if world.fake_ots:  # one secret, for bob only: the DM is opened before storing
        assert len(world.fake_ots.requests_to("/api/v1/share")) == shares_before + 1


@pytest.mark.parametrize("text", ["s3cret", "", "gen"], ids=["text", "form", "generate"])
def test_more_people_than_the_form_allows_are_refused_and_nothing_is_stored(
    world: SlackWorld, text: str
) -> None:
    alice = new_user()
    people = [new_user() for _ in range(modals.MAX_RECIPIENTS + 1)]
    def made() -> int:  # (the receipt watcher's polls are other requests)
        if world.fake_ots is None:
            return 0
        return sum(len(world.fake_ots.requests_to(f"/api/v1/{path}"))
                   for path in ("share", "generate"))

    made_before = made()
    mentions = " ".join(f"<@{person}>" for person in people)
    command = f"gen {mentions}" if text == "gen" else f"{mentions} {text}"
    ack, response_url, trigger = world.command(command, user=alice)
    assert ack.status_code == 200
    reply = world.replies(response_url)[0]
    assert f"You named {len(people)} people" in reply["text"]
    assert f"at most {modals.MAX_RECIPIENTS}" in reply["text"]
    assert "Nothing was shared" in reply["text"]
    sent = world.everything_sent()
    assert not any(person in sent.replace(reply["text"], "") for person in people)
    assert not [c for c in world.fake.calls_to("views.open")
                if c.body.get("trigger_id") == trigger]
    assert made() == made_before


def test_a_dm_that_cannot_be_posted_burns_its_secret(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    world.fake.fail("chat.postMessage", "restricted_action", match={"channel": f"D{bob}"})
    _, response_url, _ = world.command(f"<@{bob}> s3cret", user=alice)
    reply = world.replies(response_url)[0]
    assert f"Nothing was shared with <@{bob}>" in reply["text"]
    assert "restricted_action" in reply["text"]
    assert find_element_or_none(reply, ids.BURN_ACTION) is None
    failed_dm = world.dms(bob)[0]  # the fake records the refused post
    assert reveal_by_link(world, link_in(failed_dm)) is None


def find_element_or_none(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    try:
        return find_element(message, action_id)[0]
    except AssertionError:
        return None


# -- reveal in Slack ---------------------------------------------------------------------


def test_reveal_in_slack_shows_the_secret_in_a_modal_once(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="line one\nline <two> & three")
    dm = world.dms(bob)[0]
    view, answer = reveal_in_slack(world, dm, bob)
    assert view["callback_id"] == ids.REVEAL_VIEW
    assert ids.REVEAL_PASSPHRASE_BLOCK not in json.dumps(view)
    assert "line one" not in view["private_metadata"]
    assert revealed_value(answer) == "line one\nline <two> & three"
    # The DM is replaced: no button left, and the secret is in no message.
    update = eventually(lambda: [c.body for c in world.fake.calls_to("chat.update")
                                 if c.body["channel"] == f"D{bob}"], what="DM update")[0]
    assert "You revealed the one-time secret" in update["text"]
    assert "/secret/" not in json.dumps(update) and "actions" not in json.dumps(update)
    assert "line one" not in world.everything_sent()
    # Once: the second try says it is gone, and so does the link.
    _, again = reveal_in_slack(world, dm, bob)
    assert "not available any more" in json.dumps(again["view"])
    assert reveal_by_link(world, link_in(dm)) is None
    told = notifications(world, alice)[0]
    assert f"with <@{bob}> was viewed" in told
    if not world.fake_ots:  # Onetime Secret does not say how it was read
        assert "revealed it in Slack" in told


def test_only_the_recipient_can_use_the_reveal_button(world: SlackWorld) -> None:
    alice, bob, mallory = new_user(), new_user(), new_user()
    share_to(world, alice, bob, secret="for-bob-only")
    dm = world.dms(bob)[0]
    ack, response_url, trigger = world.click(dm, ids.REVEAL_ACTION, user=mallory,
                                             channel=f"D{bob}")
    assert ack.status_code == 200
    refusal = world.replies(response_url)[0]
    assert f"was sent to <@{bob}>: only they can reveal it" in refusal["text"]
    assert trigger not in world.fake.view_ids
    # A reveal modal submitted by someone else is refused too.
    _, _, bob_trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}")
    view = world.opened_view(bob_trigger)
    answer = world.submit(view, {}, user=mallory).json()
    assert "only they can reveal it" in json.dumps(answer["view"])
    assert "for-bob-only" not in json.dumps(answer)
    assert reveal_by_link(world, link_in(dm)) == "for-bob-only"  # still unread


def test_wrong_passphrase_is_an_inline_error_and_does_not_consume(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="behind-a-phrase", passphrase="open sesame")
    dm = world.dms(bob)[0]
    view, answer = reveal_in_slack(world, dm, bob, passphrase="wrong")
    assert ids.REVEAL_PASSPHRASE_BLOCK in json.dumps(view["blocks"])
    assert answer["response_action"] == "errors"
    assert "not right" in answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK]
    answer = world.submit(view, passphrase_values("open sesame"), user=bob).json()
    assert revealed_value(answer) == "behind-a-phrase"


def test_too_many_wrong_passphrases_burn_it_and_the_sender_is_told(world: SlackWorld) -> None:
    if world.fake_ots:
        pytest.skip("the attempt limit is the embedded store's (Onetime Secret locks instead)")
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="three-strikes", passphrase="right one")
    view, answer = reveal_in_slack(world, world.dms(bob)[0], bob, passphrase="wrong 1")
    assert "1 try left" in answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK]
    for attempt in range(2, ATTEMPTS + 1):
        answer = world.submit(view, passphrase_values(f"wrong {attempt}"), user=bob).json()
    assert "the secret was destroyed" in json.dumps(answer["view"])
    answer = world.submit(view, passphrase_values("right one"), user=bob).json()
    assert "three-strikes" not in json.dumps(answer)
    # The first wrong try was a notice of its own; then the burn.
    told = notifications(world, alice, 2)
    assert any("still safe: someone tried a wrong passphrase" in t for t in told), told
    assert any("destroyed after too many wrong passphrases" in t for t in told), told


# -- burn ------------------------------------------------------------------------------


def test_burn_now_destroys_unread_secrets_and_replaces_the_message(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    reply = share_to(world, alice, bob, carol, secret="burn-me")
    ack, response_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert ack.status_code == 200
    outcome = world.replies(response_url)[0]
    assert outcome["replace_original"] is True
    assert "Burned for" in outcome["text"] and ids.BURN_ACTION not in json.dumps(outcome)
    for person in (bob, carol):
        assert reveal_by_link(world, link_in(world.dms(person)[0])) is None
    _, again_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert "nothing left to burn" in world.replies(again_url)[0]["text"]


def test_burn_now_needs_no_passphrase(world: SlackWorld) -> None:
    """The API asks for the passphrase to burn; the sender's own button does not
    (Slack says who clicked)."""
    if world.fake_ots:
        pytest.skip("Onetime Secret decides for itself what its burn needs")
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="guarded-burn", passphrase="pp words")
    ack, response_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert ack.status_code == 200
    assert "Burned for" in world.replies(response_url)[0]["text"]
    assert reveal_by_link(world, link_in(world.dms(bob)[0]), "pp words") is None


def test_burn_after_a_reveal_says_it_was_already_read(world: SlackWorld) -> None:
    alice = new_user()
    _, response_url, _ = world.command("read-first", user=alice)
    reply = world.replies(response_url)[0]
    assert reveal_by_link(world, link_in(reply)) == "read-first"
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    assert "already opened, burned or expired" in world.replies(burn_url)[0]["text"]


def test_only_the_sender_can_burn(world: SlackWorld) -> None:
    alice, mallory = new_user(), new_user()
    _, response_url, _ = world.command("not-yours", user=alice)
    reply = world.replies(response_url)[0]
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=mallory, channel="C0GENERAL")
    refusal = world.replies(burn_url)[0]
    assert "Only the person who shared this secret can burn it" in refusal["text"]
    assert not refusal.get("replace_original")
    assert reveal_by_link(world, link_in(reply)) == "not-yours"


# -- notifications -------------------------------------------------------------------------


def test_the_sender_hears_when_the_link_is_opened(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="watch-me")
    assert reveal_by_link(world, link_in(world.dms(bob)[0])) == "watch-me"
    text = notifications(world, alice)[0]
    assert f"with <@{bob}> was viewed" in text
    assert "watch-me" not in text
    if not world.fake_ots:
        # A link works for whoever holds it: nobody is named.
        assert "someone with the link retrieved it through the API" in text
        assert f"<@{bob}> " not in text.split("was viewed")[1]


def test_the_sender_is_not_told_twice_or_about_their_own_burn(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="quiet")
    _, burn_url, _ = world.click(reply, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    world.replies(burn_url)
    _, response_url, _ = world.command("loud", user=alice)
    assert reveal_by_link(world, link_in(world.replies(response_url)[0])) == "loud"
    texts = notifications(world, alice)
    assert len(texts) == 1 and "was viewed" in texts[0]
    if world.fake_ots:  # two more rounds of the watcher: still one message
        eventually(lambda: len(world.fake_ots.requests_to("/api/v1/private")) >= 4)
    assert len(world.dms(alice)) == 1


def test_onetimesecret_burns_made_elsewhere_reach_the_sender(world: SlackWorld) -> None:
    if not world.fake_ots:
        pytest.skip("on the embedded store only the Burn button holds the receipt key")
    alice = new_user()
    _, response_url, _ = world.command("burned-at-the-service", user=alice)
    burn, _ = find_element(world.replies(response_url)[0], ids.BURN_ACTION)
    (metadata_key,) = signed_value(burn["value"])["m"]
    # Burned on the service's own receipt page, not through Slack.
    httpx.post(f"{world.fake_ots.url}/api/v1/private/{metadata_key}/burn").raise_for_status()
    assert "was burned before anyone viewed it" in notifications(world, alice)[0]
