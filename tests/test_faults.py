"""Faults around the app: Redis stopped mid-run and started again on the same port.

A redis-server of the test's own (the shared one must not be stopped) with
persistence on, as a production Redis has it: a SIGTERM saves the data set and
the restart loads it, so "no secret lost" can be checked, not assumed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import redis

from bot.backends import crypto
from bot.config import Settings
from bot.web.app import create_app
from tests.support.fake_slack import FakeSlack
from tests.support.servers import (
    TEST_SCRYPT_N,
    TEST_SERVER_KEY,
    LocalHTTPFake,
    RedisServer,
    ServedApp,
)
from tests.support.slack_requests import SIGNING_SECRET, command_body, post_signed

LINK = re.compile(r"http://ots\.test/secret/([0-9a-z]{31,})")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    client.config_set("save", "3600 1")  # SIGTERM now saves, and the restart loads it
    client.close()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_on_own_redis(
    own_redis: RedisServer, tmp_path: Path, fake_slack: FakeSlack
) -> Iterator[ServedApp]:
    settings = Settings.from_env({
        "REDIS_URL": own_redis.url,
        "DATA_DIR": str(tmp_path / "data"),
        "PUBLIC_URL": "http://ots.test",
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SERVER_KEY": TEST_SERVER_KEY,
    })
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
        yield server


def api_share(server: ServedApp, secret: str, passphrase: str | None = None) -> httpx.Response:
    data = {"secret": secret, **({"passphrase": passphrase} if passphrase else {})}
    return httpx.post(f"{server.url}/api/v1/share", data=data, timeout=10)


def api_reveal(server: ServedApp, key: str, passphrase: str | None = None) -> httpx.Response:
    data = {"passphrase": passphrase} if passphrase else {}
    return httpx.post(f"{server.url}/api/v1/secret/{key}", data=data, timeout=10)


def health(server: ServedApp) -> dict[str, str]:
    response = httpx.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def slack_reply(server: ServedApp, fake_slack: FakeSlack, text: str) -> dict[str, object]:
    fake_slack.reset()
    started = time.monotonic()
    ack = post_signed(server.url, command_body(text, response_url=fake_slack.response_url()))
    assert ack.status_code == 200
    assert time.monotonic() - started < 3  # Slack's limit, whatever the store does
    body: dict[str, object] = fake_slack.wait_for("response_url")[0].body
    return body


def test_redis_outage_gives_clear_503s_and_service_resumes_by_itself(
    own_redis: RedisServer, app_on_own_redis: ServedApp, fake_slack: FakeSlack
) -> None:
    server = app_on_own_redis
    plain = api_share(server, "plain before the outage").json()
    guarded = api_share(server, "guarded before the outage", "pw").json()
    assert health(server)["store"] == "reachable"

    own_redis.stop()

    assert health(server) == {"status": "degraded", "backend": "embedded", "store": "unreachable"}
    # The API: JSON 503 with a message, and no secret_key for a share that did not happen.
    receipt_api = httpx.get(f"{server.url}/api/v1/private/{plain['metadata_key']}")
    during = (api_share(server, "during the outage"), api_reveal(server, plain["secret_key"]),
              receipt_api)
    for response in during:
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert "unavailable" in response.json()["message"]
        assert "secret_key" not in response.json()
    # The web: a page that says so, for the GET and for the reveal.
    page = f"{server.url}/secret/{plain['secret_key']}"
    receipt_page = f"{server.url}/private/{plain['metadata_key']}"
    for response in (httpx.get(page), httpx.post(page), httpx.get(receipt_page)):
        assert response.status_code == 503
        assert "Temporarily unavailable" in response.text
        assert "plain before" not in response.text
    # Slack: an ephemeral message saying nothing was saved; no link handed out.
    reply = slack_reply(server, fake_slack, "typed during the outage")
    assert reply["response_type"] == "ephemeral"
    assert "unavailable" in str(reply["text"]).lower()
    assert not LINK.search(json.dumps(reply))
    assert "typed during the outage" not in fake_slack.all_text()

    own_redis.start()  # same port, same data directory; the app is not restarted

    deadline = time.monotonic() + 10
    while health(server)["store"] != "reachable":
        assert time.monotonic() < deadline, "the app did not reconnect to Redis"
        time.sleep(0.1)
    # Nothing was lost, and each secret is still delivered exactly once.
    revealed = api_reveal(server, plain["secret_key"])
    assert revealed.json()["value"] == "plain before the outage"
    assert api_reveal(server, plain["secret_key"]).json()["message"] == "Unknown secret"
    assert api_reveal(server, guarded["secret_key"], "pw").json()["value"] == (
        "guarded before the outage"
    )
    assert httpx.post(page).status_code == 404
    # New work goes through again, on every path.
    after = api_share(server, "after the outage").json()
    assert api_reveal(server, after["secret_key"]).json()["value"] == "after the outage"
    reply = slack_reply(server, fake_slack, "typed after the outage")
    assert LINK.search(json.dumps(reply["blocks"]))


@dataclass
class Tally:
    created: dict[str, str] = field(default_factory=dict)  # secret_key -> value
    delivered: dict[str, list[str]] = field(default_factory=dict)
    unsure: set[str] = field(default_factory=set)  # a reveal failed mid-outage
    statuses: list[int] = field(default_factory=list)


def churn(server: ServedApp, tally: Tally, stop: threading.Event) -> None:
    """Create-then-reveal cycles, as a client would run them, through the outage."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            value = f"value-{n}"
            created = client.post("/api/v1/share", data={"secret": value})
            tally.statuses.append(created.status_code)
            if created.status_code != 200:
                continue
            key = created.json()["secret_key"]
            tally.created[key] = value
            revealed = client.post(f"/api/v1/secret/{key}")
            tally.statuses.append(revealed.status_code)
            if revealed.status_code == 200:
                tally.delivered.setdefault(key, []).append(revealed.json()["value"])
            else:
                # A reveal that failed mid-outage may or may not have consumed the
                # secret (OTS_API_V1.md: "a failed reveal may have consumed it").
                tally.unsure.add(key)


