"""Idle and slow connections: does the server stay up, and does it shed them?

    .venv/bin/python bench/slow_clients.py                       # this checkout
    .venv/bin/python bench/slow_clients.py --repo ../other-tree  # another one

Starts `python -m bot` (SQLite in a fresh directory, default settings, one
worker) from the chosen checkout on a free 127.0.0.1 port, with the server's
soft open-files limit set to `--server-nofile` (1024 by default, what many
systems give a service unless told otherwise; the server may raise it to the
hard limit itself). Then, from one asyncio client:

- opens `--idle` connections (2,000) that never send a byte;
- opens `--slow` slow clients (50), a third each: headers dripped a line
  every 2 s and never finished; a body promised by Content-Length and dripped
  a byte every 2 s; `Expect: 100-continue` and then no body;
- while all of those are open, requests `GET /healthz` once a second
  (`--probes` times) on a fresh connection each and times the answer;
- records when the server closed each slow client (up to `--wait` seconds);
- measures how much the server's log (stdout and stderr) grew.

It prints the figures and checks them against the targets of issue 10: every
`/healthz` answered within 1 s, every slow client disconnected by the server
within 30 s, and the log grew by less than 1 MB. Exit status 0 when all three
hold. Everything it starts, it stops by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEALTHZ_TARGET = 1.0
DISCONNECT_TARGET = 30.0
LOG_TARGET = 1_000_000
# The app's variables, blanked so the developer's shell and .env change nothing.
APP_VARIABLES = (
    "PORT", "HOST", "PUBLIC_URL", "DATA_DIR", "REDIS_URL", "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "OTS_REGION", "OTS_URL", "OTS_USERNAME",
    "OTS_API_TOKEN", "API_USERS", "WORKERS", "HEADER_TIMEOUT", "BODY_TIMEOUT",
    "IDLE_TIMEOUT", "MAX_CONNECTIONS",
)


@dataclass
class Figures:
    healthz: list[float | None] = field(default_factory=list)  # None: no 200
    healthz_answers: list[str] = field(default_factory=list)  # status line, or "no answer"
    slow_closed_after: dict[str, list[float | None]] = field(default_factory=dict)
    idle_opened: int = 0
    idle_refused: int = 0
    idle_closed_by_server: int = 0
    log_growth: int = 0
    server_cpu_seconds: float = 0.0
    server_open_files_peak: int = 0
    server_nofile: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_own_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(repo: Path, python: str, port: int, data: Path, log: Path,
                 nofile: int, hard_nofile: int | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{name: "" for name in APP_VARIABLES},
           "HOST": "127.0.0.1", "PORT": str(port), "DATA_DIR": str(data),
           "PYTHONUNBUFFERED": "1"}
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], hard_nofile or 1 << 62)

    def lower_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))

    with log.open("wb") as out:
        process = subprocess.Popen(
            [python, "-m", "bot"], cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=lower_soft_limit,  # safe: no threads are running yet
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if probe.recv(12).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Returns when the server closes (or resets) the connection."""
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, OSError):
        pass


async def slow_client(kind: str, port: int, wait: float) -> float | None:
    """Seconds from connecting until the server closed it; None if it never did."""
    began = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0.0  # refused outright: shed at once
    if kind == "headers":
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
        drip, gap = b"X-Slow: %d\r\n", 2.0
    elif kind == "body":
        writer.write(b"POST /api/v1/share HTTP/1.1\r\nHost: bench\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\nsecret=")
        drip, gap = b"a", 2.0
    else:  # expect
        writer.write(b"POST /api/v1/share HTTP/1.1\r\nHost: bench\r\n"
                     b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
        drip, gap = b"", 2.0

    async def dripping() -> None:
        n = 0
        while True:
            await asyncio.sleep(gap)
            if drip:
                writer.write(drip % n if b"%d" in drip else drip)
                await writer.drain()
            n += 1

    dripper = asyncio.create_task(dripping())
    try:
        await asyncio.wait_for(closed_by_server(reader), wait)
        return time.monotonic() - began
    except TimeoutError:
        return None
    finally:
        dripper.cancel()
        await asyncio.gather(dripper, return_exceptions=True)
        writer.close()


async def healthz(port: int, figures: Figures) -> float | None:
    began = time.monotonic()
    figures.healthz_answers.append("no answer")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), HEALTHZ_TARGET * 5)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), HEALTHZ_TARGET * 5)
        writer.close()
    except (OSError, TimeoutError):
        return None
    figures.healthz_answers[-1] = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return time.monotonic() - began if answer.startswith(b"HTTP/1.1 200") else None


