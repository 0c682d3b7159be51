"""Counting usage as it happens: one upsert into ``usage`` per counted event or batch.

Why counters and not counts of existing rows: retention prunes stories (a year),
deliveries (90 days) and runs, and a month's usage must not shrink when they go; fetches
and API requests leave no row at all; and reading a month stays one primary-key read per
organization however much it did. Each count is an ``INSERT ... ON CONFLICT (organizationId,
month) DO UPDATE`` adding to the row, built once per dialect with bound parameters (see
:mod:`core.db.statements`), and runs inside the transaction of what it counts, so a
rolled-back run or a fenced-out record counts nothing. It is placed last in those
transactions: the row of an organization is shared by its concurrent runs, deliveries
and fetches, and its lock is then held only until the commit that follows.

Who a fetch is counted for: a source is shared, fetched once for every search that
follows it. Each fetch (an HTTP request made: new content, not modified or failed; not a
refresh deferred before any request) counts **one fetch for every organization** with an
active search following the source at that moment: each of them asked for it, and none
can see the others. Summed over organizations, fetches may thus exceed the requests made.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, Table, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from core.db.base import UTCDateTime
from core.db.models import USAGE_COUNTERS, News, NewsSource, Organization, Usage
from core.usage.months import month_of

_USAGE: Table = Usage.__table__  # type: ignore[assignment]
_NOW = bindparam("now", type_=UTCDateTime())


def _dialect_insert(dialect: str) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if dialect == "postgresql" else sqlite.Insert


def _adding(stmt: postgresql.Insert | sqlite.Insert) -> Insert:
    """``stmt`` adding its counters to an existing row of the same organization and month."""
    return stmt.on_conflict_do_update(
        index_elements=[_USAGE.c.organizationId, _USAGE.c.month],
        set_={
            **{name: _USAGE.c[name] + stmt.excluded[name] for name in USAGE_COUNTERS},
            "updatedAt": stmt.excluded.updatedAt,
        },
    )


@cache
def _add_statement(dialect: str) -> Insert:
    stmt = _dialect_insert(dialect)(_USAGE).values(
        organizationId=bindparam("organization_id"),
        month=bindparam("month"),
        **{name: bindparam(name) for name in USAGE_COUNTERS},
        createdAt=_NOW,
        updatedAt=_NOW,
    )
    return _adding(stmt)


@cache
def _fetch_statement(dialect: str) -> Insert:
    followers: Select[*tuple[Any, ...]] = (
        select(
            News.organizationId,
            bindparam("month"),
            literal(1),
            literal(0),
            literal(0),
            literal(0),
            _NOW,
            _NOW,
        )
        .distinct()
        .join(NewsSource, NewsSource.newsId == News.id)
        .join(Organization, Organization.id == News.organizationId)
        .where(NewsSource.sourceId == bindparam("source_id"), News.isActive, Organization.isActive)
        # One lock order for every fetch: two fetches counting for overlapping sets of
        # organizations cannot deadlock on their usage rows.
        .order_by(News.organizationId)
    )
    stmt = _dialect_insert(dialect)(_USAGE).from_select(
        ["organizationId", "month", *USAGE_COUNTERS, "createdAt", "updatedAt"], followers
    )
    return _adding(stmt)


def count_sent_delivery(condition: ColumnElement[bool]) -> Insert:
    """PostgreSQL: one delivery sent by the organization ``organization_id`` in ``month``,
    counted only if ``condition`` holds (a CTE of the delivery's record statement, see
    :mod:`core.delivery.record`)."""
    one = {"deliveriesSent": 1}
    counted = select(
        bindparam("organization_id", type_=_USAGE.c.organizationId.type),
        bindparam("month", type_=_USAGE.c.month.type),
        *(literal(one.get(name, 0)) for name in USAGE_COUNTERS),
        _NOW,
        _NOW,
    ).where(condition)
    stmt = postgresql.insert(_USAGE).from_select(
        ["organizationId", "month", *USAGE_COUNTERS, "createdAt", "updatedAt"], counted
    )
    return _adding(stmt)


def count_sent_deliveries(organization_ids: Select[Any]) -> Insert:
    """PostgreSQL: deliveries sent in ``month``, one per row of ``organization_ids`` (a
    select of one column, an organization id per delivery: a CTE of a record of several
    deliveries), each organization's counted at once, in one lock order."""
    source = organization_ids.subquery("sent")
    org = source.c[0]
    counted = (
        select(
            org,
            bindparam("month", type_=_USAGE.c.month.type),
            *(func.count() if name == "deliveriesSent" else literal(0) for name in USAGE_COUNTERS),
            _NOW,
            _NOW,
        )
        .group_by(org)
        # Two records counting for overlapping organizations cannot deadlock.
        .order_by(org)
    )
    stmt = postgresql.insert(_USAGE).from_select(
        ["organizationId", "month", *USAGE_COUNTERS, "createdAt", "updatedAt"], counted
    )
    return _adding(stmt)


def add_usage(
    conn: Connection,
    organization_id: str,
    now: datetime,
    *,
    fetches: int = 0,
    stories_stored: int = 0,
    deliveries_sent: int = 0,
    api_requests: int = 0,
) -> None:
    """Add to the organization's counters of ``now``'s month."""
    conn.execute(
        _add_statement(conn.dialect.name),
        {
            "organization_id": organization_id,
            "month": month_of(now),
            "fetches": fetches,
            "storiesStored": stories_stored,
            "deliveriesSent": deliveries_sent,
            "apiRequests": api_requests,
            "now": now,
        },
    )


def add_api_requests(
    conn: Connection, counts: Iterable[tuple[str, str, int]], now: datetime
) -> None:
    """Add API request counts ``(organizationId, month, n)`` in one statement (executemany);
    each month is the one the requests were made in, whatever ``now`` is."""
    rows = [
        {
            "organization_id": organization_id,
            "month": month,
            "fetches": 0,
            "storiesStored": 0,
            "deliveriesSent": 0,
            "apiRequests": n,
            "now": now,
        }
        # Sorted: concurrent flushes of several web processes lock rows in one order.
        for organization_id, month, n in sorted(counts)
    ]
    if rows:
        conn.execute(_add_statement(conn.dialect.name), rows)


def count_fetch(conn: Connection, source_id: str, now: datetime) -> None:
    """Count one fetch of ``source_id`` for every organization with an active search
    following it (see the module docstring)."""
    conn.execute(
        _fetch_statement(conn.dialect.name),
        {"source_id": source_id, "month": month_of(now), "now": now},
    )
