"""One served app, a fake Slack (and a fake Onetime Secret), and Slack's payloads.

A module shares one `SlackWorld` per backend to stay fast; each test makes its
own users (`new_user`), so calls recorded by the shared fake Slack can be told
apart by DM channel, response_url or trigger id.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot.config import Settings
from bot.slack import ids
from bot.web.app import create_app
from tests.support import fake_ots as fake_ots_module
from tests.support.fake_ots import FakeOTS
from tests.support.fake_slack import APP_TOKEN, TEAM_ID, Call, FakeSlack
from tests.support.servers import TEST_SERVER_KEY, ServedApp
from tests.support.slack_requests import (
    SIGNING_SECRET,
    command_body,
    command_fields,
    event_body,
    interactive_body,
    post_signed,
)

T = TypeVar("T")
KINDS = ("sqlite", "redis", "onetimesecret")
TEST_SCRYPT_N = 2**10


def signed_value(raw: str) -> dict[str, Any]:
    """What the app signed into a button value or private_metadata ("tag.json")."""
    tag, dot, value = raw.partition(".")
    assert dot and len(tag) == 32, "the app signs what it hands to Slack"
    return dict(json.loads(value))


def new_user() -> str:
    return "U" + uuid.uuid4().hex[:10].upper()


def eventually(probe: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(0.02)


def texts(body: dict[str, Any]) -> str:
    """Every string in a payload, for presence and absence checks."""
    return json.dumps(body)


class MovableClock:
    """The app's clock in tests: real time, moved forward on demand (past an expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    @contextlib.contextmanager
    def moved(self, seconds: float) -> Iterator[None]:
        self.offset += seconds
        try:
            yield
        finally:
            self.offset -= seconds


@dataclass
class SocketAck:
    """The app's acknowledgement of a Socket Mode envelope, read like an HTTP ack."""

    payload: dict[str, Any] | None
    status_code: int = 200

    @property
    def text(self) -> str:
        return json.dumps(self.payload) if self.payload else ""

    def json(self) -> Any:
        return self.payload


