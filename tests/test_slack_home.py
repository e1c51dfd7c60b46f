"""The sender stays in control, and no used link lingers in history (issue 12.1-6).

End to end over signed HTTP against the served app and the fake Slack, on every
backend (Onetime Secret through the fake OTS and the receipt watcher): the Home
tab and `/ots list`, Burn from both, labels everywhere, honest notices with
refused attempts, and every message that carried a link or a button rewritten
after a reveal (in Slack, on the page, through the API), a burn, an expiry and
used-up passphrase attempts. Every view and message recorded is validated with
slack_sdk's Block Kit models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.slack import ids
from tests.support.block_kit import MESSAGE_METHODS, validate_recorded
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
    slack_world,
)

ATTEMPTS = 2
LABEL = "staging db <primary> & replica"
SHOWN_LABEL = "staging db &lt;primary&gt; &amp; replica"  # as mrkdwn carries it


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("home"), redis_srv.url,
                     PASSPHRASE_ATTEMPTS=str(ATTEMPTS), RECEIPT_POLL_SECONDS="1") as world:
        yield world


@pytest.fixture(autouse=True)
def every_surface_is_valid_block_kit(world: SlackWorld) -> Iterator[None]:
    yield
    assert validate_recorded(world.fake) > 0
    # A message's `text` is what push and e-mail previews show: never a link.
    for method in MESSAGE_METHODS:
        for call in world.fake.calls_to(method):
            assert "/secret/" not in str(call.body.get("text", "")), call.body


# -- helpers ------------------------------------------------------------------------


def share_to(world: SlackWorld, sender: str, *recipients: str, secret: str = "pa55-word",
             label: str | None = LABEL, passphrase: str | None = None,
             ) -> tuple[dict[str, Any], str]:
    """Share through the modal; returns (the sender's answer, its response_url)."""
    _, response_url, trigger = world.command("", user=sender)
    view = world.opened_view(trigger)
    ack = world.submit(view, share_values(secret=secret, passphrase=passphrase, label=label,
                                          recipients=recipients), user=sender)
    assert ack.text == "", ack.text
    return world.replies(response_url)[0], response_url


def dm_of(world: SlackWorld, user: str) -> tuple[dict[str, Any], str]:
    """A recipient's DM as posted, and its ts."""
    call = eventually(lambda: next((c for c in world.fake.calls_to("chat.postMessage")
                                    if c.body.get("channel") == f"D{user}"), None),
                      what=f"the DM to {user}")
    assert call.answer_ts
    return call.body, call.answer_ts


def rewritten(world: SlackWorld, user: str, ts: str, words: str) -> dict[str, Any]:
    """The recipient's DM once chat.update made it say `words`."""
    def probe() -> dict[str, Any] | None:
        now = world.fake.message_now(f"D{user}", ts)
        return now if now and words in now["text"] else None

    return eventually(probe, timeout=15, what=f"the DM to {user} saying {words!r}")


def assert_nothing_usable(message: dict[str, Any]) -> None:
    """No link and no button left in a message."""
    text = json.dumps(message)
    assert "/secret/" not in text, message
    assert '"actions"' not in text and '"button"' not in text, message


def sender_dms(world: SlackWorld, sender: str, words: str, count: int = 1) -> list[str]:
    def probe() -> list[str] | None:
        found = [c.body["text"] for c in world.fake.calls_to("chat.postMessage")
                 if c.body.get("channel") == f"D{sender}" and words in c.body["text"]]
        return found if len(found) >= count else None

    return eventually(probe, timeout=15, what=f"{count} DM(s) to {sender} with {words!r}")


def home_saying(world: SlackWorld, user: str, words: str) -> dict[str, Any]:
    """The Home tab once a publication of it says `words`."""
    def probe() -> dict[str, Any] | None:
        homes = [h for h in world.fake.published_homes(user) if words in json.dumps(h)]
        return homes[-1] if homes else None

    return eventually(probe, timeout=15, what=f"a Home tab for {user} saying {words!r}")


def listing(world: SlackWorld, user: str) -> dict[str, Any]:
    """`/ots list`, as the user sees it now."""
    _, response_url, _ = world.command("list", user=user)
    return world.replies(response_url)[0]


def expire_everything(world: SlackWorld) -> Any:
    """Move the app's clock past every lifetime offered, and let it notice."""
    moved = world.clock.moved(31 * 86400)
    moved.__enter__()
    if world.fake_ots is None:
        world.served.call(world.served.app.state.backend.sweep())
    return moved


# -- the Home tab ---------------------------------------------------------------------


def test_home_tab_lists_live_secrets_and_burns_from_there(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    answer, response_url = share_to(world, alice, bob)
    assert SHOWN_LABEL in answer["text"]  # the label in the sender's answer...
    dm, ts = dm_of(world, bob)
    assert SHOWN_LABEL in json.dumps(dm)  # ...and in the recipient's DM
    # The Home tab is republished as soon as something is shared...
    assert SHOWN_LABEL in json.dumps(world.home_of(alice))
    published = len(world.fake.published_homes(alice))
    # ...and whenever the Home tab is opened.
    assert world.home_opened(alice).status_code == 200
    world.home_of(alice, published + 1)
    home = home_saying(world, alice, "not opened yet")
    assert home["type"] == "home"
    text = json.dumps(home)
    assert SHOWN_LABEL in text and f"<@{bob}>" in text and "<!date^" in text
    assert "/secret/" not in text  # the Home tab never shows a link
    find_element(home, ids.HOME_BURN_ACTION)
    assert "How it works" in text

    # Someone else cannot use Alice's Burn button.
    mallory = new_user()
    assert world.click_in_home(home, ids.HOME_BURN_ACTION, user=mallory).status_code == 200
    assert "not yours to burn" in world.dms(mallory)[0]["text"]

    assert world.click_in_home(home, ids.HOME_BURN_ACTION, user=alice).status_code == 200
    gone = rewritten(world, bob, ts, "was burned by")
    assert_nothing_usable(gone)
    assert SHOWN_LABEL in gone["text"]
    after = home_saying(world, alice, "Live secrets*: none")
    assert "burned" in json.dumps(after) and SHOWN_LABEL in json.dumps(after)
    # The sender's answer loses its Burn now, through the response_url still valid.
    replaced = world.replies(response_url, 2)[-1]
    assert replaced["replace_original"] is True and "burned" in json.dumps(replaced["blocks"])
    assert "/secret/" not in replaced["text"]
    assert ids.BURN_ACTION not in json.dumps(replaced)
    assert reveal_by_link(world, link_in(dm)) is None
    if world.fake_ots:  # the label is the app's own: never sent to Onetime Secret
        assert all(b"staging" not in r.body and "staging" not in json.dumps(r.params)
                   for r in world.fake_ots.requests)


def test_home_tab_for_someone_new_says_how_it_works(world: SlackWorld) -> None:
    newcomer = new_user()
    world.home_opened(newcomer)
    home = world.home_of(newcomer)
    assert "Live secrets*: none" in json.dumps(home) and "How it works" in json.dumps(home)
    before = len(world.fake.published_homes(newcomer))
    world.home_opened(newcomer, tab="messages")  # the Messages tab publishes nothing
    world.home_opened(newcomer)
    world.home_of(newcomer, before + 1)
    assert len(world.fake.published_homes(newcomer)) == before + 1


def test_ots_list_shows_the_same_list_privately_and_burns(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, label="vpn key")
    _, ts = dm_of(world, bob)
    _, response_url, _ = world.command("list", user=alice)
    listing = world.replies(response_url)[0]
    assert listing["response_type"] == "ephemeral"
    assert "vpn key" in json.dumps(listing) and "1 live" in listing["text"]
    assert "/secret/" not in json.dumps(listing)
    ack, burn_url, _ = world.click(listing, ids.HOME_BURN_ACTION, user=alice,
                                   channel="C0GENERAL")
    assert ack.status_code == 200
    refreshed = world.replies(burn_url)[0]
    assert refreshed["replace_original"] is True and "0 live" in refreshed["text"]
    assert_nothing_usable(rewritten(world, bob, ts, "was burned by"))
    home_saying(world, alice, "vpn key")  # the Home tab follows too


# -- outcomes rewrite the messages -----------------------------------------------------


def test_reveal_in_slack_rewrites_the_dm_answer_and_home(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    _, response_url = share_to(world, alice, bob, carol, secret="two-of-them")
    dm, ts = dm_of(world, bob)
    _, carol_ts = dm_of(world, carol)
    ack, _, trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}", ts=ts)
    view = world.opened_view(trigger)
    assert world.submit(view, {}, user=bob).json()["response_action"] == "update"
    assert_nothing_usable(rewritten(world, bob, ts, "You revealed"))
    told = sender_dms(world, alice, "was viewed")[0]
    assert f"<@{bob}> revealed it in Slack" in told and SHOWN_LABEL in told
    assert "/secret/" not in told
    # The answer names what became of each; Burn now stays for Carol's, still live.
    replaced = world.replies(response_url, 2)[-1]
    assert "revealed in Slack" in replaced["text"] + json.dumps(replaced["blocks"])
    burn = find_element(replaced, ids.BURN_ACTION)[0]
    assert burn["value"]
    assert world.fake.message_now(f"D{carol}", carol_ts)["text"].startswith(f"<@{alice}>")
    home = home_saying(world, alice, "revealed in Slack")
    assert "not opened yet" in json.dumps(home)  # Carol's


@pytest.mark.parametrize("how", ["page", "api"])
def test_a_reveal_by_link_rewrites_the_dm_and_says_who_honestly(
    world: SlackWorld, how: str
) -> None:
    if how == "page" and world.fake_ots:
        pytest.skip("Onetime Secret's own page is not the app's: its API stands in")
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret=f"by-{how}")
    dm, ts = dm_of(world, bob)
    if how == "page":
        page = link_in(dm).replace("http://ots.test", world.served.url)
        assert "by-page" in httpx.post(page, timeout=10).text
    else:
        assert reveal_by_link(world, link_in(dm)) == "by-api"
    if world.fake_ots:
        # Onetime Secret does not say how: nobody is named, nothing is guessed.
        words, said = "was opened", "someone with the link opened it"
    elif how == "page":
        words, said = "opened in a browser", "someone with the link opened it in a browser"
    else:
        words, said = "through the API", "someone with the link retrieved it through the API"
    assert_nothing_usable(rewritten(world, bob, ts, words))
    told = sender_dms(world, alice, "was viewed")[0]
    assert said in told and f"<@{bob}> " not in told.split("was viewed")[1]
    home_saying(world, alice, "by someone with the link")


def test_expiry_rewrites_the_dm_and_tells_the_sender_with_the_label(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, label="expiring token")
    _, ts = dm_of(world, bob)
    moved = expire_everything(world)
    try:
        assert_nothing_usable(rewritten(world, bob, ts, "expired unopened"))
        told = sender_dms(world, alice, "expired without being viewed")[0]
        assert "expiring token" in told
        home = home_saying(world, alice, "expired unopened")
        assert "Live secrets*: none" in json.dumps(home)
    finally:
        moved.__exit__(None, None, None)


def test_used_up_attempts_rewrite_the_dm_and_refusals_are_told_once_a_minute(
    world: SlackWorld,
) -> None:
    alice, bob = new_user(), new_user()
    share_to(world, alice, bob, secret="guarded", passphrase="right one")
    dm, ts = dm_of(world, bob)
    ack, _, trigger = world.click(dm, ids.REVEAL_ACTION, user=bob, channel=f"D{bob}", ts=ts)
    view = world.opened_view(trigger)
    answer = world.submit(view, passphrase_values("wrong 1"), user=bob).json()
    assert answer["response_action"] == "errors"
    told = sender_dms(world, alice, "still safe")[0]
    assert "wrong passphrase" in told and SHOWN_LABEL in told
    home_saying(world, alice, "1 refused attempt")
    if world.fake_ots:
        # Onetime Secret counts no attempts; a second wrong one within the minute
        # is counted but not told again.
        world.submit(view, passphrase_values("wrong 2"), user=bob)
        eventually(lambda: "2 refused attempts" in json.dumps(listing(world, alice)),
                   what="the second refusal counted")
        assert len(sender_dms(world, alice, "still safe")) == 1
        return
    # The last allowed try, from the page this time, destroys it.
    page = link_in(dm).replace("http://ots.test", world.served.url)
    httpx.post(page, data={"passphrase": "wrong 2"}, timeout=10)
    assert_nothing_usable(rewritten(world, bob, ts, "too many wrong passphrases"))
    sender_dms(world, alice, "destroyed after too many wrong passphrases")
    assert len(sender_dms(world, alice, "still safe")) == 1
    home_saying(world, alice, "destroyed")


def test_someone_elses_reveal_is_refused_and_the_sender_told_once(world: SlackWorld) -> None:
    alice, bob, mallory = new_user(), new_user(), new_user()
    share_to(world, alice, bob)
    dm, ts = dm_of(world, bob)
    for _ in range(2):
        world.click(dm, ids.REVEAL_ACTION, user=mallory, channel=f"D{bob}", ts=ts)
    told = sender_dms(world, alice, "still safe")[0]
    assert f"<@{mallory}> pressed its *Reveal in Slack* button" in told
    home_saying(world, alice, "1 refused attempt")
    # Every press is counted; the sender hears (and Home is republished) once a minute.
    eventually(lambda: "2 refused attempts" in json.dumps(listing(world, alice)),
               what="the second refusal counted")
    assert len(sender_dms(world, alice, "still safe")) == 1
    assert world.fake.message_now(f"D{bob}", ts)["text"] == dm["text"]  # Bob's is intact


def test_burn_now_in_the_answer_rewrites_the_dms(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    answer, _ = share_to(world, alice, bob, carol)
    _, bob_ts = dm_of(world, bob)
    _, carol_ts = dm_of(world, carol)
    world.click(answer, ids.BURN_ACTION, user=alice, channel="C0GENERAL")
    for user, ts in ((bob, bob_ts), (carol, carol_ts)):
        assert_nothing_usable(rewritten(world, user, ts, "was burned by"))
    home = home_saying(world, alice, "Live secrets*: none")
    assert json.dumps(home).count("burned") >= 2


def test_the_global_shortcuts_answer_is_in_its_window_and_burns_there(
    world: SlackWorld,
) -> None:
    alice, trigger = new_user(), world.fake.new_trigger()
    world.global_shortcut(user=alice, trigger=trigger)
    view = world.opened_view(trigger)
    view_id = world.fake.view_ids[trigger]
    world.submit(view, share_values(secret="in-the-window", label="window"), user=alice,
                 view_id=view_id)
    answer = world.updated_views(view_id)[-1]
    assert "/secret/" in json.dumps(answer)
    assert not [c for c in world.fake.calls_to("chat.postMessage")
                if c.body.get("channel") == f"D{alice}"]  # no DM holds the link
    button, block_id = find_element(answer, ids.BURN_ACTION)
    payload = {
        "type": "block_actions", "team": {"id": "T0TEST"},
        "user": {"id": alice, "username": "a", "team_id": "T0TEST"},
        "api_app_id": "A0OTS", "token": "legacy", "trigger_id": world.fake.new_trigger(),
        "container": {"type": "view", "view_id": view_id},
        "view": {**answer, "id": view_id, "hash": "h"},
        "actions": [{"action_id": ids.BURN_ACTION, "block_id": block_id, "type": "button",
                     "value": button["value"], "action_ts": "1.2", "text": button["text"]}],
    }
    world.interact(payload)
    burned = eventually(lambda: (lambda v: v if "Burned" in json.dumps(v) else None)(
        world.updated_views(view_id)[-1]), what="the window saying it burned")
    assert_nothing_usable(burned)
    assert reveal_by_link(world, link_in(answer)) is None
