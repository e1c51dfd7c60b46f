"""The one protocol the Slack and web layers use, whichever backend serves.

Backends know nothing of Slack or of HTTP routing. Every method raises only
`bot.errors.BackendError` subclasses on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

STATES = ("new", "viewed", "received", "burned", "expired", "orphaned")


@dataclass(frozen=True)
class Receipt:
    """The metadata of a secret, shaped like the Onetime Secret v1 receipt."""

    custid: str
    metadata_key: str
    secret_key: str | None  # None once received or burned, or when the backend omits it
    ttl: int  # the requested secret lifetime
    metadata_ttl: int  # seconds the receipt has left
    secret_ttl: int | None  # seconds the secret has left; None when gone
    created: int
    updated: int
    state: str
    passphrase_required: bool
    recipient: tuple[str, ...] = ()
    received: int | None = None
    value: str | None = field(default=None, repr=False)  # only from generate
    share_domain: str = ""  # the host its link is built on; "" for the server's own

    @property
    def expires_at(self) -> int:
        """When the secret expires (Unix seconds)."""
        return self.created + self.ttl


@dataclass(frozen=True)
class Revealed:
    secret_key: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class Capabilities:
    """What differs between backends, said by the backend rather than guessed by type."""

    # This app serves the secrets' links itself: reveal page, receipt page, /api/v1.
    serves_links: bool
    # The backend tells the app the moment a secret is received, burned or expires
    # (`subscribe`); otherwise the app must poll the receipts it keeps.
    pushes_events: bool
    # The backend counts wrong passphrases against this app's PASSPHRASE_ATTEMPTS
    # (and `peek` can tell whether a secret is still there without using it up).
    counts_passphrase_attempts: bool
    # A Slack user id may be kept as a receipt's `recipient`; Onetime Secret would
    # try to e-mail it.
    holds_slack_recipients: bool
    # The longest lifetime the backend keeps, if it has a limit of its own (it
    # would silently shorten a longer one); None: MAX_TTL alone decides.
    max_ttl: int | None = None
    # A create or reveal takes the request's rate-limit count (`claim_count`) into
    # its own store round trip, before any work (bot/web/limits.py).
    counts_in_store: bool = False


@dataclass(frozen=True)
class SecretEvent:
    """Something the owner of a secret may want to hear about. Holds no secret or key."""

    kind: str  # "received", "burned", "expired"; "refused" (a wrong passphrase)
    custid: str
    created: int
    recipient: tuple[str, ...]
    via: str  # "page", "api", "slack", "burn", "attempts", "expiry"
    # The receipt's storage id (a hash of its key, never the key): lets a listener
    # find what it keeps about this secret.
    ref: str = ""


Listener = Callable[[SecretEvent], Awaitable[None]]
Background = Callable[[], Awaitable[None]]


class SecretBackend(Protocol):
    """What the app needs from a place that keeps one-time secrets."""

    name: str
    capabilities: Capabilities

    async def share(
        self,
        secret: str,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
    ) -> Receipt: ...

    async def generate(
        self,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
        length: int | None = None,
    ) -> Receipt: ...

    async def reveal(
        self, secret_key: str, passphrase: str | None = None, *, via: str = "api"
    ) -> Revealed: ...

    async def receipt(self, metadata_key: str) -> Receipt: ...

    async def burn(
        self, metadata_key: str, passphrase: str | None = None, *, by_owner: bool = False
    ) -> Receipt:
        """Destroy an unread secret. A passphrase-protected one needs its passphrase,
        unless `by_owner`: the caller knows the owner asks (Slack says who clicked)
        and the backend can honour that (the embedded store can; Onetime Secret
        decides for itself)."""

    async def recent(self, owner: str) -> list[Receipt]: ...

    async def peek(self, secret_key: str) -> bool | None:
        """Without using it up: None if there is no such secret (or the backend cannot
        tell), else whether it needs a passphrase."""

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` on state changes (only when `capabilities.pushes_events`)."""

    def background(self) -> list[Background]:
        """Loops the backend needs run beside the server (maintenance, start-up checks)."""

    async def status(self) -> None:
        """Return if the backend is reachable; raise BackendUnavailable if not."""

    def secret_url(self, secret_key: str) -> str: ...

    def receipt_url(self, metadata_key: str) -> str: ...

    async def close(self) -> None: ...
