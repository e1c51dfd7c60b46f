"""The OTS v1 compatible API over real HTTP: shapes, types, states, auth, errors.

The main flows run on both stores (a real SQLite file and a real redis-server).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.backends import crypto
from bot.backends.embedded import EmbeddedStore
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings
from bot.web.app import build_app, create_app
from tests.support.servers import TEST_SCRYPT_N, TEST_SERVER_KEY, ServedApp, app_store_of, free_port

ALICE = ("alice@example.com", "alice-token-6f1d0c9b8a7e")
BOB = ("bob@example.com", "bob-token-0a1b2c3d4e5f")
API_USERS = ",".join(f"{email}:{token}" for email, token in (ALICE, BOB))

RECEIPT_FIELDS = {
    "custid", "metadata_key", "secret_key", "ttl", "metadata_ttl", "secret_ttl",
    "state", "updated", "created", "recipient", "passphrase_required",
}
# No `received`: the Java client refuses unknown fields on a receipt.
RECEIVED_FIELDS = RECEIPT_FIELDS - {"secret_key", "secret_ttl"}
# Share and generate answer a receipt plus `share_domain` (a string, "" by default).
SHARED_FIELDS = RECEIPT_FIELDS | {"share_domain"}
INTEGERS = ("ttl", "metadata_ttl", "secret_ttl", "created", "updated")
JSON_TYPE = "application/json; charset=utf-8"


def api_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"DATA_DIR": str(data_dir), "PUBLIC_URL": "http://ots.test", "API_USERS": API_USERS,
            **extra}


@pytest.fixture(params=["sqlite", "redis"])
def api(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[httpx.Client]:
    """An httpx client on /api/v1 of the whole app, on each store."""
    env = api_env(data_dir)
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["SERVER_KEY"] = TEST_SERVER_KEY
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One app for the tests that need no fresh store."""
    settings = Settings.from_env(api_env(tmp_path_factory.mktemp("api-v1")))
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def v1_error(response: httpx.Response, message: str, intended: str | None = None) -> dict:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == JSON_TYPE
    assert response.headers.get("x-ots-intended-status") == intended
    body = response.json()
    assert body["message"] == message
    return body


def assert_receipt(body: dict, *, state: str, fields: set[str] = RECEIPT_FIELDS) -> None:
    assert set(body) == fields
    assert body["state"] == state
    for name in INTEGERS:
        if name in body:
            assert type(body[name]) is int, (name, body[name])
    assert body["passphrase_required"] in (True, False)
    assert body["recipient"] == []
    assert isinstance(body["custid"], str) and isinstance(body["metadata_key"], str)


# -- the main flows, on both stores ------------------------------------------------


def test_share_view_reveal_received(api: httpx.Client):
    secret = "line one\nline two with trailing newline\n"
    shared = ok(api.post("/share", data={"secret": secret, "ttl": "3600"}, auth=ALICE))
    assert_receipt(shared, state="new", fields=SHARED_FIELDS)
    assert shared["share_domain"] == ""
    assert shared["custid"] == ALICE[0]
    assert shared["ttl"] == 3600 and shared["secret_ttl"] in (3599, 3600)
    assert shared["metadata_ttl"] in (7199, 7200)
    assert shared["created"] == shared["updated"]
    key, meta = shared["secret_key"], shared["metadata_key"]
    assert key != meta and len(key) >= 20

    # The first read still answers "new" and only then marks it viewed.
    first = ok(api.get(f"/private/{meta}"))
    assert_receipt(first, state="new")
    assert first["secret_key"] == key  # the owner still sees the link while unread
    assert first["updated"] == first["created"]
    viewed = ok(api.get(f"/private/{meta}"))
    assert_receipt(viewed, state="viewed")
    assert viewed["secret_key"] == key
    assert ok(api.post(f"/metadata/{meta}"))["state"] == "viewed"

    revealed = ok(api.post(f"/secret/{key}"))
    assert revealed == {"value": secret, "secret_key": key}

    received = ok(api.get(f"/private/{meta}"))
    assert_receipt(received, state="received", fields=RECEIVED_FIELDS)
    assert received["updated"] >= received["created"]

    again = v1_error(api.post(f"/secret/{key}"), "Unknown secret")
    assert again == {"message": "Unknown secret", "secret_key": key}


def test_burn_answers_the_nested_shape_and_kills_the_secret(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "burn me"}))
    key, meta = shared["secret_key"], shared["metadata_key"]

    burned = ok(api.post(f"/private/{meta}/burn"))
    assert set(burned) == {"state", "secret_shortkey"}
    assert burned["secret_shortkey"] == key[:8]
    assert_receipt(burned["state"], state="burned", fields=RECEIPT_FIELDS - {"secret_key"})
    assert burned["state"]["secret_ttl"] == 0

    v1_error(api.post(f"/secret/{key}"), "Unknown secret")
    v1_error(api.post(f"/metadata/{meta}/burn"), "Unknown secret")
    after = ok(api.get(f"/metadata/{meta}"))
    assert after["state"] == "burned" and "secret_key" not in after


