"""The share modal end to end: opened by /ots, the global and the message shortcut;
submitted with good and bad input; `/ots gen` and the Generate tick box.

One served app per backend (embedded on SQLite and Redis, Onetime Secret), over
signed HTTP, against the fake Slack. What is settled before anything is stored
(opening, validation) runs once, on SQLite (`form_world`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from bot.slack import ids
from tests.support.block_kit import validate_recorded
from tests.support.servers import RedisServer
from tests.support.slack_world import (
    KINDS,
    SlackWorld,
    find_element,
    link_in,
    new_user,
    reveal_by_link,
    share_values,
    signed_value,
    slack_world,
)

MAX_BYTES = 2000


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("slack"), redis_srv.url,
                     MAX_SECRET_BYTES=str(MAX_BYTES)) as world:
        yield world
        validate_recorded(world.fake)


@pytest.fixture(scope="module")
def form_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    """For what happens before anything is stored: the backend plays no part."""
    with slack_world("sqlite", tmp_path_factory.mktemp("slack"), None,
                     MAX_SECRET_BYTES=str(MAX_BYTES)) as world:
        yield world
        validate_recorded(world.fake)


def open_modal(world: SlackWorld, user: str) -> tuple[dict, str]:
    """`/ots` alone: returns the opened view and the command's response_url."""
    ack, response_url, trigger = world.command("", user=user)
    assert ack.status_code == 200
    return world.opened_view(trigger), response_url


def blocks_by_id(view: dict) -> dict[str, dict]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


def shares_made(world: SlackWorld) -> int:
    if world.fake_ots:
        return len(world.fake_ots.requests_to("/api/v1/share"))
    return -1  # the embedded store is in-process: checked through the links instead


# -- opening ----------------------------------------------------------------------


def test_ots_alone_opens_the_share_modal_with_its_trigger(world: SlackWorld) -> None:
    before = shares_made(world)
    view, response_url = open_modal(world, new_user())
    assert view["callback_id"] == ids.SHARE_VIEW
    assert set(blocks_by_id(view)) == {ids.SECRET_BLOCK, ids.GENERATE_BLOCK,
                                       ids.PASSPHRASE_BLOCK, ids.TTL_BLOCK,
                                       ids.RECIPIENTS_BLOCK, ids.SWITCH_BLOCK,
                                       ids.LABEL_BLOCK}
    assert blocks_by_id(view)[ids.LABEL_BLOCK]["element"]["max_length"] == 100
    secret = blocks_by_id(view)[ids.SECRET_BLOCK]["element"]
    assert secret["multiline"] is True and secret["max_length"] == 3000
    assert "initial_value" not in secret
    ttl = blocks_by_id(view)[ids.TTL_BLOCK]["element"]
    assert ttl["initial_option"]["value"] == str(7 * 86400)
    assert [o["text"]["text"] for o in ttl["options"]] == [
        "5 minutes", "1 hour", "1 day", "7 days", "14 days", "30 days"]
    assert blocks_by_id(view)[ids.RECIPIENTS_BLOCK]["element"]["max_selected_items"] == 10
    assert signed_value(view["private_metadata"]) == {"r": response_url, "c": "C0GENERAL"}
    assert shares_made(world) == before  # nothing stored before the modal is filled in


def test_global_shortcut_opens_the_modal_without_a_response_url(form_world: SlackWorld) -> None:
    user = new_user()
    ack, trigger = form_world.global_shortcut(user=user)
    assert ack.status_code == 200
    view = form_world.opened_view(trigger)
    assert view["callback_id"] == ids.SHARE_VIEW
    assert signed_value(view["private_metadata"]) == {}
    # With no conversation to answer in, the answer is shown in the form's own
    # window: no lasting DM carries the live link.
    view_id = form_world.fake.view_ids[trigger]
    ack = form_world.submit(view, share_values(secret="from-the-shortcut", label="wifi"),
                            user=user, view_id=view_id)
    assert ack.json()["response_action"] == "update"  # "Sharing…" at once, then the answer
    answer = form_world.updated_views(view_id)[-1]
    assert answer["callback_id"] == ids.SHARE_ANSWER_VIEW
    assert "“wifi”" in json.dumps(answer, ensure_ascii=False)
    find_element(answer, ids.BURN_ACTION)
    assert not form_world.fake.calls_to("chat.postMessage") or not any(
        c.body.get("channel") == f"D{user}" for c in form_world.fake.calls_to("chat.postMessage"))
    assert reveal_by_link(form_world, link_in(answer)) == "from-the-shortcut"


