"""Turning a search's new entries into its stories: filter, score, dedupe, no flood."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, exists, select
from sqlalchemy.orm import Session

from core.db.bulk import insert_ignoring_conflicts
from core.db.models import Entry, News, NewsSource, Story
from core.ids import new_id
from core.ingest.clusters import cluster_new_stories
from core.relevance.query import (
    Document,
    Query,
    matched_terms,
    matches,
    parse_query,
    positive_terms,
)

#: Entries a run considers at most (newest first); a flood waits for the next run.
MAX_CANDIDATES_PER_RUN = 2000
#: On a search's first run, at most this many of the entries already there are
#: announced (the newest); the rest are recorded as seen, never delivered.
FIRST_RUN_ANNOUNCE = 5
#: Entries stored this long before the previous run are looked at again, so an entry
#: committed by a concurrent run while ours read is never missed.
LOOKBACK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class StoryOutcome:
    new: int
    backlog: int
    considered: int


def _candidates(session: Session, news: News, since: datetime | None) -> list[Row[Any]]:
    seen = exists().where(Story.newsId == news.id, Story.url == Entry.canonicalUrl)
    query = (
        select(
            Entry.id,
            Entry.canonicalUrl,
            Entry.title,
            Entry.summary,
            Entry.language,
            Entry.publishedAt,
            Entry.createdAt,
            Entry.url,
        )
        .join(NewsSource, NewsSource.sourceId == Entry.sourceId)
        .where(NewsSource.organizationId == news.organizationId, NewsSource.newsId == news.id)
        .where(~seen)
        .order_by(Entry.publishedAt.desc().nulls_last(), Entry.createdAt.desc())
        .limit(MAX_CANDIDATES_PER_RUN)
    )
    if since is not None:
        query = query.where(Entry.createdAt >= since - LOOKBACK_MARGIN)
    return list(session.execute(query))


def _score(query: Query | None, doc: Document) -> tuple[float, dict[str, Any]]:
    """Share of the query's positive terms the entry contains; the relevance issue's
    TF-IDF model replaces this, the explanation shape stays."""
    if query is None:
        return 1.0, {"rule": "no query: every entry matches", "matched": []}
    wanted = positive_terms(query)
    matched = matched_terms(query, doc)
    score = min(1.0, len(matched) / len(wanted)) if wanted else 1.0
    return score, {"rule": "query", "matched": matched, "model": "term-overlap"}


def collect_stories(
    session: Session, organization_id: str, news: News, *, now: datetime, first_run: bool
) -> StoryOutcome:
    """Create stories for entries of ``news``'s sources that match its query and that
    this search has not seen (by canonical URL), in the caller's transaction."""
    raw_query = str(news.searchQuery.get("query", "")).strip()
    query = parse_query(raw_query) if raw_query else None
    since = None if first_run else news.lastRun
    rows: dict[str, dict[str, Any]] = {}
    candidates = _candidates(session, news, since)
    for entry in candidates:
        if entry.canonicalUrl in rows:
            continue  # the same story from two feeds of this search: once
        doc = Document(
            title=entry.title,
            text=entry.summary or "",
            source=entry.url,
            language=entry.language or "",
        )
        if query is not None and not matches(query, doc):
            continue
        score, explanation = _score(query, doc)
        rows[entry.canonicalUrl] = {
            "id": new_id(),
            "organizationId": organization_id,
            "newsId": news.id,
            "entryId": entry.id,
            "title": entry.title,
            "url": entry.canonicalUrl,
            "snippet": entry.summary,
            "sourceName": urlsplit(entry.url).hostname,
            "publishedAt": entry.publishedAt,
            "relevanceScore": score,
            "explanation": explanation,
            "isFiltered": False,
            "wasDelivered": False,
            "foundAt": now,
            "createdAt": now,
            "updatedAt": now,
        }
    backlog = 0
    if first_run:
        # Candidates come newest first: announce a handful, record the rest as seen.
        for position, row in enumerate(rows.values()):
            if position >= FIRST_RUN_ANNOUNCE:
                row["isFiltered"] = True
                row["explanation"] = {**row["explanation"], "filtered": "backlog at first run"}
                backlog += 1
    inserted = insert_ignoring_conflicts(session, Story, list(rows.values()), ["newsId", "url"])
    cluster_new_stories(session, news, inserted, now)
    return StoryOutcome(new=len(inserted), backlog=backlog, considered=len(candidates))
