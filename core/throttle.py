"""Fixed-window counters in the database: at most ``limit`` hits per window and bucket,
shared by every process on that database (web replicas, embedded mode alike).

A hit is one statement, ``INSERT ... ON CONFLICT (bucket) DO UPDATE ... WHERE ...
RETURNING``: the conflicting row's lock makes it exact under concurrency (PostgreSQL
re-checks the update's WHERE on the locked, latest row version; SQLite has one writer at
a time), and a refused hit writes nothing. Windows are aligned to the epoch, so every
process agrees on them without talking; a process whose clock lags behind the stored
window counts into that window instead of resetting it. The price of one row per bucket:
around a window's edge up to twice ``limit`` hits can fall within one window's length,
which is fine for "a few per minute". Buckets are free-form (``run-now:<organizationId>``,
later a host for politeness); an ``organization_id`` makes the row go with its tenant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from core.db.models import ThrottleWindow

__all__ = ["Admission", "hit", "window_start"]


@dataclass(frozen=True)
class Admission:
    """The outcome of one hit: ``allowed``, or refused until ``retry_after_s`` from now."""

    allowed: bool
    retry_after_s: int


def window_start(now: datetime, window_s: int) -> datetime:
    """Start of the epoch-aligned window of ``window_s`` seconds holding ``now``."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % window_s, UTC)


def hit(
    conn: Connection,
    bucket: str,
    *,
    limit: int,
    window_s: int,
    now: datetime,
    organization_id: str | None = None,
) -> Admission:
    """Count one hit on ``bucket`` unless it already has ``limit`` in this window."""
    table = ThrottleWindow.__table__
    start = window_start(now, window_s)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(
        bucket=bucket,
        organizationId=organization_id,
        windowStart=start,
        hits=1,
        createdAt=now,
        updatedAt=now,
    )
    newer = stmt.excluded.windowStart > table.c.windowStart
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.bucket],
        set_={
            "hits": case((newer, 1), else_=table.c.hits + 1),
            "windowStart": case((newer, stmt.excluded.windowStart), else_=table.c.windowStart),
            "updatedAt": stmt.excluded.updatedAt,
        },
        where=or_(newer, table.c.hits < limit),
    ).returning(table.c.hits)
    counted = conn.execute(stmt).one_or_none()
    retry = max(1, math.ceil(start.timestamp() + window_s - now.timestamp()))
    return Admission(allowed=counted is not None, retry_after_s=retry)