def test_message_shortcut_prefills_the_unescaped_text_and_warns(form_world: SlackWorld) -> None:
    escaped = "db: pa&amp;ss &lt;word&gt; on <https://db.example.com|db.example.com>"
    user = new_user()
    ack, response_url, trigger = form_world.message_shortcut(escaped, user=user, author=user)
    assert ack.status_code == 200
    view = form_world.opened_view(trigger)
    element = blocks_by_id(view)[ids.SECRET_BLOCK]["element"]
    assert element["initial_value"] == "db: pa&ss <word> on db.example.com"
    notes = json.dumps([b for b in view["blocks"] if b["type"] == "context"])
    assert "stays in the conversation" in notes and "Delete it" in notes
    assert signed_value(view["private_metadata"])["r"] == response_url


@pytest.mark.parametrize(("text", "note"), [
    ("x" * 3001, "longer than the 3,000 characters"),
    (None, "has no text"),
])
def test_message_shortcut_without_usable_text_says_why(
    form_world: SlackWorld, text: str | None, note: str
) -> None:
    _, _, trigger = form_world.message_shortcut(text, user=new_user())
    view = form_world.opened_view(trigger)
    assert "initial_value" not in blocks_by_id(view)[ids.SECRET_BLOCK]["element"]
    assert note in json.dumps(view["blocks"])


def test_mentions_alone_open_the_modal_with_them_chosen(form_world: SlackWorld) -> None:
    bob, carol = new_user(), new_user()
    _, _, trigger = form_world.command(f"<@{bob}|bob> <@{carol}>", user=new_user())
    view = form_world.opened_view(trigger)
    assert blocks_by_id(view)[ids.RECIPIENTS_BLOCK]["element"]["initial_users"] == [bob, carol]


def test_expired_trigger_is_answered_not_crashed(form_world: SlackWorld) -> None:
    user, trigger = new_user(), form_world.fake.new_trigger()
    form_world.fake.fail("views.open", "expired_trigger_id", match={"trigger_id": trigger})
    ack, response_url, _ = form_world.command("", user=user, trigger=trigger)
    assert ack.status_code == 200
    reply = form_world.replies(response_url)[0]
    assert "try again" in reply["text"] and reply["response_type"] == "ephemeral"
    # A global shortcut has no response_url: the answer is a DM.
    trigger = form_world.fake.new_trigger()
    form_world.fake.fail("views.open", "expired_trigger_id", match={"trigger_id": trigger})
    form_world.global_shortcut(user=user, trigger=trigger)
    assert "try again" in form_world.dms(user)[0]["text"]


# -- submitting ---------------------------------------------------------------------


def test_submission_shares_and_answers_the_sender_privately(world: SlackWorld) -> None:
    user = new_user()
    view, response_url = open_modal(world, user)
    secret, passphrase = "s3cret\nsecond line & <more>", "correct horse"
    ack = world.submit(view, share_values(secret=secret, passphrase=passphrase, ttl=3600),
                       user=user)
    assert ack.status_code == 200 and ack.text == ""  # an empty ack closes the modal
    reply = world.replies(response_url)[0]
    assert reply["response_type"] == "ephemeral"
    assert reply["unfurl_links"] is False and reply["unfurl_media"] is False
    assert "/secret/" not in reply["text"]  # push and e-mail previews show no link
    context = reply["blocks"][1]["elements"][0]["text"]
    assert "passphrase another way" in context
    expires = int(re.search(r"<!date\^(\d+)\^", context).group(1))
    assert abs(expires - (time.time() + 3600)) < 60
    find_element(reply, ids.BURN_ACTION)
    sent = world.everything_sent()
    assert "s3cret" not in sent and passphrase not in sent
    link = link_in(reply)
    assert link.startswith(world.link_origin)
    assert reveal_by_link(world, link) is None  # the passphrase is needed
    assert reveal_by_link(world, link, passphrase) == secret
    assert reveal_by_link(world, link, passphrase) is None


