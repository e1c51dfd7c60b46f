"""Bad input and abuse over real HTTP: body cap, malformed bodies, rate limits, passphrase limit."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.backends import crypto
from bot.backends.embedded import EmbeddedStore
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings
from bot.serverkey import ServerKey
from bot.web.app import build_app
from bot.web.limits import RATE_LIMIT_MESSAGE
from tests.support.fake_slack import FakeSlack
from tests.support.servers import TEST_SCRYPT_N, ServedApp, app_store_of

SECRET = "correct horse battery staple"
CAP = 262_144  # MAX_BODY_BYTES by default


def make_store(path: Path, **kwargs: Any) -> EmbeddedStore:
    # A cheap scrypt keeps passphrase tests fast; the production cost is tested elsewhere.
    return EmbeddedStore(
        SQLiteStorage(path), public_url="http://ots.test", scrypt_n=2**10, **kwargs
    )


def serve(env: dict[str, str], store: EmbeddedStore) -> ServedApp:
    settings = Settings.from_env(env)
    return ServedApp(build_app(settings, store, app_store_of(store)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One app for the tests that make their own secrets and change no settings."""
    path = tmp_path_factory.mktemp("abuse")
    with serve({"DATA_DIR": str(path)}, make_store(path / "s.sqlite3")) as server:
        yield server


def share(server: ServedApp, secret: str = SECRET, passphrase: str | None = None) -> str:
    store: EmbeddedStore = server.app.state.backend
    receipt = server.call(store.share(secret, passphrase=passphrase))
    return f"{server.url}/secret/{receipt.secret_key}"


