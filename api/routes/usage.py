"""The organization's usage per month (``GET /usage``), with its limits and where it
stands against them."""

# Query parameters are a route's arguments.
# ruff: noqa: PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.schemas import Out
from core.errors import ValidationError
from core.usage.limits import Limits
from core.usage.months import MAX_MONTHS_PER_QUERY, month_of, month_range, parse_month
from core.usage.report import MonthUsage, Standing, standing, usage_months

router = APIRouter(prefix="/usage", tags=["usage"], responses=ERROR_RESPONSES)

#: A month in queries: ``YYYY-MM`` (UTC).
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MonthQuery = Annotated[
    str | None, Query(pattern=MONTH_PATTERN, description="a month, YYYY-MM (UTC)")
]
FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=MONTH_PATTERN,
        description=f"first month of a range, YYYY-MM (at most {MAX_MONTHS_PER_QUERY} months)",
    ),
]
ToQuery = Annotated[
    str | None,
    Query(pattern=MONTH_PATTERN, description="last month of a range (default: this month)"),
]


class UsageMonthOut(Out):
    """What the organization used in one UTC month (0 where nothing was counted)."""

    month: str = Field(examples=["2026-12"])
    fetches: int = Field(
        description="fetches of sources its active searches follow (a shared source's "
        "fetch counts once for every organization following it)"
    )
    storiesStored: int = Field(description="stories its runs stored")
    deliveriesSent: int = Field(description="digests sent to its channels")
    apiRequests: int = Field(description="requests its API keys made that were accepted")


class LimitsOut(Out):
    """Limits set by an operator; null: none."""

    maxSearches: int | None
    maxSources: int | None = Field(description="distinct sources its searches may follow")
    maxDeliveriesPerDay: int | None = Field(description="digests sent per UTC day")


class StandingOut(Out):
    """What counts against the limits now."""

    searches: int
    sources: int
    deliveriesToday: int = Field(description="sends counted today (UTC) against the limit")


class UsageOut(Out):
    organizationId: str
    months: list[UsageMonthOut] = Field(description="oldest first")
    limits: LimitsOut
    current: StandingOut


def months_asked(
    month: str | None, first: str | None, last: str | None, now: datetime
) -> list[str]:
    """The months a usage query asks for: ``month``, or ``from``..``to`` (``to``: this
    month by default), or this month."""
    if month is not None:
        if first is not None or last is not None:
            raise ValidationError("give month, or from and to, not both", field="month")
        return [parse_month(month)]
    if first is None:
        if last is not None:
            raise ValidationError("required with to", field="from")
        return [month_of(now)]
    if last is None and first > month_of(now):
        raise ValidationError("must not be after this month when to is left out", field="from")
    return month_range(first, last or month_of(now))


def limits_out(limits: Limits) -> LimitsOut:
    return LimitsOut(
        maxSearches=limits.maxSearches,
        maxSources=limits.maxSources,
        maxDeliveriesPerDay=limits.maxDeliveriesPerDay,
    )


def usage_out(organization_id: str, months: list[MonthUsage], now_standing: Standing) -> UsageOut:
    return UsageOut(
        organizationId=organization_id,
        months=[UsageMonthOut.model_validate(m, from_attributes=True) for m in months],
        limits=limits_out(now_standing.limits),
        current=StandingOut(
            searches=now_standing.searches,
            sources=now_standing.sources,
            deliveriesToday=now_standing.deliveries_today,
        ),
    )


def organization_usage(
    request: Request, session: Session, organization_id: str, months: list[str]
) -> UsageOut:
    """Flush this process's counted requests, then read the organization's usage."""
    now = request.app.state.clock()
    request.app.state.usage_meter.flush(request.app.state.engine, now)
    return usage_out(
        organization_id,
        usage_months(session, organization_id, months),
        standing(session, organization_id, now),
    )


Reader = Annotated[TenantContext, requires("usage:read")]


@router.get("")
def read_usage(
    request: Request,
    ctx: Reader,
    session: SessionDep,
    month: MonthQuery = None,
    first: FromQuery = None,
    to: ToQuery = None,
) -> UsageOut:
    """The organization's usage: this month by default, one ``month``, or the months
    ``from``..``to``; with its limits and what counts against them now. Its own requests
    are counted as they are made (this one included), those of other web processes
    within ``NEWSMON_USAGE_FLUSH_SECONDS``."""
    months = months_asked(month, first, to, request.app.state.clock())
    return organization_usage(request, session, ctx.organization_id, months)
