"""Replayed Slack requests are processed once.

Slack signs every request over its timestamp and body, and Bolt refuses a
signature older (or newer) than 5 minutes. Inside that window a captured
request would verify again: resent, it would create a second secret, post a
second link, or repeat a button press. So the first sight of each signature
is recorded with put-if-absent in the app's own storage (one Redis SET NX, or
one SQLite statement), which every worker and replica shares; a signature
already there is answered with an empty 200 and goes no further.

The record lives exactly as long as Bolt would still accept the signature:
until the request's timestamp plus 5 minutes (a request stamped up to 5
minutes in the future stays valid for up to 10). Only requests that passed
verification get here, so nobody can fill the store with made-up signatures.
Socket Mode has no signatures and no replay over HTTP: it is not checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import metrics
from bot.backends import crypto
from bot.errors import BackendUnavailable
from bot.logs import Throttled

log = logging.getLogger(__name__)
_throttled = Throttled(log)

# Bolt's own tolerance (AsyncRequestVerification): |now - timestamp| <= 5 minutes.
SIGNATURE_WINDOW = 5 * 60


class OnceStore(Protocol):
    async def put(self, key: str, value: bytes, ttl: int) -> bool:
        """Store unless `key` holds a live value; True only for the first caller."""


class ReplayGuard:
    def __init__(self, store: OnceStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def first_time(self, signature: str, timestamp: str) -> bool:
        """True the first time a signature is seen within its window."""
        try:
            stamped = int(timestamp)
        except ValueError:
            return True  # Bolt's verification refuses it before this matters
        ttl = min(2 * SIGNATURE_WINDOW, max(1, stamped + SIGNATURE_WINDOW - int(self._clock()) + 1))
        try:
            return await self.store.put(crypto.storage_id("rp:", signature), b"1", ttl)
        except BackendUnavailable:
            # With the store down no secret can be created or revealed either; the
            # listener answers the user that the store is unavailable, which is
            # better than a silent empty answer to a genuine first request.
            log.warning("could not record a Slack request signature: store unavailable")
            return True

    async def middleware(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        signature = _header(req, "x-slack-signature")
        timestamp = _header(req, "x-slack-request-timestamp")
        if req.mode == "socket_mode" or not signature or timestamp is None:
            return await next()
        if await self.first_time(signature, timestamp):
            return await next()
        metrics.REPLAYS_IGNORED.inc()
        _throttled.warning("replay", "ignored a replayed Slack request (signature seen before)")
        return BoltResponse(status=200, body="")


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    values = req.headers.get(name)
    return values[0] if values else None


def install(app: AsyncApp, store: OnceStore) -> ReplayGuard:
    """Process each signed request once. Runs after Bolt's signature check."""
    guard = ReplayGuard(store)
    app.use(guard.middleware)
    return guard
