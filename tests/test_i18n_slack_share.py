"""Sharing from Slack in each reader's language (issue 15, Slack side, "sharing").

End to end against the fake Slack and the served app: `/ots text`, `/ots help`,
`/ots @a @b text`, `/ots gen`, the message shortcut's notes, every refusal and
failure of sharing, and Burn now, first in the pseudo-locale (every word the app
writes must come through the catalogue), then in te reo Māori, where a DM is in
its recipient's language and the answer in its sender's. The Onetime Secret
backend is used because its failures can be scripted (the fake answers 502).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    NotAuthorized,
    OutcomeUnknown,
    RateLimited,
    SecretNotFound,
    StoreFull,
)
from bot.slack import blocks, ids, modals
from bot.slack.lang import speaking
from tests.support import pseudo
from tests.support.block_kit import validate_recorded
from tests.support.fake_slack import check_blocks
from tests.support.slack_world import SlackWorld, link_in, new_user, slack_world

QPS = pseudo.PSEUDO
STORE_DOWN = b"<html>502 Bad Gateway</html>"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    pseudo.install()
    with slack_world("onetimesecret", tmp_path_factory.mktemp("i18n-share"), None) as world:
        yield world
        validate_recorded(world.fake)  # Block Kit's limits hold in every language


def person(world: SlackWorld, locale: str, **extra: Any) -> str:
    user = new_user()
    world.fake.add_user(user, locale=locale, **extra)
    return user


def clean(payload: Any) -> Any:
    """A payload whose every word came through the catalogue; returns it."""
    assert pseudo.slack_leftovers(payload) == [], json.dumps(payload, ensure_ascii=False)
    return payload


def answer(world: SlackWorld, text: str, user: str) -> dict[str, Any]:
    _ack, response_url, _trigger = world.command(text, user=user)
    return dict(world.replies(response_url)[0])


def burn(world: SlackWorld, message: dict[str, Any], user: str) -> dict[str, Any]:
    _ack, burn_url, _trigger = world.click(message, ids.BURN_ACTION, user=user,
                                           channel="C0GENERAL")
    return dict(world.replies(burn_url)[0])


# -- 1: the pseudo-locale: nothing bypasses the catalogue ---------------------------------


def test_a_link_its_burn_and_the_help_go_through_the_catalogue(world: SlackWorld) -> None:
    alice = person(world, QPS)
    reply = clean(answer(world, "⟦s3cret⟧", alice))
    assert reply["text"].startswith("⟦Your one-time link is ready.")
    assert "/secret/" in json.dumps(reply["blocks"])
    assert "⟦Burn now⟧" in json.dumps(reply["blocks"], ensure_ascii=False)
    assert clean(burn(world, reply, alice))["text"].startswith(":fire: ⟦Burned: nobody")
    again = clean(burn(world, reply, alice))
    assert again["text"].startswith(":information_source: ⟦It was already opened")
    help_text = clean(answer(world, "help", alice))["text"]
    assert help_text.count("⟦") >= 10 and "/ots" in help_text


def test_sharing_with_people_speaks_to_each_in_the_pseudo_locale(world: SlackWorld) -> None:
    alice, bob, carol = (person(world, QPS) for _i in range(3))
    reply = clean(answer(world, f"<@{bob}> <@{carol}> ⟦for you two⟧", alice))
    assert f"<@{bob}> and <@{carol}>" in reply["text"]
    for user in (bob, carol):
        dm = clean(world.dms(user)[0])
        assert dm["text"].startswith(f"⟦<@{alice}> sent you a one-time secret")
        assert link_in(dm)
    outcome = clean(burn(world, reply, alice))
    assert outcome["text"].startswith(":fire: ⟦Burned for ⟦")
    assert "2 of them were already opened" in clean(burn(world, reply, alice))["text"]


def test_a_generated_password_is_answered_through_the_catalogue(world: SlackWorld) -> None:
    alice = person(world, QPS)
    _ack, response_url, trigger = world.command("gen", user=alice)
    waiting = world.opened_view(trigger)  # the window is i-forms's: only our words here
    assert waiting["title"]["text"] == "⟦New password⟧"
    assert "⟦Generating a strong password…⟧" in json.dumps(waiting, ensure_ascii=False)
    clean(world.replies(response_url)[0])
    shown = world.updated_views(world.fake.view_ids[trigger])[0]
    summaries = [t for t in pseudo.slack_texts(shown) if "one-time link expires in" in t]
    assert summaries and clean(summaries) == ["⟦Its one-time link expires in ⟦7 days⟧.⟧"]


def test_the_message_shortcuts_notes_go_through_the_catalogue(world: SlackWorld) -> None:
    alice = person(world, QPS)
    cases = [("⟦mine⟧", alice, 1), ("⟦theirs⟧", "U0BOB", 1), ("⟦an app's⟧", "", 1),
             (None, alice, 2), ("x" * (modals.MODAL_TEXT_LIMIT + 1), alice, 2)]
    notes: list[str] = []
    for text, author, count in cases:
        _ack, _url, trigger = world.message_shortcut(text, user=alice, author=author)
        view = world.opened_view(trigger)
        found = view["blocks"][:count]
        assert all(b["type"] == "context" for b in found)
        clean(found)
        notes += [b["elements"][0]["text"] for b in found]
    assert "⟦This is <@U0BOB>'s message" in notes[1]
    assert "⟦This is an app's message" in notes[2]
    assert "⟦That message has no text to copy" in notes[4]
    assert "⟦That message is longer than the 3,000 characters" in notes[6]


def test_every_refusal_and_failure_of_sharing_goes_through_the_catalogue(
    world: SlackWorld,
) -> None:
    assert world.fake_ots is not None
    alice, bob = person(world, QPS), person(world, QPS)
    robot = person(world, QPS, is_bot=True)
    said = [
        answer(world, f"<@{bob}> <@{alice}> ⟦to me⟧", alice),  # picked themself
        answer(world, f"gen <@{alice}>", alice),
        answer(world, " ".join(f"<@{new_user()}>" for _i in range(11)) + " ⟦x⟧", alice),
        answer(world, f"<@{robot}> ⟦to a bot⟧", alice),  # Slack will not DM a bot
    ]
    assert "⟦You picked yourself" in said[0]["text"] and "⟦You named 11 people" in said[2]["text"]
    assert said[3]["text"].startswith(
        f":warning: ⟦Nothing was shared with <@{robot}>: they are a bot")
    world.fake.fail("conversations.open", "weird_error", match={"users": bob})
    said.append(answer(world, f"<@{bob}> ⟦Slack says no⟧", alice))
    assert "(weird_error)" in said[-1]["text"]
    world.fake_ots.fail_next("/share", 502, body=STORE_DOWN, content_type="text/html")
    said.append(answer(world, "⟦not stored⟧", alice))
    assert said[-1]["text"].startswith(":warning: ⟦Your secret was not saved. ⟦")
    world.fake_ots.fail_next("/share", 502, body=STORE_DOWN, content_type="text/html")
    said.append(answer(world, f"<@{bob}> ⟦not stored⟧", alice))
    world.fake_ots.fail_next("/share", 400, message="Our words, quoted")
    said.append(answer(world, "gen", alice))
    for message in said:
        clean(message)
    quoted = [t for t in pseudo.slack_texts(said[-1]) if "Our words" in t]
    assert quoted == ["⟦It said: “Our words, quoted”⟧"]  # the service's words, quoted


def test_builders_not_reached_above_go_through_the_catalogue() -> None:
    """Variants the flows above do not reach: a burn whose store failed or did not
    answer, a Reveal that found the secret gone, a DM from outside Slack, every kind
    of store failure."""
    with speaking(QPS):
        messages = [
            blocks.burn_outcome_message(burned=1, gone=1, failed=1, unknown=1),
            blocks.burn_outcome_message(burned=0, gone=0, failed=1),
            blocks.burn_outcome_message(burned=0, gone=0, failed=0, unknown=2),
            blocks.not_revealed_dm_message(sender="U1", destroyed=True),
            blocks.not_revealed_dm_message(sender="U1", destroyed=False),
            blocks.recipient_message(sender="outside", link="https://x/secret/k", expires_at=1,
                                     passphrase=True, reveal_value="v", about="⟦db⟧"),
            blocks.recipient_message(sender="someone using the API", link="https://x/secret/k",
                                     expires_at=1, passphrase=False, reveal_value="v"),
            blocks.usage_message(),
        ]
        problems = [blocks.store_problem(kind("Detail in English."))
                    for kind in (OutcomeUnknown, StoreFull, BackendUnavailable, SecretNotFound,
                                 NotAuthorized, RateLimited, InvalidRequest, BackendError)]
    for message in messages:
        clean(message)
        assert check_blocks(message["blocks"]) is None
    assert clean(problems) == problems and len(set(problems)) == len(problems)
    assert messages[5]["text"] == "⟦⟦someone outside Slack⟧ sent you a one-time secret⟧"


# -- 2: te reo Māori, each reader in their own language -------------------------------


def test_a_maori_sender_hears_in_maori_and_an_english_recipient_reads_english(
    world: SlackWorld,
) -> None:
    alice, bob = person(world, "mi-NZ"), person(world, "en-US")
    reply = answer(world, f"<@{bob}> mō Pita anake", alice)
    assert reply["text"].startswith(
        f":closed_lock_with_key: Kua tukuna he karere muna ki a <@{bob}>.")
    assert "hei karere tōtika" in reply["text"] and "sent" not in reply["text"].lower()
    context = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "Kotahi anake te wā e taea ai te huaki" in context and "Tahuna ināianei" in context
    dm = world.dms(bob)[0]
    assert dm["text"] == f"<@{alice}> sent you a one-time secret"
    assert "Reveal in Slack" in json.dumps(dm) and "karere" not in json.dumps(dm)
    outcome = burn(world, reply, alice)["text"]
    assert outcome == (f":fire: Kua tahuna mō <@{bob}>: e kore e taea e tētahi te huaki "
                       "ā muri ake.")


def test_an_english_sender_hears_english_and_a_maori_recipient_reads_maori(
    world: SlackWorld,
) -> None:
    alice, bob, carol = person(world, "en-US"), person(world, "mi-NZ"), person(world, "mi-NZ")
    reply = answer(world, f"<@{bob}> <@{carol}> for both of you", alice)
    assert reply["text"].startswith(
        f":closed_lock_with_key: Sent a one-time secret to <@{bob}> and <@{carol}>. Each got")
    for user in (bob, carol):
        dm = world.dms(user)[0]
        assert dm["text"] == f"Kua tukuna mai e <@{alice}> he karere muna ki a koe"
        body = json.dumps(dm, ensure_ascii=False)
        assert "Whakaaturia i Slack" in body and "Huakina ki te pūtirotiro" in body
        assert "Kotahi anake te wā e taea ai te kite" in body and "Reveal" not in body


def test_a_maori_speaker_gets_help_errors_and_the_gen_window_in_maori(
    world: SlackWorld,
) -> None:
    assert world.fake_ots is not None
    alice = person(world, "mi-NZ")
    help_text = answer(world, "help", alice)["text"]
    assert help_text.startswith("*Tohaina he karere muna, kia kotahi te kitenga.*")
    assert "• Mā te `/ots help` e whakaatu tēnei karere." in help_text
    refused = answer(world, f"<@{alice}> ki a au anō", alice)["text"]
    assert refused.startswith(":warning: Ko koe tonu tāu i kōwhiri")
    world.fake_ots.fail_next("/share", 502, body=STORE_DOWN, content_type="text/html")
    failed = answer(world, "kāore e tiakina", alice)["text"]
    assert failed == (":warning: Kāore tō karere muna i tiakina. Kāore te pātaka karere muna "
                      "e wātea ana i tēnei wā. Whakamātauria anō ākuanei.")
    _ack, _url, trigger = world.command("gen", user=alice)
    assert world.opened_view(trigger)["title"]["text"] == "Kupuhipa hou"
    shown = json.dumps(world.updated_views(world.fake.view_ids[trigger])[0], ensure_ascii=False)
    assert "Ka pau te wā o tōna hononga kotahi-te-tiro ā muri i te 7 rā." in shown


# -- 3: durations and lists of people, with their plurals ---------------------------------


@pytest.mark.parametrize(("seconds", "english", "maori"), [
    (1, "1 second", "1 hēkona"), (45, "45 seconds", "45 hēkona"),
    (60, "1 minute", "1 meneti"), (300, "5 minutes", "5 meneti"),
    (3600, "1 hour", "1 hāora"), (7200, "2 hours", "2 hāora"),
    (86400, "1 day", "1 rā"), (7 * 86400, "7 days", "7 rā"), (90000, "1 day", "1 rā"),
])
def test_durations_read_right_in_both_languages(seconds: int, english: str, maori: str) -> None:
    with speaking("en"):
        assert blocks.human_duration(seconds) == english
    with speaking("mi"):
        assert blocks.human_duration(seconds) == maori


@pytest.mark.parametrize(("users", "english", "maori"), [
    ((), "", ""),
    (("U1",), "<@U1>", "<@U1>"),
    (("U1", "U2"), "<@U1> and <@U2>", "<@U1> me <@U2>"),
    (("U1", "U2", "U3"), "<@U1>, <@U2> and <@U3>", "<@U1>, <@U2> me <@U3>"),
])
def test_lists_of_people_read_right_in_both_languages(
    users: tuple[str, ...], english: str, maori: str
) -> None:
    with speaking("en"):
        assert blocks.people(users) == english
    with speaking("mi"):
        assert blocks.people(users) == maori


def test_counts_and_plurals_in_both_languages() -> None:
    with speaking("en"):
        one = blocks.burn_outcome_message(burned=1, gone=1, failed=0)["text"]
        two = blocks.burn_outcome_message(burned=2, gone=0, failed=0, recipients=["U1", "U2"])
        assert "Burned 1 of them: nobody can open it any more." in one
        assert "1 of them was already opened" in one
        assert two["text"] == ":fire: Burned for <@U1> and <@U2>: nobody can open them any more."
    with speaking("mi"):
        one = blocks.burn_outcome_message(burned=1, gone=2, failed=0)["text"]
        assert "Kua tahuna te 1 o aua karere muna" in one
        assert "Ko ngā 2 o aua karere muna, kua huakina kētia" in one
        assert blocks.slack_date(1700000000).startswith(
            "<!date^1700000000^{date_short_pretty}, {time}|2023-11-14 22:13 UTC>")
