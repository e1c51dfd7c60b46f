"""The app in real server processes (uvicorn, or `python -m bot`), each stopped by its PID.

`ServerProcess` starts a command that serves on 127.0.0.1 port 0, reads the port
uvicorn chose from its log, and stops the process with SIGTERM (SIGKILL only if
it does not exit). Its environment is given in full for the app's variables, so
neither the developer's shell nor a `.env` file changes what it does.

`app_with_test_scrypt` is a uvicorn factory for tests that hammer passphrase
reveals: it builds the real app with a cheaper scrypt cost (`TEST_SCRYPT_N`).
scrypt's cost only changes how long a passphrase check takes, not which caller
wins the atomic delete; production always uses `crypto.SCRYPT_N`.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from starlette.applications import Starlette

from bot.backends.embedded import EmbeddedStore

# Every variable the app reads that a test might not set: blank means unset to
# the app, and a blank variable in the environment also wins over `.env`.
APP_VARIABLES = (
    "PORT", "HOST", "PUBLIC_URL", "DATA_DIR", "REDIS_URL", "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "DEFAULT_TTL", "MAX_TTL",
    "MAX_SECRET_BYTES", "PASSPHRASE_ATTEMPTS", "OTS_REGION", "OTS_URL", "OTS_USERNAME",
    "OTS_API_TOKEN", "API_USERS", "MAX_BODY_BYTES", "RATE_LIMIT_CREATE",
    "RATE_LIMIT_REVEAL", "RATE_LIMIT_WINDOW", "FORWARDED_ALLOW_IPS", "WORKERS",
    "RECEIPT_POLL_SECONDS", "REQUEST_TTL", "SERVER_KEY", "RATE_LIMIT_IPV6_PREFIX",
    "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_ALLOWED_TEAMS", "SLACK_ALLOWED_ENTERPRISES",
    "METRICS_TOKEN", "LOG_FORMAT",
    "REDIS_TIMEOUT", "REDIS_WAIT_REPLICAS", "REDIS_WAIT_MS",
    "HEADER_TIMEOUT", "BODY_TIMEOUT", "IDLE_TIMEOUT", "MAX_CONNECTIONS",
    "SHARE_DOMAINS", "SMTP_URL", "SMTP_FROM", "RECIPIENTS_ANONYMOUS", "RATE_LIMIT_DELIVER",
)
# Bolt switches to OAuth when these are set at all, even blank: they are removed.
_REMOVED = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
# Load tests send thousands of requests from one address: lift the limits
# far above that, rather than turning them off, so their code still runs.
UNLIMITED = {"RATE_LIMIT_CREATE": "1000000000", "RATE_LIMIT_REVEAL": "1000000000"}
TEST_SCRYPT_N = 2**8
# uvicorn's line, or bot/web/workers.py's when WORKERS > 1.
_LISTENING = re.compile(r"(?:Uvicorn running|serving) on http://127\.0\.0\.1:(\d+)")
_READY = "Application startup complete"
_REPO = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(
        self, argv: list[str], env: dict[str, str], log_path: Path, *,
        listening: re.Pattern[str] = _LISTENING, ready_marker: str = _READY, ready_count: int = 1,
    ) -> None:
        self.argv = argv
        self.listening = listening
        # With several workers the port is bound before each has started the app.
        self.ready_marker = ready_marker
        self.ready_count = ready_count
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in _REMOVED},
            # Not blank, absent: a blank SLACK_CLIENT_ID already switches Bolt to OAuth.
            **{name: "" for name in APP_VARIABLES if name not in _REMOVED},
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def uvicorn(
        cls, env: dict[str, str], log_path: Path, *,
        factory: str = "bot.web.app:app_from_env", workers: int = 1,
        python: str = sys.executable,
    ) -> ServerProcess:
        argv = [
            python, "-m", "uvicorn", "--factory", factory,
            "--host", "127.0.0.1", "--port", "0", "--workers", str(workers),
            "--no-access-log", "--log-level", "info",
        ]
        return cls(argv, env, log_path, ready_count=workers)

    @classmethod
    def python_m_bot(
        cls, env: dict[str, str], log_path: Path, *, workers: int = 1,
        python: str = sys.executable,
    ) -> ServerProcess:
        env = {"HOST": "127.0.0.1", "PORT": "0", "WORKERS": str(workers), **env}
        return cls([python, "-m", "bot"], env, log_path, ready_count=workers)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=_REPO, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while self.port is None:
            log = self.log()
            match = self.listening.search(log)
            if match and log.count(self.ready_marker) >= self.ready_count:
                self.port = int(match.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log()[-3000:]}")
            else:
                time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """SIGTERM: uvicorn stops accepting, finishes in-flight requests, runs shutdown."""
        os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_with_test_scrypt() -> Starlette:
    """uvicorn factory: the app from the environment, with scrypt at `TEST_SCRYPT_N`."""
    from bot.appstore import open_app_store
    from bot.backends.factory import make_backend
    from bot.config import Settings
    from bot.logs import pin_noisy_loggers
    from bot.web.app import build_app

    pin_noisy_loggers()
    settings = Settings.from_env()
    scrypt_n = int(os.environ.get("TEST_SCRYPT_N") or TEST_SCRYPT_N)
    store = open_app_store(settings)
    return build_app(settings, make_backend(settings, store, scrypt_n=scrypt_n), store)


@dataclass(frozen=True)
class Shared:
    """A secret a test stored, with everything needed to reveal and check it."""

    secret_key: str
    metadata_key: str
    value: str
    passphrase: str | None = None


async def share_many(store: EmbeddedStore, count: int, with_passphrase: bool) -> list[Shared]:
    """Store `count` random secrets, 16 at a time, as the API's clients would."""

    async def share_one() -> Shared:
        value = f"value-{secrets.token_hex(12)}"
        passphrase = f"pass-{secrets.token_hex(4)}" if with_passphrase else None
        receipt = await store.share(value, passphrase=passphrase)
        assert receipt.secret_key is not None
        return Shared(receipt.secret_key, receipt.metadata_key, value, passphrase)

    gate = asyncio.Semaphore(16)

    async def gated() -> Shared:
        async with gate:
            return await share_one()

    return list(await asyncio.gather(*(gated() for _ in range(count))))
