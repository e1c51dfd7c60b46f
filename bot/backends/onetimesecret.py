"""The Onetime Secret backend: the OTS REST API v1 over an injected `httpx.AsyncClient`.

Serves onetimesecret.com (regions us, eu, ca, nz, uk) and any other server that
speaks v1, this app's own `/api/v1` included. The facts it relies on are in
OTS_API_V1.md: form-encoded parameters, pre-emptive Basic auth (the service never
sends a 401 challenge), flat JSON answers whose numbers may be integers or numeric
strings, and every error as HTTP 404 with a `message`.

Every failure is translated into `bot.errors` at one boundary (`_send` and
`_interpret`), with messages a Slack user can act on:

    httpx timeouts, connection errors      → BackendUnavailable (retried for reads)
    HTTP 5xx, an HTML error page, bad JSON → BackendUnavailable (5xx retried for reads)
    a redirect, an unknown API route       → BackendUnavailable (the URL is wrong)
    404 "Unknown secret"                   → SecretNotFound
    404 "Not authorized", 401, 403         → NotAuthorized
    404 rate-limit texts, 429              → RateLimited
    404 "You did not provide anything…"    → InvalidRequest
    any other 4xx message, 413             → InvalidRequest

A reveal destroys the secret before the answer is written and a share sent twice
makes two secrets, so share, generate, reveal and burn are sent exactly once.
Reads (status, authcheck, receipt, recent) are retried with a short backoff.
No message ever carries the token, a key, a passphrase or a request body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.backends.base import Background, Capabilities, Listener, Receipt, Revealed
from bot.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    NotAuthorized,
    RateLimited,
    SecretNotFound,
)

API_PREFIX = "/api/v1"
# onetimesecret.com keeps anonymous secrets at most 7 days and silently shortens
# a longer ttl; accounts get what their plan allows (MAX_TTL says how much).
ANONYMOUS_MAX_TTL = 7 * 86400
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# The whole of one call (every attempt of a retried read, every byte of the answer):
# a server dripping a byte at a time never trips the read timeout above.
DEFAULT_DEADLINE = 15.0
# The largest answer read, counted after decompression (a gzip bomb is refused at
# this size, not inflated). A v1 answer is a receipt, a secret of at most a few
# hundred KiB, or a `recent` list.
MAX_RESPONSE_BYTES = 1024 * 1024
# What the body decoder below understands; anything else is refused, unread.
ACCEPT_ENCODING = "gzip, deflate"
USER_AGENT = "ots-slack/0.1"
NOTHING_TO_SHARE = "You did not provide anything to share."
# The live text is "Rate limit exceeded. Please try again later."; older servers
# said other things ("Cripes! You have been rate limited.", "Too many requests").
_RATE_LIMITED = re.compile(r"rate.?limit|too many|limit exceeded|slow down", re.IGNORECASE)
_KEY = re.compile(r"[0-9A-Za-z]{1,128}")

Params = dict[str, str | list[str]]


class _Transient(Exception):
    """Carries a BackendUnavailable worth retrying for an idempotent read (timeout, no
    connection, 5xx). Never escapes this module: callers get `error` itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error = BackendUnavailable(message)


def new_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """The client the app and the CLI hand to the backend. Redirects are never followed:
    an OTS v1 server does not redirect its API, so a redirect means a wrong URL."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json",
                 "Accept-Encoding": ACCEPT_ENCODING},
    )


def origin_of(base_url: str) -> str:
    """The server's origin: what links are built on. A pasted `…/api/v1` is forgiven."""
    origin = base_url.rstrip("/")
    if origin.endswith(API_PREFIX):
        origin = origin[: -len(API_PREFIX)]
    return origin


