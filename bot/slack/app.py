"""Building the Slack side: the Bolt app, its listeners, and its background work.

Wiring only: each listener kind has a `register(app, deps)` that maps ids to
plain functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.config import Settings
from bot.logs import framework_logger
from bot.slack import (
    actions,
    commands,
    events,
    ids,
    install_pages,
    lang,
    replay,
    requesting,
    shortcuts,
    trust,
    views,
)
from bot.slack.delivery import Messenger, retry_handlers
from bot.slack.deps import SlackDeps, lifetimes
from bot.slack.followup import Followup
from bot.slack.install_pages import InstallFlow
from bot.slack.installs import StoredInstallations, StoredStates
from bot.slack.notify import Notifier, ReceiptLedger, ReceiptWatcher
from bot.slack.shares import ShareBook
from bot.slack.sharing import Sharer
from bot.slack.trust import ResponseUrls
from bot.slack.workspaces import Workspaces

log = logging.getLogger(__name__)

Background = Callable[[], Awaitable[None]]


@dataclass
class SlackApp:
    bolt: AsyncApp
    deps: SlackDeps
    background: list[Background] = field(default_factory=list)


def build_slack(
    settings: Settings, backend: SecretBackend, store: AppStore, *,
    clock: Callable[[], float] = time.time,
) -> SlackApp:
    """The Bolt app and what runs beside it.

    The app store keeps the replay guard's records, each sender's shares (Home tab,
    messages to rewrite) and, when the backend tells nobody about state changes
    (Onetime Secret), the receipt keys to watch. `clock` is for tests only.
    """
    # Bolt copies the root logger's level into its own loggers unless it is given
    # a base logger: it gets one pinned at WARNING (see bot/logs.py).
    logger = framework_logger()
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        logger=logger,
        retry_handlers=retry_handlers(),
    )
    if settings.slack_distributed:
        app, workspaces = _distributed_app(settings, store, client, logger)
    else:
        # Token and client are passed explicitly (config refuses SLACK_CLIENT_ID
        # beside SLACK_BOT_TOKEN, which would switch Bolt into OAuth mode).
        app = AsyncApp(
            client=client,
            signing_secret=settings.slack_signing_secret or "",
            logger=logger,
            process_before_response=False,
            request_verification_enabled=not settings.socket_mode,
            installation_store=None,
            oauth_settings=None,
        )
        workspaces = Workspaces(client)
    # A replayed signed request is answered once; the record lives in the app store.
    replay.install(app, store.storage)
    app.use(trust_ids)
    app.use(workspaces.bind_request)
    messenger = Messenger(client, ResponseUrls(settings.slack_api_url))
    # Everything a request says is in the acting user's language (bot/slack/lang.py).
    app.use(lang.middleware(messenger.languages))
    book = ShareBook(store)
    followup = Followup(
        book, messenger, Notifier(messenger, workspaces), store.key, workspaces, clock=clock
    )
    background: list[Background] = []
    ledger = None
    if backend.capabilities.pushes_events:
        backend.subscribe(followup.on_event)
    else:
        ledger = ReceiptLedger(store)
        watcher = ReceiptWatcher(
            ledger, backend, followup.on_receipt, interval=settings.receipt_poll_seconds,
            clock=clock,
        )
        background.append(watcher.run)
    default_ttl, _ = lifetimes(settings, backend)
    sharer = Sharer(
        backend, messenger, store.key, ledger, book, clock=clock,
        default_ttl=default_ttl, on_shared=followup.publish_home,
    )
    deps = SlackDeps(
        settings, backend, messenger, sharer, store, ledger, workspaces, followup=followup
    )
    for kind in (commands, shortcuts, views, actions, requesting, events):
        kind.register(app, deps)
    # Expired requests for a secret lose their buttons (bot/slack/requesting.py).
    background.append(requesting.Requests(deps).run_sweeps)
    # On shutdown, notices and rewrites already under way finish (or stop cleanly).
    background.append(followup.finish_pending)
    app.error(report_listener_error)
    return SlackApp(app, deps, background)


def _distributed_app(
    settings: Settings, store: AppStore, client: AsyncWebClient, logger: logging.Logger
) -> tuple[AsyncApp, Workspaces]:
    """Bolt in OAuth mode: installations and states in the app store (installs.py)."""
    installations = StoredInstallations(store)
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(ids.BOT_SCOPES),
        redirect_uri=settings.public_url + ids.OAUTH_REDIRECT_PATH,
        install_path=ids.INSTALL_PATH,
        redirect_uri_path=ids.OAUTH_REDIRECT_PATH,
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=StoredStates(store),
        callback_options=install_pages.callbacks(),
        logger=logger,
    )
    flow = InstallFlow(
        client=client, logger=logger, settings=oauth,
        allowed_teams=settings.slack_allowed_teams,
        allowed_enterprises=settings.slack_allowed_enterprises,
    )
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        logger=logger,
        process_before_response=False,
        oauth_flow=flow,
        installation_store=installations,
        installation_store_bot_only=True,
    )
    # app_uninstalled and tokens_revoked delete the installation and its tokens.
    app.enable_token_revocation_listeners()
    return app, Workspaces(client, installations)


async def trust_ids(
    context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse | None:
    """Ids Slack sends end up in mentions and API calls: refuse any of another form."""
    checks = (
        ("user", context.user_id), ("team", context.team_id),
        ("enterprise", context.enterprise_id), ("channel", context.channel_id),
    )
    for kind, value in checks:
        if value is not None and not trust.is_id(kind, value):
            log.warning("refused a Slack request with a malformed %s id", kind)
            return BoltResponse(status=400, body=f"Bad Slack request: malformed {kind} id.")
    return await next()


async def report_listener_error(error: Exception) -> None:
    # Bolt's default handler logs str(error), which may quote a payload: log the type only.
    log.error("Slack listener failed: %s", type(error).__name__)

