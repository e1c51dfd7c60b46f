"""A hostile (or broken) HTTP server on 127.0.0.1, port 0: what a client must survive.

It reads each request (headers, and a body by Content-Length) and then answers
with a script written on the raw socket, so it can do what no well-behaved
server does: send a body far larger than any answer, a compression bomb, or a
body dripped one byte at a time so that no read ever times out.

    with HostileServer(drip(b"{}", every=0.5)) as server:
        ... server.url ...
"""

from __future__ import annotations

import functools
import socket
import socketserver
import threading
import zlib
from collections.abc import Callable
from typing import Self

MIB = 1024 * 1024

# An answer: writes to the connection until done, or until `stop` is set.
Answer = Callable[[socket.socket, threading.Event], None]


def _head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def endless(chunk: int = 64 * 1024, up_to: int = 400 * MIB) -> Answer:
    """A 200 with no length that goes on (up to `up_to` bytes) while the client reads."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head())
        block = b" " * chunk
        sent = 0
        while sent < up_to and not stop.is_set():
            conn.sendall(block)
            sent += chunk

    return answer


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about 1,000 times smaller)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = [packer.compress(zeros) for _ in range(size // MIB)]
    return b"".join([*parts, packer.flush()])


def bomb(size: int) -> Answer:
    """A small, honest-looking gzip answer that inflates to `size` bytes."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        body = gzip_bomb(size)
        conn.sendall(_head(Content_Encoding="gzip", Content_Length=str(len(body))) + body)

    return answer


def drip(body: bytes, every: float, for_at_most: float = 90.0) -> Answer:
    """Headers at once, then the body one byte every `every` seconds: each byte comes
    well within any read timeout, the whole never does."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(Content_Length=str(len(body) + 10_000)))
        payload = body + b" " * 10_000
        waited = 0.0
        for byte in payload:
            if stop.wait(every):
                return
            waited += every
            if waited > for_at_most:
                return
            conn.sendall(bytes([byte]))

    return answer


class HostileServer:
    """Serves `answer` to every request, each connection on its own thread."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []  # the request lines and headers received
        self._stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                head = _read_head(conn)
                if head is None:
                    return
                outer.requests.append(head)
                try:
                    outer.answer(conn, outer._stop)
                except OSError:
                    pass  # the client hung up: what a client that gives up does

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def _read_head(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head
