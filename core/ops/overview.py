"""Cross-tenant views for operators (never exposed to organization keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Channel, News, Organization, Run, Schedule, Source

#: Rows per list on the operator page.
OVERVIEW_LIMIT = 50


@dataclass(frozen=True)
class Lag:
    """How far behind the scheduler and the workers are."""

    overdue_schedule: timedelta | None  # now - oldest nextRun still due
    oldest_queued_run: timedelta | None  # now - createdAt of the oldest queued run


def failing_sources(session: Session, limit: int = OVERVIEW_LIMIT) -> list[Source]:
    return list(
        session.scalars(
            select(Source)
            .where(Source.status == "failing")
            .order_by(Source.failureCount.desc(), Source.id)
            .limit(limit)
        )
    )


def failing_channels(session: Session, limit: int = OVERVIEW_LIMIT) -> list[tuple[Channel, str]]:
    """Channels in ``failing`` or ``broken`` state, with their organization's slug."""
    rows = session.execute(
        select(Channel, Organization.slug)
        .join(Organization, Organization.id == Channel.organizationId)
        .where(Channel.status.in_(("failing", "broken")))
        .order_by(Channel.consecutiveFailures.desc(), Channel.id)
        .limit(limit)
    )
    return [(channel, slug) for channel, slug in rows]


def recent_runs(session: Session, limit: int = OVERVIEW_LIMIT) -> list[tuple[Run, str, str]]:
    """Newest runs across tenants with organization slug and search name."""
    rows = session.execute(
        select(Run, Organization.slug, News.name)
        .join(Organization, Organization.id == Run.organizationId)
        .join(News, (News.organizationId == Run.organizationId) & (News.id == Run.newsId))
        .order_by(Run.createdAt.desc(), Run.id.desc())
        .limit(limit)
    )
    return [(run, slug, name) for run, slug, name in rows]


def scheduler_lag(session: Session, *, now: datetime) -> Lag:
    overdue = session.scalar(
        select(func.min(Schedule.nextRun)).where(Schedule.isActive, Schedule.nextRun <= now)
    )
    queued = session.scalar(select(func.min(Run.createdAt)).where(Run.state == "queued"))
    return Lag(
        overdue_schedule=now - overdue if overdue else None,
        oldest_queued_run=now - queued if queued else None,
    )
