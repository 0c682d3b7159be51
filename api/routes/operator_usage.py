"""Operator routes for usage and limits: every organization's month, one organization's
usage, and setting its limits."""

# Path parameters keep the schema's camelCase names (organizationId).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from api.deps import OperatorDep, SessionDep
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of
from api.routes.usage import (
    FromQuery,
    LimitsOut,
    MonthQuery,
    ToQuery,
    UsageMonthOut,
    UsageOut,
    limits_out,
    months_asked,
    organization_usage,
)
from api.schemas import Out, StrictBody
from core.usage.limits import MAX_LIMIT_VALUE, Limits, set_limits
from core.usage.months import month_of, parse_month
from core.usage.report import usage_by_organization

router = APIRouter(prefix="/operator", tags=["operator"], responses=ERROR_RESPONSES)

LimitValue = Annotated[int | None, Field(default=None, ge=0, le=MAX_LIMIT_VALUE)]


class LimitsIn(StrictBody):
    """All three limits; a limit left out or null is lifted."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"maxSearches": 10, "maxDeliveriesPerDay": 200}]}
    )

    maxSearches: LimitValue = None
    maxSources: LimitValue = None
    maxDeliveriesPerDay: LimitValue = None


class OrganizationUsageOut(Out):
    organizationId: str
    slug: str
    name: str
    usage: UsageMonthOut
    limits: LimitsOut


@router.get("/usage")
def all_usage(
    request: Request,
    op: OperatorDep,
    session: SessionDep,
    month: MonthQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OrganizationUsageOut]:
    """Every organization's usage of one month (default: this month) with its limits,
    newest organization first."""
    shown = parse_month(month) if month else month_of(request.app.state.clock())
    request.app.state.usage_meter.flush(request.app.state.engine, request.app.state.clock())
    rows = usage_by_organization(session, shown, before=cursor, limit=limit + 1)
    items = [
        OrganizationUsageOut(
            organizationId=row.organization_id,
            slug=row.slug,
            name=row.name,
            usage=UsageMonthOut.model_validate(row.usage, from_attributes=True),
            limits=limits_out(row.limits),
        )
        for row in rows
    ]
    return page_of(items, [row.organization_id for row in rows], limit)


@router.get("/organizations/{organizationId}/usage")
def org_usage(
    organizationId: str,
    request: Request,
    op: OperatorDep,
    session: SessionDep,
    month: MonthQuery = None,
    first: FromQuery = None,
    to: ToQuery = None,
) -> UsageOut:
    """One organization's usage, as ``GET /usage`` shows it to the organization."""
    months = months_asked(month, first, to, request.app.state.clock())
    return organization_usage(request, session, organizationId, months)


@router.put("/organizations/{organizationId}/limits")
def put_limits(
    organizationId: str, body: LimitsIn, op: OperatorDep, session: SessionDep
) -> LimitsOut:
    """Set the organization's limits (all three; null or left out: none). What exists past
    a new limit stays; only what would grow past it is refused (403 ``limit_reached``),
    and deliveries past ``maxDeliveriesPerDay`` wait for the next UTC day."""
    limits = set_limits(
        session,
        organizationId,
        Limits(body.maxSearches, body.maxSources, body.maxDeliveriesPerDay),
    )
    op.audit(
        session,
        organizationId,
        action="organization.limits",
        target_type="organization",
        target_id=organizationId,
        details=body.model_dump(),
    )
    return limits_out(limits)
