"""How the app is served: uvicorn, with deadlines and a cap on open connections.

uvicorn alone keeps a connection open for as long as the client likes while it
sends its request: no deadline for the headers (a client that sends nothing,
or one header line a minute, holds its socket forever), none for the body
(drip-fed, or `Expect: 100-continue` and then nothing), and no limit on how
many such sockets one process holds. About a thousand of them exhaust the
open-files limit; asyncio then logs `socket.accept() out of system resource`
in a loop and `/healthz` stops answering.

So the app is served with uvicorn's own protocols (h11, or httptools when it is
installed, as uvicorn would choose), each extended with:

- a header deadline (`HEADER_TIMEOUT`): from the connection's first moment,
  or from the first byte of each later request on it, to the end of the
  request headers. A connection that sends nothing is closed at the deadline.
- a body deadline (`BODY_TIMEOUT`): from the end of the headers to the end of
  the body. Either deadline answers 408 (if no answer was started) and closes.
- an idle deadline between requests (`IDLE_TIMEOUT`): uvicorn's keep-alive
  timeout.
- a cap on open connections per process (`MAX_CONNECTIONS`, lowered to what
  the open-files limit allows): a connection over it gets a short 503 with
  `Connection: close` at once, before any of it is read, and is not kept.

`raise_open_files_limit` lifts the process's soft limit to its hard limit at
start (children inherit it), and the cap keeps a reserve below it for the
store's own connections and files, so `accept()` never runs out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import resource
from typing import Any, cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.config import Settings
from bot.logs import guard_handlers
from bot.web.headers import headers_for

log = logging.getLogger(__name__)

# File descriptors kept free of client connections: the store's connections
# (a Redis pool, SQLite and its journal), log files, the listening sockets.
FD_RESERVE = 128


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the deadlines and the cap (plain values: it is pickled
    to every worker process)."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        extra_headers: tuple[tuple[bytes, bytes], ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)  # configures logging (configure_logging below)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.extra_headers = extra_headers


    def configure_logging(self) -> None:
        # uvicorn calls this here and again in each worker process: every time,
        # the handlers it leaves get the limit on repeated lines.
        super().configure_logging()
        guard_handlers()


def _answer(status: str, text: str, extra: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, for before or
    instead of the app's own (the app never sees these requests)."""
    body = text.encode() + b"\n"
    lines = [
        f"HTTP/1.1 {status}".encode(),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *(name + b": " + value for name, value in extra),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Guarded:
    """The deadlines and the cap, on top of one of uvicorn's HTTP protocols.

    The subclasses below say when a request's headers and body are complete.
    """

    # Set by uvicorn's protocol classes (`config` is a ServerConfig here).
    config: Any
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    _deadline: asyncio.TimerHandle | None = None
    _awaiting: str | None = None  # "headers" or "body", while a deadline runs
    _refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cap = getattr(self.config, "max_connections", 0)
        if cap and len(self.connections) >= cap:
            self._refused = True
            cast(asyncio.WriteTransport, transport).write(_answer(
                "503 Service Unavailable",
                "Too many open connections: try again in a moment.",
                ((b"retry-after", b"1"), *getattr(self.config, "extra_headers", ())),
            ))
            transport.close()
            log.warning("refused a connection: %d are open, the cap is %d (MAX_CONNECTIONS)",
                        len(self.connections), cap)
            return
        super().connection_made(transport)  # type: ignore[misc]
        self._expect("headers")

    def data_received(self, data: bytes) -> None:
        if not self._refused:  # a refused client's request is never read
            super().data_received(data)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if not self._refused:
            super().connection_lost(exc)  # type: ignore[misc]

    def _expect(self, what: str) -> None:
        """Start the deadline for `what`, unless it is already running."""
        if self._awaiting == what:
            return
        self._cancel()
        timeout = self.config.header_timeout if what == "headers" else self.config.body_timeout
        self._awaiting = what
        self._deadline = self.loop.call_later(timeout, self._timed_out)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._awaiting = None

    def _timed_out(self) -> None:
        what = self._awaiting
        self._deadline = None
        self._awaiting = None
        if self.transport.is_closing():
            return
        # The body deadline may pass while the app already answers (it need not
        # read the body first); then the connection is only closed.
        answering = what == "body" and self.cycle is not None and self.cycle.response_started
        if not answering:
            self.transport.write(_answer(
                "408 Request Timeout",
                f"The request {what} did not arrive in time.",
                getattr(self.config, "extra_headers", ()),
            ))
        self.transport.close()


class GuardedH11Protocol(_Guarded, H11Protocol):
    conn: h11.Connection

    def handle_events(self) -> None:
        super().handle_events()
        if self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._expect("body")
        elif state is h11.IDLE:
            # Part of a request's headers is in: their deadline runs (from the
            # first byte). With nothing in, the connection waits between
            # requests, under the idle deadline (uvicorn's keep-alive timer),
            # or is new, under the header deadline started on connecting.
            if self.conn.trailing_data[0]:
                self._expect("headers")
        else:  # the whole request is in (or the connection is ending): the app's turn
            self._cancel()


HAVE_HTTPTOOLS = importlib.util.find_spec("httptools") is not None

if HAVE_HTTPTOOLS:  # optional; uvicorn prefers it when installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._expect("headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._expect("body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._cancel()


def protocol_class() -> str:
    """httptools when installed (uvicorn's own choice, and faster), else h11.

    An import string, as uvicorn accepts: the config is pickled to each worker.
    """
    name = "GuardedHttpToolsProtocol" if HAVE_HTTPTOOLS else "GuardedH11Protocol"
    return f"{__name__}:{name}"


def raise_open_files_limit() -> int:
    """Lift the soft open-files limit to the hard limit; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
        return soft
    return hard


def connection_cap(max_connections: int, open_files: int) -> int:
    """`MAX_CONNECTIONS`, or fewer if the open-files limit cannot hold them and a reserve."""
    return max(1, min(max_connections, open_files - FD_RESERVE))


def server_config(settings: Settings, app: Any, **kwargs: Any) -> ServerConfig:
    """The uvicorn configuration `python -m bot` serves with (one worker or several)."""
    open_files = raise_open_files_limit()
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        log.warning(
            "MAX_CONNECTIONS lowered to %d per process: the open-files limit is %d", cap,
            open_files,
        )
    config = ServerConfig(
        app,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=cap,
        extra_headers=headers_for(settings.public_url),
        http=protocol_class(),
        timeout_keep_alive=settings.idle_timeout,
        access_log=False,  # secret keys are in request paths
        log_level="info",
        server_header=False,
        proxy_headers=True,
        **kwargs,
    )
    return config
