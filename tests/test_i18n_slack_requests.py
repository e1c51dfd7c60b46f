"""Requests for a secret in each reader's language, end to end against the fake Slack.

In the pseudo-locale (`qps`, every catalogue text wrapped in ⟦ ⟧) no word of a
request's messages, modals, notices and errors may bypass the catalogue. In
te reo Māori (`mi-NZ`), each message is in its READER's language: the DM to a
person asked in theirs, the requester's notices in the requester's, and a DM
rewritten when the request ends (answered, declined, cancelled, expired by the
sweep) in the language of whoever's DM it is.

Parts of these payloads belong to other modules and are converted there: the
secret inputs of the answer form and a notice modal's Close (modals.py). The
checks below leave exactly those parts out (`mine`), and check everything else,
the DM that delivers an answer (blocks.recipient_message) included.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from bot.errors import StoreFull
from bot.slack import blocks, ids
from bot.slack.lang import speaking
from tests.support import pseudo
from tests.support.fake_slack import check_blocks
from tests.support.servers import RedisServer
from tests.support.slack_world import (
    SlackWorld,
    eventually,
    find_element,
    new_user,
    share_values,
    slack_world,
)
from tests.test_slack_requests import (
    buttons,
    click_in_view,
    click_told,
    request_values,
    updates_of,
)

QPS = pseudo.PSEUDO
# A "what for" without Latin letters: it is the requester's value, not the app's words.
WHAT_FOR = "ключ № 42"
REQUEST_LINK = re.compile(r"http://ots\.test(/request/[A-Za-z0-9_-]{32})")
# Blocks of the answer form that modals.secret_inputs builds (converted in modals.py).
SECRET_INPUT_BLOCKS = {
    ids.SECRET_BLOCK, ids.GENERATE_BLOCK, ids.LABEL_BLOCK, ids.PASSPHRASE_BLOCK, ids.TTL_BLOCK,
}


@pytest.fixture(scope="module", autouse=True)
def _pseudo_locale() -> None:
    pseudo.install()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    with slack_world("sqlite", tmp_path_factory.mktemp("i18n-requests"), None) as world:
        yield world


@pytest.fixture(scope="module")
def short_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    """Requests that live 2 seconds: the expiry sweep (every second) closes them."""
    with slack_world("sqlite", tmp_path_factory.mktemp("i18n-requests-short"), None,
                     change=lambda s: dataclasses.replace(s, request_ttl=2)) as world:
        yield world


def person(world: SlackWorld, locale: str) -> str:
    user = new_user()
    world.fake.add_user(user, locale=locale)
    return user


def mine(view: dict[str, Any]) -> dict[str, Any]:
    """A view without the parts other modules build (see the module's docstring)."""
    kept = {k: v for k, v in view.items() if k != "close" or v["text"] != "Close"}
    kept["blocks"] = [b for b in view.get("blocks", [])
                      if b.get("block_id") not in SECRET_INPUT_BLOCKS]
    return kept


def shown(payload: Any) -> str:
    """Every string in a payload, as written (⟦, macrons)."""
    return json.dumps(payload, ensure_ascii=False)


def leftovers(*payloads: dict[str, Any]) -> list[str]:
    return [text for payload in payloads for text in pseudo.slack_leftovers(payload)]


def said(text: str) -> list[str]:
    """Leftovers of a bare string (a form error, an ack's text)."""
    return pseudo.slack_leftovers({"text": text})


def ask(world: SlackWorld, requester: str, *people: str, what_for: str = WHAT_FOR
        ) -> dict[str, Any]:
    """`/ots request @people what for`: the requester's private answer."""
    mentions = " ".join(f"<@{p}|{p.lower()}>" for p in people)
    ack, response_url, _trigger = world.command(
        f"request {mentions} {what_for}".strip(), user=requester)
    assert ack.status_code == 200 and ack.text == "", ack.text
    return world.replies(response_url)[0]


def asked_dm(world: SlackWorld, user: str) -> dict[str, Any]:
    return world.dms(user)[0]


def open_answer_form(world: SlackWorld, dm: dict[str, Any], user: str) -> dict[str, Any]:
    ack, _url, trigger = world.click(dm, ids.ANSWER_ACTION, user=user, channel=f"D{user}")
    assert ack.status_code == 200
    return world.opened_view(trigger)


def answer(world: SlackWorld, form: dict[str, Any], user: str, secret: str) -> Any:
    values = share_values(secret=secret)
    del values[ids.RECIPIENTS_BLOCK]
    response = world.submit(form, values, user=user)
    assert response.status_code == 200
    return response.json() if response.text else None


def dms_to(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return [c.body for c in world.fake.calls_to("chat.postMessage")
            if c.body.get("channel") == f"D{user}"]


def request_form(world: SlackWorld, user: str) -> tuple[dict[str, Any], str]:
    """The share form (global shortcut) switched to "Request a secret": (view, its id)."""
    _ack, trigger = world.global_shortcut(user=user)
    share_form = world.opened_view(trigger)
    view_id = eventually(lambda: world.fake.view_ids.get(trigger), what="the form's id")
    click_in_view(world, share_form, view_id, ids.SWITCH_TO_REQUEST_ACTION, user)
    return world.updated_views(view_id)[0], view_id


def link_path(payload: dict[str, Any]) -> str:
    match = REQUEST_LINK.search(shown(payload))
    assert match, payload
    return match.group(1)


def post_answer(world: SlackWorld, path: str, secret: str) -> httpx.Response:
    return httpx.post(world.served.url + path, data={"secret": secret}, timeout=20)


def assert_within_block_kit(*views: dict[str, Any]) -> None:
    for view in views:
        for key in ("title", "submit", "close"):
            if key in view:
                assert len(view[key]["text"]) <= 24, view[key]
        assert check_blocks(view.get("blocks", []), modal=True) is None


# -- the pseudo-locale: nothing bypasses the catalogue -------------------------------------


def test_ask_answer_and_the_rewritten_dm_say_every_word_through_the_catalogue(
    world: SlackWorld,
) -> None:
    alice, bob, carol, mallory = (person(world, QPS) for _n in range(4))
    confirmation = ask(world, alice, bob, carol)
    assert leftovers(confirmation) == [], confirmation
    assert f"<@{bob}>" in confirmation["text"] and WHAT_FOR in confirmation["text"]
    bob_dm, carol_dm = asked_dm(world, bob), asked_dm(world, carol)
    assert leftovers(bob_dm) == [] and leftovers(carol_dm) == [], bob_dm
    assert "⟦Answer⟧" in shown(bob_dm) and WHAT_FOR in shown(bob_dm)

    # Someone else pressing Bob's Answer is told, in their language.
    text, _trigger = click_told(world, bob_dm, ids.ANSWER_ACTION, mallory)
    assert said(text) == [] and "⟦This request was sent to" in text

    carol_form = open_answer_form(world, carol_dm, carol)
    form = open_answer_form(world, bob_dm, bob)
    assert form["callback_id"] == ids.ANSWER_VIEW
    assert leftovers(mine(form)) == [], form
    assert WHAT_FOR in shown(form["blocks"])
    assert answer(world, form, bob, "s3cret") is None
    delivered = world.dms(alice)[0]
    assert leftovers(delivered) == [] and WHAT_FOR in shown(delivered), delivered
    rewritten = updates_of(world, bob)[0]
    assert leftovers(rewritten) == [] and buttons(rewritten) == [], rewritten
    other = updates_of(world, carol)[0]
    assert leftovers(other) == [] and f"<@{bob}>" in other["text"], other

    # Carol's form, opened before Bob answered, sends nothing and says so.
    refused = answer(world, carol_form, carol, "too late")
    assert refused["response_action"] == "update"
    assert leftovers(mine(refused["view"])) == [], refused
    # Bob pressing Answer again.
    text, _trigger = click_told(world, bob_dm, ids.ANSWER_ACTION, bob)
    assert said(text) == [] and "⟦You already answered this request.⟧" in text


def test_decline_and_cancel_say_every_word_through_the_catalogue(world: SlackWorld) -> None:
    alice, bob, carol, mallory = (person(world, QPS) for _n in range(4))
    ask(world, alice, bob)
    dm = asked_dm(world, bob)
    world.click(dm, ids.DECLINE_ACTION, user=bob, channel=f"D{bob}")
    rewritten = updates_of(world, bob)[0]
    assert leftovers(rewritten) == [] and buttons(rewritten) == [], rewritten
    note = world.dms(alice)[0]
    assert leftovers(note) == [] and "⟦Everyone you asked declined" in note["text"], note
    text, _trigger = click_told(world, dm, ids.ANSWER_ACTION, bob)
    assert said(text) == [], text

    confirmation = ask(world, alice, carol, what_for="")
    carol_dm = asked_dm(world, carol)
    text, _trigger = click_told(world, confirmation, ids.CANCEL_REQUEST_ACTION, mallory,
                                "C0GENERAL")
    assert said(text) == [] and "⟦Only the person who made this request" in text
    _ack, response_url, _trigger = world.click(
        confirmation, ids.CANCEL_REQUEST_ACTION, user=alice, channel="C0GENERAL")
    replaced = world.replies(response_url)[0]
    assert leftovers(replaced) == [] and "⟦You cancelled your request.⟧" in replaced["text"]
    cancelled = updates_of(world, carol)[0]
    assert leftovers(cancelled) == [] and buttons(cancelled) == [], cancelled
    # Cancel pressed again: nothing to cancel, said in the requester's own words.
    _ack, response_url, _trigger = world.click(
        confirmation, ids.CANCEL_REQUEST_ACTION, user=alice, channel="C0GENERAL")
    again = world.replies(response_url)[0]
    assert leftovers(again) == [] and "⟦You already cancelled this request.⟧" in again["text"]
    text, _trigger = click_told(world, carol_dm, ids.ANSWER_ACTION, carol)
    assert said(text) == [] and "cancelled this request" in text


def test_bad_requests_are_explained_through_the_catalogue(world: SlackWorld) -> None:
    me, other = person(world, QPS), person(world, QPS)
    for text in (f"request <@{me}> for me",
                 "request " + " ".join(f"<@U0P{i:04d}>" for i in range(11)) + " x",
                 f"request <@{other}> " + "ж" * 301):
        _ack, response_url, _trigger = world.command(text, user=me)
        reply = world.replies(response_url)[0]
        assert leftovers(reply) == [] and "⟦" in reply["text"], reply


def test_the_request_form_and_its_errors_say_every_word_through_the_catalogue(
    world: SlackWorld,
) -> None:
    alice, bob = person(world, QPS), person(world, QPS)
    form, view_id = request_form(world, alice)
    assert form["callback_id"] == ids.REQUEST_VIEW
    assert leftovers(form) == [], form
    for values in (request_values((bob,), outside=True), request_values(),
                   request_values((alice,)),
                   request_values((bob,), what_for="ж" * 301)):
        errors = world.submit(form, values, user=alice, view_id=view_id).json()["errors"]
        assert errors and all(said(e) == [] for e in errors.values()), errors
    # A too long "what for" is the what-for field's fault, in any language.
    errors = world.submit(form, request_values((bob,), what_for="ж" * 301), user=alice,
                          view_id=view_id).json()["errors"]
    assert list(errors) == [ids.REQUEST_FOR_BLOCK]
    world.submit(form, request_values(outside=True, what_for=WHAT_FOR), user=alice,
                 view_id=view_id)
    link_message = world.dms(alice)[0]
    assert leftovers(link_message) == [], link_message
    assert WHAT_FOR in shown(link_message) and "⟦Cancel request⟧" in shown(
        link_message)


def test_the_request_link_and_its_answer_speak_the_requesters_language(
    world: SlackWorld,
) -> None:
    alice = person(world, QPS)
    _ack, response_url, _trigger = world.command("request", user=alice)
    reply = world.replies(response_url)[0]
    assert leftovers(reply) == [], reply
    # Answered on the web (no Slack request: nothing set the language but the app).
    assert post_answer(world, link_path(reply), "from a vendor").status_code == 200
    delivered = world.dms(alice)[0]
    assert leftovers(delivered) == [], delivered
    assert "⟦your request link⟧" in shown(delivered), delivered


def test_expiry_rewrites_and_notices_say_every_word_through_the_catalogue(
    short_world: SlackWorld,
) -> None:
    world = short_world
    alice, bob = person(world, QPS), person(world, QPS)
    ask(world, alice, bob)
    _ack, response_url, _trigger = world.command("request", user=alice)
    world.replies(response_url)
    rewritten = updates_of(world, bob)[0]
    assert leftovers(rewritten) == [] and buttons(rewritten) == [], rewritten
    notes = eventually(lambda: (lambda d: d if len(d) >= 2 else None)(dms_to(world, alice)),
                       what="both expiry notes")
    assert all(leftovers(n) == [] for n in notes), notes
    assert {"⟦Nobody answered it.⟧" in n["text"] for n in notes} == {True, False}
    assert any("⟦Nobody used its link.⟧" in n["text"] for n in notes)
    text, _trigger = click_told(world, asked_dm(world, bob), ids.ANSWER_ACTION, bob)
    assert said(text) == [] and "⟦This request expired.⟧" in text


# -- te reo Māori: each message in its reader's language -----------------------------------


def test_a_maori_requester_asks_an_english_speaker(world: SlackWorld) -> None:
    alice, bob = person(world, "mi-NZ"), person(world, "en-US")
    confirmation = ask(world, alice, bob, what_for="te kupuhipa wifi")
    assert f"Kua tonoa he karere muna i a <@{bob}>: *te kupuhipa wifi*." in confirmation["text"]
    assert "Whakakorehia te tono" in shown(confirmation)
    assert "Ka pau te wā o te tono" in shown(confirmation)
    dm = asked_dm(world, bob)
    assert dm["text"] == f"<@{alice}> asks you for a secret"
    assert "The request expires" in shown(dm) and "(in 1 day)" in shown(dm)
    assert [e["text"]["text"] for b in dm["blocks"] if b["type"] == "actions"
            for e in b["elements"]] == ["Answer", "Decline"]
    world.click(dm, ids.DECLINE_ACTION, user=bob, channel=f"D{bob}")
    assert updates_of(world, bob)[0]["text"] == (
        f":no_entry_sign: You declined <@{alice}>'s request.")
    note = world.dms(alice)[0]["text"]
    assert note == (f":no_entry_sign: I whakakāhoretia e <@{bob}> tō tono: *te kupuhipa wifi*. "
                    "I whakakāhore te katoa i tonoa e koe, nō reira kua kati te tono.")


def test_an_english_requester_asks_a_maori_speaker(world: SlackWorld) -> None:
    alice, bob, carol = person(world, "en-US"), person(world, "mi-NZ"), person(world, "mi-NZ")
    confirmation = ask(world, alice, bob, carol, what_for="vpn")
    assert confirmation["text"].startswith(f":key: Asked <@{bob}> and <@{carol}> for a secret")
    dm = asked_dm(world, bob)
    assert dm["text"] == f"Ko <@{alice}> e tono ana i tētahi karere muna i a koe"
    text = shown(dm)
    assert f"I tonoa anō a <@{carol}>" in text and "(ā te 1 rā)" in text
    assert [e["text"]["text"] for b in dm["blocks"] if b["type"] == "actions"
            for e in b["elements"]] == ["Whakautu", "Whakakāhore"]
    form = open_answer_form(world, dm, bob)
    assert form["title"]["text"] == "Whakautu i tētahi tono"
    assert "Hei aha: vpn" in shown(form)
    assert_within_block_kit(form)
    assert answer(world, form, bob, "from bob") is None
    assert updates_of(world, bob)[0]["text"] == (
        f":white_check_mark: Kua whakautua e koe te tono a <@{alice}>. Kua tae atu he karere "
        "muna ki a rātou; ka whakamōhiotia koe ina kitea e rātou.")
    assert updates_of(world, carol)[0]["text"] == (
        f":white_check_mark: Kua whakautua te tono a <@{alice}> e <@{bob}>. "
        "Kāore he mahi atu māu.")


def test_cancel_rewrites_each_dm_in_its_owners_language(world: SlackWorld) -> None:
    alice, bob, carol = person(world, "mi-NZ"), person(world, "en-US"), person(world, "mi-NZ")
    confirmation = ask(world, alice, bob, carol, what_for="")
    _ack, response_url, _trigger = world.click(
        confirmation, ids.CANCEL_REQUEST_ACTION, user=alice, channel="C0GENERAL")
    assert world.replies(response_url)[0]["text"] == (
        f":no_entry_sign: I whakakorea e koe tō tono. Kua kore e taea e <@{bob}> me <@{carol}> "
        "te whakautu.")
    assert updates_of(world, bob)[0]["text"] == (
        f":no_entry_sign: <@{alice}> cancelled their request.")
    assert updates_of(world, carol)[0]["text"] == (
        f":no_entry_sign: I whakakorea e <@{alice}> tana tono.")


def test_the_maori_request_form_holds_block_kit_limits(world: SlackWorld) -> None:
    alice = person(world, "mi-NZ")
    form, view_id = request_form(world, alice)
    assert form["title"]["text"] == "Tono karere muna"
    assert form["submit"]["text"] == "Tonoa"
    assert_within_block_kit(form)
    errors = world.submit(form, request_values(), user=alice, view_id=view_id).json()["errors"]
    assert errors == {ids.REQUEST_PEOPLE_BLOCK: (
        "Kōwhiria te tangata kei a ia te karere muna, tohua rānei te "
        "“He tangata i waho o Slack”.")}


def test_a_request_link_answered_on_the_web_reaches_a_maori_requester_in_maori(
    world: SlackWorld,
) -> None:
    alice = person(world, "mi-NZ")
    _ack, response_url, _trigger = world.command("request", user=alice)
    reply = world.replies(response_url)[0]
    assert reply["text"].startswith("Hononga tono (ka pau te wā ā te 1 rā): http://ots.test/")
    assert post_answer(world, link_path(reply), "from a vendor").status_code == 200
    assert "tō hononga tono" in shown(world.dms(alice)[0])


def test_the_sweep_rewrites_each_dm_in_its_owners_language(short_world: SlackWorld) -> None:
    world = short_world
    alice, bob, carol = person(world, "mi-NZ"), person(world, "en-US"), person(world, "mi-NZ")
    dan, erin = person(world, "en-US"), person(world, "mi-NZ")
    ask(world, alice, bob, carol, what_for="")
    ask(world, dan, erin, what_for="")
    assert updates_of(world, bob)[0]["text"] == f":hourglass: <@{alice}>'s request expired."
    assert updates_of(world, carol)[0]["text"] == (
        f":hourglass: Kua pau te wā o te tono a <@{alice}>.")
    assert updates_of(world, erin)[0]["text"] == (
        f":hourglass: Kua pau te wā o te tono a <@{dan}>.")
    assert world.dms(alice)[0]["text"] == (
        ":hourglass: Kua pau te wā o tō tono karere muna. Kāore tētahi i whakautu.")
    assert world.dms(dan)[0]["text"] == (
        ":hourglass: Your request for a secret expired. Nobody answered it.")
    # A late click is answered in the clicker's language.
    text, _trigger = click_told(world, asked_dm(world, carol), ids.ANSWER_ACTION, carol)
    assert "Kua pau te wā o tēnei tono." in text
    button, _block = find_element(asked_dm(world, bob), ids.ANSWER_ACTION)
    assert button["text"]["text"] == "Answer"


# -- a store that refuses the request: said in the requester's language ---------------------


def test_a_request_the_store_refuses_is_explained_in_the_requesters_language(
    tmp_path_factory: pytest.TempPathFactory, redis_srv: RedisServer,
) -> None:
    with slack_world("redis", tmp_path_factory.mktemp("i18n-requests-full"),
                     redis_srv.url) as world:
        maori, qps, bob = person(world, "mi-NZ"), person(world, QPS), person(world, "en-US")
        admin = redis.Redis.from_url(redis_srv.url)
        admin.config_set("maxmemory", 1)  # noeviction: every write is refused
        try:
            replies = {}
            for requester in (maori, qps):
                _ack, response_url, _trigger = world.command(
                    f"request <@{bob}|bob> the vpn key", user=requester)
                replies[requester] = world.replies(response_url)[0]
        finally:
            admin.config_set("maxmemory", 0)
            admin.close()
    with speaking("mi"):
        full = blocks.store_problem(StoreFull())
    assert replies[maori]["text"] == f":warning: Kāore i hangaia tō tono. {full}"
    assert full == "Kua kī te pātaka karere muna i tēnei wā. Whakamātauria anō ā muri ake."
    assert leftovers(replies[qps]) == [] and "⟦Your request was not made." in replies[qps]["text"]
    assert not dms_to(world, bob)  # nobody was asked
