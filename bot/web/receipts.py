"""The sender's receipt page: /private/{metadata_key}, as on onetimesecret.com.

OTS clients print this address (they build it from the origin), so it must
exist for people: it shows the state, the link while the secret is unread, and
a Burn button. Burning is a POST (link previewers only GET) that answers with a
redirect back to the page, so a reload never re-submits it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_date
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.backends.base import Receipt
from bot.backends.embedded import EmbeddedStore
from bot.errors import BackendUnavailable, OutcomeUnknown, SecretNotFound
from bot.i18n import Text
from bot.web import pages
from bot.web.forms import BadForm, read_form
from bot.web.lang import text_of_scope

_UNREAD = ("new", "viewed")


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.SECURITY_HEADERS)


def when(_: Text, timestamp: int) -> str:
    # Babel formats the date the reader's way (month names, order); the zone is UTC.
    moment = datetime.fromtimestamp(timestamp, UTC)
    return _("on {date} at {time} UTC", date=format_date(moment, "long", locale=_.locale),
             time=moment.strftime("%H:%M"))


def render(
    _: Text, store: EmbeddedStore, receipt: Receipt, path: str, *, burn_refused: bool = False
) -> str:
    """The receipt page; `path` is the receipt's own (the Burn form posts to path/burn)."""
    unread = receipt.state in _UNREAD and receipt.secret_key is not None
    changed = receipt.received if receipt.state == "received" else receipt.updated
    return pages.receipt_page(
        _,
        state=receipt.state,
        link=store.secret_url(receipt.secret_key, receipt.share_domain)
        if unread and receipt.secret_key
        else None,
        expires=when(_, receipt.expires_at),
        changed=when(_, changed or receipt.updated),
        passphrase_required=receipt.passphrase_required,
        burn_action=path.rstrip("/") + "/burn",
        path=path,
        burn_refused=burn_refused,
    )


async def show_receipt(request: Request) -> Response:
    store: EmbeddedStore = request.app.state.backend
    _ = text_of_scope(request.scope)
    try:
        # HEAD (link checkers, monitors) answers the same without marking it viewed.
        read = store.peek_receipt if request.method == "HEAD" else store.receipt
        receipt = await read(request.path_params["metadata_key"])
    except SecretNotFound:
        return page(pages.unknown_receipt(_, request.url.path), 404)
    except BackendUnavailable:
        return page(pages.unavailable(_), 503)
    return page(render(_, store, receipt, request.url.path))


async def burn_secret(request: Request) -> Response:
    store: EmbeddedStore = request.app.state.backend
    metadata_key = request.path_params["metadata_key"]
    _ = text_of_scope(request.scope)
    try:
        form = await read_form(request)
    except BadForm as exc:
        # Nothing was tried, so nothing was burned: say what was wrong.
        return page(pages.message(_, _("Bad request"), _("{problem} Nothing was burned.",
                                                          problem=exc)), 400)
    try:
        await store.burn(metadata_key, form.get("passphrase") or None)
    except SecretNotFound:
        # Already viewed, burned or expired (the receipt page says which), or a
        # wrong passphrase: then the secret is still unread, and the page says so.
        try:
            receipt = await store.receipt(metadata_key)
        except SecretNotFound:
            return page(pages.unknown_receipt(_), 404)
        except BackendUnavailable:
            return page(pages.unavailable(_), 503)
        if receipt.state in _UNREAD and receipt.passphrase_required:
            path = request.url.path.removesuffix("/burn")
            return page(render(_, store, receipt, path, burn_refused=True), 400)
    except OutcomeUnknown:
        return page(pages.outcome_unknown(_), 503)
    except BackendUnavailable:
        return page(pages.unavailable(_), 503)
    # Relative, so the redirect works behind any proxy or PUBLIC_URL; in the same language.
    return RedirectResponse(
        pages.with_language(text_of_scope(request.scope), f"/private/{metadata_key}"),
        status_code=303, headers=pages.SECURITY_HEADERS,
    )


routes = [
    Route("/private/{metadata_key}", show_receipt, methods=["GET"]),
    Route("/private/{metadata_key}/burn", burn_secret, methods=["POST"]),
]
