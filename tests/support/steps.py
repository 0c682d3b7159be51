"""Run steps for pipeline tests: each execution leaves a row, so tests can count them.

Importable by worker processes too (``NEWSMON_TEST_RUN_STEP=tests.support.steps:...``).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.db.models import AuditLog
from core.db.session import unit_of_work
from core.errors import ValidationError
from core.scheduling.runs import ClaimedRun

#: ``action`` of the audit row a test step writes.
STEP_ACTION = "test.step"
#: Seconds the blocking step sleeps between checks (it never finishes its first attempt).
BLOCK_POLL_S = 0.1


def record_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Succeeds, writing one audit row in the run's transaction."""
    session.add(
        AuditLog(
            organizationId=run.organization_id,
            actorType="system",
            action=STEP_ACTION,
            targetType="run",
            targetId=run.id,
            details={"attempt": run.attempt},
        )
    )
    return {"attempt": run.attempt}


def flaky_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """A transient failure on the first attempt, success after."""
    if run.attempt == 1:
        raise ConnectionError("feed host reset the connection")
    return record_step(session, run, now)


def broken_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """A permanent failure (bad data): never worth a retry."""
    raise ValidationError("query does not parse", field="searchQuery")


def down_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Always a transient failure: the run must stop after its attempts."""
    raise TimeoutError("feed host did not answer")


def blocking_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Hangs on the first attempt (its worker gets killed); later attempts succeed."""
    while run.attempt == 1:
        time.sleep(BLOCK_POLL_S)
    return record_step(session, run, now)


def executions(engine: Engine, run_id: str | None = None) -> int:
    """Committed executions of the test steps (of one run, or all)."""
    query = select(func.count()).select_from(AuditLog).where(AuditLog.action == STEP_ACTION)
    if run_id is not None:
        query = query.where(AuditLog.targetId == run_id)
    with unit_of_work(engine) as session:
        return session.scalar(query) or 0


#: Seconds the slow step takes (long enough to send a signal while it runs).
SLOW_STEP_S = 1.5


def slow_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Succeeds after ``SLOW_STEP_S``: in flight when a test stops its worker."""
    time.sleep(SLOW_STEP_S)
    return record_step(session, run, now)


#: Seconds the long step takes: several leases of the process tests' short lease.
LONG_STEP_S = 6.0


def long_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Succeeds after ``LONG_STEP_S``: a slow but live run, whose lease must be renewed."""
    time.sleep(LONG_STEP_S)
    return record_step(session, run, now)
