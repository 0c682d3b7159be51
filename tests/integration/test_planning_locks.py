"""A run planning digests never blocks the scheduler firing the same search.

A run's transaction locks its search while it plans digests, then records the outcome on
the search's schedule; the scheduler locks due schedules, then inserts their runs, whose
foreign key checks take a key-share lock on the search. A planning lock that conflicts
with key-share locks made the two wait on each other (PostgreSQL's deadlock detector
then aborted one; seen every minute in ``bench.scale`` with searches firing every
minute).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.session import unit_of_work
from core.delivery.digests import plan_and_create
from core.scheduling.fire import fire_due_schedules
from tests.support.factories import due_schedule

pytestmark = pytest.mark.postgres


def test_planning_a_search_lets_the_scheduler_fire_its_schedule(pg_engine: Engine) -> None:
    with unit_of_work(pg_engine) as session:
        schedule = due_schedule(session, "locks")
        organization_id, news_id = schedule.organizationId, schedule.newsId

    with Session(pg_engine) as run, Session(pg_engine) as scheduler:
        plan_and_create(run, organization_id, news_id, now=utcnow())  # holds the search's lock
        scheduler.execute(text("SET LOCAL lock_timeout = '2s'"))
        # Blocked (lock timeout) while planning locked the search against key-share locks.
        run_ids, claimed = fire_due_schedules(scheduler)
        scheduler.commit()
        run.commit()

    assert claimed == 1 and len(run_ids) == 1
