"""A fake of Slack's Web API and response_url endpoints, served over real HTTP.

It checks what Slack checks, so a test fails where Slack would say no: the bot
token on every Web API call, JSON bodies only with a JSON content type, the
required arguments of each method (from a JSON body, a form, or the query
string of a GET), Block Kit limits (`check_blocks`: text and button sizes,
unique block ids, initial values within max_length), trigger ids that are
fresh (3 s) and used once, views.update only of an opened view, and at most 5
posts per response_url. Every call is recorded with its parsed body; tests
poll for side effects with `wait_for`. Failures can be scripted per method
(`fail`, optionally only for calls whose body matches), including 429 with
Retry-After.

`FakeSocketMode` is Slack's Socket Mode side: `apps.connections.open` (checked
against the app-level token) hands out its websocket URL; tests push envelopes
(`slash_commands`, `interactive`) over it and read the app's acknowledgements.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

from tests.support.servers import LocalHTTPFake

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-A0OTS-test-app-token"
TEAM_ID = "T0TEST"
BOT_USER_ID = "U0BOT"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-client-secret"

_REQUIRED = {
    "chat.postMessage": ("channel",),
    "chat.postEphemeral": ("channel", "user"),
    "chat.update": ("channel", "ts"),
    "chat.delete": ("channel", "ts"),
    "views.open": ("trigger_id", "view"),
    "views.push": ("trigger_id", "view"),
    "views.update": ("view",),
    "views.publish": ("user_id", "view"),
    "conversations.open": ("users",),
    "users.info": ("user",),
    "conversations.info": ("channel",),
    "users.lookupByEmail": ("email",),
}
# The scope each method needs beyond the basics; the fake holds the manifest's scopes,
# so a method whose scope the manifest lacks fails here as it would at Slack.
METHOD_SCOPES = {
    "users.lookupByEmail": "users:read.email",
    "users.info": "users:read",
    "conversations.open": "im:write",
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
}


def manifest_scopes() -> frozenset[str]:
    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


@dataclass
class Call:
    method: str  # Web API method, or "response_url"
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = ""
    at: float = field(default_factory=time.monotonic)
    answer_ts: str | None = None  # the ts a chat.postMessage was answered with


@dataclass
class Grant:
    """An installation Slack would make when someone approves the app."""

    team_id: str | None
    team_name: str
    enterprise_id: str | None = None
    org_wide: bool = False
    rotating: bool = False  # token rotation: short-lived tokens and a refresh token
    expires_in: int = 43200  # seconds the first rotating token lives (refreshed ones: 12 hours)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    times: int
    match: dict[str, str] = field(default_factory=dict)

    def applies(self, body: dict[str, Any]) -> bool:
        return all(body.get(k) == v for k, v in self.match.items())


class FakeSocketMode:
    """Slack's Socket Mode websocket: aiohttp on 127.0.0.1, port 0, on its own thread."""

    def __init__(self) -> None:
        self.connections = 0  # websockets ever opened
        self.received: list[dict[str, Any]] = []  # what the app sent back
        self._open: list[web.WebSocketResponse] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(self._web_app(), access_log=None)
        self.port = self._run(self._start())

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/link", self._serve_socket)
        return app

    async def _start(self) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4().hex}"

    async def _serve_socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        with self._changed:
            self.connections += 1
            self._open.append(socket)
            self._changed.notify_all()
        await socket.send_json({"type": "hello", "num_connections": 1,
                                "debug_info": {"host": "fake"},
                                "connection_info": {"app_id": "A0OTS"}})
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                with self._changed:
                    self.received.append(json.loads(message.data))
                    self._changed.notify_all()
        with self._changed:
            self._open.remove(socket)
            self._changed.notify_all()
        return socket

    def wait_connected(self, count: int = 1, timeout: float = 15) -> None:
        """Until `count` websockets were opened and one is open now."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: self.connections >= count and bool(self._open), timeout
            ):
                raise AssertionError(f"the app opened {self.connections} websocket(s)")

    def send(self, kind: str, payload: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Push an envelope as Slack does; returns the app's acknowledgement of it."""
        envelope_id = uuid.uuid4().hex
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": True, "retry_attempt": 0, "retry_reason": ""}
        with self._changed:
            socket = self._open[-1]
        self._run(socket.send_json(envelope))
        with self._changed:
            found = self._changed.wait_for(lambda: next(
                (r for r in self.received if r.get("envelope_id") == envelope_id), None
            ), timeout)
        if not found:
            raise AssertionError(f"no acknowledgement of a {kind} envelope")
        return dict(found)

    def drop(self) -> None:
        """Close every open websocket, as Slack does when it refreshes a connection."""
        with self._changed:
            sockets = list(self._open)
        for socket in sockets:
            self._run(socket.close())

    def close(self) -> None:
        self.drop()
        self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class FakeSlack(LocalHTTPFake):
    def __init__(self, token: str = BOT_TOKEN, *, app_token: str = APP_TOKEN,
                 socket_mode: bool = False, scopes: frozenset[str] | None = None) -> None:
        self.token = token
        self.app_token = app_token
        self.socket = FakeSocketMode() if socket_mode else None
        self.scopes = manifest_scopes() if scopes is None else scopes
        self.calls: list[Call] = []
        self.rejected: list[tuple[str, str]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._response_posts: dict[str, int] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, str] = {}
        self.views: dict[str, dict[str, Any]] = {}  # open modals by view id
        self.view_ids: dict[str, str] = {}  # trigger id -> id of the view it opened
        # Installations (distribution mode): live bot tokens -> their grant.
        self.tokens: dict[str, Grant] = {token: Grant(TEAM_ID, "Test")}
        self._codes: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._issued = 0
        self._lock = threading.Lock()
        self._ts = 0
        self._serve(self._handler())

    # -- lifecycle ----------------------------------------------------------

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.socket is not None:
            self.socket.close()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # -- scripting ------------------------------------------------------------

    def response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    def new_trigger(self) -> str:
        trigger = f"trigger-{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = time.monotonic()
        return trigger

    def grant(self, grant: Grant) -> str:
        """An OAuth code for `grant`, as Slack puts it on the redirect after approval."""
        code = f"code-{uuid.uuid4().hex}"
        with self._lock:
            self._codes[code] = grant
        return code

    def tokens_of(self, team_id: str | None, enterprise_id: str | None = None) -> list[str]:
        with self._lock:
            return [t for t, g in self.tokens.items()
                    if g.team_id == team_id and g.enterprise_id == enterprise_id]

    def revoke_all(self, grant_team: str | None, enterprise_id: str | None = None) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        with self._lock:
            for token in [t for t, g in self.tokens.items()
                          if g.team_id == grant_team and g.enterprise_id == enterprise_id]:
                del self.tokens[token]

    def _issue(self, grant: Grant, *, refreshed: bool = False) -> dict[str, Any]:
        self._issued += 1
        prefix = "xoxe.xoxb-" if grant.rotating else "xoxb-"
        token = f"{prefix}{grant.team_id or grant.enterprise_id}-{self._issued}-{uuid.uuid4().hex}"
        self.tokens[token] = grant
        answer: dict[str, Any] = {
            "ok": True, "app_id": "A0OTS", "access_token": token, "token_type": "bot",
            "scope": "commands,chat:write,im:write,users:read", "bot_user_id": BOT_USER_ID,
            "team": {"id": grant.team_id, "name": grant.team_name} if grant.team_id else None,
            "enterprise": {"id": grant.enterprise_id, "name": "Org"}
            if grant.enterprise_id else None,
            "is_enterprise_install": grant.org_wide,
            "authed_user": {"id": "U0INSTALLER"},
        }
        if grant.rotating:
            refresh = f"xoxe-1-{uuid.uuid4().hex}"
            self._refresh[refresh] = grant
            answer.update(refresh_token=refresh,
                          expires_in=43200 if refreshed else grant.expires_in)
        return answer

    def _oauth_access(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        import base64

        basic = headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if basic != expected:
            return {"ok": False, "error": "invalid_client_id"}
        with self._lock:
            if body.get("grant_type") == "refresh_token":
                grant = self._refresh.pop(str(body.get("refresh_token")), None)
                if grant is None:
                    return {"ok": False, "error": "invalid_refresh_token"}
                return self._issue(grant, refreshed=True)
            grant = self._codes.pop(str(body.get("code")), None)
            if grant is None:
                return {"ok": False, "error": "invalid_code"}
            return self._issue(grant)

    def add_user(self, user_id: str, *, is_bot: bool = False, deleted: bool = False,
                 name: str | None = None, display_name: str = "",
                 email: str | None = None, locale: str = "en-US") -> None:
        self._users[user_id] = {
            "id": user_id, "name": name or user_id.lower(), "is_bot": is_bot, "locale": locale,
            "deleted": deleted, "real_name": name or user_id, "tz": "Europe/Berlin",
            "profile": {"display_name": display_name, "real_name": name or user_id,
                        **({"email": email} if email else {})},
        }

    def add_channel(self, channel_id: str, name: str) -> None:
        self._channels[channel_id] = name

    def fail(self, method: str, error: str, *, status: int = 200,
             retry_after: int | None = None, times: int = 1,
             match: dict[str, str] | None = None) -> None:
        """Answer the next `times` calls to `method` (whose body has `match`) with `error`."""
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(error, status, retry_after, times, dict(match or {}))
            )

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.rejected.clear()
            self._failures.clear()

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} call(s) to {method}, got {len(calls)}; "
                    f"all calls: {[c.method for c in self.calls]}; rejected: {self.rejected}"
                )
            time.sleep(0.02)

    def published_homes(self, user: str) -> list[dict[str, Any]]:
        """The Home tabs published for `user` (views.publish), oldest first."""
        return [c.body["view"] for c in self.calls_to("views.publish")
                if c.body.get("user_id") == user]

    def message_now(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A posted message as it reads now: the last chat.update of it, or as posted."""
        with self._lock:
            calls = list(self.calls)
        current = None
        for call in calls:
            if call.body.get("channel") != channel:
                continue
            if call.method == "chat.postMessage" and call.answer_ts == ts:
                current = call.body
            elif call.method == "chat.update" and call.body.get("ts") == ts:
                current = call.body
        return current

    def all_text(self) -> str:
        """Everything the app sent to Slack, as one string (for absence checks)."""
        with self._lock:
            return "\n".join(json.dumps(c.body) for c in self.calls)

    # -- the HTTP side --------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                self._answer(*fake._dispatch(self.path, dict(self.headers.items()), raw))

            def do_GET(self) -> None:
                # Read methods (users.info) arrive as GET with the arguments in the query.
                path, _, query = self.path.partition("?")
                headers = {**dict(self.headers.items()),
                           "Content-Type": "application/x-www-form-urlencoded"}
                self._answer(*fake._dispatch(path, headers, query.encode()))

            def _answer(self, status: int, payload: dict[str, Any],
                        headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _reject(self, method: str, why: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.rejected.append((method, why))
        return 200, {"ok": False, "error": why}, {}

    def _dispatch(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        lower = {k.lower(): v for k, v in headers.items()}
        content_type = lower.get("content-type", "").split(";")[0].strip()
        if path.startswith("/response/"):
            return self._response_url(path, content_type, lower, raw)
        if not path.startswith("/api/"):
            return 404, {"ok": False, "error": "unknown_path"}, {}
        method = path[len("/api/"):].split("?")[0]
        bearer = lower.get("authorization", "").removeprefix("Bearer ")
        # apps.connections.open takes the app-level token; everything else a bot token.
        if method == "apps.connections.open":
            accepted = bearer == self.app_token
        else:
            accepted = method == "oauth.v2.access" or bearer in self.tokens
        if not accepted:
            return self._reject(method, "invalid_auth")
        if content_type == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._reject(method, "invalid_json")
        elif content_type in ("application/x-www-form-urlencoded", ""):
            body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            for key in ("view", "blocks"):
                if isinstance(body.get(key), str):
                    try:
                        body[key] = json.loads(body[key])
                    except ValueError:
                        return self._reject(method, f"invalid_{key}")
        else:
            return self._reject(method, "invalid_form_data")
        # Slack reads arguments from the query string too (slack-sdk sends some there).
        query = path.partition("?")[2]
        body = {**{k: v[-1] for k, v in parse_qs(query).items()}, **body}
        call = Call(method, body, headers, path)
        with self._lock:
            self.calls.append(call)
            failures = self._failures.get(method) or []
            failure = next((f for f in failures if f.applies(body)), None)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    failures.remove(failure)
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return failure.status, {"ok": False, "error": failure.error}, extra
        scope = METHOD_SCOPES.get(method)
        if scope is not None and scope not in self.scopes:
            return 200, {"ok": False, "error": "missing_scope", "needed": scope}, {}
        missing = [a for a in _REQUIRED.get(method, ()) if not body.get(a)]
        if missing:
            return self._reject(method, f"missing_argument:{','.join(missing)}")
        problem = self._check_limits(method, body)
        if problem:
            return self._reject(method, problem)
        if method == "oauth.v2.access":
            return 200, self._oauth_access(lower, body), {}
        if method == "auth.revoke":
            with self._lock:
                self.tokens.pop(bearer, None)
            return 200, {"ok": True, "revoked": True}, {}
        answer = self._answer(method, body, self.tokens.get(bearer))
        if method == "chat.postMessage":
            call.answer_ts = answer.get("ts")
        return 200, answer, {}

    def _check_limits(self, method: str, body: dict[str, Any]) -> str | None:
        if method.startswith("chat.") and method != "chat.delete":
            if not (body.get("text") or body.get("blocks")):
                return "no_text"
            if len(body.get("blocks") or []) > 50:
                return "invalid_blocks"
            problem = check_blocks(body.get("blocks") or [])
            if problem:
                return f"invalid_blocks:{problem}"
        if method == "views.update" and body.get("view_id") not in self.views:
            return "not_found"
        if method.startswith("views."):
            view = body["view"]
            if isinstance(view, str):
                view = json.loads(view)
            if len(view.get("blocks", [])) > 100:
                return "invalid_arguments:too_many_blocks"
            if len(view.get("private_metadata", "")) > 3000:
                return "invalid_arguments:private_metadata"
            for key in ("title", "submit", "close"):
                if key in view and len(view[key]["text"]) > 24:
                    return f"invalid_arguments:{key}"
            problem = check_blocks(view.get("blocks", []), modal=True)
            if problem:
                return f"invalid_arguments:{problem}"
        if method in ("views.open", "views.push"):
            trigger = body["trigger_id"]
            with self._lock:
                issued = self._triggers.get(trigger)
                if issued is None or time.monotonic() - issued > 3:
                    return "expired_trigger_id"
                if trigger in self._used_triggers:
                    return "exchanged_trigger_id"
                self._used_triggers.add(trigger)
        return None

    def _answer(self, method: str, body: dict[str, Any],
                grant: Grant | None = None) -> dict[str, Any]:
        if method == "apps.connections.open":
            if self.socket is None:
                return {"ok": False, "error": "socket_mode_disabled"}
            return {"ok": True, "url": self.socket.url}
        if method == "auth.test":
            grant = grant or Grant(TEAM_ID, "Test")
            return {"ok": True, "user_id": BOT_USER_ID, "team_id": grant.team_id,
                    "enterprise_id": grant.enterprise_id, "bot_id": "B0BOT",
                    "is_enterprise_install": grant.org_wide,
                    "url": "https://test.slack.com/", "team": grant.team_name, "user": "ots"}
        if method == "conversations.open":
            user = str(body["users"]).split(",")[0]
            info = self._users.get(user)
            if info and (info["is_bot"] or info["deleted"]):
                return {"ok": False, "error": "cannot_dm_bot" if info["is_bot"]
                        else "user_disabled"}
            return {"ok": True, "channel": {"id": f"D{user}"}}
        if method == "users.lookupByEmail":
            wanted = str(body["email"]).casefold()
            found = next((u for u in self._users.values()
                          if str(u["profile"].get("email", "")).casefold() == wanted), None)
            if found is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": found}
        if method == "users.info":
            info = self._users.get(body["user"])
            if info is None:
                return {"ok": False, "error": "user_not_found"}
            # Slack says a user's locale only when asked for it.
            if str(body.get("include_locale", "")).lower() not in ("true", "1"):
                info = {k: v for k, v in info.items() if k != "locale"}
            return {"ok": True, "user": info}
        if method == "conversations.info":
            name = self._channels.get(body["channel"])
            if name is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": body["channel"], "name": name}}
        if method in ("chat.postMessage", "chat.update"):
            return {"ok": True, "channel": body["channel"], "ts": body.get("ts")
                    or self._next_ts(),
                    "message": {"text": body.get("text", "")}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method.startswith("views."):
            view = body["view"] if isinstance(body["view"], dict) else json.loads(body["view"])
            view_id = body.get("view_id") or f"V{uuid.uuid4().hex[:8]}"
            with self._lock:
                self.views[view_id] = view
                if "trigger_id" in body:
                    self.view_ids[body["trigger_id"]] = view_id
            return {"ok": True, "view": {**view, "id": view_id, "hash": "h"}}
        return {"ok": True}

    def _next_ts(self) -> str:
        with self._lock:
            self._ts += 1
            return f"{int(time.time())}.{self._ts:06d}"

    def _response_url(
        self, path: str, content_type: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if content_type != "application/json":
            return self._reject("response_url", "invalid_content_type")
        with self._lock:
            count = self._response_posts.get(path, 0) + 1
            self._response_posts[path] = count
        if count > 5:
            return 404, {"ok": False, "error": "used_url"}, {}
        body = json.loads(raw)
        with self._lock:
            self.calls.append(Call("response_url", body, headers, path))
            failures = self._failures.get("response_url") or []
            failure = next((f for f in failures if f.match.get("path", path) == path), None)
            if failure is not None:
                failures.remove(failure)
        if failure is not None:
            return failure.status, {"ok": False, "error": failure.error}, {}
        if not (body.get("text") or body.get("blocks") or body.get("delete_original")):
            return self._reject("response_url", "no_text")
        problem = check_blocks(body.get("blocks") or [])
        if problem:
            return self._reject("response_url", f"invalid_blocks:{problem}")
        return 200, {"ok": True}, {}


def check_blocks(blocks: list[dict[str, Any]], *, modal: bool = False) -> str | None:
    """What Slack refuses in Block Kit that this app could get wrong."""
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    if len(block_ids) != len(set(block_ids)):
        return "duplicate_block_id"
    for block in blocks:
        kind = block.get("type")
        if kind == "input" and not modal:
            return "input_outside_modal"
        if kind == "input" and not block.get("label", {}).get("text"):
            return "input_without_label"
        text = (block.get("text") or {}).get("text", "")
        if kind == "section" and not 0 < len(text) <= 3000:
            return "section_text_length"
        for element in block.get("elements", []) + [block.get("element") or {}]:
            if element.get("type") == "button":
                if len(element["text"]["text"]) > 75 or len(element.get("value", "")) > 2000:
                    return "button_too_long"
                if "url" in element and len(element["url"]) > 3000:
                    return "button_url_too_long"
            if element.get("type") == "plain_text_input":
                limit = element.get("max_length", 3000)
                if limit > 3000 or len(element.get("initial_value", "")) > limit:
                    return "initial_value_too_long"
    return None
