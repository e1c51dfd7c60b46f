"""Asking for a secret in Slack: ask, answer once, decline, cancel, expire.

`/ots request @bob [what for]` (or the form behind "Request a secret") DMs each
person asked an **Answer** and a **Decline** button; the requester gets a
private confirmation with **Cancel request**. With nobody named, the
requester gets a one-time request link instead, for someone outside Slack
(its page is bot/web/request_page.py).

Who acts first wins, and only once: the Answer form's submission, Cancel,
the last Decline, the link's page and the expiry sweep each `claim` (take) the
request record, and only the one that got it goes on. A secret that could not
be stored or delivered puts the request back, so it can be answered again.

Every button value and modal metadata is signed (bot/slack/trust.py) and names
the one person it is for; the clicker is checked against it, and against the
request's own list of people.

Each message is in its reader's language (bot/slack/lang.py): what answers a
click is in the clicker's (the middleware set it), and a DM or notice for
someone else is built inside `speaking_to` that person: the request DM to each
person asked, the requester's notices, every asked DM rewritten when the
request ends (also from the expiry sweep and a request link answered on the
web, which run outside any Slack request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.errors import BackendError
from bot.secret_requests import (
    ANSWERED,
    CANCELLED,
    DECLINED,
    EXPIRED,
    MAX_PEOPLE,
    MAX_WHAT_FOR,
    Claimed,
    Outcome,
    RequestBook,
    SecretRequest,
)
from bot.slack import blocks, ids, modals, request_blocks, trust
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import SlackDeps, origin_from_metadata
from bot.slack.lang import N_, _, speaking_to
from bot.slack.sharing import OUTSIDE, ShareRequest
from bot.slack.views import _values, form_failed, read_share_form, show_generated
from bot.slack.workspaces import NotInstalled

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 1.0  # a store read before views.open: the trigger is good for 3 s
SETTLE_SECONDS = 1.0  # how long a closed request's outcome may take to be recorded
SWEEP_MAX_SECONDS = 30
GONE = "gone"  # closed, but how is not known (its outcome could not be recorded)
STORE_DOWN = N_(
    "The secret store is unavailable right now. Nothing was changed: try again in a minute."
)
ANSWERED_OUTSIDE = "answered-outside"  # answered on its link's page, by someone outside Slack

# What a person is told when the request is no longer open, by how it ended
# (to someone who was asked, and to its requester).
_GONE = {
    ANSWERED: N_("This request was already answered by {by}."),
    ANSWERED_OUTSIDE: N_("This request was already answered by someone outside Slack."),
    DECLINED: N_("This request was declined by everyone asked."),
    CANCELLED: N_("{requester} cancelled this request."),
    EXPIRED: N_("This request expired."),
    GONE: N_("This request is no longer open."),
}
_GONE_FOR_REQUESTER = {
    ANSWERED: N_("Your request was already answered by {by}."),
    ANSWERED_OUTSIDE: N_("Your request was already answered by someone outside Slack."),
    DECLINED: N_("Your request was declined by everyone asked."),
    CANCELLED: N_("You already cancelled this request."),
    EXPIRED: N_("Your request expired."),
    GONE: N_("Your request is no longer open."),
}


@dataclass(frozen=True)
class Problem:
    """Why a request cannot be made, written for the requester; `what_for`: the
    "what for" is at fault (not whom it asks)."""

    text: str
    what_for: bool = False


def problem_with(requester: str, people: Sequence[str], what_for: str) -> Problem | None:
    """Why a request cannot be made, in the requester's language."""
    if len(people) > MAX_PEOPLE:
        return Problem(_.plural("Ask at most {count} person in one request.",
                                "Ask at most {count} people in one request.",
                                MAX_PEOPLE, count=MAX_PEOPLE))
    if not all(trust.is_id("user", p) for p in people):
        return Problem(_("Pick the people to ask from the list."))
    if requester in people:
        return Problem(_("Ask someone else: you cannot answer your own request."))
    if len(what_for) > MAX_WHAT_FOR:
        length = blocks.number(len(what_for))
        return Problem(_.plural(
            "*What for* is {length} character; keep it under {limit}. It is shown to the "
            "people you ask: never put a secret there.",
            "*What for* is {length} characters; keep it under {limit}. It is shown to the "
            "people you ask: never put a secret there.",
            len(what_for), length=length, limit=MAX_WHAT_FOR,
        ), what_for=True)
    return None


