"""What an operator sees of each request: its id, its metrics, and `/metrics`.

`RequestContext` is the outermost ASGI layer (outside Starlette's own error
handler, so even a 500 gets it):

- The request id is the client's `X-Request-ID` when it is a short token of
  safe characters (a load balancer's or a client's), else a new random one. It
  is echoed on every response and set in `bot.logs.REQUEST_ID`, so each line
  logged while serving the request (by the app, a library, uvicorn) carries it.
- The request is counted and timed by route template (`/secret/{secret_key}`),
  never by path: paths carry secret keys.

`/metrics` is served only when `METRICS_TOKEN` is set (otherwise the path is an
ordinary 404), and only to `Authorization: Bearer <METRICS_TOKEN>` (401 else).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route

from bot import metrics
from bot.logs import REQUEST_ID

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = "X-Request-ID"
# Short and plain: it is written into every log line of the request.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
NO_RESPONSE = "499"  # the client went away before an answer (nginx's code for it)
METRICS_PATH = "/metrics"


def request_id(scope: Scope) -> str:
    """The client's id if it is acceptable, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = bytes(value).decode("latin-1")
            if _VALID_ID.fullmatch(given):
                return given
            break
    return os.urandom(16).hex()  # uuid4's randomness, without building a UUID


def route_template(routes: Sequence[BaseRoute], scope: Scope, prefix: str = "") -> str:
    """The path pattern of the route that serves `scope`, e.g. `/api/v1/secret/{key}`.

    Chosen as Starlette's router chooses: the first full match, else the first
    route that matches all but the method (which answers 405).
    """
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child}, prefix + route.path)
            template = inner if inner != UNMATCHED else prefix + route.path + "/*"
        elif isinstance(route, Route):
            template = prefix + route.path
        else:
            template = UNMATCHED
        if match == Match.FULL:
            return template
        partial = partial or template
    return partial or UNMATCHED


def templates_by_endpoint(
    routes: Sequence[BaseRoute], prefix: str = ""
) -> dict[int, str | None]:
    """id(endpoint) -> its route's template, as Starlette's router leaves the endpoint
    in the scope (`scope["endpoint"]`; a mount's inner app when nothing inside
    matched). None for an endpoint behind two templates: it cannot tell which."""
    found: dict[int, str | None] = {}

    def add(endpoint: object, template: str) -> None:
        key = id(endpoint)
        found[key] = template if found.get(key, template) == template else None

    for route in routes:
        if isinstance(route, Mount):
            add(route.app, prefix + route.path + "/*")
            for key, template in templates_by_endpoint(route.routes, prefix + route.path).items():
                found[key] = template if found.get(key, template) == template else None
        elif isinstance(route, Route):
            add(route.endpoint, prefix + route.path)
    return found


class RequestContext:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        # Templates are read off the endpoint the router chose (looked up once per
        # endpoint here), not by matching every route a second time per request.
        self._templates = templates_by_endpoint(routes)
        # The metrics' children per label set, looked up once each: routes are
        # templates and methods a fixed set, so this stays small.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def _count(self, route: str, method: str, status: str, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._counters[(route, method, status)] = metrics.HTTP_REQUESTS.labels(
                route=route, method=method, status=status
            )
        timer = self._timers.get((route, method))
        if timer is None:
            timer = self._timers[(route, method)] = metrics.HTTP_LATENCY.labels(
                route=route, method=method
            )
        counter.inc()
        timer.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        # Not reset afterwards: uvicorn serves each request in a task of its own
        # (its own copy of the context), and its "Exception in ASGI application"
        # line, logged after this returns, should carry the id too.
        REQUEST_ID.set(rid)
        method = scope.get("method", "")
        method = method if method in _METHODS else "other"
        status = NO_RESPONSE
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._count(self._route(scope), method, status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The template of the route that served `scope` (the router has set its
        endpoint in the scope by now); matched again only when that cannot tell."""
        endpoint = scope.get("endpoint")
        template = None if endpoint is None else self._templates.get(id(endpoint))
        return template or route_template(self.routes, scope)


class ObservedStarlette(Starlette):
    """Starlette with `RequestContext` outside everything, its error handler included."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContext(super().build_middleware_stack(), self.router.routes)


def metrics_route(token: str) -> Route:
    expected = token.encode()

    async def serve_metrics(request: Request) -> Response:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected
        ):
            return PlainTextResponse(
                "A valid METRICS_TOKEN is required as a Bearer token.",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        # With several workers this reads every worker's files: off the event loop.
        body = await asyncio.to_thread(metrics.render)
        return Response(
            body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"}
        )

    return Route(METRICS_PATH, serve_metrics, methods=["GET"])