def test_recent_lists_only_the_callers_receipts_newest_first(api: httpx.Client):
    first = ok(api.post("/share", data={"secret": "one"}, auth=ALICE))
    second = ok(api.post("/generate", auth=ALICE))
    ok(api.post("/share", data={"secret": "bob's"}, auth=BOB))
    ok(api.post("/share", data={"secret": "anonymous"}))
    ok(api.post(f"/secret/{first['secret_key']}"))

    listed = ok(api.get("/private/recent", auth=ALICE))
    assert isinstance(listed, list)
    # Newest first, even though both were made within the same second (or so).
    assert [r["metadata_key"] for r in listed] == [second["metadata_key"],
                                                  first["metadata_key"]]
    by_key = {r["metadata_key"]: r for r in listed}
    assert_receipt(by_key[second["metadata_key"]], state="viewed",  # generate starts viewed
                   fields=RECEIPT_FIELDS - {"secret_key"})
    assert_receipt(by_key[first["metadata_key"]], state="received",
                   fields=RECEIVED_FIELDS)
    assert [r["custid"] for r in ok(api.get("/metadata/recent", auth=BOB))] == [BOB[0]]
    # Listing is not viewing: listed again, an unread shared receipt is still "new".
    third = ok(api.post("/share", data={"secret": "three"}, auth=ALICE))
    ok(api.get("/private/recent", auth=ALICE))
    again = ok(api.get("/private/recent", auth=ALICE))
    assert again[0]["metadata_key"] == third["metadata_key"]
    assert again[0]["state"] == "new"


# -- status, auth ----------------------------------------------------------------------


def test_status_is_exactly_nominal(sqlite_api: httpx.Client):
    response = sqlite_api.get("/status", headers={"Accept": "text/html"})
    assert ok(response) == {"status": "nominal"}
    assert response.text == '{"status":"nominal"}'


def test_authcheck_needs_good_credentials(sqlite_api: httpx.Client):
    assert ok(sqlite_api.get("/authcheck", auth=ALICE)) == {"status": "nominal"}
    for auth in (None, ("", ""), (ALICE[0], BOB[1]), ("nobody@example.com", ALICE[1])):
        v1_error(sqlite_api.get("/authcheck", auth=auth), "Not authorized", "401")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("headers, custid", [
    ({}, "anon"),
    (basic("", ""), "anon"),
    ({"Authorization": "Basic"}, "anon"),  # "Basic " once the space is trimmed
    (basic(*ALICE), ALICE[0]),
    (basic("ALICE@Example.com", ALICE[1]), ALICE[0]),
])
def test_who_creates_a_secret(sqlite_api: httpx.Client, headers: dict, custid: str):
    shared = ok(sqlite_api.post("/share", data={"secret": "x"}, headers=headers))
    assert shared["custid"] == custid


@pytest.mark.parametrize("headers", [
    basic(ALICE[0], "wrong-token"),
    basic(ALICE[0], ""),
    basic("", ALICE[1]),
    basic("mallory@example.com", "anything"),
    {"Authorization": "Bearer " + ALICE[1]},
    {"Authorization": "Basic not-base64!!"},
])
def test_bad_credentials_never_fall_back_to_anonymous(sqlite_api: httpx.Client, headers: dict):
    v1_error(sqlite_api.post("/share", data={"secret": "x"}, headers=headers),
             "Not authorized", "401")
    v1_error(sqlite_api.get("/private/recent", headers=headers), "Not authorized", "401")


def test_recent_requires_an_account(sqlite_api: httpx.Client):
    v1_error(sqlite_api.get("/private/recent"), "Not authorized", "401")
    v1_error(sqlite_api.get("/metadata/recent", auth=("", "")), "Not authorized", "401")


# -- generate, passphrase, ttl ---------------------------------------------------------


def test_generate_makes_a_password_that_reveals_once(sqlite_api: httpx.Client):
    made = ok(sqlite_api.post("/generate", data={"ttl": "600"}))
    assert set(made) == RECEIPT_FIELDS | {"value", "share_domain"}
    # As on v1 servers, generate starts at viewed: the caller has seen the value.
    assert made["state"] == "viewed" and made["ttl"] == 600
    assert ok(sqlite_api.get(f"/private/{made['metadata_key']}"))["state"] == "viewed"
    value = made["value"]
    assert len(value) == 12 and value.isalnum()
    assert not set(value) & set("0Oo1lI")
    assert ok(sqlite_api.post(f"/secret/{made['secret_key']}"))["value"] == value

    long = ok(sqlite_api.post("/generate", data={"length": "128"}))
    assert len(long["value"]) == 128


