"""What follows a share speaks its reader's language (issue 15, Slack side): the
notices to the sender (viewed, burned, expired, refused), every DM and answer
rewritten after an outcome, `/ots list` and the Home tab; and the email to an API
recipient.

End to end over signed HTTP against the served app and the fake Slack, whose
users.info says each user's locale. A pseudo-locale (`qps`, every catalogue text
wrapped in ⟦ ⟧) finds any word written around the catalogue; `mi-NZ` users read
real te reo Māori, and a message for someone else is in THEIR language. Email
goes through a real SMTP server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.slack import followup as followup_module
from bot.slack import ids
from bot.slack.followup import Followup
from bot.web.app import create_app
from tests.support import pseudo
from tests.support.block_kit import validate_recorded
from tests.support.servers import ServedApp
from tests.support.slack_world import (
    SlackWorld,
    eventually,
    link_in,
    new_user,
    slack_world,
)
from tests.support.smtp import SMTPServer
from tests.test_api_v1 import ALICE, API_USERS, api_env, ok
from tests.test_slack_home import dm_of, expire_everything, share_to

TEST_SCRYPT_N = 2**10


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    pseudo.install()  # before any user's language is looked up (and kept)
    with slack_world("sqlite", tmp_path_factory.mktemp("i18n-follow"), None,
                     RECEIPT_POLL_SECONDS="1", API_USERS=API_USERS) as world:
        yield world
    assert validate_recorded(world.fake) > 0  # Block Kit limits hold in every language


def user(world: SlackWorld, locale: str) -> str:
    person = new_user()
    world.fake.add_user(person, locale=locale)
    return person


def dm_saying(world: SlackWorld, person: str, *words: str) -> dict[str, Any]:
    """The last message posted to `person`'s DM whose text has all of `words`."""
    def probe() -> dict[str, Any] | None:
        found = [c.body for c in world.fake.calls_to("chat.postMessage")
                 if c.body.get("channel") == f"D{person}"
                 and all(w in c.body.get("text", "") for w in words)]
        return found[-1] if found else None

    return eventually(probe, timeout=15, what=f"a DM to {person} saying {words!r}")


def rewritten(world: SlackWorld, person: str, ts: str, words: str) -> dict[str, Any]:
    """A DM as chat.update left it, once it says `words`."""
    def probe() -> dict[str, Any] | None:
        now = world.fake.message_now(f"D{person}", ts)
        return now if now and words in now["text"] else None

    return eventually(probe, timeout=15, what=f"the DM to {person} saying {words!r}")


