"""The one protocol the Slack and web layers use, whichever backend serves.

Backends know nothing of Slack or of HTTP routing. Every method raises only
`bot.errors.BackendError` subclasses on purpose.
"""

from __future__ import annotations

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

    @property
    def expires_at(self) -> int:
        """When the secret expires (Unix seconds)."""
        return self.created + self.ttl


@dataclass(frozen=True)
class Revealed:
    secret_key: str
    value: str = field(repr=False)


class SecretBackend(Protocol):
    """What the app needs from a place that keeps one-time secrets."""

    name: str

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

    async def burn(self, metadata_key: str, passphrase: str | None = None) -> Receipt: ...

    async def recent(self, owner: str) -> list[Receipt]: ...

    async def status(self) -> None:
        """Return if the backend is reachable; raise BackendUnavailable if not."""

    def secret_url(self, secret_key: str) -> str: ...

    def receipt_url(self, metadata_key: str) -> str: ...

    async def close(self) -> None: ...
