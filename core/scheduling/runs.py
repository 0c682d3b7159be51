"""A run's life in the database: claim with a lease, record the outcome, sweep, run now.

The queue only carries run ids and may deliver one twice, late or never; these
conditional updates decide what actually happens. ``attempts`` doubles as a fencing
token: a worker whose lease expired and was taken over cannot record its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.base import UTCDateTime
from core.db.models import News, Run, Schedule
from core.db.session import autocommitted, transaction
from core.db.statements import Shape, set_clause, shape_of, value_params
from core.errors import NewsmonError
from core.ingest.source_clock import mark_due_now
from core.news.searches import get_search

#: Attempts (claims) a run gets before it is marked failed; a message that kills its
#: worker (SIGKILL, OOM) is claimed again after its lease and stops here.
MAX_RUN_ATTEMPTS = 5
#: How long a claim holds a run unless renewed; the worker's lease keeper renews it while
#: the run is in progress (``core/scheduling/leases.py``), so only a dead worker's run
#: outlives it and is handed to another worker by the sweeper.
RUN_LEASE = timedelta(seconds=30)
#: A run committed but never marked enqueued this long is an orphan of a crashed
#: scheduler (the enqueue happens right after commit, so seconds suffice).
ORPHAN_GRACE = timedelta(seconds=30)
#: A run enqueued this long ago and still queued was lost by the broker (Redis here
#: keeps nothing on disk); re-enqueueing is safe because claims deduplicate.
REQUEUE_AFTER = timedelta(minutes=15)
#: Runs the sweeper handles per transaction.
SWEEP_BATCH_SIZE = 1000


class LeaseLost(NewsmonError):
    """The run was taken over after this worker's lease expired; discard the work."""


@dataclass(frozen=True)
class ClaimedRun:
    id: str
    organization_id: str
    news_id: str
    schedule_id: str | None
    attempt: int
    scheduled_for: datetime


_RUNS: Table = Run.__table__  # type: ignore[assignment]
_SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
_NEWS: Table = News.__table__  # type: ignore[assignment]
_NOW = bindparam("now", type_=UTCDateTime())

# Built once (see core/db/statements.py): a run's claim and outcome are a few short
# statements whose construction cost more Python than their round trips.
_CLAIM = (
    update(_RUNS)
    .where(
        _RUNS.c.id == bindparam("run_id"),
        _RUNS.c.attempts < bindparam("max_attempts"),
        or_(
            _RUNS.c.state == "queued",
            and_(_RUNS.c.state == "running", _RUNS.c.leaseUntil < _NOW),
        ),
    )
    .values(
        state="running",
        attempts=_RUNS.c.attempts + 1,
        leaseUntil=bindparam("lease_until", type_=UTCDateTime()),
        startedAt=_NOW,
        updatedAt=_NOW,
    )
    .returning(
        _RUNS.c.id,
        _RUNS.c.organizationId,
        _RUNS.c.newsId,
        _RUNS.c.scheduleId,
        _RUNS.c.attempts,
        _RUNS.c.scheduledFor,
    )
)


def claim_run(
    session: Session,
    run_id: str,
    *,
    now: datetime,
    lease: timedelta = RUN_LEASE,
    max_attempts: int = MAX_RUN_ATTEMPTS,
) -> ClaimedRun | None:
    """Take a queued (or abandoned) run: running, lease, attempts+1. None = not ours.

    In ``session``'s transaction (:func:`claim_run_on` commits a claim on its own).
    """
    params = _claim_params(run_id, now, lease, max_attempts)
    row = session.connection().execute(_CLAIM, params).one_or_none()
    if row is None:
        _give_up_if_exhausted(session, run_id, now=now, max_attempts=max_attempts)
        return None
    return ClaimedRun(*row)


