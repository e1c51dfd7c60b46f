"""Property-based tests (hypothesis) over real HTTP: the API's parameters and Slack payloads.

Whatever a client sends, in whatever encoding, the server answers without a 500,
and no error answer carries a secret or passphrase the client sent. What is
shared comes back exactly. Signed Slack requests of any shape, including ones
Slack would never send, get an answer below 500 as well.

Examples are bounded (max_examples, deadline=None) to keep the suite fast; one
server per module serves them all.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.slack import ids
from bot.web.app import create_app
from tests.support.fake_slack import FakeSlack
from tests.support.servers import ServedApp
from tests.support.slack_requests import SIGNING_SECRET, signature

BOUNDED = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Any text a client can send: every code point except lone surrogates (not UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
SECRET_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
NAMES = st.sampled_from(
    ["secret", "passphrase", "ttl", "recipient", "recipient[]", "length", "share_domain",
     "secret[]", "custid", "value"]
) | TEXT
ENCODINGS = st.sampled_from(["query", "form", "multipart", "json", "none"])


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> Iterator[ServedApp]:
    path: Path = tmp_path_factory.mktemp("props")
    env = {
        "DATA_DIR": str(path), "PUBLIC_URL": "http://ots.test",
        "RATE_LIMIT_CREATE": "0", "RATE_LIMIT_REVEAL": "0",
        "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=2**10)) as served:
        yield served


@pytest.fixture(scope="module")
def http(server: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


class LogLines(logging.Handler):
    """Every log line the app writes at INFO and above (as in production), tracebacks too."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


SENT: set[str] = set()  # every value a test sent that must never be logged


@pytest.fixture(scope="module", autouse=True)
def log_lines() -> Iterator[list[str]]:
    handler, root = LogLines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def remember(values: list[str]) -> None:
    # Short values, and lowercase words (hypothesis also tries the identifiers in
    # this module, like "action_id"), would match a log line's own words.
    SENT.update(
        v for v in values if len(v.strip()) >= 8 and not re.fullmatch(r"[a-z_ ]+", v)
    )


def send(
    http: httpx.Client, method: str, path: str, params: list[tuple[str, str]], encoding: str
) -> httpx.Response:
    if encoding == "query" or method == "GET":
        return http.request(method, path, params=params)
    if encoding == "form":
        return http.request(
            method, path, content=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    if encoding == "multipart":
        files = [(name, (None, value.encode())) for name, value in params] or None
        return http.request(method, path, files=files, data={"_": "_"} if not files else None)
    if encoding == "json":
        return http.request(method, path, json=dict(params))
    return http.request(method, path, content=urlencode(params).encode())


def assert_no_leak(response: httpx.Response, sent: list[str]) -> None:
    if response.status_code == 200:
        return
    for value in sent:
        if len(value) >= 4:
            assert value not in response.text, (response.status_code, response.text)


# -- the API ------------------------------------------------------------------------


@BOUNDED
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
    path=st.sampled_from([
        "/api/v1/share", "/api/v1/generate", "/api/v1/secret/{key}", "/api/v1/private/{key}",
        "/api/v1/private/{key}/burn", "/api/v1/metadata/{key}", "/api/v1/status",
        "/api/v1/private/recent", "/api/v1/authcheck", "/secret/{key}", "/private/{key}",
    ]),
    key=st.sampled_from(["a" * 31, "0" * 62, "x", "%00", "..%2F..", "%ff%fe"]) | TEXT.filter(
        lambda k: "/" not in k and k.strip() != ""
    ),
    params=st.lists(st.tuples(NAMES, TEXT), max_size=6),
    encoding=ENCODINGS,
    auth=st.sampled_from([None, "Basic Og==", "Basic !!!", "Bearer x", "Basic " + "A" * 300]),
)
def test_any_api_request_is_answered_without_a_500_or_a_leak(
    http: httpx.Client, method: str, path: str, key: str, params: list[tuple[str, str]],
    encoding: str, auth: str | None,
) -> None:
    from urllib.parse import quote

    url = path.replace("{key}", quote(key, safe="%"))
    headers = {"Authorization": auth} if auth else {}
    http.headers.update(headers)
    try:
        response = send(http, method, url, params, encoding)
    finally:
        for name in headers:
            del http.headers[name]
    remember([value for _, value in params if value not in key])
    assert response.status_code < 500, response.text
    if url.startswith("/api/"):
        assert response.headers["content-type"].startswith("application/json")
        json.loads(response.text)
    # v1 echoes the key from the path in "Unknown secret": that is the caller's own key.
    assert_no_leak(response, [value for _, value in params if value not in key])