def home_saying(world: SlackWorld, person: str, *words: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        homes = [h for h in world.fake.published_homes(person)
                 if all(w in json.dumps(h, ensure_ascii=False) for w in words)]
        return homes[-1] if homes else None

    return eventually(probe, timeout=15, what=f"a Home tab for {person} saying {words!r}")


def reveal_in_slack(world: SlackWorld, person: str, dm: dict[str, Any], ts: str) -> None:
    _ack, _url, trigger = world.click(dm, ids.REVEAL_ACTION, user=person,
                                      channel=f"D{person}", ts=ts)
    view = world.opened_view(trigger)
    assert world.submit(view, {}, user=person).json()["response_action"] == "update"


def no_leftovers(payload: dict[str, Any]) -> None:
    assert pseudo.slack_leftovers(payload) == [], payload


# -- the pseudo-locale: nothing bypasses the catalogue -------------------------------------


def test_every_surface_after_a_share_goes_through_the_catalogue(world: SlackWorld) -> None:
    sender = user(world, "qps")
    by_page, in_slack, burned, refused, expiring = (user(world, "qps") for _ in range(5))

    # The Home tab, republished as soon as something is shared...
    share_to(world, sender, by_page, label="⟦web⟧")
    home = home_saying(world, sender, "⟦web⟧")
    no_leftovers(home)
    assert "⟦Your one-time secrets⟧" in json.dumps(home, ensure_ascii=False)
    # ...and when it is opened.
    published = len(world.fake.published_homes(sender))
    assert world.home_opened(sender).status_code == 200
    no_leftovers(world.home_of(sender, published + 1))
    # /ots list.
    _ack, url, _trigger = world.command("list", user=sender)
    listing = world.replies(url)[0]
    no_leftovers(listing)
    assert "⟦*Live secrets* (1): not opened yet.⟧" in json.dumps(listing, ensure_ascii=False)

    # A reveal by link on the web page: the notice to the sender, the recipient's DM,
    # the sender's answer and Home tab.
    _answer, answer_url = share_to(world, sender, in_slack, user(world, "qps"),
                                   label="⟦slack⟧")
    dm, ts = dm_of(world, by_page)
    page = link_in(dm).replace("http://ots.test", world.served.url)
    assert "pa55-word" in httpx.post(page, timeout=10).text
    no_leftovers(dm_saying(world, sender, ":unlock:", "⟦web⟧"))
    no_leftovers(rewritten(world, by_page, ts, "⟦The one-time secret"))
    no_leftovers(home_saying(world, sender, "⟦opened in a browser"))

    # A reveal in Slack: the same, and the sender's answer rewritten (with Burn now for
    # the other recipient's, still live).
    dm, ts = dm_of(world, in_slack)
    reveal_in_slack(world, in_slack, dm, ts)
    no_leftovers(rewritten(world, in_slack, ts, "⟦You revealed"))
    no_leftovers(dm_saying(world, sender, ":unlock:", "⟦slack⟧"))
    rewritten_answer = world.replies(answer_url, 2)[-1]
    no_leftovers(rewritten_answer)
    assert ids.BURN_ACTION in json.dumps(rewritten_answer)
    no_leftovers(home_saying(world, sender, "⟦revealed in Slack by"))

    # Burn now: the recipient's DM and the Home tab follow.
    answer, _url = share_to(world, sender, burned, label="⟦burn⟧")
    _dm, ts = dm_of(world, burned)
    world.click(answer, ids.BURN_ACTION, user=sender, channel="C0GENERAL")
    no_leftovers(rewritten(world, burned, ts, "⟦The one-time secret"))
    no_leftovers(home_saying(world, sender, "⟦burned"))

    # Someone else's Reveal is refused: the sender is told.
    share_to(world, sender, refused, label="⟦refused⟧")
    dm, ts = dm_of(world, refused)
    world.click(dm, ids.REVEAL_ACTION, user=user(world, "qps"), channel=f"D{refused}", ts=ts)
    no_leftovers(dm_saying(world, sender, ":warning:", "⟦refused⟧"))
    no_leftovers(home_saying(world, sender, "⟦1 refused attempt⟧"))

    # Expiry: the notice, the DM, the Home tab.
    share_to(world, sender, expiring, label="⟦expiry⟧")
    _dm, ts = dm_of(world, expiring)
    moved = expire_everything(world)
    try:
        no_leftovers(dm_saying(world, sender, ":hourglass:", "⟦expiry⟧"))
        no_leftovers(rewritten(world, expiring, ts, "⟦The one-time secret"))
        no_leftovers(home_saying(world, sender, "⟦*Live secrets*: none."))
    finally:
        moved.__exit__(None, None, None)


# -- te reo Māori, and each message in its own reader's language ----------------------------


def test_a_maori_sender_reads_the_notice_and_home_in_maori(world: SlackWorld) -> None:
    sender, recipient = user(world, "mi-NZ"), user(world, "en-US")
    share_to(world, sender, recipient, label="wifi")
    dm, ts = dm_of(world, recipient)
    reveal_in_slack(world, recipient, dm, ts)
    # The recipient revealed it (in English); the notice is for the sender, in Māori.
    notice = dm_saying(world, sender, ":unlock:")["text"]
    assert notice.startswith(":unlock: Kua kitea te karere muna “wifi” i tohaina e koe ki a "
                             f"<@{recipient}> "), notice
    assert f"nā <@{recipient}> i whakaatu i Slack. Kua ngaro ināianei." in notice
    told = rewritten(world, recipient, ts, "You revealed the one-time secret “wifi”")
    assert f"from <@{sender}> in Slack" in told["text"]

    home = json.dumps(home_saying(world, sender, "i whakaaturia i Slack"), ensure_ascii=False)
    assert "Ō karere muna" in home and "*Ngā otinga tata nei*" in home
    assert "Me pēhea e mahi ai" in home and "Live secrets" not in home
    _ack, url, _trigger = world.command("list", user=sender)
    assert world.replies(url)[0]["text"] == "Ō karere muna: 0 e wātea tonu ana."


def test_a_maori_recipients_dm_is_rewritten_in_maori_for_an_english_sender(
    world: SlackWorld,
) -> None:
    sender, recipient = user(world, "en-US"), user(world, "mi-NZ")
    answer, _url = share_to(world, sender, recipient, label="vpn")
    _dm, ts = dm_of(world, recipient)
    world.click(answer, ids.BURN_ACTION, user=sender, channel="C0GENERAL")
    gone = rewritten(world, recipient, ts, "I tahuna")["text"]
    assert gone.startswith(f":fire: I tahuna e <@{sender}> te karere muna “vpn” nāna <!date^")
    assert gone.endswith(", i mua i te huakanga a tētahi. Kua kore tōna hononga e mahi; mēnā e "
                         f"hiahia tonu ana koe, tonoa a <@{sender}> kia tohaina anō mai.")
    home = json.dumps(home_saying(world, sender, "Live secrets*: none"), ensure_ascii=False)
    assert "burned" in home and "tahuna" not in home  # the sender's own Home: English


def test_a_refused_attempt_is_told_to_a_maori_sender_in_maori(world: SlackWorld) -> None:
    sender, recipient, other = user(world, "mi-NZ"), user(world, "en-US"), user(world, "en-US")
    share_to(world, sender, recipient, label=None)
    dm, ts = dm_of(world, recipient)
    world.click(dm, ids.REVEAL_ACTION, user=other, channel=f"D{recipient}", ts=ts)
    told = dm_saying(world, sender, ":warning:")["text"]
    assert "Kei te haumaru tonu te karere muna i tohaina e koe" in told
    assert f"i pēhi a <@{other}> i tōna pātene *Whakaaturia i Slack*" in told
    assert told.endswith("mā te `/ots list` rānei.")
    assert "1 nganatanga i whakahēngia" in json.dumps(
        home_saying(world, sender, "nganatanga"), ensure_ascii=False)


def test_an_api_recipient_in_slack_reads_the_dm_in_their_own_language(
    world: SlackWorld,
) -> None:
    member = new_user()
    world.fake.add_user(member, locale="mi-NZ", email="mere@example.com")
    # The API caller asks for English: the member's DM follows the member, not the caller.
    shared = ok(httpx.post(f"{world.served.url}/api/v1/share", auth=ALICE, timeout=20,
                           headers={"Accept-Language": "en"},
                           data={"secret": "s3cr3t", "recipient": "mere@example.com"}))
    assert shared["recipient"] == ["me*****@e*****.com"]  # the answer itself: unchanged
    dm = dm_saying(world, member, f"Kua tukuna mai e {ALICE[0]} he karere muna ki a koe")
    assert "Whakaaturia i Slack" in json.dumps(dm, ensure_ascii=False)


# -- the email to an API recipient ---------------------------------------------------------


@pytest.fixture(scope="module")
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, smtp: SMTPServer) -> Iterator[httpx.Client]:
    env = api_env(tmp_path_factory.mktemp("i18n-mail"), SMTP_URL=smtp.url,
                  SMTP_FROM="One-Time Secret <ots@example.net>")
    app = create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)
    with ServedApp(app) as served, \
            httpx.Client(base_url=served.url + "/api/v1", timeout=20) as client:
        yield client


