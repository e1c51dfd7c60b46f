"""The v1 details the existing client libraries trip on, and `share_domain`.

Each on both stores (a real SQLite file and a real redis-server), over real HTTP
to the whole app built by `create_app`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.web.app import create_app
from tests.support.servers import TEST_SCRYPT_N, TEST_SERVER_KEY, ServedApp
from tests.test_api_v1 import (
    ALICE,
    BOB,
    RECEIPT_FIELDS,
    RECEIVED_FIELDS,
    SHARED_FIELDS,
    api_env,
    ok,
    v1_error,
)

NO_SUCH_ROUTE = "Not Found: there is no such route in the Onetime Secret v1 API."


def served_api(request: pytest.FixtureRequest, data_dir: Path, **extra: str) -> ServedApp:
    env = api_env(data_dir, SHARE_DOMAINS="secrets.example.com, Links.Example.org", **extra)
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["SERVER_KEY"] = TEST_SERVER_KEY  # every replica seals with the same key
    return ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N))


@pytest.fixture(params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[ServedApp]:
    with served_api(request, data_dir, PASSPHRASE_ATTEMPTS="4") as served:
        yield served


@pytest.fixture
def api(server: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- 1. receipt states -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/private/{m}", "/metadata/{m}", "/receipt/{m}"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_first_read_answers_new_then_viewed(api: httpx.Client, path: str, method: str):
    shared = ok(api.post("/share", data={"secret": "states"}))
    url = path.format(m=shared["metadata_key"])
    first = ok(api.request(method, url))
    assert first["state"] == "new"
    second = ok(api.request(method, url))
    assert second["state"] == "viewed"
    assert second["secret_key"] == shared["secret_key"]
    ok(api.post(f"/secret/{shared['secret_key']}"))
    assert ok(api.request(method, url))["state"] == "received"


def test_generate_starts_viewed_and_burn_answers_burned(api: httpx.Client):
    made = ok(api.post("/generate"))
    assert made["state"] == "viewed"
    assert ok(api.get(f"/private/{made['metadata_key']}"))["state"] == "viewed"
    burned = ok(api.post(f"/private/{made['metadata_key']}/burn"))
    assert burned["state"]["state"] == "burned"
    assert ok(api.get(f"/private/{made['metadata_key']}"))["state"] == "burned"


# -- 2. recent in true creation order --------------------------------------------------


def test_recent_is_newest_first_within_the_same_second(api: httpx.Client):
    made = [ok(api.post("/share", data={"secret": f"n{i}"}, auth=ALICE)) for i in range(12)]
    # Twelve shares over loopback take well under a second each: several share one.
    assert len({m["created"] for m in made}) < len(made)
    listed = ok(api.get("/private/recent", auth=ALICE))
    assert [r["metadata_key"] for r in listed] == [m["metadata_key"] for m in reversed(made)]


# -- 3. the exact receipt field set ----------------------------------------------------


def test_every_receipt_has_exactly_the_v1_fields(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "fields"}, auth=ALICE))
    assert set(shared) == SHARED_FIELDS
    meta, key = shared["metadata_key"], shared["secret_key"]
    assert set(ok(api.get(f"/private/{meta}"))) == RECEIPT_FIELDS
    ok(api.post(f"/secret/{key}"))
    received = ok(api.get(f"/private/{meta}"))
    assert set(received) == RECEIVED_FIELDS
    assert "received" not in received  # the Java client refuses unknown receipt fields
    for listed in ok(api.get("/private/recent", auth=ALICE)):
        assert "received" not in listed and "share_domain" not in listed
    burnable = ok(api.post("/share", data={"secret": "burn"}))
    burned = ok(api.post(f"/private/{burnable['metadata_key']}/burn"))
    assert set(burned["state"]) == RECEIPT_FIELDS - {"secret_key"}


# -- 4. ttl is the requested lifetime --------------------------------------------------


def test_ttl_is_the_requested_lifetime_everywhere(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "t", "ttl": "3600"}, auth=ALICE))
    assert shared["ttl"] == 3600
    assert shared["metadata_ttl"] in (7199, 7200)  # the receipt lives twice as long
    assert ok(api.get(f"/private/{shared['metadata_key']}"))["ttl"] == 3600
    assert ok(api.get("/private/recent", auth=ALICE))[0]["ttl"] == 3600
    burned = ok(api.post(f"/private/{shared['metadata_key']}/burn"))
    assert burned["state"]["ttl"] == 3600


# -- 5. burning a passphrase-protected secret ------------------------------------------


def test_burning_a_protected_secret_needs_its_passphrase(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "guarded", "passphrase": "right one"}))
    meta, key = shared["metadata_key"], shared["secret_key"]
    for data in ({}, {"passphrase": ""}, {"passphrase": "wrong"}):
        body = v1_error(api.post(f"/private/{meta}/burn", data=data), "Unknown secret")
        assert body == {"message": "Unknown secret", "secret_key": meta}
    # Kept, and the tries counted: PASSPHRASE_ATTEMPTS is 4, so one wrong reveal ends it.
    assert ok(api.get(f"/private/{meta}"))["state"] in ("new", "viewed")
    v1_error(api.post(f"/secret/{key}", data={"passphrase": "wrong again"}), "Unknown secret")
    assert ok(api.get(f"/private/{meta}"))["state"] == "burned"
    v1_error(api.post(f"/secret/{key}", data={"passphrase": "right one"}), "Unknown secret")


def test_the_right_passphrase_burns(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "guarded", "passphrase": "right one"}))
    meta, key = shared["metadata_key"], shared["secret_key"]
    burned = ok(api.post(f"/receipt/{meta}/burn", data={"passphrase": "right one"}))
    assert burned["state"]["state"] == "burned"
    assert burned["secret_shortkey"] == key[:8]
    v1_error(api.post(f"/secret/{key}", data={"passphrase": "right one"}), "Unknown secret")


def test_the_receipt_page_asks_for_the_passphrase_to_burn(server: ServedApp):
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=True) as web:
        shared = ok(web.post("/api/v1/share",
                             data={"secret": "guarded", "passphrase": "right one"}))
        meta, key = shared["metadata_key"], shared["secret_key"]
        page = web.get(f"/private/{meta}").text
        assert 'name="passphrase"' in page and "Burn this secret" in page

        refused = web.post(f"/private/{meta}/burn", data={"passphrase": "wrong"})
        assert refused.status_code == 400
        assert "Not burned: the passphrase was wrong." in refused.text
        assert "right one" not in refused.text and "guarded" not in refused.text
        assert ok(web.get(f"/api/v1/private/{meta}"))["state"] == "viewed"

        burned = web.post(f"/private/{meta}/burn", data={"passphrase": "right one"})
        assert burned.status_code == 200  # followed the redirect back to the receipt
        assert "Burned" in burned.text
        v1_error(web.post(f"/api/v1/secret/{key}", data={"passphrase": "right one"}),
                 "Unknown secret")


def test_the_receipt_page_burns_an_unprotected_secret_without_asking(server: ServedApp):
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=True) as web:
        shared = ok(web.post("/api/v1/share", data={"secret": "plain"}))
        page = web.get(f"/private/{shared['metadata_key']}").text
        assert 'name="passphrase"' not in page
        assert "Burned" in web.post(f"/private/{shared['metadata_key']}/burn").text


# -- 6. credentials are always checked -------------------------------------------------


WRONG = [basic(ALICE[0], "wrong-token"), basic("mallory@example.com", "x"),
         basic("", ALICE[1]), {"Authorization": "Bearer " + ALICE[1]}]


@pytest.mark.parametrize("headers", WRONG)
def test_wrong_credentials_are_refused_on_every_route(api: httpx.Client, headers: dict):
    shared = ok(api.post("/share", data={"secret": "kept"}))
    meta, key = shared["metadata_key"], shared["secret_key"]
    for method, path in [("GET", "/status"), ("GET", "/authcheck"), ("POST", "/share"),
                         ("POST", "/generate"), ("POST", f"/secret/{key}"),
                         ("GET", f"/private/{meta}"), ("POST", f"/metadata/{meta}"),
                         ("GET", f"/receipt/{meta}"), ("POST", f"/private/{meta}/burn"),
                         ("GET", "/private/recent"), ("GET", "/receipt/recent")]:
        response = api.request(method, path, data={"secret": "x"} if method == "POST" else None,
                               headers=headers)
        assert v1_error(response, "Not authorized", "401") == {"message": "Not authorized"}
    # Nothing was revealed or burned by the refused requests.
    assert ok(api.post(f"/secret/{key}"))["value"] == "kept"


def test_empty_basic_credentials_stay_anonymous(api: httpx.Client):
    empty = {"Authorization": "Basic Og=="}  # base64 of ":"
    assert ok(api.get("/status", headers=empty)) == {"status": "nominal"}
    assert ok(api.post("/share", data={"secret": "x"}, headers=empty))["custid"] == "anon"
    assert ok(api.get("/status", headers=basic(*BOB))) == {"status": "nominal"}


# -- 7. unknown paths ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/private", "/secret", "/v2/share", "/share/extra"])
def test_unknown_paths_answer_json_with_a_message(api: httpx.Client, path: str):
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["message"] == NO_SUCH_ROUTE


# -- 8. the receipt aliases ------------------------------------------------------------


def test_receipt_aliases_route_as_v1_does(api: httpx.Client):
    shared = ok(api.post("/share", data={"secret": "aliased"}, auth=ALICE))
    meta = shared["metadata_key"]
    assert ok(api.get(f"/receipt/{meta}"))["metadata_key"] == meta
    assert ok(api.post(f"/receipt/{meta}"))["state"] == "viewed"
    assert [r["metadata_key"] for r in ok(api.get("/receipt/recent", auth=ALICE))] == [meta]
    v1_error(api.get("/receipt/recent"), "Not authorized", "401")
    burned = ok(api.post(f"/receipt/{meta}/burn"))
    assert burned["state"]["state"] == "burned"


# -- 9. Ruby's doubled URL -------------------------------------------------------------


@pytest.mark.parametrize("middle", [
    "http:/localhost:7143/api/v1",
    "http://127.0.0.1:7143/api/v1",
    "anything",
])
def test_rubys_doubled_secret_path_reveals(api: httpx.Client, middle: str):
    shared = ok(api.post("/share", data={"secret": "ruby", "passphrase": "pw"}))
    key = shared["secret_key"]
    response = api.post(f"/secret/{middle}/secret/{key}", data={"passphrase": "pw"})
    assert ok(response) == {"value": "ruby", "secret_key": key}
    v1_error(api.post(f"/secret/{middle}/secret/{key}"), "Unknown secret")


# -- share_domain ----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/share", "/generate"])
def test_a_listed_share_domain_builds_the_links(server: ServedApp, endpoint: str):
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=True) as web:
        made = ok(web.post("/api/v1" + endpoint,
                           data={"secret": "domained", "share_domain": "LINKS.example.org"}))
        assert made["share_domain"] == "links.example.org"
        meta, key = made["metadata_key"], made["secret_key"]
        page = web.get(f"/private/{meta}").text
        assert f"https://links.example.org/secret/{key}" in page
        assert "http://ots.test/secret/" not in page
        receipt = ok(web.get(f"/api/v1/private/{meta}"))
        assert "share_domain" not in receipt  # receipts never carry it
        revealed = ok(web.post(f"/api/v1/secret/{key}"))
        assert set(revealed) == {"value", "secret_key"}


def test_share_and_generate_always_say_share_domain(api: httpx.Client):
    assert ok(api.post("/share", data={"secret": "x"}))["share_domain"] == ""
    assert ok(api.post("/generate", data={"share_domain": ""}))["share_domain"] == ""


def test_an_unlisted_share_domain_is_refused_with_nothing_stored(api: httpx.Client):
    before = len(ok(api.get("/private/recent", auth=ALICE)))
    for endpoint in ("/share", "/generate"):
        body = v1_error(api.post(endpoint, data={"secret": "x", "share_domain": "evil.example"},
                                 auth=ALICE), _unlisted("evil.example"), "400")
        assert set(body) == {"message"}
    assert len(ok(api.get("/private/recent", auth=ALICE))) == before


def _unlisted(domain: str) -> str:
    return (f"Unknown share_domain {domain!r}: this server builds links only on the host names "
            "in its SHARE_DOMAINS setting. Nothing was stored.")


def test_share_domain_in_the_ots_cli_output(server: ServedApp, capsys: Any):
    from bot import cli

    code = cli.main(["--url", server.url, "share", "--share-domain", "secrets.example.com",
                     "from the cli"])
    assert code == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://secrets.example.com/secret/")
    key = link.rsplit("/", 1)[1]
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as api:
        assert ok(api.post(f"/secret/{key}"))["value"] == "from the cli"
