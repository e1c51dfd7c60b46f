"""Issue 15 (Slack, forms): the share form, its errors, the generated password, Reveal in
Slack and Burn speak the language of the person acting, end to end over signed HTTP
against the served app and the fake Slack.

Two readers: `qps`, the pseudo-locale (every catalogue text wrapped in ⟦ ⟧, so any
English left is text that bypassed the catalogue), and `mi-NZ`, te reo Māori, whose
views must also hold Block Kit's limits (slack_sdk's models check every view and
message; the acks' views are checked here, as the fake Slack never sees them).
Nothing here depends on the backend, so one SQLite world serves the module.
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
    StoreFull,
)
from bot.slack import blocks, ids, modals, views
from bot.slack.delivery import SlackFailure
from bot.slack.lang import _, speaking
from tests.support import pseudo
from tests.support.block_kit import validate_recorded, validate_view
from tests.support.slack_world import (
    SlackWorld,
    new_user,
    passphrase_values,
    share_values,
    slack_world,
)
from tests.test_slack_recipients import revealed_value

ATTEMPTS = 3
MAX_BYTES = 2000
QPS, MAORI, ENGLISH = pseudo.PSEUDO, "mi-NZ", "en-US"
# What people type is not the app's words: no Latin letters in it.
SECRET, PASSPHRASE = "٣١٤١٥٩٢٦", "٢٧١٨٢٨"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    pseudo.install()
    with slack_world("sqlite", tmp_path_factory.mktemp("slack"), None,
                     MAX_SECRET_BYTES=str(MAX_BYTES),
                     PASSPHRASE_ATTEMPTS=str(ATTEMPTS)) as world:
        yield world
        validate_recorded(world.fake)


def person(world: SlackWorld, locale: str, **flags: Any) -> str:
    user = new_user()
    world.fake.add_user(user, locale=locale, **flags)
    return user


def leftovers(payload: Any) -> list[str]:
    return pseudo.slack_leftovers(payload)


def error_leftovers(errors: dict[str, str]) -> list[str]:
    """Inline errors are plain strings: read each as the plain text Slack shows."""
    return leftovers([{"type": "plain_text", "text": text} for text in errors.values()])


def shown(ack: Any) -> dict[str, Any]:
    """The view an ack puts in the modal (response_action update), validated."""
    answer = ack if isinstance(ack, dict) else ack.json()
    assert answer["response_action"] == "update", answer
    validate_view(answer["view"])
    return dict(answer["view"])


def open_share_modal(world: SlackWorld, user: str) -> tuple[dict[str, Any], str]:
    _ack, response_url, trigger = world.command("", user=user)
    view = world.opened_view(trigger)
    validate_view(view)
    return view, response_url


def share_to(world: SlackWorld, sender: str, *recipients: str,
             passphrase: str | None = PASSPHRASE) -> dict[str, Any]:
    view, response_url = open_share_modal(world, sender)
    ack = world.submit(view, share_values(secret=SECRET, passphrase=passphrase,
                                          recipients=recipients), user=sender)
    assert ack.text == "", ack.text
    return world.replies(response_url)[0]


def open_reveal(world: SlackWorld, recipient: str) -> dict[str, Any]:
    """The recipient presses Reveal in Slack in their (latest) DM: the modal it opens."""
    dm = world.dms(recipient)[-1]
    _ack, _url, trigger = world.click(dm, ids.REVEAL_ACTION, user=recipient,
                                      channel=f"D{recipient}")
    view = world.opened_view(trigger)
    validate_view(view)
    return view


# -- qps: nothing bypasses the catalogue ----------------------------------------------


def test_the_share_modal_from_ots_and_the_shortcut_is_all_catalogue(world: SlackWorld) -> None:
    user = person(world, QPS)
    view, _url = open_share_modal(world, user)
    assert view["callback_id"] == ids.SHARE_VIEW
    assert view["title"]["text"] == "⟦Share a secret⟧"
    assert leftovers(view) == []
    _ack, trigger = world.global_shortcut(user=user)
    view = world.opened_view(trigger)
    validate_view(view)
    assert leftovers(view) == []


def bad_inputs(world: SlackWorld, user: str) -> list[tuple[dict[str, Any], str]]:
    bot = person(world, ENGLISH, is_bot=True, display_name="ロボ")
    gone = person(world, ENGLISH, deleted=True, display_name="ゴースト")
    return [
        (dict(secret="  \n "), ids.SECRET_BLOCK),
        (dict(secret=SECRET, generate=True), ids.SECRET_BLOCK),
        (dict(secret="é" * (MAX_BYTES // 2 + 1)), ids.SECRET_BLOCK),
        (dict(secret=SECRET, passphrase=SECRET), ids.PASSPHRASE_BLOCK),
        (dict(secret=SECRET, label="٣" * 101), ids.LABEL_BLOCK),
        (dict(secret=SECRET, label="٠: " + SECRET), ids.LABEL_BLOCK),
        (dict(secret=SECRET, ttl=12345), ids.TTL_BLOCK),
        (dict(secret=SECRET, recipients=tuple(new_user() for _i in range(11))),
         ids.RECIPIENTS_BLOCK),
        (dict(secret=SECRET, recipients=("#general",)), ids.RECIPIENTS_BLOCK),
        (dict(secret=SECRET, recipients=(user,)), ids.RECIPIENTS_BLOCK),
        (dict(secret=SECRET, recipients=(bot, gone)), ids.RECIPIENTS_BLOCK),
    ]


def test_every_share_form_error_is_in_the_senders_language(world: SlackWorld) -> None:
    user = person(world, QPS)
    view, _url = open_share_modal(world, user)
    said = []
    for values, block in bad_inputs(world, user):
        answer = world.submit(view, share_values(**values), user=user).json()
        assert answer["response_action"] == "errors", (values, answer)
        assert list(answer["errors"]) == [block], (values, answer)
        assert error_leftovers(answer["errors"]) == [], values
        said.append(answer["errors"][block])
    assert "⟦A secret can only go to people.⟧" in said[-1]
    assert "@ロボ" in said[-1] and "@ゴースト" in said[-1]
    assert len(set(said)) == len(said)  # each mistake has its own explanation


def test_the_generated_password_and_its_waiting_window(world: SlackWorld) -> None:
    user = person(world, QPS)
    view, _url = open_share_modal(world, user)
    ack = world.submit(view, share_values(generate=True), user=user, view_id="V0GEN" + user)
    waiting = shown(ack)
    assert leftovers(waiting) == [] and "⟦Generating and sharing your password…⟧" in (
        json.dumps(waiting, ensure_ascii=False))
    generated = world.updated_views("V0GEN" + user)[0]
    assert generated["callback_id"] == ids.GENERATED_VIEW
    assert leftovers(generated) == []


def test_the_share_forms_own_window_and_burning_there(world: SlackWorld) -> None:
    """The global shortcut answers in the form's window; Burn now there rewrites it."""
    user = person(world, QPS)
    _ack, trigger = world.global_shortcut(user=user)
    view = world.opened_view(trigger)
    view_id = world.fake.view_ids[trigger]
    ack = world.submit(view, share_values(secret=SECRET), user=user, view_id=view_id)
    assert leftovers(shown(ack)) == []
    answer = world.updated_views(view_id)[-1]
    assert answer["callback_id"] == ids.SHARE_ANSWER_VIEW
    assert leftovers(answer) == []
    burn = next(e for b in answer["blocks"] for e in b.get("elements", [])
                if e.get("action_id") == ids.BURN_ACTION)
    payload = {
        **world._common(user), "type": "block_actions",
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": world.fake.new_trigger(),
        "view": {**answer, "id": view_id, "hash": "h"},
        "actions": [{"action_id": ids.BURN_ACTION, "block_id": "b", "type": "button",
                     "value": burn["value"], "action_ts": "1700000000.5",
                     "text": burn["text"]}],
    }
    assert world.interact(payload).status_code == 200
    burned = world.updated_views(view_id, 2)[-1]
    assert burned["callback_id"] == ids.SHARE_ANSWER_VIEW
    validate_view(burned)
    assert leftovers(burned) == []


