"""Checking a presented key against the database: validity, quota and rate limit at once.

:func:`use_api_key` is one conditional ``UPDATE apikeys ... RETURNING`` keyed by the key's
hash: it matches only an enabled, unexpired key of an active organization with quota left
(after a due refill) and room in its rate-limit window, and in the same statement refills,
decrements ``remaining``, counts the request and stamps ``lastRequest``. The database's row
lock makes it atomic, so N concurrent requests against ``remaining = k`` let exactly
``min(N, k)`` through on PostgreSQL (READ COMMITTED re-checks the WHERE after the lock) and
SQLite (one writer at a time). Only a refused request pays a second query
(:func:`explain_refusal`), to tell 401 from 429 and compute ``Retry-After``.

The fields mean what Better Auth's api-key plugin means by them:

- ``remaining`` NULL = unlimited; when ``refillInterval`` ms have passed since
  ``lastRefillAt`` (or ``createdAt``), it is reset to ``refillAmount`` (not added to) and
  ``lastRefillAt`` set to now, then this request is taken from it.
- rate limit: ``requestCount`` counts accepted requests since the window opened; a request
  more than ``rateLimitTimeWindow`` ms after ``lastRequest`` (the last accepted one) opens a
  new window with ``requestCount = 1``; at ``rateLimitMax`` requests are refused until then.
  Refused requests write nothing.

Times are compared as epoch milliseconds, computed per dialect (:class:`epoch_ms`), with
``now`` passed in, so tests drive the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from core.db.base import UTCDateTime
from core.db.models import ApiKey, OperatorKey, Organization
from core.keys import Permissions, hashes_equal, parse_permissions

__all__ = [
    "KeyRefusal",
    "KeyUse",
    "OperatorUse",
    "epoch_ms",
    "explain_refusal",
    "use_api_key",
    "use_operator_key",
]


class epoch_ms(FunctionElement[float]):  # noqa: N801 (reads as the SQL function it renders)
    """Whole milliseconds since 1970 of a timestamp column, on PostgreSQL and SQLite."""

    type = Float()
    inherit_cache = True
    name = "epoch_ms"


@compiles(epoch_ms, "postgresql")
def _epoch_ms_pg(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ROUND(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000)"


@compiles(epoch_ms, "sqlite")
def _epoch_ms_sqlite(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores naive UTC text; julianday() reads it; 2440587.5 is 1970-01-01. Its
    # floating point carries microsecond noise, so both dialects round to whole ms.
    return f"ROUND((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400000.0)"


@dataclass(frozen=True)
class KeyUse:
    """An accepted organization key after this request was counted."""

    key_id: str
    organization_id: str
    permissions: Permissions
    remaining: int | None
    rate_limit_max: int | None
    rate_limit_window_ms: int | None
    request_count: int

    @property
    def rate_limited(self) -> bool:
        return self.rate_limit_max is not None and self.rate_limit_window_ms is not None


@dataclass(frozen=True)
class KeyRefusal:
    """Why a key was refused: ``invalid`` (401: unknown, disabled, expired, inactive
    organization, all alike), ``quota`` or ``rate`` (429, retry after ``retry_after_s``;
    a ``quota`` without it never refills)."""

    reason: str
    retry_after_s: int | None = None
    rate_limit_max: int | None = None


def _ms(now: datetime) -> int:
    return round(now.timestamp() * 1000)


def _conditions(now: datetime) -> dict[str, Any]:
    now_ms = _ms(now)
    refill_due = and_(
        ApiKey.refillInterval.is_not(None),
        ApiKey.refillAmount.is_not(None),
        epoch_ms(func.coalesce(ApiKey.lastRefillAt, ApiKey.createdAt)) + ApiKey.refillInterval
        <= now_ms,
    )
    rate_limit_on = and_(
        ApiKey.rateLimitEnabled,
        ApiKey.rateLimitMax.is_not(None),
        ApiKey.rateLimitTimeWindow.is_not(None),
    )
    # Without a window, requestCount simply counts every accepted request.
    window_over = and_(
        ApiKey.rateLimitTimeWindow.is_not(None),
        or_(
            ApiKey.lastRequest.is_(None),
            epoch_ms(ApiKey.lastRequest) + ApiKey.rateLimitTimeWindow <= now_ms,
        ),
    )
    valid = and_(
        ApiKey.enabled,
        or_(ApiKey.expiresAt.is_(None), ApiKey.expiresAt > literal(now, UTCDateTime())),
        exists().where(Organization.id == ApiKey.organizationId, Organization.isActive),
    )
    quota_left = or_(
        ApiKey.remaining.is_(None),
        ApiKey.remaining > 0,
        and_(refill_due, ApiKey.refillAmount > 0),
    )
    rate_room = or_(not_(rate_limit_on), window_over, ApiKey.requestCount < ApiKey.rateLimitMax)
    return {
        "refill_due": refill_due,
        "window_over": window_over,
        "valid": valid,
        "quota_left": quota_left,
        "rate_room": rate_room,
    }


def use_api_key(conn: Connection, key_hash: str, *, now: datetime) -> KeyUse | None:
    """Count one request against the key with ``key_hash``; None when it is refused.

    One statement: the caller runs it in autocommit so it costs one round trip.
    """
    c = _conditions(now)
    now_param = literal(now, UTCDateTime())
    stmt = (
        update(ApiKey)
        .where(ApiKey.key == key_hash, c["valid"], c["quota_left"], c["rate_room"])
        .values(
            remaining=case(
                (ApiKey.remaining.is_(None), None),
                (c["refill_due"], ApiKey.refillAmount - 1),
                else_=ApiKey.remaining - 1,
            ),
            lastRefillAt=case((c["refill_due"], now_param), else_=ApiKey.lastRefillAt),
            requestCount=case((c["window_over"], 1), else_=ApiKey.requestCount + 1),
            lastRequest=now_param,
            updatedAt=now_param,
        )
        .returning(
            ApiKey.id,
            ApiKey.organizationId,
            ApiKey.permissions,
            ApiKey.remaining,
            ApiKey.rateLimitEnabled,
            ApiKey.rateLimitMax,
            ApiKey.rateLimitTimeWindow,
            ApiKey.requestCount,
            ApiKey.key,
        )
    )
    row = conn.execute(stmt).one_or_none()
    if row is None or not hashes_equal(row.key, key_hash):
        return None
    limited = row.rateLimitEnabled and row.rateLimitMax is not None
    return KeyUse(
        key_id=row.id,
        organization_id=row.organizationId,
        permissions=parse_permissions(row.permissions),
        remaining=row.remaining,
        rate_limit_max=row.rateLimitMax if limited else None,
        rate_limit_window_ms=row.rateLimitTimeWindow if limited else None,
        request_count=row.requestCount,
    )


def explain_refusal(conn: Connection, key_hash: str, *, now: datetime) -> KeyRefusal:
    """After :func:`use_api_key` refused: say why, reading the row (never writing it)."""
    c = _conditions(now)
    row = conn.execute(
        select(
            ApiKey.key,
            c["valid"].label("valid"),
            c["quota_left"].label("quota_left"),
            c["rate_room"].label("rate_room"),
            ApiKey.refillInterval,
            ApiKey.refillAmount,
            ApiKey.rateLimitMax,
            ApiKey.rateLimitTimeWindow,
            epoch_ms(func.coalesce(ApiKey.lastRefillAt, ApiKey.createdAt)).label("refilled_ms"),
            epoch_ms(ApiKey.lastRequest).label("last_request_ms"),
        ).where(ApiKey.key == key_hash)
    ).one_or_none()
    if row is None or not hashes_equal(row.key, key_hash) or not row.valid:
        return KeyRefusal("invalid")
    now_ms = _ms(now)
    if not row.rate_room:
        wait_ms = row.last_request_ms + row.rateLimitTimeWindow - now_ms
        return KeyRefusal("rate", _seconds(wait_ms), row.rateLimitMax)
    if not row.quota_left:
        retry = None  # no refill (or a refill of nothing): exhausted for good
        if row.refillInterval is not None and (row.refillAmount or 0) > 0:
            retry = _seconds(row.refilled_ms + row.refillInterval - now_ms)
        return KeyRefusal("quota", retry)
    # Limits freed up between the two statements (a window ended): ask to retry at once.
    return KeyRefusal("rate", 0, row.rateLimitMax)


def _seconds(ms: float) -> int:
    # Round to whole ms first: julianday() arithmetic carries microsecond noise.
    return max(1, math.ceil(round(ms) / 1000))


@dataclass(frozen=True)
class OperatorUse:
    key_id: str
    name: str


def use_operator_key(conn: Connection, key_hash: str, *, now: datetime) -> OperatorUse | None:
    """Accept an enabled, unexpired operator key and stamp ``lastRequest`` (one statement)."""
    now_param = literal(now, UTCDateTime())
    row = conn.execute(
        update(OperatorKey)
        .where(
            OperatorKey.key == key_hash,
            OperatorKey.enabled,
            or_(OperatorKey.expiresAt.is_(None), OperatorKey.expiresAt > now_param),
        )
        .values(lastRequest=now_param)
        .returning(OperatorKey.id, OperatorKey.name, OperatorKey.key)
    ).one_or_none()
    if row is None or not hashes_equal(row.key, key_hash):
        return None
    return OperatorUse(key_id=row.id, name=row.name)