class OnetimeSecretBackend:
    name = "onetimesecret"
    # The service serves its own links, tells nobody when a secret is read (the
    # app polls receipts), counts wrong passphrases itself (and locks the secret),
    # and e-mails whatever `recipient` it is given.
    capabilities = Capabilities(
        serves_links=False,
        pushes_events=False,
        counts_passphrase_attempts=False,
        holds_slack_recipients=False,
    )

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        username: str | None = None,
        api_token: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        read_attempts: int = 3,
        backoff: float = 0.25,
        max_secret_bytes: int | None = 10_000,
        clock: Callable[[], float] = time.time,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if bool(username) != bool(api_token):
            raise ValueError("username and api_token go together")
        if "@" in urlsplit(base_url).netloc:
            # It would be printed in every link and error message (config refuses it first).
            raise ValueError("the base URL must not hold credentials; pass username and api_token")
        self._client = client
        self.origin = origin_of(base_url)
        self.host = urlsplit(self.origin).netloc or self.origin
        self.username = username or None
        self._auth = httpx.BasicAuth(username, api_token) if username and api_token else None
        if self._auth is None:
            self.capabilities = replace(self.capabilities, max_ttl=ANONYMOUS_MAX_TTL)
        self._timeout = timeout
        self._read_attempts = max(1, read_attempts)
        self._backoff = backoff
        # Older servers silently truncated long secrets; refusing here loses nothing.
        self.max_secret_bytes = max_secret_bytes
        self._clock = clock
        self._deadline = deadline
        self._max_response_bytes = max_response_bytes

    # -- links --------------------------------------------------------------

    def secret_url(self, secret_key: str, share_domain: str = "") -> str:
        # A receipt's share_domain is where the server said its link lives (v1: https).
        base = f"https://{share_domain}" if share_domain else self.origin
        return f"{base}/secret/{secret_key}"

    def receipt_url(self, metadata_key: str) -> str:
        return f"{self.origin}/private/{metadata_key}"

    # -- reads (retried) ------------------------------------------------------

    async def status(self) -> None:
        data = await self._read("/status")
        if not isinstance(data, dict) or data.get("status") != "nominal":
            raise BackendUnavailable(
                f"Onetime Secret ({self.host}) says it is not available right now. "
                "Please try again later."
            )

    async def authcheck(self) -> None:
        """Return if the configured credentials are accepted; raise NotAuthorized if not."""
        if self._auth is None:
            raise NotAuthorized(
                "No Onetime Secret credentials are configured "
                "(set OTS_USERNAME and OTS_API_TOKEN)."
            )
        await self._read("/authcheck")

    async def receipt(self, metadata_key: str) -> Receipt:
        key = _path_key(metadata_key)
        data = await self._read(f"/private/{key}", sensitive=(key,))
        return self._parse(data, metadata_key=key)

    async def recent(self, owner: str) -> list[Receipt]:
        # `owner` has no meaning at Onetime Secret: recent lists the account's receipts.
        if self._auth is None:
            raise NotAuthorized(
                "Listing recent secrets needs an Onetime Secret account "
                "(set OTS_USERNAME and OTS_API_TOKEN)."
            )
        data = await self._read("/private/recent")
        if not isinstance(data, list):
            raise self._malformed("a list of receipts")
        return [self._parse(item) for item in data]

    # -- writes (sent exactly once) --------------------------------------------

    async def share(
        self,
        secret: str,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
        share_domain: str = "",
    ) -> Receipt:
        self._check_secret(secret)
        params = _options(ttl, passphrase, recipient, share_domain)
        params["secret"] = secret
        data = await self._once("/share", params, sensitive=(secret, passphrase))
        return _fresh(self._parse(data))

    async def generate(
        self,
        *,
        ttl: int | None = None,
        passphrase: str | None = None,
        recipient: tuple[str, ...] = (),
        owner: str | None = None,
        length: int | None = None,
        share_domain: str = "",
    ) -> Receipt:
        params = _options(ttl, passphrase, recipient, share_domain)
        if length:
            params["length"] = str(length)
        data = await self._once("/generate", params, sensitive=(passphrase,))
        receipt = _fresh(self._parse(data))
        if not receipt.value:
            raise self._malformed("a generated secret")
        return receipt

    async def reveal(
        self, secret_key: str, passphrase: str | None = None, *, via: str = "api"
    ) -> Revealed:
        key = _path_key(secret_key)
        params: Params = {"passphrase": passphrase} if passphrase else {}
        data = await self._once(
            f"/secret/{key}", params, sensitive=(key, passphrase), consuming=True
        )
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise BackendUnavailable(
                f"Onetime Secret ({self.host}) answered without the secret. "
                "It may have been used up by this attempt."
            )
        answered_key = data.get("secret_key")
        return Revealed(
            secret_key=answered_key if isinstance(answered_key, str)
            and _KEY.fullmatch(answered_key) else key,
            value=value,
        )

    async def burn(
        self, metadata_key: str, passphrase: str | None = None, *, by_owner: bool = False
    ) -> Receipt:
        # `by_owner` means nothing to Onetime Secret: it asks for what it asks for.
        key = _path_key(metadata_key)
        params: Params = {"passphrase": passphrase} if passphrase else {}
        data = await self._once(f"/private/{key}/burn", params, sensitive=(key, passphrase))
        # {"state": <receipt>, "secret_shortkey": …}; a flat receipt is accepted too.
        nested = data.get("state") if isinstance(data, dict) else None
        return self._parse(nested if isinstance(nested, dict) else data, metadata_key=key)

    async def close(self) -> None:
        await self._client.aclose()

    async def peek(self, secret_key: str) -> bool | None:
        return None  # v1 has no way to look at a secret without using it up

    def subscribe(self, listener: Listener) -> None:
        raise NotImplementedError("Onetime Secret pushes no events: poll its receipts")

    # -- start-up ---------------------------------------------------------------

    def background(self) -> list[Background]:
        # In the background: a region that is down must not hold up start-up.
        async def report() -> None:
            await self.report_startup(logging.getLogger("bot"))

        return [report]

    async def report_startup(self, log: logging.Logger) -> None:
        """Say in one log line whether the service answers and the credentials work.

        Never raises: a region that is down must not stop the app from starting.
        """
        try:
            if self._auth is not None:
                await self.authcheck()
                log.info(
                    "Onetime Secret at %s accepted the credentials of %s",
                    self.origin, self.username,
                )
            else:
                await self.status()
                log.info("Onetime Secret at %s is reachable (anonymous use)", self.origin)
        except NotAuthorized:
            log.error(
                "Onetime Secret at %s REJECTED the credentials of %s: check OTS_USERNAME "
                "and OTS_API_TOKEN (every share will fail until they are right)",
                self.origin, self.username,
            )
        except BackendError as exc:
            log.warning(
                "Onetime Secret at %s could not be checked at start-up (%s); "
                "starting anyway", self.origin, exc.message,
            )

    # -- the boundary -------------------------------------------------------------

    def _check_secret(self, secret: str) -> None:
        if not secret:
            raise InvalidRequest(NOTHING_TO_SHARE)
        try:
            size = len(secret.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidRequest("The secret contains text that is not valid Unicode.") from None
        if self.max_secret_bytes is not None and size > self.max_secret_bytes:
            raise InvalidRequest(
                f"The secret is too long: {size:,} bytes; the limit is "
                f"{self.max_secret_bytes:,} bytes."
            )

    async def _read(self, path: str, *, sensitive: tuple[str | None, ...] = ()) -> Any:
        try:
            async with asyncio.timeout(self._deadline):
                for attempt in range(1, self._read_attempts + 1):
                    try:
                        return await self._call("GET", path, None, sensitive, consuming=False)
                    except _Transient as exc:
                        if attempt == self._read_attempts:
                            raise exc.error from None
                        await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        except TimeoutError:
            raise self._too_slow(consuming=False) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        path: str,
        params: Params,
        *,
        sensitive: tuple[str | None, ...] = (),
        consuming: bool = False,
    ) -> Any:
        try:
            async with asyncio.timeout(self._deadline):
                return await self._call("POST", path, params, sensitive, consuming=consuming)
        except _Transient as exc:
            raise exc.error from None
        except TimeoutError:
            raise self._too_slow(consuming=consuming) from None

    def _too_slow(self, *, consuming: bool) -> BackendUnavailable:
        maybe_used = " The secret may have been used up by this attempt." if consuming else ""
        return BackendUnavailable(
            f"Onetime Secret ({self.host}) did not answer in time.{maybe_used} "
            "Please try again shortly."
        )

    async def _call(
        self,
        method: str,
        path: str,
        params: Params | None,
        sensitive: tuple[str | None, ...],
        *,
        consuming: bool,
    ) -> Any:
        response = await self._send(method, path, params, consuming=consuming)
        return self._interpret(response, sensitive, consuming=consuming)

    async def _send(
        self, method: str, path: str, params: Params | None, *, consuming: bool
    ) -> _Answer:
        url = f"{self.origin}{API_PREFIX}{path}"
        maybe_used = " The secret may have been used up by this attempt." if consuming else ""
        request = self._client.build_request(
            method, url, data=params or None, timeout=self._timeout,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        try:
            response = await self._client.send(request, auth=self._auth, stream=True)
            try:
                body = await self._read_body(response)
            finally:
                await response.aclose()
        except _Oversized:
            raise BackendUnavailable(
                f"Onetime Secret ({self.host}) answered with more than "
                f"{self._max_response_bytes:,} bytes, far more than any Onetime Secret "
                f"answer: it is probably not an Onetime Secret server.{maybe_used}"
            ) from None
        except (_Undecodable, zlib.error):
            raise BackendUnavailable(
                f"Onetime Secret ({self.host}) answered with an encoding that could not be "
                f"read.{maybe_used} Please try again shortly."
            ) from None
        except httpx.TimeoutException:
            raise _Transient(
                f"Onetime Secret ({self.host}) did not answer in time.{maybe_used} "
                "Please try again shortly."
            ) from None
        except httpx.HTTPError:
            # The exception text can hold the URL, and so a key: never pass it on.
            raise _Transient(
                f"Onetime Secret ({self.host}) could not be reached.{maybe_used} "
                "Please try again shortly."
            ) from None
        return _Answer(response.status_code, response.headers, body)

    async def _read_body(self, response: httpx.Response) -> bytes:
        """The body, decompressed, refused as soon as it passes the size limit."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_response_bytes:
            raise _Oversized
        body = _BoundedBody(response.headers.get("Content-Encoding", ""),
                            self._max_response_bytes)
        async for chunk in response.aiter_raw():
            body.feed(chunk)
        return body.finish()

    def _interpret(
        self, response: _Answer, sensitive: tuple[str | None, ...], *, consuming: bool
    ) -> Any:
        status = response.status_code
        if status >= 500:
            maybe_used = " The secret may have been used up." if consuming else ""
            raise _Transient(
                f"Onetime Secret ({self.host}) is having trouble (HTTP {status}).{maybe_used} "
                "Please try again shortly."
            )
        if 300 <= status < 400:
            raise BackendUnavailable(
                f"Onetime Secret ({self.host}) redirected the request: the app's OTS_URL "
                "is probably wrong (it should be the server's origin, e.g. https://…)."
            )
        if status == 429:
            raise RateLimited
        body = _json_or_none(response)
        if status == 200:
            if body is None:
                raise self._malformed("JSON")
            return body
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, str) and message.strip():
            raise self._error_for(message, sensitive)
        if status in (401, 403) or response.headers.get("X-OTS-Intended-Status") == "401":
            raise NotAuthorized(self._rejected())
        if status == 413:
            raise InvalidRequest(f"The secret is too large for Onetime Secret ({self.host}).")
        raise BackendUnavailable(
            f"{self.origin} does not answer like an Onetime Secret v1 server "
            f"(HTTP {status}): the app's OTS_URL or OTS_REGION is probably wrong."
        )

    def _error_for(self, message: str, sensitive: tuple[str | None, ...]) -> BackendError:
        text = " ".join(message.split())
        lower = text.lower()
        if lower.startswith("unknown secret"):
            return SecretNotFound()
        if lower.startswith("not authorized"):
            return NotAuthorized(self._rejected())
        if _RATE_LIMITED.search(text):
            return RateLimited()
        if lower.startswith("you did not provide anything"):
            return InvalidRequest(NOTHING_TO_SHARE)
        # Another refusal: pass the server's words on unless they echo what we sent,
        # apart from our own (they are the server's, untrusted: see BackendError).
        refused = f"Onetime Secret ({self.host}) refused the request."
        text = _printable(text)
        if not text or len(text) > 200 or any(value and value in text for value in sensitive):
            return InvalidRequest(refused)
        return InvalidRequest(refused, service_text=text)

    def _rejected(self) -> str:
        return (
            f"Onetime Secret ({self.host}) rejected the credentials: check OTS_USERNAME "
            "and OTS_API_TOKEN."
        )

    def _malformed(self, expected: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"Onetime Secret ({self.host}) answered with something unexpected "
            f"(expected {expected}). Please try again shortly."
        )

    def _parse(self, data: Any, *, metadata_key: str | None = None) -> Receipt:
        try:
            return parse_receipt(data, metadata_key=metadata_key, now=int(self._clock()))
        except ValueError:
            raise self._malformed("a receipt") from None


# -- parsing what the service answers ---------------------------------------------


def parse_receipt(data: Any, *, metadata_key: str | None = None, now: int) -> Receipt:
    """A Receipt from a v1 receipt object. Numbers may be integers or numeric strings;
    unknown fields are ignored. Raises ValueError for a shape that is not a receipt."""
    if not isinstance(data, Mapping):
        raise ValueError("not an object")
    key = _text(data.get("metadata_key")) or metadata_key
    if not key:
        raise ValueError("no metadata_key")
    created = _integer(data.get("created"), now)
    state = _printable(_text(data.get("state"))) or "new"
    # Once read or burned the link is dead, whatever an older server still sends.
    secret_key = _text(data.get("secret_key")) if state not in ("received", "burned") else ""
    # Keys become links, in Slack mrkdwn (`<link>`) among other places: anything but
    # letters and digits could close the link and add mentions or links of its own.
    for value in (key, secret_key):
        if value and not _KEY.fullmatch(value):
            raise ValueError("a key that is not letters and digits")
    secret_ttl = _optional_integer(data.get("secret_ttl"))
    metadata_ttl = _optional_integer(data.get("metadata_ttl"))
    fallback_ttl = secret_ttl or (metadata_ttl // 2 if metadata_ttl else 0)
    return Receipt(
        custid=_text(data.get("custid")) or "anon",
        metadata_key=key,
        secret_key=secret_key or None,
        ttl=_integer(data.get("ttl"), fallback_ttl),
        metadata_ttl=metadata_ttl if metadata_ttl is not None else 0,
        secret_ttl=secret_ttl,
        created=created,
        updated=_integer(data.get("updated"), created),
        state=state,
        passphrase_required=_boolean(data.get("passphrase_required")),
        recipient=_strings(data.get("recipient")),
        received=_optional_integer(data.get("received")),
        value=_text(data.get("value")) or None,
        share_domain=_text(data.get("share_domain")),
    )


def _fresh(receipt: Receipt) -> Receipt:
    """A just-made secret's remaining lifetime is its lifetime. Older servers put the
    receipt's lifetime (twice as long) in `ttl`; trust `secret_ttl` when they disagree."""
    if receipt.secret_ttl and receipt.ttl > receipt.secret_ttl + 60:
        return replace(receipt, ttl=receipt.secret_ttl)
    return receipt


def _optional_integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("boolean where a number belongs")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip())) if "." in value else int(value.strip())
        except ValueError:
            raise ValueError("not a number") from None
    raise ValueError("not a number")