def raw_http(server: ServedApp, request: bytes, *, body_chunks: list[bytes] = ()) -> bytes:
    """Send bytes exactly as given and read the whole answer (Connection: close)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: that is the point
                break
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


# -- body cap -----------------------------------------------------------------


def test_announced_oversized_body_is_refused_before_it_is_sent(served: ServedApp) -> None:
    url = share(served)
    path = url.removeprefix(served.url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {CAP + 1}\r\n\r\n"
    ).encode()
    answer = raw_http(served, head)  # not one byte of the body is sent
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert b"The request body is too large: the limit is 262,144 bytes." in answer
    # Refusing the body did not consume the secret.
    assert "Reveal secret" in httpx.get(url).text


def test_chunked_body_is_counted_as_it_streams(served: ServedApp) -> None:
    url = share(served)
    path = url.removeprefix(served.url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 8  # 512 KiB, no Content-Length
    answer = raw_http(served, head, body_chunks=chunks + [b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert "Reveal secret" in httpx.get(url).text


def test_content_length_smaller_than_the_body_reads_only_what_it_says(
    served: ServedApp,
) -> None:
    # A lying Content-Length cannot smuggle more than it declares into the route:
    # the server reads that many bytes, and the rest is not a valid request.
    url = share(served, passphrase="pw")
    path = url.removeprefix(served.url)
    body = b"passphrase=pw" + b"&x=" + b"a" * (2 * CAP)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 13\r\n\r\n"
    ).encode()
    answer = raw_http(served, head + body)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    assert SECRET.encode() in answer
    assert b"HTTP/1.1 500" not in answer
    assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_body_just_under_the_cap_is_read(served: ServedApp) -> None:
    url = share(served)
    body = b"x=" + b"a" * (CAP - 2)
    response = httpx.post(
        url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert SECRET in response.text


def test_api_paths_get_the_cap_as_ots_json(served: ServedApp) -> None:
    response = httpx.post(
        f"{served.url}/api/v1/share",
        content=b"secret=" + b"a" * CAP,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 404
    assert response.headers["x-ots-intended-status"] == "413"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "message": "The request body is too large: the limit is 262,144 bytes. "
        "Nothing was stored."
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [("9" * 20, 413), ("1" * 7, 413)],
)
def test_huge_content_length_values(served: ServedApp, value: str, expected: int) -> None:
    head = (
        f"POST /secret/{'a' * 31} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {value}\r\n\r\n"
    ).encode()
    answer = raw_http(served, head)
    assert answer.startswith(f"HTTP/1.1 {expected} ".encode()), answer[:100]


def test_max_body_bytes_must_fit_the_largest_secret() -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as err:
        Settings.from_env({"MAX_BODY_BYTES": "1000"})
    assert err.value.variable == "MAX_BODY_BYTES"
    assert "largest secret" in str(err.value)
    grown = Settings.from_env({"MAX_SECRET_BYTES": "200000"})
    assert grown.max_body_bytes == 3 * 200_000 + 65_536


# -- malformed bodies on the reveal page -----------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/x-www-form-urlencoded", b"passphrase=\xff\xfe", "not valid UTF-8"),
        ("text/plain", b"\xc3\x28", "not valid UTF-8"),
        ("multipart/form-data; boundary=xyz", b"garbage garbage", "multipart"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition form-data\r\n"
         b"\r\nv\r\n--xyz--\r\n", "multipart"),
        ("multipart/form-data", b"--a\r\n\r\n", "multipart"),
    ],
)
def test_malformed_reveal_bodies_get_400_and_keep_the_secret(
    served: ServedApp, content_type: str, body: bytes, message: str
) -> None:
    url = share(served)
    response = httpx.post(url, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert message in response.text
    assert SECRET not in response.text
    assert "Reveal secret" in httpx.get(url).text


def test_nul_bytes_and_huge_forms_do_not_break_the_reveal_page(served: ServedApp) -> None:
    url = share(served, passphrase="pw")
    many_fields = b"&".join(b"f%d=%d" % (i, i) for i in range(20_000))
    for body in (b"passphrase=%00pw%00", b"passphrase=\x00", many_fields):
        response = httpx.post(
            url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 404  # a wrong passphrase, like any other
    response = httpx.post(url, data={"passphrase": "pw"})
    assert response.status_code == 200
    assert SECRET in response.text


@pytest.mark.parametrize("encoding", ["form", "multipart"])
def test_a_secret_over_max_secret_bytes_is_refused_with_the_reason(
    served: ServedApp, encoding: str
) -> None:
    secret = "é" * 5_001  # 10,002 bytes of UTF-8: characters are not what counts
    if encoding == "form":
        response = httpx.post(f"{served.url}/api/v1/share", data={"secret": secret})
    else:
        response = httpx.post(f"{served.url}/api/v1/share", files={"secret": (None, secret)})
    assert response.status_code == 404
    assert response.headers["x-ots-intended-status"] == "400"
    assert response.json()["message"] == (
        "The secret is too long: 10,002 bytes; the limit is 10,000 bytes."
    )


def test_a_secret_with_a_nul_is_refused_with_the_reason(served: ServedApp) -> None:
    response = httpx.post(f"{served.url}/api/v1/share", data={"secret": "hunter2\x00rest"})
    assert response.status_code == 404
    assert response.headers["x-ots-intended-status"] == "400"
    assert "NUL character" in response.json()["message"]
    assert "hunter2" not in response.text


def test_huge_and_malformed_forms_on_the_api_get_a_clear_4xx(served: ServedApp) -> None:
    url = f"{served.url}/api/v1/share"
    many = b"&".join(b"f%d=%d" % (i, i) for i in range(20_000)) + b"&secret=kept"
    response = httpx.post(url, content=many,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200  # unknown parameters are ignored, as OTS does
    boundary = b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n"
    too_many_parts = boundary * 1_500 + b"--b--\r\n"
    for body in (too_many_parts, b"--b\r\nno headers at all"):
        response = httpx.post(url, content=body,
                              headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert response.status_code == 404
        assert response.headers["x-ots-intended-status"] == "400"
        assert response.json() == {"message": "The multipart body could not be parsed."}


# -- rate limits ----------------------------------------------------------------


def limited_app(tmp_path: Path, **env: str) -> ServedApp:
    store = make_store(tmp_path / "limited.sqlite3")
    return serve({"DATA_DIR": str(tmp_path), "RATE_LIMIT_WINDOW": "600", **env}, store)


def test_reveal_attempts_are_limited_per_address_on_the_page(tmp_path: Path) -> None:
    with limited_app(tmp_path, RATE_LIMIT_REVEAL="3") as server:
        unknown = f"{server.url}/secret/{crypto.new_key()}"
        for _ in range(3):
            assert httpx.post(unknown).status_code == 404
        url = share(server)
        refused = httpx.post(url)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert "Too many reveal attempts from your address" in refused.text
        assert refused.headers["cache-control"] == "no-store"
        # Refused, not consumed; the GET page (which never consumes) is not limited.
        assert "Reveal secret" in httpx.get(url).text


def test_reveal_limit_on_the_api_speaks_ots(tmp_path: Path) -> None:
    with limited_app(tmp_path, RATE_LIMIT_REVEAL="2") as server:
        key = crypto.new_key()
        for _ in range(2):
            httpx.post(f"{server.url}/api/v1/secret/{key}")
        refused = httpx.post(f"{server.url}/api/v1/secret/{key}")
        assert refused.status_code == 404
        assert refused.headers["x-ots-intended-status"] == "429"
        assert refused.json() == {"message": RATE_LIMIT_MESSAGE}
        assert int(refused.headers["retry-after"]) > 0


def test_creation_limit_on_the_api_speaks_ots(tmp_path: Path) -> None:
    with limited_app(tmp_path, RATE_LIMIT_CREATE="2", RATE_LIMIT_REVEAL="0") as server:
        for path in ("/api/v1/share", "/api/v1/generate"):
            httpx.post(f"{server.url}{path}", data={"secret": "s"})
        refused = httpx.post(f"{server.url}/api/v1/share", data={"secret": "s3"})
        assert refused.status_code == 404
        assert refused.headers["x-ots-intended-status"] == "429"
        assert refused.json() == {"message": RATE_LIMIT_MESSAGE}
        # Reveals are counted apart, and that limit is off here.
        for _ in range(5):
            url = share(server)
            assert httpx.post(url).status_code == 200


def proxied_app(tmp_path: Path, trusted: str, monkeypatch: pytest.MonkeyPatch) -> ServedApp:
    """Served as `python -m bot` serves it: uvicorn's proxy_headers, FORWARDED_ALLOW_IPS."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", trusted)  # uvicorn reads it, not our Settings
    store = make_store(tmp_path / "proxied.sqlite3")
    env = {"DATA_DIR": str(tmp_path), "RATE_LIMIT_REVEAL": "1", "RATE_LIMIT_WINDOW": "600"}
    return serve(env, store)


