"""Idle and slow connections against a real `python -m bot` (bot/web/server.py).

Deadlines are set to a second or two here so the tests are quick; the
assertions leave several seconds of slack for a loaded machine. The figures
for the default settings under 2,000 idle sockets and 50 slow clients come
from bench/slow_clients.py (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import ConfigError, Settings
from bot.logs import RepeatLimit
from bot.web.server import FD_RESERVE, connection_cap
from tests.support.server_process import ServerProcess

FAST = {"HEADER_TIMEOUT": "1", "BODY_TIMEOUT": "1.5", "IDLE_TIMEOUT": "1"}
SLACK = 6.0  # seconds a deadline may be late on a loaded machine


def start(tmp_path: Path, argv: list[str] | None = None, **env: str) -> ServerProcess:
    """A server to use in `with` (which starts it, and stops it by its PID)."""
    env = {"DATA_DIR": str(tmp_path / "data"), **FAST, **env}
    if argv is None:
        return ServerProcess.python_m_bot(env, tmp_path / "server.log")
    env = {"HOST": "127.0.0.1", "PORT": "0", "WORKERS": "1", **env}
    return ServerProcess(argv, env, tmp_path / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the deadline tests: each uses its own connections, which the
    server closes, so none depends on a fresh process (and a start costs a second)."""
    with start(tmp_path_factory.mktemp("deadlines")) as process:
        yield process


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port or 0), timeout=SLACK + 5)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed."""
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    return answer, time.monotonic()


def closed_within(sock: socket.socket, since: float, seconds: float) -> bytes:
    answer, closed_at = read_until_closed(sock)
    assert closed_at - since < seconds, f"closed only after {closed_at - since:.1f} s"
    return answer


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    server: ServerProcess,
) -> None:
    began = time.monotonic()
    with connect(server) as sock:
        answer = closed_within(sock, began, 1 + SLACK)
    assert time.monotonic() - began >= 0.9
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


def test_headers_dripped_a_line_at_a_time_are_cut_off(server: ServerProcess) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for n in range(int(1 + SLACK) * 4):  # a line every 0.25 s, never the blank line
            time.sleep(0.25)
            try:
                sock.sendall(b"X-Drip-%d: y\r\n" % n)
            except OSError:
                break
        answer = closed_within(sock, began, 1 + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize(
    "head",
    [
        # a body promised and dripped one byte at a time
        b"POST /api/v1/share HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nsecret=",
        # Expect: 100-continue, then no body at all
        b"POST /api/v1/share HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
        b"Expect: 100-continue\r\n\r\n",
        # chunked, and the chunks never end
        b"POST /secret/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
    ],
)
def test_a_body_that_does_not_arrive_in_time_gets_408(server: ServerProcess, head: bytes) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        sock.sendall(head)
        drip = b"1\r\na\r\n" if b"chunked" in head else b"a"
        # With Expect: 100-continue the client sends nothing more: just wait for the close
        # (an empty sendall never fails, so a drip loop would only sleep its full length).
        for _ in range(0 if b"100-continue" in head else int(1.5 + SLACK) * 4):
            time.sleep(0.25)
            try:
                sock.sendall(drip)
            except OSError:
                break
        answer = closed_within(sock, began, 1.5 + SLACK)
    assert b"HTTP/1.1 408 " in answer
    assert b'"secret_key"' not in answer  # nothing was stored from half a body


def test_kept_alive_connections_close_when_idle_and_later_requests_have_deadlines(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        began = time.monotonic()
        answer = closed_within(sock, began, 1 + SLACK)  # IDLE_TIMEOUT after the answer
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
    # A second request begun on a kept-alive connection gets the header deadline.
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        began = time.monotonic()
        for n in range(int(1 + SLACK) * 4):
            time.sleep(0.25)
            try:
                sock.sendall(b"X-Drip-%d: y\r\n" % n)
            except OSError:
                break
        answer = closed_within(sock, began, 1 + SLACK)
    assert b"HTTP/1.1 200 " not in answer


def test_connections_over_the_cap_are_refused_with_503_and_closed(tmp_path: Path) -> None:
    with start(tmp_path, MAX_CONNECTIONS="5", HEADER_TIMEOUT="30") as server:
        held = [connect(server) for _ in range(5)]
        time.sleep(0.3)  # all five accepted
        refused = []
        for _ in range(40):
            with connect(server) as sock:
                began = time.monotonic()
                refused.append(closed_within(sock, began, SLACK))
        assert all(a.startswith(b"HTTP/1.1 503 ") for a in refused), refused[0][:80]
        assert all(b"connection: close" in a.lower() for a in refused)
        assert all(b"retry-after: 1" in a.lower() for a in refused)
        for sock in held:
            sock.close()
        deadline = time.monotonic() + SLACK
        while True:  # freed slots serve again
            try:
                if httpx.get(f"{server.url}/healthz", timeout=SLACK).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not serve after the cap freed"
            time.sleep(0.1)
        time.sleep(0.3)
        log = server.log()
    # Forty refusals, a few lines: repeated warnings are rate-limited.
    refusals = log.count("refused a connection")
    assert 1 <= refusals <= 5, refusals
    assert "Traceback" not in log


def test_the_open_files_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip("needs a finite hard open-files limit above 256")
    # Start the server with its soft limit lowered, as many systems ship (1024).
    launch = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard})); "
        "os.execv(sys.executable, [sys.executable, '-m', 'bot'])"
    )
    with start(tmp_path, argv=[sys.executable, "-c", launch]) as server:
        limits = Path(f"/proc/{server.pid}/limits").read_text()
    line = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits)
    assert line is not None
    assert (int(line.group(1)), int(line.group(2))) == (hard, hard)


def test_guards_hold_in_every_worker_process(tmp_path: Path) -> None:
    with start(tmp_path, WORKERS="2", MAX_CONNECTIONS="3") as server:
        began = time.monotonic()
        with connect(server) as sock:
            assert closed_within(sock, began, 1 + SLACK).startswith(b"HTTP/1.1 408 ")
        # 2 workers x 3: at least one of eight held connections is refused.
        held = [connect(server) for _ in range(8)]
        time.sleep(0.3)
        answers = []
        for sock in held:
            sock.settimeout(0.5)
            try:
                answers.append(sock.recv(100))
            except TimeoutError:
                answers.append(b"")
            sock.close()
    assert any(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers


def test_the_cap_leaves_room_for_the_store_below_the_open_files_limit() -> None:
    assert connection_cap(4096, 1_048_576) == 4096
    assert connection_cap(4096, 1024) == 1024 - FD_RESERVE
    assert connection_cap(4096, 10) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("HEADER_TIMEOUT", "0"), ("BODY_TIMEOUT", "-1"), ("IDLE_TIMEOUT", "soon"),
     ("HEADER_TIMEOUT", "nan"), ("BODY_TIMEOUT", "inf"), ("MAX_CONNECTIONS", "0")],
)
def test_connection_settings_are_checked(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert error.value.variable == name


def test_connection_settings_have_defaults_and_accept_fractions() -> None:
    defaults = Settings.from_env({})
    assert (defaults.header_timeout, defaults.body_timeout, defaults.idle_timeout,
            defaults.max_connections) == (10.0, 20.0, 5.0, 4096)
    assert Settings.from_env({"HEADER_TIMEOUT": "2.5"}).header_timeout == 2.5


# -- repeated log lines --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeated_warnings_are_let_through_a_few_a_minute_with_a_count() -> None:
    clock = Clock()
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("tests.repeat")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Keep()
    handler.addFilter(RepeatLimit(burst=5, period=60, clock=clock))
    logger.addHandler(handler)
    try:
        for n in range(10_000):
            logger.error("socket.accept() out of system resource (%d)", n)
        logger.info("an info line is never held back")
        logger.warning("another kind of line")
        clock.now = 61
        logger.error("socket.accept() out of system resource (%d)", 10_000)
    finally:
        logger.removeHandler(handler)
    assert records[:5] == [f"socket.accept() out of system resource ({n})" for n in range(5)]
    assert records[5:7] == ["an info line is never held back", "another kind of line"]
    assert records[7] == (
        "socket.accept() out of system resource (10000) [9995 more like this were not logged]"
    )
    assert len(records) == 8


def test_every_handler_in_use_gets_the_limit_in_the_server_process() -> None:
    # In a process of its own: the limit must not reach this test run's handlers.
    script = """
import logging
from bot.config import Settings
from bot.logs import RepeatLimit
from bot.web.server import server_config

logging.basicConfig()
server_config(Settings.from_env({}), "bot.web.app:app_from_env", factory=True)
server_config(Settings.from_env({}), "bot.web.app:app_from_env", factory=True)
handlers = list(logging.root.handlers) + [logging.lastResort]
for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
    handlers += logging.getLogger(name).handlers
assert len(handlers) >= 3, handlers  # root, last resort, uvicorn
for handler in handlers:
    assert sum(isinstance(f, RepeatLimit) for f in handler.filters) == 1, handler
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
