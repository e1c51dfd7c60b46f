"""What one request and one client may ask of the server.

Two ASGI middlewares, outermost first:

- `BodyLimit` reads the whole request body itself, counting bytes as they
  arrive, before any route or parser sees it. A body over `MAX_BODY_BYTES`
  (1 MiB at least for /slack/events, which Slack fills with whole messages)
  gets 413 at once: when Content-Length announces it, before a byte is read;
  when there is none (chunked), as soon as the running count passes the cap.
  A Content-Length smaller than what is sent is all the server reads: the
  rest is not this request's body. The route then gets the body from memory,
  so no parser can be made to read more than the cap.
- `RateLimit` counts creations and reveal attempts per client address in
  fixed windows. The counters live in the app's own storage (`incr` with
  expiry: one Redis command, one SQLite statement), so every worker and
  replica sharing the store shares the limit. With the embedded store, a
  create or reveal on the API or the reveal page is counted in the store
  operation that does its work (`PendingCount`: one round trip for both, the
  count first); a request that never reaches that operation (bad input) is
  counted as its answer starts, and over the limit gets the 429 instead.

The client address is ASGI's `client`: the TCP peer, or, when the peer is a
proxy listed in uvicorn's FORWARDED_ALLOW_IPS (default: loopback), the
right-most X-Forwarded-For entry that is not itself a trusted proxy. Headers
from anybody else are ignored, so a client cannot pick its own bucket.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, Response

from bot import metrics
from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.backends.storage import PENDING_COUNT, Count, PendingCount
from bot.config import Settings
from bot.errors import BackendUnavailable, OverLimit, StoreFull
from bot.i18n import N_
from bot.logs import Throttled
from bot.serverkey import ServerKey
from bot.web import pages
from bot.web.lang import text_of_scope

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The Onetime Secret service's own wording; clients match it literally.
RATE_LIMIT_MESSAGE = "Rate limit exceeded. Please try again later."
API_PREFIX = "/api/"
SLACK_PATH = "/slack/events"
# Slack's limits (40,000 characters of text, 50 blocks) percent-encoded at up to
# 9 bytes a character stay under this.
SLACK_MAX_BYTES = 1024 * 1024
CREATE = "create"
REVEAL = "reveal"
DELIVER = "deliver"  # links sent to an API `recipient`: counted per user and per address
NAMES_KEPT = 4096  # counter names a limiter remembers (clients seen in this window)


class Counter(Protocol):
    async def incr(self, key: str, ttl: int) -> int:
        """Add one; a new counter starts at 1 and expires after `ttl` seconds."""


# -- responses ----------------------------------------------------------------


def _is_api(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith(API_PREFIX)


def error_response(
    scope: Scope, status: int, title: str, text: str, headers: dict[str, str] | None = None,
    **values: object,
) -> Response:
    """JSON the OTS way on the API (404, real status in a header, English: clients match
    the text), a page in the reader's language elsewhere. `text` is a message id whose
    `{placeholders}` take `values`."""
    headers = dict(headers or {})
    if _is_api(scope):
        headers["X-OTS-Intended-Status"] = str(status)
        headers["Cache-Control"] = "no-store"
        # Every OTS v1 error is a 404 with {"message"}; a 503 stays a 503 so that
        # load balancers and retrying clients see an outage as one.
        if status == 503:
            headers.setdefault("Retry-After", "5")
        return JSONResponse(
            {"message": text.format(**values) if values else text},
            status_code=503 if status == 503 else 404,
            headers=headers,
            media_type="application/json; charset=utf-8",  # as the API's own answers
        )
    _ = text_of_scope(scope)
    return HTMLResponse(
        pages.message(_, _(title), _(text, **values)),
        status_code=status,
        headers={**pages.SECURITY_HEADERS, **headers},
    )


# -- body cap -----------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Buffers the request body up to its cap; answers 413 beyond it."""

    def __init__(self, app: ASGIApp, max_bytes: int, slack_max_bytes: int = 0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.slack_max_bytes = max(max_bytes, slack_max_bytes)

    def cap(self, scope: Scope) -> int:
        # A message shortcut carries the whole message, blocks and all,
        # percent-encoded: Slack's own limits allow more than a secret needs.
        return self.slack_max_bytes if scope.get("path") == SLACK_PATH else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope)
        problem = self._check_length_header(scope, cap)
        if problem is not None:
            await problem(scope, receive, send)
            return
        try:
            body = await self._read_body(receive, cap)
        except BodyTooLarge:
            await self._too_large(scope, cap)(scope, receive, send)
            return
        if body is None:  # the client went away mid-body
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_length_header(self, scope: Scope, cap: int) -> Response | None:
        names = {name for name, _ in scope["headers"]}
        if b"content-length" in names and b"transfer-encoding" in names:
            # Two framings: a proxy in front may have read the body by the other one,
            # and what follows on this connection is not ours to trust. Close it.
            return error_response(
                scope, 400, "Bad request",
                "A request cannot have both Content-Length and Transfer-Encoding.",
                {"Connection": "close"},
            )
        for name, value in scope["headers"]:
            if name != b"content-length":
                continue
            if not value.isdigit():
                return error_response(
                    scope, 400, N_("Bad request"), N_("The Content-Length header is not a number.")
                )
            if int(value) > cap:
                return self._too_large(scope, cap)
        return None

    async def _read_body(self, receive: Receive, cap: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, scope: Scope, cap: int) -> Response:
        return error_response(
            scope,
            413,
            N_("Request too large"),
            N_("The request body is too large: the limit is {cap} bytes. Nothing was stored."),
            cap=f"{cap:,}",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # only http.disconnect is left to come
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


# -- rate limits --------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the window turns


def client_bucket(address: str, ipv6_prefix: int = 64) -> str:
    """Who a request counts as: an IPv4 address, or an IPv6 network.

    One IPv6 customer gets a whole /64 (or more): counted per address, one
    machine would have 2**64 buckets. IPv4-mapped IPv6 counts as the IPv4.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a Unix socket or a name: as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


class RateLimiter:
    """Fixed-window counters per (kind, client bucket), kept in shared storage.

    Counter names are keyed hashes (server key) of the bucket: without the key, a
    copy of the store cannot be turned back into addresses by trying them all.
    """

    def __init__(
        self,
        counter: Counter,
        limits: dict[str, int],
        window: int,
        *,
        key: ServerKey,
        ipv6_prefix: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counter = counter
        self._key = key
        self.ipv6_prefix = ipv6_prefix
        self.limits = {kind: limit for kind, limit in limits.items() if limit > 0}
        self.window = window
        self._clock = clock
        # (kind, address) -> (window index, counter name): the keyed hash is made once
        # per client and window, not on every request. Only names, in memory; bounded.
        self._names: dict[tuple[str, str], tuple[int, str]] = {}

    def applies_to(self, kind: str) -> bool:
        return kind in self.limits

    def count_for(self, kind: str, client: str) -> tuple[Count, int]:
        """The counter one request adds to, and the seconds until its window turns."""
        now = self._clock()
        index = int(now // self.window)
        retry_after = max(1, int((index + 1) * self.window - now))
        known = self._names.get((kind, client))
        if known is not None and known[0] == index:
            key = known[1]
        else:
            bucket = client_bucket(client, self.ipv6_prefix)
            key = self._key.hash_id(f"rl:{kind}:", f"{bucket}|{index}")
            if len(self._names) >= NAMES_KEPT:
                self._names.clear()
            self._names[(kind, client)] = (index, key)
        return Count(key, self.window, self.limits[kind]), retry_after

    async def hit(self, kind: str, client: str) -> Decision:
        """Count one request; raises BackendUnavailable if the store cannot count."""
        count, retry_after = self.count_for(kind, client)
        return Decision(await self.counter.incr(count.key, count.ttl) <= count.limit, retry_after)


def classify(method: str, path: str) -> str | None:
    """Which limit a request counts against, if any."""
    if path.startswith("/request/"):
        # A request link's page: answering it stores a secret; looking asks Slack
        # who made the request.
        return CREATE if method == "POST" else REVEAL
    if method != "POST":
        return None
    if path in ("/api/v1/share", "/api/v1/generate"):
        return CREATE
    if path.startswith(("/api/v1/secret/", "/secret/")):
        return REVEAL
    return None


class RateLimit:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, in_store: bool = False) -> None:
        self.app = app
        self.limiter = limiter
        # The backend counts creates and reveals in their own store round trip.
        self.in_store = in_store
        self._trips = Throttled(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = classify(scope.get("method", ""), scope.get("path", ""))
        if scope["type"] != "http" or kind is None or not self.limiter.applies_to(kind):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if self.in_store and not str(scope.get("path", "")).startswith("/request/"):
            await self._counted_in_store(scope, receive, send, kind, address)
            return
        try:
            decision = await self.limiter.hit(kind, address)
        except BackendUnavailable as exc:
            answer = self._unavailable(scope, kind, exc)
            if answer is None:
                await self.app(scope, receive, send)
            else:
                await answer(scope, receive, send)
            return
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        await self._over(scope, kind, decision)(scope, receive, send)

    async def _counted_in_store(
        self, scope: Scope, receive: Receive, send: Send, kind: str, address: str
    ) -> None:
        """Leave the count to the store operation that does the work (one round trip);
        if the request ends without it, count as the answer starts."""
        count, retry_after = self.limiter.count_for(kind, address)
        pending = PendingCount(kind, count)
        instead: list[Response] = []

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                late = pending.claim()
                if late is not None:
                    answer = await self._count_late(scope, kind, late, retry_after)
                    if answer is not None:
                        # Nothing was stored or taken (the count was not claimed):
                        # this answer replaces the app's.
                        instead.append(answer)
                        await answer(scope, receive, send)
                        return
            if not instead:
                await send(message)

        token = PENDING_COUNT.set(pending)
        try:
            await self.app(scope, receive, send_counted)
        except OverLimit:
            await self._over(scope, kind, Decision(False, retry_after))(scope, receive, send)
        finally:
            PENDING_COUNT.reset(token)

    async def _count_late(
        self, scope: Scope, kind: str, count: Count, retry_after: int
    ) -> Response | None:
        try:
            allowed = await self.limiter.counter.incr(count.key, count.ttl) <= count.limit
        except BackendUnavailable as exc:
            return self._unavailable(scope, kind, exc)
        return None if allowed else self._over(scope, kind, Decision(False, retry_after))

    def _unavailable(self, scope: Scope, kind: str, exc: BackendUnavailable) -> Response | None:
        """The answer when the store cannot count; None: go on uncounted."""
        if isinstance(exc, StoreFull) and kind == REVEAL:
            # A full store still takes reveals (a reveal frees memory): the counter,
            # a write, must not stand in their way. Creations wait for room.
            _log_full_store()
            return None
        if _is_api(scope):
            return error_response(scope, 503, "", exc.message)
        return HTMLResponse(pages.unavailable(text_of_scope(scope)), status_code=503,
                            headers={**pages.SECURITY_HEADERS, "Retry-After": "5"})

    def _over(self, scope: Scope, kind: str, decision: Decision) -> Response:
        metrics.RATE_LIMITED.labels(kind=kind).inc()
        # Not the address: the log need not learn who uses the service either.
        self._trips.warning(
            kind, "rate limit: refused a %s request from a client over %d per %d s",
            kind, self.limiter.limits[kind], self.limiter.window,
        )
        return self._refuse(scope, kind, decision)

    def _refuse(self, scope: Scope, kind: str, decision: Decision) -> Response:
        headers = {"Retry-After": str(decision.retry_after)}
        if _is_api(scope):
            return error_response(scope, 429, "", RATE_LIMIT_MESSAGE, headers)
        _ = text_of_scope(scope)
        minutes = max(1, round(decision.retry_after / 60))
        wait = _.plural("{count} minute", "{count} minutes", minutes, count=minutes)
        text = (
            _("Too many requests from your address. Nothing was sent or lost: "
              "try again in {wait}.", wait=wait)
            if str(scope.get("path", "")).startswith("/request/") else
            _("Too many secrets created from your address. Nothing was revealed or lost: "
              "try again in {wait}.", wait=wait)
            if kind == CREATE else
            _("Too many reveal attempts from your address. Nothing was revealed or lost: "
              "try again in {wait}.", wait=wait)
        )
        return HTMLResponse(
            pages.message(_, _("Too many attempts"), text),
            status_code=429,
            headers={**pages.SECURITY_HEADERS, **headers},
        )


_last_full_warning = [-60.0]


def _log_full_store() -> None:
    now = time.monotonic()
    if now - _last_full_warning[0] >= 60:
        _last_full_warning[0] = now
        log.warning("the store is full: reveals go on without counting them (rate limit)")


def middleware(settings: Settings, backend: SecretBackend, store: AppStore) -> list[Middleware]:
    """The limits, outermost first, as Starlette installs them."""
    stack = [
        Middleware(
            BodyLimit, max_bytes=settings.max_body_bytes, slack_max_bytes=SLACK_MAX_BYTES
        )
    ]
    # Pages and the API (embedded store), request links (both backends); the
    # counters live in the app store, shared by every worker and replica.
    limiter = RateLimiter(
        store.storage,
        {CREATE: settings.rate_limit_create, REVEAL: settings.rate_limit_reveal},
        settings.rate_limit_window,
        key=store.key,
        ipv6_prefix=settings.rate_limit_ipv6_prefix,
    )
    stack.append(Middleware(
        RateLimit, limiter=limiter, in_store=backend.capabilities.counts_in_store
    ))
    return stack
