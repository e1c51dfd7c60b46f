"""`python -m bot`: load .env, read settings, serve."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from bot import logs
from bot.appstore import load_server_key
from bot.config import ConfigError, Settings
from bot.serverkey import ServerKeyError

log = logging.getLogger("bot")


def main() -> int:
    # The .env of the directory the app is started in; the environment wins.
    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return _config_error(str(exc))
    try:
        # Made (or read) before serving: a DATA_DIR where no key file can be
        # written is a configuration error, said once, not a failing worker.
        load_server_key(settings)
    except ServerKeyError as exc:
        return _config_error(f"SERVER_KEY: {exc}")
    log_config = logs.configure(settings.log_format)
    import uvicorn

    from bot.web.app import create_app

    # With several workers each builds its own app (bot/web/workers.py).
    app = create_app(settings) if settings.workers == 1 else None
    if settings.uses_onetimesecret:
        log.info("secrets kept by Onetime Secret at %s", settings.ots_base_url)
    else:
        store = "Redis" if settings.redis_url else f"SQLite in {settings.data_dir}/"
        log.info("secrets kept by the embedded store (%s)", store)
        log.info("links start with %s", settings.public_url)
    if settings.socket_mode:
        # "Slack connected" is logged by bot/slack/socket_mode.py once it is.
        log.info("Slack: connecting in Socket Mode, in the background")
    elif settings.slack_enabled:
        log.info("Slack: answering at /slack/events (HTTP)")
    else:
        log.info(
            "Slack not connected: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
            "(or SLACK_APP_TOKEN for Socket Mode) to answer /ots"
        )
    if app is None:
        return serve_workers(settings, log_config)
    from bot.web.server import server_config

    # Deadlines, a connection cap, no access log (keys are in request paths).
    server = uvicorn.Server(
        server_config(
            settings, app, host=settings.host, port=settings.port, log_config=log_config
        )
    )
    # uvicorn re-raises SIGINT after its graceful shutdown, as uvicorn.run expects.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0


def _config_error(problem: str) -> int:
    message = f"configuration error: {problem}"
    # Logging is not set up yet, but a JSON log must stay JSON.
    if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        message = logs.json_line("ERROR", "bot", message)
    print(message, file=sys.stderr)
    return 2


def serve_workers(settings: Settings, log_config: dict[str, Any]) -> int:
    from bot.web import workers

    try:
        sock = workers.listening_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return 1
    workers.serve(settings, sock, log_config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
