"""`recipient` on the v1 API: the link (never the secret) by Slack DM, else by email,
else refused; on both stores, over real HTTP, against a real SMTP server
(aiosmtpd on 127.0.0.1) and the fake Slack answering users.lookupByEmail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.appstore import load_server_key
from bot.config import Settings
from bot.slack import ids, trust
from bot.web.app import create_app
from tests.support.servers import TEST_SCRYPT_N, TEST_SERVER_KEY, ServedApp, free_port
from tests.support.slack_world import SlackWorld, find_element, slack_world
from tests.support.smtp import SMTPServer
from tests.test_api_v1 import ALICE, BOB, api_env, ok, v1_error
from tests.test_slack_recipients import reveal_in_slack, revealed_value

FROM = "One-Time Secret <ots@example.net>"
CAROL = "carol.jones@example.com"
CAROL_SHOWN = "ca*****@e*****.com"
NOTHING_STORED = "Nothing was stored."


@dataclass
class MailApi:
    api: httpx.Client
    smtp: SMTPServer

    def recent(self, auth: tuple[str, str] = ALICE) -> list[dict]:
        return list(ok(self.api.get("/private/recent", auth=auth)))


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def _env(request: pytest.FixtureRequest, data_dir: Path, **extra: str) -> dict[str, str]:
    env = api_env(data_dir, **extra)
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["SERVER_KEY"] = TEST_SERVER_KEY
    return env


@pytest.fixture(params=["sqlite", "redis"])
def mail(request: pytest.FixtureRequest, data_dir: Path, smtp: SMTPServer) -> Iterator[MailApi]:
    """The app with email delivery and no Slack."""
    env = _env(request, data_dir, SMTP_URL=smtp.url, SMTP_FROM=FROM,
               SHARE_DOMAINS="links.example.org")
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=20) as client:
        yield MailApi(client, smtp)


def served(request: pytest.FixtureRequest, data_dir: Path, **extra: str) -> ServedApp:
    settings = Settings.from_env(_env(request, data_dir, **extra))
    return ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N))


# -- email ---------------------------------------------------------------------------------


def test_a_recipient_gets_the_link_by_email_and_never_the_secret(
    mail: MailApi, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    shared = ok(mail.api.post("/share", auth=ALICE, data={
        "secret": "hunter2-top-secret", "passphrase": "open sesame", "ttl": "3600",
        "recipient": CAROL}))
    assert shared["recipient"] == [CAROL_SHOWN]
    key, meta = shared["secret_key"], shared["metadata_key"]

    [received] = mail.smtp.wait_for(1)
    assert received.rcpt_tos == [CAROL]
    assert received.mail_from == "ots@example.net"
    message = received.message
    assert message["To"] == CAROL and message["From"] == FROM
    assert message["Subject"] == f"{ALICE[0]} sent you a one-time secret"
    text, html = received.part("text/plain"), received.part("text/html")
    link = f"http://ots.test/secret/{key}"
    for part in (text, html):
        assert link in part
        assert ALICE[0] in part
        assert "does not use it up" in part
        assert "expires" in part and "(in 1 hour)" in part
        assert "passphrase" in part  # that one is needed, never which
    raw = message.as_string()
    for private in ("hunter2-top-secret", "open sesame", meta):
        assert private not in raw

    # The receipt lists the obscured address; the mail did not use the secret up.
    assert ok(mail.api.get(f"/private/{meta}"))["recipient"] == [CAROL_SHOWN]
    assert mail.recent()[0]["recipient"] == [CAROL_SHOWN]
    revealed = ok(mail.api.post(f"/secret/{key}", data={"passphrase": "open sesame"}))
    assert revealed["value"] == "hunter2-top-secret"
    # The app's log says that a link went out and how, never to whom or which.
    # ("mail.log" is the test SMTP server's own logger: the receiving side.)
    app_log = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records
                        if not r.name.startswith("mail."))
    assert "delivered to its recipient by email" in app_log
    for private in (CAROL, key, meta, "hunter2-top-secret", "open sesame"):
        assert private not in app_log


def test_generate_mails_the_link_not_the_value(mail: MailApi):
    made = ok(mail.api.post("/generate", auth=BOB,
                            data={"recipient": CAROL, "share_domain": "links.example.org"}))
    assert made["recipient"] == [CAROL_SHOWN] and made["share_domain"] == "links.example.org"
    [received] = mail.smtp.wait_for(1)
    raw = received.message.as_string()
    assert f"https://links.example.org/secret/{made['secret_key']}" in received.part("text/plain")
    assert made["value"] not in raw and made["metadata_key"] not in raw


def test_only_the_first_address_is_used_and_listed(mail: MailApi):
    shared = ok(mail.api.post("/share", auth=ALICE, data={
        "secret": "x", "recipient[]": [CAROL, "dave@example.com"]}))
    assert shared["recipient"] == [CAROL_SHOWN]
    mail.smtp.wait_for(1)
    assert [r.rcpt_tos for r in mail.smtp.received] == [[CAROL]]


def test_an_empty_recipient_is_no_recipient(mail: MailApi):
    shared = ok(mail.api.post("/share", auth=ALICE, data={"secret": "x", "recipient": ""}))
    assert shared["recipient"] == []
    assert mail.smtp.received == []


@pytest.mark.parametrize("address", ["not-an-address", "a b@example.com", "Carol <c@x.com>",
                                     "@example.com"])
def test_a_bad_address_is_refused_with_nothing_stored(mail: MailApi, address: str):
    body = v1_error(mail.api.post("/share", auth=ALICE,
                                  data={"secret": "x", "recipient": address}),
                    "The recipient must be one email address, like someone@example.com. "
                    "Nothing was stored.", "400")
    assert set(body) == {"message"}
    assert mail.recent() == [] and mail.smtp.received == []


# -- who may send ----------------------------------------------------------------------------


def test_anonymous_callers_get_onetimesecrets_answer(mail: MailApi):
    for endpoint in ("/share", "/generate"):
        body = v1_error(mail.api.post(endpoint, data={"secret": "x", "recipient": CAROL}),
                        "An account is required to send emails.", "403")
        assert body == {"message": "An account is required to send emails."}
    assert mail.smtp.received == []


def test_anonymous_recipients_when_the_install_allows_them(
    request: pytest.FixtureRequest, data_dir: Path, smtp: SMTPServer
):
    request.param = "sqlite"
    with served(request, data_dir, SMTP_URL=smtp.url, SMTP_FROM=FROM,
                RECIPIENTS_ANONYMOUS="1") as server:
        shared = ok(httpx.post(server.url + "/api/v1/share",
                               data={"secret": "x", "recipient": CAROL}))
    assert shared["custid"] == "anon" and shared["recipient"] == [CAROL_SHOWN]
    [received] = smtp.wait_for(1)
    assert received.message["Subject"] == "Someone using the API sent you a one-time secret"
    assert received.part("text/plain").startswith("Someone using the API sent you")


def test_deliveries_are_rate_limited(
    request: pytest.FixtureRequest, data_dir: Path, smtp: SMTPServer
):
    request.param = "sqlite"
    with served(request, data_dir, SMTP_URL=smtp.url, SMTP_FROM=FROM,
                RATE_LIMIT_DELIVER="2") as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=20) as api:
        for _ in range(2):
            ok(api.post("/share", auth=ALICE, data={"secret": "x", "recipient": CAROL}))
        response = api.post("/share", auth=ALICE, data={"secret": "x", "recipient": CAROL})
        v1_error(response, "Rate limit exceeded. Please try again later.", "429")
        assert int(response.headers["retry-after"]) > 0
        # Bob shares the client address, which has had its two deliveries too.
        v1_error(api.post("/share", auth=BOB, data={"secret": "x", "recipient": CAROL}),
                 "Rate limit exceeded. Please try again later.", "429")
        # Without a recipient nothing is delivered, and nothing is limited.
        ok(api.post("/share", auth=ALICE, data={"secret": "x"}))
        assert len(ok(api.get("/private/recent", auth=ALICE))) == 3
    assert len(smtp.wait_for(2)) == 2


def test_deliveries_are_counted_per_user_and_per_address(
    request: pytest.FixtureRequest, data_dir: Path, smtp: SMTPServer
):
    """Through a trusted proxy (loopback, uvicorn's default FORWARDED_ALLOW_IPS), each
    request comes from the address in X-Forwarded-For: the two limits apart."""
    request.param = "sqlite"
    limited = "Rate limit exceeded. Please try again later."

    def deliver(api: httpx.Client, auth: tuple[str, str], address: str) -> httpx.Response:
        return api.post("/share", auth=auth, headers={"X-Forwarded-For": address},
                        data={"secret": "x", "recipient": CAROL})

    with served(request, data_dir, SMTP_URL=smtp.url, SMTP_FROM=FROM,
                RATE_LIMIT_DELIVER="2") as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=20) as api:
        ok(deliver(api, ALICE, "198.51.100.1"))
        ok(deliver(api, ALICE, "198.51.100.1"))
        v1_error(deliver(api, ALICE, "198.51.100.2"), limited, "429")  # Alice's own limit
        v1_error(deliver(api, BOB, "198.51.100.1"), limited, "429")  # that address's limit
        ok(deliver(api, BOB, "198.51.100.3"))
    assert len(smtp.wait_for(3)) == 3


# -- nothing to deliver with ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def bare(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[httpx.Client]:
    """The app with neither Slack nor email."""
    with served(request, data_dir) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=20) as client:
        yield client


def test_a_server_that_cannot_deliver_refuses(bare: httpx.Client):
    for endpoint in ("/share", "/generate"):
        v1_error(bare.post(endpoint, auth=ALICE, data={"secret": "x", "recipient": CAROL}),
                 "This server cannot deliver to recipients: neither Slack nor email is set up "
                 "here (connect Slack, or set SMTP_URL). Nothing was stored.", "400")
    assert ok(bare.get("/private/recent", auth=ALICE)) == []


# -- delivery failures burn ---------------------------------------------------------------------


def test_a_mail_server_that_is_down_burns_the_secret(
    request: pytest.FixtureRequest, data_dir: Path
):
    request.param = "sqlite"
    dead = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    with served(request, data_dir, SMTP_URL=dead, SMTP_FROM=FROM) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=20) as api:
        body = v1_error(api.post("/share", auth=ALICE,
                                 data={"secret": "never told", "recipient": CAROL}),
                        f"The link could not be delivered to {CAROL_SHOWN}: the mail server "
                        "could not be reached. The secret was burned, so nobody can open it; "
                        "share it again.", "502")
        assert "never told" not in json.dumps(body)
        [receipt] = ok(api.get("/private/recent", auth=ALICE))
        assert receipt["state"] == "burned"


def test_a_relay_that_wants_a_login_gets_the_one_in_smtp_url(
    request: pytest.FixtureRequest, data_dir: Path
):
    request.param = "sqlite"
    with SMTPServer(login=("ots@example.net", "p@ss:word")) as relay:
        url = f"smtp://ots%40example.net:p%40ss%3Aword@127.0.0.1:{relay.port}"
        with served(request, data_dir, SMTP_URL=url, SMTP_FROM=FROM) as server:
            shared = ok(httpx.post(server.url + "/api/v1/share", auth=ALICE,
                                   data={"secret": "x", "recipient": CAROL}, timeout=20))
        assert shared["recipient"] == [CAROL_SHOWN]
        assert [r.rcpt_tos for r in relay.wait_for(1)] == [[CAROL]]
        assert relay.logins == ["ots@example.net"]

        wrong = f"smtp://ots%40example.net:nope@127.0.0.1:{relay.port}"
        with served(request, data_dir, SMTP_URL=wrong, SMTP_FROM=FROM) as server:
            response = httpx.post(server.url + "/api/v1/share", auth=ALICE,
                                  data={"secret": "x", "recipient": CAROL}, timeout=20)
        v1_error(response, f"The link could not be delivered to {CAROL_SHOWN}: the mail "
                 "server refused this server's credentials. The secret was burned, so "
                 "nobody can open it; share it again.", "502")
        assert len(relay.received) == 1


def test_a_refused_mailbox_burns_the_secret(mail: MailApi):
    mail.smtp.refuse(CAROL)
    v1_error(mail.api.post("/share", auth=ALICE, data={"secret": "x", "recipient": CAROL}),
             f"The link could not be delivered to {CAROL_SHOWN}: the mail server refused the "
             "recipient address. The secret was burned, so nobody can open it; share it again.",
             "502")
    [receipt] = mail.recent()
    assert receipt["state"] == "burned"
    assert mail.smtp.received == []


# -- Slack first ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def world(request: pytest.FixtureRequest, tmp_path: Path, smtp: SMTPServer
          ) -> Iterator[SlackWorld]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    with slack_world(request.param, tmp_path, redis_url, API_USERS=api_env(tmp_path)["API_USERS"],
                     SMTP_URL=smtp.url, SMTP_FROM=FROM) as world:
        world.fake.add_user("U0CAROL", email=CAROL)
        yield world


def api_of(world: SlackWorld) -> httpx.Client:
    return httpx.Client(base_url=world.served.url + "/api/v1", timeout=20)


def test_a_slack_member_gets_the_recipient_dm(world: SlackWorld, smtp: SMTPServer):
    with api_of(world) as api:
        shared = ok(api.post("/share", auth=ALICE, data={
            "secret": "for carol in slack", "recipient": CAROL.upper()}))
        assert shared["recipient"] == ["CA*****@E*****.COM"]
        [lookup] = world.fake.calls_to("users.lookupByEmail")
        assert lookup.body["email"] == CAROL.upper()
        [dm] = world.dms("U0CAROL")
        text = json.dumps(dm)
        assert f"http://ots.test/secret/{shared['secret_key']}" in text
        assert f"{ALICE[0]} sent you a one-time secret" in dm["text"]
        assert "expires" in text
        reveal, _ = find_element(dm, ids.REVEAL_ACTION)
        value = trust.unpack(load_server_key(world.settings), trust.REVEAL, reveal["value"])
        assert value is not None and value["to"] == "U0CAROL"  # signed, for Carol alone
        for private in ("for carol in slack", shared["metadata_key"]):
            assert private not in world.everything_sent()
        assert smtp.received == []  # Slack first: no email as well

        # Reveal in Slack works as for any share, and the receipt says it was received.
        _, answer = reveal_in_slack(world, dm, "U0CAROL")
        assert revealed_value(answer) == "for carol in slack"
        receipt = ok(api.get(f"/private/{shared['metadata_key']}"))
        assert receipt["state"] == "received" and receipt["recipient"] == ["CA*****@E*****.COM"]


def test_an_anonymous_sender_is_someone_using_the_api(tmp_path: Path, smtp: SMTPServer):
    with slack_world("sqlite", tmp_path, None, RECIPIENTS_ANONYMOUS="1") as world:
        world.fake.add_user("U0CAROL", email=CAROL)
        with api_of(world) as api:
            ok(api.post("/share", data={"secret": "x", "recipient": CAROL}))
        [dm] = world.dms("U0CAROL")
        assert dm["text"] == "Someone using the API sent you a one-time secret"


def test_who_is_not_a_member_gets_email(world: SlackWorld, smtp: SMTPServer):
    with api_of(world) as api:
        shared = ok(api.post("/share", auth=ALICE,
                             data={"secret": "x", "recipient": "erin@example.org"}))
    assert shared["recipient"] == ["er*****@e*****.org"]
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ["erin@example.org"]
    assert world.fake.calls_to("chat.postMessage") == []


def test_who_is_not_a_member_is_refused_without_email(tmp_path: Path):
    with slack_world("sqlite", tmp_path, None, API_USERS=api_env(tmp_path)["API_USERS"]) as w, \
            api_of(w) as api:
        v1_error(api.post("/share", auth=ALICE,
                          data={"secret": "x", "recipient": "erin@example.org"}),
                 "This server cannot deliver to recipients: er*****@e*****.org is not a member "
                 "of this Slack workspace, and email is not set up here (SMTP_URL). "
                 f"{NOTHING_STORED}", "400")
        assert ok(api.get("/private/recent", auth=ALICE)) == []


def test_a_slack_lookup_failure_stores_nothing(world: SlackWorld, smtp: SMTPServer):
    world.fake.fail("users.lookupByEmail", "internal_error")
    with api_of(world) as api:
        v1_error(api.post("/share", auth=ALICE, data={"secret": "x", "recipient": CAROL}),
                 f"The link was not sent to {CAROL_SHOWN}: Slack could not be asked whether the "
                 f"address belongs to a member (internal_error). {NOTHING_STORED}", "502")
        assert ok(api.get("/private/recent", auth=ALICE)) == []
    assert smtp.received == []


def test_a_dm_that_cannot_be_posted_burns_the_secret(world: SlackWorld):
    world.fake.fail("chat.postMessage", "channel_not_found")
    with api_of(world) as api:
        v1_error(api.post("/share", auth=ALICE, data={"secret": "x", "recipient": CAROL}),
                 f"The link could not be delivered to {CAROL_SHOWN}: Slack would not deliver "
                 "the message (channel_not_found). The secret was burned, so nobody can open "
                 "it; share it again.", "502")
        [receipt] = ok(api.get("/private/recent", auth=ALICE))
        assert receipt["state"] == "burned"