def reveal_from(server: ServedApp, forwarded_for: str) -> int:
    url = f"{server.url}/secret/{crypto.new_key()}"
    return httpx.post(url, headers={"X-Forwarded-For": forwarded_for}).status_code


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with proxied_app(tmp_path, "127.0.0.1", monkeypatch) as server:
        assert reveal_from(server, "203.0.113.7") == 404
        assert reveal_from(server, "198.51.100.2") == 404  # another client
        assert reveal_from(server, "203.0.113.7") == 429
        # Prepending addresses does not escape: the right-most untrusted one counts.
        assert reveal_from(server, "192.0.2.99, 203.0.113.7") == 429


def test_forwarded_headers_from_untrusted_peers_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with proxied_app(tmp_path, "10.9.9.9", monkeypatch) as server:
        assert reveal_from(server, "203.0.113.7") == 404
        # The peer (127.0.0.1) is not a trusted proxy: its header cannot pick a bucket.
        assert reveal_from(server, "198.51.100.2") == 429


def test_client_addresses_are_not_stored_in_clear() -> None:
    import asyncio

    from bot.web.limits import RateLimiter

    seen: list[str] = []

    class Counts:
        async def incr(self, key: str, ttl: int) -> int:
            seen.append(key)
            return seen.count(key)

    limiter = RateLimiter(
        Counts(), {"reveal": 1}, 60, key=ServerKey.generate(), clock=lambda: 130.0
    )
    first = asyncio.run(limiter.hit("reveal", "203.0.113.7"))
    again = asyncio.run(limiter.hit("reveal", "203.0.113.7"))
    assert (first.allowed, again.allowed) == (True, False)
    assert again.retry_after == 50  # until the window turns at 180
    assert not any("203.0.113.7" in key for key in seen)


