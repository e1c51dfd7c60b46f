"""End to end: a signed /ots request, the ephemeral link, and the one-time reveal page."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.servers import ServedApp
from tests.support.slack_requests import command_body, post_signed

LINK = re.compile(r"http://ots\.test/secret/([0-9a-z]{31,})")
# A secret link on any backend (Onetime Secret links point to its server).
ANY_LINK = re.compile(r"https?://[^\s<>|]+/secret/[0-9A-Za-z]{20,}")

# Every test here also runs on the Onetime Secret backend, except those marked
# embedded_only (the reveal page is the embedded store's own).
pytestmark = pytest.mark.any_backend


def link_from(fake_slack: FakeSlack) -> str:
    reply = fake_slack.wait_for("response_url")[0].body
    assert reply["response_type"] == "ephemeral"
    assert reply["unfurl_links"] is False and reply["unfurl_media"] is False
    assert not LINK.search(reply["text"])  # previews (the text) never show a link
    match = LINK.search(json.dumps(reply["blocks"]))
    assert match, reply
    return match.group(0)


def local(served: ServedApp, link: str) -> str:
    return link.replace("http://ots.test", served.url)


@pytest.mark.embedded_only
@pytest.mark.redis_topologies
def test_ots_text_makes_a_link_that_reveals_once(served: ServedApp, fake_slack: FakeSlack):
    secret = "hunter2 & <friends> \"quoted\""
    escaped = "hunter2 &amp; &lt;friends&gt; \"quoted\""
    response = post_signed(
        served.url, command_body(escaped, response_url=fake_slack.response_url())
    )
    assert response.status_code == 200
    assert secret not in response.text

    url = local(served, link_from(fake_slack))
    for _ in range(2):  # link unfurlers and scanners fetch links: GET never consumes
        page = httpx.get(url)
        assert page.status_code == 200
        assert "Reveal secret" in page.text and "hunter2" not in page.text

    revealed = httpx.post(url)
    assert revealed.status_code == 200
    assert "hunter2 &amp; &lt;friends&gt; &quot;quoted&quot;" in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    assert revealed.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in revealed.headers["content-security-policy"]

    again = httpx.post(url)
    assert again.status_code == 404
    assert "hunter2" not in again.text
    assert httpx.get(url).status_code == 404
    assert secret not in fake_slack.all_text()


def test_ephemeral_reply_says_when_the_link_expires(served: ServedApp, fake_slack: FakeSlack):
    post_signed(served.url, command_body("s3cret", response_url=fake_slack.response_url()))
    reply = fake_slack.wait_for("response_url")[0].body
    assert "ready" in reply["text"] and not LINK.search(reply["text"])
    context = reply["blocks"][1]["elements"][0]["text"]
    expires = int(re.search(r"<!date\^(\d+)\^", context).group(1))
    assert abs(expires - (time.time() + 7 * 86400)) < 60


def test_ots_help_answers_with_usage(served: ServedApp, fake_slack: FakeSlack):
    # `/ots` alone opens the share modal: tests/test_slack_modal.py.
    for text in ("help", "  HELP "):
        fake_slack.reset()
        post_signed(served.url, command_body(text, response_url=fake_slack.response_url()))
        reply = fake_slack.wait_for("response_url")[0].body
        assert reply["response_type"] == "ephemeral"
        # Escaped for mrkdwn: a bare <text> would be read as Slack markup.
        assert "/ots &lt;text&gt;" in reply["text"] and "<text>" not in reply["text"]
        assert not ANY_LINK.search(json.dumps(reply))


def test_bad_signature_is_refused_and_stores_nothing(served: ServedApp, fake_slack: FakeSlack):
    body = command_body("never-stored", response_url=fake_slack.response_url())
    response = post_signed(served.url, body, secret="not-the-signing-secret")
    assert response.status_code == 401
    time.sleep(0.3)
    assert fake_slack.calls == []


def test_stale_timestamp_is_refused(served: ServedApp, fake_slack: FakeSlack):
    body = command_body("never-stored", response_url=fake_slack.response_url())
    response = post_signed(served.url, body, timestamp=int(time.time()) - 6 * 60)
    assert response.status_code == 401
    time.sleep(0.3)
    assert fake_slack.calls == []


def test_healthz_reports_the_store(served: ServedApp, store_kind: str):
    response = httpx.get(f"{served.url}/healthz")
    assert response.status_code == 200
    backend = "onetimesecret" if store_kind == "onetimesecret" else "embedded"
    assert response.json() == {"status": "ok", "backend": backend, "store": "reachable"}
