"""Logging policy: no secret, key, link, passphrase or request body in any log line.

Some libraries log what passes through them: Bolt logs whole request bodies (at
INFO when a signature check fails), slack-sdk logs outgoing message bodies at
DEBUG, httpx logs every request URL at INFO (and OTS URLs carry secret keys),
uvicorn's access log writes request paths (which carry keys too). Those loggers
are pinned at WARNING, whatever level the root logger has.
"""

from __future__ import annotations

import logging

PINNED = (
    "slack_bolt",
    "slack_sdk",
    "bot.slack.framework",
    "httpx",
    "httpcore",
    "aiohttp.access",
    "uvicorn.access",
)


def pin_noisy_loggers() -> None:
    """Pin the loggers above, and any child of theirs already given a level of its own."""
    known = list(logging.root.manager.loggerDict)
    for name in PINNED:
        logging.getLogger(name).setLevel(logging.WARNING)
        for child in known:
            if child.startswith(name + "."):
                logging.getLogger(child).setLevel(logging.WARNING)


def framework_logger() -> logging.Logger:
    """The base logger handed to Bolt and slack-sdk clients (Bolt copies its level)."""
    pin_noisy_loggers()
    return logging.getLogger("bot.slack.framework")
