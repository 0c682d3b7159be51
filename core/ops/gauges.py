"""What ``/metrics`` reads from the database, at a cost that does not grow with the tables.

Every count walks an index over a bounded set of rows: work in flight (queued and running
runs; pending, sending, failed and unknown deliveries), the shared sources (one row per
feed), and what finished in the last :data:`RECENT_WINDOW` (by ``finishedAt``, ``sentAt``
and ``foundAt``). Totals of finished runs, sent deliveries and stories are not counted at
all: they grow without bound (retention trims them) and say nothing an operator acts on;
their rate is the "last hour" gauges. On PostgreSQL the reads run under a short
``statement_timeout``, so a slow database makes the scrape skip them, never hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, literal, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.db.base import UTCDateTime
from core.db.models import (
    HEALTH_SUBJECT_KINDS,
    SOURCE_STATUSES,
    Delivery,
    HealthAlert,
    Run,
    Source,
    Story,
)
from core.ops.overview import Lag, scheduler_lag

#: Run states counted (in flight; finished runs are counted per RECENT_WINDOW).
RUN_GAUGE_STATES = ("queued", "running")
#: Delivery states counted (not yet sent; sent ones are counted per RECENT_WINDOW).
DELIVERY_GAUGE_STATES = ("pending", "sending", "failed", "unknown")
#: The window of the "recently finished" gauges.
RECENT_WINDOW = timedelta(hours=1)
#: Milliseconds the gauge queries may take on PostgreSQL before the scrape gives up on them.
GAUGE_STATEMENT_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class DatabaseGauges:
    """One scrape's view of the database."""

    runs: dict[str, int]
    deliveries: dict[str, int]
    sources: dict[str, int]
    runs_finished_recently: dict[str, int]
    deliveries_sent_recently: int
    stories_found_recently: int
    lag: Lag
    #: Subjects organizations' health alerts call failing, by kind (source, channel, news).
    health_failing: dict[str, int]
    #: Health changes found but not yet told to their organization (held by the hourly
    #: limit, or no alert channel took them).
    health_untold: int


def _by_state(
    conn: Connection, column: InstrumentedAttribute[str], states: tuple[str, ...]
) -> dict[str, int]:
    query = select(column, func.count()).where(column.in_(states)).group_by(column)
    counts = {state: count for state, count in conn.execute(query)}
    return {state: int(counts.get(state, 0)) for state in states}


def read_gauges(conn: Connection, *, now: datetime) -> DatabaseGauges:
    """Read every gauge in one short read-only transaction on ``conn``."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL statement_timeout = {GAUGE_STATEMENT_TIMEOUT_MS}"))
    since = literal(now - RECENT_WINDOW, UTCDateTime())
    finished = dict(
        conn.execute(
            select(Run.state, func.count()).where(Run.finishedAt >= since).group_by(Run.state)
        ).all()
    )
    sent = conn.scalar(select(func.count()).where(Delivery.sentAt >= since)) or 0
    found = conn.scalar(select(func.count()).where(Story.foundAt >= since)) or 0
    with Session(bind=conn) as session:
        lag = scheduler_lag(session, now=now)
    failing = dict(
        conn.execute(
            select(HealthAlert.subjectKind, func.count())
            .where(HealthAlert.state == "failing")
            .group_by(HealthAlert.subjectKind)
        ).all()
    )
    untold = conn.scalar(
        select(func.count()).where(
            HealthAlert.state != func.coalesce(HealthAlert.notifiedState, "ok")
        )
    )
    return DatabaseGauges(
        runs=_by_state(conn, Run.state, RUN_GAUGE_STATES),
        deliveries=_by_state(conn, Delivery.state, DELIVERY_GAUGE_STATES),
        sources=_by_state(conn, Source.status, SOURCE_STATUSES),
        runs_finished_recently={s: int(finished.get(s, 0)) for s in ("succeeded", "failed")},
        deliveries_sent_recently=int(sent),
        stories_found_recently=int(found),
        lag=lag,
        health_failing={kind: int(failing.get(kind, 0)) for kind in HEALTH_SUBJECT_KINDS},
        health_untold=int(untold or 0),
    )
