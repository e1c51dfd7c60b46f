"""Logging policy: no secret, key, link, passphrase or request body in any log line.

Some libraries log what passes through them: Bolt logs whole request bodies (at
INFO when a signature check fails), slack-sdk logs outgoing message bodies at
DEBUG, httpx logs every request URL at INFO (and OTS URLs carry secret keys),
uvicorn's access log writes request paths (which carry keys too), and at
`--log-level trace` its `uvicorn.asgi` logger writes every request's scope. Those loggers
are pinned at WARNING, whatever level the root logger has.

Formats: `LOG_FORMAT=text` (default) or `json`, one object per line, for the app
and uvicorn alike from start-up to shutdown. Lines logged while a request is
served carry its id (`X-Request-ID`, see bot/web/observe.py).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

PINNED = (
    "slack_bolt",
    "slack_sdk",
    "bot.slack.framework",
    "httpx",
    "httpcore",
    "aiohttp.access",
    "uvicorn.access",
    # uvicorn's trace level logs every ASGI message with its scope: paths and
    # query strings, which carry keys and passphrases.
    "uvicorn.asgi",
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


# -- request ids --------------------------------------------------------------

# The id of the request being served, set by bot/web/observe.py. A context variable:
# tasks and threads started while serving a request carry it along.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record passing a handler (None outside)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


# -- formats ------------------------------------------------------------------

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The plain format, with ` [request_id=…]` on lines logged while serving a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request_id={request_id}]" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the app and uvicorn alike.

    One handler on the root logger; uvicorn's loggers hand their lines to it
    (uvicorn's own handlers would write a second format). Given to uvicorn as
    `log_config`, so each worker process sets it up the same way at its start.
    """
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id"],
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Never on: request paths carry secret keys (see PINNED).
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure(log_format: str) -> dict[str, Any]:
    """Set up logging for this process (and return the config, for uvicorn)."""
    logging.config.dictConfig(log_config(log_format))
    logging.captureWarnings(True)
    pin_noisy_loggers()
    if log_format == "json":
        # Even a crash is one JSON object.
        sys.excepthook = _log_uncaught
    return log_config(log_format)  # a fresh copy: dictConfig may change what it is given


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, exc, tb))


def json_line(level: str, logger: str, message: str) -> str:
    """A line in the JSON format, for what is said before logging is set up."""
    record = logging.LogRecord(logger, logging.getLevelName(level), "", 0, message, None, None)
    return JsonFormatter().format(record)


# -- not flooding -------------------------------------------------------------


class Throttled:
    """At most one line per kind per `every` seconds; the next one says how many were held.

    For what can happen on every request (a store that is down, a client over its
    limit): the operator hears of it at once, and the log cannot be flooded.
    """

    def __init__(
        self, logger: logging.Logger, every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.every:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        if held:
            message += " (and %d more like it in the last %d s)"
            args = (*args, held, round(now - (last or now)))
        self.logger.warning(message, *args)


class RepeatLimit(logging.Filter):
    """Lets through at most `burst` lines of one kind (logger and message template)
    per `period` seconds, at WARNING and above; the first line after a quiet spell
    says how many were left out. A fault that repeats is then a few lines a
    minute, not megabytes. `Throttled` above is for the app's own lines; this is
    on every handler, for the lines others write (asyncio's `accept()` out of
    files, uvicorn's) and anything a call site did not throttle."""

    def __init__(self, burst: int = 5, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> [window start, lines let through in it, lines left out]
        self._kinds: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            if len(self._kinds) > 10_000:  # kinds are message templates: few in practice
                self._kinds.clear()
            window = self._kinds.setdefault(kind, [now, 0, 0])
            if now - window[0] >= self.period:
                left_out = int(window[2])
                window[:] = [now, 0, 0]
                if left_out:
                    record.msg = f"{record.msg} [{left_out} more like this were not logged]"
            if window[1] >= self.burst:
                window[2] += 1
                return False
            window[1] += 1
            return True


def guard_handlers() -> None:
    """Give every handler in use (root's, uvicorn's, the last-resort one) a RepeatLimit."""
    loggers = [logging.root] + [
        logger for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    handlers = {id(h): h for logger in loggers for h in logger.handlers}
    if logging.lastResort is not None:
        handlers[id(logging.lastResort)] = logging.lastResort
    for handler in handlers.values():
        if not any(isinstance(f, RepeatLimit) for f in handler.filters):
            handler.addFilter(RepeatLimit())
