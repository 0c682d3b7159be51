"""Reading usage: an organization's months, and one month across organizations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from core.db.models import USAGE_COUNTERS, Organization, ThrottleWindow, Usage
from core.delivery import daily_limit
from core.throttle import window_start
from core.usage.limits import Limits, read_limits, search_count, source_count


@dataclass(frozen=True)
class MonthUsage:
    """One month's counters (zero where nothing was counted)."""

    month: str
    fetches: int = 0
    storiesStored: int = 0
    deliveriesSent: int = 0
    apiRequests: int = 0


@dataclass(frozen=True)
class Standing:
    """Where an organization stands against its limits now."""

    limits: Limits
    searches: int
    sources: int
    deliveries_today: int


@dataclass(frozen=True)
class OrganizationUsage:
    organization_id: str
    slug: str
    name: str
    usage: MonthUsage
    limits: Limits = field(default_factory=Limits)


def _month_usage(month: str, row: Usage | None) -> MonthUsage:
    if row is None:
        return MonthUsage(month)
    return MonthUsage(month, **{name: getattr(row, name) for name in USAGE_COUNTERS})


def _organization_usage(org: Organization, month: str, row: Usage | None) -> OrganizationUsage:
    return OrganizationUsage(
        organization_id=org.id,
        slug=org.slug,
        name=org.name,
        usage=_month_usage(month, row),
        limits=Limits(org.maxSearches, org.maxSources, org.maxDeliveriesPerDay),
    )


def usage_months(session: Session, organization_id: str, months: Sequence[str]) -> list[MonthUsage]:
    """The organization's counters for each of ``months`` (in their order)."""
    rows = session.scalars(
        select(Usage).where(Usage.organizationId == organization_id, Usage.month.in_(months))
    )
    found = {row.month: row for row in rows}
    return [_month_usage(month, found.get(month)) for month in months]


def deliveries_today(session: Session, organization_id: str, now: datetime) -> int:
    """Places of today's ``maxDeliveriesPerDay`` window taken (0 when it has none)."""
    row = session.execute(
        select(ThrottleWindow.windowStart, ThrottleWindow.hits).where(
            ThrottleWindow.bucket == daily_limit.bucket(organization_id)
        )
    ).one_or_none()
    today = window_start(now, int(daily_limit.DAY.total_seconds()))
    return row.hits if row is not None and row.windowStart == today else 0


def standing(session: Session, organization_id: str, now: datetime) -> Standing:
    """The organization's limits and what counts against them now."""
    return Standing(
        limits=read_limits(session, organization_id),
        searches=search_count(session, organization_id),
        sources=source_count(session, organization_id),
        deliveries_today=deliveries_today(session, organization_id, now),
    )


def usage_by_organization(
    session: Session, month: str, *, before: str | None, limit: int
) -> list[OrganizationUsage]:
    """Every organization's counters for ``month`` with its limits, newest id first
    (``before``: the last id of the previous page), at most ``limit``."""
    query = (
        select(Organization, Usage)
        .outerjoin(Usage, and_(Usage.organizationId == Organization.id, Usage.month == month))
        .order_by(Organization.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(Organization.id < before)
    return [_organization_usage(org, month, row) for org, row in session.execute(query)]


def top_usage(session: Session, month: str, *, limit: int) -> list[OrganizationUsage]:
    """The organizations that used most in ``month`` (by API requests, then deliveries)."""
    query = (
        select(Organization, Usage)
        .join(Usage, Usage.organizationId == Organization.id)
        .where(Usage.month == month)
        .order_by(Usage.apiRequests.desc(), Usage.deliveriesSent.desc(), Organization.id)
        .limit(limit)
    )
    return [_organization_usage(org, month, row) for org, row in session.execute(query)]