def _integer(value: Any, default: int) -> int:
    number = _optional_integer(value)
    return default if number is None else number


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def _json_or_none(response: _Answer) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _printable(text: str) -> str:
    """Without control and format characters (terminal escapes, bidi overrides)."""
    return "".join(c for c in text if not unicodedata.category(c).startswith("C")).strip()


@dataclass(frozen=True)
class _Answer:
    """A response read in full, within the size limit."""

    status_code: int
    headers: httpx.Headers
    content: bytes


class _Oversized(Exception):
    pass


class _Undecodable(Exception):
    pass


class _BoundedBody:
    """Collects a body, inflating gzip or deflate at most `limit + 1` bytes at a time,
    so that neither a huge body nor a compression bomb is ever held past `limit`."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            # 32 + MAX_WBITS: a gzip or a zlib header, whichever the server sent.
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        else:
            raise _Undecodable
        self._limit = limit
        self._size = 0
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        if self._inflate is None:
            self._add(chunk)
            return
        while True:
            out = self._inflate.decompress(chunk, self._limit - self._size + 1)
            self._add(out)
            chunk = self._inflate.unconsumed_tail
            if not chunk and not out:
                return

    def finish(self) -> bytes:
        if self._inflate is not None and not self._inflate.eof:
            raise _Undecodable  # cut short
        return b"".join(self._parts)

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise _Oversized
        self._parts.append(data)


def _path_key(key: str) -> str:
    """Keys are opaque but alphanumeric; anything else could change the path, so it is
    answered like an unknown key without asking the service."""
    if not _KEY.fullmatch(key):
        raise SecretNotFound
    return key


def _options(
    ttl: int | None, passphrase: str | None, recipient: tuple[str, ...], share_domain: str = ""
) -> Params:
    params: Params = {}
    if share_domain:
        params["share_domain"] = share_domain
    if ttl:
        params["ttl"] = str(int(ttl))
    if passphrase:
        params["passphrase"] = passphrase
    addresses = [address for address in recipient if address]
    if len(addresses) == 1:
        params["recipient"] = addresses[0]
    elif addresses:
        # Rack reads `recipient[]` as an array; a repeated plain key keeps only the last.
        params["recipient[]"] = addresses
    return params
