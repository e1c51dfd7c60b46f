"""The one ASGI application: Slack events, reveal page, request links, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot import metrics
from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.backends.crypto import SCRYPT_N
from bot.config import Settings
from bot.errors import BackendUnavailable
from bot.logs import pin_noisy_loggers
from bot.mailer import EmailDelivery, SmtpServer
from bot.recipients import Deliveries, RecipientDelivery
from bot.slack import incoming
from bot.slack.requesting import Requests
from bot.web import (
    api,
    headers,
    limits,
    observe,
    pages,
    readiness,
    receipts,
    request_page,
    reveal,
)

log = logging.getLogger(__name__)


HEALTH_TIMEOUT = 3.0


async def healthz(request: Request) -> JSONResponse:
    # Always 200: a process whose store is down is alive, and restarting it
    # would not bring the store back. The body says what is wrong.
    # Bounded: a health probe must answer fast even when the store hangs.
    backend: SecretBackend = request.app.state.backend
    try:
        await asyncio.wait_for(backend.status(), HEALTH_TIMEOUT)
        store = "reachable"
    except (BackendUnavailable, TimeoutError):
        store = "unreachable"
    return JSONResponse(
        {"status": "ok" if store == "reachable" else "degraded", "backend": backend.name,
         "store": store},
        headers={"Cache-Control": "no-store"},
    )


async def not_found(request: Request, exc: Exception) -> Response:
    # A path no route matches (a key holding a newline escapes even the API's
    # Mount pattern) still gets v1's JSON 404 under /api/.
    if request.url.path.startswith(api.PREFIX):
        return api.not_found_response()
    return PlainTextResponse("Not Found", status_code=404)


async def server_error(request: Request, exc: Exception) -> Response:
    # Starlette answers a crash outside every middleware: the headers are set here.
    settings: Settings = request.app.state.settings
    return PlainTextResponse(
        "Internal Server Error", status_code=500,
        headers={n.decode(): v.decode() for n, v in headers.headers_for(settings.public_url)},
    )


def build_app(
    settings: Settings,
    backend: SecretBackend,
    store: AppStore,
    bolt_app: AsyncApp | None = None,
    background: Sequence[Callable[[], Awaitable[None]]] = (),
    requests: Requests | None = None,
    recipients: RecipientDelivery | None = None,
) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness.readyz, methods=["GET"]),
    ]
    if settings.metrics_token:
        routes.append(observe.metrics_route(settings.metrics_token))
    if backend.capabilities.serves_links:
        routes += reveal.routes
        routes += receipts.routes + api.routes
    if requests is not None:
        # Request links are the app's own (their records live in the app store):
        # served whichever backend keeps the secrets.
        routes += request_page.routes
    if bolt_app is not None and not settings.socket_mode:
        slack = bolt_app

        async def slack_events(request: Request) -> Response:
            # Bolt's Starlette adapter, with the body checked before Bolt parses it.
            return await incoming.dispatch(slack, request)

        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
        if settings.slack_distributed:
            routes += install_routes(slack)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        tasks += [
            asyncio.create_task(_as_task(run)) for run in [*backend.background(), *background]
        ]
        # In the background: a store that is down must not hold up start-up.
        tasks.append(asyncio.create_task(readiness.report_store_configuration(store)))
        if bolt_app is not None and settings.socket_mode:
            from bot.slack.socket_mode import SocketModeConnection

            # In the background: the web side serves whether or not Slack answers.
            socket = SocketModeConnection(bolt_app, settings.slack_app_token or "")
            tasks.append(asyncio.create_task(socket.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Let cancelled tasks run their own clean-up (closing what they opened).
            await asyncio.gather(*tasks, return_exceptions=True)
            await backend.close()
            await store.close()
            metrics.process_exited(os.getpid())

    app = observe.ObservedStarlette(
        routes=routes,
        lifespan=lifespan,
        # Outermost: the headers go on every answer, the limits' refusals included.
        middleware=[headers.middleware(settings), *limits.middleware(settings, backend, store)],
        exception_handlers={404: not_found, 500: server_error},
    )
    app.state.backend = backend
    app.state.store = store
    app.state.settings = settings
    app.state.bolt = bolt_app
    app.state.requests = requests
    # How API `recipient`s are reached; without any way, they are refused.
    app.state.recipients = recipients or Deliveries([])
    app.state.delivery_limiter = (
        limits.RateLimiter(
            store.storage,
            {limits.DELIVER: settings.rate_limit_deliver},
            settings.rate_limit_window,
            key=store.key,
            ipv6_prefix=settings.rate_limit_ipv6_prefix,
        )
        if backend.capabilities.serves_links
        else None
    )
    return app


def create_app(
    settings: Settings, *, scrypt_n: int = SCRYPT_N, clock: Callable[[], float] = time.time
) -> Starlette:
    """The composition root: settings in, the whole application out.

    One app store (SQLite or Redis, with the server key) is built here and handed
    to every layer; the embedded backend keeps its secrets in it too. `scrypt_n`
    and `clock` are for tests only (a cheaper passphrase KDF; a clock that can be
    moved past a secret's expiry); they are not settings.
    """
    from bot.appstore import open_app_store
    from bot.backends.factory import make_backend
    from bot.slack.app import build_slack
    from bot.slack.recipients import SlackRecipients

    pin_noisy_loggers()
    store = open_app_store(settings)
    backend = make_backend(settings, store, scrypt_n=scrypt_n, clock=clock)
    # API recipients: Slack first (a member gets a DM), then email.
    email: list[RecipientDelivery] = (
        [EmailDelivery(SmtpServer(settings.smtp_url, settings.smtp_from or ""))]
        if settings.smtp_url
        else []
    )
    if not settings.slack_enabled:
        return build_app(settings, backend, store, recipients=Deliveries(email))
    slack = build_slack(settings, backend, store, clock=clock)
    # With one workspace its members are looked up by email. Installed in many, an
    # API request belongs to none of them: its recipients get email only.
    slack_way: list[RecipientDelivery] = (
        [] if settings.slack_distributed else [SlackRecipients(slack.deps.messenger, store.key)]
    )
    ways = [*slack_way, *email]
    return build_app(
        settings, backend, store, slack.bolt, slack.background, requests=Requests(slack.deps),
        recipients=Deliveries(ways),
    )


def install_routes(bolt_app: AsyncApp) -> list[BaseRoute]:
    """Distribution mode: the install page and the OAuth callback, through Bolt's flow."""
    from slack_bolt.adapter.starlette.async_handler import to_starlette_response
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.slack import ids

    flow = bolt_app.oauth_flow
    assert flow is not None

    async def oauth(request: Request) -> Response:
        bolt_request = AsyncBoltRequest(
            body="",
            query=request.url.query,
            headers={name: request.headers.getlist(name) for name in request.headers},
        )
        if request.url.path == ids.INSTALL_PATH:
            answer = await flow.handle_installation(bolt_request)
        else:
            answer = await flow.handle_callback(bolt_request)
        response = to_starlette_response(answer)
        response.headers.update(pages.SECURITY_HEADERS)
        return response

    return [
        Route(ids.INSTALL_PATH, oauth, methods=["GET"]),
        Route(ids.OAUTH_REDIRECT_PATH, oauth, methods=["GET"]),
    ]


async def _as_task(run: Callable[[], Awaitable[None]]) -> None:
    await run()


def app_from_env() -> Starlette:
    """For `uvicorn --factory bot.web.app:app_from_env`, e.g. with `--workers 2`.

    Each worker builds its own app from the environment (not `.env`: the caller
    sets it). `create_app` pins uvicorn's access log whatever the command line
    says, because secret keys are in request paths.
    """
    return create_app(Settings.from_env())