def test_requests_in_flight_across_an_outage_never_deliver_twice_or_crash(
    own_redis: RedisServer, app_on_own_redis: ServedApp
) -> None:
    server = app_on_own_redis
    tally, stop = Tally(), threading.Event()
    worker = threading.Thread(target=churn, args=(server, tally, stop))
    worker.start()
    try:
        time.sleep(0.5)
        own_redis.stop()
        time.sleep(0.5)
        own_redis.start()
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert set(tally.statuses) <= {200, 503}, sorted(set(tally.statuses))
    assert 503 in tally.statuses and tally.statuses[-1] == 200
    # Every secret created before, during or after the outage was delivered once,
    # with its own value; those whose reveal failed mid-outage are retried now.
    assert len(tally.created) > 20
    for key in tally.unsure:
        retried = api_reveal(server, key)
        assert retried.status_code in (200, 404)
        if retried.status_code == 200:
            tally.delivered.setdefault(key, []).append(retried.json()["value"])
    for key, value in tally.created.items():
        assert tally.delivered.get(key, [value]) == [value]
        assert key in tally.delivered or key in tally.unsure
    # And none of them is left to be delivered a second time.
    client = redis.Redis.from_url(own_redis.url)
    left = [client.exists(f"ots:{crypto.storage_id('s:', key)}") for key in tally.created]
    client.close()
    assert sum(left) == 0


