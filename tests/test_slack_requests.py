"""Asking for a secret in Slack, end to end over signed HTTP against the fake Slack:
`/ots request @bob what for` → Bob's DM → Answer → the form → the requester's DM →
Reveal in Slack gives exactly what was typed; answered once; declined; cancelled;
expired; only the people asked may answer. On every backend (the request lives in
the app store; the answer is stored by the backend).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack import ids
from tests.support.fake_slack import TEAM_ID
from tests.support.servers import RedisServer
from tests.support.slack_world import (
    KINDS,
    SlackWorld,
    eventually,
    find_element,
    new_user,
    share_values,
    signed_value,
    slack_world,
)
from tests.test_slack_recipients import reveal_in_slack, revealed_value

TYPED = "line one: pa55 <b>&amp; \u202eexe.txt\nline two   with spaces\n"


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("requests"), redis_srv.url,
                     RECEIPT_POLL_SECONDS="1") as world:
        yield world


def slack_escaped(text: str) -> str:
    """What Slack sends for typed text (should_escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ask(world: SlackWorld, requester: str, *people: str, what_for: str = "the staging DB"
        ) -> dict[str, Any]:
    """`/ots request @people what for`; returns the requester's private answer."""
    mentions = " ".join(f"<@{p}|{p.lower()}>" for p in people)
    ack, response_url, _ = world.command(
        f"request {mentions} {slack_escaped(what_for)}".replace("  ", " "), user=requester
    )
    assert ack.status_code == 200 and ack.text == "", ack.text
    return world.replies(response_url)[0]


def asked_dm(world: SlackWorld, person: str) -> dict[str, Any]:
    return world.dms(person)[0]


def open_answer_form(world: SlackWorld, dm: dict[str, Any], person: str) -> dict[str, Any]:
    ack, _, trigger = world.click(dm, ids.ANSWER_ACTION, user=person, channel=f"D{person}")
    assert ack.status_code == 200
    return world.opened_view(trigger)


def answer(world: SlackWorld, form: dict[str, Any], person: str, secret: str | None = TYPED,
           **extra: Any) -> Any:
    values = share_values(secret=secret, **extra)
    del values[ids.RECIPIENTS_BLOCK]  # the answer form has no Send to
    response = world.submit(form, values, user=person)
    assert response.status_code == 200
    return response.json() if response.text else None


def updates_of(world: SlackWorld, person: str, count: int = 1) -> list[dict[str, Any]]:
    """chat.update calls on a person's DM with the app (the ask DM rewritten)."""
    def probe() -> list[dict[str, Any]] | None:
        found = [c.body for c in world.fake.calls_to("chat.update")
                 if c.body.get("channel") == f"D{person}"]
        return found if len(found) >= count else None

    return eventually(probe, what=f"{count} update(s) of D{person}")


def click_told(world: SlackWorld, message: dict[str, Any], action_id: str, user: str,
               channel: str | None = None) -> tuple[str, str]:
    """Press a button; (what the app told the presser privately, the click's trigger)."""
    _, response_url, trigger = world.click(message, action_id, user=user,
                                           channel=channel or f"D{user}")
    return world.replies(response_url)[0]["text"], trigger


def buttons(message: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for b in message.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]]


def no_views_opened_with(world: SlackWorld, trigger: str) -> bool:
    return not [c for c in world.fake.calls_to("views.open")
                if c.body.get("trigger_id") == trigger]


# -- the whole way --------------------------------------------------------------------


