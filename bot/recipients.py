"""Telling a `recipient` of the v1 API about their link: by Slack DM, else by email.

The v1 API's `recipient` asks the server to deliver the link (never the secret).
The web API depends only on `RecipientDelivery`; the composition root
(`bot.web.app.create_app`) builds the ways this install has, in order: Slack
first (`bot.slack.recipients`, only when Slack is configured), then email
(`bot.mailer`, only when SMTP_URL is set).

Delivery is two steps so that nothing is stored for an address nobody can reach:
`find` says whether (and how) an address can be reached before the secret
exists; `Recipient.send` then delivers the link. Either raises `DeliveryFailed`
with a reason written for the API caller, which never quotes the address, the
link or anything the caller did not send.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.i18n import DEFAULT

# The sender of a LinkNotice from the API's anonymous caller: a marker, never shown
# as it is (each way of delivery says "someone using the API" in its reader's words).
ANONYMOUS_SENDER = "someone using the API"
# One address, plainly: no display names, no lists, no spaces.
_ADDRESS = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_OBSCURE = re.compile(
    r"\b(([A-Z0-9]{1,2})[A-Z0-9._%+-]*)@([A-Z0-9])[A-Z0-9.-]*(\.[A-Z]{2,24})\b", re.IGNORECASE
)


class DeliveryFailed(Exception):
    """The link could not be delivered. `reason` is a clause for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkNotice:
    """What a recipient is told. Holds the link (theirs to use), never the secret."""

    sender: str  # the API user's custid, or ANONYMOUS_SENDER
    link: str = field(repr=False)
    secret_key: str = field(repr=False)  # in the link anyway; Slack's Reveal button needs it
    expires_at: int
    ttl: int
    passphrase_required: bool
    # The language an email is written in (the API caller's; see bot/mailer.py). A
    # Slack DM ignores it: it speaks the member's own Slack language.
    language: str = DEFAULT


class Recipient(Protocol):
    """An address that one way of delivery can reach."""

    how: str  # "slack" or "email", for the caller's log and tests

    async def send(self, notice: LinkNotice) -> None:
        """Deliver the link; raise DeliveryFailed if it did not go out."""


class RecipientDelivery(Protocol):
    """One way (or an ordered chain of ways) of reaching people."""

    @property
    def ways(self) -> tuple[str, ...]:
        """What this install can deliver by, e.g. ("Slack", "email"); empty: nothing."""

    async def find(self, address: str) -> Recipient | None:
        """How to reach `address`, or None if this way cannot; DeliveryFailed if it
        could not tell (the service is down)."""


class Deliveries:
    """The ways this install has, tried in order: the first that can reach an address wins."""

    def __init__(self, ways: Sequence[RecipientDelivery]) -> None:
        self._ways = tuple(ways)

    @property
    def ways(self) -> tuple[str, ...]:
        return tuple(name for way in self._ways for name in way.ways)

    async def find(self, address: str) -> Recipient | None:
        for way in self._ways:
            found = await way.find(address)
            if found is not None:
                return found
        return None


def first_address(values: Sequence[str]) -> str | None:
    """The address to deliver to: the first one given (others are ignored, as at OTS).

    A value may itself hold several, separated by commas, semicolons or spaces.
    """
    for value in values:
        for part in re.split(r"[\s,;]+", value):
            if part:
                return part
    return None


def valid_address(address: str) -> bool:
    return len(address) <= 254 and _ADDRESS.fullmatch(address) is not None


def obscure(address: str) -> str:
    """As onetimesecret.com shows recipients: `foo@example.com` → `fo*****@e*****.com`."""
    obscured = _OBSCURE.sub(r"\2*****@\3*****\4", address)
    if obscured == address:
        # No top-level domain to keep (e.g. user@localhost): hide all but the first letters.
        local, _, domain = address.partition("@")
        obscured = f"{local[:2]}*****@{domain[:1]}*****"
    return obscured