class Requests:
    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps
        self.book = RequestBook(deps.store)
        self.messenger = deps.messenger
        self.key = deps.store.key
        self.workspaces = deps.workspaces

    def _acting_for(self, request: SecretRequest) -> contextlib.AbstractAsyncContextManager[None]:
        """Outside a Slack request: the requester's workspace (raises NotInstalled)."""
        if self.workspaces is None:
            return contextlib.nullcontext()
        return self.workspaces.acting_for(request.team, request.enterprise)

    @property
    def ttl(self) -> int:
        return self.deps.settings.request_ttl

    def link(self, link_key: str) -> str:
        return f"{self.deps.settings.public_url}/request/{link_key}"

    async def _tell(self, user: str, message: blocks.Message, origin: Origin) -> bool:
        try:
            await self.messenger.tell(user, message, origin)
        except SlackFailure:
            log.warning("could not tell a user about a request")
            return False
        return True

    async def _rewrite(self, channel: str, ts: str, message: blocks.Message) -> None:
        try:
            await self.messenger.update(channel, ts, message)
        except SlackFailure:
            pass  # the buttons stay; pressing them says the request is closed

    # -- asking -------------------------------------------------------------------

    async def ask(
        self, requester: str, team: str | None, people: tuple[str, ...], what_for: str,
        origin: Origin, enterprise: str | None = None,
    ) -> None:
        problem = problem_with(requester, people, what_for)
        if problem:
            await self._tell(requester, blocks.error_message(problem.text), origin)
            return
        try:
            rid, link_key, request = await self.book.open(
                requester, team, what_for, people, self.ttl, enterprise
            )
        except BackendError as exc:
            log.warning("could not open a request: %s", type(exc).__name__)
            text = _("Your request was not made. {problem}",
                     problem=blocks.store_problem(exc))
            await self._tell(requester, blocks.error_message(text), origin)
            return
        cancel = trust.pack(self.key, trust.CANCEL, {"r": rid, "by": requester})
        if link_key is not None:
            await self._hand_out_link(rid, link_key, request, cancel, origin)
        else:
            await self._ask_people(rid, request, cancel, origin)

    async def _hand_out_link(
        self, rid: str, link_key: str, request: SecretRequest, cancel: str, origin: Origin
    ) -> None:
        try:
            await self.book.remember(rid, request, {})
        except BackendError as exc:
            log.warning("could not remember a request: %s", type(exc).__name__)
        message = request_blocks.link_message(
            link=self.link(link_key), what_for=request.what_for,
            expires_at=request.expires_at, ttl=self.ttl, cancel_value=cancel,
        )
        if not await self._tell(request.requester, message, origin):
            # Nobody has the link: do not leave a live request behind.
            await self._drop(rid, request)

    async def _ask_people(
        self, rid: str, request: SecretRequest, cancel: str, origin: Origin
    ) -> None:
        asked: list[str] = []
        failed: list[tuple[str, SlackFailure]] = []
        dms: dict[str, tuple[str, str]] = {}
        for person in request.people:
            # One value per person: it names who may press its buttons.
            mine = trust.pack(self.key, trust.ANSWER, {
                "r": rid, "to": person, "by": request.requester, "e": request.expires_at,
            })
            async with speaking_to(self.messenger.languages, person):
                message = request_blocks.ask_message(
                    requester=request.requester, what_for=request.what_for,
                    expires_at=request.expires_at, ttl=self.ttl, answer_value=mine,
                    decline_value=mine, others=[p for p in request.people if p != person],
                )
            try:
                dms[person] = await self.messenger.dm(person, message)
            except SlackFailure as exc:
                failed.append((person, exc))
                continue
            asked.append(person)
        try:
            if failed and asked:
                await self.book.narrow(rid, tuple(asked))
            await self.book.remember(rid, request, dms)
        except BackendError as exc:
            log.warning("could not remember a request: %s", type(exc).__name__)
        if not asked:
            await self._drop(rid, request)
        # The requester's own words: why someone could not be asked is said in them too.
        await self._tell(request.requester, request_blocks.confirmation_message(
            asked=asked, failed=[(person, exc.reason) for person, exc in failed],
            what_for=request.what_for, expires_at=request.expires_at, ttl=self.ttl,
            cancel_value=cancel,
        ), origin)

    async def _drop(self, rid: str, request: SecretRequest) -> None:
        """Close a request that never reached anybody (and will not "expire" later)."""
        try:
            if await self.book.claim(rid) is not None:
                await self.book.close(rid, request, Outcome(CANCELLED, request.requester))
        except BackendError:
            log.warning("could not drop a request nobody was told about")

    # -- a request that is no longer open ----------------------------------------

    async def _gone_text(
        self, rid: str, user: str, value: dict[str, Any], *, requester_asks: bool = False
    ) -> tuple[str, blocks.Message | None]:
        """What to tell `user` (in the current language: theirs) about a closed request,
        and what its DM becomes. `requester_asks`: `user` made the request."""
        requester = str(value.get("by") or "")
        expires_at = int(value.get("e") or 0)
        outcome = await self._outcome(rid, expires_at)
        if outcome is None:
            outcome = Outcome(EXPIRED if expires_at <= time.time() else GONE, requester)
        requester = outcome.requester or requester
        if outcome.state == ANSWERED and outcome.by == user:
            return _("You already answered this request."), request_blocks.answered_by_you(
                requester)
        state = outcome.state
        if state == ANSWERED and (outcome.by or OUTSIDE) == OUTSIDE:
            state = ANSWERED_OUTSIDE
        said = _GONE_FOR_REQUESTER if requester_asks else _GONE
        text = _(said.get(state, said[GONE]),
                 by=blocks.mention(outcome.by or ""), requester=blocks.mention(requester))
        replacement = {
            ANSWERED: request_blocks.answered_by_other(requester, outcome.by or ""),
            CANCELLED: request_blocks.cancelled(requester),
            EXPIRED: request_blocks.expired(requester),
            DECLINED: request_blocks.closed_message(f":no_entry_sign: {text}"),
            GONE: request_blocks.closed_message(f":no_entry_sign: {text}"),
        }.get(state)
        return text, replacement

    async def _outcome(self, rid: str, expires_at: int) -> Outcome | None:
        """How the request ended. One taken a moment ago by someone still at work (an
        answer being stored and delivered) has no outcome yet: wait a little for it,
        rather than call it "no longer open" (within Slack's 3 s before an ack)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                outcome = await self.book.outcome(rid)
            except BackendError:
                return None
            if outcome is not None or expires_at <= time.time() \
                    or time.monotonic() >= deadline:
                return outcome
            await asyncio.sleep(0.05)

    async def _say_gone(
        self, rid: str, user: str, value: dict[str, Any], body: dict[str, Any]
    ) -> None:
        text, replacement = await self._gone_text(rid, user, value)
        await self._tell(user, blocks.error_message(text), _origin(body))
        container = body.get("container") or {}
        channel, ts = container.get("channel_id"), container.get("message_ts")
        if replacement is not None and channel and ts:
            await self._rewrite(str(channel), str(ts), replacement)

    # -- Answer -------------------------------------------------------------------

    def _value_for(self, body: dict[str, Any], purpose: str) -> dict[str, Any]:
        try:
            raw = body["actions"][0]["value"]
        except (KeyError, IndexError, TypeError):
            return {}
        value = trust.unpack(self.key, purpose, raw) or {}
        return value if self.book.is_rid(value.get("r")) else {}

    async def _not_yours(self, user: str, value: dict[str, Any], body: dict[str, Any]) -> bool:
        to = value.get("to")
        if value and to == user:
            return False
        if to:
            text = _("This request was sent to {person}: only they can answer it.",
                     person=blocks.mention(str(to)))
        else:
            text = _("This request is not for you: only they can answer it.")
        message = blocks.error_message(text)
        await self._tell(user, message, _origin(body))
        return True

    async def open_answer_form(self, body: dict[str, Any]) -> None:
        value, user = self._value_for(body, trust.ANSWER), body["user"]["id"]
        if await self._not_yours(user, value, body):
            return
        rid = str(value["r"])
        try:
            request = await asyncio.wait_for(self.book.get(rid), LOOKUP_SECONDS)
        except (BackendError, TimeoutError):
            await self._tell(user, blocks.error_message(_(STORE_DOWN)), _origin(body))
            return
        if request is not None and user in request.declined:
            await self._tell(user, blocks.error_message(
                _("You declined this request; the others asked may still answer it.")
            ), _origin(body))
            return
        if request is None or user not in request.people:
            await self._say_gone(rid, user, value, body)
            return
        container = body.get("container") or {}
        meta = trust.pack(self.key, trust.ANSWER_MODAL, {
            "r": rid, "to": user, "by": request.requester, "e": request.expires_at,
            "c": container.get("channel_id"), "ts": container.get("message_ts"),
        })
        view = request_blocks.answer_modal(
            requester=request.requester, what_for=request.what_for, private_metadata=meta,
            default_ttl=self.deps.default_ttl, max_ttl=self.deps.max_ttl,
        )
        try:
            await self.messenger.open_view(body["trigger_id"], view)
        except SlackFailure as exc:
            await self._tell(user, blocks.error_message(form_failed(exc)), _origin(body))

    async def answer_from_form(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        meta = trust.unpack(self.key, trust.ANSWER_MODAL, view.get("private_metadata")) or {}
        if meta.get("to") != user or not self.book.is_rid(meta.get("r")):
            await ack(response_action="update", view=modals.notice_modal(
                _("Answer a request"),
                _("This form is damaged. Use *Answer* in the message again."),
            ))
            return
        errors, form = read_share_form(view, self.deps)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        rid = str(meta["r"])
        try:
            claimed = await self.book.claim(rid)
        except BackendError:
            await ack(response_action="errors", errors={ids.SECRET_BLOCK: _(STORE_DOWN)})
            return
        if claimed is None or user not in claimed.request.people:
            if claimed is not None:
                await self._put_back(claimed)
            text, replacement = await self._gone_text(rid, user, meta)
            await ack(response_action="update", view=modals.notice_modal(
                _("Nothing was sent"),
                ":information_source: " + _("{problem} Nothing was sent.", problem=text),
            ))
            if replacement is not None and meta.get("c") and meta.get("ts"):
                await self._rewrite(str(meta["c"]), str(meta["ts"]), replacement)
            return
        generate = form["secret"] is None
        if generate:
            await ack(response_action="update", view=modals.notice_modal(
                _("Answer a request"),
                ":hourglass_flowing_sand: " + _("Generating and sending a password…"),
            ))
        else:
            await ack()
        request = claimed.request
        result = await self.deps.sharer.share(ShareRequest(
            sender=user,
            team_id=body["user"].get("team_id") or (body.get("team") or {}).get("id"),
            secret=form["secret"], passphrase=form["passphrase"], ttl=form["ttl"],
            recipients=(request.requester,),
            origin=Origin(channel_id=meta.get("c")),
            about=request.what_for or None,
        ))
        if generate:
            await show_generated(self.deps, str(view["id"]), result)
        if not result.shared:
            # The sender was told why; the request stays open for another try.
            await self._put_back(claimed)
            return
        await self._finish(claimed, Outcome(ANSWERED, user))

    async def _put_back(self, claimed: Claimed) -> None:
        try:
            await self.book.put_back(claimed)
        except BackendError:
            log.warning("could not reopen a request after a failed answer")

    async def _finish(self, claimed: Claimed, outcome: Outcome) -> None:
        """Record how it ended and take the buttons off every DM that asked."""
        rid, request = claimed.rid, claimed.request
        try:
            await self.book.close(rid, request, outcome)
            _request, dms = await self.book.info(rid)
        except BackendError as exc:
            log.warning("could not record how a request ended: %s", type(exc).__name__)
            dms = {}
        for person, (channel, ts) in dms.items():
            async with speaking_to(self.messenger.languages, person):
                message = _closed_dm(request, outcome, person)
            await self._rewrite(channel, ts, message)

    # -- Decline and Cancel ------------------------------------------------------

    async def decline(self, body: dict[str, Any]) -> None:
        value, user = self._value_for(body, trust.ANSWER), body["user"]["id"]
        if await self._not_yours(user, value, body):
            return
        rid = str(value["r"])
        try:
            request, everyone = await self.book.decline(rid, user)
        except BackendError:
            await self._tell(user, blocks.error_message(_(STORE_DOWN)), _origin(body))
            return
        if request is None:
            await self._say_gone(rid, user, value, body)
            return
        container = body.get("container") or {}
        if container.get("channel_id") and container.get("message_ts"):
            await self._rewrite(str(container["channel_id"]), str(container["message_ts"]),
                                request_blocks.declined_by_you(request.requester))
        if everyone:
            claimed = Claimed(rid, request, b"")
            await self._finish(claimed, Outcome(DECLINED, user))
        async with speaking_to(self.messenger.languages, request.requester):
            if request.what_for:
                note = _("{person} declined your request: *{what_for}*.",
                         person=blocks.mention(user),
                         what_for=request_blocks.what_for_text(request.what_for))
            else:
                note = _("{person} declined your request.", person=blocks.mention(user))
            if everyone:
                note += " " + _("Everyone you asked declined, so the request is closed.")
            message = request_blocks.closed_message(":no_entry_sign: " + note)
        await self._tell(request.requester, message, Origin())

    async def cancel(self, body: dict[str, Any]) -> None:
        value, user = self._value_for(body, trust.CANCEL), body["user"]["id"]
        if not value or value.get("by") != user:
            message = blocks.error_message(
                _("Only the person who made this request can cancel it."))
            await self._tell(user, message, _origin(body))
            return
        rid = str(value["r"])
        try:
            claimed = await self.book.claim(rid)
        except BackendError:
            await self._tell(user, blocks.error_message(_(STORE_DOWN)), _origin(body))
            return
        if claimed is None:
            text, _unused = await self._gone_text(
                rid, user, {**value, "e": 0}, requester_asks=True)
            await self._replace(body, user, request_blocks.closed_message(
                ":information_source: " + text + " " + _("There was nothing to cancel.")))
            return
        await self._finish(claimed, Outcome(CANCELLED, user))
        request = claimed.request
        if request.by_link:
            after = _("Its link no longer works.")
        else:
            after = _("{people} can no longer answer it.",
                      people=blocks.people(request.people))
        text = ":no_entry_sign: " + _("You cancelled your request.") + " " + after
        await self._replace(body, user, request_blocks.closed_message(text))

    async def _replace(self, body: dict[str, Any], user: str, message: blocks.Message) -> None:
        response_url = body.get("response_url")
        if response_url:
            try:
                await self.messenger.respond(response_url, message, replace_original=True)
                return
            except SlackFailure:
                pass
        await self._tell(user, message, Origin())

    # -- the form behind "Request a secret" -------------------------------------

    async def switch_to_request_form(self, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        form = request_blocks.request_modal(private_metadata=view.get("private_metadata", ""))
        try:
            await self.messenger.update_view(str(view.get("id")), form)
        except SlackFailure:
            log.warning("could not turn the share form into a request form")

    async def ask_from_form(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        values = _values(view)
        people = tuple(values.get(ids.REQUEST_PEOPLE_BLOCK, {}).get("selected_users") or ())
        outside = bool(values.get(ids.REQUEST_OUTSIDE_BLOCK, {}).get("selected_options"))
        what_for = (values.get(ids.REQUEST_FOR_BLOCK, {}).get("value") or "").strip()
        errors: dict[str, str] = {}
        if people and outside:
            errors[ids.REQUEST_PEOPLE_BLOCK] = _("Pick people or tick the link, not both.")
        elif not people and not outside:
            errors[ids.REQUEST_PEOPLE_BLOCK] = _(
                "Pick who has the secret, or tick Someone outside Slack."
            )
        else:
            problem = problem_with(user, people, what_for)
            if problem:
                block = ids.REQUEST_FOR_BLOCK if problem.what_for else ids.REQUEST_PEOPLE_BLOCK
                errors[block] = problem.text.replace("*", "")
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        team = body["user"].get("team_id") or (body.get("team") or {}).get("id")
        origin = origin_from_metadata(self.key, view.get("private_metadata"))
        enterprise = (body.get("enterprise") or {}).get("id")
        await self.ask(user, team, people, what_for, origin, enterprise)

    # -- expiry: the buttons go when the request does -----------------------------

    async def sweep(self) -> int:
        """Close the requests whose time is up; returns how many it closed."""
        closed = 0
        for rid in await self.book.due():
            if await self.book.outcome(rid) is not None:
                continue
            await self.book.claim(rid)  # normally gone already (the store's expiry)
            request, dms = await self.book.info(rid)
            if request is None:
                continue
            await self.book.close(rid, request, Outcome(EXPIRED))
            try:
                async with self._acting_for(request):
                    await self._tell_expired(request, dms)
            except NotInstalled as exc:
                log.warning("could not tell about an expired request: %s", exc)
            closed += 1
        return closed

    async def _tell_expired(
        self, request: SecretRequest, dms: dict[str, tuple[str, str]]
    ) -> None:
        for person, (channel, ts) in dms.items():
            async with speaking_to(self.messenger.languages, person):
                message = request_blocks.expired(request.requester)
            await self._rewrite(channel, ts, message)
        async with speaking_to(self.messenger.languages, request.requester):
            if request.what_for:
                text = _("Your request for a secret expired: *{what_for}*.",
                         what_for=request_blocks.what_for_text(request.what_for))
            else:
                text = _("Your request for a secret expired.")
            how = _("Nobody used its link.") if request.by_link else _("Nobody answered it.")
            message = request_blocks.closed_message(f":hourglass: {text} {how}")
        await self._tell(request.requester, message, Origin())

    async def run_sweeps(self) -> None:
        interval = max(1, min(SWEEP_MAX_SECONDS, self.ttl // 10))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except BackendError as exc:
                log.warning("request expiry sweep failed: %s", type(exc).__name__)

    # -- the request link's page (bot/web/request_page.py) ----------------------

    async def for_page(self, link_key: str) -> tuple[SecretRequest, str | None] | None:
        """The open link request and its requester's display name (None when Slack
        cannot say); None if the request is not open."""
        request = await self.book.get(self.book.rid_for_link(link_key))
        if request is None or not request.by_link:
            return None
        try:
            async with self._acting_for(request):
                return request, await self.display_name(request.requester)
        except NotInstalled:
            return request, None

    async def display_name(self, user: str) -> str | None:
        try:
            info = (await self.messenger.user_info(user)).get("user") or {}
        except SlackFailure:
            return None
        profile = info.get("profile") or {}
        for name in (profile.get("display_name"), profile.get("real_name"),
                     info.get("real_name"), info.get("name")):
            if isinstance(name, str) and name.strip():
                return name.strip()
        return None

    async def answer_from_page(
        self, link_key: str, secret: str, passphrase: str | None
    ) -> str:
        """One POST's answer: "sent", "gone", "unavailable" (store) or "undeliverable"."""
        claimed = await self.book.claim(self.book.rid_for_link(link_key))
        if claimed is None:
            return "gone"
        if not claimed.request.by_link:
            await self._put_back(claimed)
            return "gone"
        try:
            async with self._acting_for(claimed.request), speaking_to(
                    self.messenger.languages, claimed.request.requester):
                # The requester's DM, in their language.
                await self.deps.sharer.deliver_from_outside(
                    requester=claimed.request.requester, value=secret, passphrase=passphrase,
                    ttl=self.deps.default_ttl, about=claimed.request.what_for,
                )
        except NotInstalled as exc:
            log.warning("request link answer not delivered: %s", exc)
            await self._put_back(claimed)
            return "undeliverable"
        except BackendError as exc:
            log.warning("request link answer not stored: %s", type(exc).__name__)
            await self._put_back(claimed)
            return "unavailable"
        except SlackFailure:
            await self._put_back(claimed)
            return "undeliverable"
        await self._finish(claimed, Outcome(ANSWERED, OUTSIDE))
        return "sent"


