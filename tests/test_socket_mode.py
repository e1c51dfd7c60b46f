"""Socket Mode end to end: Slack's side is the fake's `apps.connections.open` and its
websocket (aiohttp on 127.0.0.1). In process: a full `/ots` flow, a modal submission
and a Reveal in Slack, on the embedded store and on Onetime Secret. As `python -m bot`
processes: a rejected app token, an unreachable Slack, and SIGTERM, with the web side
serving all the while.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.slack import ids
from tests.support import fake_ots as fake_ots_module
from tests.support.block_kit import validate_recorded
from tests.support.fake_ots import FakeOTS
from tests.support.fake_slack import APP_TOKEN, FakeSlack
from tests.support.server_process import ServerProcess
from tests.support.servers import free_port
from tests.support.slack_world import (
    SlackWorld,
    eventually,
    link_in,
    new_user,
    reveal_by_link,
    slack_world,
)
from tests.test_slack_recipients import reveal_in_slack, revealed_value, share_to

SOCKET_KINDS = ("sqlite", "onetimesecret")


@pytest.fixture(scope="module", params=SOCKET_KINDS)
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("socket"), None,
                     socket_mode=True) as world:
        yield world
        validate_recorded(world.fake)


def test_the_web_side_serves_and_slack_events_is_not_routed(world: SlackWorld) -> None:
    assert httpx.get(f"{world.served.url}/healthz", timeout=10).status_code == 200
    # No signing secret in Socket Mode: nothing answers signed HTTP from Slack.
    assert httpx.post(f"{world.served.url}/slack/events", timeout=10).status_code == 404


def test_ots_text_over_the_websocket(world: SlackWorld) -> None:
    alice = new_user()
    ack, response_url, _ = world.command("socket &amp; secret", user=alice)
    assert ack.status_code == 200 and ack.payload is None  # acknowledged at once
    reply = world.replies(response_url)[0]
    assert "Here is your one-time link" in json.dumps(reply)
    assert reveal_by_link(world, link_in(reply)) == "socket & secret"


def test_modal_submission_and_reveal_in_slack_over_the_websocket(world: SlackWorld) -> None:
    alice, bob = new_user(), new_user()
    reply = share_to(world, alice, bob, secret="over the socket", passphrase="pass")
    assert f"Sent a one-time secret to <@{bob}>" in reply["text"]
    dm = world.dms(bob)[0]
    view, answer = reveal_in_slack(world, dm, bob, passphrase="nope")
    assert answer["response_action"] == "errors"  # travels in the envelope's ack
    answer = world.submit(view, {ids.REVEAL_PASSPHRASE_BLOCK: {ids.REVEAL_PASSPHRASE_INPUT: {
        "type": "plain_text_input", "value": "pass"}}}, user=bob).json()
    assert revealed_value(answer) == "over the socket"
    assert reveal_by_link(world, link_in(dm), "pass") is None


def test_a_dropped_connection_is_opened_again(world: SlackWorld) -> None:
    assert world.fake.socket is not None
    before = world.fake.socket.connections
    world.fake.socket.drop()
    world.fake.socket.wait_connected(before + 1)
    ack, response_url, _ = world.command("after the drop", user=new_user())
    assert ack.status_code == 200
    assert reveal_by_link(world, link_in(world.replies(response_url)[0])) == "after the drop"


# -- as `python -m bot` ---------------------------------------------------------------


@contextlib.contextmanager
def bot_process(tmp_path: Path, api_url: str, app_token: str = APP_TOKEN, *,
                ots: FakeOTS | None = None) -> Iterator[ServerProcess]:
    env = {"DATA_DIR": str(tmp_path / "data"), "SLACK_BOT_TOKEN": "xoxb-test-token",
           "SLACK_APP_TOKEN": app_token, "SLACK_API_URL": api_url,
           "PUBLIC_URL": "http://ots.test"}
    if ots is not None:
        env.update(OTS_URL=ots.url, OTS_USERNAME=fake_ots_module.USERNAME,
                   OTS_API_TOKEN=fake_ots_module.API_TOKEN)
    with ServerProcess.python_m_bot(env, tmp_path / "bot.log") as server:
        yield server


def stops_on_sigterm(server: ServerProcess) -> float:
    """Seconds from SIGTERM to exit, after a clean shutdown (uvicorn re-raises the signal)."""
    started = time.monotonic()
    server.terminate()
    assert server.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log()
    return time.monotonic() - started


def share_over_api(server: ServerProcess) -> None:
    """The web side works: a secret goes in and comes out through /api/v1."""
    made = httpx.post(f"{server.url}/api/v1/share", data={"secret": "web-side"}, timeout=10)
    key = made.json()["secret_key"]
    shown = httpx.post(f"{server.url}/api/v1/secret/{key}", timeout=10)
    assert shown.json()["value"] == "web-side"


def test_connected_is_logged_once_connected_and_sigterm_stops(tmp_path: Path) -> None:
    with FakeSlack(socket_mode=True) as fake, bot_process(tmp_path, fake.api_url) as server:
        assert fake.socket is not None
        fake.socket.wait_connected()
        eventually(lambda: "Slack connected (Socket Mode)" in server.log(), what="the log line")
        assert server.log().count("Slack connected") == 1
        ack = fake.socket.send("slash_commands", {
            "command": "/ots", "text": "help", "user_id": "U0ALICE", "team_id": "T0TEST",
            "channel_id": "C0GENERAL", "response_url": fake.response_url(),
            "trigger_id": fake.new_trigger()})
        assert ack["envelope_id"]
        (usage,) = fake.wait_for("response_url")
        assert "Share a secret once" in usage.body["text"]
        fake.socket.send("slash_commands", {
            "command": "/ots", "text": "sock-secret-4711", "user_id": "U0ALICE",
            "team_id": "T0TEST", "channel_id": "C0GENERAL",
            "response_url": fake.response_url(), "trigger_id": fake.new_trigger()})
        link = link_in(fake.wait_for("response_url", 2)[1].body)
        assert "sock-secret-4711" not in server.log() and link not in server.log()
        assert stops_on_sigterm(server) < 10
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("kind", SOCKET_KINDS)
def test_a_rejected_app_token_is_one_error_line_and_the_web_side_serves(
    tmp_path: Path, kind: str
) -> None:
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeSlack(socket_mode=True))
        ots = stack.enter_context(FakeOTS()) if kind == "onetimesecret" else None
        server = stack.enter_context(
            bot_process(tmp_path, fake.api_url, "xapp-1-revoked", ots=ots))
        eventually(lambda: "REJECTED" in server.log().upper() or None, what="the error")
        assert httpx.get(f"{server.url}/healthz", timeout=10).json()["store"] == "reachable"
        if ots is None:
            share_over_api(server)
        time.sleep(3)  # three first backoffs' worth: no retry, no second line
        log = server.log()
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert len(errors) == 1, log
        assert "Slack rejected SLACK_APP_TOKEN (invalid_auth)" in errors[0]
        assert "xapp-1-revoked" not in log
        assert len(fake.calls_to("apps.connections.open")) == 0  # refused before recording
        assert fake.rejected == [("apps.connections.open", "invalid_auth")]
        assert "Slack connected" not in log and "Traceback" not in log
        assert stops_on_sigterm(server) < 10


def test_unreachable_slack_is_retried_with_backoff_while_the_web_side_serves(
    tmp_path: Path,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/api/"
    with bot_process(tmp_path, nobody) as server:
        share_over_api(server)
        eventually(lambda: server.log().count("could not be reached for Socket Mode") >= 3,
                   timeout=15, what="three attempts")
        log = server.log()
        delays = [line.rsplit("in ", 1)[1] for line in log.splitlines()
                  if "could not be reached for Socket Mode" in line]
        assert delays[:3] == ["1 s", "2 s", "4 s"]
        assert "Traceback" not in log and "Slack connected" not in log
        assert stops_on_sigterm(server) < 10
