"""Distribution mode: one deployment installed into two workspaces and an org.

Real HTTP to the served app, signed requests, the fake Slack answering
oauth.v2.access, auth.test per token and recording each call's Authorization
header; installations kept in a real SQLite file or a real redis-server.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from bot.config import ConfigError, Settings
from bot.slack import ids
from bot.web.app import create_app
from tests.support.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack, Grant
from tests.support.servers import TEST_SERVER_KEY, ServedApp
from tests.support.slack_requests import SIGNING_SECRET, interactive_body, post_signed
from tests.support.slack_world import eventually, find_element, new_user

ALPHA = Grant("T0ALPHA", "Alpha")
BETA = Grant("T0BETA", "Beta")
ORG = Grant(None, "Org", enterprise_id="E0ORG", org_wide=True)
ORG_WORKSPACE = "T0ORGWS"  # a workspace of the org, served by the org-wide install


def distribution_env(fake: FakeSlack, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "PUBLIC_URL": "http://ots.test",
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        **extra,
    }


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        fake_slack: FakeSlack) -> Iterator[ServedApp]:
    extra = {}
    if kind == "redis":
        extra = {"REDIS_URL": request.getfixturevalue("redis_url"),
                 "SERVER_KEY": TEST_SERVER_KEY}
    settings = Settings.from_env(distribution_env(fake_slack, tmp_path / "data", **extra))
    with ServedApp(create_app(settings)) as served:
        yield served


def install(app: ServedApp, fake: FakeSlack, grant: Grant) -> httpx.Response:
    """The whole browser side of "Add to Slack": install page, Slack, redirect back."""
    page = httpx.get(f"{app.url}{ids.INSTALL_PATH}")
    assert page.status_code == 200
    authorize = re.search(r'href="(https://slack.com/[^"]+)"', page.text)
    assert authorize is not None
    query = parse_qs(urlsplit(authorize.group(1).replace("&amp;", "&")).query)
    state = query["state"][0]
    cookie = page.headers["set-cookie"].split(";")[0]
    code = fake.grant(grant)
    return httpx.get(f"{app.url}{ids.OAUTH_REDIRECT_PATH}",
                     params={"code": code, "state": state}, headers={"Cookie": cookie})


def command(app: ServedApp, fake: FakeSlack, *, team: str, user: str, text: str = "",
            enterprise: str | None = None, org_wide: bool = False) -> tuple[httpx.Response, str]:
    trigger = fake.new_trigger()
    fields = {
        "team_id": team, "team_domain": team.lower(), "channel_id": "C0GENERAL",
        "channel_name": "general", "user_id": user, "user_name": user.lower(),
        "command": "/ots", "text": text, "api_app_id": "A0OTS",
        "is_enterprise_install": "true" if org_wide else "false",
        "response_url": fake.response_url(), "trigger_id": trigger,
    }
    if enterprise:
        fields["enterprise_id"] = enterprise
    return post_signed(app.url, urlencode(fields).encode()), fields["response_url"]


def bearer(call: Any) -> str:
    return {k.lower(): v for k, v in call.headers.items()}["authorization"].removeprefix("Bearer ")


def test_the_install_page_offers_add_to_slack_with_the_page_protections(
    app: ServedApp,
) -> None:
    page = httpx.get(f"{app.url}{ids.INSTALL_PATH}")
    assert page.status_code == 200
    assert "Add to Slack" in page.text
    link = re.search(r'href="(https://slack.com/[^"]+)"', page.text)
    assert link and link.group(1).startswith("https://slack.com/oauth/v2/authorize?")
    query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [",".join(ids.BOT_SCOPES)]
    assert query["redirect_uri"] == ["http://ots.test" + ids.OAUTH_REDIRECT_PATH]
    for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert header in page.headers
    assert page.headers["cache-control"] == "no-store"


def test_two_workspaces_and_an_org_are_each_served_with_their_own_token(
    app: ServedApp, fake_slack: FakeSlack
) -> None:
    for grant in (ALPHA, BETA, ORG):
        done = install(app, fake_slack, grant)
        assert done.status_code == 200, done.text
        assert "is now installed in" in done.text
    tokens = {
        "T0ALPHA": fake_slack.tokens_of("T0ALPHA")[0],
        "T0BETA": fake_slack.tokens_of("T0BETA")[0],
        ORG_WORKSPACE: fake_slack.tokens_of(None, "E0ORG")[0],
    }
    assert len(set(tokens.values())) == 3
    for team, token in tokens.items():
        org = team == ORG_WORKSPACE
        before = len(fake_slack.calls_to("views.open"))
        ack, _ = command(app, fake_slack, team=team, user=new_user(),
                         enterprise="E0ORG" if org else None, org_wide=org)
        assert ack.status_code == 200
        opened = fake_slack.wait_for("views.open", count=before + 1)
        assert bearer(opened[before]) == token, team


def test_a_replayed_oauth_callback_installs_nothing(app: ServedApp, fake_slack: FakeSlack) -> None:
    page = httpx.get(f"{app.url}{ids.INSTALL_PATH}")
    state = parse_qs(urlsplit(re.search(r'href="(https://slack.com/[^"]+)"', page.text).group(1)
                              .replace("&amp;", "&")).query)["state"][0]
    cookie = page.headers["set-cookie"].split(";")[0]
    first = httpx.get(f"{app.url}{ids.OAUTH_REDIRECT_PATH}",
                      params={"code": fake_slack.grant(ALPHA), "state": state},
                      headers={"Cookie": cookie})
    assert first.status_code == 200
    again = httpx.get(f"{app.url}{ids.OAUTH_REDIRECT_PATH}",
                      params={"code": fake_slack.grant(BETA), "state": state},
                      headers={"Cookie": cookie})
    assert again.status_code == 401 and "already used or has expired" in again.text
    assert fake_slack.tokens_of("T0BETA") == []
    forged = httpx.get(f"{app.url}{ids.OAUTH_REDIRECT_PATH}",
                       params={"code": fake_slack.grant(BETA), "state": "made-up"},
                       headers={"Cookie": "slack-app-oauth-state=made-up"})
    assert forged.status_code == 401


def test_a_button_of_one_workspace_does_nothing_in_another(
    app: ServedApp, fake_slack: FakeSlack
) -> None:
    install(app, fake_slack, ALPHA)
    install(app, fake_slack, BETA)
    alice = new_user()
    _, response_url = command(app, fake_slack, team="T0ALPHA", user=alice,
                              text="alpha-only-secret")
    path = urlsplit(response_url).path
    answer = eventually(lambda: next((c.body for c in fake_slack.calls_to("response_url")
                                      if c.path == path), None), what="the link")
    link = re.search(r"http://ots\.test/secret/([0-9a-z]+)", json.dumps(answer)).group(1)
    button, block_id = find_element(answer, ids.BURN_ACTION)

    def click(team: str) -> httpx.Response:
        payload = {
            "type": "block_actions", "team": {"id": team}, "api_app_id": "A0OTS",
            "user": {"id": alice, "team_id": team}, "trigger_id": fake_slack.new_trigger(),
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0GENERAL",
                          "is_ephemeral": True},
            "channel": {"id": "C0GENERAL"}, "response_url": fake_slack.response_url(),
            "actions": [{"action_id": ids.BURN_ACTION, "block_id": block_id, "type": "button",
                         "value": button["value"], "action_ts": "1.3",
                         "text": button["text"]}],
        }
        return post_signed(app.url, interactive_body(payload))

    assert click("T0BETA").status_code == 200  # the same user id, pressed from Beta
    time.sleep(0.5)
    reveal = httpx.get(f"{app.url}/secret/{link}")
    assert reveal.status_code == 200  # still there: nothing was burned
    assert click("T0ALPHA").status_code == 200
    eventually(lambda: httpx.get(f"{app.url}/secret/{link}").status_code == 404 or None,
               what="the burn from its own workspace")


def events_body(team: str | None, event: dict[str, Any], enterprise: str | None = None) -> bytes:
    return json.dumps({
        "token": "legacy", "team_id": team, "enterprise_id": enterprise, "api_app_id": "A0OTS",
        "type": "event_callback", "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()),
        "event": event, "is_enterprise_install": team is None,
        "authorizations": [{"team_id": team, "enterprise_id": enterprise, "user_id": "U0BOT",
                            "is_bot": True, "is_enterprise_install": team is None}],
    }).encode()


def post_event(app: ServedApp, body: bytes) -> httpx.Response:
    from tests.support.slack_requests import signature

    now = int(time.time())
    return httpx.post(f"{app.url}/slack/events", content=body, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": signature(body, now)})


def test_uninstall_and_revoke_remove_one_workspace_and_leave_the_others(
    app: ServedApp, fake_slack: FakeSlack
) -> None:
    for grant in (ALPHA, BETA, ORG):
        install(app, fake_slack, grant)
    assert post_event(app, events_body("T0BETA", {"type": "app_uninstalled"})).status_code == 200
    fake_slack.revoke_all("T0BETA")
    revoked = events_body(None, {"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}},
                          enterprise="E0ORG")
    assert post_event(app, revoked).status_code == 200
    fake_slack.revoke_all(None, "E0ORG")

    opened = len(fake_slack.calls_to("views.open"))
    command(app, fake_slack, team="T0BETA", user=new_user())
    command(app, fake_slack, team=ORG_WORKSPACE, user=new_user(), enterprise="E0ORG",
            org_wide=True)
    command(app, fake_slack, team="T0ALPHA", user=new_user())
    calls = fake_slack.wait_for("views.open", count=opened + 1)
    time.sleep(0.5)
    assert len(fake_slack.calls_to("views.open")) == opened + 1
    assert bearer(calls[-1]) == fake_slack.tokens_of("T0ALPHA")[0]


def test_a_rotating_token_is_refreshed_before_it_expires(
    app: ServedApp, fake_slack: FakeSlack
) -> None:
    # An hour left: within the two hours before expiry in which Bolt refreshes.
    rotating = Grant("T0ROT", "Rotating", rotating=True, expires_in=3600)
    install(app, fake_slack, rotating)
    (first,) = fake_slack.tokens_of("T0ROT")
    command(app, fake_slack, team="T0ROT", user=new_user())
    opened = fake_slack.wait_for("views.open")[-1]
    refreshes = [c for c in fake_slack.calls_to("oauth.v2.access")
                 if c.body.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    assert bearer(opened) != first and bearer(opened).startswith("xoxe.xoxb-")
    # The new token was saved: the next request needs no refresh.
    command(app, fake_slack, team="T0ROT", user=new_user())
    fake_slack.wait_for("views.open", count=2)
    assert len([c for c in fake_slack.calls_to("oauth.v2.access")
                if c.body.get("grant_type") == "refresh_token"]) == 1


def test_no_token_is_in_a_copy_of_the_store(
    kind: str, app: ServedApp, fake_slack: FakeSlack, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    for grant in (ALPHA, Grant("T0ROT", "Rotating", rotating=True), ORG):
        install(app, fake_slack, grant)
    if kind == "sqlite":
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir()
                          if p.name != "server.key")
    else:
        import redis

        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        stored = b"".join(k + (client.get(k) or b"") for k in client.scan_iter())
        client.close()
    assert stored, "the scan must see the store"
    for needle in (b"xoxb-", b"xoxe", b"T0ALPHA", b"E0ORG", b"Alpha"):
        assert needle not in stored


def test_allowed_teams_refuse_other_installs_and_revoke_their_token(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    env = distribution_env(fake_slack, tmp_path / "data", SLACK_ALLOWED_TEAMS="T0ALPHA")
    with ServedApp(create_app(Settings.from_env(env))) as app:
        refused = install(app, fake_slack, BETA)
        assert refused.status_code == 403
        assert "SLACK_ALLOWED_TEAMS" in refused.text
        assert fake_slack.tokens_of("T0BETA") == []  # revoked at once
        assert install(app, fake_slack, ALPHA).status_code == 200


@pytest.mark.parametrize(("env", "variable"), [
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s",
      "SLACK_SIGNING_SECRET": "x"}, "SLACK_CLIENT_ID"),
    ({"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "x"}, "SLACK_CLIENT_SECRET"),
    ({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s"}, "SLACK_SIGNING_SECRET"),
    ({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s", "SLACK_SIGNING_SECRET": "x",
      "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_APP_TOKEN"),
    ({"SLACK_ALLOWED_TEAMS": "alpha"}, "SLACK_ALLOWED_TEAMS"),
])
def test_distribution_settings_are_checked(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert "s" != str(caught.value)  # no secret echoed: the messages name variables only