def _closed_dm(request: SecretRequest, outcome: Outcome, person: str) -> blocks.Message:
    if outcome.state == ANSWERED:
        if outcome.by == person:
            return request_blocks.answered_by_you(request.requester)
        return request_blocks.answered_by_other(request.requester, outcome.by or "")
    if outcome.state == CANCELLED:
        return request_blocks.cancelled(request.requester)
    if outcome.state == DECLINED:
        return request_blocks.declined_by_you(request.requester) if person in request.declined \
            else request_blocks.declined_by_everyone()
    return request_blocks.expired(request.requester)


def _origin(body: dict[str, Any]) -> Origin:
    return Origin(body.get("response_url"), (body.get("channel") or {}).get("id"))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    requests = Requests(deps)

    async def on_answer(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await requests.open_answer_form(body)

    async def on_decline(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await requests.decline(body)

    async def on_cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await requests.cancel(body)

    async def on_switch(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await requests.switch_to_request_form(body)

    async def on_answer_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await requests.answer_from_form(ack, body)

    async def on_request_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await requests.ask_from_form(ack, body)

    app.action(ids.ANSWER_ACTION)(on_answer)
    app.action(ids.DECLINE_ACTION)(on_decline)
    app.action(ids.CANCEL_REQUEST_ACTION)(on_cancel)
    app.action(ids.SWITCH_TO_REQUEST_ACTION)(on_switch)
    app.view(ids.ANSWER_VIEW)(on_answer_submitted)
    app.view(ids.REQUEST_VIEW)(on_request_submitted)
