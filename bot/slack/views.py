"""Modals: opening the share modal, and the share and reveal submissions.

Submissions are answered in the ack: bad input as `response_action: errors`
(the modal stays open, nothing is lost), a reveal as `response_action: update`
(the secret appears in the modal, never in a message). Sharing is slow work
(DMs, maybe scrypt, maybe onetimesecret.com), so it runs after the ack.

Every answer is in the language of the person who submitted or clicked (`_`,
bot/slack/lang.py): the errors in an ack too, which are built before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.backends.base import Revealed
from bot.errors import BackendError, OutcomeUnknown, SecretNotFound, WrongPassphrase
from bot.serverkey import ServerKey
from bot.slack import blocks, ids, modals, trust
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import SlackDeps, origin_from_metadata, origin_metadata
from bot.slack.lang import N_, _
from bot.slack.sharing import ShareRequest, ShareResult

log = logging.getLogger(__name__)

RECIPIENT_CHECK_SECONDS = 1.5  # the whole submission must be answered within 3 s
REVEAL_ACK_SECONDS = 2.0  # longer, and the reveal's outcome arrives by views.update
_FORM_FAILURES = {
    "expired_trigger_id": N_("Slack did not let the window open in time (it allows 3 seconds "
                             "after you click or send the command). Please try again."),
    "exchanged_trigger_id": N_("That click or command was already used to open a window. "
                               "Please try again."),
    "slack_unreachable": N_("Slack could not be reached to open the window. Please try again "
                            "in a minute."),
    "ratelimited": N_("Slack is limiting how often the app may open windows right now. Please "
                      "try again in a minute."),
}
# Translated where it is said: _(SELF_RECIPIENT).
SELF_RECIPIENT = N_(
    "You picked yourself: secrets go to other people. For a link you can keep or pass "
    "on, leave yourself out."
)


def form_failed(failure: SlackFailure) -> str:
    """Why a window (views.open) did not open, for the person who asked for it."""
    known = _FORM_FAILURES.get(failure.error)
    if known is not None:
        return _(known)
    return _(
        "Slack would not open the window ({error}). Please try again; if it keeps "
        "happening, tell whoever runs this app.", error=failure.error,
    )


async def open_share_modal(
    deps: SlackDeps,
    trigger_id: str,
    user_id: str,
    origin: Origin,
    *,
    initial_text: str | None = None,
    initial_users: Sequence[str] = (),
    notes: Sequence[str] = (),
    offer_request: bool = False,
) -> None:
    view = modals.share_modal(
        private_metadata=origin_metadata(deps.store.key, origin),
        default_ttl=deps.default_ttl,
        max_ttl=deps.max_ttl,
        initial_text=initial_text,
        initial_users=initial_users,
        notes=notes,
        offer_request=offer_request,
    )
    try:
        await deps.messenger.open_view(trigger_id, view)
    except SlackFailure as exc:
        await tell_quietly(deps, user_id, blocks.error_message(form_failed(exc)), origin)


async def tell_quietly(
    deps: SlackDeps, user_id: str, message: blocks.Message, origin: Origin
) -> None:
    try:
        await deps.messenger.tell(user_id, message, origin)
    except SlackFailure:
        log.warning("could not tell a user about a failure")


async def show_generated(deps: SlackDeps, view_id: str, result: ShareResult) -> None:
    """Put the generated password (or what went wrong) into the modal that waits for it."""
    if result.generated is not None:
        view = modals.generated_modal(result.generated, result.summary)
    else:
        view = modals.notice_modal(_("Not shared"), result.summary, said=result.said)
    try:
        await deps.messenger.update_view(view_id, view)
    except SlackFailure:
        log.warning("could not show a generated password: the modal was gone")


# -- the share modal ------------------------------------------------------------


def _values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values = view.get("state", {}).get("values", {})
    return {block: next(iter(actions.values()), {}) for block, actions in values.items()}


def read_share_form(
    view: dict[str, Any], deps: SlackDeps, sender: str = ""
) -> tuple[dict[str, str], dict[str, Any]]:
    """(errors by block id, the form's values). Errors are written for the sender."""
    values = _values(view)
    secret = values.get(ids.SECRET_BLOCK, {}).get("value") or ""
    generate = bool(values.get(ids.GENERATE_BLOCK, {}).get("selected_options"))
    passphrase = values.get(ids.PASSPHRASE_BLOCK, {}).get("value") or None
    ttl_option = values.get(ids.TTL_BLOCK, {}).get("selected_option") or {}
    recipients = tuple(values.get(ids.RECIPIENTS_BLOCK, {}).get("selected_users") or ())
    label = " ".join((values.get(ids.LABEL_BLOCK, {}).get("value") or "").split()) or None
    errors: dict[str, str] = {}
    size = len(secret.encode("utf-8", "surrogatepass"))
    if generate and secret.strip():
        errors[ids.SECRET_BLOCK] = _("Type a secret or tick Generate, not both.")
    elif not generate and not secret.strip():
        errors[ids.SECRET_BLOCK] = _(
            "Type the secret to share, or tick Generate a strong password."
        )
    elif size > deps.settings.max_secret_bytes:
        errors[ids.SECRET_BLOCK] = _(
            "The secret is too long: {size} bytes; the limit is {limit}.",
            size=blocks.number(size), limit=blocks.number(deps.settings.max_secret_bytes),
        )
    if passphrase is not None and secret and passphrase == secret:
        errors[ids.PASSPHRASE_BLOCK] = _("The passphrase must not be the secret itself.")
    if label is not None and len(label) > modals.LABEL_LIMIT:
        errors[ids.LABEL_BLOCK] = _(
            "Keep the label to {limit} characters (it has {count}).",
            limit=modals.LABEL_LIMIT, count=len(label),
        )
    elif label is not None and _holds_secret(label, secret.strip()):
        errors[ids.LABEL_BLOCK] = _("The label is not secret: do not put the secret in it.")
    choices = modals.ttl_choices(deps.default_ttl, deps.max_ttl)
    ttl = str(ttl_option.get("value", ""))
    if not ttl.isdigit() or int(ttl) not in choices:
        errors[ids.TTL_BLOCK] = _("Pick one of the lifetimes offered.")
    if len(recipients) > modals.MAX_RECIPIENTS:
        errors[ids.RECIPIENTS_BLOCK] = _.plural(
            "Pick at most {count} person.", "Pick at most {count} people.",
            modals.MAX_RECIPIENTS, count=modals.MAX_RECIPIENTS,
        )
    elif not all(trust.is_id("user", r) for r in recipients):
        errors[ids.RECIPIENTS_BLOCK] = _("Pick the people from the list.")
    elif sender in recipients:
        errors[ids.RECIPIENTS_BLOCK] = _(SELF_RECIPIENT)
    form = {
        "secret": None if generate else secret,
        "passphrase": passphrase,
        "ttl": int(ttl) if ttl.isdigit() else None,
        "recipients": recipients,
        "label": label,
    }
    return errors, form


def _holds_secret(label: str, secret: str) -> bool:
    """A label that is (or contains) the secret: pasted into the wrong field. A short
    secret may well appear in an innocent label, so only longer ones count."""
    return bool(secret) and (label == secret or (len(secret) >= 6 and secret in label))


async def unreachable_recipients(deps: SlackDeps, users: Sequence[str]) -> str | None:
    """An error naming recipients who are bots or deactivated, if any.

    Best effort within the 3 s ack: if Slack is slow or the app lacks users:read,
    the DM step later catches the same people and tells the sender.
    """
    if not users:
        return None

    async def check(user: str) -> str | None:
        try:
            info = (await deps.messenger.user_info(user)).get("user", {})
        except SlackFailure:
            return None
        # Inline errors are plain text: a <@U…> mention would show as its raw id.
        profile = info.get("profile") or {}
        name = "@" + str(profile.get("display_name") or info.get("real_name")
                         or info.get("name") or user)
        if info.get("is_bot") or info.get("id") == "USLACKBOT":
            return _("{name} is a bot.", name=name)
        if info.get("deleted"):
            return _("{name} is deactivated.", name=name)
        return None

    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(check(u) for u in users)), RECIPIENT_CHECK_SECONDS
        )
    except TimeoutError:
        return None
    problems = [p for p in found if p]
    if not problems:
        return None
    return " ".join([*problems, _("A secret can only go to people.")])


