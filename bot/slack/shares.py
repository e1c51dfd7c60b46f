"""What the app keeps about each secret shared from Slack, on either backend.

The sender's Home tab and `/ots list` show these records, and every message
that carries a secret's link or a button is found through them when the secret
is revealed, burned or expires: the recipient's DM (its channel and ts), the
sender's answer (its response_url, DM or modal), the secret's siblings (one
secret per recipient, one answer for all of them).

- One record per secret, sealed under the server key and bound to its record
  id, so a copy of the store names nobody and shows no label or receipt key.
  The record id is a keyed hash of the receipt's storage id: the embedded
  store's events carry that storage id (never the key), and nobody without the
  server key can tell which record belongs to which receipt.
- The receipt key is kept (sealed) because it is the sender's capability to
  burn: the Home tab's Burn button names the record, not the key.
- A record lives as long as the receipt does (twice the secret's lifetime).
- Each sender has an index of their records (named by a keyed hash of team and
  user), newest first and bounded: the oldest entries beyond `INDEX_LIMIT` are
  dropped, and entries whose record expired are dropped when the index is read.
- Labels are kept here only: they never reach the secret's backend.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from bot.appstore import AppStore
from bot.backends import crypto
from bot.errors import BackendError, BackendUnavailable
from bot.serverkey import Unsealable

log = logging.getLogger(__name__)
T = TypeVar("T")

RECORD_PREFIX = "slack:sh:"
INDEX_PREFIX = "slack:mine:"
NOTICE_PREFIX = "slack:nq:"
INDEX_LIMIT = 50  # records per sender: the Home tab shows the newest of them
NOTICE_SECONDS = 60  # at most one notice about refused attempts per secret per minute
_MARGIN = 3600  # a record outlives its receipt a little, so a late event still finds it

LIVE = "live"
OUTCOMES = ("received", "burned", "expired")


@dataclass(frozen=True)
class Share:
    """One secret shared from Slack. Holds its receipt key (sealed at rest), never the
    secret or its link."""

    id: str
    metadata_key: str = field(repr=False)
    sender: str
    team: str | None
    recipient: str | None  # None: a link for the sender to pass on
    label: str | None
    created: int
    expires_at: int
    passphrase: bool
    group: tuple[str, ...] = ()  # ids of the secrets answered in the same message
    dm: tuple[str, str] | None = None  # the recipient's DM: (channel, ts)
    answer: dict[str, Any] = field(default_factory=dict)  # where the sender's answer is
    state: str = LIVE  # "live", or one of OUTCOMES
    via: str | None = None  # how it was received or burned
    settled_at: int | None = None
    refused: int = 0  # refused attempts: wrong passphrases, someone else's Reveal

    def is_live(self, now: float) -> bool:
        return self.state == LIVE and now < self.expires_at

    def shown_state(self, now: float) -> str:
        """The state as of `now`: a live record past its expiry is expired."""
        if self.state == LIVE and now >= self.expires_at:
            return "expired"
        return self.state

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Share:
        data = json.loads(raw)
        data["group"] = tuple(data.get("group") or ())
        dm = data.get("dm")
        data["dm"] = (str(dm[0]), str(dm[1])) if dm else None
        return cls(**data)


class ShareBook:
    def __init__(self, store: AppStore) -> None:
        self.storage = store.storage
        self._key = store.key

    # -- names ------------------------------------------------------------------

    def id_for(self, metadata_key: str) -> str:
        return self.id_for_ref(crypto.storage_id("m:", metadata_key))

    def id_for_ref(self, ref: str) -> str:
        """The record id of the receipt whose storage id is `ref` (from a SecretEvent)."""
        return self._key.hash_id(RECORD_PREFIX, ref)

    def _index(self, team: str | None, user: str) -> str:
        return self._key.hash_id(INDEX_PREFIX, f"{team or '-'}:{user}")

    # -- records ----------------------------------------------------------------

    def _seal(self, share: Share) -> bytes:
        return self._key.seal(share.to_json(), share.id.encode())

    def _open(self, record_id: str, raw: bytes) -> Share | None:
        try:
            return Share.from_json(self._key.open(raw, record_id.encode()))
        except Unsealable:
            log.warning("a Slack share record was sealed under another server key")
            return None

    @staticmethod
    def _lifetime(share: Share) -> int:
        ttl = max(1, share.expires_at - share.created)
        return 2 * ttl + _MARGIN

    async def add(self, share: Share) -> bool:
        """Keep a new share and list it under its sender, dropping their oldest beyond
        the bound."""
        lifetime = self._lifetime(share)
        await self.storage.put(share.id, self._seal(share), lifetime)
        index = self._index(share.team, share.sender)
        await self.storage.index_add(index, share.id.encode(), share.created, lifetime)
        members = await self.storage.index_range(index, INDEX_LIMIT + 20)
        for old in members[INDEX_LIMIT:]:
            await self.storage.index_remove(index, old)
        return True

    async def get(self, record_id: str) -> Share | None:
        raw = await self.storage.get(record_id)
        return None if raw is None else self._open(record_id, raw)

    async def change(
        self, record_id: str, update: Callable[[Share], Share | None]
    ) -> tuple[Share, Share] | None:
        """Apply `update` with compare-and-set (replicas and events race here).

        Returns (before, after) when this call changed the record; None when there is
        no such record or `update` had nothing to change (it returned None).
        """
        for _ in range(20):
            raw = await self.storage.get(record_id)
            if raw is None:
                return None
            before = self._open(record_id, raw)
            if before is None:
                return None
            after = update(before)
            if after is None:
                return None
            if await self.storage.replace(record_id, raw, self._seal(after)):
                return before, after
        raise BackendUnavailable("A Slack share record is changing too fast.")

    async def settle(
        self, record_id: str, state: str, via: str | None, at: int
    ) -> Share | None:
        """Record the outcome once: the share as settled, for the one caller who did it."""

        def settled(share: Share) -> Share | None:
            if share.state != LIVE:
                return None
            return replace(share, state=state, via=via, settled_at=at)

        changed = await self.change(record_id, settled)
        return None if changed is None else changed[1]

    async def count_refused(self, record_id: str) -> Share | None:
        changed = await self.change(
            record_id, lambda s: replace(s, refused=s.refused + 1) if s.state == LIVE else None
        )
        return None if changed is None else changed[1]

    async def notice_due(self, record_id: str) -> bool:
        """True at most once a minute per secret (every replica shares the record)."""
        return await self.storage.put(NOTICE_PREFIX + record_id, b"1", NOTICE_SECONDS)

    async def of_user(self, team: str | None, user: str) -> list[Share]:
        """The sender's shares, newest first (records gone with their receipts dropped)."""
        index = self._index(team, user)
        shares: list[Share] = []
        for member in await self.storage.index_range(index, INDEX_LIMIT):
            record_id = member.decode()
            share = await self.get(record_id)
            if share is None:
                await self.storage.index_remove(index, member)
                continue
            shares.append(share)
        return shares

    async def group_of(self, share: Share) -> list[Share]:
        """The shares answered in the same message as `share` (itself included)."""
        found: list[Share] = []
        for record_id in share.group or (share.id,):
            other = share if record_id == share.id else await self.get(record_id)
            if other is not None:
                found.append(other)
        return found


async def quietly(what: str, step: Awaitable[T]) -> T | None:
    """Await a bookkeeping step whose failure must not fail what the user asked for."""
    try:
        return await step
    except BackendError as exc:
        log.warning("could not %s: %s", what, type(exc).__name__)
        return None
