"""Every way the existing OTS clients send parameters (OTS_API_V1.md, points 2 to 4).

One served app for the module; raw sockets for what httpx will not send (no
Content-Length at all, `Expect: 100-continue`, chunked bodies). Every share is
checked by revealing it: the secret must come back byte-exact.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bot.config import Settings
from bot.web.app import create_app
from tests.support.servers import TEST_SCRYPT_N, ServedApp

ALICE = ("alice@example.com", "alice-token-6f1d0c9b8a7e")
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    env = {
        "DATA_DIR": str(tmp_path_factory.mktemp("api-encodings")),
        "PUBLIC_URL": "http://ots.test",
        "API_USERS": f"{ALICE[0]}:{ALICE[1]}",
    }
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as served:
        yield served


@pytest.fixture
def api(server: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


def revealed(api: httpx.Client, shared: dict[str, Any], passphrase: str | None = None) -> str:
    data = {"passphrase": passphrase} if passphrase else None
    response = api.post(f"/secret/{shared['secret_key']}", data=data)
    assert response.status_code == 200, response.text
    value: str = response.json()["value"]
    return value


def shared_ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body: dict[str, Any] = response.json()
    assert body["state"] == "new"
    return body


# -- raw HTTP/1.1 -------------------------------------------------------------------------


def raw_exchange(server: ServedApp, head: str, body: bytes = b"",
                 *, expect_continue: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send a hand-written request; a server that hangs fails the test within 5 s."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        if expect_continue:
            interim = sock.recv(1024)
            assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, payload


def raw_post(server: ServedApp, path: str, headers: str = "", body: bytes = b"",
             *, expect_continue: bool = False) -> tuple[int, dict[str, Any]]:
    head = f"POST /api/v1{path} HTTP/1.1\nHost: ots.test\nConnection: close\n{headers}"
    status, response_headers, payload = raw_exchange(
        server, head, body, expect_continue=expect_continue
    )
    assert response_headers["content-type"] == JSON_TYPE
    return status, json.loads(payload)


# -- where the parameters are -------------------------------------------------------------


def test_query_string_on_post(api: httpx.Client):
    shared = shared_ok(api.post("/share", params={"secret": "from the query", "ttl": "3600"}))
    assert shared["ttl"] == 3600
    assert revealed(api, shared) == "from the query"


def test_urlencoded_body(api: httpx.Client):
    secret = "a+b=c&d %25 ü 🔑\r\nlast line\n"
    assert revealed(api, shared_ok(api.post("/share", data={"secret": secret}))) == secret


def test_body_without_content_type(api: httpx.Client):
    response = api.post("/share", content=b"secret=no%20type&ttl=600")
    assert "content-type" not in response.request.headers
    shared = shared_ok(response)
    assert shared["ttl"] == 600
    assert revealed(api, shared) == "no type"


def test_multipart_fields_and_file_parts(api: httpx.Client):
    fields = shared_ok(api.post("/share", files={"secret": (None, "multi\npart\n"),
                                                 "ttl": (None, "900")}))
    assert fields["ttl"] == 900
    assert revealed(api, fields) == "multi\npart\n"
    # curl -F secret=@file.txt: the file's text is the secret
    upload = shared_ok(api.post("/share", files={"secret": ("key.pem", b"-----BEGIN-----\n")}))
    assert revealed(api, upload) == "-----BEGIN-----\n"


def test_flat_json_body(api: httpx.Client):
    shared = shared_ok(api.post("/share", json={"secret": "json", "ttl": 1200,
                                                "recipient": []}))
    assert shared["ttl"] == 1200 and shared["recipient"] == []
    assert revealed(api, shared) == "json"


def test_query_and_body_merge_and_the_body_wins(api: httpx.Client):
    shared = shared_ok(api.post("/share?ttl=120&secret=query", data={"secret": "body"}))
    assert shared["ttl"] == 120
    assert revealed(api, shared) == "body"


# -- raw requests httpx cannot make -------------------------------------------------------


def test_expect_100_continue_is_honoured(server: ServedApp, api: httpx.Client):
    body = b"secret=after+continue"
    status, shared = raw_post(
        server, "/share",
        f"Content-Type: application/x-www-form-urlencoded\nContent-Length: {len(body)}\n"
        "Expect: 100-continue\n",
        body, expect_continue=True,
    )
    assert status == 200
    assert revealed(api, shared) == "after continue"


def test_an_empty_post_without_content_length_does_not_hang(server: ServedApp):
    status, made = raw_post(server, "/generate")
    assert status == 200 and len(made["value"]) == 12
    status, error = raw_post(server, "/share")
    assert status == 404
    assert error == {"message": "You did not provide anything to share"}


def test_chunked_body(server: ServedApp, api: httpx.Client):
    body = b"secret=chun"
    tail = b"ked"
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body, len(tail), tail)
    status, shared = raw_post(server, "/share", "Transfer-Encoding: chunked\n", chunked)
    assert status == 200
    assert revealed(api, shared) == "chunked"


# -- lenient values -----------------------------------------------------------------------


@pytest.mark.parametrize("body, secret", [
    (b"secret=trailing&", "trailing"),
    (b"secret=x&&&", "x"),
    (b"secret=100%", "100%"),                  # a bad % escape is kept as written
    (b"secret=%zz%2", "%zz%2"),
    (b"secret=a%20b&unknown=1&share_domain=", "a b"),
    (b"secret=rcpt&recipient=", "rcpt"),
    (b"secret=rcpt&recipient[]=&recipient[]=", "rcpt"),
    (b"secret=first&secret=last", "last"),
])
def test_lenient_parameters(api: httpx.Client, body: bytes, secret: str):
    shared = shared_ok(api.post("/share", content=body,
                                headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert shared["recipient"] == []
    assert revealed(api, shared) == secret


@pytest.mark.parametrize("request_args", [
    {"content": b"secret=r&recipient[]=&recipient[]=a@example.com"},
    {"content": b"secret=r&recipient=a@example.com&recipient=b@example.com"},
    {"json": {"secret": "r", "recipient": ["a@example.com"]}},
    {"files": {"secret": (None, "r"), "recipient": (None, "a@example.com")}},
], ids=["brackets", "repeated", "json", "multipart"])
def test_a_recipient_is_read_in_every_form(api: httpx.Client, request_args: dict):
    """Every way a client sends `recipient` reaches the delivery rules (here: an
    anonymous caller may not use it; tests/test_api_recipients.py delivers)."""
    if "content" in request_args:
        request_args["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    response = api.post("/share", **request_args)
    assert response.status_code == 404
    assert response.json() == {"message": "An account is required to send emails."}


@pytest.mark.parametrize("ttl", ["ttl=0", "ttl=", "ttl", ""])
def test_a_missing_or_zero_ttl_means_the_default(api: httpx.Client, ttl: str):
    shared = shared_ok(api.post("/share", content=f"secret=t&{ttl}".encode()))
    assert shared["ttl"] == 7 * 86400


def test_an_empty_passphrase_means_none(api: httpx.Client):
    shared = shared_ok(api.post("/share", data={"secret": "open", "passphrase": ""}))
    assert shared["passphrase_required"] is False
    assert revealed(api, shared) == "open"
    made = api.post("/generate", content=b"passphrase=&ttl=0").json()
    assert made["passphrase_required"] is False


@pytest.mark.parametrize("path, body", [
    ("/share", b"secret=%FF%FEbad"),
    ("/share", b"secret=\xff\xfe"),
    ("/share?secret=%C3", b""),
    ("/generate", b"passphrase=%ED%A0%80"),  # an encoded surrogate is not UTF-8 either
])
def test_invalid_utf8_is_refused_not_mangled(api: httpx.Client, path: str, body: bytes):
    response = api.post(path, content=body)
    assert response.status_code == 404
    assert response.headers["x-ots-intended-status"] == "400"
    assert response.headers["content-type"] == JSON_TYPE
    assert "parameter is not valid UTF-8" in response.json()["message"]


def test_bad_bytes_in_an_unknown_parameter_are_ignored(api: httpx.Client):
    shared = shared_ok(api.post("/share?junk=%FF", content=b"secret=kept&other=\xff"))
    assert revealed(api, shared) == "kept"


# -- credentials as clients send them ------------------------------------------------------


def basic_header(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("header, custid", [
    (basic_header("", ""), "anon"),
    ("Authorization: Basic", "anon"),
    ("Authorization: Basic ", "anon"),
    (basic_header(*ALICE), ALICE[0]),
])
def test_basic_credentials_as_sent(server: ServedApp, header: str, custid: str):
    status, shared = raw_post(server, "/share", header + "\nContent-Length: 8\n", b"secret=b")
    assert status == 200
    assert shared["custid"] == custid


def test_accept_header_is_ignored(api: httpx.Client):
    response = api.post("/share", data={"secret": "x"}, headers={"Accept": "text/html"})
    assert shared_ok(response)["secret_key"]
    error = api.post("/share", headers={"Accept": "application/xml"})
    assert error.headers["content-type"] == JSON_TYPE
