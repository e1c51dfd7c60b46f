"""Requests for a secret: the person who needs it asks, the one who has it answers once.

A request lives in the app store (whichever backend keeps secrets), under a
name that is a keyed hash (server key) of a random token, and sealed under the
server key: a copy of the store tells neither who asked whom nor what for.
A request to people outside Slack is named after the key in its link, which
the store never holds (only its keyed hash, the record's name).

Records, each on one key (so Redis Cluster needs no multi-key step):
- `req:<hash>`: the open request. Whoever `take`s it fulfils, cancels or
  declines it: of any number of concurrent callers exactly one gets it.
- `req:<hash>:info`: who asked, and where the DMs asking people went (to
  rewrite them later, also once the request itself has expired).
- `req:<hash>:done`: how it ended (answered by whom, declined, cancelled,
  expired), so a late click can say so instead of "not found".
- `req:due`: the open requests by expiry, so their DMs lose their buttons
  when they expire (`due`).
"""

from __future__ import annotations

import json
import secrets as _random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.appstore import AppStore
from bot.serverkey import Unsealable

PREFIX = "req:"
DUE_INDEX = "req:due"
LINK_KEY_BYTES = 24  # 192 bits: the request link's key
GRACE = 3600  # DM locations and outcomes outlive the request by this much
MAX_PEOPLE = 10
MAX_WHAT_FOR = 300  # characters

ANSWERED, DECLINED, CANCELLED, EXPIRED = "answered", "declined", "cancelled", "expired"


@dataclass(frozen=True)
class SecretRequest:
    requester: str  # Slack user id
    team: str | None
    what_for: str = field(repr=False)
    expires_at: int
    people: tuple[str, ...] = ()  # empty: a link for someone outside Slack
    declined: tuple[str, ...] = ()
    enterprise: str | None = None  # an org-wide install's enterprise id

    @property
    def by_link(self) -> bool:
        return not self.people

    def ttl_left(self, now: float | None = None) -> int:
        return int(self.expires_at - (time.time() if now is None else now))

    def to_json(self) -> bytes:
        data = asdict(self)
        data["people"], data["declined"] = list(self.people), list(self.declined)
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SecretRequest:
        data = json.loads(raw)
        return cls(
            requester=str(data["requester"]),
            team=data.get("team"),
            what_for=str(data.get("what_for") or ""),
            expires_at=int(data["expires_at"]),
            people=tuple(str(p) for p in data.get("people") or ()),
            declined=tuple(str(p) for p in data.get("declined") or ()),
            enterprise=data.get("enterprise"),
        )


