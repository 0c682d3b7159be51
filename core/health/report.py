"""What ``GET /health`` shows an organization: every search, every source its searches
follow and every channel, with its state, last success, last error and next attempt,
plus its health alerts and where they go. Read only; every query is scoped to the
organization first (sources through its own searches' links).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Channel, Delivery, HealthAlert, News, NewsSource, Schedule, Source
from core.health.alert_channels import alert_channel_setting, alert_targets
from core.health.detect import HealthPolicy, failed_streaks

#: Most rows of each kind one report lists (most troubled first); ``truncated`` says so.
MAX_REPORT_ROWS = 1000


@dataclass(frozen=True)
class SearchHealth:
    id: str
    name: str
    isActive: bool
    state: str  # ok | failing | inactive
    failedRuns: int
    lastSuccess: datetime | None
    lastError: str | None
    nextAttempt: datetime | None


@dataclass(frozen=True)
class SourceHealth:
    id: str
    url: str
    title: str | None
    state: str  # new | ok | failing
    failureCount: int
    lastSuccess: datetime | None
    lastError: str | None
    nextAttempt: datetime | None
    newsIds: list[str]


@dataclass(frozen=True)
class ChannelHealth:
    id: str
    name: str
    type: str
    isActive: bool
    state: str  # ok | failing | broken
    consecutiveFailures: int
    lastSuccess: datetime | None
    lastError: str | None
    nextAttempt: datetime | None


@dataclass(frozen=True)
class AlertState:
    subjectKind: str
    subjectId: str
    state: str
    notifiedState: str | None
    changedAt: datetime
    lastAlertAt: datetime | None
    lastError: str | None


@dataclass(frozen=True)
class HealthReport:
    alertChannels: list[str] | None
    alertTargets: list[str]
    searches: list[SearchHealth] = field(default_factory=list)
    sources: list[SourceHealth] = field(default_factory=list)
    channels: list[ChannelHealth] = field(default_factory=list)
    alerts: list[AlertState] = field(default_factory=list)
    truncated: bool = False


def _text(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("error") or error.get("warning") or error)
    return str(error)


def _searches(
    session: Session, organization_id: str, policy: HealthPolicy
) -> tuple[list[SearchHealth], bool]:
    streaks = {
        news_id: count for _org, news_id, count in session.execute(failed_streaks(organization_id))
    }
    outcomes: dict[str, tuple[datetime | None, datetime | None, Any]] = {}
    for news_id, success, failure, error in session.execute(
        select(Schedule.newsId, Schedule.lastSuccess, Schedule.lastFailure, Schedule.errorDetails)
        .where(Schedule.organizationId == organization_id)
        .order_by(Schedule.lastFailure.asc().nulls_first())
    ):
        best_success, best_failure, best_error = outcomes.get(news_id, (None, None, None))
        if success is not None and (best_success is None or success > best_success):
            best_success = success
        if failure is not None and (best_failure is None or failure >= best_failure):
            best_failure, best_error = failure, error
        outcomes[news_id] = (best_success, best_failure, best_error)
    rows = list(
        session.scalars(
            select(News)
            .where(News.organizationId == organization_id)
            .order_by(News.name, News.id)
            .limit(MAX_REPORT_ROWS + 1)
        )
    )
    searches = []
    for news in rows[:MAX_REPORT_ROWS]:
        streak = streaks.get(news.id, 0)
        success, failure, error = outcomes.get(news.id, (None, None, None))
        state = "ok"
        if not news.isActive:
            state = "inactive"
        elif streak >= policy.run_failures:
            state = "failing"
        recent_failure = failure is not None and (success is None or failure > success)
        searches.append(
            SearchHealth(
                id=news.id,
                name=news.name,
                isActive=news.isActive,
                state=state,
                failedRuns=streak,
                lastSuccess=success,
                lastError=_text(error) if recent_failure or streak else None,
                nextAttempt=news.nextRun if news.isActive else None,
            )
        )
    searches.sort(key=lambda s: (s.state != "failing", s.name, s.id))
    return searches, len(rows) > MAX_REPORT_ROWS


def _sources(session: Session, organization_id: str) -> tuple[list[SourceHealth], bool]:
    links: dict[str, list[str]] = {}
    for source_id, news_id in session.execute(
        select(NewsSource.sourceId, NewsSource.newsId)
        .where(NewsSource.organizationId == organization_id)
        .order_by(NewsSource.sourceId, NewsSource.newsId)
    ):
        links.setdefault(source_id, []).append(news_id)
    ids = list(links)
    truncated = len(ids) > MAX_REPORT_ROWS
    rows = session.scalars(
        select(Source)
        .where(
            Source.id.in_(
                select(NewsSource.sourceId).where(NewsSource.organizationId == organization_id)
            )
        )
        .order_by(Source.status != "failing", Source.url)
        .limit(MAX_REPORT_ROWS)
    )
    return [
        SourceHealth(
            id=s.id,
            url=s.url,
            title=s.title,
            state=s.status,
            failureCount=s.failureCount,
            lastSuccess=s.lastSuccessAt,
            lastError=_text(s.lastError),
            nextAttempt=s.nextFetchAt,
            newsIds=links[s.id],
        )
        for s in rows
    ], truncated


def _channels(session: Session, organization_id: str) -> tuple[list[ChannelHealth], bool]:
    # (a Result has ``keys()``, so ``dict(result)`` would take it for a mapping)
    sent = {
        channel_id: at
        for channel_id, at in session.execute(
            select(Delivery.channelId, func.max(Delivery.sentAt))
            .where(Delivery.organizationId == organization_id, Delivery.state == "sent")
            .group_by(Delivery.channelId)
        )
    }
    due = {
        channel_id: at
        for channel_id, at in session.execute(
            select(Delivery.channelId, func.min(Delivery.nextAttemptAt))
            .where(Delivery.organizationId == organization_id, Delivery.state == "pending")
            .group_by(Delivery.channelId)
        )
    }
    rows = list(
        session.scalars(
            select(Channel)
            .where(Channel.organizationId == organization_id)
            .order_by(Channel.status == "ok", Channel.name, Channel.id)
            .limit(MAX_REPORT_ROWS + 1)
        )
    )
    return [
        ChannelHealth(
            id=c.id,
            name=c.name,
            type=c.type,
            isActive=c.isActive,
            state=c.status,
            consecutiveFailures=c.consecutiveFailures,
            lastSuccess=sent.get(c.id),
            lastError=c.lastError,
            nextAttempt=due.get(c.id),
        )
        for c in rows[:MAX_REPORT_ROWS]
    ], len(rows) > MAX_REPORT_ROWS


def _alerts(session: Session, organization_id: str) -> list[AlertState]:
    rows = session.scalars(
        select(HealthAlert)
        .where(
            HealthAlert.organizationId == organization_id,
            or_(
                HealthAlert.state == "failing",
                and_(
                    HealthAlert.notifiedState.is_not(None),
                    HealthAlert.notifiedState != HealthAlert.state,
                ),
            ),
        )
        .order_by(HealthAlert.changedAt.desc(), HealthAlert.id)
        .limit(MAX_REPORT_ROWS)
    )
    return [
        AlertState(
            subjectKind=a.subjectKind,
            subjectId=a.subjectId,
            state=a.state,
            notifiedState=a.notifiedState,
            changedAt=a.changedAt,
            lastAlertAt=a.lastAlertAt,
            lastError=a.lastError,
        )
        for a in rows
    ]


def health_report(session: Session, organization_id: str, policy: HealthPolicy) -> HealthReport:
    """The organization's whole health report (see the module docstring)."""
    configured = alert_channel_setting(session, organization_id)
    searches, more_searches = _searches(session, organization_id, policy)
    sources, more_sources = _sources(session, organization_id)
    channels, more_channels = _channels(session, organization_id)
    failing_channels = [c.id for c in channels if c.state != "ok"]
    targets = alert_targets(session, organization_id, configured, exclude=failing_channels)
    return HealthReport(
        alertChannels=configured,
        alertTargets=[c.id for c in targets],
        searches=searches,
        sources=sources,
        channels=channels,
        alerts=_alerts(session, organization_id),
        truncated=more_searches or more_sources or more_channels,
    )
