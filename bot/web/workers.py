"""Several worker processes on one listening socket: `WORKERS=2 python -m bot`.

Every worker builds the app from the environment (`app_from_env`) and all of
them share the store, so a secret is still revealed exactly once.

Why not `uvicorn --workers`: uvicorn binds that listening socket without naming
the protocol, asyncio then never sets TCP_NODELAY on the connections it
accepts, and every keep-alive response after the first waits for the client's
delayed ACK, about 40 ms on Linux (docs/benchmarks.md measured a 15-fold drop).
Here the socket is bound as TCP, with TCP_NODELAY, which accepted connections
also inherit, and handed to uvicorn's own supervisor.

Metrics: with METRICS_TOKEN set, the workers keep their values in files of a
private temporary directory (PROMETHEUS_MULTIPROC_DIR, set here before any
worker starts, removed when the supervisor exits), so that a scrape answered by
any worker adds up all of them. An operator's own PROMETHEUS_MULTIPROC_DIR is
used as it is and left in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

from bot.config import Settings

log = logging.getLogger(__name__)

APP = "bot.web.app:app_from_env"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


# prometheus_client's variable; bot.metrics (which imports the client) must not be
# imported in this process before it is set.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics(settings: Settings) -> Iterator[None]:
    if not settings.metrics_token or os.environ.get(MULTIPROC_VARIABLE):
        yield
        return
    directory = tempfile.mkdtemp(prefix="ots-metrics-")  # 0700: only this user
    os.environ[MULTIPROC_VARIABLE] = directory
    log.info("metrics of the %d workers are kept in %s", settings.workers, directory)
    try:
        yield
    finally:
        del os.environ[MULTIPROC_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


def serve(settings: Settings, sock: socket.socket, log_config: dict[str, Any]) -> None:
    """Run `settings.workers` processes on `sock` until SIGTERM or SIGINT."""
    with shared_metrics(settings):
        _serve(settings, sock, log_config)


def _serve(settings: Settings, sock: socket.socket, log_config: dict[str, Any]) -> None:
    from uvicorn.supervisors import Multiprocess

    from bot.web.server import server_config

    # Each worker sets up logging as this process did (log_config).
    config = server_config(
        settings, APP, factory=True, workers=settings.workers, log_config=log_config
    )
    host, port = sock.getsockname()[:2]
    log.info("serving on http://%s:%d with %d workers", host, port, settings.workers)
    Multiprocess(config, sockets=[sock]).run()
