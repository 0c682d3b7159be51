"""The health check: what is broken now, compared with what each organization was told.

A periodic pass of the scheduler (:func:`check_health`, database only, one short
transaction) finds every problem an organization depends on:

- a **source** one of its active searches follows whose fetches failed
  ``source_failures`` times in a row (one problem per organization and source, however
  many of its searches follow it: 50 searches on one dead feed are one alert);
- a **channel** of its own marked ``failing`` or ``broken`` by deliveries;
- a **search** whose last ``run_failures`` finished runs all failed.

Each problem is compared with the organization's ``healthAlerts`` row for that subject:
a new problem turns the row ``failing``, a row ``failing`` whose problem is gone turns
``ok``. Nothing here sends: a row whose ``state`` differs from ``notifiedState`` is an
alert to send, which :mod:`core.health.notify` does from a worker. Comparing states
instead of reacting to events deduplicates by itself: a second check without change
changes nothing, and a problem that comes and goes before its alert went out is never
told at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from core.config import Settings
from core.db.models import Channel, HealthAlert, News, NewsSource, Organization, Run, Source
from core.ids import new_id

#: Organizations whose alerts one check hands to workers (the rest at the next check).
MAX_ORGS_PER_CHECK = 1000
#: Characters of an error kept in an alert's detail.
MAX_DETAIL_ERROR_CHARS = 500
#: New problems written per statement.
UPSERT_BATCH_SIZE = 500
#: A row whose recovery was told (or whose failure never was) is deleted this long after.
SETTLED_KEPT = timedelta(days=30)
#: What a recovery says of a subject that was deleted, deactivated or unfollowed meanwhile.
NO_LONGER_WATCHED = "no longer monitored: deleted, deactivated or no longer followed"


@dataclass(frozen=True)
class HealthPolicy:
    """When a subject counts as failing, and how often an organization may be told.

    Parameters:
      source_failures: failed fetches in a row before a followed source is failing.
      run_failures: failed runs in a row before a search is failing.
      alerts_per_hour: alert messages per organization and hour.
    """

    source_failures: int = 5
    run_failures: int = 3
    alerts_per_hour: int = 6

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthPolicy:
        return cls(
            source_failures=settings.health_source_failures,
            run_failures=settings.health_run_failures,
            alerts_per_hour=settings.health_alerts_per_hour,
        )


@dataclass(frozen=True)
class Problem:
    """One subject failing for one organization; ``detail`` is what its alert names."""

    organization_id: str
    kind: str
    subject_id: str
    detail: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.organization_id, self.kind, self.subject_id)


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        error = error.get("error") or error.get("warning") or error
    return str(error or "")[:MAX_DETAIL_ERROR_CHARS]


def _source_problems(session: Session, policy: HealthPolicy) -> list[Problem]:
    rows = session.execute(
        select(
            NewsSource.organizationId,
            Source.id,
            Source.url,
            Source.title,
            Source.failureCount,
            Source.lastError,
        )
        .join(Source, Source.id == NewsSource.sourceId)
        .join(
            News,
            and_(News.organizationId == NewsSource.organizationId, News.id == NewsSource.newsId),
        )
        .join(Organization, Organization.id == News.organizationId)
        .where(
            Source.status == "failing",
            Source.failureCount >= policy.source_failures,
            News.isActive.is_(True),
            Organization.isActive.is_(True),
        )
    )
    found: dict[tuple[str, str], Problem] = {}
    for org_id, source_id, url, title, failures, error in rows:
        found.setdefault(
            (org_id, source_id),
            Problem(
                org_id,
                "source",
                source_id,
                {
                    "name": title or url,
                    "url": url,
                    "failures": failures,
                    "error": _error_text(error),
                },
            ),
        )
    return list(found.values())


def _channel_problems(session: Session) -> list[Problem]:
    rows = session.execute(
        select(
            Channel.organizationId,
            Channel.id,
            Channel.name,
            Channel.type,
            Channel.status,
            Channel.consecutiveFailures,
            Channel.lastError,
        )
        .join(Organization, Organization.id == Channel.organizationId)
        .where(
            Channel.isActive.is_(True),
            Channel.status.in_(("failing", "broken")),
            Organization.isActive.is_(True),
        )
    )
    return [
        Problem(
            org_id,
            "channel",
            channel_id,
            {
                "name": name or channel_type,
                "type": channel_type,
                "status": status,
                "failures": failures,
                "error": _error_text(error),
            },
        )
        for org_id, channel_id, name, channel_type, status, failures, error in rows
    ]


def failed_streaks(organization_id: str | None = None) -> Select[str, str, int]:
    """``(organizationId, newsId, failed runs since its last successful one)`` of every
    search with a failed run (of one organization, or of all).

    The last successes are read only for searches that have a failed run, joined once
    (not a subquery per failed run: measured with 200,000 runs, that was 600 index scans
    of the whole ``succeeded`` state and 19 s when the planner had no statistics).
    """
    scope = [Run.state == "failed"]
    if organization_id is not None:
        scope.insert(0, Run.organizationId == organization_id)
    failed_news = select(Run.newsId).where(*scope).distinct()
    succeeded = aliased(Run)
    last_success = (
        select(succeeded.newsId, func.max(succeeded.finishedAt).label("at"))
        .where(succeeded.state == "succeeded", succeeded.newsId.in_(failed_news))
        .group_by(succeeded.newsId)
        .subquery()
    )
    return (
        select(Run.organizationId, Run.newsId, func.count())
        .outerjoin(last_success, last_success.c.newsId == Run.newsId)
        .where(
            *scope,
            or_(last_success.c.at.is_(None), Run.finishedAt > last_success.c.at),
        )
        .group_by(Run.organizationId, Run.newsId)
    )


def _search_problems(session: Session, policy: HealthPolicy) -> list[Problem]:
    streaks = failed_streaks().subquery()
    rows = session.execute(
        select(streaks.c.organizationId, streaks.c.newsId, News.name, streaks.c.count)
        .join(
            News,
            and_(News.organizationId == streaks.c.organizationId, News.id == streaks.c.newsId),
        )
        .join(Organization, Organization.id == News.organizationId)
        .where(
            streaks.c.count >= policy.run_failures,
            News.isActive.is_(True),
            Organization.isActive.is_(True),
        )
    ).all()
    problems = []
    for org_id, news_id, name, failures in rows:
        error = session.scalar(
            select(Run.error)
            .where(Run.organizationId == org_id, Run.newsId == news_id, Run.state == "failed")
            .order_by(Run.finishedAt.desc())
            .limit(1)
        )
        problems.append(
            Problem(
                org_id,
                "news",
                news_id,
                {"name": name, "failures": failures, "error": _error_text(error)},
            )
        )
    return problems


def current_problems(session: Session, policy: HealthPolicy) -> list[Problem]:
    """Every subject failing now, for every active organization."""
    return [
        *_source_problems(session, policy),
        *_channel_problems(session),
        *_search_problems(session, policy),
    ]


def record_transitions(session: Session, problems: list[Problem], *, now: datetime) -> int:
    """Turn rows ``failing`` for new problems and ``ok`` for problems gone; returns the
    number of rows that changed. Safe when two scheduler replicas run it at once: each
    write is conditional on the state it changes."""
    table = HealthAlert.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    failing = {
        (row.organizationId, row.subjectKind, row.subjectId): row.id
        for row in session.execute(
            select(
                HealthAlert.id,
                HealthAlert.organizationId,
                HealthAlert.subjectKind,
                HealthAlert.subjectId,
            ).where(HealthAlert.state == "failing")
        )
    }
    current = {problem.key for problem in problems}
    new = [problem for problem in problems if problem.key not in failing]
    changed = 0
    for start in range(0, len(new), UPSERT_BATCH_SIZE):
        insert = dialect.insert(table).values(
            [
                {
                    "id": new_id(),
                    "organizationId": problem.organization_id,
                    "subjectKind": problem.kind,
                    "subjectId": problem.subject_id,
                    "state": "failing",
                    "detail": problem.detail,
                    "changedAt": now,
                    "createdAt": now,
                    "updatedAt": now,
                }
                for problem in new[start : start + UPSERT_BATCH_SIZE]
            ]
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[table.c.organizationId, table.c.subjectKind, table.c.subjectId],
            set_={
                "state": "failing",
                "detail": insert.excluded.detail,
                "changedAt": now,
                "lastError": None,
                "updatedAt": now,
            },
            where=table.c.state != "failing",
        )
        changed += session.execute(upsert).rowcount  # type: ignore[attr-defined]
    for key, row_id in failing.items():
        if key in current:
            continue
        values: dict[str, Any] = {"state": "ok", "changedAt": now, "updatedAt": now}
        if not _watched(session, *key):
            detail = session.scalar(select(HealthAlert.detail).where(HealthAlert.id == row_id))
            values["detail"] = {**(detail or {}), "gone": NO_LONGER_WATCHED}
        result = session.execute(
            update(HealthAlert)
            .where(HealthAlert.id == row_id, HealthAlert.state == "failing")
            .values(**values),
            execution_options={"synchronize_session": False},
        )
        changed += result.rowcount  # type: ignore[attr-defined]
    session.execute(
        delete(HealthAlert).where(
            HealthAlert.state == "ok",
            func.coalesce(HealthAlert.notifiedState, "ok") == "ok",
            HealthAlert.sendingUntil.is_(None),
            HealthAlert.changedAt < now - SETTLED_KEPT,
        )
    )
    return changed


def _watched(session: Session, organization_id: str, kind: str, subject_id: str) -> bool:
    """Whether a subject that stopped failing is still one the check looks at (a deleted
    channel or unfollowed source did not recover: it left)."""
    if kind == "channel":
        found = exists().where(
            Channel.organizationId == organization_id,
            Channel.id == subject_id,
            Channel.isActive.is_(True),
        )
    elif kind == "news":
        found = exists().where(
            News.organizationId == organization_id, News.id == subject_id, News.isActive.is_(True)
        )
    else:
        found = exists().where(
            NewsSource.organizationId == organization_id,
            NewsSource.sourceId == subject_id,
            News.organizationId == NewsSource.organizationId,
            News.id == NewsSource.newsId,
            News.isActive.is_(True),
        )
    return bool(session.scalar(select(found)))


def pending_filter(now: datetime) -> Any:
    """Rows whose state the organization has not been told, and no worker holds."""
    return and_(
        HealthAlert.state != func.coalesce(HealthAlert.notifiedState, "ok"),
        or_(HealthAlert.sendingUntil.is_(None), HealthAlert.sendingUntil < now),
    )


def organizations_to_alert(
    session: Session, *, now: datetime, limit: int = MAX_ORGS_PER_CHECK
) -> list[str]:
    """Organizations with an alert still to send."""
    return list(
        session.scalars(
            select(HealthAlert.organizationId)
            .where(pending_filter(now))
            .group_by(HealthAlert.organizationId)
            .order_by(HealthAlert.organizationId)
            .limit(limit)
        )
    )


def check_health(session: Session, policy: HealthPolicy, *, now: datetime) -> list[str]:
    """One health check: record every transition; returns the organizations to alert."""
    record_transitions(session, current_problems(session, policy), now=now)
    return organizations_to_alert(session, now=now)
