"""The database throttle (core/throttle.py): exact under concurrency on PostgreSQL and
SQLite, fixed epoch-aligned windows, a lagging clock never resets a window."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from core.db.models import Organization, ThrottleWindow
from core.db.session import unit_of_work
from core.throttle import Admission, hit, window_start
from tests.support import factories

#: 12:00:10 UTC: 50 s before the minute's window ends.
T0 = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC)


def hit_on(engine: Engine, now: datetime, bucket: str = "b", limit: int = 5) -> Admission:
    with engine.begin() as conn:
        return hit(conn, bucket, limit=limit, window_s=60, now=now)


def stored_hits(engine: Engine, bucket: str = "b") -> int | None:
    with engine.connect() as conn:
        return conn.scalar(select(ThrottleWindow.hits).where(ThrottleWindow.bucket == bucket))


def test_windows_are_aligned_to_the_epoch() -> None:
    assert window_start(T0, 60) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert window_start(T0, 3600) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert window_start(T0 + timedelta(seconds=50), 60) == datetime(2026, 12, 1, 12, 1, tzinfo=UTC)


def test_exactly_limit_hits_pass_under_concurrency(db_engine: Engine) -> None:
    start = threading.Barrier(20)

    def attempt(_: int) -> bool:
        start.wait()
        return hit_on(db_engine, T0).allowed

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count(True) == 5
    assert stored_hits(db_engine) == 5


def test_a_full_window_refuses_until_it_ends(db_engine: Engine) -> None:
    assert all(hit_on(db_engine, T0).allowed for _ in range(5))
    refused = hit_on(db_engine, T0 + timedelta(seconds=5))
    assert refused == Admission(allowed=False, retry_after_s=45)
    assert stored_hits(db_engine) == 5  # a refused hit writes nothing
    assert hit_on(db_engine, T0 + timedelta(seconds=50)).allowed  # the next minute
    assert stored_hits(db_engine) == 1


def test_a_lagging_clock_counts_into_the_newer_window(db_engine: Engine) -> None:
    later = T0 + timedelta(seconds=60)
    assert all(hit_on(db_engine, later).allowed for _ in range(5))
    assert not hit_on(db_engine, T0).allowed  # an earlier window never resets the count
    assert stored_hits(db_engine) == 5


def test_buckets_are_independent_and_go_with_their_organization(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        organization_id = factories.org(session, "gone").id
    with db_engine.begin() as conn:
        hit(conn, "x:gone", limit=1, window_s=60, now=T0, organization_id=organization_id)
    assert not hit_on(db_engine, T0, "x:gone", limit=1).allowed
    assert hit_on(db_engine, T0, "x:other", limit=1).allowed
    with db_engine.begin() as conn:
        conn.execute(delete(Organization).where(Organization.id == organization_id))
    assert stored_hits(db_engine, "x:gone") is None
