"""Building the Bolt app: explicit token and client, pinned loggers, listeners by kind."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import SecretBackend
from bot.config import Settings
from bot.logs import framework_logger
from bot.slack import commands


def build_bolt_app(settings: Settings, backend: SecretBackend) -> AsyncApp:
    # Bolt copies the root logger's level into its own loggers unless it is given
    # a base logger: it gets one pinned at WARNING (see bot/logs.py).
    logger = framework_logger()
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        logger=logger,
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
    commands.register(app, backend)
    return app