def test_a_receipt_that_cannot_be_updated_does_not_lose_the_revealed_secret(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    # A real Redis that refuses one key family: the app's user may take secrets
    # (s:, p:, a:, and rl: for its rate limit) but not touch receipts (m:), so the
    # receipt update after the atomic take fails, exactly between "taken" and "answered".
    admin = redis.Redis.from_url(own_redis.url)
    admin.acl_setuser(
        "no-receipts", enabled=True, passwords=["+pw"], commands=["+@all"],
        keys=["ots:s:*", "ots:p:*", "ots:a:*", "ots:rl:*"],
    )
    admin.close()
    limited_url = own_redis.url.replace("redis://", "redis://no-receipts:pw@")
    owner = Settings.from_env({"REDIS_URL": own_redis.url, "DATA_DIR": str(tmp_path)})
    limited = Settings.from_env({"REDIS_URL": limited_url, "DATA_DIR": str(tmp_path)})
    with ServedApp(create_app(owner, scrypt_n=TEST_SCRYPT_N)) as full, \
            ServedApp(create_app(limited, scrypt_n=TEST_SCRYPT_N)) as app:
        created = api_share(full, "taken while receipts are down").json()
        revealed = api_reveal(app, created["secret_key"])
        assert revealed.status_code == 200
        assert revealed.json()["value"] == "taken while receipts are down"
        assert api_reveal(full, created["secret_key"]).json()["message"] == "Unknown secret"
        receipt = httpx.get(f"{full.url}/api/v1/private/{created['metadata_key']}").json()
        assert receipt["state"] in ("new", "viewed")  # stale, but nothing was lost


# -- the Onetime Secret service slow, erroring or answering garbage --------------------


class MisbehavingOTS(LocalHTTPFake):
    """An HTTP server on 127.0.0.1 that answers every request in one bad way."""

    def __init__(self, mode: str) -> None:
        misbehaving = self
        self.mode = mode
        self.requests = 0
        self.paths: list[str] = []
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                misbehaving.requests += 1
                misbehaving.paths.append(self.path)
                misbehaving.answer(self)

            do_POST = do_GET

        self._serve(Handler)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        handler.rfile.read(length)
        if self.mode == "hang":
            self.release.wait(30)  # longer than any client timeout here
        if self.mode in ("hang", "reset"):
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if self.mode == "slow":
            self.release.wait(3)
        status, content_type, body = RESPONSES[self.mode]
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        if status == 302:
            handler.send_header("Location", "https://elsewhere.example/")
        handler.end_headers()
        handler.wfile.write(body)

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        super().__exit__(*exc)


RESPONSES = {
    "slow": (200, "application/json", b'{"status":"nominal"}'),
    "error": (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "garbage": (200, "application/json", b"\x00\xff not json {"),
    "wrong-types": (200, "application/json",
                    b'{"custid":null,"metadata_key":7,"secret_key":[],"ttl":"x","state":{}}'),
    "redirect": (302, "text/html", b""),
}
# "slow" (an answer after the timeout) looks like "hang" to the client; both are
# kept in MisbehavingOTS, one is enough here.
OTS_MODES = ["hang", "reset", *[m for m in RESPONSES if m != "slow"]]
CLIENT_TIMEOUT = 0.5


@pytest.fixture(params=OTS_MODES)
def bad_ots(request: pytest.FixtureRequest) -> Iterator[MisbehavingOTS]:
    with MisbehavingOTS(request.param) as server:
        yield server


@pytest.fixture
def app_on_bad_ots(
    bad_ots: MisbehavingOTS, tmp_path: Path, fake_slack: FakeSlack
) -> Iterator[ServedApp]:
    """The app as create_app builds it for OTS_URL, with a short client timeout injected."""
    from bot.appstore import AppStore
    from bot.backends.onetimesecret import OnetimeSecretBackend, new_client
    from bot.backends.storage.sqlite_storage import SQLiteStorage
    from bot.serverkey import ServerKey
    from bot.slack.app import build_slack
    from bot.web.app import build_app

    settings = Settings.from_env({
        "OTS_URL": bad_ots.url,
        "DATA_DIR": str(tmp_path),
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SERVER_KEY": TEST_SERVER_KEY,
    })
    timeout = httpx.Timeout(CLIENT_TIMEOUT)
    backend = OnetimeSecretBackend(
        new_client(timeout), bad_ots.url, timeout=timeout, read_attempts=2, backoff=0.05
    )
    store = AppStore(SQLiteStorage(tmp_path / "l.sqlite3"), ServerKey.generate())
    slack = build_slack(settings, backend, store)
    with ServedApp(build_app(settings, backend, store, slack.bolt, slack.background)) as server:
        yield server


def test_a_misbehaving_ots_service_gets_clear_messages_and_bounded_waits(
    bad_ots: MisbehavingOTS,
    app_on_bad_ots: ServedApp,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = app_on_bad_ots
    started = time.monotonic()
    reply = slack_reply(server, fake_slack, "secret for a broken service")  # ack < 3 s
    waited = time.monotonic() - started
    assert waited < CLIENT_TIMEOUT + 2, f"{bad_ots.mode}: the answer took {waited:.1f} s"
    text = str(reply["text"])
    assert reply["response_type"] == "ephemeral"
    assert "not saved" in text.lower() or "not shared" in text.lower(), text
    assert "Onetime Secret" in text, text
    assert not LINK.search(text) and "/secret/" not in text
    assert "secret for a broken service" not in fake_slack.all_text()
    assert bad_ots.requests >= 1

    started = time.monotonic()
    body = health(server)
    assert time.monotonic() - started < 2 * CLIENT_TIMEOUT + 2
    assert body["store"] == "unreachable" and body["status"] == "degraded"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "secret for a broken service" not in caplog.text


def test_the_slack_ack_does_not_wait_for_a_hanging_ots_service(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    # Built exactly as `python -m bot` builds it (production timeouts).
    with MisbehavingOTS("hang") as ots:
        settings = Settings.from_env({
            "OTS_URL": ots.url,
            "DATA_DIR": str(tmp_path),
            "SLACK_BOT_TOKEN": fake_slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
        })
        with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
            fake_slack.reset()
            body = command_body("held up", response_url=fake_slack.response_url())
            ack = post_signed(server.url, body)
            assert ack.status_code == 200
            # Acked while the service still holds the share request.
            deadline = time.monotonic() + 5
            while "/api/v1/share" not in ots.paths:
                assert not fake_slack.calls_to("response_url"), "answered before the ack?"
                assert time.monotonic() < deadline, "the share never reached the service"
                time.sleep(0.02)
            assert not ots.release.is_set()
            ots.release.set()  # the service drops the connection without an answer
            reply = fake_slack.wait_for("response_url")[0].body
            assert "not saved" in reply["text"] and "Onetime Secret" in reply["text"]


def test_the_reveal_modal_ack_does_not_wait_for_a_hanging_ots_service(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    import json

    from bot.appstore import load_server_key
    from bot.slack import ids, trust
    from tests.support.slack_requests import interactive_body, signature

    with MisbehavingOTS("hang") as ots:
        settings = Settings.from_env({
            "OTS_URL": ots.url, "DATA_DIR": str(tmp_path),
            "SLACK_BOT_TOKEN": fake_slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
        })
        with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
            metadata = {"k": "a" * 31, "to": "U0BOB", "from": "U0ALICE", "p": 0}
            # As the Reveal button would have made it: signed under the app's key.
            signed = trust.pack(load_server_key(settings), trust.REVEAL_MODAL, metadata)
            view = {"type": "modal", "id": "V0REVEAL", "hash": "h",
                    "callback_id": ids.REVEAL_VIEW, "team_id": "T0TEST",
                    "private_metadata": signed, "state": {"values": {}}}
            fake_slack.views[view["id"]] = view  # the modal the Reveal button opened
            payload = {
                "type": "view_submission", "team": {"id": "T0TEST"},
                "user": {"id": "U0BOB", "team_id": "T0TEST"}, "api_app_id": "A0OTS",
                "trigger_id": fake_slack.new_trigger(), "view": view,
            }
            body = interactive_body(payload)
            now = int(time.time())
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Slack-Request-Timestamp": str(now),
                       "X-Slack-Signature": signature(body, now)}
            try:
                ack = httpx.post(f"{server.url}/slack/events", content=body, headers=headers,
                                 timeout=3.0)  # Slack gives up after 3 s
            finally:
                assert "/api/v1/secret/" + "a" * 31 in ots.paths
                ots.release.set()  # the service now drops the reveal without an answer
            assert ack.status_code == 200 and ack.json()["response_action"] == "update"
            # The reveal was not abandoned: its outcome replaces the "revealing" modal.
            update = fake_slack.wait_for("views.update")[0].body
            assert update["view_id"] == "V0REVEAL"
            assert "Onetime Secret" in json.dumps(update["view"])