def claim_run_on(
    conn: Connection,
    run_id: str,
    *,
    now: datetime,
    lease: timedelta = RUN_LEASE,
    max_attempts: int = MAX_RUN_ATTEMPTS,
) -> ClaimedRun | None:
    """:func:`claim_run`, committed on ``conn`` (no transaction open) when it returns.

    On PostgreSQL the claim is sent on its own in autocommit: one round trip instead of
    ``BEGIN``, ``UPDATE``, ``COMMIT`` (a claim is its own transaction anyway). ``conn``
    is transactional again afterwards, so the caller may run the step on it.
    """
    if conn.dialect.name == "postgresql":
        with autocommitted(conn):
            params = _claim_params(run_id, now, lease, max_attempts)
            row = conn.execute(_CLAIM, params).one_or_none()
        if row is not None:
            return ClaimedRun(*row)
    # SQLite, or nothing claimed: the run, its schedule and its search change together.
    with transaction(Session(bind=conn, expire_on_commit=False)) as session:
        if conn.dialect.name != "postgresql":
            return claim_run(session, run_id, now=now, lease=lease, max_attempts=max_attempts)
        _give_up_if_exhausted(session, run_id, now=now, max_attempts=max_attempts)
    return None


def _claim_params(
    run_id: str, now: datetime, lease: timedelta, max_attempts: int
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "max_attempts": max_attempts,
        "now": now,
        "lease_until": now + lease,
    }


def renew_run_leases(
    session: Session, held: Sequence[tuple[str, int]], *, now: datetime, lease: timedelta
) -> int:
    """Extend to ``now + lease`` the leases of the runs still held by these claims
    (``(run id, attempt)`` pairs), in one statement; returns how many were renewed.

    A run another transaction has locked (its outcome being recorded) is skipped rather
    than waited for: its lease still has most of its time, and waiting would hold up the
    renewal of every other run of the process.
    """
    if not held:
        return 0
    still_held = (
        select(Run.id)
        .where(tuple_(Run.id, Run.attempts).in_(list(held)), Run.state == "running")
        .with_for_update(skip_locked=True)
    )
    renewed = session.execute(
        update(Run)
        .where(Run.id.in_(still_held), Run.state == "running")
        .values(leaseUntil=now + lease),
        execution_options={"synchronize_session": False},
    )
    return int(renewed.rowcount)  # type: ignore[attr-defined]


def _give_up_if_exhausted(
    session: Session, run_id: str, *, now: datetime, max_attempts: int
) -> None:
    exhausted = (
        update(Run)
        .where(
            Run.id == run_id,
            Run.attempts >= max_attempts,
            or_(Run.state == "queued", and_(Run.state == "running", Run.leaseUntil < now)),
        )
        .values(
            state="failed",
            finishedAt=now,
            leaseUntil=None,
            updatedAt=now,
            error={"error": f"gave up after {max_attempts} attempts", "permanent": True},
        )
        .returning(Run.organizationId, Run.newsId, Run.scheduleId)
    )
    row = session.execute(exhausted).one_or_none()
    if row is not None:
        _record_search_outcome(
            session,
            row.organizationId,
            row.newsId,
            row.scheduleId,
            now=now,
            error={"error": f"run {run_id} gave up after {max_attempts} attempts"},
        )


#: Parameter prefixes of the values set on the run and on its schedule.
_RUN_VALUE = "r_"
_SCHEDULE_VALUE = "s_"


@cache
def _fenced_update(shape: Shape) -> Update:
    return (
        update(_RUNS)
        .where(
            _RUNS.c.id == bindparam("run_id"),
            _RUNS.c.state == "running",
            _RUNS.c.attempts == bindparam("attempt"),
        )
        .values(leaseUntil=None, **set_clause(_RUNS, shape, _RUN_VALUE))
    )


@cache
def _schedule_outcome_update(shape: Shape) -> Update:
    return (
        update(_SCHEDULES)
        .where(
            _SCHEDULES.c.organizationId == bindparam("organization_id"),
            _SCHEDULES.c.id == bindparam("schedule_id"),
        )
        .values(updatedAt=_NOW, **set_clause(_SCHEDULES, shape, _SCHEDULE_VALUE))
    )


