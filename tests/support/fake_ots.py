"""A fake of onetimesecret.com's REST API v1, served over real HTTP on 127.0.0.1.

It checks what the real service checks, so a client fails here where it would
fail there: Basic credentials sent pre-emptively (it never answers with a 401
challenge; bad credentials are "Not authorized", never anonymous), parameters
read only from the query string and form-encoded bodies (a JSON body is not
read, as on older servers), the `secret` a share needs, the passphrase of a
protected secret, one reveal per secret. Errors are HTTP 404 with the real
message strings. Answers carry integers and a few fields clients must ignore.

Every request is recorded (`requests`); `fail_next` scripts an answer, e.g. a
rate limit or an HTML 502 page.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.support.servers import LocalHTTPFake

USERNAME = "alice@example.com"
API_TOKEN = "fake-ots-api-token-0123456789abcdef"
DAY = 86400
DEFAULT_TTL = 7 * DAY
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, list[str]]
    custid: str | None  # None when the credentials were rejected
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Scripted:
    path: str
    status: int
    body: bytes
    content_type: str


@dataclass
class _Secret:
    value: str
    passphrase: str | None
    metadata_key: str
    expires: float


@dataclass
class _Receipt:
    custid: str
    metadata_key: str
    secret_key: str
    ttl: int
    created: int
    updated: int
    state: str
    passphrase_required: bool
    recipient: list[str]
    received: int | None = None


def _key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(31))


def receipt_json(receipt: _Receipt, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "custid": receipt.custid,
        "metadata_key": receipt.metadata_key,
        "secret_key": receipt.secret_key,
        "ttl": receipt.ttl,
        "metadata_ttl": max(0, int(receipt.created + 2 * receipt.ttl - now)),
        "secret_ttl": max(0, int(receipt.created + receipt.ttl - now)),
        "state": receipt.state,
        "updated": receipt.updated,
        "created": receipt.created,
        "recipient": receipt.recipient,
        "passphrase_required": receipt.passphrase_required,
        "share_domain": "",  # newer servers add fields; clients must ignore them
    }
    if receipt.state in ("received", "burned"):
        del body["secret_key"], body["secret_ttl"]
    if receipt.received is not None:
        body["received"] = receipt.received
    return body


class FakeOTS(LocalHTTPFake):
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = {USERNAME: API_TOKEN} if users is None else users
        self.requests: list[Request] = []
        self.secrets: dict[str, _Secret] = {}
        self.receipts: dict[str, _Receipt] = {}
        self._scripted: list[_Scripted] = []
        self._lock = threading.Lock()
        self._serve(self._handler(), poll=0.05)

    # -- scripting and inspection ---------------------------------------------

    def fail_next(self, path: str, status: int = 404, *, message: str | None = None,
                  body: bytes | None = None, content_type: str = "application/json") -> None:
        """Answer the next request whose API path starts with `path` with this instead."""
        if message is not None:
            body = json.dumps({"message": message}).encode()
        with self._lock:
            self._scripted.append(_Scripted(path, status, body or b"", content_type))

    def requests_to(self, path_prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- the HTTP side ----------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, content_type = fake._dispatch(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

        return Handler

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, str]:
        lower = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(target)
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            params.setdefault(name.removesuffix("[]"), []).append(value)
        content_type = lower.get("content-type", "").split(";")[0].strip().lower()
        if raw and content_type in ("application/x-www-form-urlencoded", ""):
            for name, value in parse_qsl(raw.decode("utf-8"), keep_blank_values=True):
                params.setdefault(name.removesuffix("[]"), []).append(value)
        custid = self._custid(lower.get("authorization"))
        request = Request(method, parts.path, headers, raw, params, custid)
        with self._lock:
            self.requests.append(request)
            scripted = next(
                (s for s in self._scripted if parts.path.startswith("/api/v1" + s.path)), None
            )
            if scripted is not None:
                self._scripted.remove(scripted)
        if scripted is not None:
            return scripted.status, scripted.body, scripted.content_type
        status, payload = self._route(request)
        return status, json.dumps(payload).encode(), "application/json; charset=utf-8"

    def _custid(self, authorization: str | None) -> str | None:
        """The account of the Basic credentials; "anon" without any; None if rejected."""
        if not authorization:
            return "anon"
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not user and not token:
            return "anon"
        if user in self.users and secrets.compare_digest(self.users[user], token):
            return user
        return None

    def _route(self, request: Request) -> tuple[int, Any]:
        if request.custid is None:
            return 404, {"message": "Not authorized"}
        path, method = request.path, request.method
        if not path.startswith("/api/v1/"):
            return 404, {"error": "Not Found"}
        route = path[len("/api/v1/"):].split("/")
        if route[0] == "metadata":
            route[0] = "private"
        with self._lock:
            if route == ["status"] and method == "GET":
                return 200, {"status": "nominal", "locale": "en"}
            if route == ["authcheck"] and method == "GET":
                if request.custid == "anon":
                    return 404, {"message": "Not authorized"}
                return 200, {"status": "nominal", "locale": "en"}
            if route in (["share"], ["generate"]) and method == "POST":
                return self._create(request, generate=route[0] == "generate")
            if len(route) == 2 and route[0] == "secret" and method == "POST":
                return self._reveal(request, route[1])
            if route == ["private", "recent"] and method == "GET":
                if request.custid == "anon":
                    return 404, {"message": "Not authorized"}
                return 200, self._recent(request.custid)
            if len(route) == 3 and route[0] == "private" and route[2] == "burn" \
                    and method == "POST":
                return self._burn(request, route[1])
            if len(route) == 2 and route[0] == "private":
                return self._receipt(route[1])
        return 404, {"error": "Not Found"}

    def _param(self, request: Request, name: str) -> str:
        values = request.params.get(name)
        return values[-1] if values else ""

    def _create(self, request: Request, *, generate: bool) -> tuple[int, Any]:
        value = self._param(request, "secret")
        if generate:
            length = int(self._param(request, "length") or 12)
            value = "".join(secrets.choice(string.ascii_letters + string.digits)
                            for _ in range(length))
        if not value:
            return 404, {"message": "You did not provide anything to share"}
        ttl_text = self._param(request, "ttl")
        ttl = int(ttl_text) if ttl_text.isdigit() and int(ttl_text) > 0 else DEFAULT_TTL
        ttl = max(60, min(ttl, 30 * DAY if request.custid != "anon" else 7 * DAY))
        passphrase = self._param(request, "passphrase") or None
        now = int(time.time())
        secret_key, metadata_key = _key(), _key()
        self.secrets[secret_key] = _Secret(value, passphrase, metadata_key, now + ttl)
        receipt = _Receipt(
            custid=str(request.custid), metadata_key=metadata_key, secret_key=secret_key,
            ttl=ttl, created=now, updated=now, state="new",
            passphrase_required=passphrase is not None,
            recipient=[r for r in request.params.get("recipient", []) if r],
        )
        self.receipts[metadata_key] = receipt
        body = receipt_json(receipt, now)
        if generate:
            body["value"] = value
        return 200, body

    def _reveal(self, request: Request, secret_key: str) -> tuple[int, Any]:
        unknown = {"message": "Unknown secret", "secret_key": secret_key}
        secret = self.secrets.get(secret_key)
        if secret is None or secret.expires < time.time():
            return 404, unknown
        if secret.passphrase is not None and \
                self._param(request, "passphrase") != secret.passphrase:
            return 404, unknown  # a wrong passphrase does not consume the secret
        del self.secrets[secret_key]
        receipt = self.receipts[secret.metadata_key]
        now = int(time.time())
        receipt.state, receipt.updated, receipt.received = "received", now, now
        return 200, {"value": secret.value, "secret_key": secret_key, "share_domain": ""}

    def _receipt(self, metadata_key: str) -> tuple[int, Any]:
        receipt = self.receipts.get(metadata_key)
        if receipt is None:
            return 404, {"message": "Unknown secret", "secret_key": metadata_key}
        if receipt.state == "new":
            receipt.state, receipt.updated = "viewed", int(time.time())
        return 200, receipt_json(receipt, time.time())

    def _burn(self, request: Request, metadata_key: str) -> tuple[int, Any]:
        receipt = self.receipts.get(metadata_key)
        if receipt is None or receipt.secret_key not in self.secrets:
            return 404, {"message": "Unknown secret", "secret_key": metadata_key}
        del self.secrets[receipt.secret_key]
        receipt.state, receipt.updated = "burned", int(time.time())
        return 200, {"state": receipt_json(receipt, time.time()),
                     "secret_shortkey": receipt.secret_key[:8]}

    def _recent(self, custid: str) -> list[dict[str, Any]]:
        mine = [r for r in self.receipts.values() if r.custid == custid]
        mine.sort(key=lambda r: r.created, reverse=True)
        now = time.time()
        listed = []
        for receipt in mine:
            body = receipt_json(receipt, now)
            body.pop("secret_key", None)
            listed.append(body)
        return listed


class _Body(httpx.AsyncByteStream):
    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content


def streamed(response: httpx.Response) -> httpx.Response:
    """A recorded answer as a transport hands it over: its body not yet read.

    (`httpx.Response(json=…)` reads its body at once, which a client reading the
    body itself, within a size limit, cannot stream again.)"""
    return httpx.Response(response.status_code, headers=response.headers,
                          stream=_Body(response.content))
