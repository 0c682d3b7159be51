"""The scheduler's transaction: claim due schedules, insert their runs, advance them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.bulk import insert_ignoring_conflicts
from core.db.models import News, Organization, Run, Schedule
from core.errors import ValidationError
from core.ids import new_id
from core.scheduling.plan import compiled, plan_fires

#: Schedules claimed per transaction; the loop repeats while batches come back full.
FIRE_BATCH_SIZE = 500


def database_now(session: Session) -> datetime:
    """The database's clock (one clock for every replica); SQLite has one process anyway."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.scalar(select(func.now()))  # type: ignore[assignment]
        return value
    return utcnow()


def fire_due_schedules(
    session: Session, *, now: datetime, batch_size: int = FIRE_BATCH_SIZE
) -> tuple[list[str], int]:
    """Claim up to ``batch_size`` due schedules and create their runs, in the caller's
    transaction. Returns (new run ids, schedules claimed); commit before enqueueing.

    ``FOR UPDATE SKIP LOCKED`` lets any number of replicas tick at once: each due
    schedule is claimed by exactly one (ignored on SQLite, where one scheduler runs).
    """
    due = session.execute(
        select(
            Schedule.id,
            Schedule.organizationId,
            Schedule.newsId,
            Schedule.cronExpr,
            Schedule.timezone,
            Schedule.catchUp,
            Schedule.nextRun,
        )
        .join(News, (News.organizationId == Schedule.organizationId) & (News.id == Schedule.newsId))
        .join(Organization, Organization.id == Schedule.organizationId)
        .where(Schedule.isActive, News.isActive, Organization.isActive, Schedule.nextRun <= now)
        .order_by(Schedule.nextRun)
        .limit(batch_size)
        .with_for_update(of=Schedule, skip_locked=True)
    ).all()
    rows: list[dict[str, Any]] = []
    advances: list[dict[str, Any]] = []
    parked: list[dict[str, Any]] = []
    for sched in due:
        try:
            plan = plan_fires(
                compiled(sched.cronExpr, sched.timezone), sched.nextRun, sched.catchUp, now
            )
        except ValidationError as exc:
            # A schedule whose cron or zone stopped validating (e.g. zone removed from
            # tzdata) is parked and reported instead of failing every tick.
            parked.append(
                {
                    "id": sched.id,
                    "nextRun": None,
                    "isActive": False,
                    "lastFailure": now,
                    "errorDetails": {"error": str(exc)},
                }
            )
            continue
        advances.append({"id": sched.id, "nextRun": plan.next_run})
        rows.extend(
            {
                "id": new_id(),
                "organizationId": sched.organizationId,
                "newsId": sched.newsId,
                "scheduleId": sched.id,
                "trigger": p.trigger,
                "scheduledFor": p.scheduled_for,
                "state": "queued",
                "attempts": 0,
                "createdAt": now,
                "updatedAt": now,
            }
            for p in plan.runs
        )
    run_ids = insert_ignoring_conflicts(session, Run, rows, ["scheduleId", "scheduledFor"])
    # Bulk UPDATE by primary key: one executemany per batch, not a statement per row.
    for changes in (advances, parked):
        if changes:
            session.execute(update(Schedule), changes)
    return run_ids, len(due)