def test_each_window_and_client_counts_apart() -> None:
    """Counter names are remembered per client and window: a new window, or another
    client, gets a new name (a fresh count), never the last one's."""
    import asyncio

    from bot.web.limits import RateLimiter

    seen: list[str] = []

    class Counts:
        async def incr(self, key: str, ttl: int) -> int:
            seen.append(key)
            return seen.count(key)

    now = [130.0]
    limiter = RateLimiter(
        Counts(), {"reveal": 1}, 60, key=ServerKey.generate(), clock=lambda: now[0]
    )
    assert asyncio.run(limiter.hit("reveal", "203.0.113.7")).allowed
    assert not asyncio.run(limiter.hit("reveal", "203.0.113.7")).allowed
    assert asyncio.run(limiter.hit("reveal", "198.51.100.2")).allowed
    now[0] = 180.0  # the next window
    assert asyncio.run(limiter.hit("reveal", "203.0.113.7")).allowed
    assert len(set(seen)) == 3


def test_limit_is_shared_by_two_apps_on_one_store(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "RATE_LIMIT_REVEAL": "4", "RATE_LIMIT_WINDOW": "600"}
    key = ServerKey.generate()  # replicas share SERVER_KEY (or the key file)
    one = make_store(tmp_path / "shared.sqlite3", server_key=key)
    two = make_store(tmp_path / "shared.sqlite3", server_key=key)
    with serve(env, one) as first, serve(env, two) as second:
        statuses = [
            httpx.post(f"{server.url}/secret/{crypto.new_key()}").status_code
            for server in (first, second, first, second, first, second)
        ]
    assert statuses == [404, 404, 404, 404, 429, 429]


# -- the wrong-passphrase limit, per secret -----------------------------------------


def test_wrong_passphrases_burn_the_secret_after_the_limit(tmp_path: Path) -> None:
    store = make_store(tmp_path / "p.sqlite3", passphrase_attempts=3)
    with serve({"DATA_DIR": str(tmp_path)}, store) as server:
        url = share(server, passphrase="right one")
        other = share(server, passphrase="right one")
        for attempt in range(3):
            response = httpx.post(url, data={"passphrase": f"wrong {attempt}"})
            assert response.status_code == 404
            assert SECRET not in response.text
        # Burned now: even the right passphrase finds nothing.
        assert httpx.post(url, data={"passphrase": "right one"}).status_code == 404
        assert httpx.get(url).status_code == 404
        # The limit is per secret: another secret is untouched.
        response = httpx.post(other, data={"passphrase": "right one"})
        assert response.status_code == 200
        assert SECRET in response.text


# -- replayed Slack requests ------------------------------------------------------


def signed_headers(body: bytes, timestamp: int) -> dict[str, str]:
    from tests.support.slack_requests import signature

    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature(body, timestamp),
    }


def slack_app(env: dict[str, str]) -> ServedApp:
    from bot.web.app import create_app

    return ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N))


