"""The sender's receipt page: /private/{metadata_key}, as on onetimesecret.com.

OTS clients print this address (they build it from the origin), so it must
exist for people: it shows the state, the link while the secret is unread, and
a Burn button. Burning is a POST (link previewers only GET) that answers with a
redirect back to the page, so a reload never re-submits it.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.backends.base import Receipt
from bot.backends.embedded import EmbeddedStore
from bot.errors import BackendUnavailable, SecretNotFound
from bot.web import pages

_UNREAD = ("new", "viewed")


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.SECURITY_HEADERS)


def when(timestamp: int) -> str:
    return "at " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def render(store: EmbeddedStore, receipt: Receipt, burn_action: str) -> str:
    unread = receipt.state in _UNREAD and receipt.secret_key is not None
    changed = receipt.received if receipt.state == "received" else receipt.updated
    return pages.receipt_page(
        state=receipt.state,
        link=store.secret_url(receipt.secret_key) if unread and receipt.secret_key else None,
        expires=when(receipt.expires_at),
        changed=when(changed or receipt.updated),
        passphrase_required=receipt.passphrase_required,
        burn_action=burn_action,
    )


async def show_receipt(request: Request) -> Response:
    store: EmbeddedStore = request.app.state.backend
    try:
        receipt = await store.receipt(request.path_params["metadata_key"])
    except SecretNotFound:
        return page(pages.unknown_receipt(), 404)
    except BackendUnavailable:
        return page(pages.unavailable(), 503)
    return page(render(store, receipt, request.url.path.rstrip("/") + "/burn"))


async def burn_secret(request: Request) -> Response:
    store: EmbeddedStore = request.app.state.backend
    metadata_key = request.path_params["metadata_key"]
    try:
        await store.burn(metadata_key)
    except SecretNotFound:
        # Already viewed, burned or expired: the receipt page says which.
        pass
    except BackendUnavailable:
        return page(pages.unavailable(), 503)
    # Relative, so the redirect works behind any proxy or PUBLIC_URL.
    return RedirectResponse(
        f"/private/{metadata_key}", status_code=303, headers=pages.SECURITY_HEADERS
    )


routes = [
    Route("/private/{metadata_key}", show_receipt, methods=["GET"]),
    Route("/private/{metadata_key}/burn", burn_secret, methods=["POST"]),
]