_NEWS_OUTCOME = (
    update(_NEWS)
    .where(
        _NEWS.c.organizationId == bindparam("organization_id"), _NEWS.c.id == bindparam("news_id")
    )
    .values(
        lastRun=_NOW,
        updatedAt=_NOW,
        nextRun=select(func.min(_SCHEDULES.c.nextRun))
        .where(_SCHEDULES.c.newsId == bindparam("news_id"), _SCHEDULES.c.isActive)
        .scalar_subquery(),
    )
)


@cache
def _finish_in_one(run_shape: Shape, schedule_shape: Shape | None) -> Select[int]:
    """PostgreSQL: the fenced run update and the search's outcome as one statement.

    Data-modifying CTEs run to completion whether or not they are read; the schedule and
    search are only touched when the fence held, and the count of fenced runs tells the
    caller whether it did (0: the lease was lost, and the caller rolls back anyway).
    """
    fenced = _fenced_update(run_shape).returning(_RUNS.c.id).cte("fenced")
    held = exists(select(fenced.c.id))
    outcomes = []
    if schedule_shape is not None:
        schedule = _schedule_outcome_update(schedule_shape).where(held)
        outcomes.append(schedule.cte("schedule_outcome"))
    outcomes.append(_NEWS_OUTCOME.where(held).cte("search_outcome"))
    return select(func.count()).select_from(fenced).add_cte(*outcomes)


def _outcome(now: datetime, error: dict[str, Any] | None, succeeded: bool) -> dict[str, Any]:
    if succeeded:
        return {"lastSuccess": now, "errorDetails": error}
    return {"lastFailure": now, "errorDetails": error}


def _record_search_outcome(
    session: Session,
    organization_id: str,
    news_id: str,
    schedule_id: str | None,
    *,
    now: datetime,
    error: dict[str, Any] | None,
    succeeded: bool | None = None,
) -> None:
    """``error`` without ``succeeded`` is a failure; with ``succeeded=True`` it is a partial
    success whose details (e.g. failing sources) stay visible on the schedule."""
    if succeeded is None:
        succeeded = error is None
    conn = session.connection()
    if schedule_id is not None:
        outcome = _outcome(now, error, succeeded)
        conn.execute(
            _schedule_outcome_update(shape_of(outcome)),
            {
                "organization_id": organization_id,
                "schedule_id": schedule_id,
                "now": now,
                **value_params(outcome, _SCHEDULE_VALUE),
            },
        )
    conn.execute(
        _NEWS_OUTCOME, {"organization_id": organization_id, "news_id": news_id, "now": now}
    )


def _finish(
    session: Session,
    run: ClaimedRun,
    values: dict[str, Any],
    *,
    now: datetime,
    error: dict[str, Any] | None,
    succeeded: bool,
) -> None:
    """Set ``values`` on the run if this claim still holds it (else :class:`LeaseLost`),
    and record the outcome on its schedule and search: one round trip on PostgreSQL."""
    # Core statements do not autoflush: the step's pending rows go first, as they did.
    session.flush()
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        done = conn.execute(
            _fenced_update(shape_of(values)),
            {"run_id": run.id, "attempt": run.attempt, **value_params(values, _RUN_VALUE)},
        )
        if done.rowcount != 1:
            raise LeaseLost(run.id)
        _record_search_outcome(
            session,
            run.organization_id,
            run.news_id,
            run.schedule_id,
            now=now,
            error=error,
            succeeded=succeeded,
        )
        return
    outcome = _outcome(now, error, succeeded) if run.schedule_id is not None else None
    statement = _finish_in_one(shape_of(values), shape_of(outcome) if outcome else None)
    fenced = conn.scalar(
        statement,
        {
            "run_id": run.id,
            "attempt": run.attempt,
            "organization_id": run.organization_id,
            "news_id": run.news_id,
            "schedule_id": run.schedule_id,
            "now": now,
            **value_params(values, _RUN_VALUE),
            **value_params(outcome or {}, _SCHEDULE_VALUE),
        },
    )
    if fenced != 1:
        raise LeaseLost(run.id)