def test_reveal_wrong_passphrase_revealed_and_gone(world: SlackWorld) -> None:
    sender, recipient = person(world, ENGLISH), person(world, QPS)
    share_to(world, sender, recipient)
    view = open_reveal(world, recipient)
    assert view["callback_id"] == ids.REVEAL_VIEW
    assert leftovers(view) == []
    wrong = world.submit(view, passphrase_values("٠"), user=recipient).json()
    assert wrong["response_action"] == "errors"
    assert error_leftovers(wrong["errors"]) == []
    assert "⟦That passphrase is not right. {count} tries left.⟧".replace(
        "{count}", str(ATTEMPTS - 1)) == wrong["errors"][ids.REVEAL_PASSPHRASE_BLOCK]
    wrong = world.submit(view, passphrase_values("٠٠"), user=recipient).json()
    assert error_leftovers(wrong["errors"]) == []
    revealed = world.submit(view, passphrase_values(PASSPHRASE), user=recipient).json()
    assert revealed_value(revealed) == SECRET
    assert leftovers(shown(revealed)) == []
    # The DM's button still answers, and says the secret is gone.
    again = world.submit(open_reveal(world, recipient), passphrase_values(PASSPHRASE),
                         user=recipient).json()
    gone = shown(again)
    assert leftovers(gone) == [] and gone["title"]["text"] == "⟦Secret gone⟧"


