"""The run of a search, in two phases (:class:`~core.scheduling.steps.RunPhases`).

1. :func:`fetch_sources`, with no transaction open: each due source is claimed, fetched
   and its entries and outcome stored, each in a short transaction of its own, so a
   slow feed holds no lock and no connection, and a source's outcome (error, backoff,
   validators, new entries) stands whatever happens later in the run.
2. :func:`find_stories`, in the run's transaction: the search's stored entries become
   stories (filter, score, dedupe, cluster), then digests are planned
   (:func:`core.delivery.digests.plan_and_create`), so a digest and its delivery rows
   commit with the run; the run actor enqueues the new deliveries
   (``stats["deliveryIds"]``) after commit and the sweeper catches any it lost.

A search with nothing to score (no sources, all failing, empty feeds) is a run with 0
stories, not a failure.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db.models import NewsSource, Source, Story
from core.db.session import unit_of_work
from core.delivery.digests import plan_and_create
from core.fetch import GuardedClient, GuardPolicy, build_client
from core.fetch.politeness import HostLimiter
from core.ingest.sources import refresh_source
from core.ingest.stories import collect_stories
from core.news.searches import get_search
from core.scheduling.runs import ClaimedRun
from core.scheduling.steps import RunPhases


def fetch_sources(
    engine: Engine,
    run: ClaimedRun,
    now: datetime,
    client: GuardedClient,
    limiter: HostLimiter | None = None,
) -> dict[str, Any]:
    """Refresh the search's due sources; returns their statistics (and errors, if any)."""
    with unit_of_work(engine) as session:
        sources = list(
            session.execute(
                select(Source.id, Source.url)
                .join(NewsSource, NewsSource.sourceId == Source.id)
                .where(
                    NewsSource.organizationId == run.organization_id,
                    NewsSource.newsId == run.news_id,
                )
                .order_by(Source.id)
            )
        )
    states: Counter[str] = Counter()
    new_entries = 0
    errors: list[dict[str, Any]] = []
    for source_id, url in sources:
        outcome = refresh_source(engine, source_id, client, now, limiter)
        states[outcome.state] += 1
        new_entries += outcome.new_entries
        if outcome.error:
            errors.append({"sourceId": source_id, "url": url, "error": outcome.error})
    stats: dict[str, Any] = {
        "sources": len(sources),
        **{f"sources_{state}": count for state, count in sorted(states.items())},
        "entriesNew": new_entries,
    }
    if errors:
        stats["sourceErrors"] = errors
    return stats


def find_stories(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
    """Turn the search's stored entries into stories and plan digests, in ``session``'s
    transaction; returns the statistics."""
    news = get_search(session, run.organization_id, run.news_id)
    first_run = not session.scalar(select(exists().where(Story.newsId == news.id)))
    stories = collect_stories(session, run.organization_id, news, now=now, first_run=first_run)
    planned = plan_and_create(session, run.organization_id, news.id, now=now)
    return {
        "storiesNew": stories.new,
        "storiesBacklog": stories.backlog,
        "candidates": stories.considered,
        "digestsNew": planned.digests,
        "deliveryIds": list(planned.delivery_ids),
    }


def make_ingest_step(policy: GuardPolicy) -> RunPhases:
    """The default run, with one guarded HTTP client and one per-host limiter per
    worker process (its threads share both); User-Agent and politeness from settings."""
    settings = get_settings()
    client = build_client(policy.replace(user_agent=settings.fetch_user_agent))
    limiter = HostLimiter(settings.fetch_host_concurrency, settings.fetch_host_interval_seconds)

    def fetch(engine: Engine, run: ClaimedRun, now: datetime) -> dict[str, Any]:
        return fetch_sources(engine, run, now, client, limiter)

    return RunPhases(step=find_stories, fetch=fetch)