@dataclass
class SlackWorld:
    served: ServedApp
    fake: FakeSlack
    kind: str
    fake_ots: FakeOTS | None
    settings: Settings
    clock: MovableClock

    @property
    def link_origin(self) -> str:
        return self.fake_ots.url if self.fake_ots else "http://ots.test"

    # -- requests as Slack sends them ----------------------------------------

    def command(self, text: str, *, user: str, channel: str = "C0GENERAL",
                trigger: str | None = None) -> tuple[httpx.Response, str, str]:
        """`/ots text`; returns (the ack, its response_url, its trigger id)."""
        response_url = self.fake.response_url()
        trigger = trigger or self.fake.new_trigger()
        if self.fake.socket is not None:
            fields = command_fields(text, response_url=response_url, user_id=user,
                                    trigger_id=trigger, channel_id=channel)
            return self._envelope("slash_commands", fields), response_url, trigger
        body = command_body(text, response_url=response_url, user_id=user,
                            trigger_id=trigger, channel_id=channel)
        return post_signed(self.served.url, body), response_url, trigger

    def interact(self, payload: dict[str, Any]) -> Any:
        """Over signed HTTP, or as a Socket Mode envelope when the world uses Socket Mode."""
        if self.fake.socket is not None:
            return self._envelope("interactive", payload)
        return post_signed(self.served.url, interactive_body(payload))

    def _envelope(self, kind: str, payload: dict[str, Any]) -> SocketAck:
        assert self.fake.socket is not None
        return SocketAck(self.fake.socket.send(kind, payload).get("payload"))

    def home_opened(self, user: str, tab: str = "home") -> httpx.Response:
        """The user opens the app's Home tab (an `app_home_opened` event)."""
        event = {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": tab,
                 "event_ts": f"{time.time():.6f}"}
        return post_signed(self.served.url, event_body(event), content_type="application/json")

    def home_of(self, user: str, count: int = 1) -> dict[str, Any]:
        """The Home tab as last published for `user`, once `count` were published."""
        homes = eventually(lambda: (lambda h: h if len(h) >= count else None)(
            self.fake.published_homes(user)), what=f"{count} Home tab(s) for {user}")
        return homes[-1]

    def click_in_home(self, home: dict[str, Any], action_id: str, *, user: str,
                      index: int = 0) -> httpx.Response:
        """Press a button in the Home tab (no response_url: a view's buttons have none)."""
        button, block_id = find_element(home, action_id, index)
        payload = {
            **self._common(user), "type": "block_actions",
            "container": {"type": "view", "view_id": "VHOME"},
            "trigger_id": self.fake.new_trigger(),
            "view": {**home, "id": "VHOME", "hash": "h", "team_id": TEAM_ID},
            "actions": [{"action_id": action_id, "block_id": block_id, "type": "button",
                         "value": button.get("value", ""), "action_ts": "1700000000.4",
                         "text": button["text"]}],
        }
        return self.interact(payload)

    def _common(self, user: str) -> dict[str, Any]:
        return {
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0OTS",
            "token": "legacy",
        }

    def global_shortcut(self, *, user: str, trigger: str | None = None) -> tuple[
            httpx.Response, str]:
        trigger = trigger or self.fake.new_trigger()
        payload = {**self._common(user), "type": "shortcut", "callback_id": ids.SHARE_SHORTCUT,
                   "trigger_id": trigger, "action_ts": "1700000000.000001"}
        return self.interact(payload), trigger

    def message_shortcut(self, text: str | None, *, user: str, trigger: str | None = None,
                         author: str = "U0BOB") -> tuple[httpx.Response, str, str]:
        """The shortcut on a message by `author` (someone else unless it is `user`)."""
        trigger = trigger or self.fake.new_trigger()
        response_url = self.fake.response_url()
        message: dict[str, Any] = {"type": "message", "user": author, "ts": "1700000000.000100"}
        if text is not None:
            message["text"] = text
        payload = {
            **self._common(user), "type": "message_action",
            "callback_id": ids.MESSAGE_SHORTCUT, "trigger_id": trigger,
            "response_url": response_url, "channel": {"id": "C0GENERAL", "name": "general"},
            "message": message, "message_ts": message["ts"], "action_ts": "1700000000.2",
        }
        return self.interact(payload), response_url, trigger

    def submit(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *,
               user: str, view_id: str = "V0SUBMIT") -> httpx.Response:
        state = {block: {action: answer} for block, (action, answer) in
                 ((b, next(iter(v.items()))) for b, v in values.items())}
        payload = {
            **self._common(user), "type": "view_submission",
            "trigger_id": self.fake.new_trigger(),
            "view": {**view, "id": view_id, "hash": "h", "team_id": TEAM_ID,
                     "state": {"values": state}},
            "response_urls": [],
        }
        return self.interact(payload)

    def click(self, message: dict[str, Any], action_id: str, *, user: str,
              channel: str, ts: str = "1700000000.000200") -> tuple[httpx.Response, str, str]:
        """Press a button in a posted message; returns (ack, response_url, trigger)."""
        button, block_id = find_element(message, action_id)
        trigger, response_url = self.fake.new_trigger(), self.fake.response_url()
        payload = {
            **self._common(user), "type": "block_actions",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel,
                          "is_ephemeral": channel.startswith("C")},
            "trigger_id": trigger, "channel": {"id": channel, "name": "x"},
            "message": {"type": "message", "ts": ts, **message},
            "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": block_id, "type": "button",
                         "value": button.get("value", ""), "action_ts": "1700000000.3",
                         "text": button["text"]}],
        }
        return self.interact(payload), response_url, trigger

    # -- what reached Slack ----------------------------------------------------

    def replies(self, response_url: str, count: int = 1) -> list[dict[str, Any]]:
        path = response_url[len(self.fake.url):]

        def probe() -> list[Call] | None:
            found = [c for c in self.fake.calls_to("response_url") if c.path == path]
            return found if len(found) >= count else None

        return [c.body for c in eventually(probe, what=f"{count} post(s) to {path}")]

    def dms(self, user: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        def probe() -> list[Call] | None:
            found = [c for c in self.fake.calls_to("chat.postMessage")
                     if c.body.get("channel") == f"D{user}"]
            return found if len(found) >= count else None

        return [c.body for c in eventually(probe, timeout, what=f"{count} DM(s) to {user}")]

    def opened_view(self, trigger: str) -> dict[str, Any]:
        call = eventually(lambda: next((c for c in self.fake.calls_to("views.open")
                                        if c.body.get("trigger_id") == trigger), None),
                          what=f"views.open with {trigger}")
        # The fake records the call a moment before it answers with the view's id:
        # tests that read view_ids[trigger] next must not lose that race.
        eventually(lambda: self.fake.view_ids.get(trigger), what=f"the view of {trigger}")
        view = call.body["view"]
        return view if isinstance(view, dict) else dict(json.loads(view))

    def updated_views(self, view_id: str, count: int = 1) -> list[dict[str, Any]]:
        def probe() -> list[Call] | None:
            found = [c for c in self.fake.calls_to("views.update")
                     if c.body.get("view_id") == view_id]
            return found if len(found) >= count else None

        return [c.body["view"] for c in eventually(probe, what=f"views.update of {view_id}")]

    def everything_sent(self) -> str:
        return self.fake.all_text()


def find_element(message: dict[str, Any], action_id: str,
                 index: int = 0) -> tuple[dict[str, Any], str]:
    """The `index`-th element with `action_id` (in actions blocks or as an accessory)."""
    found = [
        (element, block.get("block_id", "b"))
        for block in message.get("blocks", [])
        for element in [*block.get("elements", []), block.get("accessory") or {}]
        if element.get("action_id") == action_id
    ]
    if len(found) <= index:
        raise AssertionError(f"no {action_id} in {message}")
    return found[index]


def share_values(*, secret: str | None = None, passphrase: str | None = None,
                 ttl: int = 7 * 86400, recipients: tuple[str, ...] = (),
                 generate: bool = False, label: str | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """The state of a submitted share modal."""
    return {
        ids.LABEL_BLOCK: {ids.LABEL_INPUT: {"type": "plain_text_input", "value": label}},
        ids.SECRET_BLOCK: {ids.SECRET_INPUT: {"type": "plain_text_input", "value": secret}},
        ids.GENERATE_BLOCK: {ids.GENERATE_INPUT: {
            "type": "checkboxes",
            "selected_options": [{"value": "generate"}] if generate else []}},
        ids.PASSPHRASE_BLOCK: {ids.PASSPHRASE_INPUT: {
            "type": "plain_text_input", "value": passphrase}},
        ids.TTL_BLOCK: {ids.TTL_INPUT: {
            "type": "static_select", "selected_option": {"value": str(ttl)}}},
        ids.RECIPIENTS_BLOCK: {ids.RECIPIENTS_INPUT: {
            "type": "multi_users_select", "selected_users": list(recipients)}},
    }


def passphrase_values(passphrase: str | None) -> dict[str, dict[str, Any]]:
    return {ids.REVEAL_PASSPHRASE_BLOCK: {ids.REVEAL_PASSPHRASE_INPUT: {
        "type": "plain_text_input", "value": passphrase}}}


@contextlib.contextmanager
def slack_world(kind: str, workdir: Path, redis_url: str | None,
                change: Callable[[Settings], Settings] | None = None, *,
                anonymous: bool = False, socket_mode: bool = False,
                **extra: str) -> Iterator[SlackWorld]:
    """The whole app as `python -m bot` builds it, on the chosen backend.

    `change` adjusts the settings beyond what the environment allows (e.g. a request
    lifetime of seconds, so that a test can watch one expire).
    `anonymous`: on Onetime Secret, without an account (no OTS_USERNAME/OTS_API_TOKEN).
    `socket_mode`: Slack talks to the app over the fake's websocket, not signed HTTP.
    """
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeSlack(socket_mode=socket_mode))
        connection = ({"SLACK_APP_TOKEN": APP_TOKEN} if socket_mode
                      else {"SLACK_SIGNING_SECRET": SIGNING_SECRET})
        env = {
            "DATA_DIR": str(workdir),
            "SLACK_BOT_TOKEN": fake.token,
            **connection,
            "SLACK_API_URL": fake.api_url,
            "PUBLIC_URL": "http://ots.test",
            **extra,
        }
        ots = None
        if kind == "redis":
            assert redis_url is not None
            env["REDIS_URL"] = redis_url
            env["SERVER_KEY"] = TEST_SERVER_KEY
        if kind == "onetimesecret":
            ots = stack.enter_context(FakeOTS())
            env["OTS_URL"] = ots.url
            if not anonymous:
                env["OTS_USERNAME"] = fake_ots_module.USERNAME
                env["OTS_API_TOKEN"] = fake_ots_module.API_TOKEN
        settings = Settings.from_env(env)
        if change is not None:
            settings = change(settings)
        clock = MovableClock()
        # scrypt's cost changes how long a passphrase check takes, nothing else.
        served = stack.enter_context(
            ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N, clock=clock))
        )
        if fake.socket is not None:
            fake.socket.wait_connected()
        yield SlackWorld(served, fake, kind, ots, settings, clock)


LINK = re.compile(r"https?://[^\s<>|\"]+/secret/([0-9A-Za-z]{20,})")


def link_in(body: dict[str, Any]) -> str:
    match = LINK.search(body.get("text", "")) or LINK.search(json.dumps(body))
    assert match, body
    return match.group(0)


def reveal_by_link(world: SlackWorld, link: str, passphrase: str | None = None) -> str | None:
    """Reveal through the backend's own v1 API, as a program holding the link would."""
    key = LINK.search(link)
    assert key, link
    base = world.fake_ots.url if world.fake_ots else world.served.url
    data = {"passphrase": passphrase} if passphrase else {}
    response = httpx.post(f"{base}/api/v1/secret/{key.group(1)}", data=data, timeout=10)
    if response.status_code != 200:
        return None
    return str(response.json()["value"])