def test_the_last_wrong_passphrase_destroys_and_says_so(world: SlackWorld) -> None:
    sender, recipient = person(world, ENGLISH), person(world, QPS)
    share_to(world, sender, recipient)
    view = open_reveal(world, recipient)
    for attempt in range(ATTEMPTS - 1):
        answer = world.submit(view, passphrase_values("٠" * (attempt + 1)),
                              user=recipient).json()
        assert error_leftovers(answer["errors"]) == []
    assert "⟦That passphrase is not right. 1 try left" in (
        answer["errors"][ids.REVEAL_PASSPHRASE_BLOCK])
    destroyed = shown(world.submit(view, passphrase_values("٠٠٠"), user=recipient).json())
    assert destroyed["title"]["text"] == "⟦Secret destroyed⟧"
    assert leftovers(destroyed) == []


def test_refusals_to_the_wrong_person_and_a_damaged_form(world: SlackWorld) -> None:
    sender, recipient, other = person(world, QPS), person(world, ENGLISH), person(world, QPS)
    reply = share_to(world, sender, recipient)
    dm = world.dms(recipient)[-1]
    # Someone else presses Reveal in Slack (a forwarded DM, a screen share).
    _ack, response_url, _trigger = world.click(dm, ids.REVEAL_ACTION, user=other,
                                               channel=f"D{recipient}")
    refusal = world.replies(response_url)[0]
    assert leftovers(refusal) == [] and f"<@{recipient}>" in refusal["text"]
    # ...or submits the recipient's reveal form.
    view = open_reveal(world, recipient)
    answer = shown(world.submit(view, passphrase_values(PASSPHRASE), user=other).json())
    assert leftovers(answer) == []
    damaged = shown(world.submit({**view, "private_metadata": "x"}, {}, user=other).json())
    assert leftovers(damaged) == []
    # Someone else presses the sender's Burn now.
    _ack, burn_url, _trigger = world.click(reply, ids.BURN_ACTION, user=other,
                                           channel="C0GENERAL")
    assert leftovers(world.replies(burn_url)[0]) == []
    # A listed Burn whose value is not this app's.
    forged = {"blocks": [{"type": "actions", "elements": [{
        "type": "button", "action_id": ids.HOME_BURN_ACTION,
        "text": {"type": "plain_text", "text": "x"}, "value": "forged"}]}]}
    _ack, listed_url, _trigger = world.click(forged, ids.HOME_BURN_ACTION, user=other,
                                             channel="C0GENERAL")
    assert leftovers(world.replies(listed_url)[0]) == []


