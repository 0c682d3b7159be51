"""The FastAPI application factory: one router per resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import dramatiq
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from api.errors import install_error_handlers
from api.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    PathHeadersMiddleware,
    RequestIdMiddleware,
    ServerErrorMiddleware,
)
from api.routes import (
    audit_log,
    channels,
    dead_letters,
    deliveries,
    digest_links,
    docs,
    health,
    invitations,
    keys,
    members,
    metrics,
    news,
    news_channels,
    operator,
    operator_deliveries,
    operator_usage,
    opml,
    ops,
    org_health,
    runs,
    schedules,
    search_feeds,
    slack_interactions,
    stories,
    suggestions,
    teams,
    usage,
)
from api.schemas import openapi_input_rules, refuse_bad_parameters
from core.clock import utcnow
from core.config import Settings
from core.usage.meter import MeterFlusher, RequestMeter


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving: write the API request counts of this process into ``usage`` every
    ``NEWSMON_USAGE_FLUSH_SECONDS``, and what is left when it stops."""
    flusher = MeterFlusher(
        app.state.usage_meter,
        app.state.engine,
        app.state.settings.usage_flush_seconds,
        clock=app.state.clock,
    )
    flusher.start()
    try:
        yield
    finally:
        flusher.stop()


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    broker: dramatiq.Broker | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """Build the web application for ``settings`` against ``engine``.

    ``broker`` is where "run now" enqueues (built from ``settings`` on first use when
    None; embedded mode passes its in-process one); ``clock`` drives key quotas and rate
    limits (tests pass a fake).
    """
    app = FastAPI(
        title="newsmon",
        version="0.1.0",
        description="Admin and tenant API of newsmon, the news-monitoring worker system.",
        dependencies=[Depends(refuse_bad_parameters)],
        openapi_url=None,  # served by api.routes.docs, with local Swagger UI assets
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.broker = broker
    app.state.clock = clock
    app.state.usage_meter = RequestMeter()
    app.state.metrics_registry = CollectorRegistry()
    app.state.docs_page = docs.docs_page(app.title)
    install_error_handlers(app)
    app.add_middleware(ServerErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(PathHeadersMiddleware, prefix="/ops", headers=ops.SECURITY_HEADERS)
    app.add_middleware(
        PathHeadersMiddleware,
        prefix=docs.DOCS_URL,
        headers=docs.security_headers(app.state.docs_page),
    )
    app.add_middleware(MetricsMiddleware, registry=app.state.metrics_registry)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    app.include_router(news.router)
    app.include_router(suggestions.router)
    app.include_router(search_feeds.router)
    app.include_router(opml.router)
    app.include_router(schedules.router)
    app.include_router(stories.router)
    app.include_router(runs.router)
    app.include_router(channels.router)
    app.include_router(org_health.router)
    app.include_router(news_channels.router)
    app.include_router(deliveries.router)
    app.include_router(members.router)
    app.include_router(invitations.router)
    app.include_router(teams.router)
    app.include_router(keys.router)
    app.include_router(audit_log.router)
    app.include_router(usage.router)
    app.include_router(operator.router)
    app.include_router(operator_usage.router)
    app.include_router(dead_letters.router)
    app.include_router(operator_deliveries.router)
    app.mount("/ops/static", ops.static_files, name="ops-static")
    app.include_router(ops.router)
    app.include_router(digest_links.router)
    app.include_router(slack_interactions.router)
    _document_input_rules(app)
    return app


def _document_input_rules(app: FastAPI) -> None:
    """Write the rules every input follows (no NUL in any string) into the OpenAPI
    document, so that it describes exactly what the API accepts."""
    generate = app.openapi
    written: list[dict[str, Any]] = []  # the document the rules were last written into

    def openapi() -> dict[str, Any]:
        document = generate()  # cached by FastAPI until the routes change
        if not written or written[0] is not document:
            openapi_input_rules(document)
            written[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
