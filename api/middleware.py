"""ASGI middleware of the API: request ids, unexpected errors, the request body limit,
request metrics, headers by path (the operator page's security headers).

Pure ASGI (no ``BaseHTTPMiddleware``), so streaming and background work are untouched and
the cost per request is a few dictionary operations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response, internal_error
from core.ids import new_id

#: Largest request body accepted (bytes); searches and settings are small JSON documents.
MAX_BODY_BYTES = 256 * 1024
#: Header carrying the request id (echoed back; generated when absent or unusable).
REQUEST_ID_HEADER = "x-request-id"
#: A client's request id is kept only when it looks like an id (no log injection).
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class _HttpMiddleware:
    """Base of the middleware here: other scopes (lifespan) pass through untouched, HTTP
    requests go to :meth:`handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(_HttpMiddleware):
    """Put a request id on ``request.state.request_id`` and the ``x-request-id`` header."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = ""
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER.encode():
                given = value.decode("latin-1")
                break
        request_id = given if _REQUEST_ID_RE.fullmatch(given) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


class ServerErrorMiddleware(_HttpMiddleware):
    """Answer an exception no handler took with the JSON 500, and keep the connection.

    Starlette's own last-resort handler answers and then re-raises, so the server logs the
    traceback a second time and closes a keep-alive connection; it also sits outside
    every other middleware, so its 500 had no ``x-request-id``. This one sits inside
    :class:`RequestIdMiddleware` and re-raises only when the response had already started
    (nothing valid can be sent then: dropping the connection is all that is left).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except Exception as exc:
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id", "")
            await internal_error(request_id, exc)(scope, receive, send)


class BodyLimitMiddleware(_HttpMiddleware):
    """Refuse bodies over ``max_bytes`` with 413: by ``Content-Length`` before reading,
    and while reading for chunked bodies (the route then fails with the same 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    response = error_response(
                        413, f"request body larger than {self.max_bytes} bytes"
                    )
                    await response(scope, receive, send)
                    return
                break
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class MetricsMiddleware(_HttpMiddleware):
    """Count requests by route template, method and status; time them by route."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        super().__init__(app)
        self.requests = Counter(
            "newsmon_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "newsmon_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            registry=registry,
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.requests.labels(template, scope["method"], str(status)).inc()
            self.latency.labels(template).observe(time.perf_counter() - started)


class PathHeadersMiddleware:
    """Set ``headers`` on every response to ``prefix`` or a path below it, errors and
    static files included, replacing any of the same name the app set.

    Parameters:
      prefix: the path (``/ops``); ``/ops/static/x.css`` is below it, ``/opsx`` is not.
      headers: (name, value) pairs, names lower-case.
    """

    def __init__(self, app: ASGIApp, prefix: str, headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.names = {name.encode() for name, _ in headers}
        self.headers = [(name.encode(), value.encode()) for name, value in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in self.names
                ]
                message["headers"] = [*kept, *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