def test_the_burn_answer(world: SlackWorld) -> None:
    sender, recipient = person(world, QPS), person(world, ENGLISH)
    reply = share_to(world, sender, recipient)
    _ack, burn_url, _trigger = world.click(reply, ids.BURN_ACTION, user=sender,
                                           channel="C0GENERAL")
    assert leftovers(world.replies(burn_url)[0]) == []


@pytest.mark.parametrize("error", ["expired_trigger_id", "exchanged_trigger_id",
                                   "slack_unreachable", "ratelimited", "internal_error"])
def test_a_window_that_did_not_open_is_explained(world: SlackWorld, error: str) -> None:
    user, trigger = person(world, QPS), world.fake.new_trigger()
    world.fake.fail("views.open", error, match={"trigger_id": trigger})
    _ack, response_url, _trigger = world.command("", user=user, trigger=trigger)
    reply = world.replies(response_url)[0]
    assert leftovers(reply) == [] and "⟦" in reply["text"]


def test_store_trouble_and_delivery_reasons_are_catalogue_text() -> None:
    """Failures the embedded store on SQLite cannot be made to show end to end."""
    pseudo.install()
    troubles: list[BackendError] = [
        OutcomeUnknown(), StoreFull(), BackendUnavailable("The secret store (Redis) is failing."),
        RateLimited(), NotAuthorized(), InvalidRequest(), BackendError(),
    ]
    with speaking(QPS):
        for exc in troubles:
            for passphrase in (False, True):
                answer = views._store_trouble(passphrase, exc)
                if answer["response_action"] == "errors":
                    assert error_leftovers(answer["errors"]) == []
                    answer = {"response_action": "update", "view": views._as_view(answer)}
                assert leftovers(shown(answer)) == [], exc
        texts = [blocks.store_problem(exc) for exc in troubles]
        assert len(set(texts)) == len(texts)
        for code in ("cannot_dm_bot", "user_disabled", "account_inactive", "user_not_found",
                     "ratelimited", "channel_not_found"):
            reason = SlackFailure(code).reason
            assert pseudo.unwrap(reason) == "" and "⟦" in reason, reason
    with speaking("mi"):
        assert "Redis" not in blocks.store_problem(troubles[2])
    # English readers read the store's own words, as before.
    assert blocks.store_problem(troubles[2]) == "The secret store (Redis) is failing."
    assert SlackFailure("cannot_dm_bot").reason.startswith("they are a bot")


# -- te reo Māori ----------------------------------------------------------------------


def test_a_maori_senders_share_modal_and_errors_are_maori(world: SlackWorld) -> None:
    sender = person(world, MAORI)
    view, _url = open_share_modal(world, sender)
    assert view["title"]["text"] == "Tohaina he karere muna"
    assert view["submit"]["text"] == "Tohaina" and view["close"]["text"] == "Whakakore"
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert by_id[ids.PASSPHRASE_BLOCK]["label"]["text"] == "Kupu karapa"
    options = by_id[ids.TTL_BLOCK]["element"]["options"]
    assert [o["text"]["text"] for o in options] == [
        "5 meneti", "1 hāora", "1 rā", "7 rā", "14 rā", "30 rā"]
    assert "tāngata" in by_id[ids.RECIPIENTS_BLOCK]["hint"]["text"]  # the plural of tangata
    text = json.dumps(view, ensure_ascii=False)
    for english in ("Share", "Secret", "Passphrase", "Expires", "Send to", "Cancel"):
        assert english not in text
    errors = world.submit(view, share_values(secret=" "), user=sender).json()["errors"]
    assert errors[ids.SECRET_BLOCK].startswith("Patohia te karere muna")
    errors = world.submit(view, share_values(secret=SECRET, recipients=(sender,)),
                          user=sender).json()["errors"]
    assert errors[ids.RECIPIENTS_BLOCK].startswith("Ko koe tonu tāu i kōwhiri")


