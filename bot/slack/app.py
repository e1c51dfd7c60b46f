"""Building the Slack side: the Bolt app, its listeners, and its background work.

Wiring only: each listener kind has a `register(app, deps)` that maps ids to
plain functions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.config import Settings
from bot.logs import framework_logger
from bot.slack import actions, commands, replay, shortcuts, trust, views
from bot.slack.delivery import Messenger, retry_handlers
from bot.slack.deps import SlackDeps
from bot.slack.notify import Notifier, ReceiptLedger, ReceiptWatcher
from bot.slack.sharing import Sharer
from bot.slack.trust import ResponseUrls

log = logging.getLogger(__name__)

Background = Callable[[], Awaitable[None]]


@dataclass
class SlackApp:
    bolt: AsyncApp
    deps: SlackDeps
    background: list[Background] = field(default_factory=list)


def build_slack(settings: Settings, backend: SecretBackend, store: AppStore) -> SlackApp:
    """The Bolt app and what runs beside it.

    The app store keeps the replay guard's records and, when the backend tells
    nobody about state changes (Onetime Secret), the receipt keys to watch.
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
    # Token and client are passed explicitly so that SLACK_CLIENT_ID/SECRET in
    # the environment cannot silently switch Bolt into OAuth mode.
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        logger=logger,
        process_before_response=False,
        request_verification_enabled=not settings.socket_mode,
        installation_store=None,
        oauth_settings=None,
    )
    # A replayed signed request is answered once; the record lives in the app store.
    replay.install(app, store.storage)
    app.use(trust_ids)
    messenger = Messenger(client, ResponseUrls(settings.slack_api_url))
    notifier = Notifier(messenger)
    background: list[Background] = []
    ledger = None
    if backend.capabilities.pushes_events:
        backend.subscribe(notifier.on_event)
    else:
        ledger = ReceiptLedger(store)
        watcher = ReceiptWatcher(
            ledger, backend, notifier, interval=settings.receipt_poll_seconds
        )
        background.append(watcher.run)
    deps = SlackDeps(
        settings, backend, messenger, Sharer(backend, messenger, store.key, ledger), store,
        ledger,
    )
    for kind in (commands, shortcuts, views, actions):
        kind.register(app, deps)
    app.error(report_listener_error)
    return SlackApp(app, deps, background)


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

