"""Sharing from Slack: one secret per recipient, their DMs, and the sender's answer.

Every path ends with the sender told what happened. A recipient who cannot be
messaged (a bot, a deactivated account, a Slack failure) gets nothing stored
for them: the DM channel is opened before the secret is made, and a secret
whose DM could not be posted is burned at once, so no live secret exists that
nobody was told about.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bot.backends.base import Receipt, SecretBackend
from bot.backends.embedded import generate_password
from bot.errors import BackendError
from bot.serverkey import ServerKey
from bot.slack import blocks, modals, request_blocks, trust
from bot.slack.delivery import Messenger, Origin, SlackFailure, Told
from bot.slack.lang import _, speaking_to
from bot.slack.notify import ReceiptLedger
from bot.slack.shares import Share, ShareBook, quietly

log = logging.getLogger(__name__)

RECIPIENT_PREFIX = "slack:"
OUTSIDE = "outside"  # the sender of an answer typed on a request link's page


def slack_owner(team_id: str | None, user_id: str | None) -> str:
    return f"slack:{team_id or '-'}:{user_id or '-'}"


@dataclass(frozen=True)
class ShareRequest:
    sender: str
    team_id: str | None
    secret: str | None = field(repr=False)  # None: generate a password
    passphrase: str | None = field(default=None, repr=False)
    ttl: int | None = None
    recipients: tuple[str, ...] = ()
    origin: Origin = Origin()
    about: str | None = field(default=None, repr=False)  # the "what for" of a request
    label: str | None = None  # what it is for: shown in Slack, never sent to the backend
    # The modal to answer in (the global shortcut has no conversation to answer in).
    window: str | None = None


@dataclass(frozen=True)
class ShareResult:
    shared: bool
    summary: str  # one line for the sender, without the secret
    generated: str | None = field(default=None, repr=False)
    said: str | None = None  # the secret store's own words: plain text only
    in_window: bool = False  # the answer (and a generated password) is in the modal


def burn_value(
    key: ServerKey, sender: str, metadata_keys: list[str], recipients: list[str]
) -> str:
    """The Burn button's value: what to burn and who may press it (checked on click),
    signed so that nobody can make a Burn button for keys of their own choosing."""
    return trust.pack(key, trust.BURN, {"m": metadata_keys, "by": sender, "to": recipients})


def reveal_value(
    key: ServerKey, receipt: Receipt, sender: str, recipient: str, record_id: str
) -> str:
    """The Reveal button's value: the key, who alone may use it (checked on click), and
    the app's record of the secret (to follow its outcome)."""
    return trust.pack(key, trust.REVEAL, {
        "k": receipt.secret_key, "to": recipient, "from": sender,
        "p": int(receipt.passphrase_required), "i": record_id,
    })


def answer_place(told: Told, now: float) -> dict[str, object]:
    """Where the sender's answer is, for rewriting it later ({}: it cannot be)."""
    if told.how == "response_url" and told.response_url:
        return {"u": told.response_url, "at": int(now)}
    if told.how == "dm" and told.channel and told.ts:
        return {"c": told.channel, "ts": told.ts}
    if told.how == "window" and told.view_id:
        return {"v": told.view_id}
    return {}