def test_a_replayed_slack_request_is_processed_once(
    app_env: dict[str, str], fake_slack: FakeSlack
) -> None:
    import time

    from tests.support.slack_requests import command_body

    body = command_body("replayed secret", response_url=fake_slack.response_url())
    headers = signed_headers(body, int(time.time()))
    # Two replicas on one store: a replay sent to the other one is caught too.
    with slack_app(app_env) as first, slack_app(app_env) as second:
        assert httpx.post(f"{first.url}/slack/events", content=body, headers=headers).is_success
        fake_slack.wait_for("response_url")
        for server in (first, second, first):
            replayed = httpx.post(f"{server.url}/slack/events", content=body, headers=headers)
            assert replayed.status_code == 200
            assert replayed.content == b""
        # The same command, signed anew (a new timestamp): a request of its own.
        fresh = signed_headers(body, int(time.time()) + 1)
        assert httpx.post(f"{second.url}/slack/events", content=body, headers=fresh).is_success
        fake_slack.wait_for("response_url", 2)
        time.sleep(0.5)  # room for a wrongly processed replay to show up
    assert len(fake_slack.calls_to("response_url")) == 2
    assert "replayed secret" not in fake_slack.all_text()


def test_replay_records_live_as_long_as_the_signature_is_valid(tmp_path: Path) -> None:
    import asyncio

    from bot.slack.replay import ReplayGuard

    now = [1_000_000.0]
    store = SQLiteStorage(tmp_path / "once.sqlite3", clock=lambda: now[0])
    guard = ReplayGuard(store, clock=lambda: now[0])

    async def seen(signature: str, timestamp: int) -> bool:
        return not await guard.first_time(signature, str(timestamp))

    async def scenario() -> list[bool]:
        stamped_ahead = int(now[0]) + 300  # a clock 5 minutes fast: valid for 10
        results = [await seen("v0=a", stamped_ahead), await seen("v0=a", stamped_ahead)]
        now[0] += 599
        results.append(await seen("v0=a", stamped_ahead))  # still valid, still caught
        now[0] += 3
        results.append(await seen("v0=a", stamped_ahead))  # Bolt refuses it by now
        await store.close()
        return results

    assert asyncio.run(scenario()) == [False, True, True, False]


