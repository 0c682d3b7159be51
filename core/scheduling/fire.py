"""The scheduler's transaction: claim due schedules, insert their runs, advance them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Table,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.bulk import insert_ignoring_conflicts
from core.db.models import News, Organization, Run, Schedule
from core.errors import ValidationError
from core.ids import new_id
from core.scheduling.plan import compiled, plan_fires

#: Schedules claimed per transaction; the loop repeats while batches come back full.
#: Measured on the 20,000-schedule burst (bench/scheduler.py, 3 replicas, 2 cores):
#: 500 and 1,000 were alike; smaller batches pay per-transaction round trips, larger
#: ones leave replicas idle while one holds most of the burst.
FIRE_BATCH_SIZE = 1000

#: PostgreSQL: the runs and the advanced ``nextRun`` of a batch in one statement, with
#: one array parameter per column. The generic executemany (insertmanyvalues) sends a
#: statement with 10 placeholders per row, which psycopg re-parses for every page: it
#: was a third of a burst's CPU time (cProfile of bench/scheduler.py).
_FIRE_PG = text(
    """
    WITH advanced AS (
        UPDATE schedules AS s SET "nextRun" = a.next_run, "updatedAt" = :now
        FROM unnest(CAST(:schedule_ids AS varchar[]), CAST(:next_runs AS timestamptz[]))
            AS a(id, next_run)
        WHERE s.id = a.id
    )
    INSERT INTO runs (id, "organizationId", "newsId", "scheduleId", "trigger",
                      "scheduledFor", state, attempts, "createdAt", "updatedAt")
    SELECT r.id, r.org, r.news, r.schedule, r.trig, r.at, 'queued', 0, :now, :now
    FROM unnest(CAST(:ids AS varchar[]), CAST(:orgs AS varchar[]), CAST(:news AS varchar[]),
                CAST(:schedules AS varchar[]), CAST(:triggers AS varchar[]),
                CAST(:ats AS timestamptz[])) AS r(id, org, news, schedule, trig, at)
    ON CONFLICT ("scheduleId", "scheduledFor") DO NOTHING
    RETURNING id
    """
)


def database_now(session: Session) -> datetime:
    """The database's clock (one clock for every replica); SQLite has one process anyway."""
    if _is_postgresql(session):
        value: datetime = session.scalar(select(func.now()))  # type: ignore[assignment]
        return value
    return utcnow()


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def fire_due_schedules(
    session: Session, *, now: datetime | None = None, batch_size: int = FIRE_BATCH_SIZE
) -> tuple[list[str], int]:
    """Claim up to ``batch_size`` due schedules and create their runs, in the caller's
    transaction. Returns (new run ids, schedules claimed); commit before enqueueing.

    ``FOR UPDATE SKIP LOCKED`` lets any number of replicas tick at once: each due
    schedule is claimed by exactly one (ignored on SQLite, where one scheduler runs).
    Without ``now``, "due" is by the database clock, read in the claiming query itself.
    """
    postgresql = _is_postgresql(session)
    clock: ColumnElement[datetime]
    if now is not None:
        clock = literal(now, Schedule.nextRun.type)
    elif postgresql:
        clock = func.now()
    else:
        clock = literal(utcnow(), Schedule.nextRun.type)
    due = session.execute(
        select(
            Schedule.id,
            Schedule.organizationId,
            Schedule.newsId,
            Schedule.cronExpr,
            Schedule.timezone,
            Schedule.catchUp,
            Schedule.nextRun,
            clock.label("now"),
        )
        .join(News, (News.organizationId == Schedule.organizationId) & (News.id == Schedule.newsId))
        .join(Organization, Organization.id == Schedule.organizationId)
        .where(Schedule.isActive, News.isActive, Organization.isActive, Schedule.nextRun <= clock)
        .order_by(Schedule.nextRun)
        .limit(batch_size)
        .with_for_update(of=Schedule, skip_locked=True)
    ).all()
    if not due:
        return [], 0
    now = due[0].now
    rows: list[dict[str, Any]] = []
    advances: list[tuple[str, datetime]] = []
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
                    "b_id": sched.id,
                    "nextRun": None,
                    "isActive": False,
                    "lastFailure": now,
                    "errorDetails": {"error": str(exc)},
                    "updatedAt": now,
                }
            )
            continue
        advances.append((sched.id, plan.next_run))
        rows.extend(
            {
                "id": new_id(),
                "organizationId": sched.organizationId,
                "newsId": sched.newsId,
                "scheduleId": sched.id,
                "trigger": p.trigger,
                "scheduledFor": p.scheduled_for,
            }
            for p in plan.runs
        )
    if postgresql:
        run_ids = _write_pg(session, rows, advances, now)
    else:
        run_ids = _write_generic(session, rows, advances, now)
    if parked:
        _update_by_id(session, parked)
    return run_ids, len(due)


def _write_pg(
    session: Session,
    rows: list[dict[str, Any]],
    advances: list[tuple[str, datetime]],
    now: datetime,
) -> list[str]:
    params = {
        "now": now,
        "schedule_ids": [a[0] for a in advances],
        "next_runs": [a[1] for a in advances],
        "ids": [r["id"] for r in rows],
        "orgs": [r["organizationId"] for r in rows],
        "news": [r["newsId"] for r in rows],
        "schedules": [r["scheduleId"] for r in rows],
        "triggers": [r["trigger"] for r in rows],
        "ats": [r["scheduledFor"] for r in rows],
    }
    return list(session.connection().execute(_FIRE_PG, params).scalars())


def _write_generic(
    session: Session,
    rows: list[dict[str, Any]],
    advances: list[tuple[str, datetime]],
    now: datetime,
) -> list[str]:
    full = [
        {**r, "state": "queued", "attempts": 0, "createdAt": now, "updatedAt": now} for r in rows
    ]
    run_ids = insert_ignoring_conflicts(session, Run, full, ["scheduleId", "scheduledFor"])
    _update_by_id(session, [{"b_id": sid, "nextRun": at, "updatedAt": now} for sid, at in advances])
    return run_ids


def _update_by_id(session: Session, changes: list[dict[str, Any]]) -> None:
    """One Core executemany UPDATE keyed on ``b_id`` (uniform keys): a single cached
    statement, where the ORM's bulk UPDATE by primary key costs per-row bookkeeping."""
    if not changes:
        return
    table: Table = Schedule.__table__  # type: ignore[assignment]
    keys = [key for key in changes[0] if key != "b_id"]
    values: dict[str, BindParameter[Any]] = {key: bindparam(key) for key in keys}
    stmt = update(table).where(table.c.id == bindparam("b_id")).values(values)
    session.connection().execute(stmt, changes)


def seconds_until_next_fire(session: Session) -> float | None:
    """Seconds from now (database clock) to the earliest future ``nextRun`` of an active
    schedule; None when none is pending. Lets the loop wake at the fire itself instead
    of up to one tick late (schedules due already are being fired by some replica)."""
    clock: ColumnElement[datetime] = (
        func.now() if _is_postgresql(session) else literal(utcnow(), Schedule.nextRun.type)
    )
    row = session.execute(
        select(func.min(Schedule.nextRun), clock).where(Schedule.isActive, Schedule.nextRun > clock)
    ).one()
    earliest, now = row
    if earliest is None:
        return None
    return max((earliest - now).total_seconds(), 0.0)