@BOUNDED
@given(
    secret=SECRET_TEXT,
    passphrase=st.none() | SECRET_TEXT,
    encoding=st.sampled_from(["query", "form", "multipart", "json"]),
    ttl=st.none() | st.integers(-10, 10**10).map(str) | TEXT,
)
def test_what_is_shared_comes_back_exactly_once(
    http: httpx.Client, secret: str, passphrase: str | None, encoding: str, ttl: str | None
) -> None:
    params = [("secret", secret)]
    params += [("passphrase", passphrase)] if passphrase else []
    remember([secret, passphrase or ""])
    params += [("ttl", ttl)] if ttl is not None else []
    created = send(http, "POST", "/api/v1/share", params, encoding)
    if "\x00" in secret:
        # Refused with a reason (no page can show a NUL), never stored changed.
        assert created.headers["x-ots-intended-status"] == "400"
        assert "NUL" in created.json()["message"]
        return
    assert created.status_code == 200, created.text
    receipt = created.json()
    assert receipt["passphrase_required"] is bool(passphrase)
    assert 60 <= receipt["ttl"] <= 30 * 86400
    key = receipt["secret_key"]
    if passphrase:
        wrong = send(http, "POST", f"/api/v1/secret/{key}", [("passphrase", passphrase + "x")],
                     encoding)
        assert wrong.json() == {"message": "Unknown secret", "secret_key": key}
    revealed = send(http, "POST", f"/api/v1/secret/{key}",
                    [("passphrase", passphrase)] if passphrase else [], encoding)
    assert revealed.json() == {"value": secret, "secret_key": key}
    again = send(http, "POST", f"/api/v1/secret/{key}",
                 [("passphrase", passphrase)] if passphrase else [], encoding)
    assert again.json()["message"] == "Unknown secret"
    assert secret not in again.text or len(secret) < 4


