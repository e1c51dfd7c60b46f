"""Drift test: manifest.yml and the registered listeners agree.

Each command and shortcut the manifest declares is sent to the running app as
Slack would send it; Bolt answers 404 to a request no listener handles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.slack import ids
from tests.support.fake_slack import METHOD_SCOPES, FakeSlack
from tests.support.servers import ServedApp
from tests.support.slack_requests import (
    command_body,
    event_body,
    interactive_body,
    post_signed,
)

MANIFEST = yaml.safe_load((Path(__file__).parent.parent / "manifest.yml").read_text())
FEATURES = MANIFEST["features"]
COMMANDS = [c["command"] for c in FEATURES.get("slash_commands", [])]
SHORTCUTS = FEATURES.get("shortcuts", [])
EVENTS = MANIFEST["settings"].get("event_subscriptions", {}).get("bot_events", [])


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def shortcut_payload(shortcut: dict[str, Any], fake: FakeSlack) -> dict[str, Any]:
    common = {
        "callback_id": shortcut["callback_id"],
        "trigger_id": fake.new_trigger(),
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": "U0ALICE", "username": "alice", "team_id": "T0TEST"},
        "token": "legacy",
        "action_ts": "1700000000.000001",
    }
    if shortcut["type"] == "message":
        return {
            **common,
            "type": "message_action",
            "response_url": fake.response_url(),
            "channel": {"id": "C0GENERAL", "name": "general"},
            "message": {"type": "message", "text": "pw", "user": "U0BOB", "ts": "1.2"},
            "message_ts": "1.2",
        }
    return {**common, "type": "shortcut"}


def test_manifest_declares_what_the_app_needs() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "im:write"} <= scopes
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["interactivity"]["request_url"] == "https://YOUR-HOST/slack/events"
    for command in FEATURES["slash_commands"]:
        assert command["url"] == "https://YOUR-HOST/slack/events"
        assert command["should_escape"] is True
    for shortcut in SHORTCUTS:
        assert len(shortcut["name"]) <= 24


# How the code names each Web API method: slack_sdk's function, or the method itself.
_CALLED_AS = {
    "users.lookupByEmail": "users_lookupByEmail(",
    "users.info": "users_info(",
    "conversations.open": "conversations_open(",
    "chat.postMessage": '"chat.postMessage"',
    "chat.postEphemeral": '"chat.postEphemeral"',
}


def test_every_scope_the_code_needs_is_in_the_manifest() -> None:
    source = "\n".join(p.read_text() for p in (Path(__file__).parent.parent / "bot").rglob("*.py"))
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    called = {method for method, token in _CALLED_AS.items() if token in source}
    assert "users.lookupByEmail" in called  # API recipients are looked up by email
    assert set(_CALLED_AS) == set(METHOD_SCOPES)
    for method in called:
        assert METHOD_SCOPES[method] in scopes, (method, METHOD_SCOPES[method])


def test_every_id_constant_is_in_the_manifest() -> None:
    manifest_ids = set(COMMANDS) | {s["callback_id"] for s in SHORTCUTS}
    assert ids.COMMAND in manifest_ids
    for name in dir(ids):
        if name.endswith("_SHORTCUT"):
            assert getattr(ids, name) in manifest_ids, name


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_listener(command: str, served: ServedApp, fake_slack: FakeSlack):
    body = command_body("help", response_url=fake_slack.response_url()).replace(
        b"command=%2Fots", b"command=" + command.replace("/", "%2F").encode()
    )
    assert post_signed(served.url, body).status_code == 200


@pytest.mark.parametrize("shortcut", SHORTCUTS, ids=lambda s: s["callback_id"])
def test_every_shortcut_has_a_listener(
    shortcut: dict[str, Any], served: ServedApp, fake_slack: FakeSlack
) -> None:
    body = interactive_body(shortcut_payload(shortcut, fake_slack))
    response = post_signed(served.url, body)
    assert response.status_code == 200, json.dumps(shortcut)


def test_the_home_tab_is_declared_with_its_event() -> None:
    assert FEATURES["app_home"]["home_tab_enabled"] is True
    subscriptions = MANIFEST["settings"]["event_subscriptions"]
    assert subscriptions["request_url"] == "https://YOUR-HOST/slack/events"
    assert ids.HOME_OPENED_EVENT in EVENTS


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_has_a_listener(event: str, served: ServedApp, fake_slack: FakeSlack):
    body = event_body({"type": event, "user": "U0ALICE", "tab": "home",
                       "event_ts": "1700000000.000001"})
    response = post_signed(served.url, body, content_type="application/json")
    assert response.status_code == 200, event
    if event == ids.HOME_OPENED_EVENT:
        [home] = fake_slack.wait_for("views.publish")
        assert home.body["user_id"] == "U0ALICE"


DISTRIBUTION = yaml.safe_load(
    (Path(__file__).parent.parent / "manifest.distribution.yml").read_text()
)


def test_both_manifests_ask_for_the_scopes_the_code_asks_for() -> None:
    for manifest in (MANIFEST, DISTRIBUTION):
        assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == ids.BOT_SCOPES


def test_the_distribution_manifest_is_the_single_one_plus_installs() -> None:
    assert DISTRIBUTION["features"] == MANIFEST["features"]
    assert DISTRIBUTION["display_information"] == MANIFEST["display_information"]
    assert DISTRIBUTION["oauth_config"]["redirect_urls"] == [
        "https://YOUR-HOST" + ids.OAUTH_REDIRECT_PATH
    ]
    settings = DISTRIBUTION["settings"]
    assert settings["org_deploy_enabled"] is True
    assert settings["token_rotation_enabled"] is True
    assert settings["socket_mode_enabled"] is False  # Marketplace apps cannot use it
    assert settings["event_subscriptions"]["request_url"] == "https://YOUR-HOST/slack/events"
    assert {"app_uninstalled", "tokens_revoked"} <= set(
        settings["event_subscriptions"]["bot_events"]
    )
    single_events = set(MANIFEST["settings"].get("event_subscriptions", {}).get("bot_events", []))
    assert single_events <= set(settings["event_subscriptions"]["bot_events"])
