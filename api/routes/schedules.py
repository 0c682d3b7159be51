"""Cron schedules of a search: validated expressions, the next fire times shown."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.schemas import Out, PatchBody, StrictBody
from core.clock import utcnow
from core.cron import describe, parse_cron
from core.db.models import Schedule
from core.news.editing import delete_schedule, get_schedule, update_schedule
from core.news.searches import add_schedule, get_search

router = APIRouter(prefix="/news/{newsId}/schedules", tags=["schedules"], responses=ERROR_RESPONSES)

#: Upcoming fire times shown with a schedule.
NEXT_FIRES_SHOWN = 5
#: Longest cron expression / time zone name accepted.
MAX_CRON_LENGTH = 255
MAX_TIMEZONE_LENGTH = 64

_EXAMPLE: dict[str, Any] = {"cronExpr": "*/15 * * * *", "timezone": "Europe/Berlin"}


#: A cron expression (five fields, or a nickname such as ``@hourly``).
CronExpr = Annotated[
    str, Field(min_length=1, max_length=MAX_CRON_LENGTH, json_schema_extra={"format": "cron"})
]
#: An IANA time zone name.
TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=MAX_TIMEZONE_LENGTH, json_schema_extra={"format": "time-zone"}),
]
#: One of :data:`core.db.models.CATCH_UP_POLICIES`.
CatchUp = Literal["once", "all", "skip"]


class ScheduleCreate(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    cronExpr: CronExpr
    timezone: TimeZone = "UTC"
    catchUp: CatchUp = "once"
    isActive: bool = True


class ScheduleUpdate(PatchBody):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    cronExpr: CronExpr | None = None
    timezone: TimeZone | None = None
    catchUp: CatchUp | None = None
    isActive: bool | None = None


class ScheduleOut(Out):
    id: str
    newsId: str
    cronExpr: str
    timezone: str
    catchUp: str
    isActive: bool
    nextRun: datetime | None
    lastSuccess: datetime | None
    lastFailure: datetime | None
    errorDetails: dict[str, Any] | None
    description: str
    nextFires: list[datetime]
    createdAt: datetime
    updatedAt: datetime


def _out(schedule: Schedule, now: datetime) -> ScheduleOut:
    cron = parse_cron(schedule.cronExpr, schedule.timezone)
    data = {c: getattr(schedule, c) for c in ScheduleOut.model_fields if hasattr(schedule, c)}
    data["description"] = describe(schedule.cronExpr)
    data["nextFires"] = cron.next_fires(now, NEXT_FIRES_SHOWN) if schedule.isActive else []
    return ScheduleOut.model_validate(data)


Reader = Annotated[TenantContext, requires("schedules:read")]
Writer = Annotated[TenantContext, requires("schedules:write")]


@router.post("", status_code=201)
def create_schedule(
    newsId: str, body: ScheduleCreate, ctx: Writer, session: SessionDep
) -> ScheduleOut:
    """Attach a schedule; a bad ``cronExpr`` or ``timezone`` is a 422 naming the field."""
    now = utcnow()
    schedule = add_schedule(
        session,
        ctx.organization_id,
        newsId,
        cron_expr=body.cronExpr,
        timezone=body.timezone,
        catch_up=body.catchUp,
        now=now,
    )
    if not body.isActive:
        schedule = update_schedule(
            session, ctx.organization_id, newsId, schedule.id, {"isActive": False}, now=now
        )
    ctx.audit(session, "schedule.create", "schedule", schedule.id, {"cronExpr": body.cronExpr})
    return _out(schedule, now)


@router.get("")
def list_schedules(
    newsId: str, ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ScheduleOut]:
    get_search(session, ctx.organization_id, newsId)
    query = select(Schedule).where(
        Schedule.organizationId == ctx.organization_id, Schedule.newsId == newsId
    )
    rows = list(session.scalars(paginate(query, Schedule.id, cursor, limit)))
    now = utcnow()
    return page_of([_out(r, now) for r in rows], [r.id for r in rows], limit)


@router.get("/{scheduleId}")
def read_schedule(newsId: str, scheduleId: str, ctx: Reader, session: SessionDep) -> ScheduleOut:
    return _out(get_schedule(session, ctx.organization_id, newsId, scheduleId), utcnow())


@router.patch("/{scheduleId}")
def patch_schedule(
    newsId: str, scheduleId: str, body: ScheduleUpdate, ctx: Writer, session: SessionDep
) -> ScheduleOut:
    now = utcnow()
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    schedule = update_schedule(session, ctx.organization_id, newsId, scheduleId, changes, now=now)
    ctx.audit(session, "schedule.update", "schedule", scheduleId, {"fields": sorted(changes)})
    return _out(schedule, now)


@router.delete("/{scheduleId}", status_code=204)
def remove_schedule(newsId: str, scheduleId: str, ctx: Writer, session: SessionDep) -> Response:
    delete_schedule(session, ctx.organization_id, newsId, scheduleId)
    ctx.audit(session, "schedule.delete", "schedule", scheduleId)
    return Response(status_code=204)