def reveal_as(world: SlackWorld, recipient: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Reveal in Slack with one wrong passphrase first: (modal, the error, the revealed view)."""
    view = open_reveal(world, recipient)
    wrong = world.submit(view, passphrase_values("٠"), user=recipient).json()
    revealed = world.submit(view, passphrase_values(PASSPHRASE), user=recipient).json()
    assert revealed_value(revealed) == SECRET
    return view, wrong["errors"][ids.REVEAL_PASSPHRASE_BLOCK], shown(revealed)


def test_each_recipient_reads_reveal_in_their_own_language(world: SlackWorld) -> None:
    """A Māori sender's secret to an English and a Māori reader, and an English sender's
    to a Māori reader: each window speaks its reader's language, not the sender's."""
    maori_sender, english_sender = person(world, MAORI), person(world, ENGLISH)
    english, maori, maori_too = person(world, ENGLISH), person(world, MAORI), person(world, MAORI)
    share_to(world, maori_sender, english, maori)
    share_to(world, english_sender, maori_too)

    view, wrong, revealed = reveal_as(world, english)
    assert view["title"]["text"] == "One-time secret" and view["submit"]["text"] == "Reveal"
    assert f"<@{maori_sender}> sent you a one-time secret." in json.dumps(view)
    assert wrong == f"That passphrase is not right. {ATTEMPTS - 1} tries left."
    assert f"The secret from <@{maori_sender}>:" in json.dumps(revealed)

    for reader, sender in ((maori, maori_sender), (maori_too, english_sender)):
        view, wrong, revealed = reveal_as(world, reader)
        assert view["title"]["text"] == "Karere muna"
        assert view["submit"]["text"] == "Whakaaturia"
        text = json.dumps(view, ensure_ascii=False)
        assert f"Kua tukuna mai e <@{sender}> he karere muna ki a koe." in text
        assert "Kupu karapa" in text and "Passphrase" not in text
        assert wrong == f"Kāore i tika taua kupu karapa. E {ATTEMPTS - 1} ngā whakamātau e toe ana."
        assert f"Te karere muna nā <@{sender}>:" in json.dumps(revealed, ensure_ascii=False)
        assert "Copy" not in json.dumps(revealed)


def test_maori_titles_and_buttons_fit_block_kit_without_truncation() -> None:
    """Every title a form window can have, in every language, within 24 characters
    (notice_modal would cut a longer one: none may rely on that), and every view
    valid for slack_sdk's models."""
    pseudo.install()
    titles = ["Share a secret", "One-time secret", "Not shared", "Secret destroyed",
              "Secret gone", "Outcome unknown", "Try again", "Your new password"]
    buttons = ["Share", "Cancel", "Done", "Close", "Reveal"]
    for language in ("en", "mi", QPS):
        with speaking(language):
            for words in titles + buttons:
                assert 0 < len(_(words)) <= 24, (language, _(words))
            for seconds in modals.TTL_CHOICES:
                assert len(modals.lifetime(seconds)) <= 75
            built = [
                modals.share_modal(private_metadata="", default_ttl=7 * 86400,
                                   max_ttl=30 * 86400, offer_request=True),
                modals.generated_modal("x" * 12, "summary"),
                modals.reveal_modal(sender="U1", passphrase_required=True,
                                    private_metadata=""),
                modals.revealed_modal(sender="U1", value="x"),
                modals.answer_modal({"blocks": [modals.section("x")]}, generated="x"),
                *[modals.notice_modal(_(t), "x") for t in titles],
            ]
            for view in built:
                validate_view(view)
