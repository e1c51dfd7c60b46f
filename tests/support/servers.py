"""Real servers for tests: uvicorn on a thread, redis-server as a process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import uvicorn

from bot.appstore import AppStore
from bot.backends.embedded import EmbeddedStore


class ServedApp:
    """An ASGI app served by uvicorn on 127.0.0.1, port 0, on a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, access_log=False, log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())
        self.loop.close()

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server's own loop (where its clients live)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


# scrypt's cost (N) for apps in tests that are not about the cost: a passphrase check
# takes about a millisecond instead of ~0.3 s of CPU and 128 MiB. A secret keeps its own
# N, so nothing else changes. The production cost (crypto.SCRYPT_N) is checked in
# tests/test_crypto.py, tests/test_embedded_store.py and, through create_app's default,
# tests/test_api_v1.py.
TEST_SCRYPT_N = 2**10

# What replicas sharing a Redis are given as SERVER_KEY in tests (32 bytes, base64url).
TEST_SERVER_KEY = "dGVzdC1zZXJ2ZXIta2V5LW9mLXRoaXJ0eS10d28tYnk"


def app_store_of(backend: EmbeddedStore) -> AppStore:
    """The app store of a test that built its embedded store by hand: the same storage."""
    return AppStore(backend.storage, backend.server_key)


def wait_for_pong(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    """Return once a Redis-protocol server on 127.0.0.1:`port` answers PING (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash .ci/run installs it)")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_pong(self.port, self.process, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class LocalHTTPFake:
    """A fake service on 127.0.0.1, port 0, served by stdlib http.server on a thread.

    Subclasses call `_serve(handler_class)` in their constructor; `with fake:`
    starts it and stops it again.
    """

    def _serve(self, handler: type[BaseHTTPRequestHandler], poll: float = 0.02) -> None:
        # `poll`: how often serve_forever looks at its shutdown flag. `with fake:` ends in
        # shutdown(), which waits for that look: stdlib's 0.5 s made every test with a
        # fake Slack half a second longer.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(poll,), daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