class Sharer:
    def __init__(
        self,
        backend: SecretBackend,
        messenger: Messenger,
        key: ServerKey,
        ledger: ReceiptLedger | None = None,
        book: ShareBook | None = None,
        *,
        default_ttl: int | None = None,
        clock: Callable[[], float] = time.time,
        on_shared: Callable[[str | None, str], Awaitable[None]] | None = None,
    ) -> None:
        self.backend = backend
        self.key = key
        # Sent on every share: a backend's own default (Onetime Secret: 7 days)
        # is not the one the app's settings promise.
        self.default_ttl = default_ttl
        self.messenger = messenger
        self.ledger = ledger
        self.book = book
        self._clock = clock
        # Called with (team, sender) after something was kept: the Home tab follows.
        self._on_shared = on_shared
        # The embedded store keeps the recipient's Slack id in the receipt, so its
        # events can name them. Onetime Secret would mail a `recipient`: never sent there.
        self._recipient_in_receipt = backend.capabilities.holds_slack_recipients

    async def share(self, request: ShareRequest) -> ShareResult:
        value = request.secret if request.secret is not None else generate_password()
        # The sender's answer (and the summary) in the sender's language; each
        # recipient's DM is built in theirs (`_share_with`).
        async with speaking_to(self.messenger.languages, request.sender):
            if request.recipients:
                result = await self._share_with_people(request, value)
            else:
                result = await self._share_as_link(request, value)
        if result.shared and self._on_shared is not None:
            await self._on_shared(request.team_id, request.sender)
        if request.secret is None and result.shared:
            return replace(result, generated=value)
        return result

    async def _create(self, request: ShareRequest, value: str, recipient: str | None) -> Receipt:
        receipt = await self.backend.share(
            value,
            ttl=request.ttl or self.default_ttl,
            passphrase=request.passphrase,
            recipient=(RECIPIENT_PREFIX + recipient,)
            if recipient and self._recipient_in_receipt else (),
            owner=slack_owner(request.team_id, request.sender),
        )
        if self.ledger is not None:
            try:
                await self.ledger.track(
                    receipt, request.sender, (recipient,) if recipient else (),
                    request.team_id,
                )
            except BackendError as exc:
                # The secret exists and will be delivered; only the sender's
                # notification about it is lost.
                log.warning("could not watch a receipt: %s", type(exc).__name__)
        return receipt

    async def _share_as_link(self, request: ShareRequest, value: str) -> ShareResult:
        try:
            receipt = await self._create(request, value, None)
        except BackendError as exc:
            return await self._not_saved(request, exc)
        assert receipt.secret_key is not None
        share = await self._keep(request, receipt, None, None)
        message = blocks.secret_link_message(
            link=self.backend.secret_url(receipt.secret_key),
            expires_at=receipt.expires_at,
            passphrase=receipt.passphrase_required,
            burn_value=burn_value(self.key, request.sender, [receipt.metadata_key], []),
            label=request.label,
        )
        told = await self._tell_sender(request, message, generated=value)
        if told is None:
            # Nobody has the link: do not leave a live secret behind.
            await self._burn_quietly(receipt.metadata_key)
            return ShareResult(False, _("The link could not be delivered, so it was burned."))
        await self._place_answer([share] if share else [], told)
        return ShareResult(
            True, _("Its one-time link expires in {duration}.",
                    duration=blocks.human_duration(receipt.ttl)),
            in_window=told.how == "window",
        )

    async def _share_with_people(self, request: ShareRequest, value: str) -> ShareResult:
        delivered: list[str] = []
        keys: list[str] = []
        failed: list[tuple[str, str]] = []
        said: list[str] = []
        first: Receipt | None = None
        kept: list[Share] = []
        for recipient in request.recipients:
            try:
                receipt, share = await self._share_with(request, value, recipient)
            except SlackFailure as exc:
                failed.append((recipient, blocks.not_delivered_to(recipient, exc.error)))
                continue
            except BackendError as exc:
                failed.append((recipient, blocks.not_saved_for(
                    recipient, exc, generated=request.secret is None)))
                if exc.service_text and exc.service_text not in said:
                    said.append(exc.service_text)
                continue
            first = first or receipt
            delivered.append(recipient)
            keys.append(receipt.metadata_key)
            if share is not None:
                kept.append(share)
        ttl = first.ttl if first else 0
        message = blocks.sent_to_recipients_message(
            delivered=delivered,
            failed=failed,
            expires_at=first.expires_at if first else 0,
            passphrase=bool(request.passphrase),
            burn_value=burn_value(self.key, request.sender, keys, delivered) if keys else None,
            said=said,
            label=request.label,
        )
        told = await self._tell_sender(request, message, generated=value if delivered else None)
        if told is not None:
            await self._place_answer(kept, told)
        if not delivered:
            return ShareResult(False, _("Nothing was shared: see the message from the app."),
                               in_window=told is not None and told.how == "window")
        return ShareResult(
            True,
            _("Sent to {people}; expires in {duration}.",
              people=blocks.people(delivered), duration=blocks.human_duration(ttl)),
            in_window=told is not None and told.how == "window",
        )

    async def _share_with(
        self, request: ShareRequest, value: str, recipient: str
    ) -> tuple[Receipt, Share | None]:
        channel = await self.messenger.open_dm(recipient)
        receipt = await self._create(request, value, recipient)
        assert receipt.secret_key is not None
        record_id = self.book.id_for(receipt.metadata_key) if self.book else ""
        async with speaking_to(self.messenger.languages, recipient):
            message = blocks.recipient_message(
                sender=request.sender,
                link=self.backend.secret_url(receipt.secret_key),
                expires_at=receipt.expires_at,
                passphrase=receipt.passphrase_required,
                reveal_value=reveal_value(self.key, receipt, request.sender, recipient,
                                          record_id),
                about=request.about,
                label=request.label,
            )
        try:
            ts = await self.messenger.post(channel, message)
        except SlackFailure:
            await self._burn_quietly(receipt.metadata_key)
            raise
        return receipt, await self._keep(request, receipt, recipient, (channel, ts))

    async def deliver_from_outside(
        self, *, requester: str, value: str, passphrase: str | None, ttl: int | None,
        about: str,
    ) -> Receipt:
        """A secret typed on a request link's page, stored like any other and delivered to
        the requester's DM. Nobody in Slack sent it, so nobody gets receipts.

        Raises BackendError (nothing stored) or SlackFailure (what was stored is burned).
        """
        channel = await self.messenger.open_dm(requester)
        receipt = await self.backend.share(
            value, ttl=ttl, passphrase=passphrase,
            recipient=(RECIPIENT_PREFIX + requester,) if self._recipient_in_receipt else (),
        )
        assert receipt.secret_key is not None
        async with speaking_to(self.messenger.languages, requester):
            message = request_blocks.outside_answer_message(
                what_for=about,
                link=self.backend.secret_url(receipt.secret_key),
                expires_at=receipt.expires_at,
                passphrase=receipt.passphrase_required,
                reveal_value=reveal_value(self.key, receipt, OUTSIDE, requester, ""),
            )
        try:
            await self.messenger.post(channel, message)
        except SlackFailure:
            await self._burn_quietly(receipt.metadata_key)
            raise
        return receipt

    async def _keep(
        self, request: ShareRequest, receipt: Receipt, recipient: str | None,
        dm: tuple[str, str] | None,
    ) -> Share | None:
        """Note the share for the sender's Home tab and for rewriting its messages."""
        if self.book is None:
            return None
        share = Share(
            id=self.book.id_for(receipt.metadata_key), metadata_key=receipt.metadata_key,
            sender=request.sender, team=request.team_id, recipient=recipient,
            # An answer to a request is known by the request's "what for".
            label=request.label or request.about,
            created=receipt.created, expires_at=receipt.expires_at,
            passphrase=receipt.passphrase_required, dm=dm if dm and dm[1] else None,
        )
        book = self.book
        if await quietly("keep a Slack share", book.add(share)) is None:
            return None
        return share

    async def _place_answer(self, shares: list[Share], told: Told) -> None:
        """Tell each share where its answer is, and which shares it answers with."""
        if self.book is None or not shares:
            return
        place = answer_place(told, self._clock())
        group = tuple(s.id for s in shares)
        book = self.book

        def placed(old: Share) -> Share:
            return replace(old, answer=place, group=group)

        for share in shares:
            record_id = share.id
            await quietly("note where an answer is", book.change(record_id, placed))

    async def _not_saved(self, request: ShareRequest, exc: BackendError) -> ShareResult:
        log.warning("share from Slack failed: %s", type(exc).__name__)
        problem = blocks.store_problem(exc)
        text = (_("Your secret was not saved. {problem}", problem=problem)
                if request.secret is not None
                else _("No password was made: it could not be stored. {problem}",
                       problem=problem))
        told = await self._tell_sender(
            request, blocks.error_message(text, said=exc.service_text)
        )
        return ShareResult(False, text, said=exc.service_text,
                           in_window=told is not None and told.how == "window")

    async def _tell_sender(
        self, request: ShareRequest, message: blocks.Message, generated: str | None = None
    ) -> Told | None:
        """The sender's answer: in the form's window when there is one (a generated
        password with it), else privately where they asked. None if it reached nobody."""
        if request.window:
            view = modals.answer_modal(
                message, generated=generated if request.secret is None else None
            )
            try:
                await self.messenger.update_view(request.window, view)
                return Told("window", view_id=request.window)
            except SlackFailure:
                if not request.recipients or request.secret is None:
                    # The link or the password would have to go into a lasting DM:
                    # say what happened instead, and let the caller burn it.
                    await self._closed_too_soon(request)
                    return None
                log.warning("the share form was gone; answering by DM")
        try:
            return await self.messenger.tell(request.sender, message, request.origin)
        except SlackFailure:
            log.warning("could not tell the sender how their share went")
            return None

    async def _closed_too_soon(self, request: ShareRequest) -> None:
        text = _("The form was closed before your secret could be shown there, so nothing "
                 "was kept. Share it again and leave the form open until it answers.")
        try:
            await self.messenger.dm(request.sender, blocks.error_message(text))
        except SlackFailure:
            log.warning("could not tell the sender that their form closed too soon")

    async def _burn_quietly(self, metadata_key: str) -> None:
        if self.ledger is not None:
            await self.ledger.forget(metadata_key)
        if self.book is not None:
            record_id, now = self.book.id_for(metadata_key), int(self._clock())
            await quietly(
                "settle a Slack share", self.book.settle(record_id, "burned", "burn", now)
            )
        try:
            await self.backend.burn(metadata_key, by_owner=True)
        except BackendError as exc:
            log.warning("could not burn an undelivered secret: %s", type(exc).__name__)
