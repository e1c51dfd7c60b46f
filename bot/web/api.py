"""The Onetime Secret v1 compatible API of the embedded store, under /api/v1.

Existing OTS clients (Ruby, Python, Perl, Java, C#, Go, PowerShell, Bash) must
work against it unchanged, so it copies the v1 contract to the letter (see
OTS_API_V1.md): flat JSON objects with `application/json; charset=utf-8`,
every error an HTTP 404 with an exact `message` string (plus the newer
`X-OTS-Intended-Status` header), integers and booleans typed as the strict
clients expect, no trailing-slash redirects, and parameters read leniently from
wherever a client puts them (`bot.web.forms`).

One deliberate departure: a store that cannot be reached answers 503 (a 404
would read as "Unknown secret" to a client and lose the reason).

`recipient` really delivers the link (never the secret) through the
`RecipientDelivery` the composition root put in `app.state.recipients`: a Slack
DM to a workspace member, else email, else a refusal with nothing stored.
`share_domain` builds links on a host listed in SHARE_DOMAINS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from bot.backends.base import Receipt
from bot.backends.embedded import GENERATE_MAX_LENGTH, NOTHING_TO_SHARE, EmbeddedStore
from bot.config import ApiUser
from bot.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    NotAuthorized,
    OverLimit,
    RateLimited,
    SecretNotFound,
)
from bot.i18n import from_accept_language
from bot.recipients import (
    ANONYMOUS_SENDER,
    DeliveryFailed,
    LinkNotice,
    Recipient,
    RecipientDelivery,
    first_address,
    obscure,
    valid_address,
)
from bot.web.forms import BadForm, Params, read_form
from bot.web.limits import DELIVER, RateLimiter

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
ANONYMOUS = "anon"
UNKNOWN_SECRET = "Unknown secret"  # noqa: S105 (a message, not a password)
NOT_AUTHORIZED = "Not authorized"
RATE_LIMITED = "Rate limit exceeded. Please try again later."
ACCOUNT_REQUIRED = "An account is required to send emails."
CANNOT_DELIVER = "This server cannot deliver to recipients: "
# Compared against when the user is unknown, so a bad email costs the same time as a bad token.
_DUMMY_TOKEN = "x" * 40  # noqa: S105
_LEADING_INTEGER = re.compile(r"\s*([+-]?\d+)")

Handler = Callable[[Request], Awaitable[Response]]


class ApiResponse(JSONResponse):
    """JSON exactly as OTS sends it; Starlette only adds a charset to text/* types."""

    media_type = "application/json; charset=utf-8"

    def __init__(
        self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        # Bodies carry secrets and keys: no cache may keep them.
        super().__init__(content, status_code, {"Cache-Control": "no-store", **(headers or {})})


class ApiError(Exception):
    """An OTS v1 error: HTTP 404 with `{"message": ...}`, like every v1 server."""

    def __init__(
        self,
        message: str,
        intended: int | None,
        *,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.intended = intended
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> ApiResponse:
        headers = dict(self.headers)
        if self.intended is not None:
            headers["X-OTS-Intended-Status"] = str(self.intended)
        return ApiResponse({"message": self.message, **self.extra}, 404, headers)


NO_SUCH_ROUTE = "Not Found: there is no such route in the Onetime Secret v1 API."


def not_found_response() -> ApiResponse:
    # Every client reads `message`; `error` is what the live service sends.
    return ApiResponse({"message": NO_SUCH_ROUTE, "error": "Not Found"}, 404)


# -- authentication --------------------------------------------------------------


def authenticate(request: Request, users: Iterable[ApiUser]) -> str:
    """The custid of the caller: an API user's email, or "anon" without credentials.

    Bad credentials never fall back to anonymous (OTS clients always send what
    they were given; silently ignoring a typo would hide it).
    """
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise ApiError(NOT_AUTHORIZED, 401)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(NOT_AUTHORIZED, 401) from None
    email, _, token = decoded.partition(":")
    if not email and not token:
        return ANONYMOUS  # some clients always send Basic, empty when unconfigured
    return _check_token(email, token, users)


def _check_token(email: str, token: str, users: Iterable[ApiUser]) -> str:
    wanted = email.casefold()
    user = next((u for u in users if u.custid.casefold() == wanted), None)
    expected = user.token if user is not None else _DUMMY_TOKEN
    # Digests first, so the comparison takes the same time whatever the lengths.
    matches = hmac.compare_digest(_digest(token), _digest(expected))
    if user is None or not matches or not token:
        raise ApiError(NOT_AUTHORIZED, 401)
    return user.custid


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _custid(request: Request, *, required: bool = False) -> str:
    custid = authenticate(request, request.app.state.settings.api_users)
    if required and custid == ANONYMOUS:
        raise ApiError(NOT_AUTHORIZED, 401)
    return custid


# -- parameters ----------------------------------------------------------------------


async def _params(request: Request) -> Params:
    # Strict: a secret is stored byte-exact or refused, never with U+FFFD in it.
    return await read_form(request, strict=True)


def lenient_int(raw: str | None) -> int | None:
    """Like Ruby's `to_i`, which OTS uses: the leading integer, or None if there is none."""
    match = _LEADING_INTEGER.match(raw or "")
    return int(match.group(1)) if match else None


def ttl_param(params: Params) -> int | None:
    # Missing, empty, 0 or unreadable: the default; out of range: clamped by the store.
    ttl = lenient_int(params.get("ttl"))
    return ttl if ttl and ttl > 0 else None


def length_param(params: Params) -> int | None:
    """generate's `length`: missing, empty or 0 means the default; anything else must fit."""
    raw = (params.get("length") or "").strip()
    if raw == "" or (raw.isdigit() and int(raw) == 0):
        return None
    if not raw.isdigit() or int(raw) > GENERATE_MAX_LENGTH:
        raise ApiError(
            f"length must be a whole number from 1 to {GENERATE_MAX_LENGTH}.", 400
        )
    return int(raw)


def passphrase_param(params: Params) -> str | None:
    return params.get("passphrase") or None


# -- response bodies ---------------------------------------------------------------


def receipt_body(receipt: Receipt, *, with_secret_key: bool = True) -> dict[str, Any]:
    """The v1 receipt: exactly these fields, typed as the strict clients read them."""
    body: dict[str, Any] = {
        "custid": receipt.custid,
        "metadata_key": receipt.metadata_key,
    }
    if with_secret_key and receipt.secret_key is not None and receipt.state != "received":
        body["secret_key"] = receipt.secret_key
    body["ttl"] = int(receipt.ttl)
    body["metadata_ttl"] = int(receipt.metadata_ttl)
    if receipt.state != "received":
        # A burned or expired secret has no time left; 0 keeps the field an integer.
        body["secret_ttl"] = int(receipt.secret_ttl or 0)
    body["state"] = receipt.state
    body["updated"] = int(receipt.updated)
    body["created"] = int(receipt.created)
    # No `received`: the Java client refuses any field outside this list.
    body["recipient"] = public_recipients(receipt)
    body["passphrase_required"] = bool(receipt.passphrase_required)
    return body


def public_recipients(receipt: Receipt) -> list[str]:
    """The recipients a receipt may show: obscured addresses the API delivered to.

    Slack shares keep the recipient's Slack id (for the sender's notifications);
    that is nothing an API reader needs.
    """
    return [r for r in receipt.recipient if not r.startswith("slack:")]


# -- endpoints -----------------------------------------------------------------------


def _store(request: Request) -> EmbeddedStore:
    store: EmbeddedStore = request.app.state.backend
    return store


async def status(request: Request) -> Response:
    _custid(request)  # credentials that are sent are checked, here too
    await _store(request).status()
    return ApiResponse({"status": "nominal"})


async def authcheck(request: Request) -> Response:
    _custid(request, required=True)
    await _store(request).status()
    return ApiResponse({"status": "nominal"})


async def share(request: Request) -> Response:
    custid = _custid(request)
    params = await _params(request)
    secret = params.get("secret") or ""
    if not secret:
        # Before any delivery step: an empty share must not even look anybody up.
        raise InvalidRequest(NOTHING_TO_SHARE)
    domain = share_domain_param(request, params)
    delivery = await _plan_delivery(request, custid, params)
    receipt = await _store(request).share(
        secret,
        ttl=ttl_param(params),
        passphrase=passphrase_param(params),
        owner=custid,
        recipient=delivery.recorded if delivery else (),
        share_domain=domain,
    )
    if delivery is not None:
        await _deliver(request, receipt, delivery)
    # Share and generate always carry `share_domain`; receipts and reveals never do.
    return ApiResponse({**receipt_body(receipt), "share_domain": domain})


async def generate(request: Request) -> Response:
    custid = _custid(request)
    params = await _params(request)
    length = length_param(params)
    domain = share_domain_param(request, params)
    delivery = await _plan_delivery(request, custid, params)
    receipt = await _store(request).generate(
        ttl=ttl_param(params),
        passphrase=passphrase_param(params),
        owner=custid,
        length=length,
        recipient=delivery.recorded if delivery else (),
        share_domain=domain,
    )
    if delivery is not None:
        await _deliver(request, receipt, delivery)
    return ApiResponse(
        {**receipt_body(receipt), "value": receipt.value, "share_domain": domain}
    )


# -- share_domain and recipient ---------------------------------------------------------


def share_domain_param(request: Request, params: Params) -> str:
    """A listed SHARE_DOMAINS host to build the link on, or "" for PUBLIC_URL."""
    raw = (params.get("share_domain") or "").strip()
    domain = raw.lower().rstrip(".")
    if not domain:
        return ""
    if domain not in request.app.state.settings.share_domains:
        raise ApiError(
            f"Unknown share_domain {raw!r}: this server builds links only on the host "
            "names in its SHARE_DOMAINS setting. Nothing was stored.",
            400,
        )
    return domain


@dataclass(frozen=True)
class PlannedDelivery:
    recipient: Recipient
    shown: str  # the address obscured, as the receipt lists it

    @property
    def recorded(self) -> tuple[str, ...]:
        return (self.shown,)


async def _plan_delivery(
    request: Request, custid: str, params: Params
) -> PlannedDelivery | None:
    """Who gets the link, found before anything is stored: an address nobody can
    reach is refused with nothing left behind."""
    address = first_address(params.getlist("recipient"))
    if address is None:
        return None
    settings = request.app.state.settings
    if custid == ANONYMOUS and not settings.recipients_anonymous:
        # onetimesecret.com's own answer. Otherwise anyone could make this app DM
        # or mail any colleague a link: a phishing and spam relay.
        raise ApiError(ACCOUNT_REQUIRED, 403)
    if not valid_address(address):
        raise ApiError(
            "The recipient must be one email address, like someone@example.com. "
            "Nothing was stored.",
            400,
        )
    deliveries: RecipientDelivery = request.app.state.recipients
    if not deliveries.ways:
        raise ApiError(
            f"{CANNOT_DELIVER}neither Slack nor email is set up here (connect Slack, or "
            "set SMTP_URL). Nothing was stored.",
            400,
        )
    await _count_delivery(request, custid)
    shown = obscure(address)
    try:
        recipient = await deliveries.find(address)
    except DeliveryFailed as exc:
        raise ApiError(f"The link was not sent to {shown}: {exc.reason}. Nothing was stored.",
                       502) from None
    if recipient is None:
        raise ApiError(
            f"{CANNOT_DELIVER}{shown} is not a member of this Slack workspace, and email "
            "is not set up here (SMTP_URL). Nothing was stored.",
            400,
        )
    return PlannedDelivery(recipient, shown)


async def _count_delivery(request: Request, custid: str) -> None:
    limiter: RateLimiter | None = request.app.state.delivery_limiter
    if limiter is None or not limiter.applies_to(DELIVER):
        return
    client = request.client.host if request.client else "unknown"
    # The address as it is (IPv6 counts per network, as for the other limits); the
    # API user under a prefix no address can have.
    buckets = [client] + ([f"user:{custid}"] if custid != ANONYMOUS else [])
    for bucket in buckets:
        decision = await limiter.hit(DELIVER, bucket)
        if not decision.allowed:
            raise ApiError(
                RATE_LIMITED, 429, headers={"Retry-After": str(decision.retry_after)}
            )


async def _deliver(request: Request, receipt: Receipt, delivery: PlannedDelivery) -> None:
    """Send the link; if it did not go out, burn the secret: nobody was told of it."""
    store = _store(request)
    assert receipt.secret_key is not None
    notice = LinkNotice(
        sender=receipt.custid if receipt.custid != ANONYMOUS else ANONYMOUS_SENDER,
        link=store.secret_url(receipt.secret_key, receipt.share_domain),
        secret_key=receipt.secret_key,
        expires_at=receipt.expires_at,
        ttl=receipt.ttl,
        passphrase_required=receipt.passphrase_required,
        # An email speaks the caller's language (the recipient's is unknown); the
        # API's own answer stays English whatever the header says.
        language=from_accept_language(request.headers.get("accept-language")),
    )
    try:
        await delivery.recipient.send(notice)
    except DeliveryFailed as exc:
        try:
            await store.burn(receipt.metadata_key, by_owner=True)
        except BackendError as burn_error:
            log.error("an undelivered secret could not be burned: %s",
                      type(burn_error).__name__)
            raise ApiError(
                f"The link could not be delivered to {delivery.shown}: {exc.reason}. The "
                "secret could not be burned either; it expires by itself. Share it again.",
                502,
            ) from None
        raise ApiError(
            f"The link could not be delivered to {delivery.shown}: {exc.reason}. The secret "
            "was burned, so nobody can open it; share it again.",
            502,
        ) from None
    log.info("a link was delivered to its recipient by %s", delivery.recipient.how)


async def reveal(request: Request) -> Response:
    _custid(request)
    params = await _params(request)
    key = request.path_params["key"]
    revealed = await _store(request).reveal(key, passphrase_param(params), via="api")
    return ApiResponse({"value": revealed.value, "secret_key": revealed.secret_key})


async def receipt(request: Request) -> Response:
    _custid(request)
    store = _store(request)
    # HEAD answers the same headers without marking the receipt viewed.
    read = store.peek_receipt if request.method == "HEAD" else store.receipt
    return ApiResponse(receipt_body(await read(request.path_params["key"])))


async def burn(request: Request) -> Response:
    _custid(request)
    params = await _params(request)
    burned, shortkey = await _store(request).burn_with_shortkey(
        request.path_params["key"], passphrase_param(params)
    )
    return ApiResponse({"state": receipt_body(burned), "secret_shortkey": shortkey})


async def recent(request: Request) -> Response:
    custid = _custid(request, required=True)
    receipts = await _store(request).recent(custid)
    return ApiResponse([receipt_body(r, with_secret_key=False) for r in receipts])


# -- routing -------------------------------------------------------------------------


class Endpoint:
    """One v1 route: checks the method and turns the project's errors into v1 answers.

    An ASGI app rather than a function so that Starlette passes every method
    through (a function route would answer a wrong method with plain-text 405).
    """

    def __init__(self, handler: Handler, methods: tuple[str, ...]) -> None:
        self.handler = handler
        self.allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        if request.method not in self.allowed:
            # v1 servers route on method and path together: anything else is Not Found.
            response: Response = not_found_response()
        else:
            response = await self.respond(request)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        try:
            return await self.handler(request)
        except ApiError as exc:
            return exc.response()
        except BadForm as exc:
            return ApiError(str(exc), 400).response()
        except SecretNotFound:
            return _unknown_secret(request)
        except NotAuthorized:
            return ApiError(NOT_AUTHORIZED, 401).response()
        except RateLimited:
            return ApiError(RATE_LIMITED, 429).response()
        except InvalidRequest as exc:
            return ApiError(exc.message, 400).response()
        except BackendUnavailable as exc:
            return ApiResponse({"message": exc.message}, 503, {"Retry-After": "5"})
        except OverLimit:
            raise  # the rate-limit middleware answers it (429)
        except Exception as exc:
            # Name the kind only: an exception's text could quote a parameter.
            log.error("API %s failed: %s", self.handler.__name__, type(exc).__name__)
            return ApiResponse({"message": "Internal error: the request was not completed."}, 500)


class _NotFound:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await not_found_response()(scope, receive, send)


def _unknown_secret(request: Request) -> Response:
    # v1 names the key from the path (it is the caller's own input, never another key).
    key = request.path_params.get("key")
    extra = {"secret_key": key} if key is not None else {}
    return ApiError(UNKNOWN_SECRET, None, **extra).response()


def _routes(paths: Iterable[str], handler: Handler, *methods: str) -> list[BaseRoute]:
    return [Route(path, Endpoint(handler, methods)) for path in paths]


def _aliases(suffix: str) -> tuple[str, ...]:
    # v1 routes the receipt under all three names.
    return (f"/private{suffix}", f"/metadata{suffix}", f"/receipt{suffix}")


_API_ROUTES: list[BaseRoute] = [
    *_routes(["/status"], status, "GET"),
    *_routes(["/authcheck"], authcheck, "GET"),
    *_routes(["/share"], share, "POST"),
    *_routes(["/generate"], generate, "POST"),
    *_routes(["/secret/{key}"], reveal, "POST"),
    # The Ruby CLI joins its base URL (with a port) onto itself: `…/secret/<the base
    # again>/secret/KEY`. The last two segments are what it means.
    *_routes(["/secret/{_ruby:path}/secret/{key}"], reveal, "POST"),
    # `recent` and `…/burn` before the `{key}` wildcard, which would swallow them.
    *_routes(_aliases("/recent"), recent, "GET"),
    *_routes(_aliases("/{key}/burn"), burn, "POST"),
    *_routes(_aliases("/{key}"), receipt, "GET", "POST"),
]

routes: list[BaseRoute] = [
    # A router of its own so Starlette's trailing-slash redirects never apply, and
    # unknown paths answer v1's JSON 404 instead of a plain-text page.
    Mount(PREFIX, app=Router(_API_ROUTES, redirect_slashes=False, default=_NotFound())),
    Route(PREFIX, _NotFound()),
]