@BOUNDED
@given(
    content_type=st.sampled_from([
        "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
        "multipart/form-data", "text/plain", "application/json", "", "application/octet-stream",
    ]),
    body=st.binary(max_size=400),
    target=st.sampled_from(["/api/v1/share", "/api/v1/secret/" + "a" * 31, "/secret/" + "a" * 31,
                            "/api/v1/generate"]),
)
def test_raw_bytes_of_any_type_never_cause_a_500(
    http: httpx.Client, content_type: str, body: bytes, target: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(target, content=body, headers=headers)
    assert response.status_code < 500, response.text


# -- Slack payloads -------------------------------------------------------------------


def post_slack(http: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    now = int(time.time())
    return http.post("/slack/events", content=body, headers={
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": signature(body, now),
    })


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
IDS = st.sampled_from([
    ids.SHARE_VIEW, ids.REVEAL_VIEW, ids.GENERATED_VIEW, ids.SHARE_SHORTCUT,
    ids.MESSAGE_SHORTCUT, ids.BURN_ACTION, ids.REVEAL_ACTION, ids.OPEN_LINK_ACTION,
]) | TEXT
FIELD_VALUES = JSON_VALUES | IDS | st.fixed_dictionaries({"id": TEXT}) | st.fixed_dictionaries(
    {"callback_id": IDS, "private_metadata": TEXT,
     "state": st.fixed_dictionaries({"values": st.dictionaries(
         st.sampled_from([ids.SECRET_BLOCK, ids.PASSPHRASE_BLOCK, ids.TTL_BLOCK,
                          ids.RECIPIENTS_BLOCK, ids.REVEAL_PASSPHRASE_BLOCK]) | TEXT,
         st.dictionaries(TEXT | IDS, st.dictionaries(TEXT, JSON_VALUES, max_size=3),
                         max_size=2), max_size=3)})}
)
PAYLOADS = st.fixed_dictionaries(
    {"type": st.sampled_from([
        "block_actions", "view_submission", "view_closed", "message_action", "shortcut",
        "block_suggestion", "interactive_message", "event_callback",
    ]) | JSON_VALUES},
    optional={
        name: FIELD_VALUES for name in (
            "user", "team", "channel", "view", "actions", "message", "callback_id",
            "trigger_id", "response_url", "container", "enterprise", "api_app_id",
            "authorizations", "event", "is_enterprise_install",
        )
    },
)


@BOUNDED
@given(payload=PAYLOADS, as_json=st.booleans())
def test_any_signed_interactive_payload_is_answered_below_500(
    http: httpx.Client, payload: dict[str, Any], as_json: bool
) -> None:
    if as_json:
        response = post_slack(http, json.dumps(payload).encode(), "application/json")
    else:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        response = post_slack(http, body, "application/x-www-form-urlencoded")
    assert response.status_code < 500, (response.status_code, response.text)


COMMAND_TEXT = st.one_of(
    TEXT,
    st.lists(st.sampled_from([
        "payload", "&amp;", "&lt;", "&gt;", "<@U0BOB>", "<@U0BOB|bob>", "<http://x.test|x>",
        "<mailto:a@b.test>", "gen", "help", " ", "{", "%", "\n", "<#C1|c>", "<!here>",
    ]) | TEXT, max_size=6).map("".join),
)


@BOUNDED
@given(
    text=COMMAND_TEXT,
    extra=st.lists(st.tuples(TEXT, TEXT), max_size=3),
    command=st.sampled_from([ids.COMMAND, "/other", ""]),
)
def test_any_signed_slash_command_is_answered_below_500_and_never_echoes_the_text(
    http: httpx.Client, slack: FakeSlack, text: str, extra: list[tuple[str, str]], command: str
) -> None:
    fields = [
        *extra, ("command", command), ("text", text), ("team_id", "T0TEST"),
        ("user_id", "U0ALICE"), ("channel_id", "C0GENERAL"),
        ("response_url", slack.response_url()), ("trigger_id", slack.new_trigger()),
    ]
    remember([text])
    response = post_slack(http, urlencode(fields).encode(), "application/x-www-form-urlencoded")
    assert response.status_code < 500, (response.status_code, response.text)
    if len(text.strip()) >= 4 and text.strip().lower() not in ("help", "gen"):
        assert text not in response.text


@BOUNDED
@given(body=st.binary(max_size=300), content_type=st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "text/plain", "",
]))
def test_any_signed_body_is_answered_below_500(
    http: httpx.Client, body: bytes, content_type: str
) -> None:
    response = post_slack(http, body, content_type)
    assert response.status_code < 500, (response.status_code, response.text)


def test_nothing_the_tests_sent_was_logged(
    log_lines: list[str], slack: FakeSlack, server: ServedApp
) -> None:
    """After the HTTP tests above: every secret, passphrase and command text they sent."""
    time.sleep(0.5)  # Slack work after the acks may still be logging
    if not SENT:
        pytest.skip("checks what the tests above sent: run it with them")
    logged = "\n".join(log_lines)
    leaked = sorted(value for value in SENT if value in logged)
    assert not leaked, leaked[:5]
    assert not [line for line in log_lines if "Traceback" in line]


# -- the Slack text parsers, alone -------------------------------------------------------


def slack_escape(text: str) -> str:
    """What Slack does to typed text with should_escape: true."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@settings(max_examples=300, deadline=None)
@given(typed=TEXT)
def test_unescape_gives_back_exactly_what_was_typed(typed: str) -> None:
    from bot.slack.text import unescape

    assert unescape(slack_escape(typed)) == typed


@settings(max_examples=300, deadline=None)
@given(typed=TEXT)
def test_a_message_without_markup_is_copied_exactly(typed: str) -> None:
    from bot.slack.text import readable

    assert readable(slack_escape(typed)) == typed


@settings(max_examples=300, deadline=None)
@given(
    users=st.lists(st.from_regex(r"[UW][A-Z0-9]{2,10}", fullmatch=True), max_size=3),
    labels=st.booleans(),
    typed=TEXT,
)
def test_leading_mentions_split_off_and_the_secret_is_kept_whole(
    users: list[str], labels: bool, typed: str
) -> None:
    from bot.slack.text import split_mentions, unescape

    mentions = "".join(f"<@{u}|{u.lower()}> " if labels else f"<@{u}> " for u in users)
    recipients, rest = split_mentions(mentions + slack_escape(typed))
    assert list(recipients) == list(dict.fromkeys(users))
    # One separating space belongs to the command; everything after is the secret.
    assert unescape(rest) == typed
