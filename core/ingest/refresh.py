"""One refresh of a shared source on its own clock, and the runs its news is owed to.

A search's run scores what its sources have gathered; it does not fetch. So a refresh
whose new entries someone is waiting for starts runs itself (:func:`runs_owed`):

- the source's first successful fetch starts a run of every active search following it
  (a new search sees its first stories within seconds, not at its next cron fire);
- a refresh sent for "run now" (``follow_up``) starts a run of that search.

Other new entries wait for each search's next scheduled run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db.models import News, NewsSource, Organization
from core.db.session import unit_of_work
from core.fetch import GuardedClient
from core.fetch.politeness import Limiter
from core.ingest.source_clock import ClockPolicy
from core.ingest.sources import SourceOutcome, refresh_source
from core.scheduling.runs import create_manual_run


@dataclass(frozen=True)
class Refreshed:
    """A refresh's outcome and the runs it started (ids to enqueue after commit)."""

    outcome: SourceOutcome
    run_ids: tuple[str, ...] = ()


def runs_owed(
    session: Session,
    source_id: str,
    outcome: SourceOutcome,
    follow_up: Iterable[str],
    *,
    now: datetime,
) -> list[str]:
    """Start the runs that wait for this refresh's new entries (see the module docstring);
    a manual run still queued for a search is reused, never doubled."""
    if not outcome.new_entries:
        return []
    wanted = set(follow_up)
    query = (
        select(News.organizationId, News.id)
        .join(NewsSource, NewsSource.newsId == News.id)
        .join(Organization, Organization.id == News.organizationId)
        .where(NewsSource.sourceId == source_id, News.isActive, Organization.isActive)
    )
    if not outcome.first_success:
        if not wanted:
            return []
        query = query.where(News.id.in_(wanted))
    run_ids = []
    for organization_id, news_id in session.execute(query.order_by(News.id)).all():
        run_id, _ = create_manual_run(session, organization_id, news_id, now=now)
        run_ids.append(run_id)
    return run_ids


def refresh(
    engine: Engine,
    source_id: str,
    client: GuardedClient,
    now: datetime,
    *,
    limiter: Limiter | None = None,
    policy: ClockPolicy,
    follow_up: Iterable[str] = (),
) -> Refreshed:
    """Refresh the source if due (:func:`core.ingest.sources.refresh_source`), then start
    the runs owed to its new entries, in a short transaction of their own. A refresh with
    a follow-up that its host deferred is sent again by the caller (``retry_in``)."""
    follow_up = tuple(follow_up)
    outcome = refresh_source(
        engine,
        source_id,
        client,
        now,
        limiter=limiter,
        policy=policy,
        resent_when_busy=bool(follow_up),
    )
    if not outcome.new_entries:
        return Refreshed(outcome)
    with unit_of_work(engine) as session:
        run_ids = runs_owed(session, source_id, outcome, follow_up, now=now)
    return Refreshed(outcome, tuple(run_ids))