def complete_run(
    session: Session, run: ClaimedRun, *, now: datetime, stats: dict[str, Any]
) -> None:
    """Mark the run succeeded (in the step's own transaction, so both commit together).

    A step that succeeded with problems (some sources failing) returns them in
    ``stats["sourceErrors"]``; they become the schedule's ``errorDetails``.
    """
    problems = stats.get("sourceErrors")
    _finish(
        session,
        run,
        {"state": "succeeded", "finishedAt": now, "stats": stats, "error": None, "updatedAt": now},
        now=now,
        error={"sources": problems} if problems else None,
        succeeded=True,
    )


def fail_run(
    session: Session,
    run: ClaimedRun,
    *,
    now: datetime,
    error: dict[str, Any],
    retry: bool,
    max_attempts: int = MAX_RUN_ATTEMPTS,
) -> bool:
    """Record a failed attempt; back to queued if ``retry`` and attempts remain.

    Returns whether the run will be retried.
    """
    will_retry = retry and run.attempt < max_attempts
    # A retry's message waits in the broker's delay queue from now on: restart the
    # sweeper's requeue clock so a long backoff is not mistaken for a lost message.
    state: dict[str, Any] = (
        {"state": "queued", "enqueuedAt": now}
        if will_retry
        else {"state": "failed", "finishedAt": now}
    )
    _finish(
        session,
        run,
        {**state, "error": error, "updatedAt": now},
        now=now,
        error=error,
        succeeded=False,
    )
    return will_retry


def run_states(session: Session, run_ids: Sequence[str]) -> dict[str, str]:
    """The state of each of these runs that exists (an operator's view: any tenant)."""
    if not run_ids:
        return {}
    rows = session.execute(select(Run.id, Run.state).where(Run.id.in_(list(run_ids))))
    return {run_id: state for run_id, state in rows}


def mark_enqueued(session: Session, run_ids: list[str], *, now: datetime | None = None) -> None:
    """Record that the broker got a message for each run (``now`` defaults to the
    database clock).

    Whatever the run's state: a fast worker may have claimed it already, and a run left
    without ``enqueuedAt`` would look like an orphan to the sweeper after a retry.
    """
    if not run_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter: an IN list of 1,000 placeholders is parsed again by the
        # driver for every chunk (measured in bench/scheduler.py's burst).
        ids = bindparam("run_ids", run_ids, type_=ARRAY(String))
        # No session synchronization: it would fetch every id back (RETURNING) to
        # update objects this session never loaded.
        session.execute(
            update(Run).where(Run.id == any_(ids)).values(enqueuedAt=now or func.now()),
            execution_options={"synchronize_session": False},
        )
        return
    for start in range(0, len(run_ids), SWEEP_BATCH_SIZE):
        chunk = run_ids[start : start + SWEEP_BATCH_SIZE]
        session.execute(update(Run).where(Run.id.in_(chunk)).values(enqueuedAt=now or utcnow()))