PER_SECRET = {"secret_key", "metadata_key", "created", "updated"}


def share_mailed(api: httpx.Client, smtp: SMTPServer, headers: dict[str, str],
                 address: str) -> tuple[dict[str, Any], Any]:
    before = len(smtp.received)
    shared = ok(api.post("/share", auth=ALICE, headers=headers, data={
        "secret": "s3cr3t", "passphrase": "open sesame", "ttl": "3600", "recipient": address}))
    received = smtp.wait_for(before + 1)[-1]
    assert received.rcpt_tos == [address]
    return shared, received


def test_the_email_speaks_the_callers_language_and_the_api_does_not(
    api: httpx.Client, smtp: SMTPServer
) -> None:
    mi_answer, mi_mail = share_mailed(api, smtp, {"Accept-Language": "mi-NZ, en;q=0.5"},
                                      "hemi@example.com")
    en_answer, en_mail = share_mailed(api, smtp, {}, "hemi@example.com")
    fr_answer, fr_mail = share_mailed(api, smtp, {"Accept-Language": "fr"},
                                      "hemi@example.com")

    message = mi_mail.message
    assert message["Subject"] == f"Kua tukuna mai e {ALICE[0]} he karere muna ki a koe"
    assert message["Content-Language"] == "mi"
    text = mi_mail.part("text/plain").replace("\r\n", "\n")
    html = mi_mail.part("text/html")
    link = f"http://ots.test/secret/{mi_answer['secret_key']}"
    assert text.startswith(f"Kua tukuna mai e {ALICE[0]} he karere muna ki a koe.\n\n"
                           f"Huakina i konei:\n{link}\n\n")
    assert "ina pēhi koe i te pātene “Whakaaturia te karere muna” i taua whārangi" in text
    assert "(ā muri i te 1 hāora)." in text
    assert f"mā {ALICE[0]} e hoatu ki a koe mā tētahi atu huarahi." in text
    assert "“<strong>Whakaaturia te karere muna</strong>”" in html and 'lang="mi"' in html
    for english in ("sent you", "Open it here", "passphrase", "expires", "in 1 hour"):
        assert english not in text + html

    for mail in (en_mail, fr_mail):  # no header, or a language without a catalogue
        assert mail.message["Subject"] == f"{ALICE[0]} sent you a one-time secret"
        assert mail.message["Content-Language"] == "en"
        body = mail.part("text/plain")
        assert "Open it here:" in body and "(in 1 hour)." in body
        assert "press Reveal secret on that page" in body
        assert "<strong>Reveal secret</strong>" in mail.part("text/html")

    # The API's answer is the same in every language: its fields and every value that
    # is not the new secret's own.
    for answer in (en_answer, fr_answer):
        assert answer.keys() == mi_answer.keys()
        assert {k: v for k, v in answer.items() if k not in PER_SECRET} == {
            k: v for k, v in mi_answer.items() if k not in PER_SECRET}


