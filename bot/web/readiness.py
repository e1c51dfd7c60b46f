"""`/readyz`: whether this process can serve writes right now, for a load balancer.

`/healthz` is liveness: 200 while the process serves (restarting it would not bring
a store back). `/readyz` answers 200 {"status": "ready"} only when the app store
takes a write right now: a short-lived probe key is written and deleted (on Redis
Cluster, one on every master). Otherwise 503 with the reason, within READY_TIMEOUT
seconds: "unreachable", "read-only", "out of memory", "moved", "disk full" or
"not writable".
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.errors import BackendUnavailable

log = logging.getLogger(__name__)

READY_TIMEOUT = 3.0
_HEADERS = {"Cache-Control": "no-store"}
_abandoned: set[asyncio.Task[str | None]] = set()


async def reason_not_ready(store: AppStore, backend: SecretBackend) -> str | None:
    """Why the store takes no writes right now, or None. Answers within
    READY_TIMEOUT even when the store hangs: a probe that overruns is cancelled and
    left to clean up (closing a connection to a frozen server takes its own time)."""
    probe = asyncio.create_task(_probe(store, backend))
    done, _ = await asyncio.wait({probe}, timeout=READY_TIMEOUT - 0.5)
    if probe in done:
        return probe.result()
    probe.cancel()
    _abandoned.add(probe)
    probe.add_done_callback(_abandoned.discard)
    return "unreachable"


async def _probe(store: AppStore, backend: SecretBackend) -> str | None:
    """The app store must take a write (it keeps the secrets, or with Onetime
    Secret the replay guard and the receipts Slack watches); a backend that keeps
    secrets elsewhere must answer too."""
    reason = await store.storage.readiness()
    if reason is not None or backend.capabilities.serves_links:
        return reason
    try:
        await backend.status()
    except BackendUnavailable:
        return "unreachable"
    return None


async def readyz(request: Request) -> JSONResponse:
    reason = await reason_not_ready(request.app.state.store, request.app.state.backend)
    if reason is None:
        return JSONResponse({"status": "ready"}, headers=_HEADERS)
    return JSONResponse(
        {"status": "not ready", "reason": reason}, status_code=503, headers=_HEADERS
    )


async def report_store_configuration(store: AppStore) -> None:
    """At start, a WARNING for each Redis setting that can lose secrets (eviction,
    no persistence), as far as the server lets its configuration be read."""
    warnings = getattr(store.storage, "server_warnings", None)
    if warnings is None:
        return
    for text in await warnings():
        log.warning("%s", text)
