"""HTTP-level hardening over real HTTP: framing, the two former 500s, trace logs,
security headers on every answer, and HEAD that changes nothing."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.backends.embedded import EmbeddedStore
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings
from bot.web.app import build_app, create_app
from tests.support.fake_slack import FakeSlack
from tests.support.server_process import ServerProcess
from tests.support.servers import ServedApp, app_store_of

SECRET = "correct horse battery staple"


def make_store(path: Path) -> EmbeddedStore:
    return EmbeddedStore(SQLiteStorage(path), public_url="http://ots.test", scrypt_n=2**10)


def serve(tmp: Path, public_url: str = "http://ots.test") -> ServedApp:
    settings = Settings.from_env({"DATA_DIR": str(tmp), "PUBLIC_URL": public_url})
    store = make_store(tmp / "s.sqlite3")
    return ServedApp(build_app(settings, store, app_store_of(store)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serve(tmp_path_factory.mktemp("hardening")) as server:
        yield server


def share(server: ServedApp, passphrase: str | None = None) -> tuple[str, str]:
    store: EmbeddedStore = server.app.state.backend
    receipt = server.call(store.share(SECRET, passphrase=passphrase))
    assert receipt.secret_key is not None
    return receipt.secret_key, receipt.metadata_key


def state_of(server: ServedApp, metadata_key: str) -> str:
    store: EmbeddedStore = server.app.state.backend
    return str(server.call(store.peek_receipt(metadata_key)).state)


# -- Content-Length with Transfer-Encoding ----------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/share", "/secret/abc"])
def test_content_length_with_transfer_encoding_is_refused_and_closed(
    served: ServedApp, path: str
) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    body = b"secret=smuggled"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: ots.test\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    # A second request pipelined behind it must never be answered.
    follow = b"GET /healthz HTTP/1.1\r\nHost: ots.test\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request + follow)
        answer = b""
        while data := sock.recv(65536):  # ends only when the server closes
            answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 404 Not Found")
    assert b"connection: close" in head.lower()
    assert b"both Content-Length and Transfer-Encoding" in rest
    if path.startswith("/api/"):
        assert b"x-ots-intended-status: 400" in head.lower()
    assert answer.count(b"HTTP/1.1 ") == 1  # the pipelined request got nothing
    assert b'"secret_key"' not in answer


# -- the two former 500s ------------------------------------------------------------


@pytest.fixture
def served_slack(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[ServedApp]:
    from tests.support.slack_requests import SIGNING_SECRET

    env = {"DATA_DIR": str(tmp_path), "PUBLIC_URL": "http://ots.test",
           "SLACK_BOT_TOKEN": fake_slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake_slack.api_url}
    with ServedApp(create_app(Settings.from_env(env))) as server:
        yield server


@pytest.mark.parametrize("timestamp", [b"", b"abc", b"12e3", b"1" * 5000, "１２３".encode()])
def test_unsigned_slack_request_with_a_bad_timestamp_gets_400(
    served_slack: ServedApp, caplog: pytest.LogCaptureFixture, timestamp: bytes
) -> None:
    response = httpx.post(
        f"{served_slack.url}/slack/events",
        content=b"command=%2Fots&text=hello",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"},
    )
    assert response.status_code == 400
    assert "X-Slack-Request-Timestamp" in response.text
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


def test_unsigned_slack_request_without_a_timestamp_is_still_refused(
    served_slack: ServedApp,
) -> None:
    response = httpx.post(f"{served_slack.url}/slack/events", content=b"command=%2Fots",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"passphrase": "\ud800"}).encode()),
        ("application/json", b'{"passphrase": "ok\\udfff"}'),
    ],
)
def test_page_passphrase_with_a_lone_surrogate_gets_400_and_keeps_the_secret(
    served: ServedApp, caplog: pytest.LogCaptureFixture, content_type: str, body: bytes
) -> None:
    secret_key, _ = share(served, passphrase="pw")
    url = f"{served.url}/secret/{secret_key}"
    response = httpx.post(url, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "passphrase parameter is not valid UTF-8" in response.text
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]
    assert SECRET in httpx.post(url, data={"passphrase": "pw"}).text


# -- uvicorn --log-level trace --------------------------------------------------------


def test_uvicorn_trace_level_logs_no_key_or_passphrase(tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "bot.web.app:app_from_env",
        "--host", "127.0.0.1", "--port", "0", "--log-level", "trace",
    ]
    env = {"DATA_DIR": str(tmp_path), "PUBLIC_URL": "http://ots.test"}
    canary = "trace-canary-passphrase-7Hq2"
    with ServerProcess(argv, env, tmp_path / "server.log") as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:  # scrypt at full cost
        created = client.post("/api/v1/share",
                              data={"secret": SECRET, "passphrase": canary}).json()
        key = created["secret_key"]
        metadata_key = created["metadata_key"]
        page = client.get(f"/secret/{key}?passphrase={canary}")
        assert page.status_code == 200
        revealed = client.post(f"/api/v1/secret/{key}?passphrase={canary}")
        assert revealed.json()["value"] == SECRET
        client.get(f"/private/{metadata_key}")
        time.sleep(0.2)  # let the last lines reach the file
        log = server.log()
    assert "TRACE" in log  # trace level was on: connections were logged
    for needle in (key, metadata_key, canary, SECRET, "/secret/", "/private/"):
        assert needle not in log, needle


# -- security headers ------------------------------------------------------------------

REQUIRED = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/page"),  # Starlette's 404
        ("PUT", "/healthz"),  # Starlette's 405
        ("DELETE", "/secret/abc"),  # 405 on a page route
        ("GET", "/healthz"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/no-such-thing"),
        ("POST", "/api/v1/secret/unknownkey"),
        ("GET", "/secret/unknownkey"),
        ("GET", "/private/unknownkey"),
    ],
)
def test_every_answer_carries_the_security_headers(
    served: ServedApp, method: str, path: str
) -> None:
    response = httpx.request(method, f"{served.url}{path}")
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "strict-transport-security" not in response.headers  # PUBLIC_URL is http


def test_even_a_crash_answers_with_the_headers(tmp_path: Path) -> None:
    from starlette.requests import Request

    async def crash(request: Request) -> None:
        raise RuntimeError("a bug")

    server = serve(tmp_path, public_url="https://secrets.example.com")
    server.app.add_route("/crash", crash)
    with server:
        response = httpx.get(f"{server.url}/crash")
    assert response.status_code == 500
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, name
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_pages_keep_their_own_policy(served: ServedApp) -> None:
    secret_key, _ = share(served)
    response = httpx.get(f"{served.url}/secret/{secret_key}")
    assert response.headers["content-security-policy"].count("default-src") == 1
    assert "script-src 'sha256-" in response.headers["content-security-policy"]


def test_hsts_when_public_url_is_https(tmp_path: Path) -> None:
    with serve(tmp_path, public_url="https://secrets.example.com") as server:
        for response in (httpx.get(f"{server.url}/healthz"),
                         httpx.put(f"{server.url}/healthz"),
                         httpx.get(f"{server.url}/api/v1/status")):
            assert response.headers["strict-transport-security"] == "max-age=31536000"


# -- HEAD changes nothing -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/private/", "/api/v1/private/", "/api/v1/metadata/"])
def test_head_on_a_receipt_does_not_mark_it_viewed(served: ServedApp, prefix: str) -> None:
    _, metadata_key = share(served)
    head = httpx.head(f"{served.url}{prefix}{metadata_key}")
    assert head.status_code == 200
    assert state_of(served, metadata_key) == "new"
    assert httpx.head(f"{served.url}{prefix}nosuchreceiptkey000000000000").status_code == 404
    # GET still marks it, as on onetimesecret.com.
    assert httpx.get(f"{served.url}{prefix}{metadata_key}").status_code == 200
    assert state_of(served, metadata_key) == "viewed"
