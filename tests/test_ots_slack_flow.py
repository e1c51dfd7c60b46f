"""/ots on the Onetime Secret backend, end to end: signed Slack request → the app →
the fake onetimesecret.com over real HTTP → the ephemeral link, and start-up checks.

(tests/test_slack_flow.py runs the backend-neutral Slack tests on this backend too.)
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.web.app import create_app
from tests.support.fake_ots import API_TOKEN, USERNAME, FakeOTS
from tests.support.fake_slack import FakeSlack
from tests.support.servers import ServedApp, free_port
from tests.support.slack_requests import command_body, post_signed


@pytest.fixture
def store_kind() -> str:
    return "onetimesecret"


def link_in(fake_slack: FakeSlack, origin: str) -> str:
    reply = fake_slack.wait_for("response_url")[0].body
    assert reply["response_type"] == "ephemeral" and reply["unfurl_links"] is False
    match = re.search(re.escape(origin) + r"/secret/([0-9a-z]{31,})", json.dumps(reply["blocks"]))
    assert match, reply
    return match.group(1)


def test_ots_stores_at_onetime_secret_and_the_link_reveals_once(
    served: ServedApp, fake_slack: FakeSlack, fake_ots: FakeOTS
):
    secret = "hunter2 & <friends>\n"
    post_signed(served.url, command_body("hunter2 &amp; &lt;friends&gt;\n",
                                         response_url=fake_slack.response_url()))
    key = link_in(fake_slack, fake_ots.url)

    [share] = fake_ots.requests_to("/api/v1/share")
    assert share.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert share.custid == USERNAME  # Basic credentials, sent without a challenge
    assert share.params["secret"] == [secret]

    first = httpx.post(f"{fake_ots.url}/api/v1/secret/{key}")
    assert first.json()["value"] == secret
    again = httpx.post(f"{fake_ots.url}/api/v1/secret/{key}")
    assert again.json()["message"] == "Unknown secret"
    assert "hunter2" not in fake_slack.all_text()


@pytest.mark.parametrize(("message", "words"), [
    ("Rate limit exceeded. Please try again later.", "Too many requests"),
    ("Not authorized", "rejected the credentials"),
], ids=["rate-limited", "not-authorized"])
def test_a_refusal_reaches_the_sender_and_nothing_else(
    served: ServedApp, fake_slack: FakeSlack, fake_ots: FakeOTS, message: str, words: str
):
    fake_ots.fail_next("/share", message=message)
    post_signed(served.url, command_body("s3cret-refused", response_url=fake_slack.response_url()))
    reply = fake_slack.wait_for("response_url")[0].body
    assert reply["response_type"] == "ephemeral"
    assert "not saved" in reply["text"] and words in reply["text"]
    assert "s3cret-refused" not in fake_slack.all_text()
    assert API_TOKEN not in fake_slack.all_text()


def test_an_html_502_reaches_the_sender_as_unavailable(
    served: ServedApp, fake_slack: FakeSlack, fake_ots: FakeOTS
):
    fake_ots.fail_next("/share", 502, body=b"<html><h1>502 Bad Gateway</h1></html>",
                       content_type="text/html")
    post_signed(served.url, command_body("s3cret", response_url=fake_slack.response_url()))
    reply = fake_slack.wait_for("response_url")[0].body
    assert "not saved" in reply["text"] and "try again" in reply["text"]
    assert "<html" not in reply["text"]
    assert len(fake_ots.requests_to("/api/v1/share")) == 1  # a share is never retried


HOSTILE = ("<!channel> :rotating_light: Your account is locked: sign in again at "
           "<https://evil.example/login|onetimesecret.com> *now*")


def markup(payload: Any) -> list[str]:
    """Every text of a payload that Slack would read as mrkdwn (and so turn into
    mentions, links and formatting): a message's `text` and every mrkdwn object."""
    found = [payload["text"]] if isinstance(payload.get("text"), str) else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return found


