"""What a search's run does, and the tools that refresh its sources.

A run reads the database only: :func:`find_stories`, in the run's transaction, turns the
search's stored entries into stories (filter, score, dedupe, cluster) and plans digests
(:func:`core.delivery.digests.plan_and_create`), so a digest and its delivery rows commit
with the run; the run actor enqueues the new deliveries (``stats["deliveryIds"]``) after
commit and the sweeper catches any it lost. The sources are fetched on their own clock
by the refresh actor (:mod:`core.ingest.refresh`, :mod:`core.ingest.source_clock`), so a
slow feed never holds a run, a lock or a connection.

A search with nothing to score (no sources, all failing, empty feeds) is a run with 0
stories, not a failure.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from core.db.models import NewsSource, Source, Story
from core.db.session import unit_of_work
from core.delivery.digests import plan_and_create
from core.fetch import GuardedClient, GuardPolicy
from core.fetch.politeness import Limiter
from core.ingest.sources import refresh_source
from core.ingest.stories import collect_stories
from core.news.searches import get_search
from core.scheduling.runs import ClaimedRun
from core.scheduling.steps import RunPhases
from core.usage.counters import add_usage


def fetch_sources(
    engine: Engine,
    run: ClaimedRun,
    now: datetime,
    client: GuardedClient,
    limiter: Limiter | None = None,
) -> dict[str, Any]:
    """Refresh the search's due sources one after another, now (``newsmon`` tests and
    tools; the pipeline refreshes sources on their own clock); returns their statistics
    (and errors, if any)."""
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
        outcome = refresh_source(engine, source_id, client, now, limiter=limiter)
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
    transaction, counting the stories stored in the organization's usage; returns the
    statistics."""
    news = get_search(session, run.organization_id, run.news_id)
    first_run = not session.scalar(select(exists().where(Story.newsId == news.id)))
    stories = collect_stories(session, run.organization_id, news, now=now, first_run=first_run)
    planned = plan_and_create(session, run.organization_id, news.id, now=now)
    if stories.new:  # last: the organization's usage row is locked until the commit
        add_usage(session.connection(), run.organization_id, now, stories_stored=stories.new)
    return {
        "storiesNew": stories.new,
        "storiesBacklog": stories.backlog,
        "candidates": stories.considered,
        "digestsNew": planned.digests,
        "deliveryIds": list(planned.delivery_ids),
    }


def make_ingest_step(policy: GuardPolicy) -> RunPhases:
    """The default run: find stories in what the sources gathered (no fetching)."""
    del policy  # a run contacts nothing; the refresh actor has the fetch policy
    return RunPhases(step=find_stories)
