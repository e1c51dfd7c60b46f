"""After a secret shared from Slack changes: every message that carries its link or
a button is rewritten, the sender's Home tab is republished, the sender is told.

Outcomes arrive from three places, and each is acted on once (the share record
is settled with compare-and-set; only the caller who settled it goes on):
- the embedded store's events (`on_event`), the moment a secret is received,
  burned, expires or refuses a wrong passphrase;
- the receipt watcher (`on_receipt`), which polls Onetime Secret;
- the Slack side itself: a reveal in Slack, a Burn button, someone pressing a
  Reveal button that is not theirs.

What is rewritten:
- the recipient's DM (`chat.update`): what happened, no link, no Reveal button;
- the sender's answer: through its response_url while Slack still takes posts
  there (30 minutes, 5 posts), by `chat.update` when it went by DM, or in the
  modal that showed it; it keeps Burn now only while a secret in it is live;
- the sender's Home tab (`views.publish`), always.

Each is built in its reader's language (`speaking_to`): the DM in the recipient's,
the answer, the Home tab and the notices in the sender's, whoever acted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.backends.base import SecretEvent
from bot.serverkey import ServerKey
from bot.slack import blocks, home, modals
from bot.slack.delivery import Messenger, SlackFailure
from bot.slack.lang import speaking_to
from bot.slack.notify import Notifier, Outcome, sender_of, team_of
from bot.slack.shares import Share, ShareBook, quietly
from bot.slack.sharing import burn_value
from bot.slack.workspaces import NotInstalled, Workspaces

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0  # seconds for follow-ups in flight to finish when the app stops
RESPONSE_URL_SECONDS = 30 * 60 - 60  # Slack takes posts for 30 minutes; keep a margin
RESPONSE_URL_POSTS = 5  # ...and at most 5; the answer itself was the first
_POSTS_PREFIX = "slack:ru:"


class Followup:
    def __init__(
        self,
        book: ShareBook,
        messenger: Messenger,
        notifier: Notifier,
        key: ServerKey,
        workspaces: Workspaces,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.messenger = messenger
        self.notifier = notifier
        self.key = key
        self.workspaces = workspaces
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    # -- the Home tab -------------------------------------------------------------

    async def publish_home(self, team: str | None, user: str) -> None:
        shares = await quietly("read a sender's shares", self.book.of_user(team, user))
        # Often published for someone other than whoever acted (a recipient's reveal).
        async with speaking_to(self.messenger.languages, user):
            view = home.home_view(self.key, shares or [], self._clock())
        try:
            await self.messenger.publish_home(user, view)
        except SlackFailure:
            pass  # logged by the messenger; the next change or visit publishes again

    async def listing(self, team: str | None, user: str) -> blocks.Message:
        shares = await quietly("read a sender's shares", self.book.of_user(team, user))
        async with speaking_to(self.messenger.languages, user):
            return home.list_message(self.key, shares or [], self._clock())

    # -- outcomes -----------------------------------------------------------------

    async def settle(
        self, record_id: str, state: str, via: str | None, *,
        answer: bool = True, notify: bool = True,
    ) -> Share | None:
        """Record an outcome and follow it everywhere; None if it was already known
        (or the app keeps no record of that secret)."""
        now = int(self._clock())
        share: Share | None = await quietly(
            "settle a Slack share", self.book.settle(record_id, state, via, now)
        )
        if share is None:
            return None
        await self._rewrite_dm(share)
        if answer:
            await self._rewrite_answer(share)
        await self.publish_home(share.team, share.sender)
        if notify:
            await self.notifier.tell(
                share.sender, Outcome(state, via),
                (share.recipient,) if share.recipient else (), share.created, share.label,
                team=share.team,
            )
        return share

    async def refused(self, record_id: str, why: str, by: str | None = None) -> None:
        """Someone was refused (a wrong passphrase, someone else's Reveal): count it, and
        tell the sender, at most once a minute per secret."""
        share = await quietly(
            "count a refused attempt", self.book.count_refused(record_id)
        )
        if share is None:
            return
        if not await quietly("throttle a notice", self.book.notice_due(record_id)):
            return
        async with speaking_to(self.messenger.languages, share.sender):
            message = blocks.refused_message(
                why=why, by=by, label=share.label,
                recipients=(share.recipient,) if share.recipient else (),
                created=share.created, refused=share.refused,
            )
        try:
            await self.messenger.dm(share.sender, message)
        except SlackFailure:
            log.warning("could not tell a sender about a refused attempt")
        await self.publish_home(share.team, share.sender)

    async def on_event(self, event: SecretEvent) -> None:
        """The embedded store's events. They fire inside a reveal or a burn: a slow
        Slack must not slow that down, so the work runs on its own task."""
        sender = sender_of(event.custid)
        if sender is None:
            return
        team = team_of(event.custid)
        if event.kind == "refused":
            # A wrong passphrase in Slack is reported by the Slack side, which knows more.
            if event.ref and event.via != "slack":
                record_id = self.book.id_for_ref(event.ref)
                self._spawn(team, self.refused(record_id, event.via))
            return
        self._spawn(team, self._after_event(event, sender, team))

    async def _after_event(self, event: SecretEvent, sender: str, team: str | None) -> None:
        # A burn from Slack is the sender's own click: the click rewrites their
        # message itself, and they need no DM about what they just did.
        own = event.via == "burn"
        if event.ref:
            record_id = self.book.id_for_ref(event.ref)
            if await self.settle(record_id, event.kind, event.via, answer=not own,
                                 notify=not own):
                return
            if await quietly("read a Slack share", self.book.get(record_id)):
                return  # already settled by the Slack side: nothing more to say
        if not own:
            recipients = tuple(
                r.removeprefix("slack:") for r in event.recipient if r.startswith("slack:")
            )
            await self.notifier.tell(sender, Outcome(event.kind, event.via), recipients,
                                     event.created, team=team)

    async def on_receipt(self, record: dict[str, Any], outcome: Outcome) -> None:
        """The receipt watcher found an outcome (Onetime Secret)."""
        team = record.get("t")
        await self._for_workspace(team if isinstance(team, str) else None,
                                  self._after_receipt(record, outcome))

    async def _after_receipt(self, record: dict[str, Any], outcome: Outcome) -> None:
        record_id = self.book.id_for(str(record["m"]))
        if await self.settle(record_id, outcome.kind, outcome.via):
            return
        if await quietly("read a Slack share", self.book.get(record_id)):
            return
        team = record.get("t")
        await self.notifier.tell(
            str(record["s"]), outcome, tuple(record["r"]), int(record["c"]),
            team=team if isinstance(team, str) else None,
        )

    async def finish_pending(self) -> None:
        """Background work that waits for the app to stop, then lets the follow-ups in
        flight finish (a little while) and cancels the rest, each in its own task:
        left to the garbage collector, a notice half-sent dies outside its context."""
        try:
            await asyncio.Event().wait()
        finally:
            pending = set(self._pending)
            if pending:
                _done, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                if late:
                    log.warning("stopped %d follow-up(s) still in flight", len(late))

    def _spawn(self, team: str | None, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._for_workspace(team, work))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _for_workspace(self, team: str | None, work: Coroutine[Any, Any, None]) -> None:
        """Work that did not start with a Slack request: act for the secret's workspace."""
        try:
            async with self.workspaces.acting_for(team):
                await work
                return
        except NotInstalled as exc:
            log.warning("could not follow up a secret: %s", exc)
        work.close()  # never started: the workspace is gone

    # -- the messages -------------------------------------------------------------

    async def _rewrite_dm(self, share: Share) -> None:
        if share.dm is None:
            return
        # The DM is the recipient's: in their language, whoever made the secret change.
        async with speaking_to(self.messenger.languages, share.recipient or share.sender):
            message = blocks.recipient_outcome_message(
                sender=share.sender, label=share.label, state=share.state, via=share.via,
                at=share.settled_at or int(self._clock()),
            )
        try:
            await self.messenger.update(share.dm[0], share.dm[1], message)
        except SlackFailure:
            log.warning("could not rewrite a recipient's DM (%s)", share.state)

    async def rewrite_answer(self, share: Share) -> None:
        await self._rewrite_answer(share)

    async def _rewrite_answer(self, share: Share) -> None:
        where = share.answer
        if not where:
            return  # told ephemerally: Slack lets nobody change that message
        group = await quietly("read a Slack share", self.book.group_of(share)) or []
        now = self._clock()
        live = [s for s in group if s.is_live(now)]
        value = burn_value(
            self.key, share.sender, [s.metadata_key for s in live],
            [s.recipient for s in live if s.recipient],
        ) if live else None
        async with speaking_to(self.messenger.languages, share.sender):
            message = home.answer_message(group or [share], now, value)
            in_modal = modals.answer_modal(message) if "v" in where else None
        try:
            if "u" in where:
                if await self._response_url_open(str(where["u"]), float(where.get("at", 0))):
                    await self.messenger.respond(str(where["u"]), message, replace_original=True)
            elif "ts" in where:
                await self.messenger.update(str(where["c"]), str(where["ts"]), message)
            elif in_modal is not None:
                await self.messenger.update_view(str(where["v"]), in_modal)
        except SlackFailure:
            log.warning("could not rewrite a sender's answer (%s)", share.state)

    async def _response_url_open(self, url: str, posted_at: float) -> bool:
        if self._clock() - posted_at > RESPONSE_URL_SECONDS:
            return False
        name = self.key.hash_id(_POSTS_PREFIX, url)
        used = await quietly(
            "count response_url posts",
            self.book.storage.incr(name, RESPONSE_URL_SECONDS + 60),
        )
        # The answer itself was the first post.
        return used is not None and used + 1 <= RESPONSE_URL_POSTS
