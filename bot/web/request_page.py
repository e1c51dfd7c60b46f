"""A request link's page: GET shows who asks and a form, POST answers once.

GET never uses the link up (mail scanners and chat unfurlers open links). One
POST fulfils the request: it claims (takes) the request record first, so of
any number of concurrent POSTs exactly one goes on; if the secret then cannot
be stored or delivered, the request is put back and the sender is told to try
again. Answered, cancelled, expired and unknown links all get the same page.

Served on both backends: requests live in the app store, and the answer is
stored by whichever backend keeps secrets (bot/slack/requesting.py).
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.errors import BackendUnavailable
from bot.i18n import N_, Text
from bot.slack.requesting import Requests
from bot.web import pages
from bot.web.forms import BadForm, read_form
from bot.web.lang import text_of_scope
from bot.web.receipts import when

log = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9_-]{32}")  # token_urlsafe(24)
STORE_DOWN = N_(
    "The secret store cannot be reached right now. Nothing was sent, and the link still "
    "works: try again in a minute."
)
UNDELIVERABLE = N_(
    "Slack would not deliver the secret to them right now. Nothing was kept, and the link "
    "still works: try again later."
)


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.SECURITY_HEADERS)


def _requests(request: Request) -> Requests:
    requests: Requests = request.app.state.requests
    return requests


async def show_request(request: Request) -> HTMLResponse:
    key, _ = request.path_params["key"], text_of_scope(request.scope)
    if not _KEY.fullmatch(key):
        return page(pages.request_unavailable(_), 404)
    try:
        found = await _requests(request).for_page(key)
    except BackendUnavailable:
        return page(pages.unavailable(_), 503)
    if found is None:
        return page(pages.request_unavailable(_, request.url.path), 404)
    asked, name = found
    settings = _requests(request).deps.settings
    return page(pages.request_form(
        _, name=name or _("Someone in Slack"), what_for=asked.what_for,
        expires=when(_, asked.expires_at),
        action=request.url.path, max_chars=settings.max_secret_bytes,
    ))


async def answer_request(request: Request) -> HTMLResponse:
    key, _ = request.path_params["key"], text_of_scope(request.scope)
    if not _KEY.fullmatch(key):
        return page(pages.request_unavailable(_), 404)
    requests = _requests(request)
    try:
        form = await read_form(request, strict=True)
        # Browsers send every line break of a textarea as CRLF, whatever was typed or
        # pasted: the Enter key a person pressed is a newline.
        secret = (form.get("secret") or "").replace("\r\n", "\n")
        passphrase = form.get("passphrase") or None
    except BadForm as exc:
        return page(pages.message(_, _("Bad request"), _("{problem} Nothing was sent.",
                                                          problem=exc)), 400)
    problem = _problem(_, secret, passphrase, requests.deps.settings.max_secret_bytes)
    if problem:
        # Checked before the link is claimed: a mistake does not use it up.
        return page(pages.message(_, _("Nothing was sent"), problem), 400)
    try:
        outcome = await requests.answer_from_page(key, secret, passphrase)
    except BackendUnavailable:
        outcome = "unavailable"
    if outcome == "sent":
        return page(pages.request_sent(_))
    if outcome == "unavailable":
        return page(pages.message(_, _("Temporarily unavailable"), _(STORE_DOWN)), 503)
    if outcome == "undeliverable":
        return page(pages.message(_, _("Not delivered"), _(UNDELIVERABLE)), 503)
    return page(pages.request_unavailable(_), 404)


def _problem(_: Text, secret: str, passphrase: str | None, max_bytes: int) -> str | None:
    if not secret.strip():
        return _("Type the secret to send. The link still works: go back and try again.")
    size = len(secret.encode("utf-8"))
    if size > max_bytes:
        return _("The secret is too long: {size} bytes; the limit is {limit}. The link "
                 "still works.", size=f"{size:,}", limit=f"{max_bytes:,}")
    if passphrase is not None and passphrase == secret:
        return _("The passphrase must not be the secret itself. The link still works.")
    return None


routes = [
    Route("/request/{key}", show_request, methods=["GET"]),
    Route("/request/{key}", answer_request, methods=["POST"]),
]