def test_request_answer_reveal_gives_exactly_what_was_typed(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    confirmation = ask(world, alice, bob, what_for="the *staging* DB <!channel>")
    assert f"<@{bob}>" in confirmation["text"]
    cancel, _ = find_element(confirmation, ids.CANCEL_REQUEST_ACTION)
    assert signed_value(cancel["value"])["by"] == alice

    dm = asked_dm(world, bob)
    assert f"<@{alice}> asks you for a secret" in dm["text"]
    shown = json.dumps(dm["blocks"])
    # The "what for" is shown as typed, but cannot alert a channel or make a link.
    assert "&lt;!channel&gt;" in shown
    assert "<!channel>" not in shown
    assert buttons(dm) == [ids.ANSWER_ACTION, ids.DECLINE_ACTION]
    assert "expires" in shown

    form = open_answer_form(world, dm, bob)
    assert form["callback_id"] == ids.ANSWER_VIEW
    assert "the *staging* DB <!channel>" in json.dumps(form["blocks"])  # plain_text
    assert answer(world, form, bob) is None  # the form closes

    delivered = world.dms(alice)[0]
    assert f"<@{bob}> sent you a one-time secret for your request" in json.dumps(delivered)
    assert TYPED not in world.everything_sent()
    _, revealed = reveal_in_slack(world, delivered, alice)
    assert revealed_value(revealed) == TYPED

    rewritten = updates_of(world, bob)[0]
    assert f"You answered <@{alice}>'s request" in rewritten["text"]
    assert buttons(rewritten) == []
    # Bob is the sender: he hears when his answer was viewed.
    eventually(lambda: [m for m in world.fake.calls_to("chat.postMessage")
                        if m.body.get("channel") == f"D{bob}" and "was viewed" in
                        m.body.get("text", "")], timeout=15, what="Bob's receipt")


def test_a_generated_answer_is_shown_to_its_maker_and_delivered(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    ask(world, alice, bob)
    form = open_answer_form(world, asked_dm(world, bob), bob)
    ack = answer(world, form, bob, secret=None, generate=True)
    assert ack["response_action"] == "update"
    shown = world.updated_views("V0SUBMIT")[-1]
    password = [e["elements"][0]["text"] for b in shown["blocks"] if b["type"] == "rich_text"
                for e in b["elements"]][0]
    _, revealed = reveal_in_slack(world, world.dms(alice)[0], alice)
    assert revealed_value(revealed) == password


# -- answered once --------------------------------------------------------------------


def test_a_request_is_answered_once(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    ask(world, alice, bob)
    dm = asked_dm(world, bob)
    first = open_answer_form(world, dm, bob)
    second = open_answer_form(world, dm, bob)  # another device, before the first was sent
    assert answer(world, first, bob, secret="first") is None
    world.dms(alice)
    updates_of(world, bob)  # the answer is recorded (then Bob's DM rewritten) after Alice's DM
    # The second form, and a replay of the first, make nothing.
    for form in (second, first):
        refused = answer(world, form, bob, secret="second")
        assert refused["response_action"] == "update"
        assert "already answered" in json.dumps(refused["view"])
        assert "Nothing was sent" in json.dumps(refused["view"])
    # Answer pressed again: told so, no form.
    text, trigger = click_told(world, dm, ids.ANSWER_ACTION, bob)
    assert "You already answered this request" in text
    assert no_views_opened_with(world, trigger)
    # Each refusal was decided before its ack: nothing more can arrive.
    assert len(world.dms(alice)) == 1
    _, revealed = reveal_in_slack(world, world.dms(alice)[0], alice)
    assert revealed_value(revealed) == "first"


def test_the_first_of_several_answers_and_the_others_are_told(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    confirmation = ask(world, alice, bob, carol)
    assert f"<@{bob}> and <@{carol}>" in confirmation["text"]
    bob_dm, carol_dm = asked_dm(world, bob), asked_dm(world, carol)
    assert f"<@{carol}>" in json.dumps(bob_dm)  # told who else was asked
    bob_form = open_answer_form(world, bob_dm, bob)
    answer(world, open_answer_form(world, carol_dm, carol), carol, secret="from carol")
    assert f"answered by <@{carol}>" in updates_of(world, bob)[0]["text"]
    assert "You answered" in updates_of(world, carol)[0]["text"]
    refused = answer(world, bob_form, bob, secret="from bob")
    assert f"already answered by <@{carol}>" in json.dumps(refused["view"])
    _, revealed = reveal_in_slack(world, world.dms(alice)[0], alice)
    assert revealed_value(revealed) == "from carol"


# -- declined, cancelled, expired -----------------------------------------------------


def test_declined(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    ask(world, alice, bob, what_for="vpn key")
    dm = asked_dm(world, bob)
    world.click(dm, ids.DECLINE_ACTION, user=bob, channel=f"D{bob}")
    rewritten = updates_of(world, bob)[0]
    assert f"You declined <@{alice}>'s request" in rewritten["text"]
    assert buttons(rewritten) == []
    note = world.dms(alice)[0]["text"]
    assert f"<@{bob}> declined your request" in note and "request is closed" in note
    text, trigger = click_told(world, dm, ids.ANSWER_ACTION, bob)
    assert "declined" in text
    assert no_views_opened_with(world, trigger)


def test_one_of_two_declining_leaves_the_request_open(world: SlackWorld) -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    ask(world, alice, bob, carol)
    bob_dm = asked_dm(world, bob)
    world.click(bob_dm, ids.DECLINE_ACTION, user=bob, channel=f"D{bob}")
    assert "request is closed" not in world.dms(alice)[0]["text"]
    text, trigger = click_told(world, bob_dm, ids.ANSWER_ACTION, bob)
    assert "You declined this request" in text and no_views_opened_with(world, trigger)
    answer(world, open_answer_form(world, asked_dm(world, carol), carol), carol, secret="c")
    _, revealed = reveal_in_slack(world, world.dms(alice, 2)[1], alice)
    assert revealed_value(revealed) == "c"


def test_cancelled(world: SlackWorld) -> None:
    alice, bob, mallory = new_user(), new_user(), new_user()
    confirmation = ask(world, alice, bob)
    dm = asked_dm(world, bob)
    form = open_answer_form(world, dm, bob)
    # Only the requester may cancel.
    text, _ = click_told(world, confirmation, ids.CANCEL_REQUEST_ACTION, mallory, "C0GENERAL")
    assert "Only the person who made this request can cancel it" in text
    _, response_url, _ = world.click(confirmation, ids.CANCEL_REQUEST_ACTION, user=alice,
                                     channel="C0GENERAL")
    replaced = world.replies(response_url)[0]
    assert replaced["replace_original"] is True
    assert "You cancelled your request" in replaced["text"]
    assert buttons(replaced) == []
    rewritten = updates_of(world, bob)[0]
    assert "cancelled their request" in rewritten["text"] and buttons(rewritten) == []
    # A form opened before the cancel sends nothing after it.
    refused = answer(world, form, bob, secret="too late")
    assert "cancelled this request" in json.dumps(refused["view"])
    text, trigger = click_told(world, dm, ids.ANSWER_ACTION, bob)
    assert "cancelled this request" in text
    assert no_views_opened_with(world, trigger)
    assert not [c for c in world.fake.calls_to("chat.postMessage")
                if c.body.get("channel") == f"D{alice}"]


# -- only the people asked -------------------------------------------------------------


def test_only_the_people_asked_may_answer(world: SlackWorld) -> None:
    alice, bob, mallory = new_user(), new_user(), new_user()
    ask(world, alice, bob)
    dm = asked_dm(world, bob)
    # Bob's DM forwarded to Mallory: the button names Bob.
    text, trigger = click_told(world, dm, ids.ANSWER_ACTION, mallory)
    assert f"This request was sent to <@{bob}>: only they can answer it" in text
    assert no_views_opened_with(world, trigger)
    # A form made for Bob, submitted by Mallory, sends nothing.
    form = open_answer_form(world, dm, bob)
    refused = answer(world, form, mallory, secret="mallory's")
    assert "damaged" in json.dumps(refused["view"])
    # A button value the app did not sign is refused too.
    forged = json.loads(json.dumps(dm))
    button, _ = find_element(forged, ids.ANSWER_ACTION)
    value = signed_value(button["value"])
    button["value"] = "0" * 32 + "." + json.dumps({**value, "to": mallory})
    text, trigger = click_told(world, forged, ids.ANSWER_ACTION, mallory)
    assert "only they can answer it" in text and no_views_opened_with(world, trigger)
    # Bob still can.
    answer(world, form, bob, secret="bob's")
    _, revealed = reveal_in_slack(world, world.dms(alice)[0], alice)
    assert revealed_value(revealed) == "bob's"


@pytest.mark.parametrize(("text", "problem"), [
    ("request <@{me}> for me", "you cannot answer your own request"),
    ("request " + " ".join(f"<@U0P{i:04d}>" for i in range(11)) + " x", "at most 10 people"),
    ("request <@{other}> " + "x" * 301, "keep it under 300"),
])
def test_bad_requests_are_explained(world: SlackWorld, text: str, problem: str) -> None:
    me, other = new_user(), new_user()
    _, response_url, _ = world.command(text.format(me=me, other=other), user=me)
    assert problem in world.replies(response_url)[0]["text"]
    assert not [c for c in world.fake.calls_to("chat.postMessage")
                if c.body.get("channel") == f"D{other}"]


def test_someone_who_cannot_be_messaged_is_named_and_not_asked(world: SlackWorld) -> None:
    alice, bot, bob = new_user(), new_user(), new_user()
    world.fake.add_user(bot, is_bot=True)
    confirmation = ask(world, alice, bot, bob)
    assert f"Asked <@{bob}>" in confirmation["text"]
    assert f"Could not ask <@{bot}>: they are a bot" in confirmation["text"]
    world.click(asked_dm(world, bob), ids.DECLINE_ACTION, user=bob, channel=f"D{bob}")
    # Bob was the only one reached: his no closes the request.
    assert "request is closed" in world.dms(alice)[0]["text"]


# -- the global shortcut's form -----------------------------------------------------------


def click_in_view(world: SlackWorld, view: dict[str, Any], view_id: str, action_id: str,
                  user: str) -> None:
    button, block_id = find_element(view, action_id)
    payload = {
        "type": "block_actions", "team": {"id": TEAM_ID, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0OTS", "token": "legacy", "trigger_id": world.fake.new_trigger(),
        "container": {"type": "view", "view_id": view_id},
        "view": {**view, "id": view_id, "hash": "h", "state": {"values": {}}},
        "actions": [{"action_id": action_id, "block_id": block_id, "type": "button",
                     "value": button.get("value", ""), "action_ts": "1700000000.4",
                     "text": button["text"]}],
    }
    assert world.interact(payload).status_code == 200


def request_values(people: tuple[str, ...] = (), outside: bool = False,
                   what_for: str = "") -> dict[str, dict[str, Any]]:
    return {
        ids.REQUEST_PEOPLE_BLOCK: {ids.REQUEST_PEOPLE_INPUT: {
            "type": "multi_users_select", "selected_users": list(people)}},
        ids.REQUEST_OUTSIDE_BLOCK: {ids.REQUEST_OUTSIDE_INPUT: {
            "type": "checkboxes",
            "selected_options": [{"value": "outside"}] if outside else []}},
        ids.REQUEST_FOR_BLOCK: {ids.REQUEST_FOR_INPUT: {
            "type": "plain_text_input", "value": what_for}},
    }


def test_the_shortcut_form_offers_request_a_secret(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    _, trigger = world.global_shortcut(user=alice)
    share_form = world.opened_view(trigger)
    view_id = eventually(lambda: world.fake.view_ids.get(trigger), what="the form's id")
    click_in_view(world, share_form, view_id, ids.SWITCH_TO_REQUEST_ACTION, alice)
    form = world.updated_views(view_id)[0]
    assert form["callback_id"] == ids.REQUEST_VIEW
    both = world.submit(form, request_values((bob,), outside=True), user=alice, view_id=view_id)
    assert both.json()["response_action"] == "errors"
    assert world.submit(form, request_values((bob,), what_for="wifi"), user=alice,
                        view_id=view_id).text == ""
    dm = asked_dm(world, bob)
    assert "wifi" in json.dumps(dm)
    # A global shortcut has no channel: the confirmation comes by DM, with Cancel.
    confirmation = world.dms(alice)[0]
    assert ids.CANCEL_REQUEST_ACTION in buttons(confirmation)
    answer(world, open_answer_form(world, dm, bob), bob, secret="wifi-pass")
    _, revealed = reveal_in_slack(world, world.dms(alice, 2)[1], alice)
    assert revealed_value(revealed) == "wifi-pass"


def test_the_form_gives_a_request_link_for_someone_outside_slack(world: SlackWorld) -> None:
    alice = new_user()
    _, trigger = world.global_shortcut(user=alice)
    share_form = world.opened_view(trigger)
    view_id = eventually(lambda: world.fake.view_ids.get(trigger), what="the form's id")
    click_in_view(world, share_form, view_id, ids.SWITCH_TO_REQUEST_ACTION, alice)
    form = world.updated_views(view_id)[0]
    nobody = world.submit(form, request_values(), user=alice, view_id=view_id)
    assert "Someone outside Slack" in json.dumps(nobody.json()["errors"])
    world.submit(form, request_values(outside=True, what_for="vendor key"), user=alice,
                 view_id=view_id)
    reply = world.dms(alice)[0]
    assert "http://ots.test/request/" in json.dumps(reply) and "vendor key" in json.dumps(reply)


# -- expiry -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_world(world: SlackWorld, tmp_path_factory: pytest.TempPathFactory,
                redis_srv: RedisServer) -> Iterator[SlackWorld]:
    """Requests that live 2 seconds (the setting's floor is a minute)."""
    with slack_world(world.kind, tmp_path_factory.mktemp("short"), redis_srv.url,
                     change=lambda s: dataclasses.replace(s, request_ttl=2)) as short:
        yield short


def test_expired(short_world: SlackWorld) -> None:
    world = short_world
    alice, bob, carol, a_bot = new_user(), new_user(), new_user(), new_user()
    world.fake.add_user(a_bot, is_bot=True)
    assert "Could not ask" in ask(world, carol, a_bot)["text"]  # reached nobody: dropped
    ask(world, alice, bob, what_for="old key")
    dm = asked_dm(world, bob)
    # The sweep takes the buttons off and tells the requester.
    rewritten = updates_of(world, bob)[0]
    assert "request expired" in rewritten["text"] and buttons(rewritten) == []
    assert "Your request for a secret expired" in world.dms(alice)[0]["text"]
    text, trigger = click_told(world, dm, ids.ANSWER_ACTION, bob)
    assert "This request expired" in text
    assert no_views_opened_with(world, trigger)
    # Carol's request expired earlier in the same sweep: it was never open, so no news.
    assert not [c for c in world.fake.calls_to("chat.postMessage")
                if c.body.get("channel") == f"D{carol}"]