# -- malformed Slack requests -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/x-www-form-urlencoded", b"command=/ots&text=\xff\xfe", "not valid UTF-8"),
        ("application/x-www-form-urlencoded", b"payload=%7Bnot+json", "not valid JSON"),
        ("application/x-www-form-urlencoded", b"payload=%5B1%2C2%5D", "not a JSON object"),
        ("application/x-www-form-urlencoded", b"{garbage", "cannot start with '{'"),
        ("application/json", b"[1, 2]", "not a JSON object"),
        ("application/json", b'{"type": "event_callback", "event": 5}', "'event'"),
        ("application/x-www-form-urlencoded",
         b"payload=" + json.dumps({"type": "block_actions", "actions": "x"}).encode(),
         "'actions'"),
        ("application/x-www-form-urlencoded",
         b"payload=" + json.dumps({"type": "view_submission",
                                   "view": {"callback_id": "c", "state": {"values": 5}}}).encode(),
         "view state"),
    ],
)
def test_malformed_slack_requests_get_400_with_the_reason(
    served_slack: ServedApp, fake_slack: FakeSlack, content_type: str, body: bytes, reason: str
) -> None:
    import time

    headers = {**signed_headers(body, int(time.time())), "Content-Type": content_type}
    response = httpx.post(f"{served_slack.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 400
    assert response.text.startswith("Bad Slack request: ") and reason in response.text
    # Unsigned, the same body is refused as well, never with a 500.
    unsigned = httpx.post(f"{served_slack.url}/slack/events", content=body,
                          headers={"Content-Type": content_type})
    assert 400 <= unsigned.status_code < 500


def test_a_command_that_mentions_payload_is_not_dropped(
    served_slack: ServedApp, fake_slack: FakeSlack
) -> None:
    # Bolt's own parser takes any form body containing "payload" for an
    # interactive payload, and would leave this command unanswered.
    from tests.support.slack_requests import command_body, post_signed

    body = command_body("the payload password", response_url=fake_slack.response_url())
    assert post_signed(served_slack.url, body).status_code == 200
    reply = fake_slack.wait_for("response_url")[0].body
    assert "http://ots.test/secret/" in json.dumps(reply["blocks"])
    assert "payload password" not in fake_slack.all_text()


def test_slack_requests_may_carry_whole_messages_up_to_1_mib(
    served_slack: ServedApp, fake_slack: FakeSlack
) -> None:
    import time

    from bot.slack import ids

    # A message shortcut on a long non-ASCII message: over MAX_BODY_BYTES once
    # percent-encoded, still a request Slack sends.
    message = {"type": "message", "ts": "1700000000.000100", "user": "U0BOB",
               "text": "é" * 40_000, "blocks": [{"type": "section", "text": {
                   "type": "mrkdwn", "text": "ü" * 3_000}}] * 10}
    payload = {"type": "message_action", "callback_id": ids.MESSAGE_SHORTCUT,
               "team": {"id": "T0TEST"}, "user": {"id": "U0ALICE", "team_id": "T0TEST"},
               "channel": {"id": "C0GENERAL"}, "trigger_id": fake_slack.new_trigger(),
               "response_url": fake_slack.response_url(), "message": message,
               "message_ts": message["ts"], "api_app_id": "A0OTS"}
    from tests.support.slack_requests import interactive_body

    body = interactive_body(payload)
    assert CAP < len(body) < 1024 * 1024
    response = httpx.post(f"{served_slack.url}/slack/events", content=body,
                          headers=signed_headers(body, int(time.time())))
    assert response.status_code == 200
    too_big = b"payload=" + b"a" * (1024 * 1024)
    refused = httpx.post(f"{served_slack.url}/slack/events", content=too_big,
                         headers=signed_headers(too_big, int(time.time())))
    assert refused.status_code == 413


@pytest.fixture
def served_slack(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[ServedApp]:
    from tests.support.slack_requests import SIGNING_SECRET

    env = {"DATA_DIR": str(tmp_path), "PUBLIC_URL": "http://ots.test",
           "SLACK_BOT_TOKEN": fake_slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake_slack.api_url}
    with slack_app(env) as server:
        yield server


@pytest.mark.parametrize(("address", "prefix", "bucket"), [
    ("203.0.113.7", 64, "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:fffe", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2:aaaa::1", 48, "2001:db8:1::/48"),
    ("2001:db8:1:2:aaaa::1", 128, "2001:db8:1:2:aaaa::1/128"),
    ("::ffff:203.0.113.7", 64, "203.0.113.7"),
    ("unix-socket", 64, "unix-socket"),
])
def test_ipv6_clients_are_counted_per_network(address: str, prefix: int, bucket: str) -> None:
    from bot.web.limits import client_bucket

    assert client_bucket(address, prefix) == bucket


def test_one_ipv6_network_shares_one_limit() -> None:
    import asyncio

    from bot.web.limits import RateLimiter

    seen: list[str] = []

    class Counts:
        def __init__(self) -> None:
            self.counts: dict[str, int] = {}

        async def incr(self, key: str, ttl: int) -> int:
            seen.append(key)
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    limiter = RateLimiter(Counts(), {"reveal": 2}, 60, key=ServerKey.generate(),
                          clock=lambda: 130.0)
    addresses = [f"2001:db8:0:7::{n:x}" for n in range(1, 5)]
    allowed = [asyncio.run(limiter.hit("reveal", a)).allowed for a in addresses]
    assert allowed == [True, True, False, False]
    assert len(set(seen)) == 1 and not any("2001" in key for key in seen)
    # Another /64 has a bucket of its own.
    assert asyncio.run(limiter.hit("reveal", "2001:db8:0:8::1")).allowed