@pytest.mark.parametrize("length", ["129", "-1", "abc", "1e3"])
def test_generate_refuses_a_length_it_cannot_make(sqlite_api: httpx.Client, length: str):
    v1_error(sqlite_api.post("/generate", data={"length": length}),
             "length must be a whole number from 1 to 128.", "400")


def test_passphrase_guards_the_reveal_without_consuming(sqlite_api: httpx.Client):
    shared = ok(sqlite_api.post("/share", data={"secret": "s3cret", "passphrase": "open sesame"}))
    assert shared["passphrase_required"] is True
    key = shared["secret_key"]
    v1_error(sqlite_api.post(f"/secret/{key}"), "Unknown secret")
    v1_error(sqlite_api.post(f"/secret/{key}", data={"passphrase": "wrong"}), "Unknown secret")
    revealed = ok(sqlite_api.post(f"/secret/{key}", data={"passphrase": "open sesame"}))
    assert revealed == {"value": "s3cret", "secret_key": key}


def test_the_app_seals_passphrases_at_the_production_scrypt_cost(data_dir: Path):
    """create_app's own cost, which every other app in the tests lowers (TEST_SCRYPT_N):
    a protected secret is kept with N = crypto.SCRYPT_N (2**17, see test_crypto.py) in
    its record, and the app opens it at that cost."""
    settings = Settings.from_env(api_env(data_dir))
    with ServedApp(create_app(settings)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=30) as api:
        shared = ok(api.post("/share", data={"secret": "costly", "passphrase": "pw"}))
        pointer = bytes.fromhex(crypto.digest_of(crypto.storage_id("m:", shared["metadata_key"])))
        storage = server.app.state.store.storage
        raw = server.call(storage.get(crypto.storage_id("p:", shared["secret_key"])))
        assert raw is not None and raw.startswith(pointer)
        log2_n = crypto.SCRYPT_N.bit_length() - 1
        assert raw[len(pointer):][:3] == bytes((2, 1, log2_n))  # v2, passphrase, log2 N
        revealed = ok(api.post(f"/secret/{shared['secret_key']}", data={"passphrase": "pw"}))
        assert revealed["value"] == "costly"


@pytest.mark.parametrize("ttl, expected", [
    ("10", 60),                      # clamped up to the minimum
    ("99999999999", 30 * 86400),     # clamped down to MAX_TTL
    ("3600", 3600),
    (" 7200 ", 7200),
    ("3600.9", 3600),                # like Ruby's to_i, which OTS uses
    ("0", 7 * 86400),
    ("", 7 * 86400),
    ("soon", 7 * 86400),
    ("-5", 7 * 86400),
])
def test_ttl_is_clamped_never_an_error(sqlite_api: httpx.Client, ttl: str, expected: int):
    shared = ok(sqlite_api.post("/share", data={"secret": "t", "ttl": ttl}))
    assert shared["ttl"] == expected
    assert expected - 1 <= shared["secret_ttl"] <= expected


# -- errors and routing ------------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, {"secret": ""}, {"ttl": "60"}])
def test_nothing_to_share(sqlite_api: httpx.Client, data: dict):
    v1_error(sqlite_api.post("/share", data=data), "You did not provide anything to share", "400")


def test_an_oversized_secret_is_refused_clearly(data_dir: Path):
    settings = Settings.from_env(api_env(data_dir, MAX_SECRET_BYTES="100"))
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
        url = server.url + "/api/v1"
        body = v1_error(httpx.post(url + "/share", data={"secret": "é" * 51}),
                        "The secret is too long: 102 bytes; the limit is 100 bytes.", "400")
        assert set(body) == {"message"}
        assert ok(httpx.post(url + "/share", data={"secret": "é" * 50}))["state"] == "new"


@pytest.mark.parametrize("key", ["short", "x" * 31, "not-a-key-at-all-but-long-enough", "a" * 200])
def test_unknown_keys(sqlite_api: httpx.Client, key: str):
    for method, path in (("POST", f"/secret/{key}"), ("GET", f"/private/{key}"),
                         ("POST", f"/metadata/{key}/burn")):
        body = v1_error(sqlite_api.request(method, path), "Unknown secret")
        assert body == {"message": "Unknown secret", "secret_key": key}


@pytest.mark.parametrize("method, path", [
    ("GET", "/nothing-here"),
    ("GET", ""),
    ("GET", "/status/"),              # no trailing-slash redirects
    ("POST", "/share/"),
    ("GET", "/share"),                # right path, wrong method
    ("GET", "/secret/abcdefghijklmnopqrstuvwxyz12345"),
    ("DELETE", "/private/abcdefghijklmnopqrstuvwxyz12345"),
    ("POST", "/private/recent"),
    ("PATCH", "/status"),
])
def test_unknown_routes_answer_json_not_found(sqlite_api: httpx.Client, method: str, path: str):
    response = sqlite_api.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == JSON_TYPE
    # Every client reads `message`; `error` is what the live service sends.
    assert response.json() == {
        "message": "Not Found: there is no such route in the Onetime Secret v1 API.",
        "error": "Not Found",
    }