def plain_texts(payload: Any) -> str:
    return json.dumps([e for b in payload.get("blocks", []) for e in b.get("elements", [])
                       if isinstance(e, dict) and e.get("type") == "plain_text"],
                      ensure_ascii=False)


def assert_only_as_plain_text(payload: dict[str, Any]) -> None:
    for text in markup(payload):
        assert "<!channel>" not in text and "evil.example" not in text, text
        assert "rotating_light" not in text, text
    assert HOSTILE in json.loads(plain_texts(payload))[0]["text"]


@pytest.mark.parametrize("mention", ["", "<@U0BOB> "], ids=["link", "to-a-person"])
def test_the_services_words_never_reach_slack_as_mrkdwn(
    served: ServedApp, fake_slack: FakeSlack, fake_ots: FakeOTS, mention: str
):
    fake_ots.fail_next("/share", message=HOSTILE)
    post_signed(served.url, command_body(f"{mention}s3cret",
                                         response_url=fake_slack.response_url()))
    reply = fake_slack.wait_for("response_url")[0].body
    assert "not saved" in reply["text"] and "refused the request" in reply["text"]
    assert_only_as_plain_text(reply)


def test_the_services_words_in_a_modal_are_plain_text(
    served: ServedApp, fake_slack: FakeSlack, fake_ots: FakeOTS
):
    fake_ots.fail_next("/share", message=HOSTILE)  # (the app makes the password itself)
    post_signed(served.url, command_body("gen", response_url=fake_slack.response_url(),
                                         trigger_id=fake_slack.new_trigger()))
    [update] = fake_slack.wait_for("views.update")
    view = update.body["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert "refused the request" in json.dumps(view)
    assert_only_as_plain_text(view)


# -- start-up ----------------------------------------------------------------------------


def wait_for_record(caplog: pytest.LogCaptureFixture, words: str) -> logging.LogRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in caplog.records:
            if record.name == "bot" and words in record.getMessage():
                return record
        time.sleep(0.02)
    raise AssertionError(f"no log line with {words!r}: {caplog.text}")


def test_start_up_checks_the_credentials(fake_ots: FakeOTS, caplog: pytest.LogCaptureFixture):
    env = {"OTS_URL": fake_ots.url, "OTS_USERNAME": USERNAME, "OTS_API_TOKEN": API_TOKEN}
    with caplog.at_level(logging.INFO, logger="bot"), \
            ServedApp(create_app(Settings.from_env(env))):
        record = wait_for_record(caplog, "accepted the credentials")
    assert record.levelno == logging.INFO
    [check] = fake_ots.requests_to("/api/v1/authcheck")
    assert check.custid == USERNAME


def test_wrong_credentials_are_reported_at_start_up_without_the_token(
    fake_ots: FakeOTS, caplog: pytest.LogCaptureFixture
):
    env = {"OTS_URL": fake_ots.url, "OTS_USERNAME": USERNAME,
           "OTS_API_TOKEN": "not-the-right-token-0123"}
    with caplog.at_level(logging.INFO, logger="bot"), \
            ServedApp(create_app(Settings.from_env(env))):
        record = wait_for_record(caplog, "REJECTED")
    assert record.levelno == logging.ERROR
    assert "OTS_API_TOKEN" in record.getMessage()
    assert "not-the-right-token-0123" not in caplog.text


def test_a_region_that_is_down_does_not_stop_start_up(caplog: pytest.LogCaptureFixture):
    env = {"OTS_URL": f"http://127.0.0.1:{free_port()}"}
    with caplog.at_level(logging.INFO, logger="bot"), \
            ServedApp(create_app(Settings.from_env(env))) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=30).json()
        record = wait_for_record(caplog, "starting anyway")
    assert health == {"status": "degraded", "backend": "onetimesecret", "store": "unreachable"}
    assert record.levelno == logging.WARNING
