"""Liveness and readiness: ``/healthz`` (process up), ``/readyz`` (database and broker)."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from core.db.session import check_connection
from core.errors import DatabaseUnavailable

router = APIRouter(tags=["service"])

#: Seconds the readiness probe waits for Redis.
BROKER_PING_TIMEOUT_S = 2.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and (in production) the Redis broker answers."""
    checks: dict[str, Any] = {}
    try:
        check_connection(request.app.state.engine)
        checks["database"] = "ok"
    except DatabaseUnavailable as exc:
        checks["database"] = str(exc)
    broker_url = request.app.state.settings.broker_url
    if broker_url:
        try:
            client = redis.Redis.from_url(
                broker_url,
                socket_timeout=BROKER_PING_TIMEOUT_S,
                socket_connect_timeout=BROKER_PING_TIMEOUT_S,
            )
            client.ping()
            client.close()
            checks["broker"] = "ok"
        except redis.RedisError as exc:
            checks["broker"] = f"NEWSMON_BROKER_URL: {exc}"
    else:
        checks["broker"] = "ok (in-process)"
    ready = all(str(v).startswith("ok") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
