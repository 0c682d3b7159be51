"""Turning a search's new entries into its stories: filter, score, dedupe, no flood."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, exists, select
from sqlalchemy.orm import Session, aliased

from core.db.bulk import insert_ignoring_conflicts
from core.db.models import Entry, News, NewsSource, Story
from core.ids import new_id
from core.ingest.cluster_store import cluster_new_stories
from core.relevance.feedback import retrain
from core.relevance.matching import Document, matched_terms, matches
from core.relevance.query import parse_query
from core.relevance.scorer import Candidate, score_batch
from core.relevance.settings import validate_relevance_settings
from core.relevance.stream import stream_texts

#: Entries a run considers at most (newest first); a flood waits for the next run.
MAX_CANDIDATES_PER_RUN = 2000
#: On a search's first run, at most this many of the entries already there are
#: announced (the newest); the rest are recorded as seen, never delivered.
FIRST_RUN_ANNOUNCE = 5
#: Entries stored this long before the previous run are looked at again, so an entry
#: committed by a concurrent run while ours read is never missed.
LOOKBACK_MARGIN = timedelta(hours=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoryOutcome:
    new: int
    backlog: int
    considered: int


def _candidates(session: Session, news: News, since: datetime | None) -> list[Row[Any]]:
    seen = exists().where(Story.newsId == news.id, Story.urlKey == Entry.urlKey)
    # The same item under another link (a FeedBurner copy, an edited slug): same global id.
    copy = aliased(Entry)
    seen_id = exists().where(
        Story.newsId == news.id, Story.entryId == copy.id, copy.guidKey == Entry.guidKey
    )
    query = (
        select(
            Entry.id,
            Entry.urlKey,
            Entry.guidKey,
            Entry.canonicalUrl,
            Entry.title,
            Entry.summary,
            Entry.language,
            Entry.publishedAt,
            Entry.createdAt,
            Entry.url,
            Entry.dateIssue,
        )
        .join(NewsSource, NewsSource.sourceId == Entry.sourceId)
        .where(NewsSource.organizationId == news.organizationId, NewsSource.newsId == news.id)
        .where(~seen, ~seen_id)
        .order_by(Entry.publishedAt.desc().nulls_last(), Entry.createdAt.desc())
        .limit(MAX_CANDIDATES_PER_RUN)
    )
    if since is not None:
        query = query.where(Entry.createdAt >= since - LOOKBACK_MARGIN)
    return list(session.execute(query))


def _apply_scores(
    session: Session,
    news: News,
    rows: list[dict[str, Any]],
    docs: list[Document],
    now: datetime,
    *,
    matched: list[bool],
) -> None:
    """Score the run's candidates in one batch: score, explanation, isFiltered (rows the
    query did not ``matched`` are scored as possible suggestions)."""
    settings = validate_relevance_settings(news.relevanceSettings)
    raw_query = str(news.searchQuery.get("query", "")).strip()
    query = parse_query(raw_query) if raw_query else None
    model = (
        retrain(session, news.organizationId, news.id, now=now)  # no-op when labels unchanged
        if settings.model == "tfidf+feedback"
        else None
    )
    candidates = [
        Candidate(
            title=row["title"],
            summary=row["snippet"] or "",
            url=doc.source,
            language=doc.language,
            published_at=row["publishedAt"],
            matched=passed,
        )
        for row, doc, passed in zip(rows, docs, matched, strict=True)
    ]
    stream = (
        stream_texts(session, news.organizationId, news.id)
        if query is not None or settings.boostedTerms
        else []
    )
    verdicts, speed = score_batch(query, settings, stream, candidates, now=now, model=model)
    for row, doc, verdict in zip(rows, docs, verdicts, strict=True):
        found = matched_terms(query, doc) if query is not None else []
        row["relevanceScore"] = verdict.score
        row["explanation"] = {"matched": found, **verdict.explanation}
        row["isFiltered"] = verdict.filtered is not None
    if candidates:
        log.info(
            "scored %d candidates of search %s at %.0f entries/s",
            speed.entries,
            news.id,
            speed.per_second,
            extra={"newsId": news.id, "entriesPerSecond": round(speed.per_second)},
        )


def collect_stories(
    session: Session, organization_id: str, news: News, *, now: datetime, first_run: bool
) -> StoryOutcome:
    """Create stories for entries of ``news``'s sources that match its query (or that its
    feedback suggests, if it opted in) and that this search has not seen (by URL key), in
    the caller's transaction.

    A story shows the article's own URL (``feedburner:origLink`` or the canonical link),
    and its host is what ``site:``, ``excludedSources`` and the digest's source name see,
    never a FeedBurner or redirector host."""
    raw_query = str(news.searchQuery.get("query", "")).strip()
    query = parse_query(raw_query) if raw_query else None
    suggest = validate_relevance_settings(news.relevanceSettings).deliverSuggestions
    since = None if first_run else news.lastRun
    rows: dict[str, dict[str, Any]] = {}
    docs: list[Document] = []
    date_issues: dict[str, str] = {}
    passed: list[bool] = []
    candidates = _candidates(session, news, since)
    item_ids: set[str] = set()
    for entry in candidates:
        if entry.urlKey in rows or entry.guidKey in item_ids:
            continue  # the same story from two feeds of this search: once
        doc = Document(
            title=entry.title,
            text=entry.summary or "",
            source=entry.canonicalUrl,
            language=entry.language or "",
        )
        matching = query is None or matches(query, doc)
        if not (matching or suggest):
            continue
        docs.append(doc)
        passed.append(matching)
        if entry.guidKey:
            item_ids.add(entry.guidKey)
        rows[entry.urlKey] = {
            "id": new_id(),
            "organizationId": organization_id,
            "newsId": news.id,
            "entryId": entry.id,
            "title": entry.title,
            "url": entry.canonicalUrl,
            "urlKey": entry.urlKey,
            "snippet": entry.summary,
            "sourceName": urlsplit(entry.canonicalUrl).hostname,
            "publishedAt": entry.publishedAt,
            "relevanceScore": 0.0,
            "explanation": None,
            "isFiltered": False,
            "wasDelivered": False,
            "foundAt": now,
            "createdAt": now,
            "updatedAt": now,
        }
        if entry.dateIssue:
            date_issues[entry.urlKey] = entry.dateIssue
    _apply_scores(session, news, list(rows.values()), docs, now, matched=passed)
    for (key, row), matching in zip(list(rows.items()), passed, strict=True):
        if not (matching or row["explanation"].get("suggested")):
            del rows[key]  # not matched, not suggested: not a story of this search
    for key, issue in date_issues.items():
        if key in rows:  # readers see why the story's time is when it was found
            rows[key]["explanation"]["publishedAt"] = f"fetch time ({issue})"
    backlog = 0
    if first_run:
        # Candidates come newest first: announce a handful, record the rest as seen.
        for position, row in enumerate(rows.values()):
            if position >= FIRST_RUN_ANNOUNCE:
                row["isFiltered"] = True
                # Keep the scorer's own reason (threshold, exclusion) next to the backlog one.
                earlier = row["explanation"].get("filtered")
                reason = "backlog at first run" + (f"; {earlier}" if earlier else "")
                why = row["explanation"]["reason"].replace(f"; held back: {earlier}", "")
                row["explanation"] = {
                    **row["explanation"],
                    "filtered": reason,
                    "reason": f"{why}; held back: {reason}",
                }
                backlog += 1
    inserted = insert_ignoring_conflicts(session, Story, list(rows.values()), ["newsId", "urlKey"])
    cluster_new_stories(session, news, inserted, now)
    return StoryOutcome(new=len(inserted), backlog=backlog, considered=len(candidates))