async def share_from_modal(ack: AsyncAck, body: dict[str, Any], deps: SlackDeps) -> None:
    view = body["view"]
    errors, form = read_share_form(view, deps, body["user"]["id"])
    if not errors:
        problem = await unreachable_recipients(deps, form["recipients"])
        if problem:
            errors[ids.RECIPIENTS_BLOCK] = problem
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    generate = form["secret"] is None
    origin = origin_from_metadata(deps.store.key, view.get("private_metadata"))
    # From the global shortcut there is no conversation to answer in: the answer is
    # shown in this window, not left in a DM with a live link.
    in_window = origin.response_url is None and origin.channel_id is None
    if generate or in_window:
        await ack(response_action="update", view=modals.notice_modal(
            _("Share a secret"),
            ":hourglass_flowing_sand: " + (
                _("Generating and sharing your password…") if generate
                else _("Sharing your secret…")
            ),
        ))
    else:
        await ack()
    user = body["user"]
    request = ShareRequest(
        sender=user["id"],
        team_id=user.get("team_id") or (body.get("team") or {}).get("id"),
        secret=form["secret"],
        passphrase=form["passphrase"],
        ttl=form["ttl"],
        recipients=form["recipients"],
        origin=origin,
        label=form["label"],
        window=str(view["id"]) if in_window else None,
    )
    result = await deps.sharer.share(request)
    if generate and not result.in_window:
        await show_generated(deps, view["id"], result)


