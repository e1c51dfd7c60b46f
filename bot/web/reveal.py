"""The reveal page: GET shows a button and never consumes; POST reveals once.

GET must not consume: Slack, chat apps and mail scanners fetch every link they
see. Unknown, consumed, expired and wrong-passphrase all answer the same page
and status. Not in the same time: a wrong passphrase costs a scrypt derivation,
so timing tells that the link is live and protected, which its GET page shows
anyway, and nothing about the passphrase (docs/passphrase_timing.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.backends.embedded import EmbeddedStore
from bot.errors import BackendUnavailable, OutcomeUnknown, SecretNotFound
from bot.web import pages
from bot.web.forms import BadForm, read_form, require_utf8
from bot.web.lang import text_of_scope


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.SECURITY_HEADERS)


async def show_reveal_button(request: Request) -> HTMLResponse:
    store: EmbeddedStore = request.app.state.backend
    _ = text_of_scope(request.scope)
    try:
        passphrase_required = await store.peek(request.path_params["secret_key"])
    except BackendUnavailable:
        return page(pages.unavailable(_), 503)
    if passphrase_required is None:
        return page(pages.unknown_secret(_, request.url.path), 404)
    return page(
        pages.reveal_prompt(_, action=request.url.path, passphrase_required=passphrase_required)
    )


async def reveal_secret(request: Request) -> HTMLResponse:
    store: EmbeddedStore = request.app.state.backend
    _ = text_of_scope(request.scope)
    try:
        form = await read_form(request)
        passphrase = form.get("passphrase") or None
        if passphrase is not None:
            # A lone surrogate (JSON "\ud800") cannot reach scrypt: refuse it here.
            require_utf8("passphrase", passphrase)
    except BadForm as exc:
        # Nothing was tried, so nothing was consumed: say what was wrong.
        return page(pages.message(_, _("Bad request"), _("{problem} Nothing was revealed.",
                                                          problem=exc)), 400)
    try:
        revealed = await store.reveal(request.path_params["secret_key"], passphrase, via="page")
    except SecretNotFound:
        return page(pages.unknown_secret(_), 404)
    except OutcomeUnknown:
        # Never "nothing was revealed": the store may have handed the secret out.
        return page(pages.outcome_unknown(_), 503)
    except BackendUnavailable:
        return page(pages.unavailable(_), 503)
    return page(pages.revealed(_, revealed.value))


routes = [
    Route("/secret/{secret_key}", show_reveal_button, methods=["GET"]),
    Route("/secret/{secret_key}", reveal_secret, methods=["POST"]),
]
