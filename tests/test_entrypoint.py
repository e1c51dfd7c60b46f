"""`python -m bot` as a user runs it: a real process, real HTTP, a clear line on bad config."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_bot(
    env: dict[str, str], cwd: Path, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=cwd, env=_env(env), capture_output=True, text=True,
        timeout=timeout,
    )


def _env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


def test_starts_on_sqlite_without_slack_and_says_how_to_connect(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"], cwd=tmp_path,
        env=_env({"PORT": str(port), "HOST": "127.0.0.1"}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "python -m bot exited early"
                assert time.monotonic() < deadline, "python -m bot did not start"
                time.sleep(0.1)
        assert health.status_code == 200
        assert health.json()["store"] == "reachable"
        assert (tmp_path / "data" / "secrets.sqlite3").exists()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in output
    assert re.search(r"Slack not connected: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET", output)
    assert "Traceback" not in output


def test_bad_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = run_bot({"DEFAULT_TTL": "a week"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["configuration error: DEFAULT_TTL: must be a whole number, got 'a week'"]


def test_credentials_inside_ots_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    # They would otherwise be printed in every link, Slack error and the start-up log.
    result = run_bot({"OTS_URL": "https://alice:hunter2@eu.onetimesecret.com"}, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: OTS_URL: "), line
    assert "hunter2" not in result.stderr + result.stdout
    assert "alice" not in result.stderr + result.stdout


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PUBLIC_URL=not-a-url\nPORT=nope\n")
    result = run_bot({}, tmp_path)
    assert result.returncode == 2
    assert "PORT: must be a whole number" in result.stderr
    result = run_bot({"PORT": "badport-from-env"}, tmp_path)
    assert "got 'badport-from-env'" in result.stderr