async def measure(port: int, pid: int, args: argparse.Namespace, figures: Figures) -> None:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(args.idle):
        try:
            idle.append(await asyncio.open_connection("127.0.0.1", port))
        except OSError:
            figures.idle_refused += 1
    figures.idle_opened = len(idle)
    kinds = ["headers", "body", "expect"]
    slow = [asyncio.create_task(slow_client(kinds[i % 3], port, args.wait))
            for i in range(args.slow)]
    await asyncio.sleep(0.5)
    for _ in range(args.probes):
        figures.healthz.append(await healthz(port, figures))
        figures.server_open_files_peak = max(figures.server_open_files_peak, open_files(pid))
        await asyncio.sleep(1.0)
    results = await asyncio.gather(*slow)
    for i, after in enumerate(results):
        figures.slow_closed_after.setdefault(kinds[i % 3], []).append(after)
    for reader, writer in idle:
        if reader.at_eof() or writer.is_closing():
            figures.idle_closed_by_server += 1
        else:
            try:
                await asyncio.wait_for(reader.read(65536), 0.001)
                figures.idle_closed_by_server += reader.at_eof()
            except (TimeoutError, ConnectionError):
                pass
        writer.close()


def report(figures: Figures) -> list[str]:
    answered = [t for t in figures.healthz if t is not None]
    worst = max(answered) if answered else None
    closed = [t for times in figures.slow_closed_after.values() for t in times]
    lines = [
        f"server soft open-files limit while loaded: {figures.server_nofile}",
        f"idle connections open: {figures.idle_opened} (refused at connect: "
        f"{figures.idle_refused}); closed by the server by the end: "
        f"{figures.idle_closed_by_server}",
        f"server open files, peak: {figures.server_open_files_peak}",
        "GET /healthz while loaded: " + ", ".join(
            answer if t is None else f"{t * 1000:.0f} ms"
            for t, answer in zip(figures.healthz, figures.healthz_answers, strict=True)),
    ]
    for kind, times in figures.slow_closed_after.items():
        done = [t for t in times if t is not None]
        lines.append(
            f"slow clients ({kind}): {len(done)}/{len(times)} closed by the server"
            + (f", after {min(done):.1f}-{max(done):.1f} s" if done else ""))
    lines.append(f"server log grew by {figures.log_growth:,} bytes; "
                 f"server CPU {figures.server_cpu_seconds:.1f} s")
    checks = [
        ("/healthz within 1 s", len(answered) == len(figures.healthz) and worst is not None
         and worst <= HEALTHZ_TARGET),
        ("slow clients closed within 30 s", all(t is not None and t <= DISCONNECT_TARGET
                                                 for t in closed)),
        ("log grew < 1 MB", figures.log_growth < LOG_TARGET),
    ]
    lines += [f"{'PASS' if ok else 'FAIL'}: {name}" for name, ok in checks]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout to run the server from")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with the app installed (default: this one)")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--probes", type=int, default=8, help="/healthz requests, 1 a second")
    parser.add_argument("--wait", type=float, default=45.0,
                        help="how long to wait for the server to close a slow client")
    parser.add_argument("--server-nofile", type=int, default=1024,
                        help="the server's soft open-files limit at start")
    parser.add_argument("--server-hard-nofile", type=int,
                        help="also lower the server's hard open-files limit to this")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    raise_own_limit()
    work = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    log = work / "server.log"
    port = free_port()
    process = start_server(args.repo.resolve(), args.python, port, work / "data", log,
                           args.server_nofile, args.server_hard_nofile)
    figures = Figures()
    try:
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        figures.server_nofile = next(
            line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        log_before = log.stat().st_size
        cpu_before = cpu_seconds(process.pid)
        asyncio.run(measure(port, process.pid, args, figures))
        figures.server_cpu_seconds = cpu_seconds(process.pid) - cpu_before
        figures.log_growth = log.stat().st_size - log_before
    finally:
        stop(process)
        if figures.log_growth >= LOG_TARGET:
            print(f"(server log kept at {log})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    lines = report(figures)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(figures.__dict__, indent=2))
    return 0 if all(line.startswith("PASS") for line in lines if line[:4] in ("PASS", "FAIL")) \
        else 1


if __name__ == "__main__":
    sys.exit(main())
