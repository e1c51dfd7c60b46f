"""The floor of our stack: the least an OTS-shaped server on it can do per cycle.

    REDIS_URL=redis://127.0.0.1:6379 python -m uvicorn bench.floor:app --no-access-log

Starlette on uvicorn, redis-py's asyncio client with the same connection pool
as `RedisStorage.from_url`, installed from the same environment as our app, so
that `bench/run.py` compares our code with it and not one stack with another.
`POST /api/v1/share` reads the urlencoded form, makes a random key and stores
the value with one `SET … EX`; `POST /api/v1/secret/{key}` takes it with one
`GETDEL`. The answers have the JSON shapes of ours (the v1 receipt, then
`{"value", "secret_key"}`). No encryption, no receipt, no rate limit, no
checks beyond what a request needs to be answered: this is a yardstick for
bench/run.py, never a server to deploy (the value is kept in the clear).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.backends.storage.redis_storage import RedisStorage

_PREFIX = "floor:"
_UNKNOWN = {"message": "Unknown secret"}


def _client() -> aioredis.Redis:
    # The same pool, timeouts and retry policy as our storage: the same driver.
    storage = RedisStorage.from_url(os.environ["REDIS_URL"])
    client: aioredis.Redis = storage._redis
    return client


async def share(request: Request) -> JSONResponse:
    form = await request.form()
    value = str(form.get("secret") or "")
    ttl = int(str(form.get("ttl") or 3600))
    key = secrets.token_hex(16)
    await request.app.state.redis.set(_PREFIX + key, value, ex=ttl)
    now = int(time.time())
    return JSONResponse({
        "custid": "anon", "metadata_key": secrets.token_hex(16), "secret_key": key,
        "ttl": ttl, "metadata_ttl": 2 * ttl, "secret_ttl": ttl, "state": "new",
        "updated": now, "created": now, "recipient": [], "passphrase_required": False,
    })


async def reveal(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = await request.app.state.redis.getdel(_PREFIX + key)
    if value is None:
        return JSONResponse({**_UNKNOWN, "secret_key": key}, status_code=404)
    return JSONResponse({"value": value.decode(), "secret_key": key})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.redis = _client()
    try:
        yield
    finally:
        await app.state.redis.aclose()


app = Starlette(
    routes=[
        Route("/api/v1/share", share, methods=["POST"]),
        Route("/api/v1/secret/{key}", reveal, methods=["POST"]),
    ],
    lifespan=lifespan,
)
