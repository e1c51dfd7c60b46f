"""Telling senders what became of their secrets: revealed, burned or expired unread.

Two sources, one message:
- The embedded store emits a `SecretEvent` the moment a secret changes state
  (handled in followup.py, which also rewrites the messages that carried it).
- Onetime Secret tells nobody, so `ReceiptLedger` keeps the receipt (metadata)
  key of each secret made from Slack, sealed under the server key, in the app
  store; `ReceiptWatcher` reads their state at a modest interval and reports
  each outcome once (to followup.py). The key is the
  capability to burn, so storage never holds it in the clear; records sealed
  under another server key are unreadable and dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.appstore import AppStore
from bot.backends import crypto
from bot.backends.base import Receipt, SecretBackend
from bot.errors import BackendError, SecretNotFound
from bot.serverkey import Unsealable
from bot.slack import blocks
from bot.slack.delivery import Messenger, SlackFailure
from bot.slack.lang import speaking_to
from bot.slack.workspaces import NotInstalled, Workspaces

log = logging.getLogger(__name__)

WATCH_INDEX = "slack:watching"
WATCH_PREFIX = "slack:w:"
# secret key -> its receipt key, sealed under the secret key itself: only the
# holder of a link (the recipient pressing Reveal) can find its receipt.
LOOKUP_PREFIX = "slack:k:"
_INDEX_TTL = 62 * 86400  # longer than any receipt lives (twice the 30-day maximum)
_BATCH = 500


def sender_of(custid: str) -> str | None:
    """The Slack user id in an owner made by `slack_owner`, if it is one."""
    parts = custid.split(":")
    if len(parts) == 3 and parts[0] == "slack" and parts[2] not in ("", "-"):
        return parts[2]
    return None


def team_of(custid: str) -> str | None:
    """The Slack team id in an owner made by `slack_owner`, if it has one."""
    parts = custid.split(":")
    if len(parts) == 3 and parts[0] == "slack" and parts[1] not in ("", "-"):
        return parts[1]
    return None


@dataclass(frozen=True)
class Outcome:
    kind: str  # "received", "burned", "expired"
    via: str | None = None


class Notifier:
    """Tells a sender, by DM and in their language, what became of a secret they shared."""

    def __init__(self, messenger: Messenger, workspaces: Workspaces) -> None:
        self.messenger = messenger
        self.workspaces = workspaces

    async def tell(
        self, sender: str, outcome: Outcome, recipients: tuple[str, ...], created: int,
        label: str | None = None, *, team: str | None = None,
    ) -> None:
        try:
            # Not a Slack request: the sender's workspace is found by its team id.
            async with self.workspaces.acting_for(team):
                # In the sender's language, whoever revealed or burned the secret.
                async with speaking_to(self.messenger.languages, sender):
                    message = blocks.notification_message(
                        kind=outcome.kind, via=outcome.via, recipients=recipients,
                        created=created, label=label,
                    )
                await self.messenger.dm(sender, message)
        except SlackFailure:
            log.warning("could not tell a sender about their secret (%s)", outcome.kind)
        except NotInstalled as exc:
            log.warning("could not tell a sender about their secret: %s", exc)


class ReceiptLedger:
    """Receipt keys of secrets made from Slack, sealed at rest, for the watcher."""

    def __init__(self, store: AppStore) -> None:
        self.storage = store.storage
        self._key = store.key

    async def track(
        self, receipt: Receipt, sender: str, recipients: tuple[str, ...],
        team: str | None = None,
    ) -> None:
        record_id = crypto.storage_id(WATCH_PREFIX, receipt.metadata_key)
        record = {
            "m": receipt.metadata_key, "s": sender, "r": list(recipients),
            "c": receipt.created, "e": receipt.expires_at, "t": team,
        }
        sealed = self._key.seal(json.dumps(record).encode(), record_id.encode())
        await self.storage.put(record_id, sealed, 2 * receipt.ttl + 3600)
        if receipt.secret_key:
            lookup_id = crypto.storage_id(LOOKUP_PREFIX, receipt.secret_key)
            await self.storage.put(lookup_id, crypto.seal(
                receipt.metadata_key.encode(), receipt.secret_key, lookup_id.encode()
            ), 2 * receipt.ttl + 3600)
        await self.storage.index_add(
            WATCH_INDEX, record_id.encode(), receipt.expires_at, _INDEX_TTL
        )

    async def metadata_key_for(self, secret_key: str) -> str | None:
        """The receipt key of a secret made from Slack, for whoever holds its key."""
        lookup_id = crypto.storage_id(LOOKUP_PREFIX, secret_key)
        raw = await self.storage.get(lookup_id)
        if raw is None:
            return None
        try:
            return crypto.open_sealed(raw, secret_key, lookup_id.encode()).decode()
        except crypto.DecryptionFailed:
            return None

    async def forget(self, metadata_key: str) -> None:
        """Stop watching (the sender burned it). Best effort: at worst they hear of it twice."""
        try:
            await self._drop(crypto.storage_id(WATCH_PREFIX, metadata_key))
        except BackendError as exc:
            log.warning("could not stop watching a receipt: %s", type(exc).__name__)

    async def _drop(self, record_id: str) -> bool:
        """Remove a record; True only for the one caller (of any replica) who removed it."""
        removed = await self.storage.index_remove(WATCH_INDEX, record_id.encode())
        await self.storage.delete(record_id)
        return removed

    async def records(self) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for member in await self.storage.index_range(WATCH_INDEX, _BATCH):
            record_id = member.decode()
            raw = await self.storage.get(record_id)
            if raw is None:
                await self._drop(record_id)
                continue
            try:
                opened = self._key.open(raw, record_id.encode())
            except Unsealable:
                log.warning("dropping a receipt watch sealed under another server key")
                await self._drop(record_id)
                continue
            found.append((record_id, json.loads(opened)))
        return found

    async def settle(self, record_id: str) -> bool:
        return await self._drop(record_id)


class ReceiptWatcher:
    """Polls the receipts in the ledger and tells each sender once what happened."""

    def __init__(
        self,
        ledger: ReceiptLedger,
        backend: SecretBackend,
        report: Callable[[dict[str, Any], Outcome], Awaitable[None]],
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.report = report
        self.interval = interval
        self._clock = clock

    async def check_once(self) -> None:
        for record_id, record in await self.ledger.records():
            outcome = await self._outcome(record)
            # Several replicas may poll the same ledger: only the one whose
            # removal succeeded sends the message.
            if outcome is not None and await self.ledger.settle(record_id):
                await self.report(record, outcome)

    async def _outcome(self, record: dict[str, Any]) -> Outcome | None:
        try:
            receipt = await self.backend.receipt(record["m"])
        except SecretNotFound:
            return Outcome("expired", "expiry")  # the receipt itself is gone
        except BackendError as exc:
            log.warning("could not check a receipt: %s", type(exc).__name__)
            return None
        if receipt.state == "received":
            return Outcome("received")
        if receipt.state == "burned":
            return Outcome("burned")
        if receipt.state in ("expired", "orphaned") or self._clock() >= record["e"]:
            return Outcome("expired", "expiry")
        return None

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except BackendError as exc:
                log.warning("receipt watch skipped a round: %s", type(exc).__name__)
            except Exception:
                # A background loop has no caller to report to: log, and try next round.
                log.exception("receipt watch failed; trying again next round")
            await asyncio.sleep(self.interval)
