"""With every logger at DEBUG, no secret, key or link reaches a log line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from bot.config import Settings
from bot.logs import PINNED
from bot.web.app import create_app
from tests.support.fake_slack import FakeSlack
from tests.support.servers import ServedApp
from tests.support.slack_requests import command_body, post_signed

SECRET = "log-canary-Zq8xW3vN-secret"
KEY = re.compile(r"/secret/([0-9a-z]{31,})")


@pytest.fixture
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Root and every logger already known at DEBUG, as an operator debugging might set."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog


def test_whole_ots_flow_and_bad_signature_log_no_secret(
    debug_everywhere: pytest.LogCaptureFixture, app_env: dict[str, str], fake_slack: FakeSlack
) -> None:
    with ServedApp(create_app(Settings.from_env(app_env))) as served:
        for name in PINNED:  # the app pins these whatever the operator set
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
        post_signed(served.url, command_body(SECRET, response_url=fake_slack.response_url()))
        reply = json.dumps(fake_slack.wait_for("response_url")[0].body["blocks"])
        link = KEY.search(reply)
        assert link is not None
        url = f"{served.url}{link.group(0)}"
        assert httpx.get(url).status_code == 200
        assert SECRET in httpx.post(url).text
        assert httpx.post(url).status_code == 404

        bad = command_body(SECRET + "-bad", response_url=fake_slack.response_url())
        assert post_signed(served.url, bad, secret="wrong").status_code == 401

    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in debug_everywhere.records
    )
    assert debug_everywhere.records, "the flow logged nothing at all: the capture is broken"
    assert SECRET not in logged
    assert link.group(1) not in logged
    assert "/secret/" not in logged
