"""What a wrong passphrase tells by its timing, on the reveal page and the API.

    .venv/bin/python bench/passphrase_timing.py            # 40 rounds, a few minutes
    .venv/bin/python bench/passphrase_timing.py --rounds 10

Starts `python -m bot` on SQLite (127.0.0.1, a free port; stopped by its PID at
the end), makes passphrase-protected secrets through the API, and then, round
by round, times one request of each kind, in turn, on one keep-alive
connection:

- an unknown key, with a passphrase (API and page POST);
- a live key with a wrong passphrase (API and page POST): scrypt runs;
- a live key with no passphrase at all (API): scrypt does not run;
- the page's GET (the Reveal button) for an unknown and for a live key.

Wrong guesses count towards PASSPHRASE_ATTEMPTS, so the server runs with the
highest limit (100) and a fresh secret replaces each one before it is used up.
The answers' status and body are checked to be the same for the kinds that
should look alike: only their timing differs. Prints a Markdown table of the
median and 90th percentile, in milliseconds.
"""

from __future__ import annotations

import argparse
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.backends.crypto import SCRYPT_N  # noqa: E402
from tests.support.server_process import UNLIMITED, ServerProcess  # noqa: E402

PASSPHRASE = "correct horse battery staple"
WRONG = "wrong horse battery staple"
ATTEMPTS = 100


class Secrets:
    """Live passphrase-protected secret keys, each replaced before its attempts run out."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.key = ""
        self.used = ATTEMPTS

    def refresh_if_due(self) -> None:
        """Called outside the clock: making a secret is not what is measured."""
        if self.used >= ATTEMPTS - 10:
            answer = self.client.post("/api/v1/share",
                                      data={"secret": "timing", "passphrase": PASSPHRASE})
            answer.raise_for_status()
            self.key, self.used = answer.json()["secret_key"], 0

    def live(self) -> str:
        self.used += 1
        return self.key


def unknown_key() -> str:
    return secrets.token_hex(16)[:31]


def measure(rounds: int, url: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    answers: dict[str, set[tuple[int, str]]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        pool = Secrets(client)
        kinds: dict[str, Callable[[], httpx.Response]] = {
            "API POST, unknown key": lambda: client.post(
                f"/api/v1/secret/{unknown_key()}", data={"passphrase": WRONG}),
            "API POST, live key, wrong passphrase": lambda: client.post(
                f"/api/v1/secret/{pool.live()}", data={"passphrase": WRONG}),
            "API POST, live key, no passphrase": lambda: client.post(
                f"/api/v1/secret/{pool.live()}"),
            "page POST, unknown key": lambda: client.post(
                f"/secret/{unknown_key()}", data={"passphrase": WRONG}),
            "page POST, live key, wrong passphrase": lambda: client.post(
                f"/secret/{pool.live()}", data={"passphrase": WRONG}),
            "page GET, unknown key": lambda: client.get(f"/secret/{unknown_key()}"),
            "page GET, live key": lambda: client.get(f"/secret/{pool.live()}"),
        }
        for call in kinds.values():  # warm up every path once
            pool.refresh_if_due()
            call()
        for _ in range(rounds):
            for kind, call in kinds.items():
                pool.refresh_if_due()
                started = time.perf_counter()
                answer = call()
                times.setdefault(kind, []).append(time.perf_counter() - started)
                # The key asked for is echoed; apart from it, the answers must not differ.
                key = answer.request.url.path.rsplit("/", 1)[-1]
                body = answer.text.replace(key, "KEY") if "POST" in kind else ""
                answers.setdefault(kind, set()).add((answer.status_code, body))
    same = [("API POST, unknown key", "API POST, live key, wrong passphrase"),
            ("API POST, unknown key", "API POST, live key, no passphrase"),
            ("page POST, unknown key", "page POST, live key, wrong passphrase")]
    for one, other in same:
        if answers[one] != answers[other] or len(answers[one]) != 1:
            raise SystemExit(f"the answers differ: {one} vs {other}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        env = {"DATA_DIR": str(Path(work) / "data"), "PUBLIC_URL": "http://ots.bench",
               "PASSPHRASE_ATTEMPTS": str(ATTEMPTS), **UNLIMITED}
        with ServerProcess.python_m_bot(env, Path(work) / "server.log") as server:
            times = measure(args.rounds, server.url)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"scrypt N=2^{SCRYPT_N.bit_length() - 1}, {args.rounds} rounds\n")
    print("| request | median ms | p90 ms |")
    print("|---|---:|---:|")
    for kind, samples in times.items():
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"| {kind} | {statistics.median(samples) * 1000:.1f} | {p90 * 1000:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