@dataclass(frozen=True)
class Outcome:
    state: str  # ANSWERED, DECLINED, CANCELLED, EXPIRED
    by: str | None = None  # who answered, declined or cancelled
    requester: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A request taken out of the store by the one caller who may act on it."""

    rid: str
    request: SecretRequest
    sealed: bytes = field(repr=False)


class RequestBook:
    """Requests in the app store. Every method may raise BackendUnavailable."""

    def __init__(self, store: AppStore) -> None:
        self.storage = store.storage
        self.key = store.key

    # -- names and seals ---------------------------------------------------------

    def rid_for_link(self, link_key: str) -> str:
        return self.key.hash_id(PREFIX, link_key)

    @staticmethod
    def is_rid(value: object) -> bool:
        return (
            isinstance(value, str) and value.startswith(PREFIX) and len(value) == len(PREFIX) + 64
            and all(c in "0123456789abcdef" for c in value[len(PREFIX):])
        )

    def _seal(self, name: str, data: bytes) -> bytes:
        return self.key.seal(data, name.encode())

    def _open(self, name: str, sealed: bytes) -> bytes | None:
        try:
            return self.key.open(sealed, name.encode())
        except Unsealable:
            return None

    def _request(self, rid: str, sealed: bytes | None) -> SecretRequest | None:
        raw = self._open(rid, sealed) if sealed is not None else None
        return SecretRequest.from_json(raw) if raw is not None else None

    # -- making -----------------------------------------------------------------

    async def open(
        self, requester: str, team: str | None, what_for: str, people: tuple[str, ...],
        ttl: int, enterprise: str | None = None,
    ) -> tuple[str, str | None, SecretRequest]:
        """A new request: (its id, its link key when it is for someone outside Slack, it)."""
        token = _random.token_urlsafe(LINK_KEY_BYTES)
        rid = self.key.hash_id(PREFIX, token)
        request = SecretRequest(
            requester, team, what_for, int(time.time()) + ttl, tuple(people),
            enterprise=enterprise,
        )
        await self.storage.put(rid, self._seal(rid, request.to_json()), ttl)
        await self.storage.index_add(
            DUE_INDEX, rid.encode(), request.expires_at, ttl + GRACE
        )
        return rid, (token if not people else None), request

    async def remember(
        self, rid: str, request: SecretRequest, dms: dict[str, tuple[str, str]]
    ) -> None:
        """What the expiry sweep needs once the request itself is gone: who asked,
        and where the DMs asking people went."""
        name = rid + ":info"
        data = json.dumps({
            "request": json.loads(request.to_json()),
            "dms": {u: list(loc) for u, loc in dms.items()},
        }).encode()
        await self.storage.put(name, self._seal(name, data), request.ttl_left() + GRACE)

    async def info(self, rid: str) -> tuple[SecretRequest | None, dict[str, tuple[str, str]]]:
        name = rid + ":info"
        sealed = await self.storage.get(name)
        raw = self._open(name, sealed) if sealed is not None else None
        if raw is None:
            return None, {}
        data = json.loads(raw)
        request = SecretRequest.from_json(json.dumps(data["request"]).encode())
        dms = {str(u): (str(loc[0]), str(loc[1])) for u, loc in data["dms"].items()}
        return request, dms

    # -- reading ----------------------------------------------------------------

    async def get(self, rid: str) -> SecretRequest | None:
        return self._request(rid, await self.storage.get(rid))

    async def outcome(self, rid: str) -> Outcome | None:
        name = rid + ":done"
        sealed = await self.storage.get(name)
        raw = self._open(name, sealed) if sealed is not None else None
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return Outcome(str(data["state"]), data.get("by"), data.get("requester"))

    # -- ending: exactly one caller gets the request ------------------------------

    async def claim(self, rid: str) -> Claimed | None:
        """Take the open request; None when it is answered, cancelled or gone."""
        sealed = await self.storage.take(rid)
        request = self._request(rid, sealed)
        if sealed is None or request is None:
            return None
        if request.ttl_left() <= 0:
            return None
        return Claimed(rid, request, sealed)

    async def put_back(self, claimed: Claimed) -> bool:
        """Reopen a claimed request (its answer could not be stored or delivered)."""
        ttl = claimed.request.ttl_left()
        if ttl <= 0:
            return False
        return await self.storage.put(claimed.rid, claimed.sealed, ttl)

    async def close(self, rid: str, request: SecretRequest, outcome: Outcome) -> None:
        name = rid + ":done"
        data = json.dumps({**asdict(outcome), "requester": request.requester}).encode()
        ttl = max(request.ttl_left(), 0) + GRACE
        await self.storage.put(name, self._seal(name, data), ttl)
        await self.storage.index_remove(DUE_INDEX, rid.encode())

    async def _update(
        self, rid: str, change: Callable[[SecretRequest], SecretRequest | None]
    ) -> SecretRequest | None:
        """Compare-and-set the open request; None when it is not open (or `change` says no)."""
        for _attempt in range(20):
            sealed = await self.storage.get(rid)
            request = self._request(rid, sealed)
            if sealed is None or request is None:
                return None
            updated = change(request)
            if updated is None or updated == request:
                return updated
            if await self.storage.replace(rid, sealed, self._seal(rid, updated.to_json())):
                return updated
        return None

    async def narrow(self, rid: str, people: tuple[str, ...]) -> None:
        """Only these people were reached: only they may answer."""
        await self._update(rid, lambda r: replace(r, people=people))

    async def decline(self, rid: str, user: str) -> tuple[SecretRequest | None, bool]:
        """Mark `user` as declining. (the request, whether everybody has now declined);
        (None, False) when it is no longer open or `user` was not asked."""

        def add(request: SecretRequest) -> SecretRequest | None:
            if user not in request.people:
                return None
            if user in request.declined:
                return request
            return replace(request, declined=(*request.declined, user))

        updated = await self._update(rid, add)
        if updated is None or set(updated.declined) < set(updated.people):
            return updated, False
        # Everybody said no: whoever takes it closes it.
        return (updated, True) if await self.claim(rid) is not None else (None, False)

    async def due(self, limit: int = 100) -> list[str]:
        """Ids of requests whose time is up (each given to one caller only)."""
        members = await self.storage.index_pop_due(DUE_INDEX, time.time(), limit)
        return [m.decode() for m in members]
