"""Security headers on every response, whichever part of the app (or Starlette) made it.

The pages set their own strict Content-Security-Policy (with the hashes of
their one style and script); everything else (the API's JSON, Slack's acks,
`/healthz`, Starlette's own 404 and 405) gets a policy that allows nothing.
Each header is added only when the response does not already have it, so a
page's policy and the API's own `Cache-Control` stay as they are.

`Strict-Transport-Security` is sent when `PUBLIC_URL` is https: then people
reach the app over TLS (usually through a proxy), and browsers should never
try plain HTTP for it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

from bot.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Nothing a browser may load, run, frame or submit from a response that is not a page.
NOTHING_ALLOWED = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000"

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", NOTHING_ALLOWED.encode()),
)


def headers_for(public_url: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response carries, for an app served at `public_url`."""
    if public_url.lower().startswith("https://"):
        return (*BASE_HEADERS, (b"strict-transport-security", HSTS.encode()))
    return BASE_HEADERS


class SecurityHeaders:
    """Adds each of `headers` that a response does not set itself."""

    def __init__(self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = list(message.get("headers", ()))
                names = {bytes(name).lower() for name, _ in present}
                present += [(n, v) for n, v in self.headers if n not in names]
                message["headers"] = present
            await send(message)

        await self.app(scope, receive, send_with_headers)


def middleware(settings: Settings) -> Middleware:
    return Middleware(SecurityHeaders, headers=headers_for(settings.public_url))