# -- the reveal modal -------------------------------------------------------------


def reveal_metadata(
    key: ServerKey, value: dict[str, Any], channel: str | None, ts: str | None
) -> str:
    """The reveal modal's private_metadata (signed): the key its viewer may use, and the
    DM to update."""
    data = {**value, "c": channel, "ts": ts}
    return trust.pack(key, trust.REVEAL_MODAL, {k: v for k, v in data.items() if v is not None})


async def reveal_from_modal(ack: AsyncAck, body: dict[str, Any], deps: SlackDeps) -> None:
    view = body["view"]
    meta = trust.unpack(deps.store.key, trust.REVEAL_MODAL, view.get("private_metadata")) or {}
    try:
        secret_key, recipient, sender = str(meta["k"]), str(meta["to"]), str(meta["from"])
    except KeyError:
        await ack(response_action="update", view=modals.notice_modal(
            _("One-time secret"), _("This form is damaged. Use the button in the message again.")
        ))
        return
    if body["user"]["id"] != recipient:
        await ack(response_action="update", view=modals.notice_modal(
            _("One-time secret"), _(
                "This secret was sent to {person}: only they can reveal it.",
                person=blocks.mention(recipient),
            ),
        ))
        await report_refused(deps, meta, "other", body["user"]["id"])
        return
    passphrase = _values(view).get(ids.REVEAL_PASSPHRASE_BLOCK, {}).get("value") or None
    reveal = asyncio.ensure_future(deps.backend.reveal(secret_key, passphrase, via="slack"))
    done, _pending = await asyncio.wait({reveal}, timeout=REVEAL_ACK_SECONDS)
    if done:
        answer, dm = await _reveal_answer(reveal, deps, secret_key, meta, sender)
        await ack(**answer)
    else:
        # The reveal may already have consumed the secret, so it is never cancelled:
        # the modal says "revealing" now and shows the outcome when the backend answers.
        await ack(response_action="update", view=modals.notice_modal(
            _("One-time secret"),
            ":hourglass_flowing_sand: " + _("Revealing… the secret store is slow right now."),
        ))
        answer, dm = await _reveal_answer(reveal, deps, secret_key, meta, sender)
        try:
            await deps.messenger.update_view(str(view["id"]), _as_view(answer))
        except SlackFailure:
            log.warning("could not show a slow reveal's outcome: the modal was gone")
    failure = reveal.exception()
    if failure is None and deps.followup is not None and meta.get("i"):
        # Rewrites the DM (and the sender's answer, Home tab) unless an event did.
        await deps.followup.settle(str(meta["i"]), "received", "slack")
    elif dm is not None and meta.get("c") and meta.get("ts"):
        await _rewrite_dm(deps, str(meta["c"]), str(meta["ts"]), dm)
    destroyed = isinstance(failure, WrongPassphrase) and failure.destroyed
    if meta.get("p") and isinstance(failure, SecretNotFound) and not destroyed:
        await report_refused(deps, meta, "passphrase")


async def report_refused(
    deps: SlackDeps, meta: dict[str, Any], why: str, by: str | None = None
) -> None:
    """Tell the sender someone was refused (the record id came signed with the button)."""
    if deps.followup is not None and meta.get("i"):
        await deps.followup.refused(str(meta["i"]), why, by)


async def _reveal_answer(
    reveal: asyncio.Future[Revealed], deps: SlackDeps, secret_key: str,
    meta: dict[str, Any], sender: str,
) -> tuple[dict[str, Any], blocks.Message | None]:
    """What the reveal modal should become, and what the DM should become (None: as is)."""
    try:
        revealed = await reveal
    except WrongPassphrase as exc:
        if exc.destroyed:
            return _destroyed(sender), blocks.not_revealed_dm_message(
                sender=sender, destroyed=True
            )
        return _passphrase_error(wrong_passphrase_text(exc.tries_left)), None
    except SecretNotFound:
        return await _not_revealed(deps, secret_key, bool(meta.get("p")), sender)
    except BackendError as exc:
        log.warning("reveal in Slack failed: %s", type(exc).__name__)
        return _store_trouble(bool(meta.get("p")), exc), None
    view = modals.revealed_modal(sender=sender, value=revealed.value)
    dm = blocks.revealed_dm_message(sender=sender, at=int(time.time()))
    return {"response_action": "update", "view": view}, dm