BAD_INPUT = [
    pytest.param(dict(secret="  \n "), ids.SECRET_BLOCK, "Type the secret", id="empty"),
    pytest.param(dict(secret="x", generate=True), ids.SECRET_BLOCK, "not both", id="both"),
    pytest.param(dict(secret="é" * (MAX_BYTES // 2 + 1)), ids.SECRET_BLOCK,
                 f"the limit is {MAX_BYTES:,}", id="too-long"),
    pytest.param(dict(secret="same", passphrase="same"), ids.PASSPHRASE_BLOCK,
                 "not be the secret", id="passphrase-is-secret"),
    pytest.param(dict(secret="x", ttl=12345), ids.TTL_BLOCK, "lifetimes offered",
                 id="ttl-not-offered"),
    pytest.param(dict(secret="x", recipients=tuple(f"U0R{i:02d}" for i in range(11))),
                 ids.RECIPIENTS_BLOCK, "at most 10", id="too-many-people"),
    # Slack's max_length stops a longer label in the form; a forged one is refused here.
    pytest.param(dict(secret="x", label="L" * 101), ids.LABEL_BLOCK, "100 characters",
                 id="label-too-long"),
    pytest.param(dict(secret="hunter22", label="prod: hunter22"), ids.LABEL_BLOCK,
                 "not secret", id="label-holds-secret"),
]


@pytest.mark.parametrize(("values", "block", "message"), BAD_INPUT)
def test_bad_input_is_answered_inside_the_modal(
    form_world: SlackWorld, values: dict, block: str, message: str
) -> None:
    user = new_user()
    view, _ = open_modal(form_world, user)
    ack = form_world.submit(view, share_values(**values), user=user)
    assert ack.status_code == 200
    answer = ack.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block] and message in answer["errors"][block]


@pytest.mark.parametrize(("flags", "words"), [
    (dict(is_bot=True), "is a bot"),
    (dict(deleted=True), "is deactivated"),
])
def test_bots_and_deactivated_people_are_refused_in_the_modal(
    form_world: SlackWorld, flags: dict, words: str
) -> None:
    user, bob, other = new_user(), new_user(), new_user()
    form_world.fake.add_user(bob)
    form_world.fake.add_user(other, name="Robo Helper", display_name="robo", **flags)
    view, _ = open_modal(form_world, user)
    ack = form_world.submit(view, share_values(secret="x", recipients=(bob, other)), user=user)
    errors = ack.json()["errors"]
    # Inline errors are plain text: a name, never a raw <@U…> mention.
    assert f"@robo {words}" in errors[ids.RECIPIENTS_BLOCK]
    assert other not in errors[ids.RECIPIENTS_BLOCK]
    assert f"<@{bob}>" not in errors[ids.RECIPIENTS_BLOCK]


# -- generated passwords --------------------------------------------------------------


def password_in(view: dict) -> str:
    cells = [e["elements"][0]["text"] for b in view["blocks"] if b["type"] == "rich_text"
             for e in b["elements"]]
    assert len(cells) == 1, view
    return str(cells[0])


def test_generate_in_the_modal_shows_the_password_only_in_the_modal(world: SlackWorld) -> None:
    user = new_user()
    view, response_url = open_modal(world, user)
    ack = world.submit(view, share_values(generate=True), user=user, view_id="V0GEN" + user)
    assert ack.json()["response_action"] == "update"  # "working…" while it is made
    shown = world.updated_views("V0GEN" + user)[0]
    password = password_in(shown)
    assert len(password) == 12 and password.isalnum()
    reply = world.replies(response_url)[0]
    assert password not in json.dumps(reply)
    assert reveal_by_link(world, link_in(reply)) == password
    messages = [c.body for c in world.fake.calls
                if c.method in ("chat.postMessage", "response_url", "chat.postEphemeral")]
    assert password not in json.dumps(messages)


def test_ots_gen_opens_a_modal_first_then_fills_in_the_password(world: SlackWorld) -> None:
    user = new_user()
    ack, response_url, trigger = world.command("gen", user=user)
    assert ack.status_code == 200
    assert "Generating" in json.dumps(world.opened_view(trigger))
    shown = world.updated_views(world.fake.view_ids[trigger])[0]
    assert shown["callback_id"] == ids.GENERATED_VIEW
    assert reveal_by_link(world, link_in(world.replies(response_url)[0])) == password_in(shown)


def test_ots_gen_with_an_expired_trigger_makes_nothing(world: SlackWorld) -> None:
    before, trigger = shares_made(world), world.fake.new_trigger()
    world.fake.fail("views.open", "expired_trigger_id", match={"trigger_id": trigger})
    _, response_url, _ = world.command("gen", user=new_user(), trigger=trigger)
    assert "try again" in world.replies(response_url)[0]["text"]
    assert shares_made(world) == before


def test_ots_gen_to_someone_sends_them_the_password_and_shows_it_to_the_sender(
    world: SlackWorld,
) -> None:
    alice, bob = new_user(), new_user()
    _, response_url, trigger = world.command(f"gen <@{bob}|bob>", user=alice)
    world.opened_view(trigger)
    shown = world.updated_views(world.fake.view_ids[trigger])[0]
    password = password_in(shown)
    assert f"Sent to <@{bob}>" in json.dumps(shown)
    assert f"Sent a one-time secret to <@{bob}>" in world.replies(response_url)[0]["text"]
    dm = world.dms(bob)[0]
    assert password not in json.dumps(dm)
    assert reveal_by_link(world, link_in(dm)) == password
