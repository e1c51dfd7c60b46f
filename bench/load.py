"""The load driver: create-then-reveal cycles over N keep-alive connections, and the Slack path.

One client for every server, so the comparison is the servers' and not the
clients': aiohttp on asyncio, one task per connection, each running cycles
back to back until the deadline. Every reveal is checked against the value
that was created; a wrong or failed answer counts as an error, not a cycle.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp

from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, command_body, signature


@dataclass
class Samples:
    """Latencies in seconds, how many cycles failed, and the CPU the server used."""

    create: list[float] = field(default_factory=list)
    reveal: list[float] = field(default_factory=list)
    cycle: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU, the server's processes together
    client_cpu: float = 0.0  # seconds of CPU this driver used meanwhile
    counted: int = 0  # cycles completed while server_cpu was counted

    def merge(self, other: Samples) -> None:
        self.create += other.create
        self.reveal += other.reveal
        self.cycle += other.cycle
        self.errors += other.errors
        self.seconds += other.seconds
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.counted += other.counted

    @property
    def rate(self) -> float:
        return len(self.cycle) / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_cycle(self) -> float:
        """Server CPU seconds per cycle: what the server costs, however busy the machine."""
        return self.server_cpu / self.counted if self.counted else float("nan")

    @property
    def client_cpu_per_cycle(self) -> float:
        return self.client_cpu / self.counted if self.counted else float("nan")


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class CycleError(Exception):
    pass


# A cycle takes a session, the server's base URL and a fresh value; it returns
# (create seconds, reveal seconds) or raises.
Cycle = Callable[[aiohttp.ClientSession, str, str], Awaitable[tuple[float, float]]]


async def _post(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, str]:
    async with session.post(url, **kwargs) as response:
        return response.status, await response.text()


async def ours_cycle(session: aiohttp.ClientSession, base: str, value: str) -> tuple[float, float]:
    """Our OTS v1 API: POST /api/v1/share, then POST /api/v1/secret/{key}."""
    start = time.perf_counter()
    async with session.post(f"{base}/api/v1/share", data={"secret": value, "ttl": "3600"}) as r:
        if r.status != 200:
            raise CycleError(f"share: {r.status}")
        key = (await r.json())["secret_key"]
    created = time.perf_counter()
    async with session.post(f"{base}/api/v1/secret/{key}") as r:
        if r.status != 200 or (await r.json()).get("value") != value:
            raise CycleError(f"reveal: {r.status}")
    return created - start, time.perf_counter() - created


_SNAPPASS_ACCEPT = {"Accept": "application/json"}


async def snappass_cycle(
    session: aiohttp.ClientSession, base: str, value: str
) -> tuple[float, float]:
    """snappass's own JSON create (POST / with Accept: JSON), then its reveal (POST /{token})."""
    start = time.perf_counter()
    async with session.post(
        f"{base}/", data={"password": value, "ttl": "hour"}, headers=_SNAPPASS_ACCEPT
    ) as r:
        if r.status != 200:
            raise CycleError(f"create: {r.status}")
        link = (await r.json())["link"]
    token = unquote(urlsplit(link).path.lstrip("/"))
    created = time.perf_counter()
    status, body = await _post(session, f"{base}/{quote(token, safe='')}")
    if status != 200 or value not in body:
        raise CycleError(f"reveal: {status}")
    return created - start, time.perf_counter() - created


async def drive(
    cycle: Cycle, base: str, *, connections: int, seconds: float, warmup: float,
    server_pid: int | None = None,
) -> Samples:
    """Run `connections` workers for warmup + seconds; keep the samples after the warmup."""
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    samples = Samples()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        begin = time.perf_counter()
        measure_from = begin + warmup
        deadline = measure_from + seconds

        async def worker() -> None:
            while (now := time.perf_counter()) < deadline:
                value = secrets.token_urlsafe(24)
                try:
                    create, reveal = await cycle(session, base, value)
                except (TimeoutError, CycleError, aiohttp.ClientError, KeyError):
                    if now >= measure_from:
                        samples.errors += 1
                    continue
                if now >= measure_from:
                    samples.create.append(create)
                    samples.reveal.append(reveal)
                    samples.cycle.append(create + reveal)

        async def count_cpu() -> None:
            if server_pid is None:
                return
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            done, cpu, own = len(samples.cycle), cpu_seconds(server_pid), time.process_time()
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            samples.counted = len(samples.cycle) - done
            samples.server_cpu = cpu_seconds(server_pid) - cpu
            samples.client_cpu = time.process_time() - own

        await asyncio.gather(count_cpu(), *(worker() for _ in range(connections)))
    samples.seconds = seconds
    return samples


# -- the Slack path -----------------------------------------------------------

_LINK = re.compile(r"/secret/[0-9a-z]{20,}")


@dataclass
class SlackSamples:
    ack: list[float] = field(default_factory=list)
    link: list[float] = field(default_factory=list)
    errors: int = 0


async def drive_slack(
    base: str, fake: FakeSlack, *, concurrency: int, requests: int
) -> SlackSamples:
    """Signed /ots commands: the ack's latency, and when the ephemeral link reaches Slack."""
    samples = SlackSamples()
    sent_at: dict[str, float] = {}
    pending = list(range(requests))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:

        async def sender() -> None:
            while pending:
                pending.pop()
                response_url = fake.response_url()
                body = command_body(f"bench {secrets.token_hex(8)}", response_url=response_url)
                ts = int(time.time())
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": str(ts),
                    "X-Slack-Signature": signature(body, ts, SIGNING_SECRET),
                }
                start = time.monotonic()
                sent_at[urlsplit(response_url).path] = start
                try:
                    status, _ = await _post(session, f"{base}/slack/events", data=body,
                                            headers=headers)
                except aiohttp.ClientError:
                    status = 0
                if status != 200:
                    samples.errors += 1
                    continue
                samples.ack.append(time.monotonic() - start)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    expected = len(samples.ack)
    # This run's posts only (a warm-up run's may still be arriving), up to 30 s.
    deadline = time.monotonic() + 30.0
    while True:
        calls = [c for c in fake.calls_to("response_url") if c.path in sent_at]
        if len(calls) >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    samples.errors += max(0, expected - len(calls))  # never posted
    for call in calls:
        # The link is in the message's blocks (its text never carries one).
        if not _LINK.search(json.dumps(call.body)):
            samples.errors += 1
            continue
        samples.link.append(call.at - sent_at[call.path])
    return samples