def runs_to_enqueue(
    session: Session,
    *,
    now: datetime,
    orphan_grace: timedelta = ORPHAN_GRACE,
    requeue_after: timedelta = REQUEUE_AFTER,
    max_attempts: int = MAX_RUN_ATTEMPTS,
    limit: int = SWEEP_BATCH_SIZE,
    enqueued_before: datetime | None = None,
) -> list[str]:
    """Runs the queue does not hold (any more): never enqueued after a scheduler crash,
    lost by the broker, or abandoned by a dead worker (lease expired). Abandoned runs go
    back to queued here; the caller enqueues all returned ids after commit.

    ``enqueued_before`` (the moment the broker was found to have lost its data) takes
    every queued run enqueued before it as lost at once, instead of after
    ``requeue_after``.

    The returned runs get ``enqueuedAt = now`` in this transaction, so a second
    replica sweeping at the same moment does not send them again; should this replica
    die before its enqueue, they are found again after ``requeue_after``.
    """
    abandoned = list(
        session.scalars(
            select(Run.id)
            .where(Run.state == "running", Run.leaseUntil < now, Run.attempts < max_attempts)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if abandoned:
        session.execute(
            update(Run)
            .where(Run.id.in_(abandoned))
            .values(
                state="queued",
                leaseUntil=None,
                updatedAt=now,
                error={"error": "worker lost (lease expired)"},
            )
        )
    exhausted = session.scalars(
        select(Run.id)
        .where(Run.state == "running", Run.leaseUntil < now, Run.attempts >= max_attempts)
        .limit(limit)
    ).all()
    for run_id in exhausted:
        _give_up_if_exhausted(session, run_id, now=now, max_attempts=max_attempts)
    requeue_cutoff = now - requeue_after
    if enqueued_before is not None:
        requeue_cutoff = max(requeue_cutoff, enqueued_before)
    lost = list(
        session.scalars(
            select(Run.id)
            .where(
                Run.state == "queued",
                or_(
                    and_(Run.enqueuedAt.is_(None), Run.createdAt < now - orphan_grace),
                    Run.enqueuedAt < requeue_cutoff,
                ),
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    # An abandoned run enqueued long ago also matches ``lost``: send it once.
    swept = list(dict.fromkeys(abandoned + lost))
    mark_enqueued(session, swept, now=now)
    return swept


def create_manual_run(
    session: Session, organization_id: str, news_id: str, *, now: datetime
) -> tuple[str, bool]:
    """A run of the search now. Returns (run id, created); a manual run still waiting in
    the queue is returned instead of a second one (unique partial index)."""
    news = get_search(session, organization_id, news_id)
    existing = select(Run.id).where(
        Run.newsId == news.id, Run.state == "queued", Run.trigger == "manual"
    )
    found = session.scalar(existing)
    if found is not None:
        return found, False
    run = Run(
        organizationId=organization_id,
        newsId=news.id,
        trigger="manual",
        scheduledFor=now,
        createdAt=now,
        updatedAt=now,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:  # a concurrent "run now" won the race
        found = session.scalar(existing)
        if found is None:
            raise
        return found, False
    return run.id, True


#: "Run now" refetches a search's sources unless fetched within this.
RUN_NOW_FRESH = timedelta(minutes=1)


@dataclass(frozen=True)
class RunRequest:
    """A "run now": the run (``created`` false: one was already waiting) and the sources
    to refresh for it, whose new entries start a follow-up run."""

    run_id: str
    created: bool
    refresh_ids: tuple[str, ...]


def request_run(
    session: Session, organization_id: str, news_id: str, *, now: datetime
) -> RunRequest:
    """A manual run of the search over what is stored, and its sources made due now (the
    caller enqueues both after commit): the run answers at once, and what the sources
    publish meanwhile arrives in a follow-up run."""
    run_id, created = create_manual_run(session, organization_id, news_id, now=now)
    refresh_ids = mark_due_now(
        session, organization_id, news_id, now=now, fresher_than=RUN_NOW_FRESH
    )
    return RunRequest(run_id, created, tuple(refresh_ids))


def replay_run(session: Session, organization_id: str, run_id: str, *, now: datetime) -> bool:
    """Put a failed run of ``organization_id`` back to queued with its attempts reset.
    Returns whether it changed (False: no such failed run, or a manual run of the same
    search is already waiting, which replaying would duplicate).

    ``enqueuedAt`` is cleared: the caller enqueues the run after commit and marks it;
    should that not happen, the sweeper takes it for an orphan and enqueues it.
    """
    replay = (
        update(Run)
        .where(Run.organizationId == organization_id, Run.id == run_id, Run.state == "failed")
        .values(
            state="queued",
            attempts=0,
            leaseUntil=None,
            enqueuedAt=None,
            startedAt=None,
            finishedAt=None,
            updatedAt=now,
        )
    )
    try:
        with session.begin_nested():
            done = session.execute(replay)
    except IntegrityError:  # uq_runs_newsId_queued_manual: one waiting manual run
        return False
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def recover_after_restart(session: Session, *, now: datetime) -> list[str]:
    """Every unfinished run, with running ones put back to queued. Only for embedded
    mode at start-up, where this process is the only worker that can exist."""
    session.execute(
        update(Run)
        .where(Run.state == "running")
        .values(
            state="queued",
            leaseUntil=None,
            updatedAt=now,
            error={"error": "interrupted by a restart"},
        )
    )
    return list(session.scalars(select(Run.id).where(Run.state == "queued")))
