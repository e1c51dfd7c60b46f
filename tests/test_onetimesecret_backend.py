"""The Onetime Secret client against recorded shapes of the real service (httpx.MockTransport).

The bodies below are what onetimesecret.com and its older releases answer: numbers
as strings (as in the docs) or integers, extra fields, every error string, an HTML
502 page from the load balancer, timeouts. Each test also checks what was sent:
form-encoded bodies, Basic credentials on the first request, and share and
reveal attempted exactly once whatever goes wrong.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.backends.onetimesecret import (
    MAX_RESPONSE_BYTES,
    OnetimeSecretBackend,
    new_client,
    origin_of,
    parse_receipt,
)
from bot.errors import (
    BackendUnavailable,
    InvalidRequest,
    NotAuthorized,
    RateLimited,
    SecretNotFound,
)
from tests.support.fake_ots import streamed
from tests.support.hostile_http import MIB, HostileServer, bomb, drip, endless, gzip_bomb

ORIGIN = "https://eu.onetimesecret.com"
USER, TOKEN = "alice@example.com", "0123456789abcdef-api-token"
SECRET_KEY = "2i0eb2m2n7kfbvnlb1gt2ofyzifbtr5"
METADATA_KEY = "qjpjroeit8wra0ojeyhcw5pjsgwtuq7"
PASSPHRASE = "open sesame"

# The receipt as the docs show it: numbers as strings, plus fields we do not know.
SHARE_DOCS_SHAPE = {
    "custid": USER, "metadata_key": METADATA_KEY, "secret_key": SECRET_KEY,
    "ttl": "3600", "metadata_ttl": "7200", "secret_ttl": "3600", "state": "new",
    "updated": "1700000000", "created": "1700000000", "recipient": [],
    "passphrase_required": True, "share_domain": "", "has_passphrase": True,
    "shortkey": "2i0eb2m2",
}
# What every server since 2018 sends: integers.
SHARE_LIVE_SHAPE = {**SHARE_DOCS_SHAPE, "ttl": 3600, "metadata_ttl": 7200, "secret_ttl": 3600,
                    "updated": 1700000000, "created": 1700000000, "passphrase_required": False}
RECEIVED = {
    "custid": USER, "metadata_key": METADATA_KEY, "ttl": 3600, "metadata_ttl": 5000,
    "state": "received", "updated": 1700000100, "created": 1700000000,
    "received": 1700000100, "recipient": ["al***@example.com"], "passphrase_required": False,
}
HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler answering scripted responses in order, recording requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return streamed(answer)

    def form(self, index: int = 0) -> dict[str, list[str]]:
        request = self.requests[index]
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        return parse_qs(request.content.decode(), keep_blank_values=True)


def backend_for(recorder: Recorder, *, credentials: bool = True,
                **options: Any) -> OnetimeSecretBackend:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    auth = {"username": USER, "api_token": TOKEN} if credentials else {}
    return OnetimeSecretBackend(client, ORIGIN, backoff=0, **auth, **options)


Call = Callable[[OnetimeSecretBackend], Coroutine[Any, Any, Any]]


def run(backend: OnetimeSecretBackend, call: Call) -> Any:
    async def go() -> Any:
        try:
            return await call(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def error(message: str, **extra: str) -> httpx.Response:
    return httpx.Response(404, json={"message": message, **extra})


def basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def assert_discreet(exc: BaseException, *words: str) -> None:
    text = str(exc)
    for word in (TOKEN, SECRET_KEY, METADATA_KEY, PASSPHRASE, *words):
        assert word not in text


# -- what is sent -------------------------------------------------------------


def test_share_is_form_encoded_with_preemptive_basic_auth():
    recorder = Recorder(ok(SHARE_LIVE_SHAPE))
    secret = "pa ss&word=1%+\n"  # characters form encoding must carry, a trailing newline
    run(backend_for(recorder),
        lambda b: b.share(secret, ttl=3600, passphrase=PASSPHRASE, recipient=("bob@example.com",)))

    [request] = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"{ORIGIN}/api/v1/share"
    assert request.headers["authorization"] == basic(USER, TOKEN)
    assert recorder.form() == {"secret": [secret], "ttl": ["3600"], "passphrase": [PASSPHRASE],
                               "recipient": ["bob@example.com"]}


def test_anonymous_share_sends_no_credentials_and_only_what_was_asked():
    recorder = Recorder(ok({**SHARE_LIVE_SHAPE, "custid": "anon"}))
    receipt = run(backend_for(recorder, credentials=False), lambda b: b.share("s3cret"))
    assert "authorization" not in recorder.requests[0].headers
    assert recorder.form() == {"secret": ["s3cret"]}
    assert receipt.custid == "anon"


def test_several_recipients_are_sent_as_a_rack_array():
    recorder = Recorder(ok(SHARE_LIVE_SHAPE))
    run(backend_for(recorder), lambda b: b.share("x", recipient=("a@x.test", "b@x.test")))
    assert recorder.form()["recipient[]"] == ["a@x.test", "b@x.test"]


def test_reveal_posts_the_passphrase_form_encoded():
    recorder = Recorder(ok({"value": "the secret\n", "secret_key": SECRET_KEY,
                            "share_domain": ""}))
    revealed = run(backend_for(recorder), lambda b: b.reveal(SECRET_KEY, PASSPHRASE))
    assert revealed.value == "the secret\n" and revealed.secret_key == SECRET_KEY
    [request] = recorder.requests
    assert (request.method, str(request.url)) == ("POST", f"{ORIGIN}/api/v1/secret/{SECRET_KEY}")
    assert request.headers["authorization"] == basic(USER, TOKEN)
    assert recorder.form() == {"passphrase": [PASSPHRASE]}


def test_requests_carry_explicit_timeouts():
    recorder = Recorder(ok({"status": "nominal"}))
    run(backend_for(recorder, timeout=httpx.Timeout(3.0, connect=1.5)), lambda b: b.status())
    timeouts = recorder.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 1.5, "read": 3.0, "write": 3.0, "pool": 3.0}


# -- what is understood ---------------------------------------------------------


@pytest.mark.parametrize("shape", [SHARE_DOCS_SHAPE, SHARE_LIVE_SHAPE], ids=["strings", "ints"])
def test_receipt_numbers_may_be_strings_and_unknown_fields_are_ignored(shape):
    receipt = run(backend_for(Recorder(ok(shape))), lambda b: b.share("x"))
    assert (receipt.ttl, receipt.metadata_ttl, receipt.secret_ttl) == (3600, 7200, 3600)
    assert (receipt.created, receipt.updated) == (1700000000, 1700000000)
    assert receipt.secret_key == SECRET_KEY and receipt.metadata_key == METADATA_KEY
    assert receipt.state == "new" and receipt.custid == USER
    assert receipt.passphrase_required is shape["passphrase_required"]
    assert receipt.expires_at == 1700003600


@given(st.integers(min_value=0, max_value=2**40),
       st.sampled_from(["int", "str", "padded", "float"]))
def test_any_whole_number_reads_the_same_whatever_its_json_type(number, style):
    sent = {"int": number, "str": str(number), "padded": f" {number} ",
            "float": float(number)}[style]
    receipt = parse_receipt({**SHARE_LIVE_SHAPE, "created": sent, "metadata_ttl": sent},
                            now=0)
    assert receipt.created == number and receipt.metadata_ttl == number


def test_older_servers_receipt_lifetime_in_ttl_is_not_taken_for_the_secrets():
    shape = {**SHARE_LIVE_SHAPE, "ttl": 7200}  # older servers: ttl = receipt lifetime
    receipt = run(backend_for(Recorder(ok(shape))), lambda b: b.share("x"))
    assert receipt.ttl == 3600


def test_received_receipt_has_no_secret_key():
    receipt = run(backend_for(Recorder(ok(RECEIVED))), lambda b: b.receipt(METADATA_KEY))
    assert receipt.state == "received" and receipt.received == 1700000100
    assert receipt.secret_key is None and receipt.secret_ttl is None
    assert receipt.recipient == ("al***@example.com",)


@pytest.mark.parametrize("state", ["received", "burned"])
def test_a_dead_link_is_never_offered_even_if_an_older_server_sends_it(state):
    stale = {**RECEIVED, "state": state, "secret_key": SECRET_KEY, "secret_ttl": 0}
    receipt = run(backend_for(Recorder(ok(stale))), lambda b: b.receipt(METADATA_KEY))
    assert receipt.secret_key is None


def test_generate_returns_the_value():
    recorder = Recorder(ok({**SHARE_LIVE_SHAPE, "state": "viewed", "value": "Xk3mPq9rTz2a"}))
    receipt = run(backend_for(recorder), lambda b: b.generate(ttl=600, length=12))
    assert receipt.value == "Xk3mPq9rTz2a"
    assert str(recorder.requests[0].url).endswith("/api/v1/generate")
    assert recorder.form() == {"ttl": ["600"], "length": ["12"]}


def test_burn_reads_the_nested_receipt():
    burned = {**RECEIVED, "state": "burned", "received": None}
    recorder = Recorder(ok({"state": burned, "secret_shortkey": "2i0eb2m2"}))
    receipt = run(backend_for(recorder), lambda b: b.burn(METADATA_KEY))
    assert receipt.state == "burned" and receipt.metadata_key == METADATA_KEY
    assert str(recorder.requests[0].url) == f"{ORIGIN}/api/v1/private/{METADATA_KEY}/burn"
    assert recorder.requests[0].method == "POST"


def test_recent_is_a_top_level_list():
    older = {**RECEIVED, "metadata_key": "b" * 31, "created": "1690000000"}
    receipts = run(backend_for(Recorder(ok([RECEIVED, older]))), lambda b: b.recent("ignored"))
    assert [r.metadata_key for r in receipts] == [METADATA_KEY, "b" * 31]
    assert receipts[1].created == 1690000000


def test_links_are_built_on_the_origin():
    backend = OnetimeSecretBackend(httpx.AsyncClient(), ORIGIN + "/api/v1/")
    assert backend.secret_url(SECRET_KEY) == f"{ORIGIN}/secret/{SECRET_KEY}"
    assert backend.receipt_url(METADATA_KEY) == f"{ORIGIN}/private/{METADATA_KEY}"
    assert origin_of("http://localhost:3000/") == "http://localhost:3000"
    asyncio.run(backend.close())


# -- failures -----------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "expected"), [
    (error("Unknown secret", secret_key=SECRET_KEY), SecretNotFound),
    (error("Not authorized"), NotAuthorized),
    (error("Rate limit exceeded. Please try again later."), RateLimited),
    (error("Cripes! You have been rate limited."), RateLimited),
    (httpx.Response(429, text="Too Many Requests"), RateLimited),
    (httpx.Response(413, text="<html>413 Request Entity Too Large</html>"), InvalidRequest),
    (error("You did not provide anything to share"), InvalidRequest),
    (httpx.Response(404, json={"message": "Not authorized"},
                    headers={"X-OTS-Intended-Status": "401"}), NotAuthorized),
    (httpx.Response(502, content=HTML_502, headers={"Content-Type": "text/html"}),
     BackendUnavailable),
    (httpx.Response(503, json={"message": "Service Unavailable"}), BackendUnavailable),
    (httpx.Response(200, content=b"<html>maintenance</html>"), BackendUnavailable),
    (httpx.Response(200, content=b'{"custid": "anon", '), BackendUnavailable),
    (httpx.Response(404, json={"error": "Not Found"}), BackendUnavailable),
    (httpx.Response(301, headers={"Location": "https://elsewhere.test/"}), BackendUnavailable),
    (httpx.ReadTimeout("timed out"), BackendUnavailable),
    (httpx.ConnectError("[Errno 111] Connection refused"), BackendUnavailable),
], ids=["unknown", "unauthorized", "rate-limit", "rate-limit-old", "429", "413", "nothing",
        "intended-401", "html-502", "503", "html-200", "bad-json", "no-route", "redirect",
        "timeout", "refused"])
def test_every_failure_maps_to_a_project_error_and_share_is_sent_once(answer, expected):
    recorder = Recorder(answer)
    with pytest.raises(expected) as caught:
        run(backend_for(recorder), lambda b: b.share("hunter2", passphrase=PASSPHRASE))
    assert len(recorder.requests) == 1
    assert_discreet(caught.value, "hunter2", "<html", "502 Bad Gateway")
    assert caught.value.message.strip()


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("timed out"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.Response(502, content=HTML_502, headers={"Content-Type": "text/html"}),
], ids=["timeout", "disconnect", "html-502"])
def test_a_failed_reveal_is_never_retried_and_says_the_secret_may_be_gone(failure):
    recorder = Recorder(failure)
    with pytest.raises(BackendUnavailable) as caught:
        run(backend_for(recorder), lambda b: b.reveal(SECRET_KEY, PASSPHRASE))
    assert len(recorder.requests) == 1
    assert "may have been used up" in caught.value.message
    assert type(caught.value) is BackendUnavailable  # what the Slack layer logs by name
    assert_discreet(caught.value)


def test_a_404_on_reveal_is_an_unknown_secret_asked_once():
    recorder = Recorder(error("Unknown secret", secret_key=SECRET_KEY))
    with pytest.raises(SecretNotFound):
        run(backend_for(recorder), lambda b: b.reveal(SECRET_KEY))
    assert len(recorder.requests) == 1
    assert recorder.requests[0].content == b""


@pytest.mark.parametrize("operation", ["generate", "burn"])
def test_other_writes_are_not_retried_either(operation):
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    calls = {"generate": lambda b: b.generate(), "burn": lambda b: b.burn(METADATA_KEY)}
    with pytest.raises(BackendUnavailable):
        run(backend_for(recorder), calls[operation])
    assert len(recorder.requests) == 1


def test_idempotent_reads_retry_and_then_succeed():
    recorder = Recorder(
        httpx.ConnectError("refused"),
        httpx.Response(502, content=HTML_502, headers={"Content-Type": "text/html"}),
        ok(RECEIVED),
    )
    receipt = run(backend_for(recorder), lambda b: b.receipt(METADATA_KEY))
    assert receipt.state == "received"
    assert len(recorder.requests) == 3


@pytest.mark.parametrize("read", ["status", "authcheck", "receipt", "recent"])
def test_reads_give_up_after_three_attempts(read):
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    calls = {"status": lambda b: b.status(), "authcheck": lambda b: b.authcheck(),
             "receipt": lambda b: b.receipt(METADATA_KEY), "recent": lambda b: b.recent("x")}
    with pytest.raises(BackendUnavailable) as caught:
        run(backend_for(recorder), calls[read])
    assert len(recorder.requests) == 3
    assert "eu.onetimesecret.com" in caught.value.message
    assert type(caught.value) is BackendUnavailable


def test_definite_answers_are_not_retried():
    recorder = Recorder(error("Unknown secret", secret_key=METADATA_KEY))
    with pytest.raises(SecretNotFound):
        run(backend_for(recorder), lambda b: b.receipt(METADATA_KEY))
    assert len(recorder.requests) == 1


def test_another_refusal_is_passed_on_apart_unless_it_echoes_what_was_sent():
    recorder = Recorder(error("Is that a valid email address?"))
    with pytest.raises(InvalidRequest) as caught:
        run(backend_for(recorder), lambda b: b.share("x", recipient=("nope",)))
    # The server's words travel apart from ours: they are shown only as plain text.
    assert caught.value.message == "Onetime Secret (eu.onetimesecret.com) refused the request."
    assert caught.value.service_text == "Is that a valid email address?"
    echo = Recorder(error(f"Bad passphrase {PASSPHRASE}"))
    with pytest.raises(InvalidRequest) as caught:
        run(backend_for(echo), lambda b: b.share("x", passphrase=PASSPHRASE))
    assert_discreet(caught.value)
    assert caught.value.service_text is None


def test_control_characters_in_the_servers_words_are_dropped():
    recorder = Recorder(error("Account \x1b]8;;https://evil.example\x07locked\u202e now"))
    with pytest.raises(InvalidRequest) as caught:
        run(backend_for(recorder), lambda b: b.share("s3cret-value"))
    assert caught.value.service_text == "Account ]8;;https://evil.examplelocked now"


@pytest.mark.parametrize("field", ["ttl", "created", "metadata_ttl"])
def test_a_receipt_with_garbage_numbers_is_unavailable_not_a_crash(field):
    recorder = Recorder(ok({**SHARE_LIVE_SHAPE, field: "soon"}))
    with pytest.raises(BackendUnavailable, match="unexpected"):
        run(backend_for(recorder), lambda b: b.share("x"))


@pytest.mark.parametrize("field", ["secret_key", "metadata_key"])
def test_a_key_that_could_inject_markup_into_a_link_is_refused(field):
    # The key becomes a link, and in Slack `<link>`: it must not be able to close it.
    hostile = "abc|x> <!channel> <https://evil.example|y"
    recorder = Recorder(ok({**SHARE_LIVE_SHAPE, field: hostile}))
    with pytest.raises(BackendUnavailable, match="unexpected"):
        run(backend_for(recorder), lambda b: b.share("x"))


def test_status_other_than_nominal_is_unavailable():
    with pytest.raises(BackendUnavailable):
        run(backend_for(Recorder(ok({"status": "offline"}))), lambda b: b.status())


# -- refused before asking ------------------------------------------------------------


@pytest.mark.parametrize(("call", "expected"), [
    (lambda b: b.share(""), InvalidRequest),
    (lambda b: b.share("x" * 10_001), InvalidRequest),
    (lambda b: b.share("\ud800"), InvalidRequest),
    (lambda b: b.reveal("../status"), SecretNotFound),
    (lambda b: b.receipt("abc?x=1"), SecretNotFound),
    (lambda b: b.burn(""), SecretNotFound),
], ids=["empty", "too-long", "surrogate", "path-reveal", "query-receipt", "empty-burn"])
def test_bad_input_is_refused_without_a_request(call, expected):
    recorder = Recorder(ok({}))
    with pytest.raises(expected):
        run(backend_for(recorder), call)
    assert recorder.requests == []


@pytest.mark.parametrize("call", [lambda b: b.authcheck(), lambda b: b.recent("x")],
                         ids=["authcheck", "recent"])
def test_account_calls_without_credentials_say_what_to_set(call):
    recorder = Recorder(ok({}))
    with pytest.raises(NotAuthorized, match="OTS_USERNAME and OTS_API_TOKEN"):
        run(backend_for(recorder, credentials=False), call)
    assert recorder.requests == []


# -- start-up -----------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "level", "words"), [
    (ok({"status": "nominal"}), logging.INFO, "accepted the credentials"),
    (error("Not authorized"), logging.ERROR, "REJECTED the credentials"),
    (httpx.ConnectError("refused"), logging.WARNING, "starting anyway"),
], ids=["good", "rejected", "down"])
def test_startup_check_says_what_it_found_and_never_raises(answer, level, words, caplog):
    recorder = Recorder(answer)
    with caplog.at_level(logging.INFO, logger="bot"):
        run(backend_for(recorder), lambda b: b.report_startup(logging.getLogger("bot")))
    assert str(recorder.requests[0].url) == f"{ORIGIN}/api/v1/authcheck"
    [record] = [r for r in caplog.records if r.name == "bot"]
    assert record.levelno == level and words in record.getMessage()
    assert TOKEN not in caplog.text


def test_startup_check_without_credentials_checks_status(caplog):
    recorder = Recorder(ok({"status": "nominal", "locale": "en"}))
    with caplog.at_level(logging.INFO, logger="bot"):
        run(backend_for(recorder, credentials=False),
            lambda b: b.report_startup(logging.getLogger("bot")))
    assert str(recorder.requests[0].url) == f"{ORIGIN}/api/v1/status"
    assert "reachable (anonymous use)" in caplog.text



def test_a_base_url_with_credentials_is_refused():
    # The origin is printed in every link and message: it must not carry a password.
    with pytest.raises(ValueError) as caught:
        OnetimeSecretBackend(httpx.AsyncClient(), "https://alice:hunter2@ots.example")
    assert "hunter2" not in str(caught.value)


# -- a hostile or broken server, over real HTTP -------------------------------------


def real_backend(url: str, **options: Any) -> OnetimeSecretBackend:
    return OnetimeSecretBackend(new_client(), url, backoff=0, **options)


@pytest.fixture(scope="module")
def bomb_256m() -> bytes:
    return gzip_bomb(256 * MIB)  # built once: it takes a second or two


@pytest.mark.parametrize(("answer", "call"), [
    (endless(), lambda b: b.share("s3cret")),
    (endless(), lambda b: b.status()),
    (bomb(256 * MIB), lambda b: b.share("s3cret")),
    (bomb(256 * MIB), lambda b: b.reveal(SECRET_KEY)),
], ids=["endless-share", "endless-status", "bomb-share", "bomb-reveal"])
def test_an_oversized_answer_is_refused_at_the_limit_and_not_retried(bomb_256m, answer, call):
    with HostileServer(answer) as server:
        with pytest.raises(BackendUnavailable) as caught:
            run(real_backend(server.url), call)
        assert f"more than {MAX_RESPONSE_BYTES:,} bytes" in caught.value.message
        assert len(server.requests) == 1


def test_the_limit_counts_inflated_bytes_not_bytes_on_the_wire(bomb_256m):
    # 2 MiB of zeros is about 2 KiB gzipped: well under the limit on the wire.
    with HostileServer(bomb(2 * MIB)) as server:
        with pytest.raises(BackendUnavailable, match="more than"):
            run(real_backend(server.url), lambda b: b.status())
    # Just under the limit is read (and then found not to be JSON).
    with HostileServer(bomb(MAX_RESPONSE_BYTES)) as server:
        with pytest.raises(BackendUnavailable, match="unexpected"):
            run(real_backend(server.url), lambda b: b.status())


def test_a_dripping_server_cannot_hold_a_call_past_its_deadline():
    # Every byte arrives within the 10 s read timeout; the whole never would.
    with HostileServer(drip(b'{"status": "nominal"}', every=0.2)) as server:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer in time") as caught:
            run(real_backend(server.url, deadline=1.0), lambda b: b.reveal(SECRET_KEY))
        assert time.monotonic() - started < 5
        assert "may have been used up" in caught.value.message
        assert len(server.requests) == 1


def test_retried_reads_share_one_deadline():
    # Headers, then silence: each attempt ends at the 0.6 s read timeout, and a read
    # is tried three times, but the 1 s deadline covers them all.
    with HostileServer(drip(b"", every=60)) as server:
        with pytest.raises(BackendUnavailable, match="did not answer in time"):
            run(real_backend(server.url, deadline=1.0,
                             timeout=httpx.Timeout(0.6, connect=0.6)),
                lambda b: b.status())
        assert 1 <= len(server.requests) < 3