@pytest.mark.parametrize("address", ["not-an-address", "refused@example.com"])
def test_api_errors_are_byte_for_byte_the_same_in_every_language(
    api: httpx.Client, smtp: SMTPServer, address: str
) -> None:
    smtp.refuse("refused@example.com")
    answers = [
        api.post("/share", auth=ALICE, headers=headers,
                 data={"secret": "s3cr3t", "recipient": address})
        for headers in ({}, {"Accept-Language": "mi"}, {"Accept-Language": "mi-NZ,en;q=0.1"})
    ]
    # As onetimesecret.com answers errors: 404, the intended status in a header.
    assert answers[0].status_code == 404
    assert "Nothing was stored" in answers[0].json()["message"] or "burned" in answers[0].text
    for answer in answers[1:]:
        assert answer.status_code == answers[0].status_code
        assert answer.headers.get("x-ots-intended-status") == answers[0].headers.get(
            "x-ots-intended-status")
        assert answer.content == answers[0].content
        assert "content-language" not in answer.headers


# -- follow-ups in flight when the app stops -----------------------------------------------


def test_follow_ups_in_flight_finish_or_stop_cleanly_when_the_app_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notice now waits on a language lookup too: one under way when the app stops
    finishes within the grace period, and one that hangs is cancelled in its own task
    (not left to the garbage collector, where it would die outside its context)."""
    monkeypatch.setattr(followup_module, "SHUTDOWN_GRACE", 0.5)
    said: list[str] = []

    async def notice(delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            said.append(f"told after {delay}")
        except asyncio.CancelledError:
            said.append(f"stopped after {delay}")
            raise

    async def main() -> None:
        followup = Followup(None, None, None, None, None)  # type: ignore[arg-type]
        for delay in (0.05, 60):
            followup._pending.add(asyncio.ensure_future(notice(delay)))
        waiting = asyncio.ensure_future(followup.finish_pending())
        await asyncio.sleep(0.01)
        waiting.cancel()  # the app stops
        await asyncio.gather(waiting, return_exceptions=True)

    asyncio.run(main())
    assert said == ["told after 0.05", "stopped after 60"]
