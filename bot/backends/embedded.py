"""The embedded store: one-time secrets kept by this app, on SQLite or Redis.

How a secret is kept (see DESIGN.md):
- `secret_key` and `metadata_key` are independent random ids; storage sees
  only their hashes (`storage_id`).
- The secret record is AES-256-GCM ciphertext under a key derived from the
  `secret_key` (and scrypt of the passphrase, when there is one), prefixed with
  the hash of the `metadata_key` so a reveal can update the receipt.
- Secrets without a passphrase live under `s:` and are revealed by one atomic
  `take`. Secrets with one live under `p:`: a reveal reads, decrypts, and only
  the caller whose `delete` removed the record gets the plaintext; a wrong
  passphrase never consumes, and after `passphrase_attempts` wrong tries the
  secret is burned.
- The receipt (`m:`) is JSON with state and timestamps; it holds the
  `secret_key` only encrypted under the `metadata_key`, and only until the
  secret is received or burned. It lives twice as long as the secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from bot import metrics
from bot.backends import crypto
from bot.backends.base import (
    Background,
    Capabilities,
    Listener,
    Receipt,
    Revealed,
    SecretEvent,
)
from bot.backends.storage import Count, Storage, Taken, claim_count
from bot.errors import (
    BackendUnavailable,
    InvalidRequest,
    OverLimit,
    SecretNotFound,
    StoreFull,
    WrongPassphrase,
)
from bot.logs import Throttled
from bot.serverkey import ServerKey, Unsealable

log = logging.getLogger(__name__)
_full = Throttled(log)

MIN_TTL = 60
GENERATE_LENGTH = 12
GENERATE_MAX_LENGTH = 128
SHORTKEY_LENGTH = 8
SCRUB_SECONDS = 3.0  # how often SQLite drops expired rows and empties its WAL
RECENT_LIMIT = 100  # receipts `recent` lists, newest first; an index keeps no more
# `recent` scores are seconds * span + a per-user counter: exact in a float until 2255.
_SEQUENCE_SPAN = 1_000_000
# Expiry notices: due entries are taken in batches; a round keeps taking batches while
# full ones come back, for up to SWEEP_BUDGET seconds, and the next round comes at once
# (after SWEEP_PAUSE) while a backlog is left.
EXPIRY_BATCH = 200
EXPIRY_CONCURRENCY = 16
SWEEP_BUDGET = 5.0
SWEEP_PAUSE = 0.5
# Letters and digits without the look-alikes (0 O o 1 l I).
_LOWER = "abcdefghijkmnpqrstuvwxyz"
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "23456789"
_EXPIRY_INDEX = "x:expiring"
NOTHING_TO_SHARE = "You did not provide anything to share"
NUL_REFUSED = (
    "The secret contains a NUL character (\\0), which cannot be shown or pasted "
    "reliably. Remove it and share again."
)


class EmbeddedStore:
    name = "embedded"
    capabilities = Capabilities(
        serves_links=True,
        pushes_events=True,
        counts_passphrase_attempts=True,
        holds_slack_recipients=True,
        counts_in_store=True,
    )

    def __init__(
        self,
        storage: Storage,
        *,
        public_url: str,
        default_ttl: int = 7 * 86400,
        max_ttl: int = 30 * 86400,
        max_secret_bytes: int = 10_000,
        passphrase_attempts: int = 5,
        clock: Callable[[], float] = time.time,
        scrypt_n: int = crypto.SCRYPT_N,
        api_tokens: Mapping[str, str] | None = None,
        min_ttl: int = MIN_TTL,
        server_key: ServerKey | None = None,
    ) -> None:
        self.storage = storage
        # Seals owners and recipients in receipts; the app passes the store's key.
        # Without one (a store built alone, in a test) a key lives as long as the object.
        self.server_key = server_key or ServerKey.generate()
        # Only tests lower this (to see real expiry in seconds); settings never do.
        self.min_ttl = min_ttl
        # custid -> that API user's private index of receipts (see RecentIndex).
        self._recent = {
            custid: RecentIndex(custid, self.server_key) for custid in (api_tokens or {})
        }
        self.public_url = public_url.rstrip("/")
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_secret_bytes = max_secret_bytes
        self.passphrase_attempts = passphrase_attempts
        self._clock = clock
        self._scrypt_n = scrypt_n
        self._listeners: list[Listener] = []

    # -- events -------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` when a secret with an owner is received, burned or expires."""
        self._listeners.append(listener)

    async def _emit(self, event: SecretEvent) -> None:
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception as exc:
                # A failed notification must never undo or fail the reveal itself.
                # The type only: a client library's message may quote what it sent.
                log.error(
                    "secret event listener failed (kind=%s): %s", event.kind, type(exc).__name__
                )

    # -- links --------------------------------------------------------------

    def secret_url(self, secret_key: str, share_domain: str = "") -> str:
        # A share domain is a public host name (SHARE_DOMAINS), always served over https.
        base = f"https://{share_domain}" if share_domain else self.public_url
        return f"{base}/secret/{secret_key}"

    def receipt_url(self, metadata_key: str) -> str:
        return f"{self.public_url}/private/{metadata_key}"

    # -- creating -------------------------------------------------------------

    def clamp_ttl(self, ttl: int | None) -> int:
        if not ttl or ttl <= 0:
            return self.default_ttl
        return max(self.min_ttl, min(int(ttl), self.max_ttl))

    async def share(
        self,
        secret: str,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
        share_domain: str = "",
    ) -> Receipt:
        if not secret:
            raise InvalidRequest(NOTHING_TO_SHARE)
        if "\x00" in secret:
            # No page can show a NUL (browsers turn it into U+FFFD) and C programs
            # stop reading at it: the recipient would get a different secret.
            raise InvalidRequest(NUL_REFUSED)
        data = secret.encode("utf-8", "surrogatepass")
        if len(data) > self.max_secret_bytes:
            raise InvalidRequest(
                f"The secret is too long: {len(data):,} bytes; the limit is "
                f"{self.max_secret_bytes:,} bytes."
            )
        return await self._store(
            data, ttl, passphrase or None, recipient, owner or "anon", share_domain=share_domain
        )

    async def generate(
        self,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
        length: int | None = None,
        share_domain: str = "",
    ) -> Receipt:
        value = generate_password(length or GENERATE_LENGTH)
        # As on v1 servers: the caller has already seen the value, so it starts viewed.
        receipt = await self._store(
            value.encode("ascii"), ttl, passphrase or None, recipient, owner or "anon",
            state="viewed", share_domain=share_domain,
        )
        return _with_value(receipt, value)

    async def _store(
        self,
        data: bytes,
        ttl: int | None,
        passphrase: str | None,
        recipient: tuple[str, ...],
        custid: str,
        *,
        state: str = "new",
        share_domain: str = "",
    ) -> Receipt:
        ttl = self.clamp_ttl(ttl)
        now = int(self._clock())
        # One slot tag for both keys: every record of this share is in one Redis
        # Cluster slot, so a create and a reveal are one script each.
        tag = crypto.new_tag()
        secret_key, metadata_key = crypto.new_key(tag), crypto.new_key(tag)
        metadata_id = crypto.storage_id("m:", metadata_key)
        secret_id = crypto.storage_id("p:" if passphrase else "s:", secret_key)
        pointer = bytes.fromhex(crypto.digest_of(metadata_id))
        if passphrase:
            # scrypt takes ~0.3 s of CPU: keep it off the event loop.
            sealed = await asyncio.to_thread(
                self._seal, data, secret_key, secret_id, pointer, passphrase
            )
        else:
            sealed = self._seal(data, secret_key, secret_id, pointer, None)
        record = {
            "custid": custid,
            "state": state,
            "created": now,
            "updated": now,
            "ttl": ttl,
            "passphrase_required": bool(passphrase),
            "recipient": list(recipient),
            # The secret record this receipt is for: a reveal settles only its own
            # receipt, even if a record's (unauthenticated) pointer was edited.
            "sid": crypto.digest_of(secret_id),
            **({"domain": share_domain} if share_domain else {}),
            "sk": _b64(
                crypto.seal(secret_key.encode(), metadata_key, metadata_id.encode())
            ),
        }
        # Receipt and secret in one step (with the request's rate-limit count, when
        # the middleware left one): both are stored or neither, in one round trip.
        stored = await self.storage.put_all(
            [(metadata_id, self._dump(metadata_id, record), 2 * ttl),
             (secret_id, pointer + sealed, ttl)],
            count=claim_count("create"),
        )
        if not stored:
            raise BackendUnavailable("Could not store the secret: a key collided. Try again.")
        metrics.SECRET_EVENTS["created"].inc()
        if custid != "anon" and self._listeners:
            await self.storage.index_add(
                _EXPIRY_INDEX, metadata_id.encode(), _surely_gone(record), self.max_ttl * 2
            )
        if custid in self._recent:
            index = self._recent[custid]
            # Seconds alone tie for secrets made within the same second; a counter
            # shared by every replica (one atomic incr) orders those truly. Trimmed on
            # every add: `recent` shows the newest RECENT_LIMIT anyway, and an active
            # user's index must not grow without end.
            sequence = await self.storage.incr(index.sequence, self.max_ttl * 2)
            await self.storage.index_add(
                index.name,
                index.seal(metadata_key),
                now * _SEQUENCE_SPAN + sequence % _SEQUENCE_SPAN,
                self.max_ttl * 2,
                keep=RECENT_LIMIT,
            )
        return self._receipt(metadata_key, secret_key, record)

    def _seal(
        self, data: bytes, key: str, secret_id: str, pointer: bytes, passphrase: str | None
    ) -> bytes:
        # The receipt pointer stored beside the ciphertext is bound into it: a copy of
        # the store cannot be edited to make a reveal update another secret's receipt.
        return crypto.seal(
            data, key, secret_id.encode() + pointer, passphrase, scrypt_n=self._scrypt_n
        )

    # -- revealing ------------------------------------------------------------

    async def reveal(
        self, secret_key: str, passphrase: str | None = None, *, via: str = "api"
    ) -> Revealed:
        if not _plausible_key(secret_key):
            raise SecretNotFound
        plain_id = crypto.storage_id("s:", secret_key)
        if crypto.slot_tag(secret_key):
            taken = await self._take_settle(secret_key, plain_id)
            if taken.value is not None:
                value = self._open(taken.value, secret_key, plain_id, None)
                metrics.SECRET_EVENTS["revealed"].inc()
                receipt_id = self._receipt_id(secret_key, taken.value)
                if taken.settled is not None:
                    await self._settled(receipt_id, taken.settled, "received", via)
                elif taken.unsettled:
                    # The secret is out of the store and nobody else can get it:
                    # a stale receipt is the lesser harm than failing the reveal.
                    log.warning("a secret was revealed but its receipt could not be updated")
                return Revealed(secret_key=secret_key, value=value)
            raw = None
            protected = taken.other
        else:
            # A key made before slot tags: its records have the old names, in slots
            # of their own on Cluster, so one step each (count first: nothing is
            # taken over the limit).
            await self._count_apart(claim_count("reveal"))
            raw = await self.storage.take(plain_id)
            protected = None
        if raw is not None:
            value = self._open(raw, secret_key, plain_id, None)
        else:
            value, raw = await self._reveal_with_passphrase(
                secret_key, passphrase or None, via, protected
            )
        metrics.SECRET_EVENTS["revealed"].inc()
        try:
            await self._mark(self._receipt_id(secret_key, raw), "received", via)
        except BackendUnavailable:
            # The secret is already out of the store and nobody else can get it:
            # failing now would lose it. A stale receipt is the lesser harm.
            log.warning("a secret was revealed but its receipt could not be updated")
        return Revealed(secret_key=secret_key, value=value)

    async def _take_settle(self, secret_key: str, plain_id: str) -> Taken:
        """One round trip: the request's count, the take, and the receipt marked
        received; or, for a secret with a passphrase, its record read."""
        other = crypto.storage_id("p:", secret_key)
        prefix = crypto.named("m:", crypto.slot_tag(secret_key), "")
        sid = crypto.digest_of(plain_id)
        now = int(self._clock())
        count = claim_count("reveal")
        try:
            return await self.storage.take_settle(
                plain_id, other=other, receipt_prefix=prefix, sid=sid, now=now, count=count
            )
        except StoreFull:
            if count is None:
                raise
            # The counter (a write) was refused before anything was taken: a full
            # store still takes reveals, which free memory. Reveal uncounted.
            _full.warning("full", "the store is full: reveals go on without counting them "
                          "(rate limit)")
            return await self.storage.take_settle(
                plain_id, other=other, receipt_prefix=prefix, sid=sid, now=now
            )

    async def _count_apart(self, count: Count | None) -> None:
        """A reveal's count in a step of its own (keys made before slot tags)."""
        if count is None:
            return
        try:
            counted = await self.storage.incr(count.key, count.ttl)
        except StoreFull:
            _full.warning("full", "the store is full: reveals go on without counting them "
                          "(rate limit)")
            return
        if counted > count.limit:
            raise OverLimit

    def _receipt_id(self, secret_key: str, raw: bytes) -> str:
        """The receipt's id from a secret record's pointer (its first 32 bytes)."""
        return crypto.named("m:", crypto.slot_tag(secret_key), raw[:32].hex())

    async def _reveal_with_passphrase(
        self, secret_key: str, passphrase: str | None, via: str, raw: bytes | None = None
    ) -> tuple[str, bytes]:
        secret_id = crypto.storage_id("p:", secret_key)
        if raw is None:
            raw = await self.storage.get(secret_id)
        if raw is None:
            raise SecretNotFound
        value = await self._open_counted(secret_key, secret_id, raw, passphrase, via)
        # Only the caller whose delete removed the record may see the value.
        if not await self.storage.delete(secret_id):
            raise SecretNotFound
        return value, raw

    async def _open_counted(
        self, secret_key: str, secret_id: str, raw: bytes, passphrase: str | None, via: str
    ) -> str:
        """Open a passphrase-protected record as one of its limited attempts.

        A missing or wrong passphrase raises SecretNotFound; the last allowed one
        burns the secret. Reveal and burn both come through here, so neither is a
        way round `passphrase_attempts`.
        """
        # The attempt is reserved (one atomic INCR, shared by every worker and
        # replica) before scrypt runs: a burst of guesses gets at most
        # `passphrase_attempts` evaluations, however many arrive at once.
        # The counter lives as long as the secret can: not a day longer in storage.
        receipt_id = self._receipt_id(secret_key, raw)
        attempt = await self.storage.incr(
            crypto.storage_id("a:", secret_key), await self._life_left(receipt_id)
        )
        if attempt > self.passphrase_attempts:
            # Every allowed try is taken (some may still be running; the last of
            # them to fail burns the secret): this one is not evaluated at all.
            raise SecretNotFound
        try:
            if not passphrase:
                raise crypto.DecryptionFailed
            return await asyncio.to_thread(self._open, raw, secret_key, secret_id, passphrase)
        except crypto.DecryptionFailed:
            if attempt >= self.passphrase_attempts:
                await self._burn_after_attempts(secret_id, receipt_id)
            else:
                await self._tell_refused(receipt_id, via)
            # Tries left from the reserved count; 0: this try destroyed the secret.
            raise WrongPassphrase(self.passphrase_attempts - attempt) from None

    async def _burn_after_attempts(self, secret_id: str, receipt_id: str) -> None:
        if await self.storage.delete(secret_id):
            metrics.SECRET_EVENTS["burned"].inc()
            await self._mark(receipt_id, "burned", "attempts")

    async def _life_left(self, receipt_id: str) -> int:
        """Seconds until the secret of this receipt surely expires (at least 1)."""
        raw = await self.storage.get(receipt_id)
        if raw is None:
            # The receipt outlives its secret, so this is a secret about to go.
            return self.min_ttl
        return max(1, _surely_gone(json.loads(raw)) - int(self._clock()))

    def _open(self, raw: bytes, key: str, secret_id: str, passphrase: str | None) -> str:
        sealed = raw[32:]
        # Version 1 records (made before the pointer was bound) have only the id.
        associated = secret_id.encode() + (raw[:32] if crypto.version(sealed) >= 2 else b"")
        try:
            data = crypto.open_sealed(sealed, key, associated, passphrase)
        except crypto.DecryptionFailed:
            if passphrase is None and not crypto.needs_passphrase(raw[32:]):
                # Without a passphrase this can only be a damaged record.
                raise BackendUnavailable("A stored secret could not be decrypted.") from None
            raise
        return data.decode("utf-8", "surrogatepass")

    # -- receipts -------------------------------------------------------------

    async def receipt(self, metadata_key: str) -> Receipt:
        if not _plausible_key(metadata_key):
            raise SecretNotFound
        metadata_id = crypto.storage_id("m:", metadata_key)
        seen: list[dict[str, Any]] = []

        def view(record: dict[str, Any]) -> dict[str, Any] | None:
            seen[:] = [dict(record)]
            return _advance(record, "viewed", int(self._clock()))

        record = await self._update(metadata_id, view)
        if record is None:
            raise SecretNotFound
        # v1: the first read still answers "new" and only then marks it viewed. Of
        # concurrent first reads, only the one whose compare-and-set won sees "new".
        if seen and seen[0]["state"] == "new" and record["state"] == "viewed":
            record = seen[0]
        return self._receipt(metadata_key, None, record)

    async def peek_receipt(self, metadata_key: str) -> Receipt:
        """The receipt as it is, for HEAD: unlike `receipt`, it does not mark it viewed."""
        receipt = await self._look(metadata_key) if _plausible_key(metadata_key) else None
        if receipt is None:
            raise SecretNotFound
        return receipt

    async def burn(
        self, metadata_key: str, passphrase: str | None = None, *, by_owner: bool = False
    ) -> Receipt:
        receipt, _ = await self.burn_with_shortkey(metadata_key, passphrase, by_owner=by_owner)
        return receipt

    async def burn_with_shortkey(
        self, metadata_key: str, passphrase: str | None = None, *, by_owner: bool = False
    ) -> tuple[Receipt, str]:
        """Burn, and also return the first characters of the dead secret_key (OTS's
        `secret_shortkey`), which the receipt itself no longer holds.

        A passphrase-protected secret needs its passphrase, as on v1 servers: the
        metadata key alone (a receipt link someone saw) must not destroy it. A missing
        or wrong one answers SecretNotFound, keeps the secret and counts as a wrong
        try, so burning is no way round `passphrase_attempts`. `by_owner` is for a
        caller who knows the owner is asking (Slack says who clicked Burn now).
        """
        if not _plausible_key(metadata_key):
            raise SecretNotFound
        metadata_id = crypto.storage_id("m:", metadata_key)
        raw = await self.storage.get(metadata_id)
        if raw is None:
            raise SecretNotFound
        record = self._load(metadata_id, raw)
        secret_key = self._secret_key_of(metadata_key, metadata_id, record)
        if secret_key is None or self._state(record) not in ("new", "viewed"):
            raise SecretNotFound
        prefix = "p:" if record["passphrase_required"] else "s:"
        secret_id = crypto.storage_id(prefix, secret_key)
        if record["passphrase_required"] and not by_owner:
            await self._check_passphrase(secret_key, secret_id, passphrase or None)
        if not await self.storage.delete(secret_id):
            raise SecretNotFound
        metrics.SECRET_EVENTS["burned"].inc()
        try:
            record = await self._mark(metadata_id, "burned", "burn") or record
        except BackendUnavailable:
            # The secret is gone already: the burn happened. A full store refuses the
            # receipt's update (a write) while it still takes deletes, which free memory.
            log.warning("a secret was burned but its receipt could not be updated")
            record = _advance(dict(record), "burned", int(self._clock())) or record
        return self._receipt(metadata_key, None, record), secret_key[:SHORTKEY_LENGTH]

    async def _check_passphrase(
        self, secret_key: str, secret_id: str, passphrase: str | None
    ) -> None:
        raw = await self.storage.get(secret_id)
        if raw is None:
            raise SecretNotFound
        # A wrong passphrase on a burn is a refused attempt like any other (the owner
        # hears of it as one made with the link, outside Slack).
        await self._open_counted(secret_key, secret_id, raw, passphrase, "api")

    async def peek(self, secret_key: str) -> bool | None:
        """Without consuming: None if no such secret, else whether it needs a passphrase."""
        if not _plausible_key(secret_key):
            return None
        if await self.storage.get(crypto.storage_id("s:", secret_key)) is not None:
            return False
        if await self.storage.get(crypto.storage_id("p:", secret_key)) is not None:
            return True
        return None

    async def recent(self, owner: str) -> list[Receipt]:
        """The owner's receipts, newest first, without changing their state.

        Only API users (`api_tokens`) have an index; anyone else has no recent list.
        """
        index = self._recent.get(owner)
        if index is None:
            return []
        receipts = []
        for member in await self.storage.index_range(index.name, RECENT_LIMIT):
            metadata_key = index.open(member)
            receipt = None if metadata_key is None else await self._look(metadata_key)
            if receipt is None:
                # The receipt is gone (twice the secret's lifetime passed): forget it.
                await self.storage.index_remove(index.name, member)
                continue
            receipts.append(receipt)
        return receipts

    async def _look(self, metadata_key: str) -> Receipt | None:
        """The receipt as it is: unlike `receipt`, reading it does not mark it viewed."""
        metadata_id = crypto.storage_id("m:", metadata_key)
        raw = await self.storage.get(metadata_id)
        if raw is None:
            return None
        return self._receipt(metadata_key, None, self._load(metadata_id, raw))

    async def status(self) -> None:
        await self.storage.ping()

    async def close(self) -> None:
        await self.storage.close()

    async def _tell_refused(self, metadata_id: str, via: str) -> None:
        """A wrong passphrase: the owner may want to know someone is trying."""
        if not self._listeners:
            return
        try:
            raw = await self.storage.get(metadata_id)
        except BackendUnavailable:
            return  # only a notice is lost; the refusal itself stands
        if raw is None:
            return
        record = self._load(metadata_id, raw)
        if record["custid"] != "anon":
            await self._emit(SecretEvent(
                kind="refused", custid=record["custid"], created=record["created"],
                recipient=tuple(record.get("recipient", ())), via=via, ref=metadata_id,
            ))

    async def _mark(self, metadata_id: str, state: str, via: str) -> dict[str, Any] | None:
        now = int(self._clock())
        record = await self._update(metadata_id, lambda r: _advance(r, state, now))
        if record is not None and record.get("state") == state:
            await self._tell(metadata_id, record, state, via)
        return record

    async def _settled(self, metadata_id: str, raw: bytes, state: str, via: str) -> None:
        """The storage changed the receipt itself (`take_settle`): tell its owner."""
        try:
            record = self._load(metadata_id, raw)
        except ValueError:
            log.warning("a secret was revealed but its receipt could not be read")
            return
        await self._tell(metadata_id, record, state, via)

    async def _tell(self, metadata_id: str, record: dict[str, Any], state: str, via: str) -> None:
        if record["custid"] != "anon":
            await self._emit(
                SecretEvent(
                    kind=state,
                    custid=record["custid"],
                    created=record["created"],
                    recipient=tuple(record.get("recipient", ())),
                    via=via,
                    ref=metadata_id,
                )
            )

    async def _update(
        self, metadata_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply `change` to a receipt with compare-and-set; returns the record as stored."""
        for _ in range(20):
            raw = await self.storage.get(metadata_id)
            if raw is None:
                return None
            record = self._load(metadata_id, raw)
            changed = change(dict(record))
            if changed is None or changed == record:
                return record
            if await self.storage.replace(metadata_id, raw, self._dump(metadata_id, changed)):
                return changed
        raise BackendUnavailable("The receipt is changing too fast; try again.")

    def _dump(self, metadata_id: str, record: dict[str, Any]) -> bytes:
        """The receipt as stored: who owns it and who it was for are sealed under the
        server key, so a copy of the store names nobody."""
        stored = {k: v for k, v in record.items() if k not in _PEOPLE}
        people = json.dumps([record["custid"], list(record.get("recipient", ()))])
        stored["who"] = self.server_key.seal_text(people, metadata_id)
        return _dump(stored)

    def _load(self, metadata_id: str, raw: bytes) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(raw)
        sealed = record.pop("who", None)
        if sealed is None:
            return record  # written before owners were sealed: they are in the clear
        try:
            custid, recipient = json.loads(self.server_key.open_text(sealed, metadata_id))
        except Unsealable:
            # Another SERVER_KEY sealed it: the receipt still works, its owner is unknown.
            log.warning("a receipt was sealed under another server key")
            custid, recipient = "anon", []
        record["custid"], record["recipient"] = custid, recipient
        return record

    def _state(self, record: dict[str, Any]) -> str:
        state: str = record["state"]
        if state in ("new", "viewed") and self._clock() >= _surely_gone(record):
            return "expired"
        return state

    def _secret_key_of(
        self, metadata_key: str, metadata_id: str, record: dict[str, Any]
    ) -> str | None:
        if not record.get("sk"):
            return None
        try:
            return crypto.open_sealed(
                base64.b64decode(record["sk"]), metadata_key, metadata_id.encode()
            ).decode()
        except crypto.DecryptionFailed:
            raise BackendUnavailable("A stored receipt could not be decrypted.") from None

    def _receipt(
        self, metadata_key: str, secret_key: str | None, record: dict[str, Any]
    ) -> Receipt:
        now = int(self._clock())  # as `created` is: a new receipt's secret_ttl is its ttl
        state = self._state(record)
        created, ttl = int(record["created"]), int(record["ttl"])
        unread = state in ("new", "viewed")
        if unread and secret_key is None:
            secret_key = self._secret_key_of(
                metadata_key, crypto.storage_id("m:", metadata_key), record
            )
        return Receipt(
            custid=record["custid"],
            metadata_key=metadata_key,
            secret_key=secret_key if unread else None,
            ttl=ttl,
            metadata_ttl=max(0, int(created + 2 * ttl - now)),
            secret_ttl=max(0, int(created + ttl - now)) if unread else None,
            created=created,
            updated=int(record["updated"]),
            state=state,
            passphrase_required=bool(record["passphrase_required"]),
            recipient=tuple(record.get("recipient", ())),
            received=record.get("received"),
            share_domain=str(record.get("domain") or ""),
        )

    # -- maintenance ----------------------------------------------------------

    async def sweep(self) -> bool:
        """Drop expired rows (SQLite) and tell owners about secrets that expired unread.

        Returns True when expiry notices are left over (the round ran out of time).
        """
        sweep = getattr(self.storage, "sweep", None)
        if sweep is not None:
            await sweep()
        if not self._listeners:
            return False
        deadline = time.monotonic() + SWEEP_BUDGET
        gate = asyncio.Semaphore(EXPIRY_CONCURRENCY)

        async def settle(member: bytes) -> None:
            async with gate:
                await self._expire(member.decode())

        while True:
            due = await self.storage.index_pop_due(_EXPIRY_INDEX, self._clock(), EXPIRY_BATCH)
            await asyncio.gather(*(settle(member) for member in due))
            if len(due) < EXPIRY_BATCH:
                return False
            if time.monotonic() >= deadline:
                return True

    async def _expire(self, metadata_id: str) -> None:
        raw = await self.storage.get(metadata_id)
        if raw is None:
            return
        if self._state(self._load(metadata_id, raw)) == "expired":
            record = await self._mark(metadata_id, "expired", "expiry")
            if record is not None and record["state"] == "expired":
                metrics.SECRET_EVENTS["expired"].inc()

    async def expiry_backlog(self) -> int:
        """Expiry notices due but not yet sent (0 when nobody listens)."""
        if not self._listeners:
            return 0
        return await self.storage.index_count(_EXPIRY_INDEX, self._clock())

    def background(self) -> list[Background]:
        loops: list[Background] = [self.run_maintenance]
        if hasattr(self.storage, "scrub"):
            loops.append(self.run_scrub)
        return loops

    async def run_scrub(self, interval: float = SCRUB_SECONDS) -> None:
        """SQLite: used secrets' ciphertext gone from every file within seconds."""
        scrub = getattr(self.storage, "scrub")  # noqa: B009
        while True:
            try:
                await scrub()
            except BackendUnavailable as exc:
                log.warning("could not scrub the store: %s", exc.message)
            await asyncio.sleep(interval)

    async def run_maintenance(self, interval: float = 30.0) -> None:
        while True:
            behind = False
            with contextlib.suppress(BackendUnavailable):
                behind = await self.sweep()
                metrics.EXPIRY_BACKLOG.set(await self.expiry_backlog())
            await asyncio.sleep(SWEEP_PAUSE if behind else interval)


class RecentIndex:
    """One API user's list of receipts, readable only by the running app.

    Storage must not learn metadata keys (they are capabilities) nor whose list is
    whose: the index's name is a keyed hash of the custid and each entry is sealed,
    both under the server key. A copy of the store shows opaque names and
    ciphertext, and nothing in it can be tested against guessed API tokens.
    """

    def __init__(self, custid: str, server_key: ServerKey) -> None:
        self.name = server_key.hash_id("r:", custid)
        self.sequence = self.name + ":n"
        self._key = server_key

    def seal(self, metadata_key: str) -> bytes:
        return self._key.seal(metadata_key.encode("ascii"), self.name.encode())

    def open(self, member: bytes) -> str | None:
        try:
            return self._key.open(member, self.name.encode()).decode("ascii")
        except (Unsealable, UnicodeDecodeError):
            return None


def generate_password(length: int = GENERATE_LENGTH) -> str:
    if not 1 <= length <= GENERATE_MAX_LENGTH:
        raise InvalidRequest(f"The length must be between 1 and {GENERATE_MAX_LENGTH}.")
    alphabet = _LOWER + _UPPER + _DIGITS
    while True:
        value = "".join(_random.choice(alphabet) for _ in range(length))
        # Password rules usually want every class; short ones can't have them all.
        if length < 3 or all(any(c in cls for c in value) for cls in (_LOWER, _UPPER, _DIGITS)):
            return value


_NEXT_STATES = {
    "viewed": ("new",),
    "received": ("new", "viewed"),
    "burned": ("new", "viewed"),
    "expired": ("new", "viewed"),
}


def _advance(record: dict[str, Any], state: str, now: int) -> dict[str, Any] | None:
    if record["state"] not in _NEXT_STATES[state]:
        return None
    record["state"] = state
    record["updated"] = now
    if state != "viewed":
        record["sk"] = None  # the link is dead: forget it
    if state == "received":
        record["received"] = now
    return record


def _surely_gone(record: dict[str, Any]) -> int:
    """When storage has surely dropped the secret. `created` is in whole seconds, cut
    down, and storage counts the TTL from the exact moment, so the secret lives up to a
    second past `created + ttl`: a receipt must not say "expired" (nor the owner hear
    it) while the secret can still be revealed."""
    return int(record["created"]) + int(record["ttl"]) + 1


def _with_value(receipt: Receipt, value: str) -> Receipt:
    return replace(receipt, value=value)


def _plausible_key(key: str) -> bool:
    return 20 <= len(key) <= 128 and key.isascii() and key.isalnum()


_PEOPLE = ("custid", "recipient")


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
