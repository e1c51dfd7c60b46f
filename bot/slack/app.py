"""Building the Bolt app: explicit token and client, pinned loggers, listeners by kind."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import SecretBackend
from bot.config import Settings
from bot.slack import commands

# Bolt logs whole request bodies (at INFO when a signature check fails) and
# slack-sdk logs outgoing message bodies at DEBUG: either can hold a secret or
# a link. Bolt copies the root logger's level into its loggers unless it is
# given a base logger, so it gets one pinned at WARNING.
SDK_LOGGERS = ("slack_bolt", "slack_sdk", "bot.slack.framework")


def pin_sdk_loggers() -> logging.Logger:
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return logging.getLogger("bot.slack.framework")


def build_bolt_app(settings: Settings, backend: SecretBackend) -> AsyncApp:
    framework_logger = pin_sdk_loggers()
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        logger=framework_logger,
    )
    # Token and client are passed explicitly so that SLACK_CLIENT_ID/SECRET in
    # the environment cannot silently switch Bolt into OAuth mode.
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        logger=framework_logger,
        process_before_response=False,
        request_verification_enabled=not settings.socket_mode,
        installation_store=None,
        oauth_settings=None,
    )
    commands.register(app, backend)
    return app
