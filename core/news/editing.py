"""Changing and deleting saved searches and their schedules, scoped to an organization."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.cron import parse_cron
from core.db.models import CATCH_UP_POLICIES, News, NewsSource, Schedule
from core.errors import NotFound, ValidationError
from core.news.searches import (
    MAX_SEARCH_NAME_LENGTH,
    get_search,
    source_for_spec,
    validate_search_query,
    validate_settings,
)
from core.usage.limits import check_source_limit, read_limits, source_count


def update_search(
    session: Session, organization_id: str, news_id: str, changes: Mapping[str, Any]
) -> News:
    """Apply ``changes`` (camelCase fields of ``news``) to a search; a new ``searchQuery``
    is validated and the search's source links follow its sources (new ones within the
    organization's ``maxSources``)."""
    news = get_search(session, organization_id, news_id)
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not name or len(name) > MAX_SEARCH_NAME_LENGTH:
            raise ValidationError(f"must be 1 to {MAX_SEARCH_NAME_LENGTH} characters", field="name")
        news.name = name
    if "searchQuery" in changes:
        query = validate_search_query(changes["searchQuery"])
        news.searchQuery = query.model_dump(mode="json")
        wanted = {source_for_spec(session, s, query.query).id for s in query.sources}
        linked = set(
            session.scalars(
                select(NewsSource.sourceId).where(
                    NewsSource.organizationId == organization_id, NewsSource.newsId == news.id
                )
            )
        )
        if linked - wanted:
            session.execute(
                delete(NewsSource).where(
                    NewsSource.organizationId == organization_id,
                    NewsSource.newsId == news.id,
                    NewsSource.sourceId.in_(linked - wanted),
                )
            )
        _link_sources(session, organization_id, news.id, wanted - linked)
    for field in ("relevanceSettings", "waitSettings"):
        if field in changes:
            setattr(news, field, validate_settings(field, changes[field]))
    if "isActive" in changes:
        news.isActive = bool(changes["isActive"])
    session.flush()
    return news


def _link_sources(
    session: Session, organization_id: str, news_id: str, source_ids: set[str]
) -> None:
    """Link the search to more sources, within the organization's ``maxSources``."""
    if not source_ids:
        return
    limit = read_limits(session, organization_id, lock=True).maxSources
    before = source_count(session, organization_id) if limit is not None else 0
    for source_id in sorted(source_ids):
        session.add(NewsSource(organizationId=organization_id, newsId=news_id, sourceId=source_id))
    session.flush()
    if limit is not None:
        check_source_limit(session, organization_id, limit, before)


def delete_search(session: Session, organization_id: str, news_id: str) -> None:
    """Delete a search; its schedules, stories, runs and links go with it (cascade)."""
    session.delete(get_search(session, organization_id, news_id))
    session.flush()


def get_schedule(
    session: Session, organization_id: str, news_id: str, schedule_id: str
) -> Schedule:
    schedule = session.scalar(
        select(Schedule).where(
            Schedule.organizationId == organization_id,
            Schedule.newsId == news_id,
            Schedule.id == schedule_id,
        )
    )
    if schedule is None:
        raise NotFound("no such schedule")
    return schedule


def _refresh_next_run(session: Session, organization_id: str, news_id: str) -> None:
    news = get_search(session, organization_id, news_id)
    news.nextRun = session.scalar(
        select(func.min(Schedule.nextRun)).where(
            Schedule.organizationId == organization_id,
            Schedule.newsId == news_id,
            Schedule.isActive,
        )
    )


def update_schedule(
    session: Session,
    organization_id: str,
    news_id: str,
    schedule_id: str,
    changes: Mapping[str, Any],
    *,
    now: datetime,
) -> Schedule:
    """Change a schedule; a new cron expression or zone recomputes ``nextRun`` from ``now``."""
    schedule = get_schedule(session, organization_id, news_id, schedule_id)
    if "catchUp" in changes:
        if changes["catchUp"] not in CATCH_UP_POLICIES:
            raise ValidationError(f"must be one of {', '.join(CATCH_UP_POLICIES)}", field="catchUp")
        schedule.catchUp = changes["catchUp"]
    if "cronExpr" in changes or "timezone" in changes:
        cron = parse_cron(
            changes.get("cronExpr", schedule.cronExpr), changes.get("timezone", schedule.timezone)
        )
        schedule.cronExpr = cron.expr
        schedule.timezone = cron.timezone
        schedule.nextRun = cron.next_fire(now)
    if "isActive" in changes:
        schedule.isActive = bool(changes["isActive"])
        if schedule.isActive and "cronExpr" not in changes and "timezone" not in changes:
            schedule.nextRun = parse_cron(schedule.cronExpr, schedule.timezone).next_fire(now)
    session.flush()
    _refresh_next_run(session, organization_id, news_id)
    return schedule


def delete_schedule(session: Session, organization_id: str, news_id: str, schedule_id: str) -> None:
    session.delete(get_schedule(session, organization_id, news_id, schedule_id))
    session.flush()
    _refresh_next_run(session, organization_id, news_id)
