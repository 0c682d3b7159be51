"""Runs of the organization's searches and their outcomes."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, request_broker, requires
from api.errors import ERROR_RESPONSES, ApiError
from api.pagination import MAX_CURSOR_LENGTH, Cursor, Limit, Page, page_of, paginate
from api.schemas import Out
from core.clock import utcnow
from core.db.models import RUN_STATES, Run
from core.db.scoped import get_owned
from core.errors import ValidationError
from core.scheduling.runs import mark_enqueued, replay_run
from workers.broker import BROKER_ERRORS
from workers.runs import enqueue_runs

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)


class RunOut(Out):
    id: str
    newsId: str
    scheduleId: str | None
    trigger: str
    scheduledFor: datetime
    state: str
    attempts: int
    enqueuedAt: datetime | None
    startedAt: datetime | None
    finishedAt: datetime | None
    error: dict[str, Any] | None
    stats: dict[str, Any] | None
    createdAt: datetime


Reader = Annotated[TenantContext, requires("runs:read")]


@router.get("")
def list_runs(
    ctx: Reader,
    session: SessionDep,
    newsId: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
    state: Annotated[str | None, Query(json_schema_extra={"enum": list(RUN_STATES)})] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunOut]:
    """The organization's runs, newest first."""
    query = select(Run).where(Run.organizationId == ctx.organization_id)
    if newsId is not None:
        query = query.where(Run.newsId == newsId)
    if state is not None:
        if state not in RUN_STATES:
            raise ValidationError(f"must be one of {', '.join(RUN_STATES)}", field="state")
        query = query.where(Run.state == state)
    rows = list(session.scalars(paginate(query, Run.id, cursor, limit)))
    return page_of([RunOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{runId}")
def read_run(runId: str, ctx: Reader, session: SessionDep) -> RunOut:
    return RunOut.model_validate(get_owned(session, Run, ctx.organization_id, runId, "run"))


class RunReplayed(Out):
    runId: str
    enqueued: bool


Runner = Annotated[TenantContext, requires("runs:write")]


@router.post("/{runId}/replay", status_code=202)
def replay_failed_run(
    runId: str, request: Request, ctx: Runner, session: SessionDep
) -> RunReplayed:
    """Run a failed run again (attempts reset). 409 unless the run failed, or when a
    manual run of the same search is already waiting. If the queue is unreachable the
    run stays queued and the scheduler's sweeper enqueues it (``enqueued: false``)."""
    get_owned(session, Run, ctx.organization_id, runId, "run")
    if not replay_run(session, ctx.organization_id, runId, now=utcnow()):
        raise ApiError(409, "only a failed run can be replayed (and not while one waits)")
    ctx.audit(session, "run.replay", "run", runId, None)
    session.commit()
    try:
        enqueue_runs(request_broker(request), [runId])
    except BROKER_ERRORS:
        return RunReplayed(runId=runId, enqueued=False)
    mark_enqueued(session, [runId], now=utcnow())
    return RunReplayed(runId=runId, enqueued=True)
