"""What the app counts, for Prometheus (`/metrics`, see bot/web/observe.py).

Every metric's name starts with `ots_`, and every label value comes from a short
list fixed in code (a route template, an operation name, a status code, Slack's
error code when it looks like one): never a path, a key, a secret or an address.

With several worker processes (`WORKERS>1`) each process writes its values to
files in `PROMETHEUS_MULTIPROC_DIR`, which `python -m bot` sets up before the
workers start (bot/web/workers.py); a scrape answered by any worker adds up all
of them. prometheus_client reads that variable when it is first imported, so
this module must not be imported before it is set.
"""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format, which every Prometheus version reads (the body is the same:
# names and labels here are plain ASCII, which format 1.0.0 would not escape either).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# `*_created` series double the output and say nothing an operator needs here.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The app's own registry: only `ots_` metrics, none of the client's process collectors.
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

HTTP_REQUESTS = Counter(
    "ots_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "ots_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STORE_OPERATIONS = Counter(
    "ots_store_operations",
    "Operations on the app's store (SQLite or Redis), by operation.",
    ["operation"],
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "ots_store_errors",
    "Store operations that failed (store unreachable, refused, timed out), by operation.",
    ["operation"],
    registry=REGISTRY,
)
STORE_LATENCY = Histogram(
    "ots_store_operation_duration_seconds",
    "Time a store operation took, waiting for a connection included.",
    ["operation"],
    buckets=_STORE_BUCKETS,
    registry=REGISTRY,
)
STORE_POOL_IN_USE = Gauge(
    "ots_store_pool_in_use",
    "Store operations under way, each holding or waiting for one of the pool's "
    "connections (Redis), or queued for the one SQLite thread.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
STORE_POOL_SIZE = Gauge(
    "ots_store_pool_size",
    "Connections each process may open to the store (1 for SQLite's one thread).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SECRETS = Counter(
    "ots_secrets",
    "Secrets of the embedded store by event: created, revealed, burned (by their owner "
    "or after too many wrong passphrases), expired (unread, those with an owner).",
    ["event"],
    registry=REGISTRY,
)
EXPIRY_BACKLOG = Gauge(
    "ots_expiry_backlog",
    "Expiry notices due but not yet sent, as the last maintenance round left them.",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
RATE_LIMITED = Counter(
    "ots_rate_limited",
    "Requests refused by the rate limit, by kind (create, reveal).",
    ["kind"],
    registry=REGISTRY,
)
REPLAYS_IGNORED = Counter(
    "ots_replay_guard_hits",
    "Slack requests ignored because their signature was seen before.",
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "ots_slack_api_errors",
    "Slack Web API calls that failed, by method and Slack's error code.",
    ["method", "error"],
    registry=REGISTRY,
)

# Present at 0 from the start, so rates work at once; and kept, so counting an event
# is one call (`labels()` on every create and reveal was a measurable cost).
SECRET_EVENTS = {
    event: SECRETS.labels(event=event) for event in ("created", "revealed", "burned", "expired")
}

_SLACK_CODE = re.compile(r"[a-z0-9_]{1,60}")
_SLACK_METHOD = re.compile(r"[a-zA-Z.]{1,60}|response_url")


def slack_api_error(method: str, error: str) -> None:
    """Count a failed Slack call; an unexpected-looking code is counted as `other`."""
    SLACK_API_ERRORS.labels(
        method=method if _SLACK_METHOD.fullmatch(method) else "other",
        error=error if _SLACK_CODE.fullmatch(error) else "other",
    ).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_VARIABLE) or None


def render() -> bytes:
    """The text exposition of every metric, all worker processes added up."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the totals)."""
    if multiprocess_dir() is not None:
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