def wrong_passphrase_text(tries_left: int | None) -> str:
    if tries_left is None:
        return _("That passphrase is not right.")
    if tries_left == 1:
        return _("That passphrase is not right. 1 try left: one more wrong passphrase "
                 "destroys the secret.")
    return _.plural(
        "That passphrase is not right. {count} try left.",
        "That passphrase is not right. {count} tries left.",
        tries_left, count=tries_left,
    )


def _passphrase_error(text: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {ids.REVEAL_PASSPHRASE_BLOCK: text}}


def _destroyed(sender: str) -> dict[str, Any]:
    return {"response_action": "update", "view": modals.notice_modal(
        _("Secret destroyed"),
        ":fire: " + _(
            "That passphrase was not right either, and it was the last try: the secret "
            "was destroyed, so nobody can see it now. Ask {sender} to share it again.",
            sender=blocks.mention(sender),
        ),
    )}


def _as_view(answer: dict[str, Any]) -> dict[str, Any]:
    """An ack answer as a whole view: inline errors can only travel in an ack."""
    if answer.get("response_action") == "update":
        return dict(answer["view"])
    text = " ".join(str(t) for t in answer.get("errors", {}).values())
    return modals.notice_modal(
        _("One-time secret"), ":warning: " + _(
            "{problem} Use *Reveal in Slack* in the message to try again.", problem=text
        ),
    )


async def _not_revealed(
    deps: SlackDeps, secret_key: str, passphrase: str | bool, sender: str
) -> tuple[dict[str, Any], blocks.Message | None]:
    """A reveal that found nothing: gone, or (where the backend cannot say) a wrong passphrase.

    A backend that counts wrong passphrases says so with WrongPassphrase; a plain
    SecretNotFound from it means the secret is gone. Onetime Secret answers
    "Unknown secret" for both: the receipt tells them apart.
    """
    still_there = await _still_there(deps, secret_key) if passphrase else False
    if still_there is not False:
        text = wrong_passphrase_text(None)
        if still_there is None:
            text = _("That passphrase is not right, or the secret is gone.")
        return _passphrase_error(text), None
    return {"response_action": "update", "view": modals.notice_modal(
        _("Secret gone"),
        ":no_entry_sign: " + _(
            "This secret is not available any more: it was already viewed, burned, "
            "expired, or destroyed after too many wrong passphrases. Ask the sender to "
            "share it again."
        ),
    )}, blocks.not_revealed_dm_message(sender=sender, destroyed=False)


async def _still_there(deps: SlackDeps, secret_key: str) -> bool | None:
    """Whether a secret the backend would not reveal is still waiting (None: unknown)."""
    if deps.backend.capabilities.counts_passphrase_attempts or deps.ledger is None:
        return False  # such a backend says WrongPassphrase when the secret is there
    try:
        metadata_key = await deps.ledger.metadata_key_for(secret_key)
        if metadata_key is None:
            return None
        receipt = await deps.backend.receipt(metadata_key)
    except SecretNotFound:
        return False  # the receipt itself has expired
    except BackendError:
        return None
    return receipt.state in ("new", "viewed") and bool(receipt.secret_ttl)


def _store_trouble(passphrase: bool, exc: BackendError) -> dict[str, Any]:
    if passphrase and not isinstance(exc, OutcomeUnknown):
        return {"response_action": "errors",
                "errors": {ids.REVEAL_PASSPHRASE_BLOCK: blocks.store_problem(exc)}}
    # An unknown outcome is never "try again, nothing happened": the secret may be gone.
    title = _("Outcome unknown") if isinstance(exc, OutcomeUnknown) else _("Try again")
    return {"response_action": "update",
            "view": modals.notice_modal(title, ":warning: " + blocks.store_problem(exc),
                                        said=exc.service_text)}


async def _rewrite_dm(deps: SlackDeps, channel: str, ts: str, message: blocks.Message) -> None:
    try:
        await deps.messenger.update(channel, ts, message)
    except SlackFailure:
        pass  # the DM keeps its button; pressing it again just says the secret is gone


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_share_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await share_from_modal(ack, body, deps)

    async def on_reveal_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await reveal_from_modal(ack, body, deps)

    app.view(ids.SHARE_VIEW)(on_share_submitted)
    app.view(ids.REVEAL_VIEW)(on_reveal_submitted)