def test_a_store_that_is_down_answers_503_json(data_dir: Path):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings.from_env(api_env(data_dir, REDIS_URL=dead, SERVER_KEY=TEST_SERVER_KEY))
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
        url = server.url + "/api/v1"
        for response in (httpx.get(url + "/status"),
                         httpx.get(url + "/private/abcdefghijklmnopqrstuvwxyz12345"),
                         httpx.get(url + "/private/recent", auth=ALICE),
                         httpx.post(url + "/share", data={"secret": "kept safe"}),
                         httpx.post(url + "/secret/abcdefghijklmnopqrstuvwxyz12345")):
            assert response.status_code == 503
            # (creation and reveal meet the rate limiter's own 503 first: JSON too)
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert set(body) == {"message"}
            assert "unavailable" in body["message"] and "kept safe" not in response.text
        assert httpx.get(url + "/status").headers["content-type"] == JSON_TYPE


# -- expiry, with a clock the test controls ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_expired_secret_reads_as_expired(data_dir: Path):
    clock = Clock()
    settings = Settings.from_env(api_env(data_dir))
    store = EmbeddedStore(SQLiteStorage(data_dir / "s.sqlite3", clock=clock),
                          public_url=settings.public_url, clock=clock)
    with ServedApp(build_app(settings, store, app_store_of(store))) as server, \
            httpx.Client(base_url=server.url + "/api/v1") as api:
        shared = ok(api.post("/share", data={"secret": "soon gone", "ttl": "60"}))
        assert shared["created"] == 1_800_000_000
        clock.now += 61
        expired = ok(api.get(f"/private/{shared['metadata_key']}"))
        assert_receipt(expired, state="expired", fields=RECEIPT_FIELDS - {"secret_key"})
        assert expired["secret_ttl"] == 0 and expired["metadata_ttl"] == 59
        v1_error(api.post(f"/secret/{shared['secret_key']}"), "Unknown secret")
        clock.now += 60
        v1_error(api.get(f"/private/{shared['metadata_key']}"), "Unknown secret")


# -- recent's index keeps the store's promise ---------------------------------------------


def test_the_recent_index_names_nobody_reveals_no_key_and_survives_a_new_token(
    data_dir: Path,
):
    settings = Settings.from_env(api_env(data_dir))
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as server:
        url = server.url + "/api/v1"
        shared = ok(httpx.post(url + "/share", data={"secret": "indexed"}, auth=ALICE))
        assert len(ok(httpx.get(url + "/private/recent", auth=ALICE))) == 1

    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    # Neither the owner's address nor their token: the index is named by a keyed
    # hash of the owner and sealed under the server key, so a copy of the store
    # offers nothing to test guessed tokens against.
    for needle in (shared["metadata_key"], shared["secret_key"], ALICE[0], ALICE[1],
                   "indexed"):
        assert needle.encode() not in stored

    rotated = Settings.from_env(api_env(data_dir) | {"API_USERS": f"{ALICE[0]}:a-new-token-99"})
    with ServedApp(create_app(rotated, scrypt_n=TEST_SCRYPT_N)) as server:
        url = server.url + "/api/v1"
        # The list belongs to the account, not to one token: a rotated token still
        # sees it, and the old token is refused.
        listed = ok(httpx.get(url + "/private/recent", auth=(ALICE[0], "a-new-token-99")))
        assert [r["metadata_key"] for r in listed] == [shared["metadata_key"]]
        v1_error(httpx.get(url + "/private/recent", auth=ALICE), "Not authorized", "401")


class FailingStorage(SQLiteStorage):
    """A store with a bug: reads raise something no layer expects."""

    async def get(self, key: str) -> bytes | None:
        raise RuntimeError("storage bug quoting private data")


def test_an_unexpected_failure_is_a_json_500_that_quotes_nothing(
    data_dir: Path, caplog: pytest.LogCaptureFixture
):
    settings = Settings.from_env(api_env(data_dir))
    store = EmbeddedStore(FailingStorage(data_dir / "s.sqlite3"), public_url=settings.public_url)
    with ServedApp(build_app(settings, store, app_store_of(store))) as server:
        response = httpx.get(server.url + "/api/v1/private/abcdefghijklmnopqrstuvwxyz12345")
    assert response.status_code == 500
    assert response.headers["content-type"] == JSON_TYPE
    assert response.json() == {"message": "Internal error: the request was not completed."}
    assert "private data" not in caplog.text
    assert "API receipt failed: RuntimeError" in caplog.text
