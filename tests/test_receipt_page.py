"""The sender's receipt page at /private/{metadata_key}: state, link while unread, Burn."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.web.app import create_app
from tests.support.servers import TEST_SCRYPT_N, ServedApp, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    env = {"DATA_DIR": str(tmp_path_factory.mktemp("receipts")), "PUBLIC_URL": "http://ots.test"}
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as served:
        yield served


@pytest.fixture
def web(server: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def share(web: httpx.Client, **data: str) -> dict[str, Any]:
    response = web.post("/api/v1/share", data={"secret": "receipt test", **data})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def receipt_page(web: httpx.Client, metadata_key: str) -> str:
    response = web.get(f"/private/{metadata_key}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    return response.text


def test_an_unread_secret_shows_its_link_and_a_burn_button(web: httpx.Client):
    shared = share(web)
    html = receipt_page(web, shared["metadata_key"])
    assert "Not viewed yet." in html
    assert f'<pre id="secret">http://ots.test/secret/{shared["secret_key"]}</pre>' in html
    # The answer to the form comes back in the language the page was read in.
    burn_form = f'<form method="post" action="/private/{shared["metadata_key"]}/burn?lang=en">'
    assert burn_form in html
    assert "receipt test" not in html
    # Looking at the receipt never uses up the secret.
    receipt_page(web, shared["metadata_key"])
    reveal = web.post(f"/api/v1/secret/{shared['secret_key']}")
    assert reveal.json()["value"] == "receipt test"


def test_the_copy_script_is_allowed_by_the_csp(web: httpx.Client):
    response = web.get(f"/private/{share(web)['metadata_key']}")
    script = re.search(r"<script>(.*?)</script>", response.text, re.S)
    style = re.search(r"<style>(.*?)</style>", response.text, re.S)
    assert script and style
    csp = response.headers["content-security-policy"]
    for source in (script.group(1), style.group(1)):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_a_passphrase_is_mentioned_never_shown(web: httpx.Client):
    html = receipt_page(web, share(web, passphrase="hidden words")["metadata_key"])
    assert "It needs the passphrase you set." in html
    assert "hidden words" not in html


def test_burn_posts_then_redirects_to_the_burned_receipt(web: httpx.Client):
    shared = share(web)
    meta = shared["metadata_key"]
    response = web.post(f"/private/{meta}/burn")
    assert response.status_code == 303
    assert response.headers["location"] == f"/private/{meta}?lang=en"
    html = receipt_page(web, meta)
    burned = r"Burned on \w+ \d{1,2}, \d{4} at \d\d:\d\d UTC\. Nobody can view it now\."
    assert re.search(burned, html)
    assert shared["secret_key"] not in html and "<form" not in html
    gone = web.post(f"/api/v1/secret/{shared['secret_key']}")
    assert gone.json()["message"] == "Unknown secret"


def test_a_received_secret_has_no_link_and_cannot_be_burned(web: httpx.Client):
    shared = share(web)
    meta = shared["metadata_key"]
    assert web.post(f"/secret/{shared['secret_key']}").status_code == 200
    html = receipt_page(web, meta)
    assert "Viewed by the recipient on" in html and "The link no longer works." in html
    assert shared["secret_key"] not in html and "Burn this secret" not in html
    # A late Burn changes nothing and lands on the receipt, which says why.
    assert web.post(f"/private/{meta}/burn").status_code == 303
    assert "Viewed by the recipient on" in receipt_page(web, meta)


def test_burn_is_post_only(web: httpx.Client):
    shared = share(web)
    assert web.get(f"/private/{shared['metadata_key']}/burn").status_code in (404, 405)
    assert "Not viewed yet." in receipt_page(web, shared["metadata_key"])


@pytest.mark.parametrize("key", ["abcdefghijklmnopqrstuvwxyz12345", "<b>bold"])
def test_an_unknown_receipt(web: httpx.Client, key: str):
    response = web.get(f"/private/{key}")
    assert response.status_code == 404
    assert "This receipt is not available" in response.text
    assert "<b>bold" not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_a_store_that_is_down_shows_a_503_page(data_dir: Path):
    env = {"DATA_DIR": str(data_dir), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as server:
        key = "abcdefghijklmnopqrstuvwxyz12345"
        for response in (httpx.get(f"{server.url}/private/{key}"),
                         httpx.post(f"{server.url}/private/{key}/burn")):
            assert response.status_code == 503
            assert "Temporarily unavailable" in response.text
