"""Several worker processes on one listening socket: `WORKERS=2 python -m bot`.

Every worker builds the app from the environment (`app_from_env`) and all of
them share the store, so a secret is still revealed exactly once.

Why not `uvicorn --workers`: uvicorn binds that listening socket without naming
the protocol, asyncio then never sets TCP_NODELAY on the connections it
accepts, and every keep-alive response after the first waits for the client's
delayed ACK, about 40 ms on Linux (docs/benchmarks.md measured a 15-fold drop).
Here the socket is bound as TCP, with TCP_NODELAY, which accepted connections
also inherit, and handed to uvicorn's own supervisor.
"""

from __future__ import annotations

import logging
import socket

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


def serve(settings: Settings, sock: socket.socket) -> None:
    """Run `settings.workers` processes on `sock` until SIGTERM or SIGINT."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        APP,
        factory=True,
        workers=settings.workers,
        access_log=False,  # secret keys are in request paths
        log_level="info",
        server_header=False,
        proxy_headers=True,
    )
    host, port = sock.getsockname()[:2]
    log.info("serving on http://%s:%d with %d workers", host, port, settings.workers)
    Multiprocess(config, sockets=[sock]).run()
