"""The run step of a search: refresh its sources, turn new entries into stories, then
plan digests (:func:`core.delivery.digests.plan_and_create`) in the same transaction, so
a digest and its delivery rows commit with the run; the run actor enqueues the new
deliveries (``stats["deliveryIds"]``) after commit and the sweeper catches any it lost."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db.models import NewsSource, Source, Story
from core.delivery.digests import plan_and_create
from core.fetch import GuardedClient, GuardPolicy, build_client
from core.fetch.politeness import HostLimiter
from core.ingest.sources import refresh_source
from core.ingest.stories import collect_stories
from core.news.searches import get_search
from core.scheduling.runs import ClaimedRun
from core.scheduling.steps import RunStep


def ingest(
    session: Session,
    run: ClaimedRun,
    now: datetime,
    client: GuardedClient,
    limiter: HostLimiter | None = None,
) -> dict[str, Any]:
    """One run of a search; returns its statistics (and failing sources, if any)."""
    news = get_search(session, run.organization_id, run.news_id)
    first_run = not session.scalar(select(exists().where(Story.newsId == news.id)))
    sources = session.scalars(
        select(Source)
        .join(NewsSource, NewsSource.sourceId == Source.id)
        .where(NewsSource.organizationId == run.organization_id, NewsSource.newsId == news.id)
        .order_by(Source.id)  # a fixed order: concurrent runs lock shared rows alike
    ).all()
    states: Counter[str] = Counter()
    new_entries = 0
    errors: list[dict[str, Any]] = []
    for source in sources:
        outcome = refresh_source(session, source, client, now, limiter)
        states[outcome.state] += 1
        new_entries += outcome.new_entries
        if outcome.error:
            errors.append({"sourceId": source.id, "url": source.url, "error": outcome.error})
    stories = collect_stories(session, run.organization_id, news, now=now, first_run=first_run)
    stats: dict[str, Any] = {
        "sources": len(sources),
        **{f"sources_{state}": count for state, count in sorted(states.items())},
        "entriesNew": new_entries,
        "storiesNew": stories.new,
        "storiesBacklog": stories.backlog,
        "candidates": stories.considered,
    }
    planned = plan_and_create(session, run.organization_id, news.id, now=now)
    stats["digestsNew"] = planned.digests
    stats["deliveryIds"] = list(planned.delivery_ids)
    if errors:
        stats["sourceErrors"] = errors
    return stats


def make_ingest_step(policy: GuardPolicy) -> RunStep:
    """The default run step, with one guarded HTTP client and one per-host limiter per
    worker process (its threads share both); User-Agent and politeness from settings."""
    settings = get_settings()
    client = build_client(policy.replace(user_agent=settings.fetch_user_agent))
    limiter = HostLimiter(settings.fetch_host_concurrency, settings.fetch_host_interval_seconds)

    def ingest_step(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
        return ingest(session, run, now, client, limiter)

    return ingest_step
